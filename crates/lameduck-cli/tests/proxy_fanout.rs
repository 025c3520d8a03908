//! The HTTP/2 fan-out of issue 11: each HTTP/2 stream to an HTTP/1.1
//! upstream takes an upstream connection of its own, so a few client
//! connections with many streams could hold every file descriptor. The
//! proxy advertises a stream limit per connection, holds at most
//! `--max-upstream-connections` to the app, and answers what waits longer
//! than the connect timeout with 503, counted; the fan-out is driven by the
//! Python `h2` package, not by hyper.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::net::{app as app_path, metric, status, ProxiedApp};
use support::{python, wait_until};

/// Connections the app has accepted and not closed, as the kernel counts
/// them: established TCP sockets on its port.
fn established_at(addr: SocketAddr) -> usize {
    let port = format!(":{:04X}", addr.port());
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&port) && fields[3] == "01"
        })
        .count()
}

/// One run of `apps/h2_fanout.py`: a client connection with as many
/// streams as SETTINGS allow, each waiting for a body it never sends.
struct Fanout {
    child: Child,
    report: PathBuf,
}

impl Fanout {
    fn start(app: &ProxiedApp, name: &str) -> Self {
        let report = app.path(name);
        let child = Command::new(python())
            .arg(app_path("h2_fanout.py"))
            .args(["--addr", &app.listen.to_string(), "--streams", "150"])
            .arg("--report")
            .arg(&report)
            .stdin(Stdio::null())
            .spawn()
            .expect("the h2 fan-out client");
        Fanout { child, report }
    }

    /// Its latest tally.
    fn tally(&self) -> Value {
        std::fs::read_to_string(&self.report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    /// Sends the bodies and waits until every stream has its answer.
    fn finish(mut self) -> Value {
        std::fs::write(self.report.with_extension("json.go"), b"").expect("go");
        wait_until("the fan-out to finish", || self.tally()["done"] == true);
        assert!(self.child.wait().expect("fan-out exit").success());
        self.tally()
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http2_fan_out_is_held_to_the_stream_and_upstream_connection_limits() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &[],
        &[
            "--max-upstream-connections",
            "120",
            "--connect-timeout",
            "1s",
        ],
    );
    let upstream_connections = || metric(app.admin, "lameduck_upstream_connections");
    // One client connection gets the 100 streams SETTINGS allow: each holds
    // an app connection, and the 20 left serve other clients.
    let first = Fanout::start(&app, "first.json");
    wait_until("100 app connections held", || {
        upstream_connections() == Some(100.0)
    });
    let t = first.tally();
    assert_eq!(t["max_concurrent_streams"], 100, "{t}");
    assert_eq!(t["opened"], 100, "{t}");
    assert_eq!(status(app.listen, "/"), 200, "others are served");
    // A second one takes the other 20 (one of them the connection the
    // request above left in the pool); 80 wait 1s and get 503.
    let second = Fanout::start(&app, "second.json");
    wait_until("80 streams answered 503", || {
        second.tally()["statuses"]["503"] == 80
    });
    assert_eq!(second.tally()["waiting"], 20);
    assert_eq!(upstream_connections(), Some(120.0));
    assert_eq!(established_at(app.upstream), 120, "the app holds 120");
    // With every connection busy, others get an answer, not a hang: probes
    // and metrics at once, a request a 503 after the bounded wait.
    assert_eq!(status(app.admin, "/ready"), 200);
    assert_eq!(status(app.listen, "/"), 503);
    assert_eq!(
        metric(app.admin, "lameduck_requests_total{outcome=\"overloaded\"}"),
        Some(81.0)
    );
    app.lameduck
        .wait_log("every upstream connection stayed busy: 503");
    // The fan-outs send their bodies: their requests complete, connections
    // come free and others are served again.
    assert_eq!(first.finish()["statuses"]["200"], 100);
    assert_eq!(second.finish()["statuses"]["200"], 20);
    assert_eq!(status(app.listen, "/"), 200);
    assert!(upstream_connections().is_some_and(|n| n <= 120.0));
}
