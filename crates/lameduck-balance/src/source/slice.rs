//! EndpointSlices to backends: the port chosen, addresses parsed, and
//! endpoints that appear in several slices (during a slice's replacement)
//! merged by address, the most usable state winning.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::PortSelector;
use crate::endpoint::Backend;
use crate::state::Conditions;

/// The backends of a set of slices, and what was left out and why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Every endpoint, one per address.
    pub backends: Vec<Backend>,
    /// Endpoints or slices skipped (FQDN slices, unparsable addresses).
    pub skipped: Vec<String>,
}

/// Turns `slices` into backends on the port `port` selects; without one,
/// the slices' only TCP port. Fails when the port cannot be chosen: that
/// set must not replace a good one.
pub fn resolve(slices: &[EndpointSlice], port: Option<&PortSelector>) -> Result<Resolved, String> {
    let mut out = Resolved::default();
    let mut merged: BTreeMap<SocketAddr, Backend> = BTreeMap::new();
    let mut names_seen: Vec<String> = Vec::new();
    let mut port_found = false;
    let mut any_endpoint = false;
    for slice in slices {
        let slice_name = slice.metadata.name.as_deref().unwrap_or("(unnamed)");
        let endpoints = slice.endpoints.as_deref().unwrap_or_default();
        if endpoints.is_empty() {
            continue;
        }
        any_endpoint = true;
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            out.skipped.push(format!(
                "EndpointSlice {slice_name}: addressType {} is not IPv4 or IPv6",
                slice.address_type
            ));
            continue;
        }
        let tcp_ports: Vec<(Option<&str>, i32)> = slice
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| p.port.map(|n| (p.name.as_deref(), n)))
            .collect();
        for (name, _) in &tcp_ports {
            let name = name.unwrap_or("").to_owned();
            if !names_seen.contains(&name) {
                names_seen.push(name);
            }
        }
        let number = match port {
            Some(PortSelector::Number(n)) => Some(*n),
            Some(PortSelector::Name(want)) => tcp_ports
                .iter()
                .find(|(name, _)| *name == Some(want.as_str()))
                .and_then(|(_, n)| u16::try_from(*n).ok()),
            None => match tcp_ports.as_slice() {
                [(_, n)] => u16::try_from(*n).ok(),
                [] => None,
                _ => {
                    return Err(format!(
                        "EndpointSlice {slice_name} has several ports ({}): choose one with --port NAME|NUMBER",
                        list(&names_seen)
                    ))
                }
            },
        };
        let Some(number) = number.filter(|n| *n > 0) else {
            continue;
        };
        port_found = true;
        for endpoint in endpoints {
            let Some(first) = endpoint.addresses.first() else {
                continue;
            };
            let ip: IpAddr = match first.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    out.skipped.push(format!(
                        "EndpointSlice {slice_name}: address {first:?} is not an IP address"
                    ));
                    continue;
                }
            };
            let conditions = endpoint
                .conditions
                .as_ref()
                .map(|c| Conditions {
                    ready: c.ready,
                    serving: c.serving,
                    terminating: c.terminating,
                })
                .unwrap_or_default();
            let backend = Backend {
                addr: SocketAddr::new(ip, number),
                name: endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .or_else(|| endpoint.hostname.clone()),
                conditions,
            };
            merged
                .entry(backend.addr)
                .and_modify(|b| {
                    if backend.conditions.state() < b.conditions.state() {
                        *b = backend.clone();
                    }
                })
                .or_insert(backend);
        }
    }
    if any_endpoint && !port_found {
        return Err(match port {
            Some(PortSelector::Name(want)) => format!(
                "no EndpointSlice has a TCP port named {want:?} (ports: {}): give one of those with --port",
                list(&names_seen)
            ),
            Some(PortSelector::Number(_)) => "no EndpointSlice has an IPv4 or IPv6 endpoint".into(),
            None => "the EndpointSlices list no TCP port: give one with --port NUMBER".into(),
        });
    }
    out.backends = merged.into_values().collect();
    Ok(out)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| {
            if n.is_empty() {
                "(unnamed)".to_owned()
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
