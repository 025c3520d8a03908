//! How many CPUs this process may keep busy: the container's CPU limit, as
//! Go's `automaxprocs` (uber-go/automaxprocs) and Go 1.25's runtime read it,
//! so that `--workers auto` starts as many threads as the pod was given, not
//! as many as the node has.
//!
//! A Kubernetes CPU limit becomes a CFS quota on the container's cgroup:
//! `cpu.max` (`"200000 100000"`: 200 ms of CPU time per 100 ms) under
//! cgroup v2, `cpu.cfs_quota_us` and `cpu.cfs_period_us` under cgroup v1.
//! More threads than that only get throttled together. The cgroup is the
//! process's own, from `/proc/self/cgroup`, found under its hierarchy's mount
//! point from `/proc/self/mountinfo`; a limit on an ancestor (up to the mount
//! point, which is as far as a container sees) applies too, so the smallest
//! one is taken.
//!
//! The count is `ceil(quota / period)` (a limit of 1.5 CPUs can keep two
//! threads half busy; rounding down would leave half a CPU unused), at least
//! 1, and never more than the cores the process may run on (its scheduler
//! affinity): a limit above them gives no more parallelism.
//!
//! This is the one place in lameduck that reads these files; everything
//! else asks [`Cpus::detect`].

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The variable that points [`Cpus::detect`] at a fake file system root
/// (holding `proc/self/cgroup`, `proc/self/mountinfo` and the cgroup files
/// under the mount points those name). **For tests only**: it lets a test
/// give a cgroup limit on a machine whose cgroups it cannot change. Never
/// set it in production.
pub const TEST_CGROUP_ROOT_ENV: &str = "LAMEDUCK_TEST_CGROUP_ROOT";

/// The CPUs this process may keep busy, and why that many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpus {
    /// How many: at least 1.
    pub count: usize,
    /// The cores the process may run on (its scheduler affinity).
    pub cores: usize,
    /// The cgroup limit found, if any.
    pub limit: Option<CpuLimit>,
}

/// A CFS bandwidth limit read from a cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuLimit {
    /// Which cgroup version it came from.
    pub version: CgroupVersion,
    /// CPU time allowed per period, in microseconds.
    pub quota: u64,
    /// The period, in microseconds.
    pub period: u64,
    /// The directory of the cgroup that set it.
    pub cgroup: PathBuf,
}

/// The two cgroup file layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The unified hierarchy: `cpu.max`.
    V2,
    /// The per-controller hierarchies: `cpu.cfs_quota_us`, `cpu.cfs_period_us`.
    V1,
}

// === impl Cpus ===

impl Cpus {
    /// Reads the limit of this process's cgroup and its cores (see the
    /// module's documentation), from the real `/proc` and `/sys`, or under
    /// [`TEST_CGROUP_ROOT_ENV`] when a test set it.
    pub fn detect() -> Self {
        let root = std::env::var_os(TEST_CGROUP_ROOT_ENV)
            .filter(|r| !r.is_empty())
            .map_or_else(|| PathBuf::from("/"), PathBuf::from);
        Self::under(&root, cores())
    }

    /// [`Cpus::detect`] for a file system rooted at `root`, with `cores`
    /// cores: what the tests call with fixture files.
    pub fn under(root: &Path, cores: usize) -> Self {
        let cores = cores.max(1);
        let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_default();
        let own = read("proc/self/cgroup");
        let mounts = read("proc/self/mountinfo");
        let limit = limit(root, CgroupVersion::V2, &own, &mounts)
            .or_else(|| limit(root, CgroupVersion::V1, &own, &mounts));
        let count = limit.as_ref().map_or(cores, |l| l.cpus().min(cores));
        Cpus {
            count,
            cores,
            limit,
        }
    }
}

impl fmt::Display for Cpus {
    /// Where the count came from, for a start-up log line:
    /// `cgroup v2 cpu.max 200000 100000`, or `2 cores, no cgroup CPU limit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.limit {
            None => write!(f, "{} cores, no cgroup CPU limit", self.cores),
            Some(limit) => {
                write!(f, "{limit}")?;
                if limit.cpus() > self.cores {
                    write!(f, ", capped at the {} cores", self.cores)?;
                }
                Ok(())
            }
        }
    }
}

// === impl CpuLimit ===

impl CpuLimit {
    /// `ceil(quota / period)`, at least 1.
    pub fn cpus(&self) -> usize {
        let cpus = self.quota.div_ceil(self.period.max(1)).max(1);
        usize::try_from(cpus).unwrap_or(usize::MAX)
    }

    /// Whether `self` allows less CPU time than `other`.
    fn is_below(&self, other: &CpuLimit) -> bool {
        u128::from(self.quota) * u128::from(other.period)
            < u128::from(other.quota) * u128::from(self.period)
    }
}

impl fmt::Display for CpuLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            CgroupVersion::V2 => write!(f, "cgroup v2 cpu.max {} {}", self.quota, self.period),
            CgroupVersion::V1 => write!(
                f,
                "cgroup v1 cpu.cfs_quota_us {} cpu.cfs_period_us {}",
                self.quota, self.period
            ),
        }?;
        write!(f, " in {}", self.cgroup.display())
    }
}

/// The smallest limit of `version` on this process's cgroup and its
/// ancestors up to the mount point.
fn limit(root: &Path, version: CgroupVersion, own: &str, mounts: &str) -> Option<CpuLimit> {
    let path = own_cgroup(own, version)?;
    let (mount_root, mount_point) = mount(mounts, version)?;
    // The cgroup as seen from the mount (a container's mount root is its
    // own cgroup); a cgroup outside the mount cannot be read.
    let relative = match mount_root {
        "/" => path.trim_start_matches('/'),
        root => path
            .strip_prefix(root)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))?
            .trim_start_matches('/'),
    };
    let top = root.join(mount_point.trim_start_matches('/'));
    let mut dir = top.join(relative);
    let mut lowest: Option<CpuLimit> = None;
    loop {
        if let Some(found) = read_limit(&dir, version) {
            if lowest.as_ref().is_none_or(|l| found.is_below(l)) {
                lowest = Some(found);
            }
        }
        if dir == top || !dir.pop() || !dir.starts_with(&top) {
            return lowest;
        }
    }
}

/// The limit set in the cgroup directory `dir`, if any.
fn read_limit(dir: &Path, version: CgroupVersion) -> Option<CpuLimit> {
    let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
    let (quota, period) = match version {
        // "max 100000" is no limit; "200000 100000" is 2 CPUs.
        CgroupVersion::V2 => {
            let text = read("cpu.max")?;
            let mut fields = text.split_whitespace();
            let quota = fields.next()?.parse::<u64>().ok()?;
            let period = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
            (quota, period)
        }
        // A quota of -1 is no limit.
        CgroupVersion::V1 => {
            let quota = read("cpu.cfs_quota_us")?.trim().parse::<i64>().ok()?;
            let period = read("cpu.cfs_period_us")?.trim().parse::<u64>().ok()?;
            (u64::try_from(quota).ok()?, period)
        }
    };
    (quota > 0 && period > 0).then(|| CpuLimit {
        version,
        quota,
        period,
        cgroup: dir.to_path_buf(),
    })
}

/// This process's cgroup path of `version`'s CPU hierarchy, from
/// `/proc/self/cgroup` (`0::/path` for v2, `N:cpu,cpuacct:/path` for v1).
fn own_cgroup(text: &str, version: CgroupVersion) -> Option<&str> {
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let wanted = match version {
            CgroupVersion::V2 => id == "0" && controllers.is_empty(),
            CgroupVersion::V1 => controllers.split(',').any(|c| c == "cpu"),
        };
        wanted.then_some(path)
    })
}

/// The root and mount point of `version`'s CPU hierarchy, from
/// `/proc/self/mountinfo` (proc(5): `ID PARENT MAJ:MIN ROOT POINT OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`).
fn mount(text: &str, version: CgroupVersion) -> Option<(&str, String)> {
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut left = left.split(' ');
        let (root, point) = (left.nth(3)?, left.next()?);
        let mut right = right.split(' ');
        let (fstype, super_options) = (right.next()?, right.nth(1).unwrap_or(""));
        let wanted = match version {
            CgroupVersion::V2 => fstype == "cgroup2",
            CgroupVersion::V1 => fstype == "cgroup" && super_options.split(',').any(|o| o == "cpu"),
        };
        wanted.then(|| (root, unescape(point)))
    })
}

/// A mountinfo path with its octal escapes (`\040` for a space) undone.
fn unescape(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cores this process may run on: its scheduler affinity, else what
/// the standard library counts. Not `available_parallelism` first: it
/// rounds a cgroup quota down on its own.
fn cores() -> usize {
    // SAFETY: `set` is a plain bit set sized for the call, written by the
    // kernel; `CPU_COUNT` only reads it.
    let affinity = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) {
            0 => usize::try_from(libc::CPU_COUNT(&set)).ok(),
            _ => None,
        }
    };
    affinity
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests;
