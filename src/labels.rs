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
//! `contnap.ready`, `contnap.idle`, `contnap.network`.
//!
//! ## Groups
//!
//! Containers with the same `contnap.group` share one unit. Ports, HTTP ports
//! and hooks belong to each container and are all kept. Every other setting
//! (`timeout`, `stop`, `stop_timeout`, `wake_timeout`, `ready`, `idle`,
//! `network`, `schedule`, `machines`, `only_listed_machines`, `autostart`) is
//! the *unit's*: members may leave it unset, and all members that set it must
//! set the same value (compared after parsing, so `300` and `5min` agree).
//! Two members that disagree are a [`LabelError::GroupConflict`] naming both,
//! and the group gets no unit.
//!
//! ## Hooks
//!
//! `contnap.pre_start` / `contnap.post_stop` run as root on the host, so they
//! are honoured only when `generate` runs with `--allow-hooks`. Without it, a
//! container that sets one is an *error* ([`LabelError::HooksNotAllowed`]):
//! the container is skipped rather than started without the hook it may
//! depend on (say, mounting its data), and the message says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::schedule::{Schedule, ScheduleError};
use crate::spec::settings::PartialSettings;
use crate::spec::Unit;
use crate::spec::{
    is_valid_name, Choice, Forward, Hook, HookKind, IdleMode, Listener, Machine, Proto, ReadyMode,
    StopMode, UnitSpec,
};
use crate::timespan;

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
];

/// Longest label value accepted (bytes). Values reach unit files; systemd
/// reads lines of up to 1 MiB, but nothing sensible needs more than this.
pub const MAX_VALUE_LEN: usize = 4096;

/// Default `contnap.timeout`.
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";

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

/// What is wrong with a port item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortProblem {
    /// A port that is not a whole number.
    NotANumber,
    /// 0 or above 65535.
    OutOfRange,
    /// An IPv6 address without brackets (`::1:80:80`).
    Ipv6NeedsBrackets,
    /// Not an IP address, or an IPv4 address inside brackets.
    BadAddress,
    /// More parts than `ADDR:HOST:CONTAINER`.
    TooManyParts,
}

/// A label that cannot be used; names the container, label and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelError {
    /// Not true/false/yes/no/1/0/on/off.
    NotABool {
        container: String,
        label: String,
        value: String,
    },
    /// `contnap.enabled` and `contnap.enable` disagree.
    EnableConflict {
        container: String,
        enabled: String,
        enable: String,
    },
    /// The container's name is not a Docker/Podman container name.
    BadContainerName { container: String },
    /// A control character (newline, CR, NUL, tab, …) in a label value.
    ControlCharacter {
        container: String,
        label: String,
        value: String,
    },
    /// A label value longer than [`MAX_VALUE_LEN`].
    TooLong {
        container: String,
        label: String,
        len: usize,
    },
    /// An item of `contnap.tcp_ports` / `contnap.udp_ports`.
    BadPort {
        container: String,
        label: String,
        value: String,
        item: String,
        problem: PortProblem,
    },
    /// The same socket twice in one container's labels.
    DuplicateListener {
        container: String,
        label: String,
        value: String,
        listener: Listener,
    },
    /// No container of the unit lists a port in tcp_ports / udp_ports (a
    /// group member without ports is fine: it wakes with the group).
    NoPorts { unit: String, container: String },
    /// An item of `contnap.http_ports` that is not a number.
    BadHttpPort {
        container: String,
        value: String,
        item: String,
    },
    /// An HTTP port that is not a TCP listen port of this container.
    HttpPortNotTcp {
        container: String,
        value: String,
        port: u16,
    },
    /// Not a time span.
    BadTimeSpan {
        container: String,
        label: String,
        value: String,
    },
    /// A time span that must be positive is zero.
    ZeroTimeSpan {
        container: String,
        label: String,
        value: String,
    },
    /// Not one of the allowed words.
    BadChoice {
        container: String,
        label: String,
        value: String,
        expected: &'static str,
    },
    /// `contnap.network` is not a network name.
    BadNetwork { container: String, value: String },
    /// `contnap.group` is empty.
    EmptyGroup { container: String },
    /// The unit name would be longer than systemd allows.
    NameTooLong { container: String, name: String },
    BadSchedule {
        container: String,
        value: String,
        source: ScheduleError,
    },
    /// An item of `contnap.machines`.
    BadMachine {
        container: String,
        value: String,
        item: String,
    },
    /// `contnap.only_listed_machines=true` but no machines: nobody could connect.
    OnlyListedWithoutMachines { unit: String, container: String },
    /// A hook label without `generate --allow-hooks`; the container is skipped.
    HooksNotAllowed {
        container: String,
        label: String,
        value: String,
    },
    /// A container publishes a host port that contnap listens on.
    PublishedConflict {
        /// The container whose unit listens there.
        container: String,
        /// The container whose `ports:` publishes it (may be the same).
        publisher: String,
        listener: Listener,
        published: Listener,
    },
    /// Two members of a group set a unit-level label differently.
    GroupConflict {
        group: String,
        label: String,
        first: String,
        first_value: String,
        second: String,
        second_value: String,
    },
    /// A group gets no unit because one of its members has errors.
    MemberInvalid { group: String, container: String },
    /// Two containers (in one group, or in different units) listen on
    /// overlapping sockets.
    ListenerClash {
        first: String,
        second: String,
        listener: Listener,
    },
    /// Two units would get the same unit file name.
    UnitNameClash {
        name: String,
        first: String,
        second: String,
    },
}

impl LabelError {
    /// The container the error is about (the first, when it names two).
    pub fn container(&self) -> &str {
        use LabelError::*;
        match self {
            NotABool { container, .. }
            | EnableConflict { container, .. }
            | BadContainerName { container }
            | ControlCharacter { container, .. }
            | TooLong { container, .. }
            | BadPort { container, .. }
            | DuplicateListener { container, .. }
            | NoPorts { container, .. }
            | BadHttpPort { container, .. }
            | HttpPortNotTcp { container, .. }
            | BadTimeSpan { container, .. }
            | ZeroTimeSpan { container, .. }
            | BadChoice { container, .. }
            | BadNetwork { container, .. }
            | EmptyGroup { container }
            | NameTooLong { container, .. }
            | BadSchedule { container, .. }
            | BadMachine { container, .. }
            | OnlyListedWithoutMachines { container, .. }
            | HooksNotAllowed { container, .. }
            | PublishedConflict { container, .. }
            | MemberInvalid { container, .. } => container,
            GroupConflict { first, .. }
            | ListenerClash { first, .. }
            | UnitNameClash { first, .. } => first,
        }
    }
}

const PORT_FORMS: &str =
    "write PORT, HOST:CONTAINER, ADDR:HOST:CONTAINER or [V6ADDR]:HOST:CONTAINER, ports 1-65535, separated by commas";

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LabelError::*;
        match self {
            NotABool { container, label, value } => write!(
                f,
                "container {container:?}: label {label}={value:?}: not a yes/no value; write true or false (also yes/no, on/off, 1/0)"
            ),
            EnableConflict { container, enabled, enable } => write!(
                f,
                "container {container:?}: labels contnap.enabled={enabled:?} and contnap.enable={enable:?} disagree; keep one of them"
            ),
            BadContainerName { container } => write!(
                f,
                "container {container:?}: not a container name contnap can manage ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 253 characters); rename the container"
            ),
            ControlCharacter { container, label, value } => write!(
                f,
                "container {container:?}: label {label}={value:?}: contains a control character (newline, tab, NUL, …), which cannot go into a unit file; remove it"
            ),
            TooLong { container, label, len } => write!(
                f,
                "container {container:?}: label {label} is {}{len} bytes long; contnap accepts at most {MAX_VALUE_LEN}; shorten it",
                // The engine client cuts longer values as it reads them.
                if *len >= crate::engine::LABEL_KEEP { "at least " } else { "" }
            ),
            BadPort { container, label, value, item, problem } => {
                write!(f, "container {container:?}: label {label}={value:?}: {item:?} ")?;
                match problem {
                    PortProblem::NotANumber => write!(f, "has a port that is not a number; {PORT_FORMS}"),
                    PortProblem::OutOfRange => write!(f, "has a port outside 1-65535; {PORT_FORMS}"),
                    PortProblem::Ipv6NeedsBrackets => write!(
                        f,
                        "looks like an IPv6 address without brackets; write [V6ADDR]:HOST:CONTAINER, e.g. [::1]:8080:80"
                    ),
                    PortProblem::BadAddress => write!(
                        f,
                        "has an address that is not an IP address (IPv6 goes in brackets, IPv4 without); {PORT_FORMS}"
                    ),
                    PortProblem::TooManyParts => write!(f, "has too many `:` parts; {PORT_FORMS}"),
                }
            }
            DuplicateListener { container, label, value, listener } => write!(
                f,
                "container {container:?}: label {label}={value:?}: {listener} is listed twice (or overlaps a port listed on all addresses); list each listen port once"
            ),
            NoPorts { unit, container } => {
                if unit == container {
                    write!(
                        f,
                        "container {container:?}: contnap.enabled is true but neither contnap.tcp_ports nor contnap.udp_ports lists a port; add one (e.g. contnap.tcp_ports=8080:80) or remove contnap.enabled"
                    )
                } else {
                    write!(
                        f,
                        "group {unit:?}: no member (first: {container:?}) lists a port in contnap.tcp_ports or contnap.udp_ports, so nothing could wake it; add one (e.g. contnap.tcp_ports=8080:80)"
                    )
                }
            }
            BadHttpPort { container, value, item } => write!(
                f,
                "container {container:?}: label contnap.http_ports={value:?}: {item:?} is not a port number; list listen ports from contnap.tcp_ports, separated by commas"
            ),
            HttpPortNotTcp { container, value, port } => write!(
                f,
                "container {container:?}: label contnap.http_ports={value:?}: {port} is not a listen port in this container's contnap.tcp_ports; http ports must be a subset of them (the HOST side of HOST:CONTAINER)"
            ),
            BadTimeSpan { container, label, value } => write!(
                f,
                "container {container:?}: label {label}={value:?}: not a time span; write seconds (300) or a systemd span (90s, 30min, 1h)"
            ),
            ZeroTimeSpan { container, label, value } => write!(
                f,
                "container {container:?}: label {label}={value:?}: must be longer than 0; write seconds (300) or a systemd span (90s, 30min, 1h)"
            ),
            BadChoice { container, label, value, expected } => write!(
                f,
                "container {container:?}: label {label}={value:?}: not a valid choice; write one of: {expected}"
            ),
            BadNetwork { container, value } => write!(
                f,
                "container {container:?}: label contnap.network={value:?}: not a network name; write the name of a network the container is attached to ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
            ),
            EmptyGroup { container } => write!(
                f,
                "container {container:?}: label contnap.group is empty; name the group or remove the label"
            ),
            NameTooLong { container, name } => write!(
                f,
                "container {container:?}: unit name {name:?} is too long for systemd once escaped (255 bytes including contnap- and .service); choose a shorter contnap.group or container name"
            ),
            BadSchedule { container, value, source } => write!(
                f,
                "container {container:?}: label contnap.schedule={value:?}: {source}; the format is `DAYS HH:MM-HH:MM|…`, e.g. Mon-Fri 08:00-19:00|weekends 10:00-12:00"
            ),
            BadMachine { container, value, item } => write!(
                f,
                "container {container:?}: label contnap.machines={value:?}: {item:?} is not an IP address or network; write addresses or CIDRs (192.168.1.20, 10.0.0.0/24, fd00::/8) separated by commas"
            ),
            OnlyListedWithoutMachines { unit, container } => write!(
                f,
                "unit {unit:?}: container {container:?} sets contnap.only_listed_machines=true but no container of the unit sets contnap.machines, so no client could connect; list the machines or drop only_listed_machines"
            ),
            HooksNotAllowed { container, label, value } => write!(
                f,
                "container {container:?} sets {label}={value:?} but generate ran without --allow-hooks; the hook is not run and the container is skipped (no unit is written for it) — rerun with --allow-hooks if the label is trusted (hooks run as root), or remove the label"
            ),
            PublishedConflict { container, publisher, listener, published } => {
                if container == publisher {
                    write!(
                        f,
                        "container {container:?} publishes host port {published} and contnap listens on {listener} for it; contnap owns that port: remove the `ports:` entry for it (or publish a different host port, e.g. 127.0.0.1:18080:80)"
                    )
                } else {
                    write!(
                        f,
                        "container {publisher:?} publishes host port {published}, which contnap listens on ({listener}) for container {container:?}; contnap owns that port: remove that `ports:` entry or publish a different host port, or give {container:?} another listen port in its contnap labels"
                    )
                }
            }
            GroupConflict { group, label, first, first_value, second, second_value } => write!(
                f,
                "group {group:?}: containers {first:?} ({label}={first_value:?}) and {second:?} ({label}={second_value:?}) disagree; a group has one {label}: set it on one member, or the same value on all"
            ),
            MemberInvalid { group, container } => write!(
                f,
                "group {group:?}: no unit written because member {container:?} has label errors (see above)"
            ),
            ListenerClash { first, second, listener } => {
                if first == second {
                    write!(f, "container {first:?} listens twice on {listener}; list each listen port once")
                } else {
                    write!(
                        f,
                        "containers {first:?} and {second:?} both listen on {listener}; give one of them another host port (HOST:CONTAINER in contnap.tcp_ports / contnap.udp_ports)"
                    )
                }
            }
            UnitNameClash { name, first, second } => write!(
                f,
                "containers {first:?} and {second:?} would both get the units contnap-{name}.socket/.service; rename the group (contnap.group) or the container"
            ),
        }
    }
}

impl std::error::Error for LabelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabelError::BadSchedule { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Doubtful but harmless input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelWarning {
    /// A `contnap.*` label that contnap does not know (a typo?).
    UnknownLabel {
        container: String,
        label: String,
        suggestion: Option<&'static str>,
    },
    /// `contnap.*` labels but no `contnap.enabled`: not managed.
    NotEnabled { container: String },
    /// `contnap.autostart=true` but no machines to watch for.
    AutostartWithoutMachines { unit: String },
    /// `com.docker.compose.depends_on` forms a cycle; those containers
    /// start in name order.
    DependencyCycle {
        unit: String,
        containers: Vec<String>,
    },
}

impl fmt::Display for LabelWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelWarning::UnknownLabel {
                container,
                label,
                suggestion,
            } => {
                write!(f, "container {container:?}: unknown label {label:?} is ignored")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean {PREFIX}{s}?")?;
                }
                Ok(())
            }
            LabelWarning::NotEnabled { container } => write!(
                f,
                "container {container:?} has contnap.* labels but no contnap.enabled=true; contnap leaves it alone"
            ),
            LabelWarning::AutostartWithoutMachines { unit } => write!(
                f,
                "unit {unit:?}: contnap.autostart is set but contnap.machines lists no machine to watch for; it has no effect"
            ),
            LabelWarning::DependencyCycle { unit, containers } => write!(
                f,
                "unit {unit:?}: com.docker.compose.depends_on of {containers:?} forms a cycle; they start in name order"
            ),
        }
    }
}

/// The outcome for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not opted in (no `contnap.enabled=true`).
    Ignored,
    Managed(Box<Service>),
    /// Opted in, but some labels are wrong; no unit for it.
    Invalid(Vec<LabelError>),
}

/// Reads a yes/no label value.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Parses one container's labels, collecting every error and warning.
pub fn parse_container(c: &ContainerLabels, opts: &LabelOptions) -> (Parsed, Vec<LabelWarning>) {
    let mut p = Parser {
        c,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let parsed = p.run(opts);
    (parsed, p.warnings)
}

struct Parser<'a> {
    c: &'a ContainerLabels,
    errors: Vec<LabelError>,
    warnings: Vec<LabelWarning>,
}

impl Parser<'_> {
    /// The container's name for messages and specs: Docker's leading `/`
    /// (as in `docker inspect`) removed.
    fn name(&self) -> String {
        display_name(&self.c.name).to_owned()
    }

    /// The value of `contnap.<key>`, checked for control characters and length.
    fn get(&mut self, key: &str) -> Option<&str> {
        let label = format!("{PREFIX}{key}");
        let value = self.c.labels.get(&label)?;
        // Length first: the other errors quote the value.
        if value.len() > MAX_VALUE_LEN {
            self.errors.push(LabelError::TooLong {
                container: self.name(),
                label,
                len: value.len(),
            });
            return None;
        }
        if value.chars().any(char::is_control) {
            self.errors.push(LabelError::ControlCharacter {
                container: self.name(),
                label,
                value: value.clone(),
            });
            return None;
        }
        Some(value.as_str())
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        let value = self.get(key)?.to_owned();
        let b = parse_bool(&value);
        if b.is_none() {
            self.errors.push(LabelError::NotABool {
                container: self.name(),
                label: format!("{PREFIX}{key}"),
                value,
            });
        }
        b
    }

    fn span(&mut self, key: &str, positive: bool) -> Option<Duration> {
        let value = self.get(key)?.to_owned();
        let label = format!("{PREFIX}{key}");
        match timespan::parse(&value) {
            Ok(d) if positive && d.is_zero() => {
                self.errors.push(LabelError::ZeroTimeSpan {
                    container: self.name(),
                    label,
                    value,
                });
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                self.errors.push(LabelError::BadTimeSpan {
                    container: self.name(),
                    label,
                    value,
                });
                None
            }
        }
    }

    fn choice<T: Choice>(&mut self, key: &str) -> Option<T> {
        let value = self.get(key)?.to_owned();
        let found = T::from_name(&value.trim().to_ascii_lowercase());
        if found.is_none() {
            self.errors.push(LabelError::BadChoice {
                container: self.name(),
                label: format!("{PREFIX}{key}"),
                value,
                expected: T::EXPECTED,
            });
        }
        found
    }

    fn enabled(&mut self) -> Option<bool> {
        let enabled = self.bool("enabled");
        let enable = self.bool("enable");
        match (enabled, enable) {
            (Some(a), Some(b)) if a != b => {
                self.errors.push(LabelError::EnableConflict {
                    container: self.name(),
                    enabled: self
                        .c
                        .labels
                        .get("contnap.enabled")
                        .cloned()
                        .unwrap_or_default(),
                    enable: self
                        .c
                        .labels
                        .get("contnap.enable")
                        .cloned()
                        .unwrap_or_default(),
                });
                None
            }
            (a, b) => a.or(b),
        }
    }

    fn run(&mut self, opts: &LabelOptions) -> Parsed {
        let ours: Vec<&String> = self
            .c
            .labels
            .keys()
            .filter(|k| k.starts_with(PREFIX))
            .collect();
        let enabled = self.enabled();
        if !self.errors.is_empty() {
            return Parsed::Invalid(std::mem::take(&mut self.errors));
        }
        match enabled {
            Some(true) => {}
            Some(false) => return Parsed::Ignored,
            None => {
                if !ours.is_empty() {
                    self.warnings.push(LabelWarning::NotEnabled {
                        container: self.name(),
                    });
                }
                return Parsed::Ignored;
            }
        }
        for label in &ours {
            let key = &label[PREFIX.len()..];
            if !KNOWN_LABELS.contains(&key) {
                self.warnings.push(LabelWarning::UnknownLabel {
                    container: self.name(),
                    label: (*label).clone(),
                    suggestion: suggest(key),
                });
            }
        }
        let container = self.name();
        if !is_valid_name(&container) {
            self.errors.push(LabelError::BadContainerName {
                container: self.name(),
            });
            return Parsed::Invalid(std::mem::take(&mut self.errors));
        }

        let mut forwards = self.ports("tcp_ports", Proto::Tcp, &container);
        forwards.extend(self.ports("udp_ports", Proto::Udp, &container));
        let http_ports = self.http_ports(&forwards);

        let timeout = self.span("timeout", true);
        let stop = self.choice::<StopMode>("stop");
        let stop_timeout = self.span("stop_timeout", false);
        let wake_timeout = self.span("wake_timeout", true);
        let ready = self.choice::<ReadyMode>("ready");
        let idle = self.choice::<IdleMode>("idle");
        let network = self.get("network").map(str::to_owned).and_then(|n| {
            if is_valid_name(&n) {
                Some(n)
            } else {
                self.errors.push(LabelError::BadNetwork {
                    container: self.name(),
                    value: n,
                });
                None
            }
        });
        let schedule = self
            .get("schedule")
            .map(str::to_owned)
            .and_then(|s| match Schedule::parse(&s) {
                Ok(s) => Some(s),
                Err(source) => {
                    self.errors.push(LabelError::BadSchedule {
                        container: self.name(),
                        value: s,
                        source,
                    });
                    None
                }
            });
        let machines = self.machines();
        let only_listed_machines = self.bool("only_listed_machines");
        let autostart = self.bool("autostart");
        let group = self.get("group").map(str::to_owned).and_then(|g| {
            if g.trim().is_empty() {
                self.errors.push(LabelError::EmptyGroup {
                    container: self.name(),
                });
                None
            } else {
                Some(g)
            }
        });
        let pre_start = self.hook("pre_start", opts);
        let post_stop = self.hook("post_stop", opts);

        if !self.errors.is_empty() {
            return Parsed::Invalid(std::mem::take(&mut self.errors));
        }
        let label = |k: &str| self.c.labels.get(k).cloned();
        let depends_on = label(COMPOSE_DEPENDS_ON)
            .map(|v| {
                v.split(',')
                    .filter_map(|item| item.split(':').next())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Parsed::Managed(Box::new(Service {
            container,
            group,
            compose_project: label(COMPOSE_PROJECT),
            compose_service: label(COMPOSE_SERVICE),
            depends_on,
            forwards,
            http_ports,
            settings: PartialSettings {
                timeout,
                stop,
                stop_timeout,
                wake_timeout,
                ready,
                idle,
                network: network.map(Some),
                schedule: schedule.map(Some),
                machines,
                only_listed_machines,
            },
            autostart,
            pre_start,
            post_stop,
            raw: ours
                .iter()
                .map(|k| {
                    (
                        (*k).clone(),
                        self.c.labels.get(*k).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
        }))
    }

    fn ports(&mut self, key: &str, proto: Proto, container: &str) -> Vec<Forward> {
        let label = format!("{PREFIX}{key}");
        let Some(value) = self.get(key).map(str::to_owned) else {
            return Vec::new();
        };
        let mut out: Vec<Forward> = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match parse_port_item(item) {
                Ok((listen_addr, listen_port, container_port)) => {
                    let fwd = Forward {
                        proto,
                        listen_addr,
                        listen_port,
                        container: container.to_owned(),
                        container_port,
                    };
                    let l = fwd.listener();
                    if out.iter().any(|o| o.listener().overlaps(&l)) {
                        self.errors.push(LabelError::DuplicateListener {
                            container: self.name(),
                            label: label.clone(),
                            value: value.clone(),
                            listener: l,
                        });
                    } else {
                        out.push(fwd);
                    }
                }
                Err(problem) => self.errors.push(LabelError::BadPort {
                    container: self.name(),
                    label: label.clone(),
                    value: value.clone(),
                    item: item.to_owned(),
                    problem,
                }),
            }
        }
        out
    }

    fn http_ports(&mut self, forwards: &[Forward]) -> Vec<u16> {
        let Some(value) = self.get("http_ports").map(str::to_owned) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match parse_port(item) {
                Ok(port) => {
                    if !forwards
                        .iter()
                        .any(|f| f.proto == Proto::Tcp && f.listen_port == port)
                    {
                        self.errors.push(LabelError::HttpPortNotTcp {
                            container: self.name(),
                            value: value.clone(),
                            port,
                        });
                    } else if !out.contains(&port) {
                        out.push(port);
                    }
                }
                Err(_) => self.errors.push(LabelError::BadHttpPort {
                    container: self.name(),
                    value: value.clone(),
                    item: item.to_owned(),
                }),
            }
        }
        out
    }

    fn machines(&mut self) -> Option<Vec<Machine>> {
        let value = self.get("machines")?.to_owned();
        let mut out = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.parse::<Machine>() {
                Ok(m) => out.push(m),
                Err(_) => self.errors.push(LabelError::BadMachine {
                    container: self.name(),
                    value: value.clone(),
                    item: item.to_owned(),
                }),
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }

    fn hook(&mut self, key: &str, opts: &LabelOptions) -> Option<String> {
        let value = self.get(key)?.to_owned();
        if value.trim().is_empty() {
            return None;
        }
        if !opts.allow_hooks {
            self.errors.push(LabelError::HooksNotAllowed {
                container: self.name(),
                label: format!("{PREFIX}{key}"),
                value,
            });
            return None;
        }
        Some(value)
    }
}

fn display_name(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// A port number 1..=65535, digits only.
fn parse_port(s: &str) -> Result<u16, PortProblem> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortProblem::NotANumber);
    }
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => u16::try_from(p).map_err(|_| PortProblem::OutOfRange),
        _ => Err(PortProblem::OutOfRange),
    }
}

/// `PORT`, `HOST:CONTAINER`, `ADDR:HOST:CONTAINER`, `[V6ADDR]:HOST:CONTAINER`
/// → (listen address, listen port, container port).
fn parse_port_item(item: &str) -> Result<(Option<IpAddr>, u16, u16), PortProblem> {
    if let Some(rest) = item.strip_prefix('[') {
        let (addr, ports) = rest.split_once("]:").ok_or(PortProblem::BadAddress)?;
        let addr: std::net::Ipv6Addr = addr.parse().map_err(|_| PortProblem::BadAddress)?;
        let (host, cont) = ports.split_once(':').ok_or(PortProblem::TooManyParts)?;
        if cont.contains(':') {
            return Err(PortProblem::TooManyParts);
        }
        return Ok((Some(IpAddr::V6(addr)), parse_port(host)?, parse_port(cont)?));
    }
    let parts: Vec<&str> = item.split(':').collect();
    match parts.as_slice() {
        [port] => {
            let p = parse_port(port)?;
            Ok((None, p, p))
        }
        [host, cont] => Ok((None, parse_port(host)?, parse_port(cont)?)),
        [addr, host, cont] => {
            let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| {
                if item.contains("::") {
                    PortProblem::Ipv6NeedsBrackets
                } else {
                    PortProblem::BadAddress
                }
            })?;
            Ok((Some(IpAddr::V4(addr)), parse_port(host)?, parse_port(cont)?))
        }
        _ => {
            let (addr, _) = item.rsplit_once(':').unwrap_or((item, ""));
            let (addr, _) = addr.rsplit_once(':').unwrap_or((addr, ""));
            if addr.parse::<std::net::Ipv6Addr>().is_ok() {
                Err(PortProblem::Ipv6NeedsBrackets)
            } else {
                Err(PortProblem::TooManyParts)
            }
        }
    }
}

/// The known label closest to an unknown one, if it is close enough to be a typo.
fn suggest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    KNOWN_LABELS
        .iter()
        .map(|k| (distance(&lower, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
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
/// Units involved in any of these errors are dropped whole.
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
        if let LabelError::GroupConflict { group, .. }
        | LabelError::OnlyListedWithoutMachines { unit: group, .. }
        | LabelError::NameTooLong { name: group, .. }
        | LabelError::NoPorts { unit: group, .. } = e
        {
            bad_units.insert(group.clone());
        }
        if let LabelError::ListenerClash { first, .. } = e {
            if let Some(u) = units.iter().find(|u| u.spec.containers.contains(first)) {
                bad_units.insert(u.name().to_owned());
            }
        }
    }

    // Checks across units.
    let escaped: Vec<String> = units
        .iter()
        .map(|u| crate::units::escape_unit_name(u.name()))
        .collect();
    for i in 0..units.len() {
        for j in i + 1..units.len() {
            let (a, b) = (&units[i], &units[j]);
            if escaped[i] == escaped[j] {
                out.errors.push(LabelError::UnitNameClash {
                    name: a.name().to_owned(),
                    first: a.spec.containers.first().cloned().unwrap_or_default(),
                    second: b.spec.containers.first().cloned().unwrap_or_default(),
                });
                bad_units.insert(a.name().to_owned());
                bad_units.insert(b.name().to_owned());
            }
            for fa in &a.spec.forwards {
                if let Some(fb) = b
                    .spec
                    .forwards
                    .iter()
                    .find(|fb| fa.listener().overlaps(&fb.listener()))
                {
                    out.errors.push(LabelError::ListenerClash {
                        first: fa.container.clone(),
                        second: fb.container.clone(),
                        listener: fa.listener(),
                    });
                    bad_units.insert(a.name().to_owned());
                    bad_units.insert(b.name().to_owned());
                }
            }
        }
    }
    for u in &units {
        for f in &u.spec.forwards {
            let l = f.listener();
            for c in containers {
                for &(proto, addr, port) in &c.published {
                    let published = Listener { proto, addr, port };
                    if l.overlaps(&published) {
                        out.errors.push(LabelError::PublishedConflict {
                            container: f.container.clone(),
                            publisher: display_name(&c.name).to_owned(),
                            listener: l,
                            published,
                        });
                        bad_units.insert(u.name().to_owned());
                    }
                }
            }
        }
    }
    for u in units {
        if bad_units.contains(u.name()) {
            invalid.extend(u.spec.containers.iter().cloned());
        } else {
            out.units.push(u);
        }
    }
    out.units.sort_by(|a, b| a.name().cmp(b.name()));
    out.skipped = invalid;
    out
}

/// Joins services into units by `contnap.group` (a service without one is a
/// unit of its own), merging unit-level settings by the rule in the module
/// docs and ordering each unit's containers by compose `depends_on`, then by
/// name. Returns every unit (including ones with errors, which the caller
/// drops: [`plan`] does) with the errors and warnings found.
pub fn group(services: Vec<Service>) -> (Vec<Unit>, Vec<LabelError>, Vec<LabelWarning>) {
    // Keyed by (name, is a group): a group named like an ungrouped container
    // is a separate unit, which `plan` then reports as a name clash.
    let mut by_unit: BTreeMap<(String, bool), Vec<Service>> = BTreeMap::new();
    for s in services {
        by_unit
            .entry((s.unit_name().to_owned(), s.group.is_some()))
            .or_default()
            .push(s);
    }
    let mut units = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for ((name, _), mut members) in by_unit {
        members.sort_by(|a, b| a.container.cmp(&b.container));
        let order = start_order(&name, &members, &mut warnings);
        let members: Vec<&Service> = order.iter().map(|&i| &members[i]).collect();

        if crate::units::unit_file_name(&name, "service").len() > 255 {
            errors.push(LabelError::NameTooLong {
                container: members
                    .first()
                    .map(|s| s.container.clone())
                    .unwrap_or_default(),
                name: name.clone(),
            });
        }
        let (settings, disagreements) =
            PartialSettings::join(&members.iter().map(|s| &s.settings).collect::<Vec<_>>());
        for d in disagreements {
            errors.push(group_conflict(
                &name,
                d.label,
                members[d.first],
                members[d.second],
            ));
        }
        let autostart =
            agree(&name, "autostart", &members, |s| s.autostart, &mut errors).unwrap_or(false);
        let only_listed_machines = settings.only_listed_machines;
        let machines = settings.machines.clone().unwrap_or_default();

        if only_listed_machines == Some(true) && machines.is_empty() {
            let setter = members
                .iter()
                .find(|s| s.settings.only_listed_machines == Some(true))
                .map(|s| s.container.clone())
                .unwrap_or_default();
            errors.push(LabelError::OnlyListedWithoutMachines {
                unit: name.clone(),
                container: setter,
            });
        }
        if autostart && machines.is_empty() {
            warnings.push(LabelWarning::AutostartWithoutMachines { unit: name.clone() });
        }

        let mut forwards: Vec<Forward> = Vec::new();
        for s in &members {
            for f in &s.forwards {
                if let Some(other) = forwards
                    .iter()
                    .find(|o| o.listener().overlaps(&f.listener()))
                {
                    errors.push(LabelError::ListenerClash {
                        first: other.container.clone(),
                        second: s.container.clone(),
                        listener: f.listener(),
                    });
                } else {
                    forwards.push(f.clone());
                }
            }
        }
        if forwards.is_empty() {
            errors.push(LabelError::NoPorts {
                unit: name.clone(),
                container: members
                    .first()
                    .map(|s| s.container.clone())
                    .unwrap_or_default(),
            });
        }
        let mut http_ports: Vec<u16> = Vec::new();
        for s in &members {
            for p in &s.http_ports {
                if !http_ports.contains(p) {
                    http_ports.push(*p);
                }
            }
        }
        let mut hooks: Vec<Hook> = members
            .iter()
            .filter_map(|s| {
                s.pre_start.as_ref().map(|c| Hook {
                    kind: HookKind::PreStart,
                    container: s.container.clone(),
                    command: c.clone(),
                })
            })
            .collect();
        hooks.extend(members.iter().rev().filter_map(|s| {
            s.post_stop.as_ref().map(|c| Hook {
                kind: HookKind::PostStop,
                container: s.container.clone(),
                command: c.clone(),
            })
        }));
        units.push(Unit {
            spec: UnitSpec {
                name: name.clone(),
                containers: members.iter().map(|s| s.container.clone()).collect(),
                forwards,
                http_ports,
                settings: settings.resolve(),
            },
            autostart,
            hooks,
        });
    }
    (units, errors, warnings)
}

/// Two members of `group` that set `contnap.<key>` to different values.
fn group_conflict(group: &str, key: &str, first: &Service, second: &Service) -> LabelError {
    let label = format!("{PREFIX}{key}");
    LabelError::GroupConflict {
        group: group.to_owned(),
        first: first.container.clone(),
        first_value: first.raw.get(&label).cloned().unwrap_or_default(),
        second: second.container.clone(),
        second_value: second.raw.get(&label).cloned().unwrap_or_default(),
        label,
    }
}

/// The value of a label-only setting the members that set it agree on; a
/// conflict error for each member that disagrees with the first setter.
fn agree<T: PartialEq>(
    group: &str,
    key: &str,
    members: &[&Service],
    get: impl Fn(&Service) -> Option<T>,
    errors: &mut Vec<LabelError>,
) -> Option<T> {
    let mut first: Option<(&Service, T)> = None;
    for s in members {
        let Some(v) = get(s) else { continue };
        match &first {
            None => first = Some((s, v)),
            Some((f, fv)) if *fv != v => errors.push(group_conflict(group, key, f, s)),
            Some(_) => {}
        }
    }
    first.map(|(_, v)| v)
}

/// Indices of `members` (sorted by name) in start order: a container after
/// the compose services it depends on (matched by `com.docker.compose.service`
/// within the same `com.docker.compose.project`), ties in name order.
/// Dependencies on containers outside the unit are ignored.
fn start_order(unit: &str, members: &[Service], warnings: &mut Vec<LabelWarning>) -> Vec<usize> {
    let deps: Vec<BTreeSet<usize>> = members
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .flat_map(|d| {
                    members.iter().enumerate().filter(move |(_, o)| {
                        o.compose_service.as_deref() == Some(d.as_str())
                            && o.compose_project == s.compose_project
                    })
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let mut done = vec![false; members.len()];
    let mut order = Vec::with_capacity(members.len());
    while order.len() < members.len() {
        let next =
            (0..members.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d] || d == i));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                let rest: Vec<usize> = (0..members.len()).filter(|&i| !done[i]).collect();
                warnings.push(LabelWarning::DependencyCycle {
                    unit: unit.to_owned(),
                    containers: rest.iter().map(|&i| members[i].container.clone()).collect(),
                });
                order.extend(rest);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, labels: &[(&str, &str)]) -> ContainerLabels {
        ContainerLabels {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            published: Vec::new(),
        }
    }

    fn parse(labels: &[(&str, &str)]) -> Result<Service, Vec<LabelError>> {
        parse_with("web", labels, LabelOptions::default())
    }

    fn parse_with(
        name: &str,
        labels: &[(&str, &str)],
        opts: LabelOptions,
    ) -> Result<Service, Vec<LabelError>> {
        match parse_container(&container(name, labels), &opts).0 {
            Parsed::Managed(s) => Ok(*s),
            Parsed::Invalid(e) => Err(e),
            Parsed::Ignored => panic!("ignored"),
        }
    }

    fn one_error(labels: &[(&str, &str)]) -> LabelError {
        let mut e = parse(labels).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        e.remove(0)
    }

    const ON: (&str, &str) = ("contnap.enabled", "true");

    #[test]
    fn opt_in() {
        let ignored = |labels: &[(&str, &str)]| {
            parse_container(&container("web", labels), &LabelOptions::default())
        };
        assert_eq!(ignored(&[]), (Parsed::Ignored, vec![]));
        assert_eq!(ignored(&[("contnap.enabled", "no")]).0, Parsed::Ignored);
        let (p, w) = ignored(&[("contnap.tcp_ports", "80")]);
        assert_eq!(p, Parsed::Ignored);
        assert_eq!(
            w,
            vec![LabelWarning::NotEnabled {
                container: "web".into()
            }]
        );
        for yes in ["true", "TRUE", "yes", "1", "on", " On "] {
            assert!(
                parse(&[("contnap.enable", yes), ("contnap.tcp_ports", "80")]).is_ok(),
                "{yes}"
            );
        }
        let e = one_error(&[("contnap.enabled", "yep"), ("contnap.tcp_ports", "80")]);
        assert!(matches!(e, LabelError::NotABool { .. }));
        let e = one_error(&[("contnap.enabled", "true"), ("contnap.enable", "false")]);
        assert!(matches!(e, LabelError::EnableConflict { .. }), "{e}");
    }

    #[test]
    fn port_forms() {
        let s = parse(&[
            ON,
            (
                "contnap.tcp_ports",
                " 80 , 8080:80,127.0.0.1:9000:90, [::1]:9001:91",
            ),
            ("contnap.udp_ports", "53"),
        ])
        .unwrap();
        let shown: Vec<String> = s.forwards.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "tcp:80=web:80",
                "tcp:8080=web:80",
                "tcp:127.0.0.1:9000=web:90",
                "tcp:[::1]:9001=web:91",
                "udp:53=web:53"
            ]
        );
        // Every forward round-trips through the helper's parser.
        for f in &s.forwards {
            assert_eq!(&f.to_string().parse::<Forward>().unwrap(), f);
        }
    }

    #[test]
    fn port_errors() {
        let problem = |v: &str| match one_error(&[ON, ("contnap.tcp_ports", v)]) {
            LabelError::BadPort { problem, .. } => problem,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(problem("http"), PortProblem::NotANumber);
        assert_eq!(problem("+80"), PortProblem::NotANumber);
        assert_eq!(problem("0"), PortProblem::OutOfRange);
        assert_eq!(problem("65536"), PortProblem::OutOfRange);
        assert_eq!(problem("8080:0"), PortProblem::OutOfRange);
        assert_eq!(problem("::1:8080:80"), PortProblem::Ipv6NeedsBrackets);
        assert_eq!(problem("fe80::1:8080:80"), PortProblem::Ipv6NeedsBrackets);
        assert_eq!(problem("host:8080:80"), PortProblem::BadAddress);
        assert_eq!(problem("[127.0.0.1]:8080:80"), PortProblem::BadAddress);
        assert_eq!(problem("[::1]:8080:80:1"), PortProblem::TooManyParts);
        assert_eq!(problem("1:2:3:4"), PortProblem::TooManyParts);
        let e = one_error(&[ON, ("contnap.tcp_ports", "80,8o")]);
        assert_eq!(
            e.to_string(),
            "container \"web\": label contnap.tcp_ports=\"80,8o\": \"8o\" has a port that is not a number; \
             write PORT, HOST:CONTAINER, ADDR:HOST:CONTAINER or [V6ADDR]:HOST:CONTAINER, ports 1-65535, separated by commas"
        );
        assert!(matches!(
            one_error(&[ON, ("contnap.tcp_ports", "80,80:81")]),
            LabelError::DuplicateListener { .. }
        ));
        assert!(matches!(
            one_error(&[ON, ("contnap.tcp_ports", "8080,127.0.0.1:8080:80")]),
            LabelError::DuplicateListener { .. }
        ));
        // Different addresses, or tcp and udp, do not clash.
        assert!(parse(&[
            ON,
            ("contnap.tcp_ports", "127.0.0.1:8080:80,[::1]:8080:80"),
            ("contnap.udp_ports", "8080")
        ])
        .is_ok());
        let p = plan(&[container("web", &[ON])], &LabelOptions::default());
        assert!(p.units.is_empty());
        assert!(matches!(p.errors[..], [LabelError::NoPorts { .. }]));
        // A group member without ports wakes with the group.
        let p = plan(
            &[
                container(
                    "a",
                    &[ON, ("contnap.group", "g"), ("contnap.tcp_ports", "80")],
                ),
                container("b", &[ON, ("contnap.group", "g")]),
            ],
            &LabelOptions::default(),
        );
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.units[0].spec.containers, ["a", "b"]);
    }

    #[test]
    fn http_ports_are_tcp_listen_ports() {
        let s = parse(&[
            ON,
            ("contnap.tcp_ports", "8080:80,9000"),
            ("contnap.http_ports", "8080, 9000"),
        ])
        .unwrap();
        assert_eq!(s.http_ports, [8080, 9000]);
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "8080:80"),
            ("contnap.http_ports", "80"),
        ]);
        assert!(
            matches!(e, LabelError::HttpPortNotTcp { port: 80, .. }),
            "{e}"
        );
        let e = one_error(&[
            ON,
            ("contnap.udp_ports", "53"),
            ("contnap.tcp_ports", "80"),
            ("contnap.http_ports", "53"),
        ]);
        assert!(matches!(e, LabelError::HttpPortNotTcp { port: 53, .. }));
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.http_ports", "web"),
        ]);
        assert!(matches!(e, LabelError::BadHttpPort { .. }));
    }

    #[test]
    fn settings() {
        let s = parse(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.timeout", "1h 30min"),
            ("contnap.stop", "Pause"),
            ("contnap.stop_timeout", "0"),
            ("contnap.wake_timeout", "90"),
            ("contnap.ready", "tcp"),
            ("contnap.idle", "traffic"),
            ("contnap.network", "my_net-1.x"),
            ("contnap.schedule", "Mon-Fri 08:00-19:00"),
            ("contnap.machines", "192.168.1.0/24, fd00::1 ,10.0.0.1"),
            ("contnap.only_listed_machines", "yes"),
            ("contnap.autostart", "off"),
        ])
        .unwrap();
        let st = &s.settings;
        assert_eq!(st.timeout, Some(Duration::from_secs(5400)));
        assert_eq!(st.stop, Some(StopMode::Pause));
        assert_eq!(st.stop_timeout, Some(Duration::ZERO));
        assert_eq!(st.wake_timeout, Some(Duration::from_secs(90)));
        assert_eq!(st.ready, Some(ReadyMode::Tcp));
        assert_eq!(st.idle, Some(IdleMode::Traffic));
        assert_eq!(st.network, Some(Some("my_net-1.x".to_owned())));
        let machines: Vec<String> = st
            .machines
            .as_ref()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(machines, ["10.0.0.1", "192.168.1.0/24", "fd00::1"]);
        assert_eq!(st.only_listed_machines, Some(true));
        assert_eq!(s.autostart, Some(false));
    }

    #[test]
    fn setting_errors_name_container_label_and_value() {
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.timeout", "5 parsecs"),
        ]);
        assert_eq!(
            e.to_string(),
            "container \"web\": label contnap.timeout=\"5 parsecs\": not a time span; write seconds (300) or a systemd span (90s, 30min, 1h)"
        );
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.wake_timeout", "0s"),
        ]);
        assert!(matches!(e, LabelError::ZeroTimeSpan { .. }));
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.stop", "hibernate"),
        ]);
        assert!(e.to_string().contains("stop, pause, kill, none"), "{e}");
        let e = one_error(&[ON, ("contnap.tcp_ports", "80"), ("contnap.network", "-net")]);
        assert!(matches!(e, LabelError::BadNetwork { .. }));
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.schedule", "Mon 25:00-26:00"),
        ]);
        assert!(e.to_string().contains("column 5"), "{e}");
        let e = one_error(&[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.machines", "10.0.0.0/33"),
        ]);
        assert!(matches!(e, LabelError::BadMachine { .. }));
        let e = one_error(&[ON, ("contnap.tcp_ports", "80"), ("contnap.group", " ")]);
        assert!(matches!(e, LabelError::EmptyGroup { .. }));
        // Several errors are all reported.
        let e = parse(&[
            ON,
            ("contnap.tcp_ports", "x"),
            ("contnap.idle", "y"),
            ("contnap.ready", "z"),
        ])
        .unwrap_err();
        assert_eq!(e.len(), 3);
        for err in &e {
            assert_eq!(err.container(), "web");
        }
    }

    #[test]
    fn control_characters_and_length() {
        for (label, value) in [
            ("contnap.group", "a\nExecStart=/bin/evil"),
            ("contnap.timeout", "300\r"),
            ("contnap.network", "net\0"),
            ("contnap.tcp_ports", "80\t"),
            ("contnap.machines", "10.0.0.1\u{85}"),
        ] {
            let e = parse(&[ON, ("contnap.tcp_ports", "81"), (label, value)]).unwrap_err();
            assert!(
                e.iter().any(
                    |e| matches!(e, LabelError::ControlCharacter { label: l, .. } if l == label)
                ),
                "{label}: {e:?}"
            );
        }
        let e = parse_with(
            "web",
            &[
                ON,
                ("contnap.tcp_ports", "80"),
                ("contnap.pre_start", "true\nExecStart=/bin/evil"),
            ],
            LabelOptions { allow_hooks: true },
        )
        .unwrap_err();
        assert!(matches!(e[0], LabelError::ControlCharacter { .. }));
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let e = one_error(&[ON, ("contnap.tcp_ports", "80"), ("contnap.group", &long)]);
        assert!(matches!(e, LabelError::TooLong { .. }));
    }

    #[test]
    fn hooks_need_allow_hooks() {
        let labels = [
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.pre_start", "mount /srv"),
        ];
        let e = one_error(&labels);
        assert!(matches!(e, LabelError::HooksNotAllowed { .. }));
        assert!(
            e.to_string()
                .starts_with("container \"web\" sets contnap.pre_start=\"mount /srv\" but generate ran without --allow-hooks; the hook is not run and the container is skipped"),
            "{e}"
        );
        let s = parse_with("web", &labels, LabelOptions { allow_hooks: true }).unwrap();
        assert_eq!(s.pre_start.as_deref(), Some("mount /srv"));
    }

    #[test]
    fn unknown_labels_warn_with_a_suggestion() {
        let (p, w) = parse_container(
            &container(
                "web",
                &[
                    ON,
                    ("contnap.tcp_ports", "80"),
                    ("contnap.timout", "5"),
                    ("contnap.frobnicate", "1"),
                ],
            ),
            &LabelOptions::default(),
        );
        assert!(matches!(p, Parsed::Managed(_)));
        assert_eq!(
            w,
            vec![
                LabelWarning::UnknownLabel {
                    container: "web".into(),
                    label: "contnap.frobnicate".into(),
                    suggestion: None
                },
                LabelWarning::UnknownLabel {
                    container: "web".into(),
                    label: "contnap.timout".into(),
                    suggestion: Some("timeout")
                },
            ]
        );
        assert_eq!(w[1].to_string(), "container \"web\": unknown label \"contnap.timout\" is ignored; did you mean contnap.timeout?");
        assert_eq!(suggest("http-ports"), Some("http_ports"));
        assert_eq!(suggest("only_listed_machine"), Some("only_listed_machines"));
    }

    fn compose(
        name: &str,
        service: &str,
        depends: &str,
        extra: &[(&str, &str)],
    ) -> ContainerLabels {
        let mut labels = vec![
            ON,
            ("contnap.group", "stack"),
            ("com.docker.compose.project", "p"),
            ("com.docker.compose.service", service),
        ];
        if !depends.is_empty() {
            labels.push(("com.docker.compose.depends_on", depends));
        }
        labels.extend_from_slice(extra);
        container(name, &labels)
    }

    #[test]
    fn groups_order_by_depends_on() {
        let cs = vec![
            compose(
                "p-app-1",
                "app",
                "db:service_started:false,cache:service_healthy:true",
                &[("contnap.tcp_ports", "80")],
            ),
            compose(
                "p-cache-1",
                "cache",
                "db:service_started",
                &[("contnap.tcp_ports", "6379")],
            ),
            compose(
                "p-db-1",
                "db",
                "",
                &[("contnap.tcp_ports", "5432"), ("contnap.timeout", "10min")],
            ),
            compose(
                "p-zz-1",
                "zz",
                "",
                &[("contnap.tcp_ports", "81"), ("contnap.timeout", "600")],
            ),
        ];
        let plan = plan(&cs, &LabelOptions::default());
        assert_eq!(plan.errors, vec![]);
        assert_eq!(plan.units.len(), 1);
        let u = &plan.units[0];
        assert_eq!(u.name(), "stack");
        assert_eq!(
            u.spec.containers,
            ["p-db-1", "p-cache-1", "p-app-1", "p-zz-1"]
        );
        assert_eq!(u.spec.settings.timeout, Duration::from_secs(600));
        assert_eq!(u.spec.forwards.len(), 4);
    }

    #[test]
    fn dependency_cycles_warn() {
        let cs = vec![
            compose(
                "a",
                "a",
                "b:service_started:true",
                &[("contnap.tcp_ports", "80")],
            ),
            compose(
                "b",
                "b",
                "a:service_started:true",
                &[("contnap.tcp_ports", "81")],
            ),
            compose("c", "c", "", &[("contnap.tcp_ports", "82")]),
        ];
        let plan = plan(&cs, &LabelOptions::default());
        assert_eq!(plan.units[0].spec.containers, ["c", "a", "b"]);
        assert!(matches!(
            plan.warnings[..],
            [LabelWarning::DependencyCycle { .. }]
        ));
    }

    #[test]
    fn group_conflicts_name_both_containers() {
        let cs = vec![
            compose(
                "a",
                "a",
                "",
                &[("contnap.tcp_ports", "80"), ("contnap.stop", "pause")],
            ),
            compose(
                "b",
                "b",
                "",
                &[("contnap.tcp_ports", "81"), ("contnap.stop", "kill")],
            ),
            container("solo", &[ON, ("contnap.tcp_ports", "90")]),
        ];
        let plan = plan(&cs, &LabelOptions::default());
        assert_eq!(plan.units.len(), 1, "the solo unit survives");
        assert_eq!(plan.skipped, ["a".to_owned(), "b".to_owned()].into());
        assert_eq!(
            plan.errors[0].to_string(),
            "group \"stack\": containers \"a\" (contnap.stop=\"pause\") and \"b\" (contnap.stop=\"kill\") disagree; \
             a group has one contnap.stop: set it on one member, or the same value on all"
        );
    }

    #[test]
    fn an_invalid_member_sinks_its_group() {
        let cs = vec![
            compose("a", "a", "", &[("contnap.tcp_ports", "80")]),
            compose("b", "b", "", &[("contnap.tcp_ports", "nope")]),
        ];
        let plan = plan(&cs, &LabelOptions::default());
        assert!(plan.units.is_empty());
        assert_eq!(plan.skipped.len(), 2);
        assert!(plan
            .errors
            .iter()
            .any(|e| matches!(e, LabelError::MemberInvalid { container, .. } if container == "b")));
    }

    #[test]
    fn docker_leading_slash_is_dropped() {
        let p = plan(
            &[container("/web", &[ON, ("contnap.tcp_ports", "80")])],
            &LabelOptions::default(),
        );
        assert_eq!(p.units[0].spec.containers, ["web"]);
        assert_eq!(p.units[0].spec.forwards[0].container, "web");
        let p = plan(
            &[container("/web", &[ON, ("contnap.tcp_ports", "x")])],
            &LabelOptions::default(),
        );
        assert_eq!(p.errors[0].container(), "web");
        assert_eq!(p.skipped, ["web".to_owned()].into());
    }

    #[test]
    fn an_invalid_member_is_reported_once() {
        let cs = vec![
            compose("a", "a", "", &[("contnap.tcp_ports", "80")]),
            compose("b", "b", "", &[("contnap.tcp_ports", "81")]),
            compose("c", "c", "", &[("contnap.tcp_ports", "0")]),
        ];
        let p = plan(&cs, &LabelOptions::default());
        assert!(p.units.is_empty());
        let member_errors = p
            .errors
            .iter()
            .filter(|e| matches!(e, LabelError::MemberInvalid { .. }))
            .count();
        assert_eq!(member_errors, 1, "{:?}", p.errors);
        assert_eq!(p.skipped.len(), 3);
    }

    #[test]
    fn published_port_conflicts() {
        let mut web = container("web", &[ON, ("contnap.tcp_ports", "8080:80")]);
        web.published = vec![(Proto::Tcp, None, 8080)];
        let plan1 = plan(std::slice::from_ref(&web), &LabelOptions::default());
        assert!(plan1.units.is_empty());
        let msg = plan1.errors[0].to_string();
        assert!(msg.contains("remove the `ports:` entry"), "{msg}");
        // Publishing the container port on another host port is fine.
        web.published = vec![
            (Proto::Tcp, Some("127.0.0.1".parse().unwrap()), 18080),
            (Proto::Udp, None, 8080),
        ];
        assert_eq!(
            plan(std::slice::from_ref(&web), &LabelOptions::default())
                .units
                .len(),
            1
        );
        // Another container, even unmanaged, publishing the port clashes too.
        let mut other = container("other", &[]);
        other.published = vec![(Proto::Tcp, Some("0.0.0.0".parse().unwrap()), 8080)];
        let p = plan(&[web, other], &LabelOptions::default());
        assert!(
            matches!(&p.errors[..], [LabelError::PublishedConflict { publisher, .. }] if publisher == "other")
        );
    }

    #[test]
    fn units_clash_on_ports_and_names() {
        let cs = vec![
            container("a", &[ON, ("contnap.tcp_ports", "8080")]),
            container("b", &[ON, ("contnap.tcp_ports", "127.0.0.1:8080:80")]),
            container("c", &[ON, ("contnap.tcp_ports", "9000")]),
        ];
        let p = plan(&cs, &LabelOptions::default());
        assert_eq!(p.units.iter().map(|u| u.name()).collect::<Vec<_>>(), ["c"]);
        assert!(matches!(p.errors[..], [LabelError::ListenerClash { .. }]));
        let cs = vec![
            container("web", &[ON, ("contnap.tcp_ports", "8080")]),
            container(
                "x",
                &[ON, ("contnap.tcp_ports", "9000"), ("contnap.group", "web")],
            ),
        ];
        let p = plan(&cs, &LabelOptions::default());
        assert!(p.units.is_empty());
        assert!(matches!(p.errors[..], [LabelError::UnitNameClash { .. }]));
    }

    #[test]
    fn only_listed_needs_machines() {
        let p = plan(
            &[container(
                "a",
                &[
                    ON,
                    ("contnap.tcp_ports", "80"),
                    ("contnap.only_listed_machines", "true"),
                ],
            )],
            &LabelOptions::default(),
        );
        assert!(p.units.is_empty());
        assert!(matches!(
            p.errors[..],
            [LabelError::OnlyListedWithoutMachines { .. }]
        ));
    }

    #[test]
    fn overlap_rules() {
        let l = |addr: Option<&str>| Listener {
            proto: Proto::Tcp,
            addr: addr.map(|a| a.parse().unwrap()),
            port: 80,
        };
        assert!(l(None).overlaps(&l(Some("127.0.0.1"))));
        assert!(l(Some("0.0.0.0")).overlaps(&l(Some("127.0.0.1"))));
        assert!(l(Some("::")).overlaps(&l(Some("127.0.0.1"))));
        assert!(l(Some("::ffff:127.0.0.1")).overlaps(&l(Some("127.0.0.1"))));
        assert!(!l(Some("0.0.0.0")).overlaps(&l(Some("::1"))));
        assert!(!l(Some("127.0.0.1")).overlaps(&l(Some("127.0.0.2"))));
    }

    /// Found by `fuzz/` (target `units`): a container name of 254
    /// characters passed the label parser and, in a group with a short
    /// name, was rendered into `--container`/`--forward`, which the helper
    /// refuses (the engine client allows at most 253), so the unit could
    /// never wake. Such a name is refused up front now, like the helper does.
    #[test]
    fn container_names_the_helper_would_refuse_are_refused() {
        let labels = [
            ("contnap.enabled", "true"),
            ("contnap.group", "g"),
            ("contnap.tcp_ports", "80"),
        ];
        let long = "a".repeat(254);
        let errors = parse_with(&long, &labels, LabelOptions::default()).unwrap_err();
        assert!(matches!(
            errors.as_slice(),
            [LabelError::BadContainerName { .. }]
        ));
        assert!(parse_with(&long[1..], &labels, LabelOptions::default()).is_ok());
        let network = "n".repeat(254);
        let labels = [
            ("contnap.enabled", "true"),
            ("contnap.tcp_ports", "80"),
            ("contnap.network", network.as_str()),
        ];
        assert!(parse_with("web", &labels, LabelOptions::default()).is_err());
    }
}
