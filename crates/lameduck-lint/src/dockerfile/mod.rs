//! The Dockerfile rules: how the image's command hears SIGTERM.
//!
//! Only the final stage makes the image; it inherits ENTRYPOINT, CMD and
//! STOPSIGNAL from an earlier stage it is built `FROM`, as Docker does.

mod parse;

pub use parse::{parse, CommandForm, Instruction};

use crate::finding::{Finding, Rule};
use crate::rules::{LD101, LD102, LD104};
use crate::shell::{basename, is_compound, last_command, last_is_exec, shell_script};

/// What one stage sets.
#[derive(Clone, Debug, Default)]
struct Stage {
    name: Option<String>,
    base: String,
    entrypoint: Option<Instruction>,
    cmd: Option<Instruction>,
    /// The CMD came from the parent stage: a new ENTRYPOINT drops it.
    cmd_inherited: bool,
    stopsignal: Option<Instruction>,
}

/// Lints the Dockerfile `text`, found at `path`.
pub fn lint(path: &str, text: &str) -> Vec<Finding> {
    let mut findings = lint_unfiltered(path, text);
    findings.retain(|f| !ignored(text, f.line, f.rule));
    findings
}

/// Whether the comment lines right above `line` say `# lameduck-ignore ID`
/// (IDs separated by commas or spaces), as hadolint's `# hadolint ignore=`.
fn ignored(text: &str, line: usize, rule: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines[..line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("lameduck-ignore")
        })
        .flat_map(|ids| ids.split(|c: char| c == ',' || c == '=' || c.is_whitespace()))
        .any(|id| id.eq_ignore_ascii_case(rule))
}

fn lint_unfiltered(path: &str, text: &str) -> Vec<Finding> {
    let Some(stage) = final_stage(&parse(text)) else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let at = |rule: &Rule, i: &Instruction, message: String| Finding {
        rule: rule.id,
        severity: rule.severity,
        path: path.to_owned(),
        line: i.line,
        column: i.args_column,
        message,
    };
    let entry = stage.entrypoint.as_ref().map(|i| (i, i.command()));
    let cmd = stage.cmd.as_ref().map(|i| (i, i.command()));

    // The init in front, if any: whether it signals the whole group.
    let wrapper = match &entry {
        Some((_, CommandForm::Exec(words))) => Wrapper::of(words),
        _ => None,
    };
    let group = wrapper.as_ref().is_some_and(|w| w.signals_group);

    if let Some((i, CommandForm::Shell(_))) = &entry {
        findings.push(at(&LD101, i, "ENTRYPOINT in shell form runs under /bin/sh, which does not pass SIGTERM on: use the exec form, [\"app\", \"arg\"]".into()));
    }
    if let Some((i, CommandForm::Shell(_))) = &cmd {
        let exec_entry = matches!(entry, Some((_, CommandForm::Exec(_))));
        if !group && (entry.is_none() || exec_entry) {
            findings.push(at(&LD101, i, "CMD in shell form runs under /bin/sh, which does not pass SIGTERM on: use the exec form, [\"app\", \"arg\"], or put `lameduck run --` in ENTRYPOINT".into()));
        }
    }

    // The argv the image runs, and the instruction that gives its program.
    let mut argv: Vec<String> = Vec::new();
    let mut holder: Option<&Instruction> = None;
    if let Some((i, CommandForm::Exec(words))) = &entry {
        argv.extend(words.iter().cloned());
        holder = Some(i);
    }
    if let Some((i, CommandForm::Exec(words))) = &cmd {
        if argv.is_empty() {
            holder = Some(i);
        }
        argv.extend(words.iter().cloned());
    }
    let app_argv = match &wrapper {
        Some(w) => argv[w.skip.min(argv.len())..].to_vec(),
        None => argv,
    };
    let mut program = app_argv.first().map(|p| basename(p).to_owned());

    if let Some(script) = shell_script(&app_argv) {
        program = last_command(script);
        if !group && is_compound(script) && !last_is_exec(script) {
            if let Some(i) = holder {
                findings.push(at(&LD102, i, "the app runs inside `sh -c` without `exec`, so the shell keeps SIGTERM from it: end the script with `exec app ...`, or put `lameduck run --` in ENTRYPOINT".into()));
            }
        }
    }

    if let (Some(program), Some(i)) = (program, holder) {
        if let Some((server, wanted)) = graceful_signal(&program) {
            let given = wrapper
                .as_ref()
                .and_then(|w| w.stop_signal.clone())
                .or_else(|| stage.stopsignal.as_ref().map(|s| s.args.clone()));
            let inherited = official_image_sets_it(&stage.base, server);
            let matches = given.as_deref().is_some_and(|g| same_signal(g, wanted));
            let fine = matches || (given.is_none() && inherited);
            if !fine {
                findings.push(at(&LD104, i, format!("{server} stops gracefully on SIG{wanted}, but the container gets {}: add `STOPSIGNAL SIG{wanted}` (or `lameduck run --stop-signal {wanted}`)", given.map_or("SIGTERM".to_owned(), |g| g.trim().to_owned()))));
            }
        }
    }
    findings
}

/// The last stage, with what it inherits from earlier stages.
fn final_stage(instructions: &[Instruction]) -> Option<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for i in instructions {
        match i.keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = i
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let base = words.first().copied().unwrap_or_default().to_owned();
                let name = match words.as_slice() {
                    [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => {
                        Some(name.to_ascii_lowercase())
                    }
                    _ => None,
                };
                let parent = stages
                    .iter()
                    .rev()
                    .find(|s| s.name.as_deref() == Some(base.to_ascii_lowercase().as_str()))
                    .cloned();
                let mut stage = parent.unwrap_or_default();
                if stage.base.is_empty() {
                    stage.base = base;
                }
                stage.cmd_inherited = stage.cmd.is_some();
                stage.name = name;
                stages.push(stage);
            }
            "ENTRYPOINT" | "CMD" | "STOPSIGNAL" => {
                let Some(stage) = stages.last_mut() else {
                    continue;
                };
                match i.keyword.as_str() {
                    // A new ENTRYPOINT drops the CMD it inherited.
                    "ENTRYPOINT" => {
                        if stage.cmd_inherited {
                            stage.cmd = None;
                            stage.cmd_inherited = false;
                        }
                        stage.entrypoint = Some(i.clone());
                    }
                    "CMD" => {
                        stage.cmd = Some(i.clone());
                        stage.cmd_inherited = false;
                    }
                    _ => stage.stopsignal = Some(i.clone()),
                }
            }
            _ => {}
        }
    }
    stages.pop()
}

/// An init in front of the app: lameduck, tini, dumb-init.
#[derive(Debug)]
struct Wrapper {
    /// Words to skip to reach the app's own argv.
    skip: usize,
    signals_group: bool,
    stop_signal: Option<String>,
}

impl Wrapper {
    fn of(words: &[String]) -> Option<Wrapper> {
        let program = basename(words.first()?);
        let after_dashes = |from: usize| {
            words
                .iter()
                .skip(from)
                .position(|w| w == "--")
                .map_or(words.len(), |p| from + p + 1)
        };
        match program {
            "lameduck" if words.get(1).is_some_and(|w| w == "run") => {
                let child = words
                    .windows(2)
                    .any(|w| w[0] == "--signal-target" && w[1] == "child")
                    || words.iter().any(|w| w == "--signal-target=child");
                let stop_signal = words
                    .windows(2)
                    .find(|w| w[0] == "--stop-signal")
                    .map(|w| w[1].clone())
                    .or_else(|| {
                        words
                            .iter()
                            .find_map(|w| w.strip_prefix("--stop-signal=").map(str::to_owned))
                    });
                Some(Wrapper {
                    skip: after_dashes(2),
                    signals_group: !child,
                    stop_signal,
                })
            }
            "tini" | "tini-static" => Some(Wrapper {
                skip: after_dashes(1),
                signals_group: words.iter().any(|w| w == "-g"),
                stop_signal: None,
            }),
            "dumb-init" => Some(Wrapper {
                skip: words
                    .iter()
                    .skip(1)
                    .position(|w| !w.starts_with('-'))
                    .map_or(words.len(), |p| p + 1),
                signals_group: !words.iter().any(|w| w == "--single-child" || w == "-c"),
                stop_signal: None,
            }),
            _ => None,
        }
    }
}

/// Servers whose graceful stop is another signal than SIGTERM.
fn graceful_signal(program: &str) -> Option<(&'static str, &'static str)> {
    match program {
        "nginx" | "openresty" => Some(("nginx", "QUIT")),
        p if p.starts_with("php-fpm") => Some(("php-fpm", "QUIT")),
        "httpd" | "apache2" | "apachectl" | "httpd-foreground" | "apache2-foreground" => {
            Some(("Apache httpd", "WINCH"))
        }
        _ => None,
    }
}

/// The official images set the right STOPSIGNAL themselves.
fn official_image_sets_it(base: &str, server: &str) -> bool {
    let repo = base.split(['@', ':']).next().unwrap_or(base);
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    let tag = base.split_once(':').map_or("", |(_, t)| t);
    match server {
        "nginx" => repo == "nginx",
        "php-fpm" => repo == "php" && tag.contains("fpm"),
        "Apache httpd" => repo == "httpd",
        _ => false,
    }
}

/// Whether `given` (`SIGQUIT`, `QUIT`, `3`) names the signal `wanted` (`QUIT`).
fn same_signal(given: &str, wanted: &str) -> bool {
    let given = given.trim().to_ascii_uppercase();
    let name = given.strip_prefix("SIG").unwrap_or(&given);
    let number = match wanted {
        "QUIT" => "3",
        "WINCH" => "28",
        _ => "",
    };
    name == wanted || name == number
}
