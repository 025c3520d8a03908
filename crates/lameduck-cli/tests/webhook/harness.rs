//! A running `lameduck webhook` with certificates of its own making, and
//! curl as the client, resolving the Service's name to loopback so the
//! certificate is checked as the API server checks it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::net::free_port;
use crate::support::{lameduck_bin, tempdir, Lameduck};

/// The name the serving certificate is for, as the API server calls it.
pub const HOST: &str = "lameduck-webhook.lameduck.svc";

/// A webhook serving on loopback.
pub struct Webhook {
    /// The process.
    pub lameduck: Lameduck,
    /// The HTTPS port.
    pub port: u16,
    /// The admin address.
    pub admin: SocketAddr,
    /// The certificate files (`ca.crt`, `tls.crt`, `tls.key`).
    pub certs: PathBuf,
    /// The caBundle `lameduck webhook certs` printed.
    pub ca_bundle: String,
    /// Holds the files.
    pub dir: tempfile::TempDir,
}

/// Runs `lameduck webhook certs` into `out` and returns what it printed.
pub fn make_certs(out: &Path, force: bool) -> String {
    let mut cmd = Command::new(lameduck_bin());
    cmd.args(["webhook", "certs", "--service", "lameduck-webhook"])
        .args(["--namespace", "lameduck", "--out"])
        .arg(out);
    if force {
        cmd.arg("--force");
    }
    let output = cmd.output().expect("lameduck webhook certs");
    assert!(
        output.status.success(),
        "certs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Webhook {
    /// Starts a webhook and waits until it serves.
    pub fn start() -> Self {
        let dir = tempdir();
        let certs = dir.path().join("certs");
        let ca_bundle = make_certs(&certs, false);
        let port = free_port();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let listen = format!("127.0.0.1:{port}");
        let cert = certs.join("tls.crt").display().to_string();
        let key = certs.join("tls.key").display().to_string();
        let admin_flag = admin.to_string();
        let lameduck = Lameduck::start(&[
            "webhook",
            "--listen",
            &listen,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--admin",
            &admin_flag,
        ]);
        lameduck.wait_log("webhook serving");
        Webhook {
            lameduck,
            port,
            admin,
            certs,
            ca_bundle,
            dir,
        }
    }

    /// curl against `https://HOST:PORT{path}` trusting `ca`, with `args`
    /// added; stdout ends with a line holding the HTTP status.
    pub fn curl_with_ca(&self, ca: &Path, path: &str, args: &[&str]) -> Output {
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(ca)
            .arg("--resolve")
            .arg(format!("{HOST}:{}:127.0.0.1", self.port))
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("https://{HOST}:{}{path}", self.port))
            .output()
            .expect("curl")
    }

    /// POSTs the file `body` to `path`; returns the status and the body.
    pub fn post_file(&self, path: &str, body: &Path) -> (u16, String) {
        let data = format!("@{}", body.display());
        self.answer(self.curl_with_ca(
            &self.certs.join("ca.crt"),
            path,
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &data,
            ],
        ))
    }

    /// POSTs `body` to `path`.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        let dir = tempdir();
        let file = dir.path().join("body.json");
        std::fs::write(&file, body).expect("write body");
        self.post_file(path, &file)
    }

    /// Splits curl's output into status and body; fails on a curl error.
    pub fn answer(&self, out: Output) -> (u16, String) {
        assert!(
            out.status.success(),
            "curl failed: {}\nwebhook log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.lameduck.log()
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// Whether a well-formed review is still answered, with a 200.
    pub fn answers_a_review(&self) -> bool {
        let review =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook/reviews/command.json");
        self.post_file("/mutate", &review).0 == 200
    }

    /// Fails the test if the webhook panicked or exited.
    pub fn assert_alive(&self) {
        let log = self.lameduck.log();
        assert!(!log.contains("panicked"), "the webhook panicked:\n{log}");
        assert_eq!(
            crate::support::net::status(self.admin, "/live"),
            200,
            "the webhook is gone:\n{log}"
        );
    }
}
