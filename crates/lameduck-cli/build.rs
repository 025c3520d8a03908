//! Puts the commit and the target into `lameduck --version`, so that a binary
//! found in an image or on a host says exactly what it was built from.
//!
//! The commit comes from, in order: `LAMEDUCK_COMMIT` (set by
//! `scripts/release.sh` or a packager), the `COMMIT` file beside this script
//! once `git archive` has filled it in (a release tarball has no `.git`), and
//! `git rev-parse HEAD` in a clone. Without any, the version says `unknown`.
//! The date is the commit's own (or `SOURCE_DATE_EPOCH`), never the build's,
//! so that two builds of one tag print the same and are byte for byte equal.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=COMMIT");
    println!("cargo:rerun-if-env-changed=LAMEDUCK_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let (commit, date) = from_env()
        .or_else(from_archive)
        .or_else(from_git)
        .unwrap_or_else(|| ("unknown".to_owned(), String::new()));
    let date = source_date().unwrap_or(date);
    let target = std::env::var("TARGET").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();

    let mut details = vec![commit];
    if !date.is_empty() {
        details.push(date);
    }
    if !target.is_empty() {
        details.push(target);
    }
    println!(
        "cargo:rustc-env=LAMEDUCK_LONG_VERSION={version} ({})",
        details.join(", ")
    );
}

/// `LAMEDUCK_COMMIT=<hash>`, optionally followed by a space and a date.
fn from_env() -> Option<(String, String)> {
    let value = std::env::var("LAMEDUCK_COMMIT").ok()?;
    split_commit(&value)
}

/// The `COMMIT` file holds `$Format:%h %cs$` in the repository; `git archive`
/// replaces it with the short hash and the commit date (see .gitattributes).
fn from_archive() -> Option<(String, String)> {
    let text = std::fs::read_to_string("COMMIT").ok()?;
    if text.contains("$Format") {
        return None;
    }
    split_commit(&text)
}

fn split_commit(value: &str) -> Option<(String, String)> {
    let mut words = value.split_whitespace();
    let commit = words.next()?.to_owned();
    let date = words.next().unwrap_or_default().to_owned();
    Some((commit, date))
}

/// The clone's HEAD; reruns when HEAD moves (a commit, a checkout).
fn from_git() -> Option<(String, String)> {
    let out = git(&["log", "-1", "--format=%h %cs"])?;
    for path in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", path]));
    }
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &head_ref]));
    }
    split_commit(&out)
}

/// Reruns this script when `path` changes; a path that does not exist would
/// rerun it on every build, so only existing ones are watched.
fn watch(path: Option<String>) {
    if let Some(path) = path {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// `SOURCE_DATE_EPOCH` as a date (UTC, `YYYY-MM-DD`), per
/// <https://reproducible-builds.org/specs/source-date-epoch/>.
fn source_date() -> Option<String> {
    let secs: i64 = std::env::var("SOURCE_DATE_EPOCH")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
