//! The report page: one self-contained HTML file (inline SVG and style, no
//! network) with the timeline (answers and losses per interval, each pod's
//! events as markers), the findings, the counts and each pod's last output.

use std::fmt::Write;
use std::time::Duration;

use super::Report;
use crate::ledger::PodEventKind;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const CHART: f64 = 180.0;
const LANE: f64 = 26.0;

/// Escapes text for HTML content and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut page = String::new();
    let title = format!("lameduck check: {}", report.verdict);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        page,
        "<h1>lameduck check</h1><p class=\"verdict {}\" id=\"verdict\">{}</p>",
        if report.lost { "lost" } else { "ok" },
        esc(&report.verdict)
    );
    let p = &report.plan;
    let _ = write!(
        page,
        "<p class=\"plan\">{} of {} replicas · balancer {} · endpoint lag {} · grace period {}{} · command <code>{}</code></p>",
        match p.scenario {
            crate::plan::Scenario::Rolling => "rolling update",
            crate::plan::Scenario::Delete => "deletion of one",
        },
        p.replicas,
        p.balancer,
        lameduck_core::format_duration(p.endpoint_lag),
        lameduck_core::format_duration(p.grace_period),
        p.pre_stop
            .as_ref()
            .map(|s| format!(" · preStop <code>{}</code>", esc(s)))
            .unwrap_or_default(),
        esc(&p.command.join(" "))
    );
    page.push_str("<h2>Timeline</h2>");
    page.push_str(&timeline(report));
    page.push_str(LEGEND);
    findings(&mut page, report);
    counts(&mut page, report);
    pods(&mut page, report);
    let _ = writeln!(page, "<script>{SCRIPT}</script></body></html>");
    page
}

fn timeline(report: &Report) -> String {
    let end = report.duration.max(Duration::from_millis(100));
    let span = end.as_secs_f64();
    let x = |t: Duration| LEFT + (t.as_secs_f64() / span).min(1.0) * (WIDTH - LEFT - 10.0);
    let lanes = report.pods.len() as f64;
    let height = CHART + 30.0 + lanes * LANE + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"requests per interval and pod events\">"
    );
    // Bars: answers (stacked under losses) per interval.
    let peak = report
        .timeline
        .iter()
        .map(|b| b.ok + b.lost)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
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
        let exit = pod.life.exited.unwrap_or(end);
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
            let (class, label) = match &e.event {
                PodEventKind::Ready { .. } => ("ready", "ready".to_string()),
                PodEventKind::EndpointAdded => ("added", "endpoint added".to_string()),
                PodEventKind::Terminating => ("deleted", "deleted (terminating)".to_string()),
                PodEventKind::EndpointRemoved => ("removed", "endpoint removed".to_string()),
                PodEventKind::PreStopStarted => ("prestop", "preStop began".to_string()),
                PodEventKind::PreStopEnded { result } => {
                    ("prestop", format!("preStop ended: {result}"))
                }
                PodEventKind::StopSignal {
                    signal, handled, ..
                } => (
                    "signal",
                    format!(
                        "{signal} to PID 1{}",
                        if *handled {
                            ""
                        } else {
                            " (no handler: dropped)"
                        }
                    ),
                ),
                PodEventKind::Killed => ("killed", "SIGKILL".to_string()),
                PodEventKind::Exited { status } => ("exited", format!("exited: {status}")),
                _ => continue,
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

fn findings(page: &mut String, report: &Report) {
    if report.findings.is_empty() {
        page.push_str("<h2>Findings</h2><p>No request was lost and no session was cut.</p>");
        return;
    }
    page.push_str("<h2>Findings</h2><ol class=\"findings\">");
    for f in &report.findings {
        let _ = write!(
            page,
            "<li><strong>{}</strong><br><span class=\"why\">Why: {}</span><br><span class=\"fix\">Fix: {}</span></li>",
            esc(&f.what),
            esc(&f.cause),
            esc(&f.fix)
        );
    }
    page.push_str("</ol>");
}

fn counts(page: &mut String, report: &Report) {
    let r = &report.requests;
    let _ = write!(
        page,
        "<h2>Counts</h2><table><tr><th>requests</th><th>ok</th><th>refused</th><th>reset</th><th>timed out</th><th>5xx</th><th>truncated</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        r.total, r.ok, r.refused, r.reset, r.timed_out, r.server_error, r.truncated
    );
    let s = &report.sessions;
    if s.opened > 0 {
        let _ = write!(
            page,
            "<table><tr><th>sessions</th><th>still open</th><th>goodbye</th><th>cut</th></tr>\
             <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
            s.opened, s.still_open, s.goodbye, s.cut
        );
    }
}

fn pods(page: &mut String, report: &Report) {
    page.push_str("<h2>Pods</h2>");
    for pod in &report.pods {
        let _ = write!(
            page,
            "<details><summary>{} · {} · PID 1 <code>{}</code></summary><ul>",
            esc(&pod.name),
            esc(&pod.address),
            esc(&pod.life.pid1)
        );
        for e in &pod.events {
            let what = serde_json::to_string(&e.event).unwrap_or_default();
            let _ = write!(page, "<li>{:.3}s {}</li>", e.at.as_secs_f64(), esc(&what));
        }
        page.push_str("</ul>");
        if !pod.logs.is_empty() {
            let _ = write!(page, "<pre>{}</pre>", esc(&pod.logs.join("\n")));
        }
        page.push_str("</details>");
    }
}

const LEGEND: &str = "<p class=\"legend\"><span class=\"key ok\"></span> answered \
<span class=\"key loss\"></span> lost \
<span class=\"key alive\"></span> pod running \
<span class=\"key ending\"></span> terminating \
<span class=\"key signal\"></span> stop signal \
<span class=\"key removed\"></span> endpoint removed \
<span class=\"key killed\"></span> SIGKILL</p>";

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
.verdict{font-size:1.15em;padding:.6em .8em;border-radius:4px}.verdict.ok{background:#e3f5e1}.verdict.lost{background:#fde2e1}\
.plan{color:#555}code{background:#f3f3f3;padding:0 .2em}\
svg{display:block;max-width:100%;height:auto}.axis,.lane{font-size:11px;fill:#555}.grid{stroke:#bbb}\
.bar.ok{fill:#5a9e5a}.bar.loss,.lossmark{fill:#d33}\
.alive{fill:#cfd8e3}.ending{fill:#f2c48d}\
.marker{stroke-width:2}.ready,.added{stroke:#5a9e5a}.deleted{stroke:#e08a00}.removed{stroke:#7a4fd0}.prestop{stroke:#888}\
.signal{stroke:#1c64c8}.killed{stroke:#000;stroke-width:3}.exited{stroke:#555;stroke-dasharray:2 2}\
.legend .key{display:inline-block;width:12px;height:12px;margin:0 .3em 0 1em;vertical-align:middle}\
.key.ok{background:#5a9e5a}.key.loss{background:#d33}.key.alive{background:#cfd8e3}.key.ending{background:#f2c48d}\
.key.signal{background:#1c64c8}.key.removed{background:#7a4fd0}.key.killed{background:#000}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}\
.findings li{margin-bottom:.7em}.why{color:#444}.fix{color:#1c5d1c}pre{background:#f6f6f6;padding:.5em;overflow:auto}";

/// Marks the page once the browser has laid the timeline out, so that a
/// headless browser (and its test) can tell that it rendered.
const SCRIPT: &str = "(function(){var s=document.getElementById('timeline');if(!s)return;\
var b=s.getBBox();var bars=s.querySelectorAll('rect.bar').length;\
var marks=s.querySelectorAll('line.marker').length;\
document.documentElement.setAttribute('data-rendered',b.width>0&&b.height>0?'timeline '+bars+' bars '+marks+' markers':'empty');})();";
