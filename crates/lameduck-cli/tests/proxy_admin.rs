//! The drain proxy's admin port and flags: metrics, `POST /drain`, the
//! auto delay that waits for arrivals to stop, and clear usage errors.

mod support;

use support::net::{free_port, metric, refused, request, status, ProxiedApp};
use support::run_to_end;

#[test]
fn the_admin_port_serves_metrics_and_post_drain_stops_the_app() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &["--exit-code", "4"],
        &["--drain-delay", "200ms"],
    );
    assert_eq!(status(app.listen, "/"), 200);
    assert_eq!(status(app.listen, "/missing-but-proxied"), 404);
    let phase = |p: &str| metric(app.admin, &format!("lameduck_phase{{phase=\"{p}\"}}"));
    assert_eq!(phase("serving"), Some(1.0));
    assert_eq!(phase("draining"), Some(0.0));
    assert_eq!(
        metric(app.admin, "lameduck_requests_total{outcome=\"success\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            app.admin,
            "lameduck_requests_total{outcome=\"client_error\"}"
        ),
        Some(1.0)
    );
    let body = request(app.admin, "GET", "/metrics").expect("metrics").body;
    for name in [
        "lameduck_open_connections",
        "lameduck_in_flight_requests",
        "lameduck_connections_closed_by_force",
        "lameduck_drain_duration_seconds",
    ] {
        assert!(body.contains(name), "{name} missing from {body}");
    }
    assert_eq!(status(app.admin, "/live"), 200);
    assert_eq!(status(app.admin, "/nope"), 404);
    assert_eq!(status(app.admin, "/drain"), 405, "GET /drain is refused");
    let drained = request(app.admin, "POST", "/drain").expect("POST /drain");
    assert_eq!(drained.status, 202, "{drained:?}");
    assert_eq!(
        app.lameduck.exit_code(),
        4,
        "the app was stopped and its code kept"
    );
    let log = app.lameduck.log();
    assert!(log.contains("drain asked for on the admin port"), "{log}");
    assert!(log.contains("stop requested on the admin port"), "{log}");
}

#[test]
fn the_auto_delay_keeps_accepting_until_arrivals_stop() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &[],
        &["--drain-delay", "auto", "--quiet-period", "300ms"],
    );
    app.lameduck.signal(libc::SIGTERM);
    app.lameduck.wait_log("draining: readiness fails");
    // A balancer that still sends: a new connection every 100 ms for 1.5s.
    // With a fixed 300ms delay the listener would have closed long before.
    for i in 0..15 {
        assert_eq!(
            status(app.listen, "/"),
            200,
            "connection {i} was not served"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    app.lameduck.wait_log("listener closed");
    assert!(refused(app.listen));
    assert_eq!(app.lameduck.exit_code(), 0);
    let log = app.lameduck.log();
    assert!(log.contains("delay=auto (quiet 300ms"), "{log}");
}

#[test]
fn proxy_flags_are_checked_with_clear_errors() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["proxy", "--upstream", "127.0.0.1:1"],
            "--listen is required",
        ),
        (
            &["proxy", "--listen", "127.0.0.1:0"],
            "--upstream is required",
        ),
        (
            &["proxy", "--listen", "127.0.0.1:0", "--upstream", "nohost"],
            "give host:port",
        ),
        (
            &["run", "--upstream", "127.0.0.1:1", "--", "true"],
            "need --listen",
        ),
        (
            &["run", "--drain-delay", "auto", "--", "true"],
            "--drain-delay auto needs --listen",
        ),
        (
            &["proxy", "--mode", "udp", "--listen", "127.0.0.1:0"],
            "unknown mode",
        ),
        (
            &["proxy", "--max-upstream-connections", "0"],
            "--max-upstream-connections",
        ),
        (
            &["proxy", "--max-concurrent-streams", "99999999999"],
            "--max-concurrent-streams",
        ),
    ];
    for (args, message) in cases {
        let (code, log) = run_to_end(args);
        assert_eq!(code, 2, "{args:?}: {log}");
        assert!(log.contains(message), "{args:?}: {log}");
    }
}

#[test]
fn a_listen_address_in_use_fails_before_the_app_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let upstream = format!("127.0.0.1:{}", free_port());
    let (code, log) = run_to_end(&[
        "run",
        "--listen",
        &addr,
        "--upstream",
        &upstream,
        "--",
        "sh",
        "-c",
        "echo started >&2",
    ]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("cannot listen on {addr} (--listen)")),
        "{log}"
    );
    assert!(!log.contains("started"), "the app must not start: {log}");
}

/// In a network namespace of its own with a second address on `lo`, so a
/// client can come from an address that is not loopback.
#[test]
fn post_drain_is_refused_from_other_than_loopback() {
    let admin = free_port();
    let script = format!(
        r#"set -e
ip link set lo up
ip addr add 10.77.0.1/32 dev lo
"$0" proxy --listen 127.0.0.1:{listen} --upstream 127.0.0.1:{upstream} --admin 0.0.0.0:{admin} 2>/dev/null &
until curl -s -o /dev/null http://127.0.0.1:{admin}/live; do :; done
remote=$(curl -s -o /dev/null -w '%{{http_code}}' -X POST --interface 10.77.0.1 http://10.77.0.1:{admin}/drain)
ready=$(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{admin}/live)
local=$(curl -s -o /dev/null -w '%{{http_code}}' -X POST http://127.0.0.1:{admin}/drain)
wait
echo "remote=$remote live=$ready local=$local"
"#,
        listen = free_port(),
        upstream = free_port(),
    );
    let out = std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", &script, support::lameduck_bin()])
        .output()
        .expect("unshare --net (util-linux) and ip (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Refused from 10.77.0.1; the proxy kept serving; taken from loopback,
    // after which the drain ran and the proxy exited (`wait` returned).
    assert_eq!(text.trim(), "remote=403 live=200 local=202");
}

#[test]
fn an_admin_port_on_ipv6_takes_post_drain_from_ipv4_loopback() {
    // A v6 socket, as `--admin [::]:9901` makes: 127.0.0.1 arrives as
    // ::ffff:127.0.0.1. Bound to that address only, to stay on loopback.
    let admin_port = free_port();
    let admin = format!("[::ffff:127.0.0.1]:{admin_port}");
    let listen = format!("127.0.0.1:{}", free_port());
    let upstream = format!("127.0.0.1:{}", free_port());
    let lameduck = support::Lameduck::start(&[
        "proxy",
        "--listen",
        &listen,
        "--upstream",
        &upstream,
        "--admin",
        &admin,
    ]);
    let admin: std::net::SocketAddr = ([127, 0, 0, 1], admin_port).into();
    support::wait_until("the admin port", || status(admin, "/live") == 200);
    let drained = request(admin, "POST", "/drain").expect("POST /drain");
    assert_eq!(drained.status, 202, "{drained:?}");
    assert_eq!(lameduck.exit_code(), 0);
    // Read after the exit: the log reader may still be a line behind.
    lameduck.wait_log("drain asked for on the admin port");
}

#[test]
fn head_metrics_answers_like_get_without_a_body() {
    let app = ProxiedApp::start("http_upstream.py", &[], &[]);
    let get = request(app.admin, "GET", "/metrics").expect("GET");
    let head = request(app.admin, "HEAD", "/metrics").expect("HEAD");
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.body, "", "no body to HEAD");
    let content_type = |a: &support::net::Answer| {
        a.head
            .lines()
            .find(|l| l.to_lowercase().starts_with("content-type:"))
            .map(str::to_owned)
    };
    assert_eq!(content_type(&head), content_type(&get));
    assert!(
        head.head.to_lowercase().contains("content-length:"),
        "{head:?}"
    );
}
