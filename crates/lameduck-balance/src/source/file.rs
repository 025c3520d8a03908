//! `file:PATH`: EndpointSlice objects as `kubectl get -o yaml|json` prints
//! them (one object, several YAML documents, or a `List`), read again when
//! the file changes and on SIGHUP. A file that cannot be used leaves the
//! last good set in place: a bad write must never drop every endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use super::slice::{resolve, Resolved};
use super::PortSelector;
use crate::metrics::Metrics;
use crate::set::EndpointSet;

/// Files larger than this are refused: an endpoints file of 10,000 pods is
/// a few megabytes.
const MAX_SIZE: u64 = 64 * 1024 * 1024;

/// How often the file is looked at for a change.
pub const POLL: Duration = Duration::from_millis(250);

/// Parses the EndpointSlices in `text` (YAML or JSON).
pub fn parse(text: &str) -> Result<Vec<EndpointSlice>, String> {
    let trimmed = text.trim_start();
    let documents: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        vec![serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?]
    } else {
        serde_saphyr::from_multiple(text).map_err(|e| format!("not valid YAML: {e}"))?
    };
    let mut slices = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let at = index + 1;
        if document.is_null() {
            continue;
        }
        let kind = document
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match kind.as_str() {
            "EndpointSlice" => slices.push(slice(document, at)?),
            "List" | "EndpointSliceList" => {
                let Some(Value::Array(items)) = document.get("items").cloned() else {
                    return Err(format!("document {at}: a {kind} without items"));
                };
                for item in items {
                    slices.push(slice(item, at)?);
                }
            }
            "" => {
                return Err(format!(
                    "document {at} has no kind: expected EndpointSlice or List"
                ))
            }
            other => {
                return Err(format!(
                    "document {at} is a {other}, not an EndpointSlice or a List of them"
                ))
            }
        }
    }
    Ok(slices)
}

fn slice(value: Value, at: usize) -> Result<EndpointSlice, String> {
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    serde_json::from_value(value).map_err(|e| format!("document {at}, EndpointSlice {name}: {e}"))
}

/// Reads, parses and resolves the file.
pub fn load(path: &Path, port: Option<&PortSelector>) -> Result<Resolved, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_SIZE {
        return Err(format!(
            "{} is {} bytes, more than the {MAX_SIZE} an endpoints file may have",
            path.display(),
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let slices = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    resolve(&slices, port).map_err(|e| format!("{}: {e}", path.display()))
}

/// What identifies a version of the file: a new write, a rename over it,
/// or a ConfigMap's symlink swap changes it.
fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// A file source, loaded once.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    port: Option<PortSelector>,
    seen: Option<(SystemTime, u64, u64)>,
}

impl FileSource {
    /// Loads `path` into `set`; fails when the first read fails (nothing
    /// good to keep yet).
    pub fn start(
        path: PathBuf,
        port: Option<PortSelector>,
        set: &EndpointSet,
        metrics: &Metrics,
    ) -> Result<FileSource, String> {
        let seen = stamp(&path);
        let resolved = load(&path, port.as_ref())?;
        take(&path, resolved, set, metrics);
        Ok(FileSource { path, port, seen })
    }

    /// Reloads on each change of the file and on SIGHUP, for as long as the
    /// balancer runs.
    pub async fn watch(mut self, set: Arc<EndpointSet>, metrics: Arc<Metrics>) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP: reloads follow file changes only");
                None
            }
        };
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let asked = tokio::select! {
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                _ = tick.tick() => false,
            };
            let now = stamp(&self.path);
            if !asked && now == self.seen {
                continue;
            }
            self.seen = now;
            if asked {
                info!(path = %self.path.display(), "SIGHUP: reading the endpoints file again");
            }
            match load(&self.path, self.port.as_ref()) {
                Ok(resolved) => take(&self.path, resolved, &set, &metrics),
                Err(e) => {
                    metrics.source_errors.inc();
                    set.source_failed(e.clone());
                    let kept = set.endpoints().len();
                    warn!(error = %e, kept, "endpoints file not used: the last good set stays");
                }
            }
        }
    }
}

fn take(path: &Path, resolved: Resolved, set: &EndpointSet, metrics: &Metrics) {
    for skipped in &resolved.skipped {
        warn!(path = %path.display(), "{skipped}: left out");
    }
    set.update(&resolved.backends);
    metrics.source_reloads.inc();
    info!(path = %path.display(), endpoints = resolved.backends.len(), "endpoints read");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    const TWO: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: metrics, port: 9090}]
endpoints:
- addresses: ["10.0.0.1"]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: web-1}
- addresses: ["10.0.0.2"]
  conditions: {ready: false, serving: true, terminating: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-def}
addressType: IPv4
ports: [{name: http, port: 8081}]
endpoints:
- addresses: ["10.0.0.3"]
- addresses: ["10.0.0.1"]
  conditions: {ready: false}
"#;

    #[test]
    fn several_documents_merge_by_address_on_the_named_port() {
        let slices = parse(TWO).expect("parse");
        let port = PortSelector::Name("http".into());
        let r = resolve(&slices, Some(&port)).expect("resolve");
        let got: Vec<(String, State)> = r
            .backends
            .iter()
            .map(|b| (b.addr.to_string(), b.conditions.state()))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1:8080".into(), State::Ready),
                ("10.0.0.1:8081".into(), State::NotServing),
                ("10.0.0.2:8080".into(), State::Terminating),
                ("10.0.0.3:8081".into(), State::Ready),
            ]
        );
        assert_eq!(r.backends[0].name.as_deref(), Some("web-1"));
    }

    #[test]
    fn a_list_in_json_is_read_and_the_only_port_is_taken() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"a"},"addressType":"IPv6","ports":[{"port":80}],"endpoints":[{"addresses":["fd00::1"]}]}]}"#;
        let r = resolve(&parse(json).expect("parse"), None).expect("resolve");
        assert_eq!(r.backends[0].addr.to_string(), "[fd00::1]:80");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let slices = parse(TWO).expect("parse");
        let err = resolve(&slices, None).expect_err("two ports");
        assert!(err.contains("several ports (http, metrics)"), "{err}");
        let err = resolve(&slices, Some(&PortSelector::Name("grpc".into()))).expect_err("no grpc");
        assert!(
            err.contains(r#"no EndpointSlice has a TCP port named "grpc""#),
            "{err}"
        );
        for (text, needle) in [
            ("kind: Pod\napiVersion: v1\n", "is a Pod"),
            ("endpoints: [\n", "not valid YAML"),
            ("{\"kind\": ", "not valid JSON"),
            (
                "kind: EndpointSlice\napiVersion: discovery.k8s.io/v1\naddressType: 7\n",
                "EndpointSlice (unnamed)",
            ),
            ("a: &a [*a]\n", "YAML"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
