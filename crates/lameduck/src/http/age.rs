//! Connections renewed after an age: gRPC's MaxConnectionAge and
//! MaxConnectionAgeGrace (gRFC A9,
//! <https://github.com/grpc/proposal/blob/master/A9-server-side-conn-mgt.md>).
//!
//! A client that holds its connections for long (gRPC channels, HTTP/2
//! clients, HTTP/1.1 keep-alive pools) stays on the pods it first reached:
//! after a scale-up the new pods get no share of it. Past its age, a
//! connection is told to move the way the drain tells it at `Draining`
//! (`Connection: close` on the next HTTP/1.1 answer, the two-phase GOAWAY
//! on HTTP/2), and the client opens a new one, which its balancer may send
//! to a new pod. Each connection's age is drawn within ±10% of the one
//! configured, so connections opened together (a fleet's, at a rollout) do
//! not all renew at once.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::time::Duration;

use lameduck_core::duration::deadline_after;
use lameduck_core::MAX_DURATION;
use tokio::time::{sleep_until, Instant, Sleep};

use super::HttpServer;

impl HttpServer {
    /// When a connection accepted now reaches its age: `now` plus
    /// [`HttpServer::max_connection_age`] give or take 10%, drawn for each
    /// connection. `None` when connections are kept for their life.
    pub fn age_deadline(&self) -> Option<Instant> {
        let age = self.max_connection_age?.min(MAX_DURATION);
        let now = Instant::now();
        Some(deadline_after(now.into_std(), jittered(age, now)).into())
    }
}

/// `age` scaled by a factor in [0.9, 1.1]. The spread only has to differ
/// between connections, not resist prediction: std's `RandomState` (keys
/// drawn once per thread, then stepped at each call) hashing the clock is
/// enough, and needs no random-number crate.
fn jittered(age: Duration, now: Instant) -> Duration {
    let draw = RandomState::new().hash_one(now);
    // 53 bits make an f64 in [0, 1) exactly.
    let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
    age.mul_f64(0.9 + 0.2 * unit)
}

/// One connection's age timer: first the age, then, when a grace is set,
/// the end of the grace. Built only when the server has an age: a server
/// without one keeps no timer and pays nothing per connection, and one
/// with an age keeps one timer per connection, never one per request.
pub(crate) struct AgeTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    grace: Option<Duration>,
    reached: bool,
}

/// What the timer came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AgeEvent {
    /// The connection reached its age: tell the client to move.
    Reached,
    /// The grace after the age is over: close, whatever is in flight.
    GraceOver,
}

impl AgeTimer {
    /// A timer for a connection that reaches its age `at`, then may keep
    /// what is in flight for `grace`.
    pub(crate) fn new(at: Instant, grace: Option<Duration>) -> Self {
        AgeTimer {
            sleep: Some(Box::pin(sleep_until(at))),
            grace,
            reached: false,
        }
    }

    /// Resolves at the next event; never when there is none left.
    pub(crate) async fn next(&mut self) -> AgeEvent {
        let Some(sleep) = self.sleep.as_mut() else {
            return std::future::pending().await;
        };
        sleep.await;
        if self.reached {
            self.sleep = None;
            return AgeEvent::GraceOver;
        }
        self.reached = true;
        self.sleep = self.grace.map(|grace| {
            let end = deadline_after(Instant::now().into_std(), grace);
            Box::pin(sleep_until(end.into()))
        });
        AgeEvent::Reached
    }
}

/// Polls `timer` if there is one: a connection without an age polls a
/// ready-made pending future, never a clock.
pub(crate) async fn next_event(timer: &mut Option<AgeTimer>) -> AgeEvent {
    match timer {
        Some(timer) => timer.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_spread_within_ten_percent_either_way() {
        let age = Duration::from_secs(100);
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let d = jittered(age, Instant::now());
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
            seen.push(d);
        }
        seen.sort();
        // Spread, not one value: the draws cover most of the 20s window.
        assert!(seen[999] - seen[0] > Duration::from_secs(15), "{seen:?}");
    }

    #[tokio::test]
    async fn without_an_age_there_is_no_deadline_and_the_longest_one_does_not_overflow() {
        let server = HttpServer::default();
        assert_eq!(server.age_deadline(), None);
        let longest = HttpServer {
            max_connection_age: Some(Duration::MAX),
            ..HttpServer::default()
        };
        assert!(longest.age_deadline().is_some());
    }
}
