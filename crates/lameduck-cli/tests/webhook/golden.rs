//! Golden tests: AdmissionReviews of pods as a Deployment's ReplicaSet
//! creates them (generateName, ownerReferences, the fields the API server
//! defaults, the service account volume) sent over HTTPS to the running
//! webhook. Each answer must echo the uid and admit the pod; each patch must
//! decode, apply to the pod as sent, and give a pod that reads as a
//! `k8s_openapi` Pod, passes `kubernetes-validate`, gets no warning from
//! `lameduck lint`, and has a grace period that holds its stop. The answers
//! are compared with `tests/webhook/expected/` (`LAMEDUCK_BLESS=1` rewrites
//! them; review the diff).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use crate::harness::Webhook;
use crate::support::{lameduck_bin, tempdir};

/// Reviews sent to `/mutate-namespace` (a namespace labelled for
/// injection); the rest go to `/mutate`.
const NAMESPACE_WIDE: &[&str] = &["namespace-wide", "opted-out"];

/// The reviews whose pod is changed.
const INJECTED: &[&str] = &[
    "command",
    "native-sidecar",
    "namespace-wide",
    "no-command",
    "no-grace",
    "prestop-short-grace",
    "proxy",
    "several-containers",
    "short-grace",
];

/// The reviews admitted unchanged with a warning.
const WARNED_UNCHANGED: &[&str] = &[
    "bad-annotation",
    "malformed-object",
    "v1beta1",
    "wrong-kind",
];

/// Seconds a pod must keep for its app beyond the preStop and the drain
/// delay, written here apart from the code under test.
const APP_MARGIN: f64 = 5.0;

/// `tests/webhook/reviews/`.
pub fn reviews_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook/reviews")
}

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook/expected")
}

#[test]
fn recorded_reviews_get_the_golden_answers() {
    let hook = Webhook::start();
    let patched = tempdir();
    let bless = std::env::var_os("LAMEDUCK_BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    let mut names: Vec<String> = std::fs::read_dir(reviews_dir())
        .expect("reviews")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 16, "reviews missing: {names:?}");
    let mut changed = Vec::new();
    for name in &names {
        let file = reviews_dir().join(format!("{name}.json"));
        let review: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read review")).expect("json");
        let path = if NAMESPACE_WIDE.contains(&name.as_str()) {
            "/mutate-namespace"
        } else {
            "/mutate"
        };
        let (status, body) = hook.post_file(path, &file);
        assert_eq!(status, 200, "{name}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("the answer is JSON");
        assert_eq!(answer["kind"], "AdmissionReview", "{name}");
        assert_eq!(answer["apiVersion"], review["apiVersion"], "{name}");
        let response = &answer["response"];
        assert_eq!(response["uid"], review["request"]["uid"], "{name}: uid");
        assert_eq!(response["allowed"], true, "{name}: never refused");
        let warnings = response.get("warnings").cloned().unwrap_or(json!([]));
        let patch = response.get("patch").map(|b64| {
            assert_eq!(response["patchType"], "JSONPatch", "{name}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().expect("patch is a string"))
                .expect("the patch is standard base64");
            let patch: json_patch::Patch =
                serde_json::from_slice(&bytes).expect("the patch is a JSON Patch");
            patch
        });
        assert_eq!(
            patch.is_some(),
            INJECTED.contains(&name.as_str()),
            "{name}: patched or not"
        );
        if WARNED_UNCHANGED.contains(&name.as_str()) {
            assert!(
                warnings.as_array().is_some_and(|w| !w.is_empty()),
                "{name}: left unchanged without a warning"
            );
        }
        if let Some(patch) = &patch {
            let mut pod = review["request"]["object"].clone();
            json_patch::patch(&mut pod, patch)
                .unwrap_or_else(|e| panic!("{name}: the patch does not apply: {e}"));
            let typed: Pod = serde_json::from_value(pod.clone())
                .unwrap_or_else(|e| panic!("{name}: not a Pod: {e}"));
            check_grace(name, &typed);
            let out = patched.path().join(format!("{name}.json"));
            std::fs::write(&out, serde_json::to_vec_pretty(&pod).expect("json")).expect("write");
            changed.push(out);
        }
        let got = json!({
            "status": status,
            "warnings": warnings,
            "patch": patch.map(|p| serde_json::to_value(p).expect("json")),
        });
        let expected_file = expected_dir().join(format!("{name}.json"));
        let got_text = serde_json::to_string_pretty(&got).expect("json") + "\n";
        if bless {
            std::fs::create_dir_all(expected_dir()).expect("mkdir");
            std::fs::write(&expected_file, &got_text).expect("bless");
        }
        let expected = std::fs::read_to_string(&expected_file).unwrap_or_default();
        assert_eq!(
            got_text, expected,
            "{name}: the answer changed (LAMEDUCK_BLESS=1 rewrites tests/webhook/expected; review the diff)"
        );
    }
    validate(&changed);
    lint_clean(patched.path());
    hook.assert_alive();
}

/// The grace period holds every changed container's preStop sleep and
/// drain delay and a margin, and `lameduck run` is told what is left.
fn check_grace(name: &str, pod: &Pod) {
    let spec = pod.spec.as_ref().expect("spec");
    let grace = spec.termination_grace_period_seconds.unwrap_or(30) as f64;
    let mut checked = 0;
    for c in &spec.containers {
        let wrapped = c
            .command
            .as_ref()
            .is_some_and(|cmd| cmd.len() > 1 && cmd[0] == "/lameduck/lameduck" && cmd[1] == "run");
        let pre_stop = pre_stop_sleep(c);
        if !wrapped && pre_stop.is_none() {
            continue;
        }
        checked += 1;
        let pre_stop = pre_stop.unwrap_or(0.0);
        let drain = if wrapped { drain_delay(c) } else { 0.0 };
        assert!(
            grace >= pre_stop + drain + APP_MARGIN,
            "{name}/{}: grace {grace}s does not hold preStop {pre_stop}s + drain {drain}s + {APP_MARGIN}s",
            c.name
        );
        if wrapped {
            let env = c
                .env
                .iter()
                .flatten()
                .find(|e| e.name == "LAMEDUCK_GRACE_PERIOD")
                .and_then(|e| e.value.clone())
                .unwrap_or_else(|| panic!("{name}/{}: no LAMEDUCK_GRACE_PERIOD", c.name));
            assert_eq!(
                env,
                format!("{}s", grace - pre_stop),
                "{name}/{}: lameduck's deadline is not the kubelet's",
                c.name
            );
            assert!(
                c.volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.mount_path == "/lameduck"),
                "{name}/{}: the binary is not mounted",
                c.name
            );
        }
    }
    assert!(checked > 0, "{name}: no container was changed");
    if spec.containers.iter().any(|c| {
        c.command
            .as_ref()
            .is_some_and(|cmd| cmd[0] == "/lameduck/lameduck")
    }) {
        let init = spec.init_containers.as_ref().expect("init containers");
        assert!(
            init.iter().any(|c| c.name == "lameduck-init"),
            "{name}: nothing copies the binary"
        );
    }
}

fn pre_stop_sleep(c: &Container) -> Option<f64> {
    let hook = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
    if let Some(sleep) = &hook.sleep {
        return Some(sleep.seconds as f64);
    }
    let text = hook.exec.as_ref()?.command.as_ref()?.join(" ");
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "sleep")?;
    words.get(at + 1)?.parse().ok()
}

fn drain_delay(c: &Container) -> f64 {
    let cmd = c.command.as_ref().expect("command");
    let at = cmd
        .iter()
        .position(|a| a == "--drain-delay")
        .expect("the injected command names its drain delay");
    lameduck_core::parse_duration(&cmd[at + 1])
        .expect("a duration")
        .as_secs_f64()
}

/// `kubernetes-validate --strict` for the newest and the oldest Kubernetes
/// the webhook is for (the preStop sleep action is 1.30+).
fn validate(files: &[PathBuf]) {
    for version in ["1.37.0", "1.33.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(files)
            .output()
            .expect("kubernetes-validate (pip install kubernetes-validate)");
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `lameduck lint` finds nothing at all in `path` (a file or a directory):
/// no error, no warning, not even a note.
pub fn lint_clean(path: &Path) {
    let out = Command::new(lameduck_bin())
        .args(["lint", "--format", "json", "--fail-on", "info"])
        .arg(path)
        .output()
        .expect("lameduck lint");
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lint output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(findings, json!([]), "lameduck lint {}", path.display());
    assert!(
        out.status.success(),
        "lameduck lint exited {:?}",
        out.status
    );
}
