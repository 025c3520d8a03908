//! Every rule against its fixtures: the exact findings a bad file gives,
//! none for a good one.

use std::path::Path;

use lameduck_lint::dockerfile;

fn lint(name: &str) -> Vec<(String, usize, usize)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    dockerfile::lint(name, &text)
        .into_iter()
        .map(|f| (f.rule.to_owned(), f.line, f.column))
        .collect()
}

fn expect(name: &str, findings: &[(&str, usize, usize)]) {
    let want: Vec<_> = findings
        .iter()
        .map(|(r, l, c)| (r.to_string(), *l, *c))
        .collect();
    assert_eq!(lint(name), want, "{name}");
}

#[test]
fn ld101_shell_form() {
    expect("LD101-bad.Dockerfile", &[("LD101", 6, 5)]);
    expect("LD101-bad-entrypoint.Dockerfile", &[("LD101", 2, 12)]);
    expect("LD101-good.Dockerfile", &[]);
    expect("LD101-good-lameduck.Dockerfile", &[]);
}

#[test]
fn ld102_sh_c_without_exec() {
    expect("LD102-bad.Dockerfile", &[("LD102", 2, 5)]);
    expect("LD102-good.Dockerfile", &[]);
    expect("LD102-good-single.Dockerfile", &[]);
}

#[test]
fn ld104_servers_with_another_graceful_signal() {
    expect("LD104-bad.Dockerfile", &[("LD104", 3, 5)]);
    // The last ENTRYPOINT wins and drops nothing of this stage's CMD; the
    // program is Apache, and STOPSIGNAL SIGTERM is not its graceful stop.
    expect("LD104-bad-heredoc.Dockerfile", &[("LD104", 9, 12)]);
    expect("LD104-good.Dockerfile", &[]);
    expect("LD104-good-official.Dockerfile", &[]);
    expect("LD104-good-lameduck.Dockerfile", &[]);
}

#[test]
fn every_rule_has_a_page_with_why_bad_and_good() {
    for rule in lameduck_lint::rules::ALL {
        for heading in ["## Why", "## Bad", "## Good", "## The facts behind it"] {
            assert!(rule.page.contains(heading), "{} lacks {heading}", rule.id);
        }
        assert!(rule.page.starts_with(&format!("# {}", rule.id)));
    }
}

#[test]
fn a_comment_above_an_instruction_ignores_a_rule_there() {
    let text =
        "FROM alpine\n# keeps the shell on purpose\n# lameduck-ignore LD101\nCMD app --port 8080\n";
    assert!(dockerfile::lint("Dockerfile", text).is_empty());
    let other = "FROM alpine\n# lameduck-ignore LD102\nCMD app --port 8080\n";
    assert_eq!(
        dockerfile::lint("Dockerfile", other).len(),
        1,
        "another rule's ignore does not count"
    );
}
