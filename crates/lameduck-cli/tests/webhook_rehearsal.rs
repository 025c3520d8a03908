//! The webhook's injection, proven by rehearsal: recorded AdmissionReviews
//! of a Deployment's pod whose container runs the bundled example app
//! (`examples/rehearsal/app.py`, which exits at once on SIGTERM) are sent
//! over real HTTPS to the running `lameduck webhook`; the patch it answers
//! is applied with `json-patch`, and the pods before and after are
//! rehearsed with `lameduck check --manifest` under the same load (keep-alive
//! clients behind a kube-proxy-like balancer) and endpoint lag.
//!
//! - The pod as sent loses requests to the lag (refused).
//! - With `lameduck.io/inject` alone, `lameduck run --drain-delay` covers the
//!   lag (nothing refused), but this app still cuts what is in flight on the
//!   connections kube-proxy keeps open when it exits: the rehearsal says so
//!   and names the drain proxy as the fix.
//! - With `lameduck.io/proxy: "8080=8081"` too (the app moved to 8081, as the
//!   annotation asks of a team), the patched pod loses nothing.
//!
//! The reviews are recorded with the app at `/srv/app.py` run by `python3`,
//! as its image would have them; before sending, the test puts the paths of
//! this checkout and of the real interpreter there, so the rehearsal can run
//! the command as written. The injected `/lameduck/lameduck` (an init
//! container's copy, not on this machine) is run by the rehearsal as the
//! lameduck under test.

mod check_support;
mod support;

#[allow(dead_code)]
#[path = "webhook/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use base64::Engine;
use check_support::{check_logged, finding_of, findings};
use serde_json::Value;
use support::{lameduck_bin, python, tempdir};

/// The balancer's lag in every rehearsal: longer than nothing (the app as
/// sent), shorter than the injected drain delay (2s, from the pods'
/// `lameduck.io/drain-delay`).
const LAG: &str = "1s";

/// A recorded review by name.
fn review_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/webhook/rehearsal")
        .join(format!("{name}.json"))
}

/// The bundled example app.
fn example_app() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/rehearsal/app.py")
        .canonicalize()
        .expect("examples/rehearsal/app.py")
        .to_string_lossy()
        .into_owned()
}

/// The recorded review with this machine's interpreter and app path in
/// the container's command.
fn review(name: &str) -> Value {
    let mut review: Value =
        serde_json::from_slice(&std::fs::read(review_file(name)).expect("the review"))
            .expect("json");
    let command = &mut review["request"]["object"]["spec"]["containers"][0]["command"];
    assert_eq!(
        *command,
        serde_json::json!(["python3", "/srv/app.py"]),
        "the recorded command"
    );
    *command = serde_json::json!([python(), example_app()]);
    review
}

/// Sends `review` to the webhook; returns the pod it admits, patched.
fn admit(review: &Value) -> Value {
    let hook = harness::Webhook::start();
    let (status, body) = hook.post("/mutate", &review.to_string());
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("the answer is JSON");
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert!(
        response
            .get("warnings")
            .is_none_or(|w| w == &serde_json::json!([])),
        "{response:#}"
    );
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .expect("standard base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSON Patch");
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies");
    hook.assert_alive();
    pod
}

/// Rehearses `pod`, written as a manifest, under the one load and lag.
fn rehearse(pod: &Value) -> (i32, Value, String) {
    let dir = tempdir();
    let path = dir.path().join("pod.json");
    std::fs::write(&path, serde_json::to_vec_pretty(pod).expect("json")).expect("the manifest");
    let path = path.to_string_lossy().into_owned();
    check_logged(
        &[
            "--manifest",
            &path,
            "--endpoint-lag",
            LAG,
            "--rps",
            "100",
            "--settle",
            "300ms",
        ],
        &[],
    )
}

#[test]
fn the_injected_pod_loses_nothing_where_the_pod_as_sent_loses_requests() {
    // Before: the app exits at SIGTERM while the balancer still routes.
    let plain = review("example-app");
    let (code, report, log) = rehearse(&plain["request"]["object"]);
    assert_eq!(code, 1, "{report:#}\n{log}");
    assert!(
        report["requests"]["refused"].as_u64() > Some(0),
        "{report:#}"
    );
    let loss = finding_of(&report, "loss");
    assert!(
        loss["what"].as_str().is_some_and(|w| w.contains("refused")),
        "{loss:#}"
    );

    // `lameduck run` alone: the lag is covered, nothing is refused; what
    // the app cuts on kept connections when it exits is named, with the
    // drain proxy as its fix.
    let patched = admit(&plain);
    let command = &patched["spec"]["containers"][0]["command"];
    assert_eq!(command[0], "/lameduck/lameduck", "{command}");
    assert_eq!(command[1], "run", "{command}");
    let (_, report, log) = rehearse(&patched);
    assert_eq!(report["requests"]["refused"], 0, "{report:#}\n{log}");
    for (what, _, fix) in findings(&report) {
        assert!(
            what.contains("cut") && fix.contains("lameduck run --listen"),
            "{what}: {fix}\n{report:#}"
        );
    }

    // With the drain proxy: nothing lost.
    let proxied = admit(&review("example-app-proxy"));
    let command = &proxied["spec"]["containers"][0]["command"];
    assert_eq!(command[0], "/lameduck/lameduck", "{command}");
    assert!(
        command
            .as_array()
            .is_some_and(|c| c.contains(&"--listen".into())),
        "{command}"
    );
    let (code, report, log) = rehearse(&proxied);
    assert_eq!(code, 0, "{report:#}\n{log}");
    assert_eq!(report["requests"]["refused"], 0, "{report:#}");
    assert!(report["requests"]["ok"].as_u64() > Some(50), "{report:#}");
    assert!(findings(&report).is_empty(), "{report:#}");
    let ran = Path::new(report["plan"]["command"][0].as_str().expect("a command"))
        .canonicalize()
        .expect("the program ran");
    assert_eq!(
        ran,
        Path::new(lameduck_bin()).canonicalize().expect("lameduck"),
        "the injected lameduck is the one under test"
    );
    // lameduck run inside read the drain delay from its flags and the
    // grace period the webhook gave it in its env.
    let inner = &report["pods"][0]["life"]["lameduck"];
    assert_eq!(inner["drain_delay"], 2000.0, "{inner}");
    assert_eq!(inner["grace_period"], 10000.0, "{inner}");
}
