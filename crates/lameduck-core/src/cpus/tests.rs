//! [`Cpus::under`] on fixture file systems shaped as a container's, a
//! hybrid host's and a plain host's.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// A fresh directory for one fixture, removed when dropped.
struct Fixture(PathBuf);

impl Fixture {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lameduck-cpus-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("fixture dir");
        Fixture(dir)
    }

    fn file(&self, path: &str, text: &str) -> &Self {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(path, text).expect("write");
        self
    }

    fn root(&self) -> &Path {
        &self.0
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const V2_MOUNT: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
const V1_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

#[test]
fn a_v2_container_limit_is_rounded_up() {
    // A container with a cgroup namespace: its cgroup is the mount's root.
    let fx = Fixture::new("v2");
    fx.file("proc/self/cgroup", "0::/\n")
        .file("proc/self/mountinfo", V2_MOUNT)
        .file("sys/fs/cgroup/cpu.max", "150000 100000\n");
    let cpus = Cpus::under(fx.root(), 8);
    assert_eq!(cpus.count, 2);
    let limit = cpus.limit.as_ref().expect("a limit");
    assert_eq!(
        (limit.version, limit.quota, limit.period),
        (CgroupVersion::V2, 150_000, 100_000)
    );
    assert!(
        cpus.to_string()
            .starts_with("cgroup v2 cpu.max 150000 100000 in "),
        "{cpus}"
    );
}

#[test]
fn a_v2_limit_is_never_more_than_the_cores_nor_less_than_one() {
    let fx = Fixture::new("v2-cap");
    fx.file("proc/self/cgroup", "0::/\n")
        .file("proc/self/mountinfo", V2_MOUNT)
        .file("sys/fs/cgroup/cpu.max", "400000 100000\n");
    let cpus = Cpus::under(fx.root(), 2);
    assert_eq!(cpus.count, 2);
    assert!(
        cpus.to_string().ends_with(", capped at the 2 cores"),
        "{cpus}"
    );

    fx.file("sys/fs/cgroup/cpu.max", "10000 100000\n");
    assert_eq!(Cpus::under(fx.root(), 2).count, 1);
}

#[test]
fn max_is_no_limit_and_the_cores_count() {
    let fx = Fixture::new("v2-max");
    fx.file("proc/self/cgroup", "0::/\n")
        .file("proc/self/mountinfo", V2_MOUNT)
        .file("sys/fs/cgroup/cpu.max", "max 100000\n");
    let cpus = Cpus::under(fx.root(), 3);
    assert_eq!((cpus.count, &cpus.limit), (3, &None));
    assert_eq!(cpus.to_string(), "3 cores, no cgroup CPU limit");
}

#[test]
fn the_own_cgroup_and_the_smallest_limit_of_its_ancestors_count() {
    // A host view: the process sits deep in the hierarchy; its pod's
    // cgroup is tighter than its own.
    let fx = Fixture::new("v2-nested");
    let own = "kubepods.slice/pod1.slice/cri-abc.scope";
    fx.file("proc/self/cgroup", &format!("0::/{own}\n"))
        .file("proc/self/mountinfo", V2_MOUNT)
        .file("sys/fs/cgroup/kubepods.slice/cpu.max", "max 100000\n")
        .file(
            "sys/fs/cgroup/kubepods.slice/pod1.slice/cpu.max",
            "300000 100000\n",
        )
        .file(&format!("sys/fs/cgroup/{own}/cpu.max"), "500000 100000\n");
    let cpus = Cpus::under(fx.root(), 16);
    assert_eq!(cpus.count, 3);
    let limit = cpus.limit.expect("a limit");
    assert!(
        limit.cgroup.ends_with("kubepods.slice/pod1.slice"),
        "{limit}"
    );
}

#[test]
fn a_mount_rooted_at_the_containers_cgroup_is_followed() {
    // Docker without a cgroup namespace: /proc/self/cgroup shows the host
    // path, the mount's root is that same path.
    let fx = Fixture::new("v2-rooted");
    fx.file("proc/self/cgroup", "0::/docker/abc\n")
        .file(
            "proc/self/mountinfo",
            "30 23 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
        )
        .file("sys/fs/cgroup/cpu.max", "200000 100000\n");
    assert_eq!(Cpus::under(fx.root(), 4).count, 2);
}

#[test]
fn v1_is_read_when_v2_has_no_cpu_controller() {
    // A hybrid host: cgroup2 is mounted but cpu is a v1 controller.
    let fx = Fixture::new("v1");
    fx.file(
        "proc/self/cgroup",
        "4:cpu,cpuacct:/kubepods/pod1/abc\n3:cpuset:/\n0::/\n",
    )
    .file("proc/self/mountinfo", V1_MOUNTS)
    .file(
        "sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc/cpu.cfs_quota_us",
        "250000\n",
    )
    .file(
        "sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc/cpu.cfs_period_us",
        "100000\n",
    )
    .file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    .file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    let cpus = Cpus::under(fx.root(), 8);
    assert_eq!(cpus.count, 3);
    assert!(
        cpus.to_string()
            .starts_with("cgroup v1 cpu.cfs_quota_us 250000 cpu.cfs_period_us 100000"),
        "{cpus}"
    );
}

#[test]
fn no_cgroup_files_mean_the_cores() {
    let fx = Fixture::new("none");
    assert_eq!(Cpus::under(fx.root(), 2).count, 2);
    // Nor do unreadable values: -1, garbage, a zero period.
    fx.file("proc/self/cgroup", "1:cpu:/\n0::/\n")
        .file(
            "proc/self/mountinfo",
            V1_MOUNTS.replace("cpu,cpuacct", "cpu").as_str(),
        )
        .file("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "lots\n")
        .file("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    assert_eq!(Cpus::under(fx.root(), 2).limit, None);
    fx.file("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000\n")
        .file("sys/fs/cgroup/cpu/cpu.cfs_period_us", "0\n");
    assert_eq!(Cpus::under(fx.root(), 2).limit, None);
    fx.file("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    assert_eq!(Cpus::under(fx.root(), 2).count, 1);
}

#[test]
fn a_cgroup_outside_the_mount_is_not_read() {
    let fx = Fixture::new("outside");
    fx.file("proc/self/cgroup", "0::/other\n")
        .file(
            "proc/self/mountinfo",
            "30 23 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
        )
        .file("sys/fs/cgroup/cpu.max", "100000 100000\n");
    assert_eq!(Cpus::under(fx.root(), 4).limit, None);
}

#[test]
fn mount_points_with_escaped_spaces_are_found() {
    assert_eq!(unescape(r"/sys/fs/my\040cgroup"), "/sys/fs/my cgroup");
    assert_eq!(unescape(r"/a\\b\0"), r"/a\\b\0");
}

#[test]
fn this_machine_gives_at_least_one() {
    let cpus = Cpus::detect();
    assert!(cpus.count >= 1 && cpus.count <= cpus.cores, "{cpus:?}");
}
