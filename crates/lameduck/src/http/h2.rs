//! Serving one HTTP/2 connection through the drain: the graceful GOAWAY
//! from `Draining` on (and past the connection's age), what never carried a
//! request closed at `Closing`, the rest cut at the deadline.

use std::error::Error as StdError;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http_body::Body;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use lameduck_core::Phase;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep, Instant};
use tracing::debug;

use super::age::{next_event, AgeEvent, AgeTimer};
use super::tracked::{ConnState, Tracked, WriteWatched};
use super::{ended, next_phase, until, ConnEnd, HttpServer, HttpService};
use crate::drain::Watch;

impl HttpServer {
    /// Serves one HTTP/2 connection that reaches its max age at `age` (an
    /// `h2c` upgrade keeps the age its HTTP/1.1 connection had).
    pub(crate) async fn serve_http2<I, S, B>(
        &self,
        io: I,
        service: S,
        watch: Watch,
        age: Option<Instant>,
    ) -> ConnEnd
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: HttpService<B>,
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let state = Arc::new(ConnState::new());
        let service = Tracked {
            inner: service,
            state: state.clone(),
            view: watch.phase_view(),
            h2c: None,
            max_head: None,
            age: None,
        };
        let io = WriteWatched {
            io,
            state: state.clone(),
        };
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(20)))
            .max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
        let view = watch.phase_view();
        let mut phase_change = Box::pin(next_phase(view.clone(), Phase::Serving));
        let mut idle = pin!(sleep(self.idle_timeout));
        let mut shutting_down = false;
        // From `Closing` on, a connection that never carried a request ends
        // at once: it holds nothing, and one that answers no PING would keep
        // the graceful GOAWAY waiting to the deadline.
        let mut close_if_unused = false;
        let mut age_timer = age.map(|at| AgeTimer::new(at, self.max_connection_age_grace));
        loop {
            // `conn` is polled first on every turn, so by the time a phase
            // change is handled the handshake is done (the preface was
            // already there when detected) and GOAWAY is graceful.
            tokio::select! {
                biased;
                r = until(conn.as_mut(), || close_if_unused && state.is_unused()) => return match r {
                    Some(r) => ended(r, &state),
                    None => {
                        debug!("closing an HTTP/2 connection that carried no request");
                        ConnEnd::Closed
                    }
                },
                seen = &mut phase_change => {
                    phase_change = Box::pin(next_phase(view.clone(), seen));
                    match seen {
                        Phase::Serving => {}
                        Phase::Draining | Phase::Closing => {
                            close_if_unused = seen == Phase::Closing;
                            if !shutting_down {
                                shutting_down = true;
                                conn.as_mut().graceful_shutdown();
                            }
                        }
                        Phase::Stopping | Phase::Exited => return ConnEnd::Cut,
                    }
                }
                () = &mut idle, if !shutting_down => match self.idle_check(&state, false) {
                    Ok(()) => {
                        debug!("closing an idle connection");
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Err(next) => idle.as_mut().reset(next),
                },
                // Past its age: the two-phase GOAWAY, as at `Draining`;
                // streams in flight finish (within the grace, if any).
                event = next_event(&mut age_timer) => match event {
                    AgeEvent::Reached => if !shutting_down {
                        debug!("HTTP/2 connection reached its max age: GOAWAY");
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    },
                    AgeEvent::GraceOver => {
                        debug!("HTTP/2 connection past its max age and grace: closed with streams in flight");
                        return ConnEnd::Closed;
                    }
                },
            }
        }
    }
}
