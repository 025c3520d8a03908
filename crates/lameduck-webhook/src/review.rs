//! The AdmissionReview exchange (`admission.k8s.io/v1`): a request in, an
//! answer the API server takes out.
//!
//! The answer always admits the pod (`allowed: true`): the webhook changes
//! pods, it never refuses one. A request it cannot read as a review at all
//! (not JSON, no `request.uid`) gets HTTP 400 with a Kubernetes `Status`
//! body, which the API server reports as a failed call and, with
//! `failurePolicy: Ignore`, admits the pod unchanged.
//!
//! ```
//! use lameduck_webhook::annotations::Scope;
//! use lameduck_webhook::review::{answer, Outcome};
//!
//! let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
//!   "request":{"uid":"705ab4f5","operation":"CREATE",
//!     "kind":{"group":"","version":"v1","kind":"Pod"},
//!     "object":{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},
//!       "spec":{"containers":[{"name":"web","image":"web:1"}]}}}}"#;
//! let reply = answer(body, Scope::PodOptIn, "ghcr.io/lameduck-dev/lameduck:0.1.0");
//! assert_eq!(reply.status, 200);
//! assert_eq!(reply.outcome, Outcome::Skipped); // not annotated
//! ```

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{debug, error, info, warn};

use crate::annotations::{decide, Decision, Scope};
use crate::inject::{self, Outcome as Injection};

/// The review version the webhook speaks.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The review version of Kubernetes before 1.16, answered in kind but
/// never mutated.
pub const API_VERSION_V1BETA1: &str = "admission.k8s.io/v1beta1";
/// The largest request body read: the API server's own limit for a request
/// is 3 MiB, so a review can be no larger.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How a review ended, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The pod was changed: the answer carries a patch.
    Injected,
    /// Admitted unchanged: not opted in, opted out, injected already, or
    /// not a pod being created.
    Skipped,
    /// Admitted unchanged with a warning: something could not be understood.
    NotUnderstood,
    /// Not a review: HTTP 4xx.
    BadRequest,
}

impl Outcome {
    /// All outcomes, for metrics.
    pub const ALL: [Outcome; 4] = [
        Outcome::Injected,
        Outcome::Skipped,
        Outcome::NotUnderstood,
        Outcome::BadRequest,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Skipped => "skipped",
            Outcome::NotUnderstood => "not_understood",
            Outcome::BadRequest => "bad_request",
        }
    }
}

/// The HTTP answer to a review.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status: 200 for any review, 4xx for what is not one.
    pub status: u16,
    /// JSON body: an AdmissionReview, or a Kubernetes `Status`.
    pub body: Vec<u8>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Answers one review body for the webhook path of `scope`; `image` is the
/// lameduck image of the init container.
pub fn answer(body: &[u8], scope: Scope, image: &str) -> Reply {
    let review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad_request(400, format!("the body is not JSON: {e}")),
    };
    let api_version = review.get("apiVersion").and_then(Value::as_str);
    let kind = review.get("kind").and_then(Value::as_str);
    if kind != Some("AdmissionReview") {
        return bad_request(400, format!("kind is {kind:?}, not \"AdmissionReview\""));
    }
    let api_version = match api_version {
        Some(v @ (API_VERSION | API_VERSION_V1BETA1)) => v,
        other => return bad_request(400, format!("apiVersion {other:?} is not {API_VERSION:?}")),
    };
    let Some(request) = review.get("request") else {
        return bad_request(400, "the review has no request".into());
    };
    let uid = match request.get("uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => uid,
        _ => return bad_request(400, "the review's request has no uid".into()),
    };
    let reply = |outcome, patch: Option<&json_patch::Patch>, warnings: &[String]| {
        admit(api_version, uid, outcome, patch, warnings)
    };
    if api_version == API_VERSION_V1BETA1 {
        return reply(
            Outcome::NotUnderstood,
            None,
            &[format!("lameduck webhook mutates only {API_VERSION} reviews: set admissionReviewVersions to [v1]; pod left unchanged")],
        );
    }
    let target = Target::of(request);
    let gvk = request.get("kind").map(Gvk::of).unwrap_or_default();
    if gvk != Gvk::pod() {
        return reply(
            Outcome::NotUnderstood,
            None,
            &[format!("lameduck webhook mutates Pods, not {gvk}: check the webhook's rules; left unchanged")],
        );
    }
    let sub_resource = request.get("subResource").and_then(Value::as_str);
    let operation = request.get("operation").and_then(Value::as_str);
    if sub_resource.is_some_and(|s| !s.is_empty()) || operation != Some("CREATE") {
        debug!(uid, %target, ?operation, ?sub_resource, "not a pod being created: skipped");
        return reply(Outcome::Skipped, None, &[]);
    }
    let Some(object) = request.get("object") else {
        return reply(
            Outcome::NotUnderstood,
            None,
            &["the review carries no pod: left unchanged".into()],
        );
    };
    let pod = match Pod::deserialize(object) {
        Ok(pod) => pod,
        Err(e) => {
            let why = format!("the pod could not be read ({e}): left unchanged");
            warn!(uid, %target, "{why}");
            return reply(Outcome::NotUnderstood, None, &[why]);
        }
    };
    let options = match decide(pod.metadata.annotations.as_ref(), scope) {
        Decision::Inject(options) => options,
        Decision::Skip(why) => {
            debug!(uid, %target, "{why}: skipped");
            return reply(Outcome::Skipped, None, &[]);
        }
        Decision::NotUnderstood(why) => {
            warn!(uid, %target, "{why}");
            return reply(Outcome::NotUnderstood, None, &[why]);
        }
    };
    match inject::inject(&pod, &options, image) {
        Injection::Skipped(why) => {
            debug!(uid, %target, "{why}: skipped");
            reply(Outcome::Skipped, None, &[])
        }
        Injection::Unchanged(why) => {
            warn!(uid, %target, "{why}");
            reply(Outcome::NotUnderstood, None, &[why])
        }
        Injection::Injected {
            pod: injected,
            warnings,
            containers,
        } => match patch_for(object, &pod, &injected) {
            Ok(patch) => {
                info!(uid, %target, containers = %containers.join(","), warnings = warnings.len(), "injected");
                for w in &warnings {
                    info!(uid, %target, "warning: {w}");
                }
                reply(Outcome::Injected, Some(&patch), &warnings)
            }
            Err(e) => {
                error!(uid, %target, "the patch does not apply to the pod as sent: {e}");
                reply(
                    Outcome::NotUnderstood,
                    None,
                    &[format!(
                        "lameduck webhook could not patch this pod ({e}): left unchanged"
                    )],
                )
            }
        },
    }
}

/// The JSON Patch from `before` to `after`, checked against the object as
/// the API server sent it: fields the typed pod does not know are never
/// touched, because both sides of the diff went through the same types,
/// and the patched object must still read as a Pod.
fn patch_for(object: &Value, before: &Pod, after: &Pod) -> Result<json_patch::Patch, String> {
    let from = serde_json::to_value(Changed::of(before)).map_err(|e| e.to_string())?;
    let to = serde_json::to_value(Changed::of(after)).map_err(|e| e.to_string())?;
    let patch = json_patch::diff(&from, &to);
    let mut applied = object.clone();
    json_patch::patch(&mut applied, &patch).map_err(|e| e.to_string())?;
    Pod::deserialize(&applied).map_err(|e| e.to_string())?;
    Ok(patch)
}

/// The parts of a pod the injection may change: its annotations and its
/// spec. The diff walks nothing else (not `managedFields`, not `status`),
/// which keeps it cheap and the rest of the pod out of its reach.
#[derive(Serialize)]
struct Changed<'a> {
    metadata: ChangedMeta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<&'a PodSpec>,
}

#[derive(Serialize)]
struct ChangedMeta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Changed<'a> {
    fn of(pod: &'a Pod) -> Self {
        Changed {
            metadata: ChangedMeta {
                annotations: pod.metadata.annotations.as_ref(),
            },
            spec: pod.spec.as_ref(),
        }
    }
}

/// An AdmissionReview that admits the pod, with a patch if any.
fn admit(
    api_version: &str,
    uid: &str,
    outcome: Outcome,
    patch: Option<&json_patch::Patch>,
    warnings: &[String],
) -> Reply {
    let mut response = json!({"uid": uid, "allowed": true});
    if let Some(patch) = patch {
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    let review =
        json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response});
    Reply {
        status: 200,
        body: review.to_string().into_bytes(),
        outcome,
    }
}

/// A Kubernetes `Status` failure, as API servers answer errors.
pub fn bad_request(code: u16, message: String) -> Reply {
    debug!(code, "bad request: {message}");
    let reason = match code {
        413 => "RequestEntityTooLarge",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "Timeout",
        _ => "BadRequest",
    };
    let status = json!({
        "apiVersion": "v1", "kind": "Status", "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    Reply {
        status: code,
        body: status.to_string().into_bytes(),
        outcome: Outcome::BadRequest,
    }
}

/// `group/version, Kind` of the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

impl Gvk {
    fn pod() -> Self {
        Gvk {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
        }
    }

    fn of(v: &Value) -> Self {
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Gvk {
            group: field("group"),
            version: field("version"),
            kind: field("kind"),
        }
    }
}

impl std::fmt::Display for Gvk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.group.as_str() {
            "" => write!(f, "{}/{}", self.version, self.kind),
            group => write!(f, "{group}/{}/{}", self.version, self.kind),
        }
    }
}

/// `namespace/name` of the pod, or its generateName prefix, for logs.
struct Target(String);

impl Target {
    fn of(request: &Value) -> Self {
        let namespace = request
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let meta = request.get("object").and_then(|o| o.get("metadata"));
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                meta.and_then(|m| m.get("generateName"))
                    .and_then(Value::as_str)
                    .map(|g| format!("{g}*"))
            })
            .unwrap_or_else(|| "-".into());
        Target(format!("{namespace}/{name}"))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
