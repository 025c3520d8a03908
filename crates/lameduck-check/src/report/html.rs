//! The report page: one self-contained HTML file (inline SVG and style, no
//! network) with the timeline (answers and losses per interval, each pod's
//! events as marks), the findings, the counts, and each pod's events and
//! last output.

use std::fmt::Write;

use super::chart::{self, Scale};
use super::Report;

/// Escapes text for HTML content and attributes.
pub(super) fn esc(text: &str) -> String {
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

/// The start of a page titled `title`.
pub(super) fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(title)
    )
}

/// The end of a page, with the script that marks it rendered.
pub(super) fn foot() -> String {
    format!("<script>{SCRIPT}</script></body></html>\n")
}

/// The class of a verdict's box.
pub(super) fn verdict_class(report: &Report) -> &'static str {
    match (report.lost, report.failed) {
        (true, _) => "lost",
        (false, true) => "failed",
        _ => "ok",
    }
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut page = head(&format!("lameduck check: {}", report.verdict));
    let _ = write!(
        page,
        "<h1>lameduck check</h1><p class=\"verdict {}\" id=\"verdict\">{}</p>",
        verdict_class(report),
        esc(&report.verdict)
    );
    run(&mut page, report, Scale::fitting([report]));
    page.push_str(&foot());
    page
}

/// One run's sections, its timeline on `scale`.
pub(super) fn run(page: &mut String, report: &Report, scale: Scale) {
    plan(page, report);
    page.push_str("<h2>Timeline</h2>");
    page.push_str(&chart::timeline(report, scale));
    page.push_str(chart::LEGEND);
    findings(page, report);
    counts(page, report);
    pods(page, report);
}

fn plan(page: &mut String, report: &Report) {
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
            .map(|s| format!(" · preStop <code>{}</code>", esc(&s.to_string())))
            .unwrap_or_default(),
        esc(&p.command.join(" "))
    );
    let given = p.given();
    if !given.is_empty() {
        let _ = write!(
            page,
            "<p class=\"plan\">Settings: {}</p>",
            esc(&given.join("; "))
        );
    }
    for note in &p.notes {
        let _ = write!(page, "<p class=\"plan\">Note: {}</p>", esc(note));
    }
}

fn findings(page: &mut String, report: &Report) {
    if let Some(text) = report.load.shortfall_text() {
        let _ = write!(
            page,
            "<p class=\"warning\" id=\"shortfall\">{}</p>",
            esc(&text)
        );
    }
    if report.findings.is_empty() {
        page.push_str(
            "<h2>Findings</h2><p>No request was lost, no session was cut, no pod was killed.</p>",
        );
        return;
    }
    page.push_str("<h2>Findings</h2><ol class=\"findings\">");
    for f in &report.findings {
        let _ = write!(
            page,
            "<li class=\"{}\"><strong>{}</strong><br><span class=\"why\">Why: {}</span><br><span class=\"fix\">Fix: {}</span></li>",
            if f.severity.fails() { "fails" } else { "warning" },
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
    if let Some(asked) = report.load.asked_rps {
        let _ = write!(
            page,
            "<p class=\"{}\">Load: {:.0} requests/s reached of {asked} asked.</p>",
            if report.load.shortfall {
                "warning"
            } else {
                "plan"
            },
            report.load.reached_rps
        );
    }
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
        let ending = if pod.life.kept {
            "kept to the end".to_string()
        } else if let Some(at) = pod.life.killed {
            format!("killed (SIGKILL) at {:.1}s", at.as_secs_f64())
        } else if pod.life.terminating.is_some() {
            "deleted".to_string()
        } else {
            "exited on its own".to_string()
        };
        let _ = write!(
            page,
            "<details class=\"pod\"{}><summary>{} · {} · PID 1 <code>{}</code> · {}</summary>\
             <table class=\"events\"><tr><th>time</th><th>event</th><th>detail</th></tr>",
            // The pods that ended are what the rehearsal is about: open.
            if pod.life.terminating.is_some() {
                " open"
            } else {
                ""
            },
            esc(&pod.name),
            esc(&pod.address),
            esc(&pod.life.pid1),
            esc(&ending)
        );
        for e in &pod.events {
            let (event, detail) = super::events::describe(&e.event);
            let _ = write!(
                page,
                "<tr><td>{:.3}s</td><td>{}</td><td>{}</td></tr>",
                e.at.as_secs_f64(),
                esc(event),
                esc(&detail)
            );
        }
        page.push_str("</table>");
        if !pod.logs.is_empty() {
            let _ = write!(page, "<pre>{}</pre>", esc(&pod.logs.join("\n")));
        }
        page.push_str("</details>");
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
.verdict{font-size:1.15em;padding:.6em .8em;border-radius:4px}.verdict.ok{background:#e3f5e1}.verdict.lost{background:#fde2e1}\
.plan{color:#555}code{background:#f3f3f3;padding:0 .2em}\
svg{display:block;max-width:100%;height:auto}.axis,.lane{font-size:11px;fill:#555}.grid{stroke:#bbb}\
.bar.ok{fill:#5a9e5a}.bar.loss,.lossmark{fill:#d33}\
.alive{fill:#cfd8e3}.ending{fill:#f2c48d}\
.marker{stroke-width:2}.ready{stroke:#2e7d32}.added{stroke:#17a2b8}.deleted{stroke:#e08a00}.removed{stroke:#7a4fd0}.prestop{stroke:#888}\
.signal{stroke:#1c64c8}.killed{stroke:#000;stroke-width:3}.exited{stroke:#555;stroke-dasharray:2 2}\
.key.ready{background:#2e7d32}.key.added{background:#17a2b8}.key.deleted{background:#e08a00}.key.prestop{background:#888}.key.exited{background:#555}\
.verdict.failed{background:#fde2e1}.warning{color:#8a5a00}.side{display:grid;grid-template-columns:1fr;gap:1em}\
.legend .key{display:inline-block;width:12px;height:12px;margin:0 .3em 0 1em;vertical-align:middle}\
.key.ok{background:#5a9e5a}.key.loss{background:#d33}.key.alive{background:#cfd8e3}.key.ending{background:#f2c48d}\
.key.signal{background:#1c64c8}.key.removed{background:#7a4fd0}.key.killed{background:#000}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}.events td+td,.events th+th{text-align:left}\
.findings li{margin-bottom:.7em}.why{color:#444}.fix{color:#1c5d1c}pre{background:#f6f6f6;padding:.5em;overflow:auto}";

/// Marks the page once the browser has laid the timeline out, so that a
/// headless browser (and its test) can tell that it rendered.
pub(super) const SCRIPT: &str = "(function(){var svgs=document.querySelectorAll('svg.timeline');\
var bars=0,marks=0,laid=svgs.length>0,scales=[];\
svgs.forEach(function(s){var b=s.getBBox();laid=laid&&b.width>0&&b.height>0;\
bars+=s.querySelectorAll('rect.bar').length;marks+=s.querySelectorAll('line.marker').length;\
scales.push(s.getAttribute('data-span')+'s/'+s.getAttribute('data-peak'));});\
var legend=document.querySelectorAll('.legend .key').length;\
var rows=document.querySelectorAll('table.events tr').length;\
document.documentElement.setAttribute('data-rendered',laid?'timelines '+svgs.length+' bars '+bars+' markers '+marks+' legend '+legend+' event-rows '+rows+' scales '+scales.join(' '):'empty');})();";
