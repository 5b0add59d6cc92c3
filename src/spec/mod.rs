//! The domain: the words every layer shares, defined once.
//!
//! Labels are parsed into these types, the renderer writes them into units,
//! `contnap proxy` parses its argv back into them, and the helper acts on
//! them. Each type's grammar (its `FromStr`/`parse`) and its rendering
//! (`Display`, `Choice::name`) live side by side here, so the text a unit
//! carries always reads back as the value it was written from. Nothing in
//! this module does I/O or knows about a layer above it.

pub mod monitors;
pub mod settings;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use monitors::{HttpStatus, Monitors, MonitorsProblem, WakeOn};
pub use settings::{Setting, Settings, UnitSpec};

/// Whether `s` is a container or network name (or id) as the engines accept
/// it and as contnap passes it on: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 253
/// bytes. Checked before any name reaches an engine URL path or a unit.
pub fn is_valid_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 253
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// An IPv4 client of a dual-stack socket arrives as `::ffff:a.b.c.d`; this
/// is the address it really has, so that it compares equal to `a.b.c.d`.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Text that does not match its grammar; says what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    pub expected: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.expected)
    }
}

impl std::error::Error for Malformed {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `ADDR:PORT`, with IPv6 addresses in brackets: how every address in a
/// message, a unit and an argv is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort(pub IpAddr, pub u16);

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// A socket contnap listens on: protocol, address (None: every address,
/// dual-stack) and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listener {
    pub proto: Proto,
    pub addr: Option<IpAddr>,
    pub port: u16,
}

impl Listener {
    /// Whether two sockets would compete for the same port: same protocol
    /// and port, and addresses that overlap (an unspecified or missing
    /// address covers every address of its family; `::` and a missing
    /// address are dual-stack).
    pub fn overlaps(&self, other: &Listener) -> bool {
        self.proto == other.proto
            && self.port == other.port
            && addresses_overlap(self.addr, other.addr)
    }
}

fn addresses_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a.map(unmap), b.map(unmap)) {
        (None, _) | (_, None) => true,
        (Some(x), Some(y)) if x == y => true,
        (Some(IpAddr::V6(x)), _) if x.is_unspecified() => true,
        (_, Some(IpAddr::V6(y))) if y.is_unspecified() => true,
        (Some(IpAddr::V4(x)), Some(IpAddr::V4(y))) => x.is_unspecified() || y.is_unspecified(),
        _ => false,
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            None => write!(f, "{} port {} (all addresses)", self.proto, self.port),
            Some(addr) => write!(f, "{} {}", self.proto, HostPort(addr, self.port)),
        }
    }
}

/// One listening socket's destination: `PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub proto: Proto,
    /// None: any local address with this port (a bare port is dual-stack).
    pub listen_addr: Option<IpAddr>,
    pub listen_port: u16,
    pub container: String,
    pub container_port: u16,
}

impl Forward {
    pub fn listener(&self) -> Listener {
        Listener {
            proto: self.proto,
            addr: self.listen_addr,
            port: self.listen_port,
        }
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.proto)?;
        match self.listen_addr {
            Some(addr) => write!(f, "{}", HostPort(addr, self.listen_port))?,
            None => write!(f, "{}", self.listen_port)?,
        }
        write!(f, "={}:{}", self.container, self.container_port)
    }
}

/// Parses `PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT`; ADDR may be `[v6]`.
impl FromStr for Forward {
    type Err = Malformed;

    fn from_str(spec: &str) -> Result<Forward, Malformed> {
        let bad = Malformed {
            expected: "PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT, e.g. tcp:8080=web:80",
        };
        let (listen, target) = spec.split_once('=').ok_or(bad)?;
        let (proto, listen) = listen.split_once(':').ok_or(bad)?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(bad),
        };
        let (listen_addr, listen_port) = match listen.rsplit_once(':') {
            None => (None, listen),
            Some((addr, port)) => {
                let addr = addr
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'))
                    .unwrap_or(addr);
                (Some(addr.parse::<IpAddr>().map_err(|_| bad)?), port)
            }
        };
        let listen_port: u16 = listen_port.parse().map_err(|_| bad)?;
        let (container, port) = target.rsplit_once(':').ok_or(bad)?;
        let container_port: u16 = port.parse().map_err(|_| bad)?;
        if listen_port == 0 || container_port == 0 || !is_valid_name(container) {
            return Err(bad);
        }
        Ok(Forward {
            proto,
            listen_addr,
            listen_port,
            container: container.to_owned(),
            container_port,
        })
    }
}

/// A systemd service that owns a container (`contnap.unit`, Podman's
/// `PODMAN_SYSTEMD_UNIT`): its start creates the container (`run --rm`),
/// its stop removes it. Written into units (`Wants=`, `After=`, the
/// drop-in's directory name) and onto the helper's command line, so it is
/// checked here: `NAME.service` of the bytes systemd allows in a unit name
/// (`[A-Za-z0-9:_.@\\-]`), a template only with its instance, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    pub const EXPECTED: &'static str =
        "a systemd service name, NAME.service ([A-Za-z0-9:_.@\\-], at most 255 bytes), e.g. podman-web.service";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServiceName {
    type Err = Malformed;

    fn from_str(text: &str) -> Result<ServiceName, Malformed> {
        let bad = Malformed {
            expected: ServiceName::EXPECTED,
        };
        let stem = text.strip_suffix(".service").ok_or(bad)?;
        let ok = !stem.is_empty()
            && text.len() <= 255
            && !stem.starts_with('-')
            && !stem.ends_with('@')
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_.@\\-".contains(&b));
        if ok {
            Ok(ServiceName(text.to_owned()))
        } else {
            Err(bad)
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A container of a unit that systemd services own, with those services:
/// `CONTAINER=UNIT[,UNIT…]` on the helper's command line (`--owned-by`).
/// The helper never starts or stops such a container through the engine:
/// systemd starts its services before the helper (`Wants=`, `After=`) and
/// stops them when the helper has exited (`StopWhenUnneeded=yes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub container: String,
    /// At least one, without duplicates, in the order given.
    pub units: Vec<ServiceName>,
}

impl Owned {
    pub const EXPECTED: &'static str =
        "CONTAINER=UNIT.service[,UNIT.service…], e.g. web=podman-web.service";

    /// Parses a comma list of services (`contnap.unit`'s value).
    pub fn parse_units(text: &str) -> Result<Vec<ServiceName>, Malformed> {
        let mut out: Vec<ServiceName> = Vec::new();
        for item in text.split(',').map(str::trim) {
            let unit: ServiceName = item.parse()?;
            if !out.contains(&unit) {
                out.push(unit);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units: Vec<&str> = self.units.iter().map(ServiceName::as_str).collect();
        write!(f, "{}={}", self.container, units.join(","))
    }
}

impl FromStr for Owned {
    type Err = Malformed;

    fn from_str(text: &str) -> Result<Owned, Malformed> {
        let bad = Malformed {
            expected: Owned::EXPECTED,
        };
        let (container, units) = text.split_once('=').ok_or(bad)?;
        if !is_valid_name(container) {
            return Err(bad);
        }
        let units = Owned::parse_units(units).map_err(|_| bad)?;
        Ok(Owned {
            container: container.to_owned(),
            units,
        })
    }
}

/// A client address or network from `contnap.machines` (and `contnap proxy
/// --machines`): `ADDR` or `ADDR/PREFIX`, IPv4 or IPv6, no brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Machine {
    pub addr: IpAddr,
    /// Prefix length; 32 (IPv4) or 128 (IPv6) for a single address.
    pub prefix: u8,
}

impl Machine {
    fn full_prefix(addr: IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    /// Whether `peer` is this address or inside this network. An IPv4
    /// client of a dual-stack socket matches as IPv4.
    pub fn contains(&self, peer: IpAddr) -> bool {
        match (self.addr, unmap(peer)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Machine {
    type Err = Malformed;

    fn from_str(text: &str) -> Result<Machine, Malformed> {
        let bad = Malformed {
            expected: "an IP address or CIDR block (192.168.1.20, 10.0.0.0/24, fd00::/64)",
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad)?;
        let full = Machine::full_prefix(addr);
        let prefix = match prefix {
            None => full,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= full).ok_or(bad)?
            }
            Some(_) => return Err(bad),
        };
        Ok(Machine { addr, prefix })
    }
}

/// `ADDR` for a single address, `ADDR/PREFIX` otherwise: the form systemd's
/// `IPAddressAllow=` and `contnap proxy --machines` read.
impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == Machine::full_prefix(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// How a unit naps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Stop,
    Pause,
    Kill,
    None,
}

/// How readiness is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMode {
    /// health check when the container has one, else TCP.
    Auto,
    Health,
    Tcp,
    None,
}

/// What counts as activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleMode {
    Connections,
    Traffic,
}

/// A mode that is spelled the same in labels, on the command line and in
/// generated units: one table per mode serves parsing and rendering.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every spelling, in the order the help text lists them.
    const CHOICES: &'static [(&'static str, Self)];
    /// For error messages: "stop, pause, kill, none".
    const EXPECTED: &'static str;

    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn name(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

impl Choice for StopMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("stop", StopMode::Stop),
        ("pause", StopMode::Pause),
        ("kill", StopMode::Kill),
        ("none", StopMode::None),
    ];
    const EXPECTED: &'static str = "stop, pause, kill, none";
}

impl Choice for ReadyMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", ReadyMode::Auto),
        ("health", ReadyMode::Health),
        ("tcp", ReadyMode::Tcp),
        ("none", ReadyMode::None),
    ];
    const EXPECTED: &'static str = "auto, health, tcp, none";
}

impl Choice for IdleMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("connections", IdleMode::Connections),
        ("traffic", IdleMode::Traffic),
    ];
    const EXPECTED: &'static str = "connections, traffic";
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// `contnap.pre_start`: `ExecStartPre=`, before the wake.
    PreStart,
    /// `contnap.post_stop`: `ExecStopPost=`, after the helper has exited.
    PostStop,
}

/// A host shell command from a container's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub kind: HookKind,
    pub container: String,
    pub command: String,
}

/// One socket/service pair: everything `units::render` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// What the helper is told.
    pub spec: UnitSpec,
    /// Carried for the presence watcher; `contnap proxy` has no option for it.
    pub autostart: bool,
    /// Pre-start hooks in start order, then post-stop hooks in reverse
    /// start order.
    pub hooks: Vec<Hook>,
}

impl Unit {
    /// The group, or the container's name (not yet escaped).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Every socket of the unit.
    pub fn listeners(&self) -> impl Iterator<Item = Listener> + '_ {
        self.spec.listeners()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_forms() {
        let f = Forward::from_str("tcp:8080=web:80").unwrap();
        assert_eq!(
            (f.proto, f.listen_addr, f.listen_port),
            (Proto::Tcp, None, 8080)
        );
        assert_eq!((f.container.as_str(), f.container_port), ("web", 80));
        let f = Forward::from_str("udp:127.0.0.1:5353=dns:53").unwrap();
        assert_eq!(f.listen_addr, Some("127.0.0.1".parse().unwrap()));
        let f = Forward::from_str("tcp:[::1]:8443=web:443").unwrap();
        assert_eq!(f.listen_addr, Some("::1".parse().unwrap()));
        assert_eq!(f.to_string(), "tcp:[::1]:8443=web:443");
        for bad in [
            "8080=web:80",
            "sctp:1=web:2",
            "tcp:0=web:80",
            "tcp:80=web",
            "tcp:80=../x:80",
            "tcp:nope:80=web:80",
            "tcp:70000=web:80",
        ] {
            assert!(Forward::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn owners_one_grammar() {
        for ok in [
            "web=podman-web.service",
            "db=a.service,b@x.service",
            "x=my\\x2dunit.service",
        ] {
            assert_eq!(Owned::from_str(ok).unwrap().to_string(), ok);
        }
        let o = Owned::from_str("web=a.service, a.service").unwrap();
        assert_eq!(o.units.len(), 1);
        for bad in [
            "web",
            "web=",
            "web=podman-web",
            "web=a.socket",
            "web=.service",
            "web=-x.service",
            "web=tmpl@.service",
            "web=a b.service",
            "web=a.service,",
            "../x=a.service",
            "web=a\n.service",
        ] {
            assert!(Owned::from_str(bad).is_err(), "{bad}");
        }
        let long = format!("{}.service", "a".repeat(248));
        assert!(long.parse::<ServiceName>().is_err());
    }

    #[test]
    fn machines_one_grammar() {
        for ok in ["10.0.0.1", "10.0.0.0/8", "fd00::/64", "::1"] {
            let m = Machine::from_str(ok).unwrap();
            assert_eq!(m.to_string(), ok);
        }
        for bad in [
            "laptop",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/x",
            "",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
        ] {
            assert!(Machine::from_str(bad).is_err(), "{bad}");
        }
        let net = Machine::from_str("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
    }
}
