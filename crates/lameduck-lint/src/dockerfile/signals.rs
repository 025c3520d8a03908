//! LD101, LD102, LD104: whether SIGTERM, or the signal the server needs,
//! reaches the app.

use super::expand::words;
use super::{CommandForm, Image, Instruction, Report};
use crate::forks::{verdict, Verdict};
use crate::images::{base_of, Shell};
use crate::rules::{LD101, LD102, LD104};
use crate::shell::{basename, is_compound, last_command, last_text, shell_script};

/// `sh -c`, `bash -c`: how the argv names its shell.
fn shell_name(program: &str) -> String {
    format!("{} -c", basename(program))
}

pub(super) fn check(image: &Image<'_>, report: &mut Report<'_>) {
    let stage = image.stage;
    let group = image.signals_group();
    let entry = stage.entrypoint.as_ref().map(|i| (i, i.command()));
    let shell_form = |keyword: &str, i: &Instruction, script: &str, report: &mut Report<'_>| {
        let expanded = stage.expand_at_run_time(script);
        let (program, fix) = exec_form_of(image, script);
        let lameduck = match keyword {
            "CMD" => ", or put `lameduck run --` in ENTRYPOINT",
            _ => "",
        };
        let under = match image.shell.shell {
            Shell::Windows => "cmd /S /C",
            _ => "/bin/sh",
        };
        let message = match verdict(&image.shell, &expanded) {
            Verdict::Execs => return,
            Verdict::Compound => format!("{keyword} in shell form runs {program}under {under}, which does not pass SIGTERM on: use the exec form, {fix}{lameduck}"),
            Verdict::Forks(why) | Verdict::Unknown(why) => format!("{keyword} in shell form runs {program}under {under}: {why}: use the exec form, {fix}{lameduck}"),
            Verdict::NoShell(why) => {
                let special = |c: char| "|&;<>()`*?[]{}~\\$".contains(c);
                let fix = match unquoted(&expanded).contains(special) {
                    true => "[\"app\", \"arg\"]".to_owned(),
                    false => json_array(&words(&expanded)),
                };
                format!("{keyword} in shell form runs {program}under /bin/sh, but {why}: use the exec form, {fix}")
            }
        };
        report.add(&LD101, i, message);
    };
    if let Some((i, CommandForm::Shell(script))) = &entry {
        shell_form("ENTRYPOINT", i, script, report);
    }
    if let Some(i) = &stage.cmd {
        if let CommandForm::Shell(script) = i.command() {
            let exec_entry = matches!(entry, Some((_, CommandForm::Exec(_))));
            if !group && (entry.is_none() || exec_entry) {
                shell_form("CMD", i, &script, report);
            }
        }
    }

    let Some(holder) = image.holder else {
        return;
    };
    let app_argv = image.app_argv();
    let mut program = app_argv.first().map(|p| basename(p).to_owned());
    if let Some(script) = shell_script(app_argv) {
        let script = stage.expand_at_run_time(script);
        program = last_command(&script);
        // A shell form is LD101's; this is `sh -c` written out.
        let written = !(image.from_shell_form && app_argv.len() == image.shell_form_len);
        let shell = image.shell.running(&app_argv[0]);
        let why = match verdict(&shell, &script) {
            _ if !written || group => None,
            Verdict::Execs => None,
            Verdict::Compound => Some("the app runs inside `sh -c` without `exec`, so the shell keeps SIGTERM from it: end the script with `exec app ...`, or put `lameduck run --` in ENTRYPOINT".to_owned()),
            Verdict::Forks(why) | Verdict::Unknown(why) => Some(format!("the app runs inside `{}` without `exec`: {why}: end the script with `exec {}`, or put `lameduck run --` in ENTRYPOINT", shell_name(&app_argv[0]), last_text(&script))),
            Verdict::NoShell(why) => Some(format!("the command runs `{} -c`, but {why}: run the program itself in the exec form", basename(&app_argv[0]))),
        };
        if let Some(message) = why {
            report.add(&LD102, holder, message);
        }
    }

    // Apache's control script runs httpd without `exec` (upstream's
    // apachectl, Debian's apache2ctl): the shell in front gets the signal.
    if let Some(wrapper) = program
        .as_deref()
        .filter(|p| matches!(*p, "apache2ctl" | "apachectl"))
    {
        report.add(&LD104, holder, format!("`{wrapper}` starts Apache without `exec`: a shell stays in front of it and gets the stop signal, so Apache is killed, not stopped gracefully, whatever STOPSIGNAL says: run `apache2-foreground` (as the official httpd and php:*-apache images do), or `exec apache2 -D FOREGROUND` after `. /etc/apache2/envvars`, with `STOPSIGNAL SIGWINCH`"));
        return;
    }
    let Some((server, wanted)) = program.as_deref().and_then(graceful_signal) else {
        return;
    };
    let given = image
        .wrapper
        .as_ref()
        .and_then(|w| w.stop_signal.clone())
        .or_else(|| stage.stopsignal.as_ref().map(|s| s.args.trim().to_owned()));
    if given.as_deref().is_some_and(|g| g.contains('$')) {
        // Set by a build argument or the base image: unknown here.
        return;
    }
    let inherited = base_of(&stage.base)
        .stop_signal
        .is_some_and(|(s, signal)| s == server && signal == wanted);
    let matches = given.as_deref().is_some_and(|g| same_signal(g, wanted));
    if !(matches || (given.is_none() && inherited)) {
        let given = given.unwrap_or_else(|| "SIGTERM".to_owned());
        report.add(&LD104, holder, format!("{server} stops gracefully on SIG{wanted}, but the container gets {given}: add `STOPSIGNAL SIG{wanted}` (or `lameduck run --stop-signal {wanted}`)"));
    }
}

/// For a shell form's script: "`program` " (as the shell would run it,
/// ENV replaced) and the exec form to use instead.
fn exec_form_of(image: &Image<'_>, script: &str) -> (String, String) {
    let expanded = image.stage.expand_at_run_time(script);
    let program = last_command(&expanded)
        .filter(|p| !p.contains('$'))
        .map_or(String::new(), |p| format!("`{p}` "));
    let special = |c: char| "|&;<>()`*?[]{}~\\".contains(c);
    let fix = if is_compound(script) || script.contains('`') || script.contains("$(") {
        "[\"app\", \"arg\"]".to_owned()
    } else if script.contains('$') {
        // The exec form replaces no variables: a shell that execs keeps them.
        json_array(&["sh".into(), "-c".into(), format!("exec {script}")])
    } else if unquoted(script).contains(special) {
        "[\"app\", \"arg\"]".to_owned()
    } else {
        json_array(&words(script))
    };
    (program, fix)
}

/// `text` without what is in quotes.
fn unquoted(text: &str) -> String {
    let mut quote = None;
    text.chars()
        .filter(|&c| match quote {
            Some(q) if c == q => {
                quote = None;
                false
            }
            Some(_) => false,
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                false
            }
            None => true,
        })
        .collect()
}

/// `["a", "b"]`, as Dockerfiles write it.
fn json_array(words: &[String]) -> String {
    let items: Vec<String> = words
        .iter()
        .map(|w| serde_json::Value::String(w.clone()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

/// An init in front of the app: lameduck, tini, dumb-init.
#[derive(Debug)]
pub(super) struct Wrapper {
    /// Words to skip to reach the app's own argv.
    pub(super) skip: usize,
    /// Whether it signals the app's whole process group.
    pub(super) signals_group: bool,
    stop_signal: Option<String>,
}

impl Wrapper {
    pub(super) fn of(words: &[String]) -> Option<Wrapper> {
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
        "httpd" | "apache2" | "httpd-foreground" | "apache2-foreground" => {
            Some(("Apache httpd", "WINCH"))
        }
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_form_to_suggest() {
        let w = |s: &[&str]| s.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        assert_eq!(json_array(&w(&["a", "b c", "\""])), r#"["a", "b c", "\""]"#);
        assert_eq!(graceful_signal("php-fpm8.2"), Some(("php-fpm", "QUIT")));
        assert!(same_signal("sigquit", "QUIT") && same_signal("3", "QUIT"));
        assert_eq!(unquoted("a 'b; c' \"d\" e;"), "a   e;");
    }
}
