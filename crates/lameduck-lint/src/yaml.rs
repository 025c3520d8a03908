//! YAML documents as trees whose every node knows its line and column:
//! what the manifest rules need to point at the right place.

mod build;

use build::Builder;
use saphyr_parser::{BufferedInput, Event, Input, Parser, StrInput};

pub use build::{MAX_ALIASED_NODES, MAX_DEPTH, MAX_DOCUMENT_NODES};

/// One node of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it holds.
    pub value: Value,
    /// 1-based line where it starts.
    pub line: usize,
    /// 1-based column where it starts.
    pub column: usize,
}

/// The value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar, as written (numbers and booleans too).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in order.
    Map(Vec<(Node, Node)>),
}

/// A document that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

// === impl Node ===

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at a path of keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The scalar's text.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a sequence (none for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The entries of a mapping (none for anything else).
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }
}

/// Every document of a YAML stream (`---`-separated), empty ones left out.
pub fn parse_stream(text: &str) -> Result<Vec<Node>, YamlError> {
    documents_in(text).collect()
}

/// The documents of a stream held in memory, one at a time.
pub fn documents_in(text: &str) -> Documents<'_, StrInput<'_>> {
    Documents::new(Parser::new_from_str(text))
}

/// The documents of a stream read char by char (a file or standard input
/// being decoded): each is built as soon as the parser has read it, so
/// memory follows the largest document, not the stream.
pub fn documents<'a, I: Iterator<Item = char> + 'a>(chars: I) -> Documents<'a, BufferedInput<I>> {
    Documents::new(Parser::new_from_iter(chars))
}

/// The documents of a stream, one at a time: an iterator that ends after
/// the first error (the rest of the stream is not read).
pub struct Documents<'input, T: Input> {
    parser: Parser<'input, T>,
    builder: Builder,
    done: bool,
}

impl<'input, T: Input> Documents<'input, T> {
    fn new(parser: Parser<'input, T>) -> Self {
        Documents {
            parser,
            builder: Builder::new(),
            done: false,
        }
    }
}

impl<T: Input> Iterator for Documents<'_, T> {
    type Item = Result<Node, YamlError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let step = match self.parser.next_event() {
                None | Some(Ok((Event::StreamEnd, _))) => {
                    self.done = true;
                    Ok(None)
                }
                Some(Err(e)) => Err(YamlError {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    message: e.info().to_owned(),
                }),
                Some(Ok((event, span))) => self.builder.on_event(event, span),
            };
            match step {
                Ok(Some(doc)) => return Some(Ok(doc)),
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_of_a_stream_keeps_its_lines() {
        let text = "kind: Pod\nmetadata:\n  name: a\n---\n# comment\nkind: Service\nspec:\n  ports:\n    - port: 80\n      name: &n web\n  alias: *n\n";
        let docs = parse_stream(text).expect("valid");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].at(&["metadata", "name"]).and_then(Node::as_str),
            Some("a")
        );
        let port = &docs[1].at(&["spec", "ports"]).expect("ports").items()[0];
        assert_eq!((port.line, port.column), (9, 7));
        assert_eq!(port.get("port").map(|p| (p.line, p.column)), Some((9, 13)));
        assert_eq!(
            docs[1].at(&["spec", "alias"]).and_then(Node::as_str),
            Some("web")
        );
    }

    #[test]
    fn aliases_of_aliases_are_refused_before_they_take_all_memory() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let alias = format!("*a{}", i - 1);
            text += &format!("a{i}: &a{i} [{}]\n", vec![alias; 10].join(", "));
        }
        let e = parse_stream(&text).expect_err("a billion laughs");
        assert!(e.message.contains("aliases here would copy"), "{e}");
        assert!(e.line > 1, "{e}");
        // A few ordinary aliases are fine.
        let ok = parse_stream("base: &b {cpu: 1}\nweb: *b\napi: *b\n").expect("valid");
        assert_eq!(ok[0].at(&["api", "cpu"]).and_then(Node::as_str), Some("1"));
    }

    #[test]
    fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
        // 50,000 nested `- ` (100 KB) aborted the process before the limit.
        let deep = "- ".repeat(50_000) + "x\n";
        let e = parse_stream(&deep).expect_err("too deep");
        assert!(e.message.contains("nested over 1000 deep"), "{e}");
        // The parser's own limit on flow collections (255) holds too.
        assert!(parse_stream(&"[".repeat(50_000)).is_err());
        // Just under the limit is read.
        let ok = "- ".repeat(MAX_DEPTH) + "x\n";
        assert_eq!(parse_stream(&ok).map(|d| d.len()), Ok(1));
    }

    #[test]
    fn documents_stream_one_at_a_time_and_stop_at_the_first_error() {
        let text = "kind: A\n---\nkind: B\n---\nkind: [\n---\nkind: D\n";
        let mut docs = documents(text.chars());
        assert_eq!(
            docs.next()
                .and_then(|d| d.ok())
                .and_then(|d| d.get("kind").and_then(Node::as_str).map(str::to_owned)),
            Some("A".into())
        );
        assert!(matches!(docs.next(), Some(Ok(_))));
        assert!(matches!(docs.next(), Some(Err(_))));
        assert!(docs.next().is_none());
    }

    #[test]
    fn a_syntax_error_names_its_place() {
        let e = parse_stream("a: 1\nb: [1, 2\n").expect_err("invalid");
        assert!(e.line >= 2, "{e}");
    }
}
