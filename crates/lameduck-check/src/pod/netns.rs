//! A pod's network: a network namespace joined to the host by a veth pair,
//! with an address of its own, made and removed with iproute2.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// A network namespace that exists until this is dropped.
#[derive(Debug)]
pub struct PodNetwork {
    /// The namespace's name under /run/netns.
    pub name: String,
    /// The pod's address.
    pub address: Ipv4Addr,
}

/// The prefix of every namespace a rehearsal makes, followed by its pid.
const PREFIX: &str = "lameduck-check-";

impl PodNetwork {
    /// Makes the namespace of pod `index` of this process's rehearsal: a /30
    /// per pod, from a /24 picked by this process's pid so that rehearsals
    /// running side by side do not meet.
    pub fn create(index: usize) -> Result<PodNetwork, String> {
        let pid = std::process::id();
        let (a, b) = (128 + ((pid >> 8) & 0x7f) as u8, (pid & 0xff) as u8);
        let block = (index % 64) as u8 * 4;
        let host = Ipv4Addr::new(10, a, b, block + 1);
        let address = Ipv4Addr::new(10, a, b, block + 2);
        let name = format!("{PREFIX}{pid}-{index}");
        let host_if = format!("ldk{pid:x}h{index}");
        let pod_if = format!("ldk{pid:x}p{index}");
        ip(&["netns", "add", &name])?;
        let net = PodNetwork { name, address };
        let n = net.name.as_str();
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &pod_if, "netns", n,
        ])?;
        ip(&["addr", "add", &format!("{host}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("{address}/30"),
            "dev",
            &pod_if,
        ])?;
        ip(&["-n", n, "link", "set", &pod_if, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&["-n", n, "route", "add", "default", "via", &host.to_string()])?;
        Ok(net)
    }

    /// Removes namespaces left by rehearsals that died without cleaning up.
    pub fn remove_stale() {
        let Ok(entries) = std::fs::read_dir("/run/netns") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = ip(&["netns", "del", &name]);
            }
        }
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pod's end of the veth pair, and
        // with it the host's end.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            tracing::warn!("could not remove network namespace {}: {e}", self.name);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
