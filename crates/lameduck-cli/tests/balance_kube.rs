//! End-to-end tests of `lameduck balance --endpoints kubernetes:...`: the
//! real binary and its real kube client, over real HTTP, against a stand-in
//! API server of the test's own that serves EndpointSlice lists and watch
//! streams shaped as the Kubernetes API reference says.

#[path = "balance/support.rs"]
mod balance_support;
#[path = "balance/standin.rs"]
mod standin;
mod support;

use std::collections::BTreeMap;

use balance_support::{short_connections, Balance, Pod, Ports, NIL, READY, TERMINATING};
use standin::{slice, StandIn};
use support::net::{request, status};
use support::{tempdir, wait_until};

fn kube_env(kubeconfig: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![("KUBECONFIG", kubeconfig.display().to_string())]
}

fn only_pods(result: &serde_json::Value) -> BTreeMap<String, u64> {
    assert_eq!(result["failures"], serde_json::json!([]), "{result}");
    serde_json::from_value(result["by_pod"].clone()).expect("by_pod")
}

#[test]
fn the_kubernetes_source_follows_the_watch_through_breaks_and_a_410_gone() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.71.0.2", ports);
    let _b = Pod::start(dir.path(), "web-b", "127.71.0.3", ports);
    let _c = Pod::start(dir.path(), "web-c", "127.71.0.4", ports);
    let api = StandIn::start();
    // web-a without any condition (read as ready), web-b ready.
    api.set_quietly(slice(
        "web-abc",
        ports.tcp,
        &[("web-a", "127.71.0.2", NIL), ("web-b", "127.71.0.3", READY)],
    ));
    api.hold_lists(true);
    let kubeconfig = api.kubeconfig(dir.path());
    let env = kube_env(&kubeconfig);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let balance = Balance::start("kubernetes:shop/web:tcp", &[], &env, false);

    // Not ready until the first list arrived.
    wait_until("a list request", || {
        api.requests().iter().any(|r| r.starts_with("GET "))
    });
    let answer = request(balance.admin, "GET", "/ready").expect("/ready");
    assert_eq!(answer.status, 503);
    assert!(
        answer
            .body
            .contains("no endpoint set from kubernetes:shop/web:tcp yet"),
        "{}",
        answer.body
    );
    api.hold_lists(false);
    wait_until("/ready to be 200 after the first list", || {
        status(balance.admin, "/ready") == 200
    });
    balance
        .lameduck
        .wait_log("first list of EndpointSlices received");
    api.wait_watch(1);
    balance.wait_state("web-a", Some("ready"));
    balance.wait_state("web-b", Some("ready"));

    // MODIFIED: web-b terminating. No new connection goes to it.
    api.event(
        "MODIFIED",
        slice(
            "web-abc",
            ports.tcp,
            &[
                ("web-a", "127.71.0.2", NIL),
                ("web-b", "127.71.0.3", TERMINATING),
            ],
        ),
    );
    balance.wait_state("web-b", Some("terminating"));
    let result = short_connections(dir.path(), balance.listen, 10);
    assert_eq!(
        only_pods(&result),
        BTreeMap::from([("web-a".to_owned(), 10)])
    );

    // ADDED: a second slice of the same Service, with web-c and web-a again
    // (a slice being replaced): merged by address.
    api.event(
        "ADDED",
        slice(
            "web-def",
            ports.tcp,
            &[
                ("web-c", "127.71.0.4", READY),
                ("web-a", "127.71.0.2", READY),
            ],
        ),
    );
    balance.wait_state("web-c", Some("ready"));
    assert_eq!(
        balance.endpoints()["endpoints"].as_array().map(Vec::len),
        Some(3)
    );

    // DELETED: the second slice goes, web-c with it.
    api.event("DELETED", slice("web-def", ports.tcp, &[]));
    balance.wait_state("web-c", None);

    // The watch breaks: kube watches again from the last version, without
    // a new list.
    let lists = api.lists();
    api.break_watch();
    api.wait_watch(2);
    assert_eq!(
        api.lists(),
        lists,
        "a broken watch is resumed, not re-listed"
    );
    api.event(
        "MODIFIED",
        slice("web-abc", ports.tcp, &[("web-a", "127.71.0.2", NIL)]),
    );
    balance.wait_state("web-b", None);

    // 410 Gone: the version is too old; kube lists again and finds what the
    // watch missed (web-c back, web-a terminating).
    api.set_quietly(slice(
        "web-abc",
        ports.tcp,
        &[
            ("web-a", "127.71.0.2", TERMINATING),
            ("web-c", "127.71.0.4", READY),
        ],
    ));
    api.gone_next_watch();
    api.break_watch();
    wait_until("a re-list after 410 Gone", || api.lists() > lists);
    balance.wait_state("web-c", Some("ready"));
    balance.wait_state("web-a", Some("terminating"));
    balance
        .lameduck
        .wait_log("EndpointSlice watch expired (410 Gone): listing again");
    let result = short_connections(dir.path(), balance.listen, 6);
    assert_eq!(
        only_pods(&result),
        BTreeMap::from([("web-c".to_owned(), 6)])
    );
    assert_eq!(status(balance.admin, "/ready"), 200);
    // SIGHUP, a reload for a file source, leaves this one running.
    balance.lameduck.signal(libc::SIGHUP);
    balance
        .lameduck
        .wait_log("SIGHUP: the Kubernetes source follows its watch");
    assert_eq!(status(balance.admin, "/ready"), 200);
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("watch=true") && r.contains("resourceVersion=")),
        "{requests:?}"
    );
}

#[test]
fn an_unreachable_api_server_or_a_missing_port_keeps_ready_at_503_and_says_why() {
    let dir = tempdir();
    // Nobody listens there.
    let closed = support::net::free_port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{closed}\"}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"),
    )
    .expect("kubeconfig");
    let path = kubeconfig.display().to_string();
    let balance = Balance::start("kubernetes:shop/web", &[], &[("KUBECONFIG", &path)], false);
    balance.lameduck.wait_log(
        "EndpointSlice watch failed, retrying with backoff: not ready until a list arrives",
    );
    let answer = request(balance.admin, "GET", "/ready").expect("/ready");
    assert_eq!(answer.status, 503);
    assert!(
        answer.body.contains("last error: EndpointSlice watch"),
        "{}",
        answer.body
    );
    assert!(balance.metric("lameduck_balance_source_errors_total") >= 1.0);

    // The API answers, but no slice has the port asked for.
    let api = StandIn::start();
    api.set_quietly(slice("web-abc", 8080, &[("web-a", "127.72.0.2", READY)]));
    let kubeconfig = api.kubeconfig(dir.path());
    let path = kubeconfig.display().to_string();
    let balance = Balance::start(
        "kubernetes:shop/web:grpc",
        &[],
        &[("KUBECONFIG", &path)],
        false,
    );
    balance
        .lameduck
        .wait_log("no EndpointSlice has a TCP port named \"grpc\"");
    let answer = request(balance.admin, "GET", "/ready").expect("/ready");
    assert_eq!(answer.status, 503);
    assert!(
        answer
            .body
            .contains("no EndpointSlice has a TCP port named \"grpc\" (ports: tcp)"),
        "{}",
        answer.body
    );
}
