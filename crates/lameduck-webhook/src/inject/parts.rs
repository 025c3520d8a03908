//! What the webhook adds to a pod: the volume that carries the binary, the
//! init container that fills it, and the pieces added to a container.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The init container that copies the binary.
pub const INIT_CONTAINER: &str = "lameduck-init";
/// The `emptyDir` volume that carries the binary to the app's containers.
pub const VOLUME: &str = "lameduck-bin";
/// Where that volume is mounted.
pub const MOUNT_PATH: &str = "/lameduck";
/// The binary, as the app's containers see it.
pub const BINARY: &str = "/lameduck/lameduck";
/// The binary in the lameduck image.
pub const IMAGE_BINARY: &str = "/usr/local/bin/lameduck";
/// The drain proxy's admin port: `/ready`, `/live`, `/metrics`.
pub const ADMIN_PORT: u16 = 9901;
/// The admin port's name (at most 15 characters, as port names must be).
pub const ADMIN_PORT_NAME: &str = "lameduck-admin";
/// The user the init container runs as: the "nonroot" user of distroless
/// images, so namespaces under the `restricted` Pod Security Standard take
/// the pod.
const NONROOT_UID: i64 = 65532;

/// The `emptyDir` the binary is copied into.
pub fn volume() -> Volume {
    Volume {
        name: VOLUME.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("64Mi".to_owned())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The init container: the lameduck image copies its own static binary into
/// the volume, then exits. It meets the `restricted` Pod Security Standard
/// and asks for little, so quotas and LimitRanges take it.
pub fn init_container(image: &str) -> Container {
    let quantities = |pairs: &[(&str, &str)]| -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    };
    Container {
        name: INIT_CONTAINER.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec![
            IMAGE_BINARY.to_owned(),
            "webhook".to_owned(),
            "copy-binary".to_owned(),
            BINARY.to_owned(),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: VOLUME.to_owned(),
            mount_path: MOUNT_PATH.to_owned(),
            ..VolumeMount::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "16Mi")])),
            limits: Some(quantities(&[("memory", "64Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(NONROOT_UID),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The app container's read-only view of the volume.
pub fn mount() -> VolumeMount {
    VolumeMount {
        name: VOLUME.to_owned(),
        mount_path: MOUNT_PATH.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The drain proxy's admin port, declared so Prometheus and probes can name it.
pub fn admin_port() -> ContainerPort {
    ContainerPort {
        name: Some(ADMIN_PORT_NAME.to_owned()),
        container_port: i32::from(ADMIN_PORT),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

/// Readiness from the drain proxy: 503 once the drain began or while the
/// app does not accept connections.
pub fn readiness_probe() -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/ready".to_owned()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    }
}
