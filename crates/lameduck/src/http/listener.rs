//! A whole HTTP server on a listener, and the readiness answer that goes
//! with it.

use std::error::Error as StdError;

use http::{Response, StatusCode};
use http_body::Body;
use tokio::net::TcpListener;
use tracing::debug;

use super::{HttpServer, HttpService};
use crate::accept::accept_until_closing;
use crate::drain::Drain;

/// Serves `service` on `listener` through `drain`, with the default limits:
/// see [`HttpServer::serve_listener`].
///
/// ```no_run
/// use std::convert::Infallible;
/// use http::Response;
/// use hyper::service::service_fn;
///
/// # async fn run() -> std::io::Result<()> {
/// let drain = lameduck::Drain::from_env().expect("LAMEDUCK_* variables");
/// drain.listen_for_signals()?;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// let hello = service_fn(|_req| async { Ok::<_, Infallible>(Response::new(String::from("hello\n"))) });
/// tokio::spawn(lameduck::http::serve(listener, drain.clone(), hello));
/// drain.run().await; // returns once drained: the process may exit
/// # Ok(())
/// # }
/// ```
pub async fn serve<S, B>(listener: TcpListener, drain: Drain, service: S)
where
    S: HttpService<B>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    HttpServer::default()
        .serve_listener(listener, drain, service)
        .await
}

impl HttpServer {
    /// Accepts connections on `listener` while the drain allows and serves
    /// each with `service`, HTTP/1.1 or HTTP/2: keeps accepting through the
    /// drain delay, tells clients to move once draining, closes the listener
    /// when the delay is over, and cuts what is left at the deadline. Any
    /// hyper service works; a tower service (an axum `Router`) through
    /// `hyper_util::service::TowerToHyperService`.
    pub async fn serve_listener<S, B>(&self, listener: TcpListener, drain: Drain, service: S)
    where
        S: HttpService<B>,
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let server = self.clone();
        accept_until_closing(listener, drain.watch(), move |stream, peer, watch| {
            let (server, service) = (server.clone(), service.clone());
            async move {
                match server.detect(&stream, &watch).await {
                    Ok(Some(protocol)) => {
                        server.serve(stream, protocol, service, watch).await;
                    }
                    Ok(None) => {}
                    Err(e) => debug!(%peer, error = %e, "connection closed before a request"),
                }
            }
        })
        .await
    }
}

/// The answer to a readiness probe: 200 while serving, 503 from the moment
/// the drain began, so balancers move traffic elsewhere while the server
/// still accepts it.
pub fn readiness(drain: &Drain) -> Response<String> {
    let phase = drain.phase();
    let (status, body) = if phase.is_ready() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {phase}\n"),
        )
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res
}
