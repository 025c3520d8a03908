//! The drain proxy under faults: slow clients are bounded by the client
//! timeout, and running out of file descriptors pauses the listener instead
//! of spinning or crashing.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use support::net::{app, free_port, status};
use support::{lameduck_bin, python, tempdir, wait_until, Lameduck, EVENT_TIMEOUT};

#[test]
fn slow_clients_are_cut_off_at_the_client_timeout() {
    let app =
        support::net::ProxiedApp::start("http_upstream.py", &[], &["--client-timeout", "300ms"]);
    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(app.listen).expect("connect");
    slow.set_read_timeout(Some(EVENT_TIMEOUT)).expect("timeout");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .expect("write");
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest)
        .expect("the proxy closes the connection, the read does not time out");
    // Not a byte at all.
    let mut silent = TcpStream::connect(app.listen).expect("connect");
    silent
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("timeout");
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).expect("closed too");
    assert!(rest.is_empty());
    assert_eq!(status(app.listen, "/"), 200, "others are served meanwhile");
}

#[test]
fn running_out_of_file_descriptors_pauses_the_listener() {
    let dir = tempdir();
    let [listen, upstream, admin] =
        [free_port(), free_port(), free_port()].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=64:64")
        .arg(lameduck_bin())
        .args(["run", "--listen", &listen.to_string()])
        .args([
            "--upstream",
            &upstream.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .args(["--", python(), &app("http_upstream.py")])
        .args(["--port", &upstream.port().to_string()])
        .arg("--ready")
        .arg(dir.path().join("ready"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let lameduck = Lameduck::spawn(command, false);
    wait_until("/ready", || status(admin, "/ready") == 200);
    // More idle connections than descriptors: the proxy runs out.
    let hogs: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(listen).expect("the kernel completes the handshake"))
        .collect();
    lameduck.wait_log("cannot accept a connection, pausing the listener");
    drop(hogs);
    // Once they are gone the proxy accepts again.
    wait_until("a request to be served again", || {
        status(listen, "/") == 200
    });
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0);
}
