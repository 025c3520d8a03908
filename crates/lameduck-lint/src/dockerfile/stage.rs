//! The stages of a Dockerfile and what the last one ends up with: its
//! command, stop signal, environment, working directory and copied files.
//!
//! A stage built `FROM` an earlier one inherits its ENTRYPOINT, CMD,
//! STOPSIGNAL, ENV, WORKDIR and files, as Docker does; ARGs are per stage,
//! and an ARG declared before the first FROM is only seen by a stage that
//! declares it again.

use super::expand::{assignments, expand, words, ExpandError, Vars};
use super::parse::Instruction;

/// A Dockerfile the linter refuses, and the line that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerfileError {
    /// The 1-based line of the instruction.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

/// How many variables stages may copy from the stages they are built
/// from, in all: `FROM a AS b` copies a's ENV, and ten thousand stages of
/// ten thousand variables would take minutes and gigabytes.
const MAX_INHERITED: usize = 1_000_000;

/// How many bytes ENV and ARG values may take in all: each is at most
/// [`super::expand::MAX_EXPANSION`], and ten thousand lines of
/// `ENV Bn=${A}${A}` must not make ten thousand of them.
const MAX_VALUES: usize = 64 << 20;

/// What one stage sets.
#[derive(Clone, Debug, Default)]
pub struct Stage {
    name: Option<String>,
    /// The image it starts from.
    pub base: String,
    /// The last ENTRYPOINT.
    pub entrypoint: Option<Instruction>,
    /// The last CMD, unless a later ENTRYPOINT dropped an inherited one.
    pub cmd: Option<Instruction>,
    /// The CMD came from the parent stage: a new ENTRYPOINT drops it.
    cmd_inherited: bool,
    /// The STOPSIGNAL, its variables replaced.
    pub stopsignal: Option<Instruction>,
    /// ENV, inherited by later stages and seen by the command at run time.
    pub env: Vars,
    /// ARG values of this stage.
    args: Vars,
    /// The working directory, `/` unless set.
    pub workdir: String,
    /// The `SHELL` of shell forms, when set (`["/bin/bash", "-c"]`).
    pub shell: Option<Vec<String>>,
    /// The files copied in, in order.
    pub copies: Vec<Copy>,
}

/// A COPY or ADD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// The sources, as written (variables replaced).
    pub sources: Vec<String>,
    /// The destination, absolute; a trailing `/` kept.
    pub dest: String,
    /// Whether the sources are in the build context (not `--from`, no URL).
    pub from_context: bool,
}

impl Stage {
    /// What the builder replaces in COPY, WORKDIR, STOPSIGNAL...: ENV,
    /// then this stage's ARGs.
    pub fn build_var(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .or_else(|| self.args.get(name))
            .map(str::to_owned)
    }

    /// What the shell of a shell-form command sees at run time: ENV only.
    pub fn run_var(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_owned)
    }

    /// `text` as the container's shell sees it (as written if it would
    /// expand past the bounds, which [`final_stage`] refuses first for the
    /// image's command).
    pub fn expand_at_run_time(&self, text: &str) -> String {
        expand(text, &|n| self.run_var(n)).unwrap_or_else(|_| text.to_owned())
    }

    /// The absolute form of `path` in the image.
    pub fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{}/{}", self.workdir.trim_end_matches('/'), path)
        }
    }
}

/// The last stage, with what it inherits from earlier stages; an error
/// where variables expand past their bounds (see [`expand`]).
pub fn final_stage(instructions: &[Instruction]) -> Result<Option<Stage>, DockerfileError> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut global = Vars::default();
    let mut inherited = 0usize;
    let mut values = 0usize;
    let mut charge = |line: usize, assigned: &[(String, Option<String>)]| {
        values += assigned
            .iter()
            .map(|(n, v)| n.len() + v.as_ref().map_or(0, String::len))
            .sum::<usize>();
        match values > MAX_VALUES {
            true => Err(DockerfileError {
                line,
                message: format!(
                    "ENV and ARG values take over {MAX_VALUES} bytes in all: not linted"
                ),
            }),
            false => Ok(()),
        }
    };
    for i in instructions {
        let fail = |e: ExpandError| DockerfileError {
            line: i.line,
            message: e.0,
        };
        let Some(stage) = stages.last_mut().filter(|_| i.keyword != "FROM") else {
            match i.keyword.as_str() {
                "FROM" => {
                    let stage = from(i, &stages, &global).map_err(fail)?;
                    inherited += stage.env.len() + stage.copies.len();
                    if inherited > MAX_INHERITED {
                        return Err(fail(ExpandError(format!("stages copy over {MAX_INHERITED} variables from the stages they are built from: not linted"))));
                    }
                    stages.push(stage);
                }
                "ARG" => {
                    let lookup = |n: &str| global.get(n).map(str::to_owned);
                    let assigned = assignments(&i.args, false, &lookup).map_err(fail)?;
                    charge(i.line, &assigned)?;
                    for (name, value) in assigned {
                        if let Some(value) = value {
                            global.set(&name, value);
                        }
                    }
                }
                _ => {}
            }
            continue;
        };
        let build = |stage: &Stage, text: &str| expand(text, &|n| stage.build_var(n)).map_err(fail);
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
            "SHELL" => {
                if let Ok(words) = serde_json::from_str::<Vec<String>>(&i.args) {
                    stage.shell = Some(words).filter(|w| !w.is_empty());
                }
            }
            "STOPSIGNAL" => {
                let mut i = i.clone();
                i.args = build(stage, &i.args)?;
                stage.stopsignal = Some(i);
            }
            "ENV" => {
                let lookup = |n: &str| stage.build_var(n);
                let assigned = assignments(&i.args, true, &lookup).map_err(fail)?;
                charge(i.line, &assigned)?;
                for (name, value) in assigned {
                    stage.env.set(&name, value.unwrap_or_default());
                }
            }
            "ARG" => {
                let lookup = |n: &str| stage.build_var(n);
                let assigned = assignments(&i.args, false, &lookup).map_err(fail)?;
                charge(i.line, &assigned)?;
                for (name, value) in assigned {
                    // `ARG NAME` takes the default given before FROM.
                    let value = value.or_else(|| global.get(&name).map(str::to_owned));
                    if let Some(value) = value {
                        stage.args.set(&name, value);
                    }
                }
            }
            "WORKDIR" => {
                let dir = words(&build(stage, &i.args)?).join(" ");
                stage.workdir = stage.absolute(&dir);
            }
            "COPY" | "ADD" => {
                let expanded = build(stage, &i.args)?;
                if let Some(copy) = copy(&i.keyword, &expanded, stage) {
                    stage.copies.push(copy);
                }
            }
            _ => {}
        }
    }
    let Some(last) = stages.pop() else {
        return Ok(None);
    };
    // The command's shell expands ENV at run time: within bounds too.
    for i in [&last.entrypoint, &last.cmd].into_iter().flatten() {
        expand(&i.args, &|n| last.run_var(n)).map_err(|e| DockerfileError {
            line: i.line,
            message: e.0,
        })?;
    }
    Ok(Some(last))
}

/// A new stage: a copy of the stage it is built from, or a fresh one.
fn from(i: &Instruction, stages: &[Stage], global: &Vars) -> Result<Stage, ExpandError> {
    let args = expand(&i.args, &|n| global.get(n).map(str::to_owned))?;
    let words: Vec<&str> = args
        .split_whitespace()
        .filter(|w| !w.starts_with("--"))
        .collect();
    let base = words.first().copied().unwrap_or_default().to_owned();
    let name = match words.as_slice() {
        [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
        _ => None,
    };
    let parent = stages
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(base.to_ascii_lowercase().as_str()))
        .cloned();
    let mut stage = parent.unwrap_or_else(|| Stage {
        workdir: "/".into(),
        ..Stage::default()
    });
    if stage.base.is_empty() {
        stage.base = base;
    }
    stage.args = Vars::default();
    stage.cmd_inherited = stage.cmd.is_some();
    stage.name = name;
    Ok(stage)
}

/// The sources and destination of `COPY`/`ADD` arguments (shell or JSON
/// form, flags skipped).
fn copy(keyword: &str, args: &str, stage: &Stage) -> Option<Copy> {
    let mut parts = match serde_json::from_str::<Vec<String>>(args) {
        Ok(parts) if args.trim_start().starts_with('[') => parts,
        _ => words(args),
    };
    let mut from_context = true;
    while parts.first().is_some_and(|p| p.starts_with("--")) {
        let flag = parts.remove(0);
        if flag.starts_with("--from") {
            from_context = false;
        }
    }
    let dest = parts.pop()?;
    if parts.is_empty() || parts.iter().any(|p| p.starts_with("<<")) {
        return None;
    }
    if keyword == "ADD"
        && parts
            .iter()
            .any(|p| p.contains("://") || p.starts_with("git@"))
    {
        from_context = false;
    }
    let trailing = dest.ends_with('/') || dest == "." || dest == "./";
    let mut dest = stage.absolute(dest.trim_start_matches("./"));
    if trailing && !dest.ends_with('/') {
        dest.push('/');
    }
    Some(Copy {
        sources: parts,
        dest,
        from_context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    #[test]
    fn args_env_and_workdir_per_stage() {
        let text = "ARG SIG=SIGQUIT\nARG BASE=debian:12\nFROM $BASE AS base\nENV APP=/srv/app\nARG PORT=80\nWORKDIR /srv\nFROM base\nARG SIG\nSTOPSIGNAL $SIG\nWORKDIR app\nCOPY --chmod=755 run.sh ./\nCOPY --from=base /x /y\n";
        let stage = final_stage(&parse(text)).expect("valid").expect("a stage");
        assert_eq!(stage.base, "debian:12");
        assert_eq!(stage.run_var("APP").as_deref(), Some("/srv/app"));
        assert_eq!(stage.build_var("PORT"), None, "ARGs stay in their stage");
        assert_eq!(stage.stopsignal.map(|s| s.args).as_deref(), Some("SIGQUIT"));
        assert_eq!(stage.workdir, "/srv/app");
        assert_eq!(
            stage.copies,
            [
                Copy {
                    sources: vec!["run.sh".into()],
                    dest: "/srv/app/".into(),
                    from_context: true
                },
                Copy {
                    sources: vec!["/x".into()],
                    dest: "/y".into(),
                    from_context: false
                },
            ]
        );
    }

    #[test]
    fn an_env_wins_over_an_arg_and_args_are_not_seen_at_run_time() {
        let text = "FROM alpine\nARG BIN=httpd\nENV BIN=nginx\nARG ONLY_ARG=x\n";
        let stage = final_stage(&parse(text)).expect("valid").expect("a stage");
        assert_eq!(stage.build_var("BIN").as_deref(), Some("nginx"));
        assert_eq!(stage.build_var("ONLY_ARG").as_deref(), Some("x"));
        assert_eq!(stage.run_var("ONLY_ARG"), None);
    }
}
