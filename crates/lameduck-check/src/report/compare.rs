//! `lameduck check --compare A.json B.json [--report FILE.html]`: two runs
//! side by side, before and after a change, their timelines on the same
//! scales so that what changed is what is seen.

use std::fmt::Write;
use std::path::Path;

use super::chart::Scale;
use super::html::{esc, foot, head, run as run_section, verdict_class};
use super::Report;

/// Reads a report written by `--json`.
pub fn read(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a report of lameduck check --json: {e}",
            path.display()
        )
    })
}

/// The two runs in a few lines, for a terminal.
pub fn summary(before: &Report, after: &Report) -> String {
    let mut out = String::new();
    let line = |name: &str, r: &Report| {
        format!(
            "  {name:<7} {:<7} {:>6} of {:>6} requests lost, {:>3} sessions cut, {} pod(s) killed; {}\n",
            if r.failed { "FAILED" } else { "OK" },
            r.requests.lost(),
            r.requests.total,
            r.sessions.cut,
            r.pods.iter().filter(|p| p.life.killed.is_some()).count(),
            r.verdict
        )
    };
    let _ = writeln!(out, "lameduck check --compare:");
    out.push_str(&line("before", before));
    out.push_str(&line("after", after));
    out
}

/// The comparison page.
pub fn render(before: &Report, after: &Report) -> String {
    let scale = Scale::fitting([before, after]);
    let mut page = head(&format!(
        "lameduck check: before {} · after {}",
        before.verdict, after.verdict
    ));
    page.push_str("<h1>lameduck check: before and after</h1>");
    let _ = write!(
        page,
        "<table class=\"compare\"><tr><th></th><th>verdict</th><th>requests</th><th>lost</th><th>sessions cut</th><th>pods killed</th></tr>"
    );
    for (name, r) in [("before", before), ("after", after)] {
        let _ = write!(
            page,
            "<tr><th>{name}</th><td class=\"verdict {}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            verdict_class(r),
            esc(&r.verdict),
            r.requests.total,
            r.requests.lost(),
            r.sessions.cut,
            r.pods.iter().filter(|p| p.life.killed.is_some()).count()
        );
    }
    page.push_str("</table>");
    let _ = write!(
        page,
        "<p class=\"plan\">Both timelines span {:.1}s and their bars share one height: {} requests per interval at the top.</p>",
        scale.span.as_secs_f64(),
        scale.peak
    );
    page.push_str("<div class=\"side\">");
    for (name, r) in [("Before", before), ("After", after)] {
        let _ = write!(page, "<section><h2>{name}</h2>");
        run_section(&mut page, r, scale);
        page.push_str("</section>");
    }
    page.push_str("</div>");
    page.push_str(&foot());
    page
}

/// Runs `--compare`; the exit status: 0 when both runs were read (and the
/// page written), 1 otherwise.
pub fn run(before: &Path, after: &Path, report: Option<&Path>) -> i32 {
    let runs = read(before).and_then(|b| Ok((b, read(after)?)));
    let (b, a) = match runs {
        Ok(runs) => runs,
        Err(e) => {
            tracing::error!("could not compare: {e}");
            return 1;
        }
    };
    print!("{}", summary(&b, &a));
    if let Some(path) = report {
        if let Err(e) = crate::entry::write(path, &render(&b, &a)) {
            tracing::error!("could not write the comparison: {e}");
            return 1;
        }
    }
    0
}
