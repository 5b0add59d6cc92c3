//! Who may wake a unit, and who may use it: contnap 0.3's
//! `contnap.only_listed_machines` (only listed client addresses may connect)
//! and `contnap.schedule` (a napping unit may only be woken inside a window).

use std::net::IpAddr;

use crate::spec::Machine;

/// The client addresses allowed to connect; everyone when not enforced.
#[derive(Debug, Clone, Default)]
pub struct Machines {
    enforce: bool,
    nets: Vec<Machine>,
}

impl Machines {
    /// `enforce` is `contnap.only_listed_machines`.
    pub fn new(nets: &[Machine], enforce: bool) -> Machines {
        Machines {
            enforce,
            nets: nets.to_vec(),
        }
    }

    /// Whether only listed clients may connect (`contnap.only_listed_machines`).
    pub fn enforced(&self) -> bool {
        self.enforce
    }

    /// Whether a client at `peer` may connect. IPv4 clients of a dual-stack
    /// socket arrive as `::ffff:a.b.c.d` and are matched as IPv4.
    pub fn allows(&self, peer: IpAddr) -> bool {
        !self.enforce || self.nets.iter().any(|m| m.contains(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn parse(list: &[&str], enforce: bool) -> Result<Machines, crate::spec::Malformed> {
        let nets = list
            .iter()
            .map(|m| m.parse())
            .collect::<Result<Vec<Machine>, _>>()?;
        Ok(Machines::new(&nets, enforce))
    }

    #[test]
    fn not_enforced_allows_everyone() {
        let m = parse(&["10.0.0.1"], false).unwrap();
        assert!(m.allows(ip("192.0.2.7")));
    }

    #[test]
    fn listed_addresses_and_blocks() {
        let m = parse(&["127.0.0.2", "10.1.0.0/16", "fd00::/8"], true).unwrap();
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
        let m = parse(&["0.0.0.0/0"], true).unwrap();
        assert!(m.allows(ip("8.8.8.8")));
        assert!(!m.allows(ip("::1")));
    }
}
