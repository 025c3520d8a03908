//! What a rehearsal found: counts, explained losses, each pod's events and
//! the timeline; written as a table, as JSON (`--json`) and as a page
//! (`--report`).

mod chart;
pub mod compare;
mod events;
mod html;
mod summary;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnose::Finding;
use crate::diagnose::Severity;
use crate::ledger::{Bucket, LostRequest, PodEvent, Records, SessionEnd, SessionRecord, INTERVAL};
use crate::plan::Plan;
use crate::timeline::PodLife;

pub use html::render as html;
pub use summary::render as summary;

/// Durations as milliseconds in JSON, and back (`--compare` reads reports).
pub mod ms {
    use std::time::Duration;

    use serde::Deserialize;

    /// Milliseconds, to the microsecond.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
    }

    /// Milliseconds, finite and not negative.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1e3).map_err(serde::de::Error::custom)
    }
}

/// Optional durations as milliseconds (or null) in JSON, and back.
pub mod opt_ms {
    use std::time::Duration;

    use serde::Deserialize;

    /// Milliseconds or null.
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ms::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Milliseconds or null.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|ms| Duration::try_from_secs_f64(ms / 1e3).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Requests by how they ended.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
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

/// What the load did against what was asked.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// `--rps`, if given.
    pub asked_rps: Option<u32>,
    /// Requests per second reached over the time the load ran.
    pub reached_rps: f64,
    /// How long the load ran.
    #[serde(with = "ms")]
    pub duration: Duration,
    /// Whether it fell more than [`SHORTFALL`] short of `--rps`: the app or
    /// this machine could not take more, and the rehearsal tested less than
    /// was asked.
    pub shortfall: bool,
}

/// How far below `--rps` the load may fall before the summary says so.
pub const SHORTFALL: f64 = 0.10;

impl LoadReport {
    fn new(plan: &Plan, records: &Records, total: u64) -> LoadReport {
        let duration = match (records.load_started, records.load_stopped) {
            (Some(start), Some(stop)) if stop > start => stop - start,
            _ => Duration::ZERO,
        };
        let reached_rps = if duration.is_zero() {
            0.0
        } else {
            total as f64 / duration.as_secs_f64()
        };
        let asked_rps = plan.http.rps.filter(|_| plan.http.clients > 0);
        // A load that stopped at --max-requests sent what was asked.
        let stopped_early = plan.http.max_requests.is_some_and(|max| total >= max);
        let shortfall = asked_rps
            .is_some_and(|asked| reached_rps < f64::from(asked) * (1.0 - SHORTFALL))
            && !stopped_early;
        LoadReport {
            asked_rps,
            reached_rps,
            duration,
            shortfall,
        }
    }

    /// "reached 52 requests/s of the 200 asked (--rps)", when short.
    pub fn shortfall_text(&self) -> Option<String> {
        let asked = self.asked_rps.filter(|_| self.shortfall)?;
        Some(format!(
            "the load reached {:.0} requests/s of the {asked} asked (--rps): the app or this machine took no more, so the rehearsal tested less traffic than asked; add --clients, or lower --rps",
            self.reached_rps
        ))
    }
}

/// One pod in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The lameduck version that ran it.
    pub version: String,
    /// What was rehearsed.
    pub plan: Plan,
    /// Where the balancer listened.
    pub balancer: String,
    /// What became of every connection through the balancer, the
    /// rehearsal's own and any other client's.
    pub connections: crate::balancer::StatsSnapshot,
    /// How long it took.
    #[serde(with = "ms")]
    pub duration: Duration,
    /// One sentence: nothing lost, or what was.
    pub verdict: String,
    /// Whether anything was lost.
    pub lost: bool,
    /// Whether the rehearsal failed: something lost, or a pod killed at
    /// its deadline.
    pub failed: bool,
    /// What the load did.
    pub load: LoadReport,
    /// Requests.
    pub requests: RequestCounts,
    /// Sessions.
    pub sessions: SessionCounts,
    /// Explained losses, the largest first.
    pub findings: Vec<Finding>,
    /// Every pod.
    pub pods: Vec<PodReport>,
    /// The width of a timeline interval.
    #[serde(with = "ms")]
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
        let killed: Vec<&str> = findings
            .iter()
            .filter(|f| f.severity == Severity::Kill)
            .filter_map(|f| f.pod.as_deref())
            .collect();
        let failed = lost || !killed.is_empty();
        let mut verdict = verdict(&requests, &sessions);
        if !killed.is_empty() {
            verdict.push_str(&format!(
                "; {} killed (SIGKILL) at the end of the grace period",
                killed.join(", ")
            ));
        }
        let load = LoadReport::new(&plan, &records, requests.total);
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
            version: env!("CARGO_PKG_VERSION").to_string(),
            plan,
            balancer,
            connections,
            duration,
            verdict,
            lost,
            failed,
            load,
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
