//! The injection's edge cases, on pods built here.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Lifecycle, LifecycleHandler, Pod, PodSpec, SleepAction,
    VolumeMount,
};

use super::{inject, Outcome};
use crate::annotations::{Options, ProxyPorts};

const IMAGE: &str = "ghcr.io/lameduck-dev/lameduck:test";

fn serving(name: &str, command: Option<&[&str]>, port: i32) -> Container {
    Container {
        name: name.into(),
        command: command.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
        ports: Some(vec![ContainerPort {
            container_port: port,
            ..ContainerPort::default()
        }]),
        ..Container::default()
    }
}

fn pod(containers: Vec<Container>, grace: Option<i64>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            containers,
            termination_grace_period_seconds: grace,
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn options() -> Options {
    Options {
        containers: Vec::new(),
        drain_delay: Duration::from_secs(5),
        proxy: None,
    }
}

fn injected(outcome: Outcome) -> (Pod, Vec<String>) {
    match outcome {
        Outcome::Injected { pod, warnings, .. } => (*pod, warnings),
        other => panic!("not injected: {other:?}"),
    }
}

fn env(c: &Container, name: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)?
        .value
        .clone()
}

#[test]
fn a_wrapped_container_keeps_its_args_and_gets_the_kubelets_deadline() {
    let mut c = serving("web", Some(&["/web"]), 8080);
    c.args = Some(vec!["--port".into(), "8080".into()]);
    let (pod, warnings) = injected(inject(&pod(vec![c], Some(45)), &options(), IMAGE));
    assert!(warnings.is_empty(), "{warnings:?}");
    let spec = pod.spec.expect("spec");
    let web = &spec.containers[0];
    assert_eq!(
        web.command.as_deref().expect("command"),
        [
            "/lameduck/lameduck",
            "run",
            "--drain-delay",
            "5s",
            "--",
            "/web"
        ]
    );
    assert_eq!(web.args.as_deref().expect("args"), ["--port", "8080"]);
    assert_eq!(env(web, "LAMEDUCK_GRACE_PERIOD").as_deref(), Some("45s"));
    assert_eq!(spec.termination_grace_period_seconds, Some(45));
    let init = spec.init_containers.expect("init");
    assert_eq!(init[0].image.as_deref(), Some(IMAGE));
}

#[test]
fn a_lameduck_variable_of_the_pod_is_replaced_in_place() {
    let mut c = serving("web", Some(&["/web"]), 8080);
    c.env = Some(vec![
        EnvVar {
            name: "LAMEDUCK_GRACE_PERIOD".into(),
            value: Some("90s".into()),
            ..EnvVar::default()
        },
        EnvVar {
            name: "OTHER".into(),
            value: Some("1".into()),
            ..EnvVar::default()
        },
    ]);
    let (pod, _) = injected(inject(&pod(vec![c], None), &options(), IMAGE));
    let web = &pod.spec.expect("spec").containers[0];
    assert_eq!(web.env.as_ref().map(Vec::len), Some(2));
    assert_eq!(env(web, "LAMEDUCK_GRACE_PERIOD").as_deref(), Some("30s"));
}

#[test]
fn a_kept_prestop_sleep_replaces_the_drain_delay_and_shortens_the_deadline() {
    let mut c = serving("web", Some(&["/web"]), 8080);
    c.lifecycle = Some(Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction { seconds: 8 }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    });
    let (pod, warnings) = injected(inject(&pod(vec![c], Some(10)), &options(), IMAGE));
    let spec = pod.spec.expect("spec");
    // 8s of preStop and 5s for the app: raised from 10 to 13.
    assert_eq!(spec.termination_grace_period_seconds, Some(13));
    assert!(warnings[0].contains("from 10 to 13"), "{warnings:?}");
    let web = &spec.containers[0];
    assert_eq!(web.command.as_ref().expect("command")[3], "0s");
    assert_eq!(env(web, "LAMEDUCK_GRACE_PERIOD").as_deref(), Some("5s"));
}

#[test]
fn no_drain_delay_adds_no_prestop() {
    let c = serving("nginx", None, 80);
    let opts = Options {
        drain_delay: Duration::ZERO,
        ..options()
    };
    let (pod, warnings) = injected(inject(&pod(vec![c], None), &opts, IMAGE));
    let spec = pod.spec.expect("spec");
    assert!(spec.containers[0].lifecycle.is_none());
    assert!(spec.init_containers.is_none(), "nothing to copy for");
    assert!(warnings[0].contains("no command"), "{warnings:?}");
}

#[test]
fn a_fraction_of_a_second_rounds_the_prestop_sleep_up() {
    let c = serving("nginx", None, 80);
    let opts = Options {
        drain_delay: Duration::from_millis(1500),
        ..options()
    };
    let (pod, _) = injected(inject(&pod(vec![c], None), &opts, IMAGE));
    let hook = pod.spec.expect("spec").containers[0]
        .lifecycle
        .clone()
        .and_then(|l| l.pre_stop)
        .and_then(|p| p.sleep)
        .expect("a sleep action");
    assert_eq!(hook.seconds, 2);
}

#[test]
fn a_container_running_lameduck_is_left_alone_with_its_own_delay_counted() {
    let c = serving(
        "web",
        Some(&["lameduck", "run", "--drain-delay=20s", "--", "/web"]),
        8080,
    );
    let (pod, warnings) = injected(inject(&pod(vec![c.clone()], None), &options(), IMAGE));
    let spec = pod.spec.expect("spec");
    assert_eq!(spec.containers[0].command, c.command);
    // 20s and 5s fit in the default 30s: nothing set.
    assert_eq!(spec.termination_grace_period_seconds, None);
    assert!(warnings[0].contains("already"), "{warnings:?}");
    let short = pod_with_grace(c, 10);
    let (pod, _) = injected(inject(&short, &options(), IMAGE));
    assert_eq!(
        pod.spec.expect("spec").termination_grace_period_seconds,
        Some(25)
    );
}

fn pod_with_grace(c: Container, grace: i64) -> Pod {
    pod(vec![c], Some(grace))
}

#[test]
fn pods_it_cannot_handle_are_left_unchanged_with_a_reason() {
    let mut mounted = serving("web", Some(&["/web"]), 8080);
    mounted.volume_mounts = Some(vec![VolumeMount {
        name: "x".into(),
        mount_path: "/lameduck/".into(),
        ..VolumeMount::default()
    }]);
    let proxy = |listen| Options {
        proxy: Some(ProxyPorts { listen, app: 8081 }),
        ..options()
    };
    let two = vec![
        serving("a", Some(&["/a"]), 8080),
        serving("b", Some(&["/b"]), 9090),
    ];
    for (name, pod, opts, says) in [
        ("no spec", Pod::default(), options(), "no spec"),
        (
            "no ports",
            pod(vec![Container::default()], None),
            options(),
            "no container declares ports",
        ),
        (
            "mount taken",
            pod(vec![mounted], None),
            options(),
            "mounts something at /lameduck",
        ),
        (
            "proxy port unknown",
            pod(two.clone(), None),
            proxy(7070),
            "no container declares port 7070",
        ),
        (
            "admin port taken",
            pod(vec![serving("a", Some(&["/a"]), 9901)], None),
            proxy(9901),
            "admin port",
        ),
        (
            "proxy without command",
            pod(vec![serving("a", None, 8080)], None),
            proxy(8080),
            "no command",
        ),
    ] {
        match inject(&pod, &opts, IMAGE) {
            Outcome::Unchanged(why) => assert!(why.contains(says), "{name}: {why}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn the_proxy_goes_in_front_of_the_container_with_its_port() {
    let pod = pod(
        vec![
            serving("a", Some(&["/a"]), 9090),
            serving("b", Some(&["/b", "--port", "8081"]), 8080),
        ],
        None,
    );
    let opts = Options {
        proxy: Some(ProxyPorts {
            listen: 8080,
            app: 8081,
        }),
        ..options()
    };
    let (pod, _) = injected(inject(&pod, &opts, IMAGE));
    let spec = pod.spec.expect("spec");
    let b = &spec.containers[1];
    let cmd = b.command.as_ref().expect("command").join(" ");
    assert!(
        cmd.contains("--listen 0.0.0.0:8080 --upstream 127.0.0.1:8081 --admin 0.0.0.0:9901"),
        "{cmd}"
    );
    assert!(b.readiness_probe.is_some());
    assert_eq!(b.ports.as_ref().map(Vec::len), Some(2));
    let a = spec.containers[0]
        .command
        .as_ref()
        .expect("command")
        .join(" ");
    assert!(!a.contains("--listen"), "{a}");
}
