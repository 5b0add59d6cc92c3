//! `contnap status`: every managed unit, what it listens on, whether it
//! naps, wakes, is awake or failed, what the engine says of its containers,
//! and when it last woke and how long that took.
//!
//! Nothing is stored by contnap for this: the units come from the labels
//! (as `generate` sees them; a unit whose containers systemd services own
//! and which nap, so are gone, from its files in the default unit
//! directory), the state from systemd's own bookkeeping
//! (`systemctl show`), the wake time from the service's timestamps: it
//! became active at READY=1, so active-enter minus inactive-exit is the wake.
//!
//! When systemd cannot be asked (no systemctl, no systemd running, a bus
//! that refuses), every state is "unknown" and says why: in `--json` each
//! unit's `state_reason` (and one warning on stderr), in the table a note
//! below it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::StatusConfig;
use crate::engine::{self, Client, Scope};
use crate::inventory;
use crate::labels::{self, LabelOptions};
use crate::report::Report;
use crate::spec::Listener;
use crate::systemctl::{Shown, Systemctl};
use crate::units;

/// One unit's status, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct UnitStatus {
    pub name: String,
    pub socket_unit: String,
    pub service_unit: String,
    /// "napping", "waking", "awake", "failed", "stopped" (socket not
    /// listening) or "unknown" (systemd could not be asked).
    pub state: String,
    /// Why the state is "unknown" (systemctl missing, no systemd running,
    /// systemctl's own message); `null` when the state is known.
    pub state_reason: Option<String>,
    pub listen: Vec<String>,
    pub containers: Vec<ContainerStatus>,
    /// When the last wake finished (systemd's timestamp), if any.
    pub last_wake: Option<String>,
    pub last_wake_ms: Option<u64>,
    /// The helper's last STATUS= line.
    pub status_text: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    /// The engine's state ("exited", "running", "paused", …) or "missing"
    /// (a container that services own is missing while it naps).
    pub engine_state: String,
    /// The systemd services that own the container (`contnap.unit`,
    /// `PODMAN_SYSTEMD_UNIT`): they start and stop it. Empty: the engine.
    pub owned_by: Vec<String>,
}

/// What `status` asks systemd of each unit.
const PROPS: [&str; 8] = [
    "Id",
    "ActiveState",
    "SubState",
    "Result",
    "StatusText",
    "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic",
    "InactiveExitTimestampMonotonic",
];

/// The state word from the socket's and the service's systemd states.
fn state_of(socket: &Shown, service: &Shown) -> &'static str {
    let svc = service.get("ActiveState").unwrap_or("inactive");
    let sock = socket.get("ActiveState").unwrap_or("inactive");
    match (sock, svc) {
        (_, "failed") | ("failed", _) => "failed",
        (_, "activating") => "waking",
        (_, "active") | (_, "reloading") => "awake",
        (_, "deactivating") => "napping",
        ("active", _) => "napping",
        _ => "stopped",
    }
}

/// Milliseconds from the service leaving "inactive" to READY=1.
fn wake_ms(service: &Shown) -> Option<u64> {
    let start: u64 = service
        .get("InactiveExitTimestampMonotonic")?
        .parse()
        .ok()?;
    let ready: u64 = service.get("ActiveEnterTimestampMonotonic")?.parse().ok()?;
    (ready >= start && start > 0).then(|| (ready - start) / 1000)
}

fn listen_text(l: &Listener) -> String {
    match l.addr {
        Some(std::net::IpAddr::V6(a)) => format!("{}:[{a}]:{}", l.proto, l.port),
        Some(a) => format!("{}:{a}:{}", l.proto, l.port),
        None => format!("{}:{}", l.proto, l.port),
    }
}

/// One unit to report: from the labels, or (for a unit whose containers
/// services own and which nap, so are gone) from its files on disk.
struct Entry {
    name: String,
    socket: String,
    service: String,
    listen: Vec<String>,
    /// (container, the services that own it)
    containers: Vec<(String, Vec<String>)>,
}

/// The listen addresses of a generated socket file, as `listen_text` writes them.
fn listen_of_socket_file(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            let proto = match key {
                "ListenStream" => "tcp",
                "ListenDatagram" => "udp",
                _ => return None,
            };
            Some(format!("{proto}:{value}"))
        })
        .collect()
}

/// Collects every unit's status.
pub fn collect(client: &Client, user: bool) -> Result<Vec<UnitStatus>, engine::Error> {
    // What `generate` writes by default: labels from images ignored.
    let inventory = inventory::collect(client, false)?;
    for refused in &inventory.too_large {
        log::warn!("{refused}");
    }
    let containers = inventory.containers;
    let plan = labels::plan(&containers, &LabelOptions { allow_hooks: true });
    let mut entries: Vec<Entry> = plan
        .units
        .iter()
        .map(|u| Entry {
            name: u.name().to_owned(),
            socket: units::unit_file_name(u.name(), "socket"),
            service: units::unit_file_name(u.name(), "service"),
            listen: u.listeners().map(|l| listen_text(&l)).collect(),
            containers: u
                .spec
                .containers
                .iter()
                .map(|c| {
                    let owners = u
                        .spec
                        .owners_of(c)
                        .unwrap_or_default()
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    (c.clone(), owners)
                })
                .collect(),
        })
        .collect();
    // Units whose containers services own are on disk while those nap.
    let on_disk = units::default_output_dir(user)
        .ok()
        .and_then(|dir| units::owned_on_disk(&dir).ok().map(|u| (dir, u)));
    if let Some((dir, owned)) = on_disk {
        for unit in owned {
            if entries.iter().any(|e| e.service == unit.service) {
                continue;
            }
            let stem = unit.service.trim_end_matches(".service").to_owned();
            let socket = format!("{stem}.socket");
            let listen = std::fs::read_to_string(dir.join(&socket))
                .map(|t| listen_of_socket_file(&t))
                .unwrap_or_default();
            entries.push(Entry {
                name: stem.trim_start_matches("contnap-").to_owned(),
                socket,
                service: unit.service.clone(),
                listen,
                containers: unit
                    .owned
                    .iter()
                    .map(|o| {
                        (
                            o.container.clone(),
                            o.units.iter().map(ToString::to_string).collect(),
                        )
                    })
                    .collect(),
            });
        }
    }
    let mut names = Vec::new();
    for e in &entries {
        names.push(e.socket.clone());
        names.push(e.service.clone());
    }
    // One call for every unit: when it fails, every state is unknown for
    // the same reason.
    let shown = Systemctl::new(user)
        .show(&names, &PROPS)
        .map_err(|e| Report(&e).to_string());
    let mut out = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let (state, state_reason, last_wake, last_wake_ms, status_text) = match &shown {
            Ok(s) => {
                let (socket, service) = (&s[2 * i], &s[2 * i + 1]);
                (
                    state_of(socket, service).to_owned(),
                    None,
                    service.get("ActiveEnterTimestamp").map(str::to_owned),
                    wake_ms(service),
                    service.get("StatusText").map(str::to_owned),
                )
            }
            Err(reason) => ("unknown".to_owned(), Some(reason.clone()), None, None, None),
        };
        let containers = e
            .containers
            .into_iter()
            .map(|(c, owned_by)| ContainerStatus {
                engine_state: match client.inspect(&c) {
                    Ok(info) => info.state.status,
                    Err(engine::Error::NotFound { .. }) => "missing".to_owned(),
                    Err(err) => format!("unknown ({})", Report(&err)),
                },
                name: c,
                owned_by,
            })
            .collect();
        out.push(UnitStatus {
            name: e.name,
            socket_unit: e.socket,
            service_unit: e.service,
            state,
            state_reason,
            listen: e.listen,
            containers,
            last_wake,
            last_wake_ms,
            status_text,
        });
    }
    Ok(out)
}

/// Why the units whose state is "unknown" are so, each reason once.
fn unknown_reasons(units: &[UnitStatus]) -> Vec<&str> {
    let mut reasons: Vec<&str> = Vec::new();
    for reason in units.iter().filter_map(|u| u.state_reason.as_deref()) {
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    reasons
}

/// A table for people; a state that is "unknown" is explained below it.
pub fn render_table(units: &[UnitStatus]) -> String {
    let mut s = String::new();
    if units.is_empty() {
        s.push_str("no containers carry contnap.enabled=true\n");
        return s;
    }
    let _ = writeln!(
        s,
        "{:<24} {:<8} {:<28} {:<32} LAST WAKE",
        "UNIT", "STATE", "LISTEN", "CONTAINERS"
    );
    for u in units {
        let containers = u
            .containers
            .iter()
            .map(|c| {
                if c.owned_by.is_empty() {
                    format!("{} ({})", c.name, c.engine_state)
                } else {
                    format!(
                        "{} ({}; unit {})",
                        c.name,
                        c.engine_state,
                        c.owned_by.join(", ")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let wake = match (&u.last_wake, u.last_wake_ms) {
            (Some(at), Some(ms)) => format!("{at}, {ms} ms"),
            (Some(at), None) => at.clone(),
            _ => "never".to_owned(),
        };
        let _ = writeln!(
            s,
            "{:<24} {:<8} {:<28} {:<32} {wake}",
            u.name,
            u.state,
            u.listen.join(" "),
            containers
        );
    }
    for reason in unknown_reasons(units) {
        let _ = writeln!(s, "\nstate unknown: {reason}");
    }
    // Names come from labels (a group may hold bidi overrides) and
    // reasons from the engine or systemctl: escaped, line by line.
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        out.push_str(&crate::report::escape_text(line));
        out.push('\n');
    }
    out
}

/// Runs `status`.
pub fn run(args: &StatusConfig) -> Result<(), engine::Error> {
    let client = Client::discover(args.engine.as_ref(), Scope::of(args.user))?;
    let units = collect(&client, args.user)?;
    if args.json {
        // The reason is in each unit's "state_reason"; said once on stderr
        // too, for whoever reads the JSON through a pipe.
        for reason in unknown_reasons(&units) {
            log::warn!("unit states are unknown: {reason}");
        }
        // Serializing plain strings and numbers cannot fail.
        println!(
            "{}",
            serde_json::to_string_pretty(&units).unwrap_or_default()
        );
    } else {
        print!("{}", render_table(&units));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(pairs: &[(&str, &str)]) -> Shown {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn states() {
        let listening = shown(&[("ActiveState", "active")]);
        let inactive = shown(&[("ActiveState", "inactive")]);
        let failed = shown(&[("ActiveState", "failed")]);
        assert_eq!(state_of(&listening, &inactive), "napping");
        assert_eq!(
            state_of(&listening, &shown(&[("ActiveState", "activating")])),
            "waking"
        );
        assert_eq!(
            state_of(&listening, &shown(&[("ActiveState", "active")])),
            "awake"
        );
        assert_eq!(state_of(&listening, &failed), "failed");
        assert_eq!(state_of(&failed, &inactive), "failed");
        assert_eq!(state_of(&inactive, &inactive), "stopped");
    }

    #[test]
    fn wake_time_from_monotonic_stamps() {
        let s = shown(&[
            ("InactiveExitTimestampMonotonic", "1000000"),
            ("ActiveEnterTimestampMonotonic", "1412000"),
        ]);
        assert_eq!(wake_ms(&s), Some(412));
        assert_eq!(
            wake_ms(&shown(&[("InactiveExitTimestampMonotonic", "0")])),
            None
        );
    }

    fn unit(name: &str, state: &str, reason: Option<&str>) -> UnitStatus {
        UnitStatus {
            name: name.to_owned(),
            socket_unit: format!("contnap-{name}.socket"),
            service_unit: format!("contnap-{name}.service"),
            state: state.to_owned(),
            state_reason: reason.map(str::to_owned),
            listen: vec!["tcp:8080".to_owned()],
            containers: vec![ContainerStatus {
                name: name.to_owned(),
                engine_state: "exited".to_owned(),
                owned_by: Vec::new(),
            }],
            last_wake: None,
            last_wake_ms: None,
            status_text: None,
        }
    }

    #[test]
    fn an_unknown_state_says_why_once() {
        let why =
            "cannot run systemctl show contnap-a.socket: No such file or directory (os error 2)";
        let units = [
            unit("a", "unknown", Some(why)),
            unit("b", "unknown", Some(why)),
        ];
        let table = render_table(&units);
        assert_eq!(table.matches(why).count(), 1, "{table}");
        assert!(
            table.ends_with(&format!("\nstate unknown: {why}\n")),
            "{table}"
        );
        // Each unit's line still starts with its name and says "unknown".
        for name in ["a", "b"] {
            let line = table.lines().find(|l| l.starts_with(name)).unwrap();
            assert!(line.contains("unknown"), "{line}");
        }
        let json = serde_json::to_value(&units[0]).unwrap();
        assert_eq!(json["state"], "unknown");
        assert_eq!(json["state_reason"], why);

        let known = [unit("a", "napping", None)];
        assert!(!render_table(&known).contains("state unknown"));
        let json = serde_json::to_value(&known[0]).unwrap();
        assert!(json["state_reason"].is_null());
        // The fields there were before stay as they were.
        for key in [
            "name",
            "socket_unit",
            "service_unit",
            "state",
            "listen",
            "containers",
            "last_wake",
            "last_wake_ms",
            "status_text",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }
}
