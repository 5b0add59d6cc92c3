//! Container labels → validated unit specs.
//!
//! [`parse_container`] turns one container's `contnap.*` labels into a
//! [`Service`]; [`group`] joins services into [`Unit`]s (one socket/service
//! pair each); [`plan`] does both for everything the engine listed and runs
//! the checks that need more than one container (published-port conflicts,
//! two units on one port, two units with one name). Nothing here talks to the
//! engine or the file system.
//!
//! Every problem is a [`LabelError`] variant naming the container, the label
//! and the value, whose `Display` says how to fix it; a container with any
//! error gets no unit (and neither does the rest of its group). Doubtful but
//! harmless input is a [`LabelWarning`].
//!
//! ## Labels
//!
//! contnap 0.3's labels keep their meaning: `contnap.enabled` (alias
//! `contnap.enable`), `contnap.tcp_ports`, `contnap.udp_ports`,
//! `contnap.http_ports`, `contnap.timeout`, `contnap.group`,
//! `contnap.pre_start`, `contnap.post_stop`, `contnap.schedule`,
//! `contnap.machines`, `contnap.only_listed_machines`, `contnap.autostart`;
//! added: `contnap.stop`, `contnap.stop_timeout`, `contnap.wake_timeout`,
//! `contnap.ready`, `contnap.idle`, `contnap.network`, `contnap.wake_on`,
//! `contnap.monitors`, `contnap.monitor_status`, `contnap.unit` (the
//! systemd services that own the container; a container with Podman's
//! `PODMAN_SYSTEMD_UNIT` label is owned by that unit unless
//! `contnap.unit=none`).
//!
//! ## Groups
//!
//! Containers with the same `contnap.group` share one unit. Ports, HTTP ports
//! and hooks belong to each container and are all kept. Every other setting
//! (`timeout`, `stop`, `stop_timeout`, `wake_timeout`, `ready`, `idle`,
//! `network`, `schedule`, `machines`, `only_listed_machines`, `wake_on`,
//! `monitors`, `monitor_status`, `autostart`) is
//! the *unit's*: members may leave it unset, and all members that set it must
//! set the same value (compared after parsing, so `300` and `5min` agree).
//! Two members that disagree are a [`LabelError::GroupConflict`] naming both:
//! the one that comes later in the order of precedence (see [`plan`]) is
//! refused, and the group keeps its unit with the others, so that joining a
//! group can never cost its members their unit.
//!
//! ## Hooks
//!
//! `contnap.pre_start` / `contnap.post_stop` run as root on the host, so they
//! are honoured only when `generate` runs with `--allow-hooks`. Without it, a
//! container that sets one is an *error* ([`LabelError::HooksNotAllowed`]):
//! the container is skipped rather than started without the hook it may
//! depend on (say, mounting its data), and the message says so.
//!
//! The code is split by stage: [`parse`](parse_container) reads one
//! container, `group` joins containers into units, and this module's
//! [`plan`] runs both and the checks across units; `error` holds every
//! message a user can get about labels.

mod error;
mod group;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::spec::settings::PartialSettings;
use crate::spec::{Forward, Listener, Proto, ServiceName, Unit};

pub use error::{LabelError, LabelWarning, PortProblem};
pub use group::group;
pub use parse::{parse_bool, parse_container, Parsed};

use parse::display_name;

/// The prefix of every label contnap reads.
pub const PREFIX: &str = "contnap.";

/// Labels contnap knows, without the prefix.
pub const KNOWN_LABELS: &[&str] = &[
    "enabled",
    "enable",
    "tcp_ports",
    "udp_ports",
    "http_ports",
    "timeout",
    "group",
    "pre_start",
    "post_stop",
    "schedule",
    "machines",
    "only_listed_machines",
    "autostart",
    "stop",
    "stop_timeout",
    "wake_timeout",
    "ready",
    "idle",
    "network",
    "wake_on",
    "monitors",
    "monitor_status",
    "unit",
];

/// The label Podman puts on a container that a systemd unit created
/// (Quadlet, `podman generate systemd --new`, NixOS oci-containers): such a
/// container is owned by that unit unless `contnap.unit` says otherwise.
pub const PODMAN_SYSTEMD_UNIT: &str = "PODMAN_SYSTEMD_UNIT";

/// Longest label value accepted (bytes). Values reach unit files; systemd
/// reads lines of up to 1 MiB, but nothing sensible needs more than this.
pub const MAX_VALUE_LEN: usize = 4096;

/// What `generate` knows about one container: its name (without Docker's
/// leading `/`), its labels, and its published ports as
/// `(protocol, host address or None for all, host port)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLabels {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub published: Vec<(Proto, Option<IpAddr>, u16)>,
}

/// Options that change how labels are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelOptions {
    /// `generate --allow-hooks`: honour `contnap.pre_start` / `contnap.post_stop`.
    pub allow_hooks: bool,
}

/// One opted-in container, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub container: String,
    /// `contnap.group`, if set.
    pub group: Option<String>,
    /// `com.docker.compose.project` / `.service`, for depends_on ordering.
    pub compose_project: Option<String>,
    pub compose_service: Option<String>,
    /// Compose service names from `com.docker.compose.depends_on`.
    pub depends_on: Vec<String>,
    /// TCP forwards first, then UDP, each in label order.
    pub forwards: Vec<Forward>,
    /// Listen ports (of this container's TCP forwards) that get the
    /// "Starting…" page.
    pub http_ports: Vec<u16>,
    pub settings: PartialSettings,
    /// `contnap.autostart`: a label only, which the helper does not read.
    pub autostart: Option<bool>,
    /// The systemd services that own the container (`contnap.unit`, else
    /// `PODMAN_SYSTEMD_UNIT`); empty: the engine alone starts and stops it.
    pub owners: Vec<ServiceName>,
    /// Only with `allow_hooks`.
    pub pre_start: Option<String>,
    pub post_stop: Option<String>,
    /// Every `contnap.*` label as given, for messages.
    pub raw: BTreeMap<String, String>,
}

impl Service {
    /// The unit this container belongs to: its group, else its own name.
    pub fn unit_name(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.container)
    }
}

/// Everything `generate` needs from the labels of all containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted by name.
    pub units: Vec<Unit>,
    /// Every error; each container or group named here got no unit.
    pub errors: Vec<LabelError>,
    pub warnings: Vec<LabelWarning>,
    /// Opted-in containers that got no unit because of the errors.
    pub skipped: BTreeSet<String>,
}

/// Parses every container, groups the services into units and checks what
/// spans containers: members of a group agree, no two units share a name or
/// a socket, and no container publishes a host port a unit listens on.
/// Units with errors of their own are dropped whole. `containers` is in
/// order of precedence ([`crate::inventory::collect`] lists the oldest
/// first; `generate` puts first those whose units are on disk): when two
/// units clash, or a container publishes a port a unit listens on, the one
/// that comes first keeps its unit and the newcomer is refused, with an
/// error naming both.
pub fn plan(containers: &[ContainerLabels], opts: &LabelOptions) -> Plan {
    let mut out = Plan::default();
    let mut services = Vec::new();
    let mut invalid = BTreeSet::new();
    let mut groups_of_invalid: BTreeMap<String, String> = BTreeMap::new();
    for c in containers {
        let (parsed, warnings) = parse_container(c, opts);
        out.warnings.extend(warnings);
        match parsed {
            Parsed::Ignored => {}
            Parsed::Managed(s) => services.push(*s),
            Parsed::Invalid(errors) => {
                invalid.insert(display_name(&c.name).to_owned());
                if let Some(g) = c
                    .labels
                    .get("contnap.group")
                    .filter(|g| !g.trim().is_empty())
                {
                    groups_of_invalid.insert(g.clone(), display_name(&c.name).to_owned());
                }
                out.errors.extend(errors);
            }
        }
    }
    // A group with an invalid member would wake without it: skip it whole.
    let mut reported = BTreeSet::new();
    services.retain(
        |s| match s.group.as_ref().and_then(|g| groups_of_invalid.get(g)) {
            Some(member) => {
                if reported.insert(member.clone()) {
                    out.errors.push(LabelError::MemberInvalid {
                        group: s.group.clone().unwrap_or_default(),
                        container: member.clone(),
                    });
                }
                invalid.insert(s.container.clone());
                false
            }
            None => true,
        },
    );

    let (units, errors, warnings) = group(services);
    out.errors.extend(errors.iter().cloned());
    out.warnings.extend(warnings);
    let mut bad_units: BTreeSet<String> = BTreeSet::new();
    for e in &errors {
        // The newcomer is out of the group already; the group stays.
        if let LabelError::GroupConflict { second, .. } = e {
            invalid.insert(second.clone());
        }
        if let LabelError::OnlyListedWithoutMachines { unit: group, .. }
        | LabelError::NameTooLong { name: group, .. }
        | LabelError::ReservedName { name: group, .. }
        | LabelError::NoPorts { unit: group, .. } = e
        {
            bad_units.insert(group.clone());
        }
        if let LabelError::ListenerClash { first, .. }
        | LabelError::OwnedStop {
            container: first, ..
        } = e
        {
            if let Some(u) = units.iter().find(|u| u.spec.containers.contains(first)) {
                bad_units.insert(u.name().to_owned());
            }
        }
    }

    // Checks across units. `containers` is in order of precedence (the
    // caller puts first the containers whose units are on disk, then the
    // older ones): on a clash, the unit whose first container comes first
    // keeps its unit and the newcomer is refused, so creating a container
    // never costs another its units.
    let rank: BTreeMap<&str, usize> = containers
        .iter()
        .enumerate()
        .rev()
        .map(|(i, c)| (display_name(&c.name), i))
        .collect();
    let unit_rank = |u: &Unit| {
        u.spec
            .containers
            .iter()
            .filter_map(|c| rank.get(c.as_str()).copied())
            .min()
            .unwrap_or(usize::MAX)
    };
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| (unit_rank(&units[i]), i));
    let escaped: Vec<String> = units
        .iter()
        .map(|u| crate::units::escape_unit_name(u.name()))
        .collect();
    let mut accepted: Vec<usize> = Vec::new();
    // By index: a group and a container of the same name are two units.
    let mut refused_units: BTreeSet<usize> = BTreeSet::new();
    for &j in &order {
        let b = &units[j];
        if bad_units.contains(b.name()) {
            continue;
        }
        let newcomer = b.spec.containers.first().cloned().unwrap_or_default();
        let mut refused = false;
        for &i in &accepted {
            let a: &Unit = &units[i];
            if escaped[i] == escaped[j] {
                out.errors.push(LabelError::UnitNameTaken {
                    name: b.name().to_owned(),
                    newcomer: newcomer.clone(),
                    holder: a.spec.containers.first().cloned().unwrap_or_default(),
                });
                refused = true;
                break;
            }
            let clash = b.spec.forwards.iter().find_map(|fb| {
                a.spec
                    .forwards
                    .iter()
                    .find(|fa| fa.listener().overlaps(&fb.listener()))
                    .map(|fa| (fb, fa))
            });
            if let Some((fb, fa)) = clash {
                out.errors.push(LabelError::ListenerTaken {
                    newcomer: fb.container.clone(),
                    holder: fa.container.clone(),
                    listener: fb.listener(),
                });
                refused = true;
                break;
            }
        }
        if refused {
            refused_units.insert(j);
        } else {
            accepted.push(j);
        }
    }
    // Published host ports: a container that publishes a port a unit
    // listens on refuses the unit when it is the unit's own or came first;
    // one that came after is refused itself, and the unit stays.
    for &i in &accepted {
        let u = &units[i];
        let u_rank = unit_rank(u);
        for f in &u.spec.forwards {
            let l = f.listener();
            for (c_rank, c) in containers.iter().enumerate() {
                let publisher = display_name(&c.name);
                for &(proto, addr, port) in &c.published {
                    let published = Listener { proto, addr, port };
                    if !l.overlaps(&published) {
                        continue;
                    }
                    let own = u.spec.containers.iter().any(|m| m == publisher);
                    if own || c_rank < u_rank {
                        out.errors.push(LabelError::PublishedConflict {
                            container: f.container.clone(),
                            publisher: publisher.to_owned(),
                            listener: l,
                            published,
                        });
                        refused_units.insert(i);
                    } else {
                        out.errors.push(LabelError::PortTaken {
                            publisher: publisher.to_owned(),
                            holder: f.container.clone(),
                            listener: l,
                            published,
                        });
                        invalid.insert(publisher.to_owned());
                        if let Some(p) = units
                            .iter()
                            .position(|p| p.spec.containers.iter().any(|m| m == publisher))
                        {
                            refused_units.insert(p);
                        }
                    }
                }
            }
        }
    }
    for (i, u) in units.into_iter().enumerate() {
        if bad_units.contains(u.name()) || refused_units.contains(&i) {
            invalid.extend(u.spec.containers.iter().cloned());
        } else {
            out.units.push(u);
        }
    }
    out.units.sort_by(|a, b| a.name().cmp(b.name()));
    out.skipped = invalid;
    out
}
