//! `$VAR` and `${VAR}` in Dockerfile instructions, replaced the way the
//! builder (ARG and ENV, for COPY, WORKDIR, STOPSIGNAL...) or the shell of a
//! shell-form command (ENV only, at run time) replaces them.

use std::collections::HashMap;
use std::rc::Rc;

/// The most one expansion may produce: Linux refuses a single argument or
/// environment string longer than this (`MAX_ARG_STRLEN`, 32 pages) with
/// E2BIG, so no container could start with more. 59 lines of
/// `ENV A2=${A1}${A1}` would otherwise double to 2^59 bytes.
pub const MAX_EXPANSION: usize = 128 * 1024;

/// How deep `${A:-${B:-...}}` may nest.
pub const MAX_NESTING: usize = 64;

/// Why a Dockerfile's variables could not be replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandError(pub String);

/// Variables in scope, later definitions winning. Values are shared, so a
/// stage built from another one copies no value.
#[derive(Clone, Debug, Default)]
pub struct Vars(HashMap<String, Rc<str>>);

impl Vars {
    /// The value of `name`, if it is set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| &**v)
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: &str, value: String) {
        self.0.insert(name.to_owned(), value.into());
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `text` with the variables `lookup` knows replaced. Unknown variables are
/// left as written (the base image or a `--build-arg` may set them), except
/// that `${VAR:-default}` then takes its default. Nothing is replaced in
/// single quotes, nor after a backslash. Linear in the text and the
/// result; an error past [`MAX_EXPANSION`] or [`MAX_NESTING`].
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let chars: Vec<char> = text.chars().collect();
    let expander = Expander {
        close: closing_braces(&chars),
        chars,
        lookup,
    };
    let mut out = String::new();
    expander.range(0, expander.chars.len(), &mut out, 0)?;
    Ok(out)
}

/// For each `${` (by the index of its `{`), the index of the `}` that
/// closes it, nesting counted: found once, so no reference is scanned twice.
fn closing_braces(chars: &[char]) -> HashMap<usize, usize> {
    let mut close = HashMap::new();
    let mut open = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        match c {
            '{' if i > 0 && chars[i - 1] == '$' => open.push(i),
            '}' => {
                if let Some(o) = open.pop() {
                    close.insert(o, i);
                }
            }
            _ => {}
        }
    }
    close
}

struct Expander<'a> {
    chars: Vec<char>,
    close: HashMap<usize, usize>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Expander<'_> {
    /// Expands `chars[from..to]` onto `out`.
    fn range(
        &self,
        from: usize,
        to: usize,
        out: &mut String,
        depth: usize,
    ) -> Result<(), ExpandError> {
        if depth > MAX_NESTING {
            return Err(ExpandError(format!(
                "`${{...}}` nested over {MAX_NESTING} deep: not linted"
            )));
        }
        let chars = &self.chars;
        let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
        let mut single = false;
        let mut i = from;
        while i < to {
            let c = chars[i];
            match c {
                '\'' => {
                    single = !single;
                    out.push(c);
                }
                '\\' if !single && i + 1 < to && chars[i + 1] == '$' => {
                    out.push_str("\\$");
                    i += 1;
                }
                '$' if !single => {
                    if let Some(&close) = self.close.get(&(i + 1)).filter(|&&c| c < to) {
                        self.braced(i, close, out, depth)?;
                        i = close;
                    } else {
                        let len = chars[i + 1..to].iter().take_while(|c| is_name(c)).count();
                        let name: String = chars[i + 1..i + 1 + len].iter().collect();
                        match (len > 0).then(|| (self.lookup)(&name)).flatten() {
                            Some(value) => out.push_str(&value),
                            None => out.extend(&chars[i..=i + len]),
                        }
                        i += len;
                    }
                }
                _ => out.push(c),
            }
            if out.len() > MAX_EXPANSION {
                return Err(ExpandError(format!(
                    "a variable expands to more than {MAX_EXPANSION} bytes, more than Linux takes as one argument or environment string: not linted"
                )));
            }
            i += 1;
        }
        Ok(())
    }

    /// `${...}` from the `$` at `dollar` to the `}` at `close`.
    fn braced(
        &self,
        dollar: usize,
        close: usize,
        out: &mut String,
        depth: usize,
    ) -> Result<(), ExpandError> {
        let chars = &self.chars;
        let start = dollar + 2;
        let len = chars[start..close]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .count();
        let as_written = |out: &mut String| out.extend(&chars[dollar..=close]);
        if len == 0 {
            as_written(out);
            return Ok(());
        }
        let name: String = chars[start..start + len].iter().collect();
        let value = (self.lookup)(&name);
        let op = &chars[start + len..close];
        let word =
            |skip: usize, out: &mut String| self.range(start + len + skip, close, out, depth + 1);
        match op {
            [] => match value {
                Some(v) => out.push_str(&v),
                None => as_written(out),
            },
            [':', '-', ..] => match value.filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(&v),
                None => word(2, out)?,
            },
            ['-', ..] => match value {
                Some(v) => out.push_str(&v),
                None => word(1, out)?,
            },
            [':', '+', ..] => match value {
                Some(v) if v.is_empty() => {}
                Some(_) => word(2, out)?,
                None => as_written(out),
            },
            ['+', ..] => match value {
                Some(_) => word(1, out)?,
                None => as_written(out),
            },
            _ => as_written(out),
        }
        Ok(())
    }
}

/// Shell-like words of `text`: split at unquoted whitespace, quotes and
/// backslashes removed.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if let Some(word) = current.take() {
                    out.push(word);
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.get_or_insert_with(String::new);
            }
            (Some(q), c) if c == q => quote = None,
            (None | Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    current.get_or_insert_with(String::new).push(n);
                }
            }
            _ => current.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(current);
    out
}

/// The assignments of an `ENV` or `ARG`: `A=1 B="two words"`, or the
/// legacy `ENV A value with spaces`. Values are expanded with `lookup`
/// (earlier assignments of the same line included), then unquoted; a name
/// without `=` has no value.
pub fn assignments(
    args: &str,
    legacy: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, ExpandError> {
    let raw = raw_words(args);
    if legacy && raw.first().is_some_and(|w| !w.contains('=')) {
        let name = raw[0].clone();
        let value = args
            .trim_start()
            .get(name.len()..)
            .unwrap_or_default()
            .trim();
        let value = words(&expand(value, lookup)?).join(" ");
        return Ok(vec![(name, Some(value))]);
    }
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for word in raw {
        match word.split_once('=') {
            Some((name, value)) => {
                let local = |n: &str| {
                    out.iter()
                        .rev()
                        .find(|(k, _)| k == n)
                        .and_then(|(_, v)| v.clone())
                        .or_else(|| lookup(n))
                };
                let value = words(&expand(value, &local)?).join(" ");
                out.push((name.to_owned(), Some(value)));
            }
            None => out.push((word, None)),
        }
    }
    Ok(out)
}

/// Words split at unquoted whitespace, quotes kept.
fn raw_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') if quote != Some('\'') => {
                escaped = true;
                current.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "BIN" => Some("nginx".into()),
            "PORT" => Some("8080".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn x(text: &str) -> String {
        expand(text, &env).expect("expands")
    }

    #[test]
    fn forms_of_references() {
        assert_eq!(x("${BIN} --port $PORT"), "nginx --port 8080");
        assert_eq!(x("$UNKNOWN ${NOPE}x"), "$UNKNOWN ${NOPE}x");
        assert_eq!(x("${NOPE:-php-fpm} ${EMPTY:-d}"), "php-fpm d");
        assert_eq!(x("${EMPTY-d}${BIN:+on}${NOPE:+x}"), "on${NOPE:+x}");
        assert_eq!(x("'$BIN' \\$BIN \"$BIN\""), "'$BIN' \\$BIN \"nginx\"");
        assert_eq!(x("${"), "${");
        assert_eq!(x("$"), "$");
        assert_eq!(x("${BIN%%x} ${}"), "${BIN%%x} ${}");
    }

    #[test]
    fn nested_defaults_match_their_own_braces() {
        assert_eq!(x("${NOPE:-${BIN}}/x"), "nginx/x");
        assert_eq!(x("${NOPE:-${NADA:-${PORT}}}"), "8080");
        assert_eq!(x("${BIN:-${NOPE:-x}}"), "nginx");
        assert_eq!(x("${NOPE:-${NADA"), "${NOPE:-${NADA");
    }

    #[test]
    fn expansion_bombs_are_errors_not_exhaustion() {
        // ENV A2=${A1}${A1}, 59 times: each line doubles the value.
        let big = "x".repeat(MAX_EXPANSION / 2 + 1);
        let lookup = |n: &str| (n == "A").then(|| big.clone());
        let e = expand("${A}${A}", &lookup).expect_err("too large");
        assert!(e.0.contains("more than 131072 bytes"), "{}", e.0);
        // 85,000 nested defaults (600 KB): refused at once.
        let deep = "${A:-".repeat(85_000) + &"}".repeat(85_000);
        let e = expand(&deep, &env).expect_err("too deep");
        assert!(e.0.contains("nested over 64 deep"), "{}", e.0);
        // The same size, set: one lookup, the rest skipped unread.
        let deep = format!("${{BIN:-{}}}", "${A:-".repeat(85_000) + &"}".repeat(85_000));
        assert_eq!(x(&deep), "nginx");
    }

    #[test]
    fn env_and_arg_assignments() {
        let got = assignments("A=1 B=\"two words\" C=${A}x D", false, &env).expect("ok");
        assert_eq!(
            got,
            [
                ("A".into(), Some("1".into())),
                ("B".into(), Some("two words".into())),
                ("C".into(), Some("1x".into())),
                ("D".into(), None),
            ]
        );
        let legacy = assignments("SERVER $BIN -g daemon", true, &env).expect("ok");
        assert_eq!(legacy, [("SERVER".into(), Some("nginx -g daemon".into()))]);
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            words("nginx -g 'daemon off;' \"a b\" c\\ d"),
            ["nginx", "-g", "daemon off;", "a b", "c d"]
        );
    }
}
