//! The ledger: every request's and every session's end, every pod's events,
//! on one clock. Answers are counted per interval; losses are kept one by
//! one, because each one is explained.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The width of one interval of the timeline.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Losses kept one by one; past this they are only counted.
const KEPT_LOSSES: usize = 100_000;

/// A pod's number: `pod-1`, `pod-2`, ... in the order they were created.
pub type PodId = usize;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestOutcome {
    /// A whole answer below 500.
    Ok,
    /// The connection was refused, or no pod took it.
    Refused,
    /// The connection was reset or closed before an answer began.
    Reset,
    /// No whole answer within the timeout.
    TimedOut,
    /// An answer of 500 or more.
    ServerError,
    /// The answer began but its body was cut.
    Truncated,
}

impl RequestOutcome {
    /// Every outcome, in the order tables show them.
    pub const ALL: [RequestOutcome; 6] = [
        RequestOutcome::Ok,
        RequestOutcome::Refused,
        RequestOutcome::Reset,
        RequestOutcome::TimedOut,
        RequestOutcome::ServerError,
        RequestOutcome::Truncated,
    ];

    /// The word tables and sentences use.
    pub fn label(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Refused => "refused",
            RequestOutcome::Reset => "reset",
            RequestOutcome::TimedOut => "timed out",
            RequestOutcome::ServerError => "5xx",
            RequestOutcome::Truncated => "truncated",
        }
    }
}

/// A request that was lost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LostRequest {
    /// When the loss was seen.
    #[serde(with = "crate::report::ms")]
    pub at: Duration,
    /// When the request was sent.
    #[serde(with = "crate::report::ms")]
    pub sent: Duration,
    /// How it ended.
    pub outcome: RequestOutcome,
    /// The pod the balancer sent its connection to, if any.
    pub pod: Option<PodId>,
    /// Whether the connection was new for this request.
    pub fresh_connection: bool,
    /// Whether the balancer reset it at the pod's removal.
    pub by_balancer: bool,
    /// What the client saw, in its words.
    pub detail: String,
}

/// How a long-lived session ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SessionEnd {
    /// Still open when the load stopped.
    StillOpen,
    /// The server said goodbye: WebSocket close, or FIN with every message
    /// answered.
    Goodbye {
        /// The WebSocket close code, if any.
        code: Option<u16>,
    },
    /// Ended without a goodbye: reset, EOF mid-exchange, or no echo.
    Cut {
        /// What the client saw.
        detail: String,
        /// The balancer cut it (reset mode).
        by_balancer: bool,
    },
}

/// One long-lived session from open to end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    /// WebSocket or TCP.
    pub kind: crate::plan::SessionKind,
    /// The pod it was routed to.
    pub pod: Option<PodId>,
    /// When it opened.
    #[serde(with = "crate::report::ms")]
    pub opened: Duration,
    /// When it ended (the load's end when still open).
    #[serde(with = "crate::report::ms")]
    pub ended: Duration,
    /// Messages echoed back.
    pub echoes: u64,
    /// How it ended.
    pub end: SessionEnd,
}

/// Something that happened to a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PodEventKind {
    /// Its PID 1 started.
    Started {
        /// PID 1's name (`/proc/PID/comm`).
        pid1: String,
    },
    /// Its readiness probe passed.
    Ready {
        /// PID 1's name by then (a wrapper may have executed the app).
        pid1: String,
    },
    /// Its readiness probe failed `failureThreshold` times in a row.
    NotReady,
    /// The balancer began sending it new connections.
    EndpointAdded,
    /// The pod was deleted: marked terminating.
    Terminating,
    /// The balancer stopped sending it new connections.
    EndpointRemoved,
    /// The preStop hook began.
    PreStopStarted,
    /// The preStop hook ended.
    PreStopEnded {
        /// Its exit code, or a note of how it failed.
        result: String,
    },
    /// The stop signal was sent to PID 1.
    StopSignal {
        /// The signal.
        signal: String,
        /// PID 1's name when it was sent.
        pid1: String,
        /// Whether PID 1 had a handler for it; without one the kernel drops
        /// a signal sent to a namespace's init process.
        handled: bool,
    },
    /// A `lameduck run` inside the pod started, with this timing (its
    /// start-up log line).
    LameduckRun {
        /// Its drain delay.
        #[serde(with = "crate::report::ms")]
        drain_delay: Duration,
        /// Why that long, in its words.
        drain_delay_source: String,
        /// The grace period it plans for.
        #[serde(with = "crate::report::ms")]
        grace_period: Duration,
    },
    /// The grace period ran out: SIGKILL.
    Killed,
    /// The pod ran to the end of the rehearsal and was stopped with it.
    Kept,
    /// PID 1 exited.
    Exited {
        /// `exit N` or `signal N`.
        status: String,
    },
}

/// A pod event at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodEvent {
    /// When.
    #[serde(with = "crate::report::ms")]
    pub at: Duration,
    /// Which pod.
    pub pod: PodId,
    /// What.
    pub event: PodEventKind,
}

/// Answers and losses in one interval.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Bucket {
    /// Whole answers below 500.
    pub ok: u32,
    /// Every other outcome.
    pub lost: u32,
}

/// Everything recorded; taken out of the [`Ledger`] at the end.
#[derive(Debug, Default)]
pub struct Records {
    /// Requests by outcome, in the order of [`RequestOutcome::ALL`].
    pub counts: [u64; 6],
    /// Lost requests (at most 100,000 kept).
    pub lost: Vec<LostRequest>,
    /// Sessions.
    pub sessions: Vec<SessionRecord>,
    /// Pod events in time order.
    pub events: Vec<PodEvent>,
    /// The timeline, one bucket per [`INTERVAL`].
    pub buckets: Vec<Bucket>,
    /// When the load began.
    pub load_started: Option<Duration>,
    /// When the last client of the load had stopped.
    pub load_stopped: Option<Duration>,
}

/// Where everything is written while the rehearsal runs.
#[derive(Debug)]
pub struct Ledger {
    start: Instant,
    records: Mutex<Records>,
}

impl Ledger {
    /// A ledger whose clock starts now.
    pub fn new() -> Ledger {
        Ledger {
            start: Instant::now(),
            records: Mutex::new(Records::default()),
        }
    }

    /// The time since the rehearsal began.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic while holding this lock would be a bug elsewhere; the
        // counts themselves stay consistent, so go on with them.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an answered request.
    pub fn ok(&self) {
        let at = self.now();
        let mut r = self.records();
        r.counts[0] += 1;
        bucket(&mut r.buckets, at).ok += 1;
    }

    /// Records a lost request.
    pub fn lost(&self, loss: LostRequest) {
        let mut r = self.records();
        r.counts[RequestOutcome::ALL
            .iter()
            .position(|o| *o == loss.outcome)
            .unwrap_or(0)] += 1;
        bucket(&mut r.buckets, loss.at).lost += 1;
        if r.lost.len() < KEPT_LOSSES {
            r.lost.push(loss);
        }
    }

    /// Records a session's end.
    pub fn session(&self, session: SessionRecord) {
        self.records().sessions.push(session);
    }

    /// Records a pod event now.
    pub fn event(&self, pod: PodId, event: PodEventKind) {
        let at = self.now();
        tracing::debug!(pod = %crate::pod_name(pod), ?event, at_ms = at.as_millis() as u64, "pod event");
        self.records().events.push(PodEvent { at, pod, event });
    }

    /// Marks the start of the load.
    pub fn load_started(&self) {
        let at = self.now();
        self.records().load_started = Some(at);
    }

    /// Marks the end of the load.
    pub fn load_stopped(&self) {
        let at = self.now();
        self.records().load_stopped = Some(at);
    }

    /// Requests so far: answered and lost.
    pub fn totals(&self) -> (u64, u64) {
        let r = self.records();
        (r.counts[0], r.counts[1..].iter().sum())
    }

    /// Takes the records out, in time order.
    pub fn take(&self) -> Records {
        let mut r = std::mem::take(&mut *self.records());
        r.events.sort_by_key(|e| e.at);
        r.lost.sort_by_key(|l| l.at);
        r.sessions.sort_by_key(|s| s.opened);
        r
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

fn bucket(buckets: &mut Vec<Bucket>, at: Duration) -> &mut Bucket {
    let i = (at.as_millis() / INTERVAL.as_millis()) as usize;
    if buckets.len() <= i {
        buckets.resize(i + 1, Bucket::default());
    }
    &mut buckets[i]
}
