//! What a shell script does with the processes it starts: which program it
//! leaves running last, whether it `exec`s it, whether it runs several at
//! once, and whether it handles SIGTERM itself.

use std::collections::HashMap;

use crate::shell::{basename, commands, is_shell, Command};

/// A command of a script that starts a program (not a builtin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// The command as written, without `exec` and leading keywords.
    pub text: String,
    /// The 1-based line of the script.
    pub line: usize,
    /// Whether `exec` replaces the shell with it.
    pub exec: bool,
    /// Whether `&` sends it to the background.
    pub background: bool,
}

/// What [`analyze`] finds in a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The last program the script starts, following calls to its own
    /// functions.
    pub last: Option<Start>,
    /// A program started in the background with another one after it:
    /// the script runs several processes at once.
    pub concurrent: Option<(Start, Start)>,
    /// A `trap` on TERM: the script forwards or handles SIGTERM itself.
    pub traps_term: bool,
    /// The script it hands over to last with `. FILE` or `source FILE`
    /// (as written): what that one starts last is what runs.
    pub sourced: Option<String>,
}

impl Analysis {
    /// Whether the last program is the script's arguments, `exec "$@"`:
    /// what the image's CMD gives.
    pub fn runs_its_arguments(&self) -> bool {
        self.last.as_ref().is_some_and(|s| {
            let program = s.text.split_whitespace().next().unwrap_or_default();
            matches!(program, "\"$@\"" | "$@" | "\"${@}\"" | "${@}")
        })
    }
}

/// Whether a file is a shell script: a `#!` line naming a shell (also
/// through `/usr/bin/env`).
pub fn is_shell_script(text: &str) -> bool {
    let Some(line) = text.lines().next().and_then(|l| l.strip_prefix("#!")) else {
        return false;
    };
    let mut words = line.split_whitespace();
    let Some(interpreter) = words.next() else {
        return false;
    };
    if basename(interpreter) == "env" {
        return words.find(|w| !w.starts_with('-')).is_some_and(is_shell);
    }
    is_shell(interpreter) || (basename(interpreter) == "busybox" && words.next() == Some("sh"))
}

/// Builtins and helpers that start no lasting program.
const NOT_PROGRAMS: &[&str] = &[
    "exit", "return", "set", "unset", "export", "readonly", "local", "declare", "typeset", "shift",
    "cd", "pushd", "popd", "trap", "wait", "true", "false", ":", "echo", "printf", "umask",
    "ulimit", "source", ".", "eval", "test", "[", "[[", "read", "sleep", "alias", "getopts",
    "break", "continue", "hash", "type", "command", "mkdir", "chmod", "chown", "rm", "cp", "mv",
    "ln", "touch", "cat", "envsubst", "sed",
];

/// Words that open or close a compound command around the real one.
const KEYWORDS: &[&str] = &["then", "else", "do", "{", "(", "!", "time"];

/// The analysis of `script`'s top level (function bodies are followed
/// when the script calls them last).
pub fn analyze(script: &str) -> Analysis {
    let (top, functions) = split_functions(commands(script));
    let starts: Vec<Start> = top.iter().filter_map(start_of).collect();
    let traps_term = top
        .iter()
        .chain(functions.values().flatten())
        .any(|c| traps_term(&c.text));
    let concurrent = starts.iter().enumerate().find_map(|(i, s)| {
        let after = starts.get(i + 1)?;
        s.background.then(|| (s.clone(), after.clone()))
    });
    // The last command that starts a program or sources a script.
    let sourced = top
        .iter()
        .rev()
        .find_map(|c| match sourced_file(&c.text) {
            Some(file) => Some(Some(file)),
            None => start_of(c).map(|_| None),
        })
        .flatten();
    let mut last = match sourced {
        Some(_) => None,
        None => starts.last().cloned(),
    };
    // `main "$@"` as the last line: what main starts last. A function is
    // never the program to blame (`exec main` is no fix).
    for _ in 0..4 {
        let Some(called) = last
            .as_ref()
            .and_then(|s| s.text.split_whitespace().next())
            .and_then(|name| functions.get(name))
        else {
            break;
        };
        last = called.iter().rev().find_map(start_of);
    }
    Analysis {
        last,
        concurrent,
        traps_term,
        sourced,
    }
}

/// The file of `. FILE ...` or `source FILE ...`.
fn sourced_file(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    match words.next()? {
        "." | "source" => {}
        _ => return None,
    }
    let file = words.next()?.trim_matches(['"', '\'']);
    (!file.is_empty()).then(|| file.to_owned())
}

/// Whether a command is `trap ... TERM`.
fn traps_term(text: &str) -> bool {
    let mut words = text.split_whitespace();
    words.next() == Some("trap")
        && words.any(|w| {
            let w = w.trim_matches(['"', '\'']).to_ascii_uppercase();
            matches!(w.as_str(), "TERM" | "SIGTERM" | "15")
        })
}

/// The script's top-level commands, and its functions' bodies by name.
fn split_functions(all: Vec<Command>) -> (Vec<Command>, HashMap<String, Vec<Command>>) {
    let mut top = Vec::new();
    let mut functions: HashMap<String, Vec<Command>> = HashMap::new();
    let mut current: Option<(String, usize)> = None;
    for mut command in all {
        if let Some((name, depth)) = current.as_mut() {
            let opens = command
                .text
                .split_whitespace()
                .filter(|w| *w == "{")
                .count();
            let closes = command
                .text
                .split_whitespace()
                .filter(|w| *w == "}")
                .count();
            *depth = (*depth + opens).saturating_sub(closes);
            let body = functions.entry(name.clone()).or_default();
            body.push(command);
            if *depth == 0 {
                current = None;
            }
            continue;
        }
        if let Some((name, rest)) = function_header(&command.text) {
            let opens = rest.split_whitespace().filter(|w| *w == "{").count();
            let rest = rest.trim_start().trim_start_matches('{').trim().to_owned();
            let body = functions.entry(name.clone()).or_default();
            if !rest.is_empty() && rest != "}" {
                command.text = rest.clone();
                body.push(command);
            }
            let closed = rest.split_whitespace().any(|w| w == "}");
            if !closed {
                current = Some((name, opens.max(1)));
            }
            continue;
        }
        top.push(command);
    }
    (top, functions)
}

/// `name() {...` or `function name {...`: the name and what follows.
fn function_header(text: &str) -> Option<(String, &str)> {
    if let Some(rest) = text.strip_prefix("function ") {
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '(' || c == '{')
            .unwrap_or(rest.len());
        let after = rest[end..].trim_start().trim_start_matches("()");
        return Some((rest[..end].to_owned(), after));
    }
    let open = text.find("()")?;
    let name = text[..open].trim();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':');
    valid.then(|| (name.to_owned(), &text[open + 2..]))
}

/// The program a command starts, if it starts one.
fn start_of(command: &Command) -> Option<Start> {
    let mut words: Vec<&str> = command.text.split_whitespace().collect();
    // Leading keywords, case patterns (`server)`), and assignments.
    loop {
        let first = *words.first()?;
        let pattern = first.ends_with(')') && !first.contains("$(") && !first.starts_with('(');
        let assignment = first.contains('=')
            && !first.starts_with(['=', '"', '\''])
            && first
                .split('=')
                .next()
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if KEYWORDS.contains(&first) || pattern || assignment {
            words.remove(0);
        } else {
            break;
        }
    }
    let first = *words.first()?;
    if matches!(
        first,
        "if" | "elif"
            | "while"
            | "until"
            | "for"
            | "case"
            | "select"
            | "fi"
            | "done"
            | "esac"
            | "}"
            | ")"
            | "in"
    ) {
        return None;
    }
    let exec = first == "exec";
    if exec {
        words.remove(0);
        while words.first().is_some_and(|w| w.starts_with('-')) {
            let flag = words.remove(0);
            if flag == "-a" && !words.is_empty() {
                words.remove(0);
            }
        }
        // `exec >log 2>&1` only redirects the shell's own output.
        if words.iter().all(|w| is_redirection(w)) {
            return None;
        }
    }
    let program = *words.first()?;
    if NOT_PROGRAMS.contains(&basename(program)) || is_redirection(program) {
        return None;
    }
    Some(Start {
        text: words.join(" "),
        line: command.line,
        exec,
        background: command.background,
    })
}

/// `>file`, `2>&1`, `<in`, `3>&-`.
fn is_redirection(word: &str) -> bool {
    word.trim_start_matches(|c: char| c.is_ascii_digit())
        .starts_with(['>', '<'])
        || word.starts_with("&>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_program_skips_builtins_keywords_and_functions() {
        let script = "#!/bin/sh\nset -e\nif [ \"$1\" = server ]; then\n  echo starting\nfi\nmain() {\n  ./migrate\n  java -jar app.jar\n}\nmain \"$@\"\nexit $?\n";
        let a = analyze(script);
        let last = a.last.expect("a program");
        assert_eq!(
            (last.text.as_str(), last.line, last.exec),
            ("java -jar app.jar", 8, false)
        );
        assert!(a.concurrent.is_none() && !a.traps_term);
    }

    #[test]
    fn exec_of_the_arguments_and_of_redirections() {
        let a = analyze("#!/bin/sh\nexec >/proc/1/fd/1 2>&1\ncase \"$1\" in\n  web) exec app ;;\n  *) exec \"$@\" ;;\nesac\n");
        let last = a.last.clone().expect("a program");
        assert!(last.exec);
        assert!(a.runs_its_arguments());
    }

    #[test]
    fn background_processes_and_traps() {
        let a = analyze("nginx -g 'daemon off;' &\nphp-fpm -F\n");
        let (bg, after) = a.concurrent.expect("two at once");
        assert_eq!((bg.line, after.line), (1, 2));
        let single = analyze("./migrate\napp &\nwait $!\n");
        assert!(single.concurrent.is_none());
        assert!(analyze("trap 'kill -TERM $pid' SIGTERM\napp & pid=$!\nwait").traps_term);
    }

    #[test]
    fn a_sourced_script_is_handed_over_to_and_functions_are_never_blamed() {
        let a =
            analyze("#!/bin/sh\nset -e\n./prepare\n. /usr/local/bin/docker-entrypoint.sh \"$@\"\n");
        assert_eq!(
            a.sourced.as_deref(),
            Some("/usr/local/bin/docker-entrypoint.sh")
        );
        assert_eq!(a.last, None);
        let a = analyze("#!/bin/bash\nsource ./env.sh\nexec app\n");
        assert_eq!((a.sourced, a.last.map(|l| l.exec)), (None, Some(true)));
        // A function that starts nothing: no program is the last.
        let a = analyze("#!/bin/sh\nsetup() {\n  export A=1\n  echo ready\n}\nsetup\n");
        assert_eq!(a.last, None);
    }

    #[test]
    fn shebangs() {
        assert!(is_shell_script("#!/bin/sh\n"));
        assert!(is_shell_script("#!/usr/bin/env bash\n"));
        assert!(is_shell_script("#!/bin/busybox sh\n"));
        assert!(!is_shell_script("#!/usr/bin/env python3\n"));
        assert!(!is_shell_script("echo no shebang\n"));
    }
}
