//! LD103 and LD105: the scripts the image starts, read from the build
//! context, and the processes they leave running.

use super::context::{source_of, Context};
use super::{Image, Instruction, Report};
use crate::images::Shell;
use crate::rules::{LD103, LD105};
use crate::script::{analyze, is_shell_script, Analysis};
use crate::shell::{basename, is_shell, shell_script};

/// Programs that are an init or a process supervisor themselves: they reap
/// and signal what they start.
const INITS: &[&str] = &[
    "tini",
    "tini-static",
    "dumb-init",
    "catatonit",
    "docker-init",
    "init",
    "systemd",
    "supervisord",
    "s6-svscan",
    "runsvdir",
    "runit",
    "pm2-runtime",
    "honcho",
    "foreman",
    "overmind",
    "hivemind",
    "circusd",
];

/// The default `PATH` of a container.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(super) fn check(image: &Image<'_>, context: &dyn Context, report: &mut Report<'_>) {
    let Some(holder) = image.holder else {
        return;
    };
    let group = image.signals_group();
    let mut argv: Vec<String> = image.app_argv().to_vec();
    let init =
        image.wrapper.is_some() || argv.first().is_some_and(|p| INITS.contains(&basename(p)));
    let mut at: &Instruction = holder;
    // A script that ends in `exec "$@"` runs the CMD next: follow it.
    for _ in 0..4 {
        if let Some(script) = shell_script(&argv) {
            let analysis = analyze(&image.stage.expand_at_run_time(script));
            if !init && !analysis.traps_term {
                if let Some((bg, after)) = &analysis.concurrent {
                    report.add(&LD105, at, format!("the command runs `{}` in the background and `{}` beside it, with no init as PID 1 to pass SIGTERM on and reap them: put `lameduck run --` (or tini, dumb-init) in ENTRYPOINT", bg.text, after.text));
                }
            }
            return;
        }
        let Some((name, text, rest)) = script_file(image, &argv, context) else {
            return;
        };
        let (mut name, mut analysis) = (name, analyze(&text));
        // `. /other-entrypoint.sh "$@"`: the shell goes on in that script.
        for _ in 0..4 {
            let Some(file) = analysis.sourced.clone() else {
                break;
            };
            let target = image.stage.absolute(&image.stage.expand_at_run_time(&file));
            let Some((path, text)) = source_of(&target, image.stage, context)
                .and_then(|p| context.read(&p).map(|t| (p, t)))
            else {
                // Not in the build context: nothing to blame.
                return;
            };
            name = path;
            analysis = analyze(&text);
        }
        if image.shell.shell == Shell::None {
            report.add(&LD103, at, format!("{name} is a shell script, but {} has no shell to run it: the container cannot start; start the app itself in the exec form", image.shell.source));
            return;
        }
        if analysis.traps_term {
            return;
        }
        if !group {
            no_exec(&analysis, &name, at, report);
        }
        if !init {
            if let Some((bg, after)) = &analysis.concurrent {
                report.add(&LD105, at, format!("{name} starts `{}` in the background (line {}) and `{}` beside it (line {}), with no init as PID 1 to pass SIGTERM on and reap them: put `lameduck run --` (or tini, dumb-init) in ENTRYPOINT", bg.text, bg.line, after.text, after.line));
            }
        }
        if !analysis.runs_its_arguments() || rest.is_empty() {
            return;
        }
        if let (Some(cmd), Some(entry)) = (&image.stage.cmd, &image.stage.entrypoint) {
            if std::ptr::eq(at, entry) {
                at = cmd;
            }
        }
        argv = rest;
    }
}

/// LD103: the script's last program without `exec`.
fn no_exec(analysis: &Analysis, name: &str, at: &Instruction, report: &mut Report<'_>) {
    let Some(last) = analysis.last.as_ref().filter(|l| !l.exec) else {
        return;
    };
    let keep_alive = ["tail -f", "tail -F", "sleep infinity"];
    if keep_alive.iter().any(|k| last.text.starts_with(k)) {
        report.add(&LD103, at, format!("{name} ends in `{}` (line {}) to keep the container up while what it started runs on: nothing passes SIGTERM to them; run the app in the foreground with `exec app`, or put `lameduck run --` in ENTRYPOINT", last.text, last.line));
        return;
    }
    let how = if last.background {
        "in the background and waits"
    } else {
        "without `exec`"
    };
    report.add(&LD103, at, format!("{name} starts `{}` (line {}) {how}: the shell stays PID 1 and does not pass SIGTERM on; make it `exec {}`", last.text, last.line, last.text));
}

/// The context script `argv` runs (as the program, or as the file a shell
/// is given): its context path, its text, and the arguments after it.
fn script_file(
    image: &Image<'_>,
    argv: &[String],
    context: &dyn Context,
) -> Option<(String, String, Vec<String>)> {
    let program = argv.first()?;
    let (file, rest, by_shell) = if is_shell(program) {
        let at = argv.iter().skip(1).position(|w| !w.starts_with('-'))? + 1;
        (&argv[at], &argv[at + 1..], true)
    } else {
        (program, &argv[1..], false)
    };
    let stage = image.stage;
    let targets: Vec<String> = if file.contains('/') || by_shell {
        vec![stage.absolute(file)]
    } else {
        let path = stage.run_var("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{file}", d.trim_end_matches('/')))
            .collect()
    };
    let source = targets.iter().find_map(|t| source_of(t, stage, context))?;
    let text = context.read(&source)?;
    (by_shell || is_shell_script(&text)).then(|| (source, text, rest.to_vec()))
}
