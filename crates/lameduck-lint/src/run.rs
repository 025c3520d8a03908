//! One run of the linter over files, directories and standard input: what
//! `lameduck lint` does between reading its flags and writing its findings.
//!
//! An input that cannot be read or parsed becomes an [`InputError`] that
//! names its place; every other input is still linted.
//!
//! ```
//! use lameduck_lint::{run, select::RuleSet};
//!
//! let mut stdin = "FROM debian:12\nCMD app --port 8080\n".as_bytes();
//! let report = run::lint_paths(&["-".into()], &mut stdin, &RuleSet::defaults());
//! assert_eq!(report.findings[0].rule, "LD101");
//! assert!(report.errors.is_empty());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::decode::{DecodeError, Decoder, Encoding};
use crate::finding::Finding;
use crate::select::RuleSet;
use crate::walk::{self, Input};
use crate::yaml::{self, YamlError};
use crate::{dockerfile, manifest};

/// An input that was not linted, or not all of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file (`-` for standard input).
    pub path: String,
    /// The 1-based line and column of the trouble, when it has a place.
    pub place: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// The findings of the rules that are on, by input (in the order the
    /// inputs were read), line, column and rule.
    pub findings: Vec<Finding>,
    /// The inputs that could not be read or parsed, in the order met.
    pub errors: Vec<InputError>,
    /// The text of every input read, by name: the lines human output quotes.
    pub sources: HashMap<String, String>,
    /// The names of the inputs read, in order.
    pub inputs: Vec<String>,
    /// What was left out on purpose, and how to lint it: one line each.
    pub notes: Vec<String>,
}

/// What a run keeps besides its findings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keep the text of every input in [`Report::sources`], for human
    /// output's quoted lines. Without it a stream of manifests is never
    /// held whole: memory follows its largest document.
    pub keep_sources: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { keep_sources: true }
    }
}

/// The largest Dockerfile read (it is read whole; a stream of manifests
/// is not): public Dockerfiles are a few kilobytes, the longest tens.
pub const MAX_DOCKERFILE: u64 = 16 << 20;

/// How much of an input without a telling name is read to tell a
/// Dockerfile from manifests.
const PEEK: usize = 64 * 1024;

/// Lints `paths` (files, directories walked with [`walk::files`], `-` for
/// `stdin`) with the rules of `rules` on, keeping the inputs' text.
/// Services and the workloads they select are matched across all the
/// inputs.
pub fn lint_paths(paths: &[PathBuf], stdin: &mut dyn Read, rules: &RuleSet) -> Report {
    lint_paths_with(paths, stdin, rules, &Options::default())
}

/// [`lint_paths`] with `options`.
pub fn lint_paths_with(
    paths: &[PathBuf],
    stdin: &mut dyn Read,
    rules: &RuleSet,
    options: &Options,
) -> Report {
    let mut report = Report::default();
    let mut inventory = manifest::Inventory::default();
    for root in paths {
        if root.as_os_str() == "-" {
            report.add("-", Path::new("-"), stdin, &mut inventory, options);
            continue;
        }
        let walked = walk::files(root);
        report
            .errors
            .extend(walked.errors.into_iter().map(|e| InputError {
                path: root.display().to_string(),
                place: None,
                message: e,
            }));
        report.notes.extend(walked.charts.iter().map(|chart| {
            let chart = chart.display();
            format!(
                "{chart}: a Helm chart; its templates are not YAML until rendered: \
                 lint them with `helm template {chart} | lameduck lint -`"
            )
        }));
        for file in walked.files {
            let name = file.display().to_string();
            match open_regular(&file) {
                Ok(mut f) => report.add(&name, &file, &mut f, &mut inventory, options),
                Err(message) => report.errors.push(InputError {
                    path: name,
                    place: None,
                    message,
                }),
            }
        }
    }
    report.findings.extend(inventory.findings());
    report.findings.retain(|f| rules.is_on(f.rule));
    let order: HashMap<&str, usize> = report
        .inputs
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    report.findings.sort_by_key(|f| {
        let input = order.get(f.path.as_str()).copied().unwrap_or(usize::MAX);
        (input, f.line, f.column, f.rule)
    });
    report
}

/// The file at `path`, if it is a regular one: a FIFO would block the run
/// forever and `/dev/zero` would fill memory.
fn open_regular(path: &Path) -> Result<std::fs::File, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err(
            "not a regular file (a FIFO, socket or device): not linted; \
             pipe a stream to standard input instead: `helm template ./chart | lameduck lint -`"
                .into(),
        );
    }
    std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))
}

// === impl Report ===

impl Report {
    /// Lints one input read from `path` under `name`.
    fn add(
        &mut self,
        name: &str,
        path: &Path,
        reader: &mut dyn Read,
        inventory: &mut manifest::Inventory,
        options: &Options,
    ) {
        let mut decoder = Decoder::new(reader, true);
        if options.keep_sources {
            decoder = decoder.keep();
        }
        let kind = match walk::kind_by_name(path) {
            Some(kind) => kind,
            None => walk::kind_by_content(decoder.peek(PEEK)),
        };
        let mut found = Vec::new();
        let mut error = None;
        match kind {
            Input::Dockerfile if decoder.encoding().is_some_and(|e| e != Encoding::Utf8) => {
                error = Some(DecodeError {
                    place: Some((1, 1)),
                    message: "UTF-16 (it starts with a UTF-16 byte order mark): docker build reads UTF-8 only; not linted (save the file as UTF-8)".into(),
                });
            }
            Input::Dockerfile => {
                decoder.set_limit(MAX_DOCKERFILE);
                let text = decoder.rest();
                if decoder.error().is_none() {
                    // A file's directory is its build context: scripts it
                    // copies in are read. Standard input has none.
                    let linted = if name == "-" {
                        dockerfile::lint(name, &text)
                    } else {
                        dockerfile::lint_file(path, &text)
                    };
                    match linted {
                        Ok(f) => found = f,
                        Err(e) => {
                            error = Some(DecodeError {
                                place: Some((e.line, 1)),
                                message: e.message,
                            })
                        }
                    }
                }
            }
            Input::Manifest => {
                let failed = decoder.failed();
                // A document the input's end cut short is not linted.
                let docs = yaml::documents(&mut decoder).map(|doc| match failed.get() {
                    true => Err(YamlError {
                        line: 0,
                        column: 0,
                        message: String::new(),
                    }),
                    false => doc,
                });
                if let Err(e) = manifest::collect_documents(name, docs, inventory, &mut found) {
                    error = Some(DecodeError {
                        place: Some((e.line, e.column)),
                        message: format!("cannot parse: {}", e.message),
                    });
                }
            }
        }
        // The bytes' trouble comes first: what the parser made of a cut
        // input means nothing.
        if let Some(e) = decoder.error().cloned().or(error) {
            self.errors.push(InputError {
                path: name.to_owned(),
                place: e.place,
                message: e.message,
            });
        }
        self.findings.extend(found);
        self.inputs.push(name.to_owned());
        if let Some(text) = decoder.kept() {
            self.sources.insert(name.to_owned(), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_ordered_by_input_and_place_and_filtered_by_rule() {
        let mut stdin = "FROM a\nCMD [\"sh\", \"-c\", \"a & b\"]\n".as_bytes();
        let report = lint_paths(&["-".into()], &mut stdin, &RuleSet::defaults());
        let got: Vec<_> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
        assert_eq!(got, [("LD102", 2), ("LD105", 2)]);
        let mut no_init = RuleSet::defaults();
        no_init.apply(&[], &["LD105".to_owned()]);
        let mut stdin = "FROM a\nCMD [\"sh\", \"-c\", \"a & b\"]\n".as_bytes();
        let report = lint_paths(&["-".into()], &mut stdin, &no_init);
        let got: Vec<_> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
        assert_eq!(got, [("LD102", 2)]);
        let mut off = RuleSet::defaults();
        off.apply(&[], &["LD101".to_owned()]);
        let mut stdin = "FROM a\nENTRYPOINT x\n".as_bytes();
        assert_eq!(lint_paths(&["-".into()], &mut stdin, &off).findings, []);
    }
}
