//! The timeline: answers and losses per interval as bars, and one lane per
//! pod with its life and its events as marks, on a scale given from outside
//! so that two runs compared side by side share it.

use std::fmt::Write;
use std::time::Duration;

use super::html::esc;
use super::Report;
use crate::ledger::PodEventKind;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const CHART: f64 = 180.0;
const LANE: f64 = 26.0;

/// The scales of a timeline: its length and the tallest bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// The time the x axis spans.
    pub span: Duration,
    /// Requests in the tallest interval.
    pub peak: u32,
}

impl Scale {
    /// The scale that fits every one of `reports`.
    pub fn fitting<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Scale {
        let mut scale = Scale {
            span: Duration::ZERO,
            peak: 1,
        };
        for r in reports {
            scale.span = scale.span.max(r.duration);
            let peak = r.timeline.iter().map(|b| b.ok + b.lost).max().unwrap_or(0);
            scale.peak = scale.peak.max(peak);
        }
        scale
    }
}

/// The class of an event's mark on the lane, `None` for events with none.
fn marker_class(event: &PodEventKind) -> Option<&'static str> {
    Some(match event {
        PodEventKind::Ready { .. } => "ready",
        PodEventKind::EndpointAdded => "added",
        PodEventKind::Terminating => "deleted",
        PodEventKind::EndpointRemoved => "removed",
        PodEventKind::PreStopStarted | PodEventKind::PreStopEnded { .. } => "prestop",
        PodEventKind::StopSignal { .. } => "signal",
        PodEventKind::Killed => "killed",
        PodEventKind::Exited { .. } => "exited",
        _ => return None,
    })
}

/// The legend of every mark and colour the timeline uses.
pub const LEGEND: &str = "<p class=\"legend\"><span class=\"key ok\"></span> answered \
<span class=\"key loss\"></span> lost (bar; a dot or square on a pod's lane: a lost request or cut session) \
<span class=\"key alive\"></span> pod running \
<span class=\"key ending\"></span> terminating \
<span class=\"key ready\"></span> ready \
<span class=\"key added\"></span> endpoint added \
<span class=\"key deleted\"></span> deleted \
<span class=\"key prestop\"></span> preStop \
<span class=\"key signal\"></span> stop signal \
<span class=\"key removed\"></span> endpoint removed \
<span class=\"key killed\"></span> SIGKILL \
<span class=\"key exited\"></span> exited</p>";

/// The timeline of `report` on `scale`, as an inline SVG.
pub fn timeline(report: &Report, scale: Scale) -> String {
    let end = scale.span.max(Duration::from_millis(100));
    let span = end.as_secs_f64();
    let x = |t: Duration| LEFT + (t.as_secs_f64() / span).min(1.0) * (WIDTH - LEFT - 10.0);
    let lanes = report.pods.len() as f64;
    let height = CHART + 30.0 + lanes * LANE + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"timeline\" data-span=\"{:.1}\" data-peak=\"{}\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"requests per interval and pod events\">",
        span,
        scale.peak
    );
    // Bars: answers (stacked under losses) per interval.
    let peak = f64::from(scale.peak.max(1));
    let step = report.interval;
    let bar_w = ((x(step) - x(Duration::ZERO)) - 1.0).max(1.0);
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"12\" class=\"axis\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{CHART}\" class=\"axis\" text-anchor=\"end\">0</text>",
        LEFT - 6.0,
        peak as u64,
        LEFT - 6.0
    );
    let _ = write!(
        svg,
        "<text x=\"12\" y=\"{}\" class=\"axis\" transform=\"rotate(-90 12 {})\">per {} ms</text>",
        CHART / 2.0 + 30.0,
        CHART / 2.0,
        step.as_millis()
    );
    for (i, b) in report.timeline.iter().enumerate() {
        let t = step * i as u32;
        let x0 = x(t);
        let ok_h = f64::from(b.ok) / peak * (CHART - 10.0);
        let lost_h = f64::from(b.lost) / peak * (CHART - 10.0);
        if b.ok > 0 {
            let _ = write!(
                svg,
                "<rect class=\"bar ok\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{ok_h:.1}\"><title>{:.1}s: {} answered</title></rect>",
                CHART - ok_h,
                t.as_secs_f64(),
                b.ok
            );
        }
        if b.lost > 0 {
            let h = lost_h.max(3.0);
            let _ = write!(
                svg,
                "<rect class=\"bar loss\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\"><title>{:.1}s: {} lost</title></rect>",
                CHART - ok_h - h,
                t.as_secs_f64(),
                b.lost
            );
        }
    }
    // The time axis.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{CHART}\" x2=\"{}\" y2=\"{CHART}\" class=\"grid\"/>",
        WIDTH - 10.0
    );
    let tick = if span > 60.0 {
        10.0
    } else if span > 20.0 {
        5.0
    } else {
        1.0
    };
    let mut s = 0.0;
    while s <= span {
        let tx = x(Duration::from_secs_f64(s));
        let _ = write!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{CHART}\" x2=\"{tx:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{tx:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{s}s</text>",
            CHART + 4.0,
            CHART + 16.0
        );
        s += tick;
    }
    // One lane per pod: alive, terminating, events, losses.
    for (i, pod) in report.pods.iter().enumerate() {
        let y = CHART + 30.0 + i as f64 * LANE;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"lane\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 14.0,
            esc(&pod.name)
        );
        let start = pod.events.first().map_or(Duration::ZERO, |e| e.at);
        let exit = pod.life.exited.unwrap_or(report.duration).min(end);
        let _ = write!(
            svg,
            "<rect class=\"alive\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\"/>",
            x(start),
            y + 4.0,
            (x(exit) - x(start)).max(1.0)
        );
        if let Some(t) = pod.life.terminating {
            let _ = write!(
                svg,
                "<rect class=\"ending\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\"/>",
                x(t),
                y + 4.0,
                (x(exit) - x(t)).max(1.0)
            );
        }
        for e in &pod.events {
            let Some(class) = marker_class(&e.event) else {
                continue;
            };
            let (label, detail) = super::events::describe(&e.event);
            let label = if detail.is_empty() {
                label.to_string()
            } else {
                format!("{label}: {detail}")
            };
            let ex = x(e.at);
            let _ = write!(
                svg,
                "<line class=\"marker {class}\" x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{:.1}\"><title>{} {:.3}s: {}</title></line>",
                y,
                y + 20.0,
                esc(&pod.name),
                e.at.as_secs_f64(),
                esc(&label)
            );
        }
        let id = i + 1;
        for l in report.lost_requests.iter().filter(|l| l.pod == Some(id)) {
            let _ = write!(
                svg,
                "<circle class=\"lossmark\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"><title>{:.3}s: {} ({})</title></circle>",
                x(l.at),
                y + 10.0,
                l.at.as_secs_f64(),
                l.outcome.label(),
                esc(&l.detail)
            );
        }
        for s in report.session_list.iter().filter(|s| s.pod == Some(id)) {
            if let crate::ledger::SessionEnd::Cut { detail, .. } = &s.end {
                let _ = write!(
                    svg,
                    "<rect class=\"lossmark\" x=\"{:.1}\" y=\"{:.1}\" width=\"5\" height=\"5\"><title>{:.3}s: {} session cut ({})</title></rect>",
                    x(s.ended) - 2.5,
                    y + 7.5,
                    s.ended.as_secs_f64(),
                    s.kind,
                    esc(detail)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}
