//! One run of the linter over files, directories and standard input: what
//! `lameduck lint` does between reading its flags and writing its findings.
//!
//! An input that cannot be read or parsed becomes an [`InputError`] that
//! names its place; every other input is still linted.
//!
//! ```
//! use lameduck_lint::{run, select::RuleSet};
//!
//! let mut stdin = "FROM alpine\nCMD app --port 8080\n".as_bytes();
//! let report = run::lint_paths(&["-".into()], &mut stdin, &RuleSet::defaults());
//! assert_eq!(report.findings[0].rule, "LD101");
//! assert!(report.errors.is_empty());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::finding::Finding;
use crate::select::RuleSet;
use crate::walk::{self, Input};
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

/// Lints `paths` (files, directories walked with [`walk::files`], `-` for
/// `stdin`) with the rules of `rules` on. Services and the workloads they
/// select are matched across all the inputs.
pub fn lint_paths(paths: &[PathBuf], stdin: &mut dyn Read, rules: &RuleSet) -> Report {
    let mut report = Report::default();
    let mut inventory = manifest::Inventory::default();
    for root in paths {
        if root.as_os_str() == "-" {
            let mut bytes = Vec::new();
            match stdin.read_to_end(&mut bytes) {
                Ok(_) => report.add("-", Path::new("-"), bytes, &mut inventory),
                Err(e) => report.errors.push(InputError {
                    path: "-".into(),
                    place: None,
                    message: format!("cannot read standard input: {e}"),
                }),
            }
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
            match std::fs::read(&file) {
                Ok(bytes) => report.add(&name, &file, bytes, &mut inventory),
                Err(e) => report.errors.push(InputError {
                    path: name,
                    place: None,
                    message: format!("cannot read: {e}"),
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

// === impl Report ===

impl Report {
    /// Lints one input read from `path` under `name`.
    fn add(
        &mut self,
        name: &str,
        path: &Path,
        bytes: Vec<u8>,
        inventory: &mut manifest::Inventory,
    ) {
        let text = match decode(bytes) {
            Ok(text) => text,
            Err((place, message)) => {
                self.errors.push(InputError {
                    path: name.to_owned(),
                    place: Some(place),
                    message,
                });
                return;
            }
        };
        match walk::input_kind(path, &text) {
            // A file's directory is its build context: scripts it copies in
            // are read. Standard input has none.
            Input::Dockerfile if name != "-" => {
                self.findings.extend(dockerfile::lint_file(path, &text))
            }
            Input::Dockerfile => self.findings.extend(dockerfile::lint(name, &text)),
            Input::Manifest => match manifest::collect(name, &text, inventory) {
                Ok(found) => self.findings.extend(found),
                Err(e) => self.errors.push(InputError {
                    path: name.to_owned(),
                    place: Some((e.line, e.column)),
                    message: format!("cannot parse: {}", e.message),
                }),
            },
        }
        self.inputs.push(name.to_owned());
        self.sources.insert(name.to_owned(), text);
    }
}

/// The text of an input: UTF-8 without NUL bytes (a NUL means a binary
/// file, as ripgrep takes it), a leading byte order mark dropped as
/// BuildKit does. Else the place of the first bad byte and why.
fn decode(mut bytes: Vec<u8>) -> Result<String, ((usize, usize), String)> {
    if bytes.starts_with(b"\xef\xbb\xbf") {
        bytes.drain(..3);
    }
    let place = |bytes: &[u8], at: usize| {
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        (line, at - line_start + 1)
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err((
            place(&bytes, at),
            "a NUL byte: binary, not text; not linted".into(),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let message = format!(
            "byte 0x{:02x} is not UTF-8: not linted (save the file as UTF-8)",
            bytes.get(at).copied().unwrap_or_default()
        );
        (place(bytes, at), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_latin1_inputs_say_where() {
        assert_eq!(
            decode(b"FROM a\nCMD \x00x".to_vec()),
            Err(((2, 5), "a NUL byte: binary, not text; not linted".into()))
        );
        let e = decode(b"FROM a\n\nCMD caf\xe9\n".to_vec()).expect_err("latin-1");
        assert_eq!(e.0, (3, 8));
        assert!(e.1.starts_with("byte 0xe9 is not UTF-8"), "{}", e.1);
        assert_eq!(
            decode(b"\xef\xbb\xbfFROM a\n".to_vec()),
            Ok("FROM a\n".into())
        );
    }

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
