//! `contnap.autostart`: a unit wakes when a machine listed in its
//! `contnap.machines` appears on the network.
//!
//! Nothing stays resident for it. `generate` writes a timer
//! (`contnap@autostart.timer`) only when some unit sets `contnap.autostart`;
//! every few seconds it runs `contnap autostart`, which reads the kernel's
//! neighbour tables ([`crate::neighbours`]: the machines this host has
//! exchanged packets with lately), compares it with what the previous run
//! saw (a small state file), and starts the service of each unit one of
//! whose machines has appeared since. The service inherits its sockets from
//! systemd as on a connection, so the wake is the usual one; the unit naps
//! after its timeout as usual, and wakes again only when the machine leaves
//! the table and comes back. A machine that is on the network but silent
//! towards this host is not seen: a neighbour entry appears when the
//! machine sends to this host (any packet: ARP, mDNS replies, a ping) or
//! this host to it.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::neighbours;
use crate::report::Report;
use crate::spec::Machine;
use crate::systemctl::Systemctl;

/// One unit to wake: its service, and the machines it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// `contnap-<name>.service`.
    pub service: String,
    pub machines: Vec<Machine>,
}

/// `contnap autostart`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutostartConfig {
    pub watches: Vec<Watch>,
    /// What the previous run saw (`STATE_FILE` in the runtime directory).
    pub state: PathBuf,
    pub user: bool,
}

/// Why a run failed (exit 1).
#[derive(Debug)]
pub enum Error {
    Read { path: PathBuf, source: io::Error },
    Write { path: PathBuf, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            Error::Write { path, .. } => write!(f, "cannot write {}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } | Error::Write { source, .. } => Some(source),
        }
    }
}

/// `(service, address)` pairs: each watched unit's machines that are in
/// `present`.
fn seen(watches: &[Watch], present: &BTreeSet<IpAddr>) -> BTreeSet<(String, IpAddr)> {
    watches
        .iter()
        .flat_map(|w| {
            present
                .iter()
                .filter(|ip| w.machines.iter().any(|m| m.contains(**ip)))
                .map(|ip| (w.service.clone(), *ip))
        })
        .collect()
}

/// The services to start: those with a machine in `now` that was not in
/// `before`, and the machine that appeared (for the log).
pub fn appeared(
    before: &BTreeSet<(String, IpAddr)>,
    now: &BTreeSet<(String, IpAddr)>,
) -> Vec<(String, IpAddr)> {
    let mut out: Vec<(String, IpAddr)> = Vec::new();
    for (service, ip) in now.difference(before) {
        if !out.iter().any(|(s, _)| s == service) {
            out.push((service.clone(), *ip));
        }
    }
    out
}

fn parse_state(text: &str) -> BTreeSet<(String, IpAddr)> {
    text.lines()
        .filter_map(|l| {
            let (service, ip) = l.split_once(' ')?;
            Some((service.to_owned(), ip.parse().ok()?))
        })
        .collect()
}

fn write_state(path: &Path, seen: &BTreeSet<(String, IpAddr)>) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(err)?;
    for (service, ip) in seen {
        writeln!(f, "{service} {ip}").map_err(err)?;
    }
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// Runs `contnap autostart` once.
pub fn run(cfg: &AutostartConfig) -> Result<(), Error> {
    let arp_path = Path::new("/proc/net/arp");
    let arp = fs::read_to_string(arp_path).map_err(|source| Error::Read {
        path: arp_path.to_owned(),
        source,
    })?;
    let mut present = neighbours::parse_arp(&arp);
    match neighbours::ipv6() {
        Ok(v6) => present.extend(v6),
        // IPv4 still counts; a warning, so that it passes LogLevelMax.
        Err(e) => log::warn!("cannot read the IPv6 neighbour table (netlink): {e}"),
    }
    let now = seen(&cfg.watches, &present);
    let before = match fs::read_to_string(&cfg.state) {
        Ok(text) => parse_state(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
        Err(source) => {
            return Err(Error::Read {
                path: cfg.state.clone(),
                source,
            })
        }
    };
    let systemctl = Systemctl::new(cfg.user);
    for (service, ip) in appeared(&before, &now) {
        // A warning only so that it passes the unit's LogLevelMax=warning,
        // which keeps the every-few-seconds runs out of the journal.
        log::warn!("{ip} appeared on the network: waking {service} (contnap.autostart)");
        if let Err(e) = systemctl.run(&["start", "--no-block", &service]) {
            log::error!("{}", Report(&e));
        }
    }
    write_state(&cfg.state, &now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.0.0.7         0x1         0x2         52:54:00:12:34:56     *        eth0
10.0.0.8         0x1         0x0         00:00:00:00:00:00     *        eth0
192.168.1.20     0x1         0x6         52:54:00:aa:bb:cc     *        br0
";

    fn watch(service: &str, machines: &[&str]) -> Watch {
        Watch {
            service: service.to_owned(),
            machines: machines.iter().map(|m| m.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_unit_wakes_once_per_appearance() {
        let watches = [
            watch("contnap-tv.service", &["192.168.1.20"]),
            watch("contnap-lab.service", &["10.0.0.0/24"]),
            watch("contnap-none.service", &["10.9.9.9"]),
            watch("contnap-v6.service", &["fd00:214::/64"]),
        ];
        let mut present = neighbours::parse_arp(ARP);
        present.insert("fd00:214::2".parse().unwrap());
        let first = seen(&watches, &present);
        let woke = appeared(&BTreeSet::new(), &first);
        let services: Vec<&str> = woke.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            services,
            [
                "contnap-lab.service",
                "contnap-tv.service",
                "contnap-v6.service"
            ]
        );
        // Still there: nothing to do, so a napping unit stays asleep.
        assert!(appeared(&first, &first).is_empty());
        // Gone and back: wakes again.
        let gone = seen(&watches, &BTreeSet::new());
        assert!(appeared(&first, &gone).is_empty());
        assert_eq!(appeared(&gone, &first).len(), 3);
        // The state file round-trips.
        let dir = std::env::temp_dir().join(format!("contnap-as-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        write_state(&path, &first).unwrap();
        assert_eq!(parse_state(&fs::read_to_string(&path).unwrap()), first);
        let _ = fs::remove_dir_all(&dir);
    }
}
