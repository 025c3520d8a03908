//! What the webhook does with input the API server never sends: always an
//! answer the API server understands (a Kubernetes `Status` with a 4xx), or
//! the connection closed for TLS; never a panic, and never a stall of the
//! other clients.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{make_certs, Webhook, HOST};
use crate::support::net::{free_port, metric};
use crate::support::{python, tempdir, wait_until};

/// The answer is a Kubernetes `Status` failure with `code`.
fn assert_status(name: &str, (status, body): (u16, String), code: u16) {
    assert_eq!(status, code, "{name}: {body}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {body}"));
    assert_eq!(v["kind"], "Status", "{name}");
    assert_eq!(v["status"], "Failure", "{name}");
    assert_eq!(v["code"], code, "{name}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{name}: no message"
    );
}

#[test]
fn what_is_not_a_review_gets_a_status_the_api_server_understands() {
    let hook = Webhook::start();
    for (name, body) in [
        ("not JSON", "{\"apiVersion\": \"admission.k8s.io/v1\", "),
        ("a JSON string", "\"AdmissionReview\""),
        (
            "the wrong kind",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#,
        ),
        (
            "an unknown version",
            r#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"1"}}"#,
        ),
        (
            "no request",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        ),
        (
            "no uid",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"}}}"#,
        ),
        (
            "a nesting bomb",
            &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
    ] {
        assert_status(name, hook.post("/mutate", body), 400);
    }
    let ca = hook.certs.join("ca.crt");
    assert_status(
        "GET",
        hook.answer(hook.curl_with_ca(&ca, "/mutate", &[])),
        405,
    );
    assert_status(
        "another path",
        hook.answer(hook.curl_with_ca(&ca, "/validate", &["--data-binary", "{}"])),
        404,
    );
    // Over 3 MiB: refused from its Content-Length, and without one
    // (chunked) once 3 MiB were read.
    let big = tempdir();
    let file = big.path().join("big.json");
    std::fs::write(&file, vec![b' '; 3 * 1024 * 1024 + 1]).expect("write");
    let data = format!("@{}", file.display());
    for (name, extra) in [
        ("over 3 MiB", vec!["--data-binary", data.as_str()]),
        (
            "over 3 MiB, chunked",
            vec![
                "-H",
                "Transfer-Encoding: chunked",
                "--http1.1",
                "--data-binary",
                data.as_str(),
            ],
        ),
    ] {
        assert_status(
            name,
            hook.answer(hook.curl_with_ca(&ca, "/mutate", &extra)),
            413,
        );
    }
    // Just under the limit is read, and answered as what it is.
    std::fs::write(&file, vec![b' '; 3 * 1024 * 1024]).expect("write");
    assert_status(
        "3 MiB of spaces",
        hook.answer(hook.curl_with_ca(&ca, "/mutate", &["--data-binary", &data])),
        400,
    );
    assert!(hook.answers_a_review());
    assert_eq!(
        metric(
            hook.admin,
            "lameduck_webhook_reviews_total{outcome=\"bad_request\"}"
        ),
        Some(12.0)
    );
    hook.assert_alive();
}

#[test]
fn clients_without_tls_are_told_and_do_not_stop_it() {
    let hook = Webhook::start();
    // Plain HTTP to the TLS port is answered the way Go's servers answer it.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/mutate", hook.port))
        .args(["--data-binary", "{}"])
        .output()
        .expect("curl");
    let (status, body) = hook.answer(plain);
    assert_eq!(status, 400);
    assert!(body.contains("HTTP request to an HTTPS server"), "{body}");
    // A client that does not trust the certificate ends the handshake.
    let untrusting = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("{HOST}:{}:127.0.0.1", hook.port))
        .arg(format!("https://{HOST}:{}/mutate", hook.port))
        .output()
        .expect("curl");
    assert_eq!(
        untrusting.status.code(),
        Some(60),
        "curl: certificate problem"
    );
    wait_until("both failed handshakes counted", || {
        metric(hook.admin, "lameduck_webhook_tls_handshake_errors_total") == Some(2.0)
    });
    assert!(hook.answers_a_review());
    hook.assert_alive();
}

/// A Python client (standard library `ssl`) that opens a TLS connection,
/// sends a request head and 10 bytes of a 100,000-byte body, says `sent`,
/// and waits for its standard input to close; then says whether an answer
/// came. A second one connects and never starts the handshake.
const SLOW_CLIENT: &str = r#"
import socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
idle = socket.create_connection(("127.0.0.1", port))
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=host)
s.sendall(b"POST /mutate HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"apiVers")
print("sent", flush=True)
sys.stdin.read()
s.settimeout(0.2)
try:
    got = s.recv(100)
    print("answered" if got else "closed", flush=True)
except (socket.timeout, TimeoutError):
    print("pending", flush=True)
"#;

#[test]
fn a_slow_client_does_not_hold_up_the_others() {
    let hook = Webhook::start();
    let mut slow = Command::new(python())
        .args(["-c", SLOW_CLIENT, HOST, &hook.port.to_string()])
        .arg(hook.certs.join("ca.crt"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(slow.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "sent");
    // Both slow connections are open: reviews are still answered, over
    // HTTP/2 and HTTP/1.1.
    for _ in 0..3 {
        assert!(hook.answers_a_review());
    }
    let review = crate::golden::reviews_dir().join("command.json");
    let data = format!("@{}", review.display());
    let (status, _) = hook.answer(hook.curl_with_ca(
        &hook.certs.join("ca.crt"),
        "/mutate",
        &["--http1.1", "--data-binary", &data],
    ));
    assert_eq!(status, 200);
    // ... while the slow one is still waiting for its body.
    drop(slow.stdin.take());
    line.clear();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "pending");
    assert!(slow.wait().expect("wait").success());
    hook.assert_alive();
}

#[test]
fn the_certificate_is_read_again_when_its_files_change() {
    let hook = Webhook::start();
    // The caBundle printed is the CA, base64-encoded as the API wants it.
    let bundle =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &hook.ca_bundle)
            .expect("standard base64");
    assert_eq!(
        bundle,
        std::fs::read(hook.certs.join("ca.crt")).expect("ca.crt")
    );
    let old_ca = hook.dir.path().join("old-ca.crt");
    std::fs::copy(hook.certs.join("ca.crt"), &old_ca).expect("copy");
    let fresh = hook.dir.path().join("fresh");
    make_certs(&fresh, false);
    let review = crate::golden::reviews_dir().join("command.json");
    let data = format!("@{}", review.display());
    let status_with = |ca: &std::path::Path| {
        hook.curl_with_ca(ca, "/mutate", &["--data-binary", &data])
            .status
            .code()
    };
    assert_eq!(status_with(&old_ca), Some(0));
    // The new certificate alone does not match the old key: it is refused
    // and the old pair keeps serving.
    replace(&fresh.join("tls.crt"), &hook.certs.join("tls.crt"));
    wait_until("a failed reload counted", || {
        metric(
            hook.admin,
            "lameduck_webhook_certificate_reloads_total{result=\"error\"}",
        ) == Some(1.0)
    });
    assert_eq!(status_with(&old_ca), Some(0));
    // With its key, the new pair serves; the old CA no longer verifies it.
    replace(&fresh.join("tls.key"), &hook.certs.join("tls.key"));
    wait_until("a reload counted", || {
        metric(
            hook.admin,
            "lameduck_webhook_certificate_reloads_total{result=\"ok\"}",
        ) == Some(1.0)
    });
    assert_eq!(status_with(&fresh.join("ca.crt")), Some(0));
    assert_eq!(status_with(&old_ca), Some(60));
    hook.lameduck.wait_log("serving certificate reloaded");
    hook.assert_alive();
}

/// Puts `from`'s bytes at `to` as a Secret volume update does: a new file
/// renamed over the old one.
fn replace(from: &std::path::Path, to: &std::path::Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

#[test]
fn sigterm_closes_the_listener_and_exits_zero() {
    let hook = Webhook::start();
    assert!(hook.answers_a_review());
    hook.lameduck.signal(libc::SIGTERM);
    assert_eq!(hook.lameduck.exit_code(), 0, "{}", hook.lameduck.log());
    hook.lameduck.wait_log("webhook stopped");
    assert!(crate::support::net::refused(
        format!("127.0.0.1:{}", hook.port).parse().expect("addr")
    ));
}

#[test]
fn bad_flags_and_files_are_usage_or_runtime_errors() {
    let dir = tempdir();
    let missing = dir.path().join("missing.crt").display().to_string();
    let port = format!("127.0.0.1:{}", free_port());
    let out = dir.path().join("certs").display().to_string();
    let serve = |listen: &str| {
        let flags = [
            "--listen",
            listen,
            "--tls-cert",
            &missing,
            "--tls-key",
            &missing,
        ];
        flags.iter().map(|f| f.to_string()).collect::<Vec<_>>()
    };
    let certs = |service: &str| {
        let flags = [
            "certs",
            "--service",
            service,
            "--namespace",
            "ns",
            "--out",
            &out,
        ];
        flags.iter().map(|f| f.to_string()).collect::<Vec<_>>()
    };
    // In order: the second `certs` finds the files of the first.
    for (args, code, says) in [
        (serve(&port), 1, "cannot use the certificate"),
        (serve("nowhere"), 2, "invalid value 'nowhere'"),
        (certs("Bad_Name"), 2, "not a Kubernetes name"),
        (certs("a"), 0, "wrote"),
        (certs("a"), 2, "--force"),
    ] {
        let output = Command::new(crate::support::lameduck_bin())
            .arg("webhook")
            .args(&args)
            .output()
            .expect("lameduck");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn copy_binary_puts_a_runnable_lameduck_in_place() {
    let dir = tempdir();
    let dest = dir.path().join("lameduck");
    let status = Command::new(crate::support::lameduck_bin())
        .args(["webhook", "copy-binary"])
        .arg(&dest)
        .status()
        .expect("lameduck");
    assert!(status.success());
    let out = Command::new(&dest)
        .arg("--version")
        .output()
        .expect("run the copy");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("lameduck "));
    let mut nowhere = Command::new(crate::support::lameduck_bin());
    nowhere.args(["webhook", "copy-binary", "/nonexistent/dir/lameduck"]);
    assert_eq!(nowhere.status().expect("lameduck").code(), Some(1));
    let _ = std::io::stdout().flush();
}
