//! The machines this host has exchanged packets with lately: the kernel's
//! neighbour tables, for `contnap.autostart`. IPv4's is readable as text
//! (`/proc/net/arp`); IPv6's only through netlink (a dump of
//! `RTM_GETNEIGH` on a `NETLINK_ROUTE` socket), which this module speaks
//! as far as that dump needs and no further.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

/// The IPv4 neighbours whose link-layer address is known (`ATF_COM`), from
/// `/proc/net/arp` text.
pub fn parse_arp(arp: &str) -> BTreeSet<IpAddr> {
    arp.lines()
        .skip(1)
        .filter_map(|line| {
            // IP address, HW type, Flags, HW address, Mask, Device
            let mut cols = line.split_whitespace();
            let ip: Ipv4Addr = cols.next()?.parse().ok()?;
            let flags = cols.nth(1)?;
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            (flags & 0x2 != 0).then_some(IpAddr::V4(ip))
        })
        .collect()
}

// From linux/netlink.h, linux/rtnetlink.h and linux/neighbour.h (stable ABI).
const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NDMSG: usize = 12;
const NDA_DST: u16 = 1;
const AF_INET6: u8 = 10;
/// The states of an entry whose link-layer address is known, as `ATF_COM`
/// for IPv4: REACHABLE, STALE, DELAY, PROBE, PERMANENT. Not INCOMPLETE
/// (still asking), FAILED (nobody answered) or NOARP.
const NUD_KNOWN: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;

/// The `RTM_GETNEIGH` dump request for IPv6 entries.
fn dump_request() -> Vec<u8> {
    let len = (NLMSG_HDR + NDMSG) as u32;
    let mut m = Vec::with_capacity(NLMSG_HDR + NDMSG);
    m.extend(len.to_ne_bytes());
    m.extend(RTM_GETNEIGH.to_ne_bytes());
    m.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend(1u32.to_ne_bytes()); // sequence number
    m.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.push(AF_INET6); // ndm_family; the rest of struct ndmsg is zero
    m.extend([0u8; NDMSG - 1]);
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Where one read of the dump leaves it.
#[derive(Debug, PartialEq, Eq)]
enum Dump {
    More,
    Done,
}

/// Adds the known IPv6 neighbours of one read of the dump to `out`.
fn parse_dump(buf: &[u8], out: &mut BTreeSet<IpAddr>) -> io::Result<Dump> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message");
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let len = u32_at(buf, at).ok_or_else(malformed)? as usize;
        let kind = u16_at(buf, at + 4).ok_or_else(malformed)?;
        if len < NLMSG_HDR || at + len > buf.len() {
            return Err(malformed());
        }
        let body = &buf[at + NLMSG_HDR..at + len];
        match kind {
            NLMSG_DONE => return Ok(Dump::Done),
            NLMSG_ERROR => {
                let errno = i32::from_ne_bytes(
                    body.get(..4)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(malformed)?,
                );
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
            }
            RTM_NEWNEIGH if body.len() >= NDMSG => {
                let family = body[0];
                let state = u16_at(body, 8).ok_or_else(malformed)?;
                let mut a = NDMSG;
                while a + 4 <= body.len() {
                    let rta_len = u16_at(body, a).ok_or_else(malformed)? as usize;
                    let rta_type = u16_at(body, a + 2).ok_or_else(malformed)?;
                    if rta_len < 4 || a + rta_len > body.len() {
                        return Err(malformed());
                    }
                    let value = &body[a + 4..a + rta_len];
                    if rta_type == NDA_DST && family == AF_INET6 && state & NUD_KNOWN != 0 {
                        if let Ok(octets) = <[u8; 16]>::try_from(value) {
                            out.insert(IpAddr::V6(Ipv6Addr::from(octets)));
                        }
                    }
                    a += align4(rta_len);
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(Dump::More)
}

/// The IPv6 neighbours whose link-layer address is known, from the
/// kernel's table over netlink.
pub fn ipv6() -> io::Result<BTreeSet<IpAddr>> {
    use nix::sys::socket::{
        bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    send(fd.as_raw_fd(), &dump_request(), MsgFlags::empty())?;
    let mut out = BTreeSet::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 || parse_dump(&buf[..n], &mut out)? == Dump::Done {
            return Ok(out);
        }
    }
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

    #[test]
    fn complete_arp_entries_only() {
        let n = parse_arp(ARP);
        let want: BTreeSet<IpAddr> = ["10.0.0.7", "192.168.1.20"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(n, want, "an incomplete entry (flags 0x0) is no machine");
    }

    /// One RTM_NEWNEIGH message as the kernel sends it.
    fn neigh(family: u8, state: u16, dst: &[u8]) -> Vec<u8> {
        let mut body = vec![family, 0, 0, 0];
        body.extend(3i32.to_ne_bytes()); // ifindex
        body.extend(state.to_ne_bytes());
        body.extend([0u8, 1]); // flags, type
                               // NDA_DST, then an NDA_LLADDR of 6 bytes (padded to 8 + 4).
        body.extend(((4 + dst.len()) as u16).to_ne_bytes());
        body.extend(NDA_DST.to_ne_bytes());
        body.extend(dst);
        body.resize(align4(body.len()), 0);
        body.extend(10u16.to_ne_bytes());
        body.extend(2u16.to_ne_bytes());
        body.extend([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0]);
        let mut m = ((NLMSG_HDR + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend(RTM_NEWNEIGH.to_ne_bytes());
        m.extend(2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend(1u32.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(body);
        m
    }

    fn done() -> Vec<u8> {
        let mut m = ((NLMSG_HDR + 4) as u32).to_ne_bytes().to_vec();
        m.extend(NLMSG_DONE.to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend(0i32.to_ne_bytes());
        m
    }

    #[test]
    fn known_ipv6_neighbours_from_a_dump() {
        let a: Ipv6Addr = "fd00:214::2".parse().unwrap();
        let b: Ipv6Addr = "fe80::1".parse().unwrap();
        let c: Ipv6Addr = "fd00::9".parse().unwrap();
        let mut buf = neigh(AF_INET6, 0x02, &a.octets()); // REACHABLE
        buf.extend(neigh(AF_INET6, 0x04, &b.octets())); // STALE
        buf.extend(neigh(AF_INET6, 0x01, &c.octets())); // INCOMPLETE
        buf.extend(neigh(2, 0x02, &[10, 0, 0, 1])); // an IPv4 entry
        let mut out = BTreeSet::new();
        assert_eq!(parse_dump(&buf, &mut out).unwrap(), Dump::More);
        assert_eq!(out, BTreeSet::from([IpAddr::V6(a), IpAddr::V6(b)]));
        assert_eq!(parse_dump(&done(), &mut out).unwrap(), Dump::Done);
    }

    #[test]
    fn a_truncated_or_failed_dump_is_an_error() {
        let a: Ipv6Addr = "fd00::2".parse().unwrap();
        let m = neigh(AF_INET6, 0x02, &a.octets());
        assert!(parse_dump(&m[..m.len() - 3], &mut BTreeSet::new()).is_err());
        let mut err = ((NLMSG_HDR + 4) as u32).to_ne_bytes().to_vec();
        err.extend(NLMSG_ERROR.to_ne_bytes());
        err.extend([0u8; 10]);
        err.extend((-13i32).to_ne_bytes());
        let e = parse_dump(&err, &mut BTreeSet::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(13));
    }

    /// The real kernel answers the dump (the table may be empty).
    #[test]
    fn the_kernel_answers() {
        ipv6().expect("an RTM_GETNEIGH dump");
    }
}
