//! One request and its answer, driven from the client connection's own
//! task: the upstream connection is taken from the thread's pool (or
//! dialled), the head goes out in one vectored write with the body bytes
//! already read, the body streams while the answer's head is awaited, and
//! the connection goes back to the pool when both ends agree it may.

use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use lameduck::TunnelKind;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::buffers::{write_all, Buffer};
use super::heads::{self, Outgoing};
use super::parse::{parse_response, Framing, RequestHead, ResponseHead};
use super::transfer::{copy_chunked, copy_length, copy_until_close, BodyError};
use super::turn;
use super::wake::reached;
use super::Engine;
use crate::dial::may_resend;
use crate::metrics::Outcome;
use crate::upstream::{is_connection_limit, UpstreamConn};

/// How an exchange left the client connection.
pub enum After {
    /// Ready for the next request.
    KeepAlive,
    /// To be closed.
    Close,
    /// To be closed once what the client still sends was read and dropped
    /// for a moment (its body may be unread).
    Linger,
    /// Switched protocols: a tunnel from now on.
    Upgrade(UpstreamConn, Buffer, TunnelKind),
    /// Cut at the drain's deadline.
    Cut,
    /// Given to hyper's server (`Upgrade: h2c`).
    HandOver,
    /// Refused before the upstream saw it, and answered: to be closed
    /// after a linger.
    Refused(StatusCode),
}

/// What the upstream side of an exchange came to.
enum Failure {
    /// No answer in time once the request was sent.
    Timeout(Duration),
    /// The upstream could not be reached, or failed.
    Upstream(io::Error),
    /// The client's body was malformed: its fault (400).
    BadBody,
    /// The client went away mid-request: nobody to answer.
    ClientGone,
    /// An answer (or part of one) went out already: only closing is left.
    Answered,
}

/// Forwards the request `head` (read into `buf`) and its answer.
pub async fn exchange(
    engine: &Engine,
    client: &TcpStream,
    buf: &mut Buffer,
    head: &RequestHead,
    peer_ip: IpAddr,
    closing: impl Fn() -> bool,
) -> io::Result<After> {
    let request = heads::upstream_request(buf.bytes(), head, peer_ip, &engine.upstream);
    // Kept for the failure's log line only: the parser took the method as a
    // token already, and a standard one is no allocation per request.
    let method = http::Method::from_bytes(&buf.bytes()[head.method.clone()]);
    let method = method.as_ref().map_or("?", http::Method::as_str);
    buf.consume(head.len);
    // Nothing more read from the client (the usual request without a
    // body): its buffer goes back now and is the one the answer is read
    // into, so an exchange holds one buffer, not two.
    buf.release_if_empty();
    let has_body = head.body != Framing::Length(0);
    let mut upstream = match checkout(engine, false).await {
        Ok((conn, _)) => conn,
        Err(failure) => return failed(engine, client, head, failure, method, &closing).await,
    };
    let mut resent = false;
    if head.expect_continue && has_body && buf.is_empty() {
        write_all(client, &mut [IoSlice::new(heads::CONTINUE)]).await?;
    }
    let limit = engine.upstream_timeout.filter(|_| !head.grpc);
    let trip = Trip {
        engine,
        client,
        head,
        request: &request,
        limit,
        closing: &closing,
        write_failed: AtomicBool::new(false),
    };
    loop {
        let mut rbuf = Buffer::empty();
        trip.write_failed.store(false, Ordering::Relaxed);
        match trip.run(buf, &upstream, &mut rbuf).await {
            Ok(Done::Finished { keep_client, reuse }) => {
                if reuse && rbuf.is_empty() {
                    engine.connector.checkin(upstream);
                }
                return Ok(if keep_client {
                    After::KeepAlive
                } else {
                    After::Close
                });
            }
            Ok(Done::Upgraded(kind)) => {
                return Ok(After::Upgrade(upstream, std::mem::take(buf), kind));
            }
            // The connection closed before any byte of the answer (a kept
            // one the app closed just as it was taken, a new one a closing
            // listener reset): sent again, once, on a new connection when
            // that is safe (`may_resend`), else answered 502.
            Err(Failure::Upstream(e))
                if !resent
                    && rbuf.is_empty()
                    && may_resend(
                        method.as_bytes(),
                        has_body,
                        !trip.write_failed.load(Ordering::Relaxed),
                    ) =>
            {
                debug!(error = %e, method, "the upstream connection closed before answering: sending again on a new one");
                resent = true;
                upstream = match checkout(engine, true).await {
                    Ok((conn, _)) => conn,
                    Err(failure) => {
                        return failed(engine, client, head, failure, method, &closing).await
                    }
                };
            }
            Err(Failure::Answered) => return Ok(After::Close),
            Err(failure) => return failed(engine, client, head, failure, method, &closing).await,
        }
    }
}

/// A connection for the request: a kept one unless `fresh`.
async fn checkout(engine: &Engine, fresh: bool) -> Result<(UpstreamConn, bool), Failure> {
    engine
        .connector
        .checkout(fresh)
        .await
        .map_err(Failure::Upstream)
}

/// How a round trip ended well.
enum Done {
    /// The answer went to the client.
    Finished {
        /// Whether the client connection takes another request.
        keep_client: bool,
        /// Whether the upstream connection may serve another.
        reuse: bool,
    },
    /// A `101` went to the client: a tunnel follows.
    Upgraded(TunnelKind),
}

/// What one round trip needs besides its buffers.
struct Trip<'a, C> {
    engine: &'a Engine,
    client: &'a TcpStream,
    head: &'a RequestHead,
    request: &'a [u8],
    limit: Option<Duration>,
    closing: &'a C,
    /// Whether the request's first write failed: it never reached the app.
    write_failed: AtomicBool,
}

impl<C: Fn() -> bool> Trip<'_, C> {
    /// The head and body out, the answer in and on to the client, both
    /// ways at once (an app may answer while it reads, as an echo does).
    async fn run(
        &self,
        buf: &mut Buffer,
        upstream: &UpstreamConn,
        rbuf: &mut Buffer,
    ) -> Result<Done, Failure> {
        let (client, head) = (self.client, self.head);
        let up = upstream.stream();
        let max_head = self.engine.limits.max_head.max(64 * 1024);
        let mut body = pin!(async {
            let first = match head.body {
                Framing::Length(n) => {
                    let take = usize::try_from(n)
                        .unwrap_or(usize::MAX)
                        .min(buf.bytes().len());
                    &buf.bytes()[..take]
                }
                _ => &[],
            };
            let taken = first.len();
            // With the other requests of this turn (`turn`).
            turn::next_turn().await;
            write_all(up, &mut [IoSlice::new(self.request), IoSlice::new(first)])
                .await
                .map_err(|e| {
                    self.write_failed.store(true, Ordering::Relaxed);
                    BodyError::Sink(e)
                })?;
            buf.consume(taken);
            match head.body {
                Framing::Length(n) => copy_length(client, buf, up, n - taken as u64).await,
                Framing::Chunked => copy_chunked(client, buf, up).await,
                Framing::UntilClose => Ok(()),
            }
        });
        let mut body_done = false;
        let mut body_whole = false;
        let mut deadline = None;
        let res = {
            let mut answer = pin!(read_response(up, rbuf, max_head, head.is_head));
            loop {
                tokio::select! {
                    biased;
                    res = &mut answer => break res.map_err(Failure::Upstream)?,
                    sent = &mut body, if !body_done => {
                        body_done = true;
                        body_whole = body_sent(sent)?;
                        deadline = self.limit.map(|l| self.engine.ticks.after(l));
                    }
                    // Read on the connection's wake-ups (`wake`), which the
                    // caller keeps registered: no timer per request.
                    () = reached(&self.engine.ticks, deadline.unwrap_or(u64::MAX)), if deadline.is_some() => {
                        return Err(Failure::Timeout(self.limit.unwrap_or_default()));
                    }
                }
            }
        };
        self.engine.metrics.outcome(match res.status {
            ..=399 => Outcome::Success,
            400..=499 => Outcome::ClientError,
            _ => Outcome::ServerError,
        });
        if res.status == 101 {
            let Some(kind) = head.upgrade_kind else {
                warn!(
                    path = head.path.path(),
                    "upstream switched protocols unasked: 502"
                );
                self.engine.metrics.outcome(Outcome::UpstreamError);
                let answer = heads::short(StatusCode::BAD_GATEWAY, "upstream unavailable\n", false);
                let _ = write_all(client, &mut [IoSlice::new(&answer)]).await;
                return Err(Failure::Answered);
            };
            let answer = heads::switching_protocols(rbuf.bytes(), &res);
            rbuf.consume(res.len);
            write_all(
                client,
                &mut [IoSlice::new(&answer), IoSlice::new(rbuf.bytes())],
            )
            .await
            .map_err(|_| Failure::Answered)?;
            let n = rbuf.bytes().len();
            rbuf.consume(n);
            return Ok(Done::Upgraded(kind));
        }
        let keep_alive = head.keep_alive && !(self.closing)();
        let (answer, outgoing) =
            heads::client_response(rbuf.bytes(), &res, head.http11, keep_alive);
        rbuf.consume(res.len);
        let mut respond = pin!(async {
            // The head and the body bytes read with it in one write: a
            // small answer is one system call, not two.
            let first = match (res.body, outgoing) {
                (Framing::Length(n), Outgoing::Length(_)) => {
                    let take = usize::try_from(n)
                        .unwrap_or(usize::MAX)
                        .min(rbuf.bytes().len());
                    &rbuf.bytes()[..take]
                }
                _ => &[],
            };
            let taken = first.len();
            write_all(client, &mut [IoSlice::new(&answer), IoSlice::new(first)])
                .await
                .map_err(BodyError::Sink)?;
            rbuf.consume(taken);
            match (res.body, outgoing) {
                (_, Outgoing::Empty) => Ok(()),
                (Framing::Length(n), _) => copy_length(up, rbuf, client, n - taken as u64).await,
                (Framing::Chunked, _) => copy_chunked(up, rbuf, client).await,
                (Framing::UntilClose, out) => {
                    copy_until_close(up, rbuf, client, out == Outgoing::Chunked).await
                }
            }
        });
        let mut responded = None;
        while responded.is_none() {
            tokio::select! {
                biased;
                sent = &mut body, if !body_done => {
                    body_done = true;
                    // Once the answer began, a broken body only ends the
                    // connection.
                    body_whole = body_sent(sent).unwrap_or(false);
                }
                r = &mut respond => responded = Some(r),
            }
        }
        if let Some(Err(e)) = responded {
            // The head went out: all that is left is to cut the client
            // short, so it sees the answer incomplete.
            debug!(path = head.path.path(), error = ?e, "the answer broke off");
            return Err(Failure::Answered);
        }
        Ok(Done::Finished {
            keep_client: keep_alive && body_whole && outgoing != Outgoing::UntilClose,
            reuse: res.keep_alive && body_whole,
        })
    }
}

/// Whether the request's body went whole to the upstream; the client's
/// failures end the exchange.
fn body_sent(sent: Result<(), BodyError>) -> Result<bool, Failure> {
    match sent {
        Ok(()) => Ok(true),
        Err(BodyError::Malformed(e)) => {
            debug!(error = %e, "the client's request body failed: 400");
            Err(Failure::BadBody)
        }
        Err(BodyError::Source(e)) => {
            debug!(error = %e, "the client went away during its request");
            Err(Failure::ClientGone)
        }
        // The upstream stopped reading: its answer may tell why.
        Err(BodyError::Sink(e)) => {
            debug!(error = %e, "upstream stopped reading the request");
            Ok(false)
        }
    }
}

/// Reads the answer's head, skipping interim (1xx) answers but `101`.
pub(super) async fn read_response(
    up: &TcpStream,
    rbuf: &mut Buffer,
    max_head: usize,
    head_request: bool,
) -> io::Result<ResponseHead> {
    loop {
        if !rbuf.is_empty() {
            let parsed = parse_response(rbuf.bytes(), max_head, head_request)
                .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
            if let Some(res) = parsed {
                if (100..200).contains(&res.status) && res.status != 101 {
                    rbuf.consume(res.len);
                    continue;
                }
                return Ok(res);
            }
        }
        if rbuf.read(up, max_head + 1).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "upstream closed the connection before answering",
            ));
        }
    }
}

/// The answer to a request that got none from the upstream, by whose
/// fault: the client's (400), the limit's (503), the app's (502, 504).
async fn failed(
    engine: &Engine,
    client: &TcpStream,
    head: &RequestHead,
    failure: Failure,
    method: &str,
    closing: &impl Fn() -> bool,
) -> io::Result<After> {
    let phase = engine.drain.phase();
    let path = head.path.path();
    let (status, body, outcome) = match failure {
        Failure::ClientGone | Failure::Answered => return Ok(After::Close),
        Failure::BadBody => (
            StatusCode::BAD_REQUEST,
            "malformed request body\n",
            Outcome::Rejected,
        ),
        Failure::Timeout(limit) => {
            warn!(method, path, %phase, timeout = ?limit, "upstream did not answer in time: 504");
            (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream timed out\n",
                Outcome::UpstreamTimeout,
            )
        }
        Failure::Upstream(e) if is_connection_limit(&e) => {
            warn!(method, path, %phase, "every upstream connection stayed busy: 503");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "every upstream connection is busy\n",
                Outcome::Overloaded,
            )
        }
        Failure::Upstream(e) => {
            if phase.is_stopping() {
                warn!(method, path, %phase, error = %e, "upstream failed while draining: 502");
            } else {
                warn!(method, path, error = %e, "upstream failed: 502");
            }
            (
                StatusCode::BAD_GATEWAY,
                "upstream unavailable\n",
                Outcome::UpstreamError,
            )
        }
    };
    engine.metrics.outcome(outcome);
    // The body may be unread: the connection cannot be trusted further
    // unless the request had none. Past the connection's age (or from
    // Draining on) the proxy's own answers close it as the app's do.
    let keep_alive = head.keep_alive && head.body == Framing::Length(0) && !closing();
    let answer = heads::short(status, body, keep_alive);
    write_all(client, &mut [IoSlice::new(&answer)]).await?;
    Ok(if keep_alive {
        After::KeepAlive
    } else {
        After::Linger
    })
}
