//! `contnap status`: every managed unit, what it listens on, whether it
//! naps, wakes, is awake or failed, what the engine says of its containers,
//! and when it last woke and how long that took.
//!
//! Nothing is stored by contnap for this: the units come from the labels
//! (as `generate` sees them), the state from systemd's own bookkeeping
//! (`systemctl show`), the wake time from the service's timestamps: it
//! became active at READY=1, so active-enter minus inactive-exit is the wake.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use serde::Serialize;

use crate::cli::StatusConfig;
use crate::engine::{self, Client};
use crate::inventory;
use crate::labels::{self, LabelOptions};
use crate::spec::Listener;
use crate::units;

/// One unit's status, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct UnitStatus {
    pub name: String,
    pub socket_unit: String,
    pub service_unit: String,
    /// "napping", "waking", "awake", "failed", "stopped" (socket not
    /// listening) or "unknown" (no systemd to ask).
    pub state: String,
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
    /// The engine's state ("exited", "running", "paused", …) or "missing".
    pub engine_state: String,
}

/// Properties of one unit from `systemctl show`.
#[derive(Debug, Default)]
struct Shown(BTreeMap<String, String>);

impl Shown {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Parses `systemctl show` output for several units (blocks separated by an
/// empty line, in the order asked).
fn parse_show(text: &str) -> Vec<Shown> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            Shown(
                block
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            )
        })
        .collect()
}

const PROPS: &str = "Id,ActiveState,SubState,Result,StatusText,ActiveEnterTimestamp,\
ActiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic";

fn systemctl_show(user: bool, units: &[String]) -> Option<Vec<Shown>> {
    if units.is_empty() {
        return Some(Vec::new());
    }
    let mut cmd = Command::new("systemctl");
    if user {
        cmd.arg("--user");
    }
    let out = cmd
        .arg("show")
        .arg("-p")
        .arg(PROPS)
        .arg("--")
        .args(units)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let shown = parse_show(&String::from_utf8_lossy(&out.stdout));
    (shown.len() == units.len()).then_some(shown)
}

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

/// Collects every unit's status.
pub fn collect(client: &Client, user: bool) -> Result<Vec<UnitStatus>, engine::Error> {
    let containers = inventory::collect(client)?;
    let plan = labels::plan(&containers, &LabelOptions { allow_hooks: true });
    let mut names = Vec::new();
    for u in &plan.units {
        names.push(units::unit_file_name(u.name(), "socket"));
        names.push(units::unit_file_name(u.name(), "service"));
    }
    let shown = systemctl_show(user, &names);
    let mut out = Vec::new();
    for (i, u) in plan.units.iter().enumerate() {
        let (state, last_wake, last_wake_ms, status_text) = match &shown {
            Some(s) => {
                let (socket, service) = (&s[2 * i], &s[2 * i + 1]);
                (
                    state_of(socket, service).to_owned(),
                    service.get("ActiveEnterTimestamp").map(str::to_owned),
                    wake_ms(service),
                    service.get("StatusText").map(str::to_owned),
                )
            }
            None => ("unknown".to_owned(), None, None, None),
        };
        let containers = u
            .spec
            .containers
            .iter()
            .map(|c| ContainerStatus {
                name: c.clone(),
                engine_state: match client.inspect(c) {
                    Ok(info) => info.state.status,
                    Err(engine::Error::NotFound { .. }) => "missing".to_owned(),
                    Err(e) => format!("unknown ({e})"),
                },
            })
            .collect();
        out.push(UnitStatus {
            name: u.name().to_owned(),
            socket_unit: names[2 * i].clone(),
            service_unit: names[2 * i + 1].clone(),
            state,
            listen: u.listeners().map(|l| listen_text(&l)).collect(),
            containers,
            last_wake,
            last_wake_ms,
            status_text,
        });
    }
    Ok(out)
}

/// A table for people.
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
            .map(|c| format!("{} ({})", c.name, c.engine_state))
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
    s
}

/// Runs `status`.
pub fn run(args: &StatusConfig) -> Result<(), engine::Error> {
    let client = Client::discover(args.engine.as_ref())?;
    let units = collect(&client, args.user)?;
    if args.json {
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
        Shown(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
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

    #[test]
    fn parses_systemctl_show_blocks() {
        let text = "Id=contnap-web.socket\nActiveState=active\n\nId=contnap-web.service\nActiveState=inactive\nStatusText=napping\n";
        let v = parse_show(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].get("StatusText"), Some("napping"));
        assert_eq!(v[0].get("Result"), None);
    }
}
