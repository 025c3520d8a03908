//! What a command line says about signals: `sh -c` scripts, their
//! commands, their last command, and whether it is exec'd.

/// The last path component of a program.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `program` (a path or a name) is a POSIX-like shell.
pub fn is_shell(program: &str) -> bool {
    matches!(
        basename(program),
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh"
    )
}

/// The script of `sh -c SCRIPT` (bash, ash, dash, zsh too; `-ec` and such).
pub fn shell_script(argv: &[String]) -> Option<&str> {
    if !is_shell(argv.first()?) {
        return None;
    }
    let c = argv
        .iter()
        .position(|w| w.starts_with('-') && !w.starts_with("--") && w.ends_with('c'))?;
    argv.get(c + 1).map(String::as_str)
}

/// One command of a script, as the shell separates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Its text, trimmed.
    pub text: String,
    /// The 1-based line of the script it starts on.
    pub line: usize,
    /// Whether a lone `&` sends it to the background.
    pub background: bool,
    /// Whether it is in a pipeline (`a | b`): the shell forks each part.
    pub piped: bool,
}

/// Whether a script runs more than one command, so the shell cannot simply
/// exec the app in its place.
pub fn is_compound(script: &str) -> bool {
    commands(script).len() > 1
}

/// Whether the script's last command is `exec`'d, so the app replaces the shell.
pub fn last_is_exec(script: &str) -> bool {
    commands(script)
        .last()
        .is_some_and(|c| c.text.starts_with("exec ") && !c.background)
}

/// The text of the script's last command.
pub fn last_text(script: &str) -> String {
    commands(script).pop().map(|c| c.text).unwrap_or_default()
}

/// The program the script's last command runs.
pub fn last_command(script: &str) -> Option<String> {
    let last = commands(script).pop()?;
    let text = last.text.strip_prefix("exec ").unwrap_or(&last.text);
    let word = text.split_whitespace().next()?;
    Some(basename(word).to_owned())
}

/// The script's commands: split at newlines, `;`, `&`, `&&`, `|` and `||`
/// outside quotes, `$(...)` and backquotes; comments, line continuations
/// and here-document bodies left out; redirections such as `2>&1` and
/// `&>file` are not separators.
pub fn commands(script: &str) -> Vec<Command> {
    let mut splitter = Splitter {
        out: Vec::new(),
        current: String::new(),
        start_line: 1,
        line: 1,
        piped: false,
        started: false,
    };
    let chars: Vec<char> = script.chars().collect();
    let (mut quote, mut depth, mut backquote) = (None::<char>, 0usize, false);
    let mut heredocs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev = splitter.current.chars().last();
        if let Some(q) = quote {
            splitter.push(c);
            if c == '\\' && q == '"' {
                if let Some(n) = next {
                    splitter.push(n);
                    i += 1;
                }
            } else if c == q {
                quote = None;
            }
            if c == '\n' {
                splitter.line += 1;
            }
            i += 1;
            continue;
        }
        match c {
            '\\' if next == Some('\n') => {
                splitter.push(' ');
                splitter.line += 1;
                i += 2;
                continue;
            }
            '\\' => {
                splitter.push(c);
                if let Some(n) = next {
                    splitter.push(n);
                    i += 1;
                }
            }
            '\'' | '"' => {
                quote = Some(c);
                splitter.push(c);
            }
            '`' => {
                backquote = !backquote;
                splitter.push(c);
            }
            '$' if next == Some('(') => {
                depth += 1;
                splitter.push(c);
                splitter.push('(');
                i += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                splitter.push(c);
            }
            '#' if prev.is_none_or(char::is_whitespace) && depth == 0 && !backquote => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '<' if next == Some('<') => {
                // A marker is a word: a long line of `<<<<` must not make
                // each one read the rest of it.
                let rest: String = chars[i + 2..]
                    .iter()
                    .take(256)
                    .take_while(|c| **c != '\n')
                    .collect();
                let word = rest.trim_start_matches('-').trim_start();
                let word = word.trim_start_matches(['"', '\'']);
                let name: String = word
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    heredocs.push(name);
                }
                splitter.push('<');
                splitter.push('<');
                i += 1;
            }
            _ if depth > 0 || backquote => {
                if c == '\n' {
                    splitter.line += 1;
                }
                splitter.push(c);
            }
            '\n' => {
                splitter.split(false);
                splitter.line += 1;
                // Here-document bodies are data, not commands.
                for marker in std::mem::take(&mut heredocs) {
                    while i + 1 < chars.len() {
                        let end = chars[i + 1..]
                            .iter()
                            .position(|c| *c == '\n')
                            .map_or(chars.len(), |p| i + 1 + p);
                        let body: String = chars[i + 1..end].iter().collect();
                        i = end;
                        splitter.line += 1;
                        if body.trim() == marker {
                            break;
                        }
                    }
                }
                splitter.start_line = splitter.line;
            }
            ';' => splitter.split(false),
            '&' if next == Some('&') => {
                splitter.split(false);
                i += 1;
            }
            '&' if matches!(prev, Some('>' | '<')) || next == Some('>') => splitter.push(c),
            '&' => splitter.split(true),
            '|' => {
                let pipe = !matches!(next, Some('|' | '&')) || next == Some('&');
                splitter.piped |= pipe;
                splitter.split(false);
                splitter.piped = pipe;
                if matches!(next, Some('|' | '&')) {
                    i += 1;
                }
            }
            _ => splitter.push(c),
        }
        i += 1;
    }
    splitter.split(false);
    splitter.out
}

/// The state of [`commands`]: the command being read and where it began.
struct Splitter {
    out: Vec<Command>,
    current: String,
    start_line: usize,
    line: usize,
    /// The command being read is in a pipeline.
    piped: bool,
    /// The command being read has more than blanks.
    started: bool,
}

impl Splitter {
    fn push(&mut self, c: char) {
        // A flag, not `current.trim()`: that rescans a long run of blanks
        // on every char, quadratic on a hostile script.
        if !c.is_whitespace() && !self.started {
            self.started = true;
            self.start_line = self.line;
        }
        self.current.push(c);
    }

    fn split(&mut self, background: bool) {
        let text = self.current.trim();
        if !text.is_empty() {
            self.out.push(Command {
                text: text.to_owned(),
                line: self.start_line,
                background,
                piped: self.piped,
            });
        }
        self.current.clear();
        self.started = false;
        self.piped = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<(String, usize, bool)> {
        commands(script)
            .into_iter()
            .map(|c| (c.text, c.line, c.background))
            .collect()
    }

    #[test]
    fn separators_redirections_and_backgrounds() {
        let got = texts("a 2>&1 && b &>/dev/null || c & d | e; f &");
        let want = [
            ("a 2>&1", 1, false),
            ("b &>/dev/null", 1, false),
            ("c", 1, true),
            ("d", 1, false),
            ("e", 1, false),
            ("f", 1, true),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(t, l, b)| (t.to_string(), *l, *b))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn quotes_substitutions_comments_continuations_and_heredocs() {
        let script = "#!/bin/sh\n# a & b\necho \"x; y\" $(a; b) `c & d`\ncat <<EOF\nnot & a command\nEOF\nrun \\\n  --flag # trailing\nexec app";
        let got = texts(script);
        assert_eq!(
            got,
            [
                ("echo \"x; y\" $(a; b) `c & d`".to_owned(), 3, false),
                ("cat <<EOF".to_owned(), 4, false),
                ("run    --flag".to_owned(), 7, false),
                ("exec app".to_owned(), 9, false),
            ]
        );
    }

    #[test]
    fn long_runs_of_blanks_and_markers_are_read_once() {
        // Quadratic before: 400,000 chars took minutes.
        let blanks = format!("a{}b c", " ".repeat(200_000));
        assert_eq!(commands(&blanks).len(), 1);
        let markers = "cat ".to_owned() + &"<<".repeat(100_000);
        assert_eq!(commands(&markers).len(), 1);
    }

    #[test]
    fn a_redirection_is_one_command() {
        assert!(!is_compound("app --port 8080 2>&1"));
        assert!(is_compound("a; b"));
        assert!(last_is_exec("a && exec b"));
        assert!(!last_is_exec("a && exec b &"));
        assert_eq!(last_command("a; exec /usr/bin/b x").as_deref(), Some("b"));
    }
}
