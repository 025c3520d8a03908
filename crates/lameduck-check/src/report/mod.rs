//! What a rehearsal found: counts, explained losses, each pod's events and
//! the timeline; written as a table, as JSON (`--json`) and as a page
//! (`--report`).

mod html;
mod summary;

use std::time::Duration;

use serde::Serialize;

use crate::diagnose::Finding;
use crate::ledger::{Bucket, LostRequest, PodEvent, Records, SessionEnd, SessionRecord, INTERVAL};
use crate::plan::Plan;
use crate::timeline::PodLife;

pub use html::render as html;
pub use summary::render as summary;

/// Durations as milliseconds in JSON.
pub fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Optional durations as milliseconds (or null) in JSON.
pub fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_ms(d, s),
        None => s.serialize_none(),
    }
}

/// Requests by how they ended.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RequestCounts {
    /// Sent.
    pub total: u64,
    /// Whole answers below 500.
    pub ok: u64,
    /// Refused, or no pod routed.
    pub refused: u64,
    /// Reset or closed before an answer.
    pub reset: u64,
    /// No whole answer in time.
    pub timed_out: u64,
    /// Answers of 500 or more.
    pub server_error: u64,
    /// Answers cut short.
    pub truncated: u64,
}

impl RequestCounts {
    /// Requests lost.
    pub fn lost(&self) -> u64 {
        self.total - self.ok
    }
}

/// Long sessions by how they ended.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct SessionCounts {
    /// Sessions opened (reconnections included).
    pub opened: u64,
    /// Open when the load stopped.
    pub still_open: u64,
    /// Closed by the server with a goodbye; the client reconnected.
    pub goodbye: u64,
    /// Cut without one.
    pub cut: u64,
}

/// One pod in the report.
#[derive(Clone, Debug, Serialize)]
pub struct PodReport {
    /// `pod-N`.
    pub name: String,
    /// Where its app listened.
    pub address: String,
    /// Its life.
    pub life: PodLife,
    /// Its events.
    pub events: Vec<PodEvent>,
    /// The last lines it wrote.
    pub logs: Vec<String>,
}

/// The whole result of a rehearsal.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The lameduck version that ran it.
    pub version: &'static str,
    /// What was rehearsed.
    pub plan: Plan,
    /// Where the balancer listened.
    pub balancer: String,
    /// What became of every connection through the balancer, the
    /// rehearsal's own and any other client's.
    pub connections: crate::balancer::StatsSnapshot,
    /// How long it took.
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
    /// One sentence: nothing lost, or what was.
    pub verdict: String,
    /// Whether anything was lost.
    pub lost: bool,
    /// Requests.
    pub requests: RequestCounts,
    /// Sessions.
    pub sessions: SessionCounts,
    /// Explained losses, the largest first.
    pub findings: Vec<Finding>,
    /// Every pod.
    pub pods: Vec<PodReport>,
    /// The width of a timeline interval.
    #[serde(serialize_with = "ser_ms")]
    pub interval: Duration,
    /// Answers and losses per interval.
    pub timeline: Vec<Bucket>,
    /// Every lost request (up to 100,000).
    pub lost_requests: Vec<LostRequest>,
    /// Every session.
    pub session_list: Vec<SessionRecord>,
}

impl Report {
    /// Builds the report from what was recorded.
    pub fn build(
        plan: Plan,
        balancer: String,
        connections: crate::balancer::StatsSnapshot,
        duration: Duration,
        records: Records,
        pods: Vec<(String, String, Vec<String>)>,
    ) -> Report {
        let lives = PodLife::from_events(&records.events);
        let findings = crate::diagnose::diagnose(&plan, &lives, &records.lost, &records.sessions);
        let c = records.counts;
        let requests = RequestCounts {
            total: c.iter().sum(),
            ok: c[0],
            refused: c[1],
            reset: c[2],
            timed_out: c[3],
            server_error: c[4],
            truncated: c[5],
        };
        let mut sessions = SessionCounts::default();
        for s in &records.sessions {
            sessions.opened += 1;
            match s.end {
                SessionEnd::StillOpen => sessions.still_open += 1,
                SessionEnd::Goodbye { .. } => sessions.goodbye += 1,
                SessionEnd::Cut { .. } => sessions.cut += 1,
            }
        }
        let lost = requests.lost() > 0 || sessions.cut > 0;
        let verdict = verdict(&requests, &sessions);
        let pods = pods
            .into_iter()
            .enumerate()
            .map(|(i, (name, address, logs))| {
                let id = i + 1;
                PodReport {
                    name,
                    address,
                    life: lives
                        .iter()
                        .find(|l| l.pod == id)
                        .cloned()
                        .unwrap_or_default(),
                    events: records
                        .events
                        .iter()
                        .filter(|e| e.pod == id)
                        .cloned()
                        .collect(),
                    logs,
                }
            })
            .collect();
        Report {
            version: env!("CARGO_PKG_VERSION"),
            plan,
            balancer,
            connections,
            duration,
            verdict,
            lost,
            requests,
            sessions,
            findings,
            pods,
            interval: INTERVAL,
            timeline: records.buckets,
            lost_requests: records.lost,
            session_list: records.sessions,
        }
    }
}

fn verdict(requests: &RequestCounts, sessions: &SessionCounts) -> String {
    let mut lost = Vec::new();
    if requests.lost() > 0 {
        let kinds: Vec<String> = [
            (requests.refused, "refused"),
            (requests.reset, "reset"),
            (requests.timed_out, "timed out"),
            (requests.server_error, "5xx"),
            (requests.truncated, "truncated"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        lost.push(format!(
            "{} of {} requests ({})",
            requests.lost(),
            requests.total,
            kinds.join(", ")
        ));
    }
    if sessions.cut > 0 {
        lost.push(format!(
            "{} of {} long sessions cut",
            sessions.cut, sessions.opened
        ));
    }
    if lost.is_empty() {
        let mut kept = Vec::new();
        if requests.total > 0 {
            kept.push(format!(
                "{} of {} requests answered",
                requests.ok, requests.total
            ));
        }
        if sessions.opened > 0 {
            kept.push(format!(
                "{} long sessions kept or closed with a goodbye",
                sessions.opened
            ));
        }
        format!("nothing lost: {}", kept.join(", "))
    } else {
        format!("lost {}", lost.join(" and "))
    }
}
