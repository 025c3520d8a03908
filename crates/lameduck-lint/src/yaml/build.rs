//! Nodes built from the parser's events with a stack of our own, never by
//! recursion, and within limits: a hostile file (`- ` nested 50,000 deep,
//! aliases of aliases, one enormous document) gets an error that names its
//! place instead of taking the stack or all memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Span};

use super::{Node, Value, YamlError};

/// How deep collections may nest. Kubernetes objects nest about 20 deep
/// (a CRD's schema maybe 60); 50,000 nested `- ` overflowed the stack.
/// Dropping and cloning a tree recurse, so this bounds that recursion too.
pub const MAX_DEPTH: usize = 1_000;

/// How many nodes one document may hold: a `kubectl get -o yaml` List of
/// thousands of objects stays well under it, and it bounds the memory of
/// one document (about 100 bytes a node) whatever the input.
pub const MAX_DOCUMENT_NODES: usize = 2_000_000;

/// How many nodes aliases may copy in one stream: far more than any real
/// manifest, far less than a "billion laughs" (aliases of aliases), which
/// would otherwise take all memory. go-yaml, under kubectl, has a limit
/// of the same kind.
pub const MAX_ALIASED_NODES: usize = 1_000_000;

/// The number of nodes in `node`'s tree (at most [`MAX_DEPTH`] deep).
fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Scalar(_) => 0,
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
    }
}

/// Builds one document at a time from the parser's events.
pub(super) struct Builder {
    /// Open collections, and a pending key for mappings.
    stack: Vec<(Node, Option<Node>)>,
    /// Anchored nodes of the document, with their sizes.
    anchors: HashMap<usize, (Node, usize)>,
    anchor_of_open: Vec<usize>,
    /// Nodes aliases may still copy in this stream.
    alias_budget: usize,
    /// Nodes of the document so far.
    nodes: usize,
}

impl Builder {
    pub(super) fn new() -> Builder {
        Builder {
            stack: Vec::new(),
            anchors: HashMap::new(),
            anchor_of_open: Vec::new(),
            alias_budget: MAX_ALIASED_NODES,
            nodes: 0,
        }
    }

    /// Takes one event; a document when it is complete.
    pub(super) fn on_event(
        &mut self,
        ev: Event<'_>,
        span: Span,
    ) -> Result<Option<Node>, YamlError> {
        let (line, column) = (span.start.line(), span.start.col() + 1);
        let refuse = |message: String| YamlError {
            line,
            column,
            message,
        };
        match ev {
            Event::Scalar(text, _, anchor, _) => {
                self.count(1).map_err(refuse)?;
                let node = Node {
                    value: Value::Scalar(text.into_owned()),
                    line,
                    column,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                Ok(self.place(node))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(refuse(format!(
                        "collections nested over {MAX_DEPTH} deep: refused (a Kubernetes object nests about 20 deep)"
                    )));
                }
                self.count(1).map_err(refuse)?;
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
                Ok(None)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let anchor = self.anchor_of_open.pop().unwrap_or(0);
                let Some((node, _)) = self.stack.pop() else {
                    return Ok(None);
                };
                if anchor > 0 {
                    let size = size(&node);
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                Ok(self.place(node))
            }
            Event::Alias(anchor) => {
                let node = match self.anchors.get(&anchor) {
                    Some((node, size)) if *size <= self.alias_budget => {
                        let (node, size) = (node.clone(), *size);
                        self.alias_budget -= size;
                        self.count(size).map_err(refuse)?;
                        node
                    }
                    Some(_) => {
                        return Err(refuse(format!("aliases here would copy over {MAX_ALIASED_NODES} nodes: refused (aliases of aliases?)")));
                    }
                    None => Node {
                        value: Value::Scalar(String::new()),
                        line,
                        column,
                    },
                };
                Ok(self.place(node))
            }
            Event::DocumentStart(_) | Event::DocumentEnd => {
                // Anchors do not reach across documents.
                self.anchors.clear();
                self.nodes = 0;
                Ok(None)
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => Ok(None),
        }
    }

    /// Counts `n` more nodes of the document.
    fn count(&mut self, n: usize) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_DOCUMENT_NODES {
            return Err(format!(
                "one document of over {MAX_DOCUMENT_NODES} nodes: refused (split the stream into documents)"
            ));
        }
        Ok(())
    }

    /// Puts a finished node in its parent; the document when it has none.
    fn place(&mut self, node: Node) -> Option<Node> {
        match self.stack.last_mut() {
            None => Some(node),
            Some((parent, key)) => {
                match &mut parent.value {
                    Value::Seq(items) => items.push(node),
                    Value::Map(entries) => match key.take() {
                        None => *key = Some(node),
                        Some(k) => entries.push((k, node)),
                    },
                    Value::Scalar(_) => {}
                }
                None
            }
        }
    }
}
