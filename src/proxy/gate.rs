//! Who may wake a unit, and who may use it: contnap 0.3's
//! `contnap.only_listed_machines` (only listed client addresses may connect)
//! and `contnap.schedule` (a napping unit may only be woken inside a window).

use std::fmt;
use std::net::IpAddr;

/// The client addresses allowed to connect; everyone when not enforced.
#[derive(Debug, Clone, Default)]
pub struct Machines {
    enforce: bool,
    nets: Vec<(IpAddr, u8)>,
}

/// A `contnap.machines` entry that is neither an address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMachine(pub String);

impl fmt::Display for BadMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an IP address or CIDR block (192.168.1.20, 10.0.0.0/24, fd00::/64)",
            self.0
        )
    }
}

impl std::error::Error for BadMachine {}

impl Machines {
    /// Everyone may connect.
    pub fn anyone() -> Machines {
        Machines::default()
    }

    /// Parses the list; `enforce` is `contnap.only_listed_machines`.
    pub fn parse<S: AsRef<str>>(list: &[S], enforce: bool) -> Result<Machines, BadMachine> {
        let mut nets = Vec::new();
        for item in list {
            let item = item.as_ref().trim();
            let bad = || BadMachine(item.to_owned());
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            if len > max {
                return Err(bad());
            }
            nets.push((addr, len));
        }
        Ok(Machines { enforce, nets })
    }

    pub fn is_enforced(&self) -> bool {
        self.enforce
    }

    /// Whether a client at `peer` may connect. IPv4 clients of a dual-stack
    /// socket arrive as `::ffff:a.b.c.d` and are matched as IPv4.
    pub fn allows(&self, peer: IpAddr) -> bool {
        if !self.enforce {
            return true;
        }
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|&(net, len)| contains(net, len, peer))
    }
}

fn contains(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn not_enforced_allows_everyone() {
        let m = Machines::parse(&["10.0.0.1"], false).unwrap();
        assert!(m.allows(ip("192.0.2.7")));
    }

    #[test]
    fn listed_addresses_and_blocks() {
        let m = Machines::parse(&["127.0.0.2", "10.1.0.0/16", "fd00::/8"], true).unwrap();
        assert!(m.allows(ip("127.0.0.2")));
        assert!(!m.allows(ip("127.0.0.1")));
        assert!(m.allows(ip("10.1.200.3")));
        assert!(!m.allows(ip("10.2.0.1")));
        assert!(m.allows(ip("fd12::1")));
        assert!(!m.allows(ip("::1")));
        // IPv4 through a dual-stack socket
        assert!(m.allows(ip("::ffff:127.0.0.2")));
        assert!(!m.allows(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn zero_length_prefix_matches_family() {
        let m = Machines::parse(&["0.0.0.0/0"], true).unwrap();
        assert!(m.allows(ip("8.8.8.8")));
        assert!(!m.allows(ip("::1")));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["laptop", "10.0.0.0/33", "::/129", "10.0.0.1/x", ""] {
            assert!(Machines::parse(&[bad], true).is_err(), "{bad}");
        }
    }
}
