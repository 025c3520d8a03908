//! The Dockerfile rules: how the image's command hears SIGTERM, and how
//! many processes it starts.
//!
//! Only the final stage makes the image; it inherits ENTRYPOINT, CMD,
//! STOPSIGNAL, ENV, WORKDIR and copied files from an earlier stage it is
//! built `FROM`, as Docker does. Variables are replaced where they are at
//! build or run time (see [`expand`]). With a build [`Context`], scripts the
//! image runs are read from it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use lameduck_lint::dockerfile;
//!
//! let dockerfile = "FROM alpine\nCOPY start.sh /start.sh\nENTRYPOINT [\"/start.sh\"]\n";
//! let context: BTreeMap<String, String> =
//!     [("start.sh".to_owned(), "#!/bin/sh\n./migrate\njava -jar app.jar\n".to_owned())].into();
//! let findings = dockerfile::lint_in("Dockerfile", dockerfile, &context).expect("within bounds");
//! assert_eq!(findings[0].rule, "LD103");
//! assert_eq!(findings[0].line, 3);
//! ```

mod context;
pub mod expand;
mod parse;
mod processes;
mod signals;
mod stage;

pub use context::{Context, Dir, NoContext};
pub use parse::{parse, CommandForm, Instruction};
pub use stage::DockerfileError;

use crate::finding::{Finding, Rule};
use crate::forks::ShellOf;
use crate::images::Shell;
use signals::Wrapper;
use stage::{final_stage, Stage};

/// Lints the Dockerfile `text`, found at `path`, without its build context
/// (standard input): scripts the image runs are not read. An error when its
/// variables expand past the bounds of [`expand`].
pub fn lint(path: &str, text: &str) -> Result<Vec<Finding>, DockerfileError> {
    lint_in(path, text, &NoContext)
}

/// Lints the Dockerfile `text`, found at `path`, whose build context is
/// `context`: scripts it copies in and runs are read from there.
pub fn lint_in(
    path: &str,
    text: &str,
    context: &dyn Context,
) -> Result<Vec<Finding>, DockerfileError> {
    let mut findings = lint_unfiltered(path, text, context)?;
    findings.retain(|f| !ignored(text, f.line, f.rule));
    Ok(findings)
}

/// Lints the Dockerfile at `path` (already read into `text`) with the
/// directory it is in as its build context, as `docker build DIR` does.
pub fn lint_file(path: &std::path::Path, text: &str) -> Result<Vec<Finding>, DockerfileError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    lint_in(&path.display().to_string(), text, &Dir::new(dir))
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

/// The image's command as the rules see it.
struct Image<'a> {
    stage: &'a Stage,
    /// The argv Docker starts: ENTRYPOINT then CMD, a shell form as
    /// `/bin/sh -c SCRIPT`.
    argv: Vec<String>,
    /// Whether `argv` ends in a `/bin/sh -c` made of a shell form.
    from_shell_form: bool,
    /// The length of a shell form's argv: the shell's words and the script.
    shell_form_len: usize,
    /// The instruction that gives the program: ENTRYPOINT, else CMD.
    holder: Option<&'a Instruction>,
    /// The init in front of the app, if any.
    wrapper: Option<Wrapper>,
    /// The shell of its shell forms: `SHELL`, else the base's `/bin/sh`.
    shell: ShellOf,
}

impl<'a> Image<'a> {
    fn of(stage: &'a Stage) -> Image<'a> {
        let default_shell = ["/bin/sh".to_owned(), "-c".to_owned()];
        let shell_words = stage.shell.as_deref().unwrap_or(&default_shell);
        let shell = |script: String| {
            let mut argv = shell_words.to_vec();
            argv.push(script);
            argv
        };
        let base_shell = ShellOf::of_image(&stage.base);
        let image_shell = match shell_words.first() {
            Some(program) if stage.shell.is_some() && Shell::of_program(program).is_some() => {
                let mut named = base_shell.running(program);
                named.source = format!("SHELL {}", serde_json::json!(shell_words));
                named
            }
            _ => base_shell,
        };
        let mut argv = Vec::new();
        let mut from_shell_form = false;
        match stage.entrypoint.as_ref().map(|i| (i, i.command())) {
            Some((_, CommandForm::Shell(script))) => {
                argv = shell(script);
                from_shell_form = true;
            }
            entry => {
                if let Some((_, CommandForm::Exec(words))) = entry {
                    argv = words;
                }
                match stage.cmd.as_ref().map(Instruction::command) {
                    Some(CommandForm::Exec(words)) => argv.extend(words),
                    Some(CommandForm::Shell(script)) => {
                        argv.extend(shell(script));
                        from_shell_form = true;
                    }
                    None => {}
                }
            }
        }
        Image {
            stage,
            wrapper: Wrapper::of(&argv),
            argv,
            from_shell_form,
            holder: stage.entrypoint.as_ref().or(stage.cmd.as_ref()),
            shell: image_shell,
            shell_form_len: shell_words.len() + 1,
        }
    }

    /// Whether the init in front signals the app's whole process group.
    fn signals_group(&self) -> bool {
        self.wrapper.as_ref().is_some_and(|w| w.signals_group)
    }

    /// The app's argv, after the init in front.
    fn app_argv(&self) -> &[String] {
        let skip = self.wrapper.as_ref().map_or(0, |w| w.skip);
        &self.argv[skip.min(self.argv.len())..]
    }
}

/// Findings of one Dockerfile, as they are found.
struct Report<'p> {
    path: &'p str,
    findings: Vec<Finding>,
}

impl Report<'_> {
    fn add(&mut self, rule: &Rule, at: &Instruction, message: String) {
        self.findings.push(Finding {
            rule: rule.id,
            severity: rule.severity,
            path: self.path.to_owned(),
            line: at.line,
            column: at.args_column,
            message,
        });
    }
}

fn lint_unfiltered(
    path: &str,
    text: &str,
    context: &dyn Context,
) -> Result<Vec<Finding>, DockerfileError> {
    let Some(stage) = final_stage(&parse(text))? else {
        return Ok(Vec::new());
    };
    let image = Image::of(&stage);
    let mut report = Report {
        path,
        findings: Vec::new(),
    };
    signals::check(&image, &mut report);
    processes::check(&image, context, &mut report);
    report.findings.sort_by_key(|f| (f.line, f.column));
    Ok(report.findings)
}
