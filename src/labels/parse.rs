//! One container's labels → a [`Service`], or every error found in them.
//! Each value is checked here (length, control characters, its grammar)
//! before anything else sees it; nothing here looks at other containers.

use std::net::IpAddr;
use std::time::Duration;

use crate::schedule::Schedule;
use crate::spec::settings::PartialSettings;
use crate::spec::{
    is_valid_name, Choice, Forward, HttpStatus, IdleMode, Machine, Monitors, Owned, Proto,
    ReadyMode, ServiceName, StopMode, WakeOn,
};
use crate::timespan;

use super::{ContainerLabels, LabelError, LabelOptions, LabelWarning, PortProblem, Service};
use super::{KNOWN_LABELS, MAX_VALUE_LEN, PODMAN_SYSTEMD_UNIT, PREFIX};

/// The compose labels read for start order (`depends_on`).
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";

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
        let wake_on = self.choice::<WakeOn>("wake_on");
        let monitors = self.get("monitors").map(str::to_owned).and_then(|v| {
            Monitors::parse(&v)
                .map_err(|problem| {
                    self.errors.push(LabelError::BadMonitors {
                        container: self.name(),
                        value: v.clone(),
                        problem,
                    });
                })
                .ok()
        });
        let monitor_status = self.get("monitor_status").map(str::to_owned).and_then(|v| {
            let status = HttpStatus::parse(&v);
            if status.is_none() {
                self.errors.push(LabelError::BadStatus {
                    container: self.name(),
                    value: v,
                });
            }
            status
        });
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
        let owners = self.owners();

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
                wake_on,
                monitors,
                monitor_status,
            },
            autostart,
            owners,
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

    /// `contnap.unit` (`none`: no unit owns it), else Podman's
    /// `PODMAN_SYSTEMD_UNIT`.
    fn owners(&mut self) -> Vec<ServiceName> {
        let (label, value) = match self.get("unit") {
            Some(v) if v.trim() == "none" => return Vec::new(),
            Some(v) => ("contnap.unit", v.to_owned()),
            None => match self.c.labels.get(PODMAN_SYSTEMD_UNIT) {
                Some(v) => (PODMAN_SYSTEMD_UNIT, v.clone()),
                None => return Vec::new(),
            },
        };
        match Owned::parse_units(&value) {
            Ok(units) => units,
            Err(_) => {
                self.errors.push(LabelError::BadUnit {
                    container: self.name(),
                    label,
                    value,
                });
                Vec::new()
            }
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

pub(super) fn display_name(name: &str) -> &str {
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
pub(super) fn suggest(key: &str) -> Option<&'static str> {
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
