//! A Dockerfile as instructions with their line numbers: parser directives,
//! comments, line continuations (with the file's escape character) and
//! heredocs understood the way BuildKit reads them.

/// One instruction, its arguments joined from every continued line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword, upper-cased (`CMD`, `ENTRYPOINT`, ...).
    pub keyword: String,
    /// Everything after the keyword, continuations joined by a space.
    pub args: String,
    /// The 1-based line the instruction starts on.
    pub line: usize,
    /// The 1-based column of the arguments on that line.
    pub args_column: usize,
}

/// How an `ENTRYPOINT`, `CMD` or `RUN` gives its command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandForm {
    /// `["app", "--flag"]`: run as is.
    Exec(Vec<String>),
    /// `app --flag`: run through `/bin/sh -c`.
    Shell(String),
}

/// Parses a Dockerfile. It never fails: what it cannot read is skipped, as
/// the linter only needs the instructions it knows.
pub fn parse(text: &str) -> Vec<Instruction> {
    let lines: Vec<&str> = text.lines().collect();
    let escape = escape_char(&lines);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let mut joined = String::new();
        let mut heredocs = Vec::new();
        loop {
            let line = lines[i];
            let (content, continued) = match line.trim_end().strip_suffix(escape) {
                Some(body) => (body, true),
                None => (line, false),
            };
            heredocs.extend(heredoc_markers(content));
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(content.trim());
            i += 1;
            // Comment lines inside a continued instruction are dropped.
            while continued && i < lines.len() && lines[i].trim_start().starts_with('#') {
                i += 1;
            }
            if !continued || i >= lines.len() {
                break;
            }
        }
        // Heredoc bodies belong to the instruction and are not instructions.
        for marker in heredocs {
            while i < lines.len() && lines[i].trim() != marker {
                i += 1;
            }
            i += 1;
        }
        let (keyword, args) = match joined.split_once(char::is_whitespace) {
            Some((k, a)) => (k, a.trim()),
            None => (joined.as_str(), ""),
        };
        let indent = raw.len() - trimmed.len();
        let args_column = indent
            + keyword.len()
            + trimmed[keyword.len().min(trimmed.len())..]
                .chars()
                .take_while(|c| c.is_whitespace())
                .count()
            + 1;
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.to_owned(),
            line: start + 1,
            args_column,
        });
    }
    out
}

/// The escape character of a `# escape=` parser directive, `\` by default.
fn escape_char(lines: &[&str]) -> char {
    for line in lines {
        let Some(directive) = line.trim().strip_prefix('#') else {
            // Directives only come before the first instruction or comment.
            return '\\';
        };
        let directive = directive.trim();
        if let Some((key, value)) = directive.split_once('=') {
            if key.trim().eq_ignore_ascii_case("escape") {
                return if value.trim() == "`" { '`' } else { '\\' };
            }
            continue;
        }
        return '\\';
    }
    '\\'
}

/// The end markers of the heredocs a line opens (`<<EOF`, `<<-"EOF"`).
fn heredoc_markers(line: &str) -> Vec<String> {
    let mut markers = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("<<") {
        rest = &rest[at + 2..];
        let word = rest.trim_start_matches('-');
        let word = word.trim_start_matches(['"', '\'']);
        let name: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            markers.push(name);
        }
    }
    markers
}

impl Instruction {
    /// The command of an `ENTRYPOINT`, `CMD` or `RUN`: exec form when the
    /// arguments are a JSON array of strings, shell form otherwise (as
    /// Docker decides).
    pub fn command(&self) -> CommandForm {
        if self.args.starts_with('[') {
            if let Ok(words) = serde_json::from_str::<Vec<String>>(&self.args) {
                return CommandForm::Exec(words);
            }
        }
        CommandForm::Shell(self.args.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_heredocs() {
        let text = "# syntax=docker/dockerfile:1\nFROM alpine AS build\nRUN apk add \\\n    # a comment\n    curl\nRUN <<EOF\nCMD not an instruction\nEOF\n  cmd [\"app\", \"--port\", \"8080\"]\n";
        let got = parse(text);
        let keys: Vec<_> = got.iter().map(|i| (i.keyword.as_str(), i.line)).collect();
        assert_eq!(keys, [("FROM", 2), ("RUN", 3), ("RUN", 6), ("CMD", 9)]);
        assert_eq!(got[1].args, "apk add curl");
        assert_eq!(
            got[3].command(),
            CommandForm::Exec(vec!["app".into(), "--port".into(), "8080".into()])
        );
        assert_eq!(got[3].args_column, 7);
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let text = "# escape=`\nFROM mcr.microsoft.com/windows\nCMD app `\n  --flag\n";
        let got = parse(text);
        assert_eq!(got[1].args, "app --flag");
        assert_eq!(got[1].command(), CommandForm::Shell("app --flag".into()));
    }

    #[test]
    fn a_bad_json_array_is_shell_form() {
        let got = parse("CMD [app, --flag]\n");
        assert_eq!(got[0].command(), CommandForm::Shell("[app, --flag]".into()));
    }
}
