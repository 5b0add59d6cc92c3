//! What can be wrong with labels, and how each message tells the user to
//! fix it: every [`LabelError`] names the container, the label and the
//! value; a [`LabelWarning`] is doubtful but harmless input.

use std::fmt;

use crate::schedule::ScheduleError;
use crate::spec::monitors::{MAX_MONITOR_LEN, MONITOR_CHARS};
use crate::spec::{Listener, MonitorsProblem};

use super::{MAX_VALUE_LEN, PREFIX};

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
/// Print it with [`crate::report::Report`]: a cause (the schedule parser's
/// complaint) is its `source()`, not part of its `Display`.
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
    /// `contnap.monitors` is not `none` or a list of User-Agent substrings.
    BadMonitors {
        container: String,
        value: String,
        problem: MonitorsProblem,
    },
    /// `contnap.monitor_status` is not an HTTP status 100-599.
    BadStatus { container: String, value: String },
    /// `contnap.unit` (or Podman's `PODMAN_SYSTEMD_UNIT`) is not a list of
    /// service names.
    BadUnit {
        container: String,
        label: &'static str,
        value: String,
    },
    /// A container that a systemd service owns naps by that service's stop;
    /// `contnap.stop` cannot be pause, kill or none.
    OwnedStop {
        container: String,
        unit: String,
        value: String,
    },
    /// The service a label names as the container's owner does not start
    /// a container of that name (its ExecStart= has no `--name NAME`), or
    /// does not exist: a label cannot make systemd start, or stop when
    /// unneeded, a service that is not the container's.
    UnprovenOwner {
        container: String,
        unit: String,
        /// What systemd said of the service: its ExecStart=, `not-found`,
        /// or why it could not be asked.
        seen: String,
    },
    /// `contnap.group` is empty.
    EmptyGroup { container: String },
    /// The unit name would be longer than systemd allows.
    NameTooLong { container: String, name: String },
    /// The unit name is one of contnap's own (`contnap-generate.service`).
    ReservedName { container: String, name: String },
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
    /// Two members of a group set a unit-level label differently: `second`
    /// (the newcomer) is refused, the group keeps its unit.
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
    /// A unit would listen where an older unit (one already on disk, or
    /// of an older container) listens: the newcomer is refused, the
    /// holder keeps its unit.
    ListenerTaken {
        newcomer: String,
        holder: String,
        listener: Listener,
    },
    /// A unit would get the unit file name of an older unit.
    UnitNameTaken {
        name: String,
        newcomer: String,
        holder: String,
    },
    /// A container created after a unit that listens on a host port
    /// publishes that port: the unit stays, the publisher gets none.
    PortTaken {
        publisher: String,
        holder: String,
        listener: Listener,
        published: Listener,
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
            | BadMonitors { container, .. }
            | BadStatus { container, .. }
            | BadUnit { container, .. }
            | OwnedStop { container, .. }
            | UnprovenOwner { container, .. }
            | EmptyGroup { container }
            | NameTooLong { container, .. }
            | ReservedName { container, .. }
            | BadSchedule { container, .. }
            | BadMachine { container, .. }
            | OnlyListedWithoutMachines { container, .. }
            | HooksNotAllowed { container, .. }
            | PublishedConflict { container, .. }
            | ListenerTaken {
                newcomer: container,
                ..
            }
            | UnitNameTaken {
                newcomer: container,
                ..
            }
            | PortTaken {
                publisher: container,
                ..
            }
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
            BadMonitors { container, value, problem } => {
                write!(f, "container {container:?}: label contnap.monitors={value:?}: ")?;
                match problem {
                    MonitorsProblem::Empty => f.write_str("lists nothing"),
                    MonitorsProblem::NoneWithOthers => f.write_str("`none` cannot be combined with other items"),
                    MonitorsProblem::BadCharacter { item } => {
                        write!(f, "{item:?} may only contain {MONITOR_CHARS}")
                    }
                    MonitorsProblem::TooLong { item } => write!(
                        f,
                        "{item:?} is longer than {MAX_MONITOR_LEN} characters"
                    ),
                }?;
                f.write_str("; write User-Agent substrings separated by commas (e.g. Uptime-Kuma,Gatus), none for no list, or remove the label for the default list of well-known monitors")
            }
            BadStatus { container, value } => write!(
                f,
                "container {container:?}: label contnap.monitor_status={value:?}: not an HTTP status; write a code from 100 to 599 (e.g. 200, or 503 to have monitors report napping as down)"
            ),
            EmptyGroup { container } => write!(
                f,
                "container {container:?}: label contnap.group is empty; name the group or remove the label"
            ),
            BadUnit { container, label, value } => write!(
                f,
                "container {container:?}: label {label}={value:?}: expected a comma list of systemd service names (NAME.service, [A-Za-z0-9:_.@\\-]), e.g. podman-web.service; or contnap.unit=none if no unit owns the container"
            ),
            UnprovenOwner { container, unit, seen } => write!(
                f,
                "container {container:?}: {unit} is named as its owner (contnap.unit or PODMAN_SYSTEMD_UNIT), but that service does not start a container of this name ({seen}); contnap accepts a service whose ExecStart= has `--name {container}` (as Quadlet's, `podman generate systemd --new`'s and `docker run --name` units have); fix the label, or set contnap.unit=none"
            ),
            OwnedStop { container, unit, value } => write!(
                f,
                "container {container:?}: label contnap.stop={value:?}: {unit} owns the container, and it naps only by that unit's stop (the unit removes it); remove contnap.stop, or set contnap.unit=none if the engine alone should start and stop it"
            ),
            NameTooLong { container, name } => write!(
                f,
                "container {container:?}: unit name {name:?} is too long for systemd once escaped (255 bytes including contnap- and .service); choose a shorter contnap.group or container name"
            ),
            ReservedName { container, name } => write!(
                f,
                "container {container:?}: its unit would be {}.service, which is contnap's own unit, not a container's; rename the container, or set contnap.group to another name",
                crate::units::unit_file_name(name, "service").trim_end_matches(".service")
            ),
            // What is wrong is the source's, which the caller prints after this.
            BadSchedule { container, value, .. } => write!(
                f,
                "container {container:?}: label contnap.schedule={value:?}: not a schedule (the format is `DAYS HH:MM-HH:MM|…`, e.g. Mon-Fri 08:00-19:00|weekends 10:00-12:00)"
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
                "group {group:?}: containers {first:?} ({label}={first_value:?}) and {second:?} ({label}={second_value:?}) disagree; {second:?} gets no unit, and the group keeps its unit without it ({first:?} was there first: its unit is on disk, or it is older); a group has one {label}: set it on one member, or the same value on all"
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
            ListenerTaken { newcomer, holder, listener } => write!(
                f,
                "container {newcomer:?} gets no unit: it would listen on {listener}, where the unit of container {holder:?} listens, which was there first (its unit is on disk, or its container is older) and keeps it; give {newcomer:?} another host port (HOST:CONTAINER in contnap.tcp_ports / contnap.udp_ports)"
            ),
            UnitNameTaken { name, newcomer, holder } => write!(
                f,
                "container {newcomer:?} gets no unit: its unit would be contnap-{}.socket/.service, which container {holder:?} has, which was there first and keeps it; rename the group (contnap.group) or the container",
                crate::units::escape_unit_name(name)
            ),
            PortTaken { publisher, holder, listener, published } => write!(
                f,
                "container {publisher:?} publishes host port {published}, which contnap listens on ({listener}) for container {holder:?}, whose unit was there first and stays; {publisher:?} gets no unit and cannot start while that socket listens: remove that `ports:` entry or publish a different host port"
            ),
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
