//! `$VAR` and `${VAR}` in Dockerfile instructions, replaced the way the
//! builder (ARG and ENV, for COPY, WORKDIR, STOPSIGNAL...) or the shell of a
//! shell-form command (ENV only, at run time) replaces them.

/// Variables in scope, later definitions winning.
#[derive(Clone, Debug, Default)]
pub struct Vars(Vec<(String, String)>);

impl Vars {
    /// The value of `name`, if it is set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: &str, value: String) {
        self.0.push((name.to_owned(), value));
    }
}

/// `text` with the variables `lookup` knows replaced. Unknown variables are
/// left as written (the base image or a `--build-arg` may set them), except
/// that `${VAR:-default}` then takes its default. Nothing is replaced in
/// single quotes, nor after a backslash.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut single = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                single = !single;
                out.push(c);
            }
            '\\' if !single && chars.get(i + 1) == Some(&'$') => {
                out.push_str("\\$");
                i += 1;
            }
            '$' if !single => {
                let (replaced, used) = variable(&chars[i + 1..], lookup);
                match replaced {
                    Some(value) => out.push_str(&value),
                    None => out.extend(&chars[i..=i + used]),
                }
                i += used;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// The value of the variable reference after a `$`, and how many chars it
/// spans; `None` when it stays as written.
fn variable(rest: &[char], lookup: &dyn Fn(&str) -> Option<String>) -> (Option<String>, usize) {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    if rest.first() == Some(&'{') {
        let Some(close) = rest.iter().position(|c| *c == '}') else {
            return (None, 0);
        };
        let inner: String = rest[1..close].iter().collect();
        let name_len = inner.chars().take_while(is_name).count();
        let (name, op) = inner.split_at(name_len);
        if name.is_empty() {
            return (None, close + 1);
        }
        let value = lookup(name);
        let replaced = match op {
            "" => value,
            _ if op.starts_with(":-") => Some(
                value
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| expand(&op[2..], lookup)),
            ),
            _ if op.starts_with('-') => Some(value.unwrap_or_else(|| expand(&op[1..], lookup))),
            _ if op.starts_with(":+") => value.map(|v| {
                if v.is_empty() {
                    String::new()
                } else {
                    expand(&op[2..], lookup)
                }
            }),
            _ if op.starts_with('+') => value.map(|_| expand(&op[1..], lookup)),
            _ => None,
        };
        return (replaced, close + 1);
    }
    let name: String = rest.iter().take_while(|c| is_name(c)).collect();
    if name.is_empty() {
        return (None, 0);
    }
    (lookup(&name), name.len())
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
) -> Vec<(String, Option<String>)> {
    let raw = raw_words(args);
    if legacy && raw.first().is_some_and(|w| !w.contains('=')) {
        let name = raw[0].clone();
        let value = args
            .trim_start()
            .get(name.len()..)
            .unwrap_or_default()
            .trim();
        let value = words(&expand(value, lookup)).join(" ");
        return vec![(name, Some(value))];
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
                let value = words(&expand(value, &local)).join(" ");
                out.push((name.to_owned(), Some(value)));
            }
            None => out.push((word, None)),
        }
    }
    out
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

    #[test]
    fn forms_of_references() {
        assert_eq!(expand("${BIN} --port $PORT", &env), "nginx --port 8080");
        assert_eq!(expand("$UNKNOWN ${NOPE}x", &env), "$UNKNOWN ${NOPE}x");
        assert_eq!(expand("${NOPE:-php-fpm} ${EMPTY:-d}", &env), "php-fpm d");
        assert_eq!(expand("${EMPTY-d}${BIN:+on}", &env), "on");
        assert_eq!(
            expand("'$BIN' \\$BIN \"$BIN\"", &env),
            "'$BIN' \\$BIN \"nginx\""
        );
        assert_eq!(expand("${", &env), "${");
        assert_eq!(expand("$", &env), "$");
    }

    #[test]
    fn env_and_arg_assignments() {
        let got = assignments("A=1 B=\"two words\" C=${A}x D", false, &env);
        assert_eq!(
            got,
            [
                ("A".into(), Some("1".into())),
                ("B".into(), Some("two words".into())),
                ("C".into(), Some("1x".into())),
                ("D".into(), None),
            ]
        );
        let legacy = assignments("SERVER $BIN -g daemon", true, &env);
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
