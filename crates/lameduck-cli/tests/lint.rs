//! `lameduck lint` as users run it: over files, directories and standard
//! input, in both formats, with the exit statuses CI scripts rely on.

mod support;

#[path = "lint/corpus.rs"]
mod corpus;
#[path = "lint/golden.rs"]
mod golden;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{lameduck_bin, tempdir};

fn lint(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(lameduck_bin())
        .arg("lint")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lameduck lint");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    // A usage error ends lameduck before it reads its input: the pipe breaks.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_directory_is_walked_and_findings_print_like_rustc() {
    let dir = tempdir();
    let sub = dir.path().join("svc");
    std::fs::create_dir_all(&sub).expect("dir");
    std::fs::write(sub.join("Dockerfile"), "FROM alpine\nCMD app --port 8080\n").expect("write");
    std::fs::write(
        dir.path().join("api.Dockerfile"),
        "FROM alpine\nCMD [\"app\"]\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("README.md"), "CMD not a Dockerfile\n").expect("write");
    let (code, out, err) = lint(&[dir.path().to_str().expect("utf-8")], "");
    assert_eq!(code, 1, "{out}{err}");
    let path = sub.join("Dockerfile").display().to_string();
    assert!(
        out.starts_with(&format!("{path}:2:5: error[LD101]: CMD in shell form")),
        "{out}"
    );
    assert!(out.contains("2 | CMD app --port 8080"), "{out}");
    assert!(
        out.contains("= see: lameduck lint --explain LD101"),
        "{out}"
    );
    assert!(
        err.contains("1 finding(s), 1 error(s), in 2 file(s)"),
        "{err}"
    );
}

#[test]
fn json_from_standard_input_and_the_fail_on_threshold() {
    let sh_c = "FROM alpine\nCMD [\"sh\", \"-c\", \"./migrate && ./app\"]\n";
    let (code, out, _) = lint(&["--format", "json", "-"], sh_c);
    assert_eq!(code, 1);
    let expected = r#"[{"column":5,"line":2,"message":"the app runs inside `sh -c` without `exec`, so the shell keeps SIGTERM from it: end the script with `exec app ...`, or put `lameduck run --` in ENTRYPOINT","path":"-","rule":"LD102","severity":"warning"}]"#;
    assert_eq!(out.trim(), expected);
    // A warning does not fail a run that fails on errors only.
    let (code, _, _) = lint(&["--fail-on", "error", "-"], sh_c);
    assert_eq!(code, 0);
    let (code, out, _) = lint(&["-"], "FROM alpine\nCMD [\"app\"]\n");
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn explain_prints_the_rule_page_and_bad_input_exits_2() {
    let (code, out, _) = lint(&["--explain", "ld101"], "");
    assert_eq!(code, 0);
    assert!(
        out.starts_with("# LD101: shell-form ENTRYPOINT or CMD"),
        "{out}"
    );
    let (code, _, err) = lint(&["--explain", "LD999"], "");
    assert_eq!(code, 2);
    assert!(
        err.contains("no rule \"LD999\"; the rules are LD101"),
        "{err}"
    );
    let (code, _, err) = lint(&[], "");
    assert_eq!(code, 2, "{err}");
    // A missing path is reported, and the other paths are still linted.
    let dir = tempdir();
    let good = dir.path().join("Dockerfile");
    std::fs::write(&good, "FROM alpine\nCMD app\n").expect("write");
    let (code, out, err) = lint(&["/no/such/path", good.to_str().expect("utf-8")], "");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lameduck lint: /no/such/path: cannot read: "),
        "{err}"
    );
    assert!(out.contains("LD101"), "{out}");
}

#[test]
fn manifests_from_standard_input_like_helm_template_output() {
    let stream = "---\n# Source: chart/templates/deploy.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: example/web\n          ports: [{containerPort: 8080}]\n";
    let (code, out, _) = lint(&["--format", "json", "-"], stream);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#""line":10,"#) && out.contains(r#""rule":"LD201""#),
        "{out}"
    );
    // A YAML error names its place, exits 2, and other inputs are still linted.
    let dir = tempdir();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "kind: Pod\nspec: [1,\n").expect("write");
    let docker = dir.path().join("Dockerfile");
    std::fs::write(&docker, "FROM alpine\nCMD app\n").expect("write");
    let (code, out, err) = lint(&[dir.path().to_str().expect("utf-8")], "");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:", broken.display())) && err.contains("cannot parse"),
        "{err}"
    );
    assert!(out.contains("LD101"), "{out}");
}

#[test]
fn sarif_and_github_formats_and_disabled_rules() {
    let bad = "FROM alpine\nCMD app --port 8080\n";
    let (code, out, _) = lint(&["--format", "sarif", "-"], bad);
    assert_eq!(code, 1);
    for part in [
        r#""version": "2.1.0""#,
        r#""ruleId": "LD101""#,
        r#""name": "lameduck lint""#,
        r#""startColumn": 5,"#,
        r#""startLine": 2"#,
    ] {
        assert!(out.contains(part), "{part} missing from {out}");
    }
    let (_, out, _) = lint(&["--format", "github", "-"], bad);
    assert!(
        out.starts_with("::error file=-,line=2,col=5,title=LD101::CMD in shell form"),
        "{out}"
    );
    let (code, out, _) = lint(&["--disable", "ld101", "-"], bad);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = lint(&["--disable", "LD999", "-"], bad);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_lameduck_yaml_above_the_path_disables_rules_and_sets_the_threshold() {
    let dir = tempdir();
    let project = dir.path().join("svc");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(
        project.join("Dockerfile"),
        "FROM alpine\nCMD app --port 8080\nCMD [\"sh\", \"-c\", \"a; b\"]\n",
    )
    .expect("write");
    let path = project.to_str().expect("utf-8");
    let (code, out, _) = lint(&[path], "");
    assert_eq!(code, 1);
    assert!(out.contains("LD102"), "{out}");
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "lint:\n  disable: [LD102]\n  fail-on: error\n",
    )
    .expect("write");
    let (code, out, _) = lint(&[path], "");
    assert_eq!(
        (code, out.as_str()),
        (0, ""),
        "LD102 off and only errors fail"
    );
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "lint:\n  disable: [LD999]\n",
    )
    .expect("write");
    let (code, _, err) = lint(&[path], "");
    assert_eq!(code, 2);
    assert!(
        err.contains(".lameduck.yaml:2:13: no rule \"LD999\""),
        "{err}"
    );
}

#[test]
fn a_dockerfile_s_directory_is_its_build_context() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM alpine\nCOPY entrypoint.sh /usr/local/bin/\nENTRYPOINT [\"entrypoint.sh\"]\nCMD [\"app\"]\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("entrypoint.sh"),
        "#!/bin/sh\nset -e\n\"$@\"\n",
    )
    .expect("write");
    let (code, out, _) = lint(
        &["--format", "json", dir.path().to_str().expect("utf-8")],
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#""line":3,"#) && out.contains(r#""rule":"LD103""#),
        "{out}"
    );
    // From standard input there is no context: the script is not read.
    let text = std::fs::read_to_string(dir.path().join("Dockerfile")).expect("read");
    let (code, out, _) = lint(&["-"], &text);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn enable_on_the_command_line_wins_over_a_disable_in_the_file() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM alpine\nCMD app --port 8080\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "lint:\n  disable: [LD101]\n",
    )
    .expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let (code, out, _) = lint(&[path], "");
    assert_eq!((code, out.as_str()), (0, ""), "disabled in the file");
    let (code, out, _) = lint(&["--enable", "ld101", path], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error[LD101]"), "{out}");
    // Enabled in the file, disabled on the command line: off.
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "lint:\n  enable: [LD101]\n",
    )
    .expect("write");
    let (code, _, _) = lint(&["--disable", "LD101", path], "");
    assert_eq!(code, 0);
}

#[test]
fn an_unknown_or_contradicting_enable_is_a_usage_error() {
    let (code, out, err) = lint(&["--enable", "LD101,LD999", "-"], "FROM a\nCMD app\n");
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("lameduck lint: --enable LD999: no such rule; the rules are LD101,"),
        "{err}"
    );
    let (code, _, err) = lint(&["--enable", "LD101", "--disable", "ld101", "-"], "");
    assert_eq!(code, 2);
    assert!(err.contains("contradict"), "{err}");
    let dir = tempdir();
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "# settings\nlint:\n  disable: [LD101]\n  enable:\n    - LD102\n    - LD42\n",
    )
    .expect("write");
    let (code, _, err) = lint(&[dir.path().to_str().expect("utf-8")], "");
    assert_eq!(code, 2);
    assert!(
        err.contains(".lameduck.yaml:6:7: no rule \"LD42\""),
        "{err}"
    );
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "lint:\n  disable: [LD101]\n  enable: [ld101]\n",
    )
    .expect("write");
    let (code, _, err) = lint(&[dir.path().to_str().expect("utf-8")], "");
    assert_eq!(code, 2);
    assert!(
        err.contains(".lameduck.yaml:3:12: LD101 is both disabled and enabled"),
        "{err}"
    );
}

#[test]
fn gitignored_files_are_skipped_unless_named() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("build")).expect("dir");
    std::fs::write(dir.path().join(".gitignore"), "build/\n").expect("write");
    let ignored = dir.path().join("build/Dockerfile");
    std::fs::write(&ignored, "FROM alpine\nCMD app\n").expect("write");
    let (code, out, err) = lint(&[dir.path().to_str().expect("utf-8")], "");
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("in 0 file(s)"), "{err}");
    let (code, out, _) = lint(&[ignored.to_str().expect("utf-8")], "");
    assert_eq!(code, 1);
    assert!(out.contains("error[LD101]"), "{out}");
}

#[test]
fn a_lameduck_yaml_above_the_current_directory_counts_for_relative_paths() {
    let dir = tempdir();
    let project = dir.path().join("svc");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(project.join("Dockerfile"), "FROM alpine\nCMD app\n").expect("write");
    std::fs::write(
        dir.path().join(".lameduck.yaml"),
        "lint:\n  disable: [LD101]\n",
    )
    .expect("write");
    for args in [&["lint", "Dockerfile"][..], &["lint", "-"][..]] {
        let out = Command::new(lameduck_bin())
            .args(args)
            .current_dir(&project)
            .stdin(std::fs::File::open(project.join("Dockerfile")).expect("open"))
            .output()
            .expect("lameduck lint");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (out.status.code(), stdout.as_ref()),
            (Some(0), ""),
            "{args:?}"
        );
    }
}
