//! Whether the shell of an image replaces itself with the app of a
//! `sh -c` script, or forks it and stays PID 1 without passing SIGTERM on:
//! the verdict LD101, LD102 and LD204 share, and the words they say it in.

use crate::images::{base_of, Shell};
use crate::shell::{basename, commands, last_is_exec};

/// A shell, and where it comes from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellOf {
    /// Its family.
    pub shell: Shell,
    /// The image (or `SHELL` instruction) it comes from, as said in a
    /// message: `python:3.12 (Debian)`.
    pub source: String,
}

impl ShellOf {
    /// The `/bin/sh` of `image`.
    pub fn of_image(image: &str) -> ShellOf {
        let base = base_of(image);
        let source = match base.distro {
            distro if distro.is_empty() || distro == image => image.to_owned(),
            distro => format!("{image} ({distro})"),
        };
        ShellOf {
            shell: base.shell,
            source,
        }
    }

    /// The shell `program` runs in an image whose `/bin/sh` is `self`:
    /// `sh` is the image's, `bash` is bash wherever it is.
    pub fn running(&self, program: &str) -> ShellOf {
        match Shell::of_program(program) {
            None => self.clone(),
            Some(shell) => ShellOf {
                shell,
                source: format!("`{}`", basename(program)),
            },
        }
    }
}

/// What a shell does with a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It execs the app (or the script says `exec`): the app is PID 1.
    Execs,
    /// Several commands: every shell forks them and stays.
    Compound,
    /// One command the shell forks all the same; the sentence says which
    /// shell and why.
    Forks(String),
    /// A base whose shell is not known: which shells break and which do not.
    Unknown(String),
    /// An image with no shell: the command cannot start.
    NoShell(String),
}

/// Builtins and keywords: a shell cannot exec them, so the app they end
/// with was started before and the shell stays.
const NOT_EXECUTABLE: &[&str] = &[
    "wait", "true", "false", ":", "exit", "return", "echo", "printf", "set", "export", "unset",
    "cd", "trap", "read", "sleep", "fi", "done", "esac", "}", ")", "then", "else", "do", "if",
    "while", "until", "for", "case", "{", "(", "!", ".", "source", "eval", "local",
];

/// The verdict on `script` (variables already replaced) run by `shell`.
///
/// A shell that execs at all (bash, BusyBox) execs only the last command
/// of the script's top-level list, and only a plain one: not backgrounded,
/// not in a pipeline, not a builtin, keyword or function of the script,
/// with no `trap` handler set before; bash not with a redirection either.
/// dash never does. `tests/shells.rs` checks this against the shells.
pub fn verdict(shell: &ShellOf, script: &str) -> Verdict {
    if last_is_exec(script) {
        return Verdict::Execs;
    }
    if shell.shell == Shell::None {
        return Verdict::NoShell(format!(
            "{} has no shell, so this command cannot even start",
            shell.source
        ));
    }
    if shell.shell == Shell::Windows {
        return Verdict::Unknown(format!(
            "{} is a Windows image, and lameduck does not know whether a stop reaches the app through `cmd`",
            shell.source
        ));
    }
    let all = commands(script);
    let Some(last) = all.last() else {
        return Verdict::Compound;
    };
    // The program, after `NAME=value` words (they set its environment).
    let is_assignment = |w: &&str| {
        w.split_once('=').is_some_and(|(n, _)| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let first = last
        .text
        .split_whitespace()
        .find(|w| !is_assignment(w))
        .unwrap_or("=");
    // `name() {` or `function name {` defines the command as a function.
    let function = all.iter().any(|c| {
        let (keyword, text) = match c.text.strip_prefix("function ") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, c.text.as_str()),
        };
        text.strip_prefix(first).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with("()") || (keyword && (rest.is_empty() || rest.starts_with('{')))
        })
    });
    let handler = all.iter().any(|c| {
        let mut words = c.text.split_whitespace();
        words.next() == Some("trap")
            && words
                .next()
                .is_some_and(|h| !matches!(h, "''" | "\"\"" | "-"))
    });
    let plain = !all.iter().any(|c| c.background || c.piped)
        && !NOT_EXECUTABLE.contains(&first)
        && !first.contains('=')
        && !function
        && !handler;
    if !plain {
        return Verdict::Compound;
    }
    let redirects = has_redirection(&last.text);
    let lone = if all.len() == 1 {
        "even a lone command"
    } else {
        "the last command"
    };
    match shell.shell.execs(redirects) {
        Some(true) => Verdict::Execs,
        Some(false) if shell.shell == Shell::Bash => Verdict::Forks(format!(
            "bash, the shell of {}, forks a command with a redirection and stays PID 1, keeping SIGTERM from the app",
            shell.source
        )),
        Some(false) => Verdict::Forks(format!(
            "{}, the shell of {}, forks {lone} and stays PID 1, keeping SIGTERM from the app",
            shell.shell.name(),
            shell.source
        )),
        None => Verdict::Unknown(format!(
            "lameduck does not know the shell of {}: dash (Debian, Ubuntu) would fork {lone} and keep SIGTERM from the app; BusyBox ash (Alpine){} would exec it",
            shell.source,
            if redirects { "" } else { " and bash" }
        )),
    }
}

/// Whether a command has a redirection outside quotes.
fn has_redirection(command: &str) -> bool {
    let mut quote = None;
    command.chars().any(|c| match quote {
        Some(q) => {
            if c == q {
                quote = None;
            }
            false
        }
        None if c == '\'' || c == '"' => {
            quote = Some(c);
            false
        }
        None => c == '>' || c == '<',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_command_on_four_bases() {
        let script = "java $JAVA_OPTS -jar app.jar";
        let on = |image: &str| verdict(&ShellOf::of_image(image), script);
        assert!(
            matches!(on("openjdk:11"), Verdict::Forks(s) if s.starts_with("dash, the shell of openjdk:11 (Debian), forks"))
        );
        assert_eq!(on("eclipse-temurin:17-alpine"), Verdict::Execs);
        assert_eq!(on("centos:7"), Verdict::Execs);
        assert!(matches!(
            on("gcr.io/distroless/java17"),
            Verdict::NoShell(_)
        ));
        assert!(matches!(
            on("registry.example.com/java"),
            Verdict::Unknown(_)
        ));
        let bash = ShellOf::of_image("centos:7");
        assert!(matches!(
            verdict(&bash, "app >/tmp/log 2>&1"),
            Verdict::Forks(_)
        ));
        assert_eq!(verdict(&bash, "app '>' x"), Verdict::Execs);
        assert_eq!(verdict(&bash, "a; exec b"), Verdict::Execs);
        assert_eq!(verdict(&bash, "a; b"), Verdict::Execs);
        assert_eq!(verdict(&bash, "a & b"), Verdict::Compound);
        assert_eq!(verdict(&bash, "a | b"), Verdict::Compound);
        assert_eq!(verdict(&bash, "b; wait"), Verdict::Compound);
        assert_eq!(verdict(&bash, "trap 'kill 0' TERM; b"), Verdict::Compound);
        assert_eq!(verdict(&bash, "main() { b; }; main"), Verdict::Compound);
        assert!(matches!(
            verdict(&ShellOf::of_image("debian"), "a && b"),
            Verdict::Forks(_)
        ));
        let alpine = ShellOf::of_image("alpine:3.20");
        assert_eq!(verdict(&alpine, "app 2>&1"), Verdict::Execs);
        assert!(matches!(
            verdict(&alpine.running("/bin/bash"), "app 2>&1"),
            Verdict::Forks(_)
        ));
        assert!(matches!(
            verdict(&bash.running("dash"), "app"),
            Verdict::Forks(_)
        ));
    }
}
