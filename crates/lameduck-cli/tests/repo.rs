//! The repository as a newcomer and CI meet it: every relative link of every
//! Markdown file resolves inside it, no page speaks of documents a reader
//! cannot open, the workflows pass actionlint, the Dockerfiles hadolint, the
//! example manifests kubernetes-validate and kustomize, all of them
//! `lameduck lint`, the scripts shellcheck, and README.md carries the two
//! commands a newcomer needs. Each checker is also shown a broken input, so
//! that a missing or silent tool fails the test instead of passing it.

mod support;

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};

use support::{lameduck_bin, tempdir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("the repository root")
        .canonicalize()
        .expect("a real path")
}

/// Directories that are build output or tools' caches, not the repository's.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "target",
    "dist",
    "node_modules",
    "out",
    "__pycache__",
];

fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                files(&path, keep, found);
            }
        } else if kind.is_file() && keep(&path) {
            found.push(path);
        }
    }
}

fn markdown_files() -> Vec<PathBuf> {
    let mut found = Vec::new();
    files(
        &repo(),
        &|p| p.extension().is_some_and(|e| e == "md"),
        &mut found,
    );
    found.sort();
    assert!(found.len() > 10, "Markdown files: {found:?}");
    found
}

// --- links ------------------------------------------------------------------

/// The destinations of inline links, images and reference definitions, with
/// their line numbers; code blocks and code spans are left out.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    let mut fence: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(open) = &fence {
            if trimmed.starts_with(open.as_str()) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(trimmed[..3].to_owned());
            continue;
        }
        let line = strip_code_spans(line);
        // [id]: destination
        if let Some(rest) = line.trim_start().strip_prefix('[') {
            if let Some((_, dest)) = rest.split_once("]:") {
                if let Some(dest) = dest.split_whitespace().next() {
                    targets.push((n + 1, dest.trim_matches(['<', '>']).to_owned()));
                }
                continue;
            }
        }
        // [text](destination "title")
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let dest = after[..end].split_whitespace().next().unwrap_or("");
            targets.push((n + 1, dest.trim_matches(['<', '>']).to_owned()));
            rest = &after[end..];
        }
    }
    targets
}

fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces
/// to hyphens; a repeated heading gets -1, -2, ...
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut candidate = slug.clone();
        let mut n = 0;
        while !seen.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
    }
    seen
}

/// Why a link from `file` to `dest` does not resolve inside `root`, if so.
fn broken(root: &Path, file: &Path, dest: &str) -> Option<String> {
    if dest.is_empty() {
        return Some("empty destination".into());
    }
    if dest.contains("://") || dest.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let target = if path.is_empty() {
        file.to_path_buf()
    } else if let Some(abs) = path.strip_prefix('/') {
        root.join(abs)
    } else {
        file.parent().unwrap_or(root).join(path)
    };
    // Resolved by hand first: a link may not climb out even to a path that
    // happens to exist beside the clone.
    let mut normal = PathBuf::new();
    for part in target.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    if !normal.starts_with(root) {
        return Some(format!("{} is outside the repository", normal.display()));
    }
    if !normal.exists() {
        return Some(format!("{} does not exist", normal.display()));
    }
    if let (Some(fragment), true) = (fragment, normal.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(&normal).unwrap_or_default();
        if !fragment.is_empty() && !anchors(&text).contains(fragment) {
            return Some(format!("no heading #{fragment} in {}", normal.display()));
        }
    }
    None
}

fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("a readable Markdown file");
        for (line, dest) in link_targets(&text) {
            if let Some(why) = broken(root, file, &dest) {
                let shown = file.strip_prefix(root).unwrap_or(file).display();
                problems.push(format!("{shown}:{line}: ({dest}): {why}"));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_of_every_markdown_file_resolves_inside_the_repository() {
    let root = repo();
    let problems = broken_links(&root, &markdown_files());
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_link_check_finds_what_is_broken() {
    let dir = tempdir();
    let root = dir.path().canonicalize().expect("a real path");
    std::fs::create_dir_all(root.join("docs")).expect("docs/");
    std::fs::write(root.join("docs/page.md"), "# A page\n\n## Two words\n").expect("page");
    let readme = root.join("README.md");
    std::fs::write(
        &readme,
        "[ok](docs/page.md) [ok](docs/page.md#two-words) [ok](https://example.com/x)\n\
         [gone](docs/missing.md) [up](../elsewhere/page.md) [anchor](docs/page.md#three)\n\
         `[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n```\n\n[ref]: docs/none.md\n",
    )
    .expect("README");
    let problems = broken_links(&root, &[readme]);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for expected in ["missing.md", "outside", "#three", "none.md"] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:#?}"
        );
    }
}

// --- words ------------------------------------------------------------------

/// The benchmark's manifest generator and its callers, where the word names
/// the starting value of a random-number generator.
const RANDOM_NUMBER_FILES: &[&str] = &[
    "bench/lint.sh",
    "bench/lint/gen_manifests.py",
    "bench/README.md",
];

#[test]
fn no_page_or_source_speaks_of_documents_a_reader_cannot_open() {
    let root = repo();
    // Spelled in two halves so that this file does not find itself.
    let word = ["se", "ed"].concat();
    let mut all = Vec::new();
    files(&root, &|_| true, &mut all);
    let mut hits = Vec::new();
    for file in &all {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // binary
        };
        if RANDOM_NUMBER_FILES.iter().any(|f| rel == Path::new(f)) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.to_lowercase().contains(&word) {
                hits.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
    // The exceptions are about a random-number generator indeed.
    let generator = std::fs::read_to_string(root.join("bench/lint/gen_manifests.py"))
        .expect("bench/lint/gen_manifests.py");
    assert!(generator.contains("random.Random("), "a generator");
}

// --- the newcomer's two commands --------------------------------------------

#[test]
fn readme_has_the_two_commands_and_ci_runs_the_test_command() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    for command in ["./examples/rehearse.sh", "./scripts/test.sh"] {
        assert!(
            readme.lines().any(|l| l.trim() == command),
            "README.md has `{command}` on a line of its own"
        );
        assert!(root.join(command).is_file(), "{command} exists");
    }
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "exec ./scripts/test.sh"),
        ".ci/run runs exactly the README's test command:\n{ci}"
    );
    let workflow = std::fs::read_to_string(root.join(".github/workflows/ci.yml")).expect("ci.yml");
    assert!(workflow.contains("run: ./scripts/test.sh"), "{workflow}");
}

// --- outside checkers ---------------------------------------------------------

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} ({e}): ./scripts/test.sh installs it"))
}

/// Runs `program FLAG PATHS...` in `dir`.
fn run_on(program: &str, flag: &str, paths: &[PathBuf], dir: &Path) -> Output {
    let mut args = vec![flag.to_owned()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(program, &args, dir)
}

/// A broken input for a checker, in a directory of its own.
fn broken_input(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write a broken input");
    (dir, path)
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_workflows_pass_actionlint() {
    let root = repo();
    let out = run("actionlint", &["-color=false"], &root);
    assert!(out.status.success(), "{}", said(&out));

    let (dir, _) = broken_input(
        "bad.yml",
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n",
    );
    let out = run("actionlint", &["-color=false", "bad.yml"], dir.path());
    assert!(!out.status.success(), "actionlint passed a broken workflow");
}

#[test]
fn the_dockerfiles_pass_hadolint() {
    let root = repo();
    for file in ["Dockerfile", "examples/wrap-an-app/Dockerfile"] {
        let out = run("hadolint", &[file], &root);
        assert!(out.status.success(), "{file}: {}", said(&out));
    }
    let (dir, _) = broken_input("Dockerfile", "FROM debian\nCMD app --port 80\n");
    let out = run("hadolint", &["Dockerfile"], dir.path());
    assert!(!out.status.success(), "hadolint passed a shell-form CMD");
}

#[test]
fn the_example_manifests_validate_and_build_with_kustomize() {
    let root = repo();
    let examples = root.join("deploy/examples");
    let mut resources = Vec::new();
    files(
        &examples,
        &|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        },
        &mut resources,
    );
    assert!(resources.len() >= 2, "{resources:?}");
    let out = run_on("kubernetes-validate", "--strict", &resources, &root);
    assert!(out.status.success(), "{}", said(&out));
    let text = said(&out);
    for kind in ["deployment/", "service/"] {
        assert!(text.contains(kind), "{kind} validated: {text}");
    }

    let built = run("kubectl", &["kustomize", "deploy/examples"], &root);
    assert!(built.status.success(), "{}", said(&built));

    // A field the schema does not know fails.
    let (_dir, bad) = broken_input(
        "bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: 80}]\n  nope: 1\n",
    );
    let out = run(
        "kubernetes-validate",
        &["--strict", &bad.display().to_string()],
        &root,
    );
    assert!(
        !out.status.success(),
        "kubernetes-validate passed: {}",
        said(&out)
    );
}

#[test]
fn lameduck_lint_passes_the_repository_dockerfiles_manifests_and_workflows() {
    let root = repo();
    let out = run(
        lameduck_bin(),
        &[
            "lint",
            "--fail-on",
            "info",
            "Dockerfile",
            "examples/wrap-an-app/Dockerfile",
            "deploy/examples",
            ".github/workflows",
        ],
        &root,
    );
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("0 finding(s)"), "{}", said(&out));
}

#[test]
fn the_scripts_pass_shellcheck() {
    let root = repo();
    let mut scripts = Vec::new();
    for dir in ["scripts", "examples", ".ci"] {
        files(
            &root.join(dir),
            &|p| {
                std::fs::read_to_string(p).is_ok_and(|t| {
                    t.starts_with("#!/usr/bin/env bash") || t.starts_with("#!/bin/sh")
                })
            },
            &mut scripts,
        );
    }
    assert!(scripts.len() >= 4, "{scripts:?}");
    let out = run_on("shellcheck", "--severity=warning", &scripts, &root);
    assert!(out.status.success(), "{}", said(&out));
}
