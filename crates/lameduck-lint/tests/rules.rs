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
        .expect("valid")
        .into_iter()
        .map(|f| (f.rule.to_owned(), f.line, f.column))
        .collect()
}

/// A fixture directory: its Dockerfile, with the directory as the build
/// context.
fn lint_dir(name: &str) -> Vec<(String, usize, usize)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .join("Dockerfile");
    let text = std::fs::read_to_string(&path).expect("fixture");
    dockerfile::lint_file(&path, &text)
        .expect("valid")
        .into_iter()
        .map(|f| (f.rule.to_owned(), f.line, f.column))
        .collect()
}

fn owned(findings: &[(&str, usize, usize)]) -> Vec<(String, usize, usize)> {
    findings
        .iter()
        .map(|(r, l, c)| (r.to_string(), *l, *c))
        .collect()
}

fn expect(name: &str, findings: &[(&str, usize, usize)]) {
    assert_eq!(lint(name), owned(findings), "{name}");
}

fn expect_dir(name: &str, findings: &[(&str, usize, usize)]) {
    assert_eq!(lint_dir(name), owned(findings), "{name}");
}

fn messages(text: &str) -> Vec<String> {
    dockerfile::lint("Dockerfile", text)
        .expect("valid")
        .into_iter()
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect()
}

#[test]
fn ld101_shell_form() {
    expect("LD101-bad.Dockerfile", &[("LD101", 6, 5)]);
    expect("LD101-bad-entrypoint.Dockerfile", &[("LD101", 2, 12)]);
    expect("LD101-good.Dockerfile", &[]);
    expect("LD101-good-lameduck.Dockerfile", &[]);
    expect("LD101-good-alpine.Dockerfile", &[]);
}

#[test]
fn ld102_sh_c_without_exec() {
    expect("LD102-bad.Dockerfile", &[("LD102", 2, 5)]);
    expect("LD102-good.Dockerfile", &[]);
    expect("LD102-good-single.Dockerfile", &[]);
    expect("LD102-good-alpine.Dockerfile", &[]);
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
fn ld103_entrypoint_script_without_exec() {
    // COPY into a PATH directory; the script ends in `"$@"`.
    expect_dir("LD103-bad-path", &[("LD103", 5, 12)]);
    // An ARG names the file, WORKDIR makes the path; the script's last
    // program is in no function and is followed by `exit`.
    expect_dir("LD103-bad-workdir", &[("LD103", 7, 12)]);
    expect_dir("LD103-good", &[]);
    expect_dir("LD103-good-other-stage", &[]);
    expect_dir("LD103-good-trap", &[]);
    // Without a context (standard input) the script is not read.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/LD103-bad-path/Dockerfile"),
    )
    .expect("fixture");
    assert_eq!(dockerfile::lint("-", &text), Ok(vec![]));
}

#[test]
fn ld103_names_the_script_and_its_line() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/LD103-bad-path/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let found = dockerfile::lint_file(&path, &text).expect("valid");
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .message
            .starts_with("docker-entrypoint.sh starts `\"$@\"` (line 6) without `exec`"),
        "{}",
        found[0].message
    );
}

#[test]
fn ld103_a_keep_alive_is_not_the_app_to_exec() {
    let context: std::collections::BTreeMap<String, String> = [(
        "start.sh".to_owned(),
        "#!/bin/sh\nservice nginx start\ntail -f /dev/null\n".to_owned(),
    )]
    .into();
    let found = dockerfile::lint_in(
        "Dockerfile",
        "FROM debian\nCOPY start.sh /\nENTRYPOINT [\"/start.sh\"]\n",
        &context,
    )
    .expect("valid");
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].rule, found[0].line), ("LD103", 3));
    assert!(
        found[0]
            .message
            .starts_with("start.sh ends in `tail -f /dev/null` (line 3) to keep the container up"),
        "{}",
        found[0].message
    );
}

#[test]
fn ld105_several_processes_without_an_init() {
    // Shell form: also LD101, at the same place.
    expect("LD105-bad.Dockerfile", &[("LD101", 3, 5), ("LD105", 3, 5)]);
    // An entrypoint script that backgrounds a worker, then execs the server.
    expect_dir("LD105-bad-script", &[("LD105", 4, 12)]);
    expect("LD105-good.Dockerfile", &[]);
    expect("LD105-good-single.Dockerfile", &[]);
}

#[test]
fn arg_and_env_are_replaced_where_docker_replaces_them() {
    // STOPSIGNAL $SIG from a global ARG re-declared in the stage; the
    // program of the shell form from an ENV of the parent stage.
    expect("ARGENV-bad.Dockerfile", &[("LD101", 9, 5), ("LD104", 9, 5)]);
    expect("ARGENV-good.Dockerfile", &[]);
    // An ENV seen by `sh -c` at run time.
    expect("ARGENV-bad-sh-c.Dockerfile", &[("LD104", 4, 5)]);
    // An ARG is not: the program is unknown, nothing is said about it.
    expect("ARGENV-arg-not-at-run-time.Dockerfile", &[]);
    // The exec form replaces nothing (Docker runs `$APP` literally).
    assert_eq!(
        messages("FROM debian\nENV APP=nginx\nENTRYPOINT [\"$APP\"]\n"),
        Vec::<String>::new()
    );
    // A STOPSIGNAL from an ARG without a default is unknown here.
    assert_eq!(
        messages("FROM debian\nARG SIG\nSTOPSIGNAL $SIG\nCMD [\"nginx\"]\n"),
        Vec::<String>::new()
    );
}

#[test]
fn ld101_names_the_program_and_the_exec_form_to_use() {
    assert_eq!(
        messages("FROM python:3.12\nCMD python server.py --port 8080\n"),
        ["LD101: CMD in shell form runs `python` under /bin/sh: dash, the shell of python:3.12 (Debian), forks even a lone command and stays PID 1, keeping SIGTERM from the app: use the exec form, [\"python\", \"server.py\", \"--port\", \"8080\"], or put `lameduck run --` in ENTRYPOINT"]
    );
    // Quoted separators are words, not shell syntax.
    assert_eq!(
        messages("FROM nginx\nCMD nginx -g 'daemon off;'\n"),
        ["LD101: CMD in shell form runs `nginx` under /bin/sh: dash, the shell of nginx (Debian), forks even a lone command and stays PID 1, keeping SIGTERM from the app: use the exec form, [\"nginx\", \"-g\", \"daemon off;\"], or put `lameduck run --` in ENTRYPOINT"]
    );
    // Variables stay in a shell that execs; the message names the program
    // with the ENV replaced.
    assert_eq!(
        messages("FROM python:3.12\nENV PORT=8080 BIN=gunicorn\nENTRYPOINT $BIN app:app -b :$PORT\n"),
        ["LD101: ENTRYPOINT in shell form runs `gunicorn` under /bin/sh: dash, the shell of python:3.12 (Debian), forks even a lone command and stays PID 1, keeping SIGTERM from the app: use the exec form, [\"sh\", \"-c\", \"exec $BIN app:app -b :$PORT\"]"]
    );
}

#[test]
fn every_page_is_a_registered_rule_in_id_order() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
    let mut pages: Vec<String> = std::fs::read_dir(docs)
        .expect("docs/rules")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".md")
                .map(str::to_owned)
        })
        .collect();
    pages.sort();
    let ids: Vec<&str> = lameduck_lint::rules::ALL.iter().map(|r| r.id).collect();
    assert_eq!(ids, pages, "rules::ALL and docs/rules/*.md");
    for id in &ids {
        assert!(
            lameduck_lint::rules::find(&id.to_lowercase()).is_some(),
            "{id}"
        );
    }
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
        "FROM debian:12\n# keeps the shell on purpose\n# lameduck-ignore LD101\nCMD app --port 8080\n";
    assert_eq!(dockerfile::lint("Dockerfile", text), Ok(vec![]));
    let other = "FROM debian:12\n# lameduck-ignore LD102\nCMD app --port 8080\n";
    assert_eq!(
        dockerfile::lint("Dockerfile", other).map(|f| f.len()),
        Ok(1),
        "another rule's ignore does not count"
    );
}

#[test]
fn no_input_makes_the_linter_panic() {
    // Every prefix of every fixture, and a few nasty lines: cut quotes,
    // heredocs, variables and escapes at every place.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut texts = vec![
        "FROM a\nENV A=\"${B:-${C\nCMD ${\n".to_owned(),
        "ARG\nFROM\nENV\nCOPY\nWORKDIR\nSTOPSIGNAL\nENTRYPOINT [\"sh\", \"-c\"]\n".to_owned(),
        "FROM a\nCMD [\"sh\", \"-c\", \"a &\\\\\"]\nENTRYPOINT \"\\\n".to_owned(),
        "FROM a\nCOPY ../../x /\nENTRYPOINT [\"/x\"]\n".to_owned(),
    ];
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                texts.push(text);
            }
        }
    }
    // Every script of the fixtures at the paths the nasty lines copy.
    let context: std::collections::BTreeMap<String, String> = texts
        .iter()
        .filter(|t| t.starts_with("#!"))
        .enumerate()
        .flat_map(|(i, t)| [(format!("s{i}.sh"), t.clone()), ("x".into(), t.clone())])
        .collect();
    texts.push("FROM a\nCOPY . /\nENTRYPOINT [\"/x\"]\n".into());
    for text in &texts {
        // Every place in short texts, some 100 places in long ones.
        let step = (text.len() / 100).max(1);
        for (end, _) in text.char_indices().step_by(step) {
            let prefix = &text[..end];
            let _ = dockerfile::lint_in("-", prefix, &context);
            let _ = lameduck_lint::manifest::lint("-", prefix);
            lameduck_lint::script::analyze(prefix);
        }
    }
}
