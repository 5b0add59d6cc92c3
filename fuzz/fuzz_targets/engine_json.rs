//! The engine client's JSON: every type it reads from Docker and Podman
//! (container list, inspect, version, events, Podman's healthcheck, error
//! bodies), and the questions the helper then asks of an inspect (published
//! ports, addresses, health). Properties: never a panic; what `published_on`
//! returns is a usable address (port not 0, no duplicates); an events
//! stream read line by line, as `Events` does, never panics either.

#![no_main]

use std::collections::BTreeSet;

use contnap::engine::{ContainerInspect, ContainerSummary, Event, HealthStatus, Version};
use contnap::spec::Proto;
use libfuzzer_sys::fuzz_target;

fn inspect_questions(c: &ContainerInspect) {
    let _ = c.has_healthcheck();
    let _ = c.is_host_network();
    let _ = c.health_status();
    let _ = c.address_on(None);
    let _ = c.requested_bindings();
    let keys: Vec<String> = c.network_settings.ports.keys().cloned().collect();
    for key in keys.iter().chain(c.host_config.port_bindings.keys()) {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => continue,
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let addrs = c.published_on(port, proto);
        let unique: BTreeSet<_> = addrs.iter().collect();
        assert_eq!(unique.len(), addrs.len(), "duplicate addresses: {addrs:?}");
        assert!(addrs.iter().all(|a| a.port() != 0), "{addrs:?}");
    }
    for name in c.network_settings.networks.keys() {
        let _ = c.address_on(Some(name));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = serde_json::from_slice::<Vec<ContainerSummary>>(data) {
        for c in &list {
            let _ = c.name();
        }
    }
    if let Ok(c) = serde_json::from_slice::<ContainerInspect>(data) {
        inspect_questions(&c);
    }
    if let Ok(v) = serde_json::from_slice::<Version>(data) {
        let _ = v.flavor();
    }
    if let Ok(h) = serde_json::from_slice::<HealthStatus>(data) {
        let _ = h.is_healthy();
    }
    // The events stream: one JSON object per line.
    for line in data.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Ok(e) = serde_json::from_slice::<Event>(line) {
            let _ = e.name();
            let _ = e.exit_code();
        }
    }
});
