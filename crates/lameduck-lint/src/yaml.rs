//! YAML documents as trees whose every node knows its line and column:
//! what the manifest rules need to point at the right place.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScanError, Span, SpannedEventReceiver};

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
    let mut builder = Builder {
        alias_budget: MAX_ALIASED_NODES,
        ..Builder::default()
    };
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e: ScanError| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
    match builder.error {
        Some(e) => Err(e),
        None => Ok(builder.docs),
    }
}

/// How many nodes aliases may copy in one stream: far more than any real
/// manifest, far less than a "billion laughs" (aliases of aliases), which
/// would otherwise take all memory. go-yaml, under kubectl, has a limit
/// of the same kind.
const MAX_ALIASED_NODES: usize = 1_000_000;

/// The number of nodes in `node`'s tree.
fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Scalar(_) => 0,
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
    }
}

/// Builds nodes from the parser's events.
#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    /// Open collections, and a pending key for mappings.
    stack: Vec<(Node, Option<Node>)>,
    /// Anchored nodes, with their sizes.
    anchors: HashMap<usize, (Node, usize)>,
    anchor_of_open: Vec<usize>,
    /// Nodes aliases may still copy.
    alias_budget: usize,
    /// Why the stream was refused, though it parses.
    error: Option<YamlError>,
}

impl Builder {
    fn place(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, key)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
                Value::Scalar(_) => {}
            },
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        let (line, column) = (span.start.line(), span.start.col() + 1);
        match ev {
            Event::Scalar(text, _, anchor, _) => {
                let node = Node {
                    value: Value::Scalar(text.into_owned()),
                    line,
                    column,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.place(node);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let value = if matches!(ev, Event::SequenceStart(..)) {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Vec::new())
                };
                self.anchor_of_open.push(anchor);
                self.stack.push((
                    Node {
                        value,
                        line,
                        column,
                    },
                    None,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let anchor = self.anchor_of_open.pop().unwrap_or(0);
                if let Some((node, _)) = self.stack.pop() {
                    if anchor > 0 {
                        let size = size(&node);
                        self.anchors.insert(anchor, (node.clone(), size));
                    }
                    self.place(node);
                }
            }
            Event::Alias(anchor) => {
                let empty = Node {
                    value: Value::Scalar(String::new()),
                    line,
                    column,
                };
                let node = match self.anchors.get(&anchor) {
                    Some((node, size)) if *size <= self.alias_budget => {
                        self.alias_budget -= size;
                        node.clone()
                    }
                    Some(_) => {
                        self.error.get_or_insert(YamlError {
                            line,
                            column,
                            message: format!("aliases here would copy over {MAX_ALIASED_NODES} nodes: refused (aliases of aliases?)"),
                        });
                        empty
                    }
                    None => empty,
                };
                self.place(node);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
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
    fn a_syntax_error_names_its_place() {
        let e = parse_stream("a: 1\nb: [1, 2\n").expect_err("invalid");
        assert!(e.line >= 2, "{e}");
    }
}
