//! The mutation: what an opted-in pod becomes.
//!
//! Each serving container (it declares `ports`, or `lameduck.io/containers`
//! names it) is wrapped in `lameduck run`, whose drain delay holds the stop
//! back while endpoints are removed and whose deadline is the kubelet's; a
//! container without a `command` cannot be wrapped without reading its image,
//! so it gets a preStop `sleep` instead. An init container copies the static
//! binary from the lameduck image into an `emptyDir`. The grace period is
//! raised when it cannot hold the preStop, the drain delay and time for the
//! app ([`lameduck_core::grace::fit_grace`], as lint rule LD202).

mod container;
mod parts;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use lameduck_core::grace::{fit_grace, GraceFit};

use crate::annotations::{Options, STATUS, WARNINGS};
pub use container::sleep_seconds;
use container::Kind;
pub use parts::{ADMIN_PORT, BINARY, INIT_CONTAINER, VOLUME};

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: i64 = 30;

/// What became of a pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The pod as it will be created.
    Injected {
        /// The changed pod.
        pod: Box<Pod>,
        /// What the user should know (the review's warnings).
        warnings: Vec<String>,
        /// The containers wrapped or given a preStop.
        containers: Vec<String>,
    },
    /// The pod is injected already.
    Skipped(&'static str),
    /// The pod is left as it is, for the reason given.
    Unchanged(String),
}

/// Injects `pod` as `options` ask, with the init container from `image`.
pub fn inject(pod: &Pod, options: &Options, image: &str) -> Outcome {
    let Some(spec) = pod.spec.as_ref() else {
        return Outcome::Unchanged("the pod has no spec: left unchanged".into());
    };
    let injected_already = spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == INIT_CONTAINER)
        || spec.volumes.iter().flatten().any(|v| v.name == VOLUME);
    if injected_already {
        return Outcome::Skipped("injected already");
    }
    let mut warnings = Vec::new();
    let serves = |c: &Container| {
        c.ports.as_ref().is_some_and(|p| !p.is_empty()) || options.containers.contains(&c.name)
    };
    let mut serving: Vec<usize> = (0..spec.containers.len())
        .filter(|&i| serves(&spec.containers[i]))
        .collect();
    for name in &options.containers {
        if !spec.containers.iter().any(|c| &c.name == name) {
            warnings.push(format!(
                "lameduck.io/containers names {name:?}, which the pod does not have"
            ));
        }
    }
    let proxy = match options.proxy {
        None => None,
        Some(ports) => match proxy_target(spec, &serving, ports.listen) {
            Ok(index) => Some((index, ports)),
            Err(why) => {
                return Outcome::Unchanged(format!("lameduck.io/proxy: {why}: pod left unchanged"))
            }
        },
    };
    if let Some((index, _)) = proxy {
        if !serving.contains(&index) {
            serving.push(index);
            serving.sort_unstable();
        }
    }
    if serving.is_empty() {
        return Outcome::Unchanged(
            "no container declares ports or is named in lameduck.io/containers: pod left unchanged"
                .into(),
        );
    }
    if let Some(c) = serving.iter().map(|&i| &spec.containers[i]).find(|c| {
        c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path.trim_end_matches('/') == parts::MOUNT_PATH)
    }) {
        return Outcome::Unchanged(format!(
            "container {:?} mounts something at {} already: pod left unchanged",
            c.name,
            parts::MOUNT_PATH
        ));
    }

    let plans: Vec<container::Plan> = serving
        .iter()
        .map(|&i| {
            let proxy = proxy.filter(|(p, _)| *p == i).map(|(_, ports)| ports);
            container::plan(i, &spec.containers[i], options.drain_delay, proxy)
        })
        .collect();
    for plan in &plans {
        let name = &spec.containers[plan.index].name;
        match plan.kind {
            Kind::Wrap => {}
            Kind::RunsLameduck => warnings.push(format!(
                "container {name:?} runs lameduck run already: its command is left as it is"
            )),
            Kind::NoCommand => warnings.push(match plan.added_sleep {
                Some(s) => format!("container {name:?} has no command (its image's ENTRYPOINT runs), so it is not wrapped in lameduck run: set command to wrap it; it got a preStop sleep of {s}s"),
                None => format!("container {name:?} has no command (its image's ENTRYPOINT runs), so it is not wrapped in lameduck run: set command to wrap it"),
            }),
        }
        if proxy.is_some_and(|(p, _)| p == plan.index) && plan.proxy.is_none() {
            return Outcome::Unchanged(format!(
                "lameduck.io/proxy: container {name:?} has no command to run behind the proxy: pod left unchanged"
            ));
        }
    }

    let grace = spec
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE);
    let needed = plans
        .iter()
        .filter_map(
            |p| match fit_grace(grace as f64, p.pre_stop, p.drain_delay.as_secs_f64()) {
                GraceFit::Fits => None,
                GraceFit::Short { needed, .. } => Some(needed.ceil()),
            },
        )
        .reduce(f64::max);
    let final_grace = match needed {
        // f64 to i64 saturates: absurd holds were refused with their annotation.
        Some(needed) => {
            let raised = needed as i64;
            warnings.push(format!(
                "terminationGracePeriodSeconds raised from {grace} to {raised} (+{}s) to hold the preStop, the drain delay and 5s for the app",
                raised.saturating_sub(grace)
            ));
            raised
        }
        None => grace,
    };

    let mut pod = pod.clone();
    let Some(spec) = pod.spec.as_mut() else {
        return Outcome::Unchanged("the pod has no spec: left unchanged".into());
    };
    for plan in &plans {
        container::apply(plan, &mut spec.containers[plan.index], final_grace);
    }
    if needed.is_some() {
        spec.termination_grace_period_seconds = Some(final_grace);
    }
    if plans.iter().any(|p| p.kind == Kind::Wrap) {
        spec.volumes
            .get_or_insert_with(Vec::new)
            .push(parts::volume());
        // Appended, not put first: the patch then adds one element and
        // never rewrites the pod's own init containers.
        spec.init_containers
            .get_or_insert_with(Vec::new)
            .push(parts::init_container(image));
    }
    let containers: Vec<String> = plans
        .iter()
        .map(|p| spec.containers[p.index].name.clone())
        .collect();
    let annotations = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(
        STATUS.to_owned(),
        format!("injected: {}", containers.join(",")),
    );
    if !warnings.is_empty() {
        annotations.insert(WARNINGS.to_owned(), warnings.join("\n"));
    }
    Outcome::Injected {
        pod: Box::new(pod),
        warnings,
        containers,
    }
}

/// The container the drain proxy goes in front of: the one that declares
/// port `listen`, else the only serving one.
fn proxy_target(spec: &PodSpec, serving: &[usize], listen: u16) -> Result<usize, String> {
    let declares =
        |c: &Container, port: i32| c.ports.iter().flatten().any(|p| p.container_port == port);
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    if let Some(c) = all.clone().find(|c| declares(c, i32::from(ADMIN_PORT))) {
        return Err(format!(
            "container {:?} uses port {ADMIN_PORT}, the proxy's admin port",
            c.name
        ));
    }
    if let Some(index) = spec
        .containers
        .iter()
        .position(|c| declares(c, i32::from(listen)))
    {
        return Ok(index);
    }
    match serving {
        [only] => Ok(*only),
        _ => Err(format!(
            "no container declares port {listen}, and more than one serves"
        )),
    }
}

#[cfg(test)]
mod tests;
