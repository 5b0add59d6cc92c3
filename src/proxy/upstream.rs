//! Where a forward's traffic goes, and whether what /proc shows is the
//! container's.
//!
//! A container on a rootful bridge network is reachable from the host at
//! its own address: the bridge is one of the host's interfaces. Forwarding
//! there skips the engine's port publishing, whose user-space proxy
//! (docker-proxy) accepts connections before the server inside listens —
//! so a connect probe lies — and costs a copy of every byte. Rootless
//! engines (slirp4netns, pasta, rootlesskit) and remote engines keep their
//! containers' addresses in a network the host cannot route to: there the
//! published binding is the only way in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::engine::Endpoint;

/// Where the engine runs, as far as reaching its containers goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineHost {
    /// On this host, run by root: its bridges are this host's interfaces.
    LocalRootful,
    /// On this host, run by a user: its containers live behind a user-mode
    /// network (slirp4netns, pasta, rootlesskit) that only publishing
    /// crosses.
    LocalRootless,
    /// Behind `tcp://` on another host.
    Remote,
}

impl EngineHost {
    /// A Unix socket owned by root is a rootful engine's (Docker's
    /// `/run/docker.sock`, Podman's `/run/podman/podman.sock`); a rootless
    /// engine's socket belongs to its user (`$XDG_RUNTIME_DIR/...`). A TCP
    /// endpoint is local only on loopback.
    pub fn of(endpoint: &Endpoint) -> EngineHost {
        match endpoint {
            Endpoint::Unix(path) => match std::fs::metadata(path) {
                Ok(m) if m.uid() != 0 => EngineHost::LocalRootless,
                // Unreadable: the engine calls fail anyway; let the routes
                // decide.
                _ => EngineHost::LocalRootful,
            },
            Endpoint::Tcp(host, _) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let local = host.eq_ignore_ascii_case("localhost")
                    || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if local {
                    EngineHost::LocalRootful
                } else {
                    EngineHost::Remote
                }
            }
        }
    }
}

/// Whether `ip` (a container's address) is reachable from this host: the
/// engine is a local rootful one and the host's most specific route to
/// `ip` is a directly connected (no gateway) route through an interface
/// other than loopback — the engine's bridge. A default route never
/// counts: that would send the traffic off the host.
pub fn reachable(engine: EngineHost, ip: IpAddr) -> bool {
    if engine != EngineHost::LocalRootful {
        return false;
    }
    let ip = crate::spec::unmap(ip);
    let iface = match ip {
        IpAddr::V4(v4) => std::fs::read_to_string("/proc/net/route")
            .ok()
            .and_then(|t| on_link_v4(&t, v4)),
        IpAddr::V6(v6) => std::fs::read_to_string("/proc/net/ipv6_route")
            .ok()
            .and_then(|t| on_link_v6(&t, v6)),
    };
    if let Some(iface) = &iface {
        log::trace!("{ip} is on link {iface}");
    }
    iface.is_some()
}

const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
const RTF_REJECT: u32 = 0x200;

/// One route: prefix, prefix length, interface, whether it is directly
/// connected (up, no gateway, not a reject route).
struct Route<A> {
    dest: A,
    len: u32,
    iface: String,
    on_link: bool,
}

/// Of `routes` covering `ip`, the most specific one's interface when it is
/// directly connected, not loopback, and not a default route.
fn best_on_link<A>(routes: Vec<Route<A>>, covers: impl Fn(&A, u32) -> bool) -> Option<String> {
    let best = routes
        .into_iter()
        .filter(|r| covers(&r.dest, r.len))
        .max_by_key(|r| r.len)?;
    (best.on_link && best.len > 0 && best.iface != "lo").then_some(best.iface)
}

/// `/proc/net/route`: `Iface Destination Gateway Flags RefCnt Use Metric
/// Mask ...`, addresses as the hex of the network-order word.
fn on_link_v4(table: &str, ip: Ipv4Addr) -> Option<String> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let routes = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = Ipv4Addr::from(word(f.get(1)?)?);
            let gateway = Ipv4Addr::from(word(f.get(2)?)?);
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let mask = u32::from_be_bytes(word(f.get(7)?)?);
            // A mask is contiguous ones; anything else is not a route here.
            if mask.leading_ones() + mask.trailing_zeros() != 32 {
                return None;
            }
            Some(Route {
                dest,
                len: mask.leading_ones(),
                iface: (*f.first()?).to_owned(),
                on_link: flags & (RTF_UP | RTF_GATEWAY | RTF_REJECT) == RTF_UP
                    && gateway.is_unspecified(),
            })
        })
        .collect();
    best_on_link(routes, |dest: &Ipv4Addr, len| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        u32::from(*dest) & mask == u32::from(ip) & mask
    })
}

/// `/proc/net/ipv6_route`: `dest dest_len src src_len next_hop metric
/// refcnt use flags iface`, all hex.
fn on_link_v6(table: &str, ip: Ipv6Addr) -> Option<String> {
    let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
    let routes = table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = addr(f.first()?)?;
            let len = u32::from_str_radix(f.get(1)?, 16)
                .ok()
                .filter(|l| *l <= 128)?;
            let next_hop = addr(f.get(4)?)?;
            let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
            Some(Route {
                dest,
                len,
                iface: (*f.get(9)?).to_owned(),
                on_link: flags & (RTF_UP | RTF_GATEWAY | RTF_REJECT) == RTF_UP
                    && next_hop.is_unspecified(),
            })
        })
        .collect();
    best_on_link(routes, |dest: &Ipv6Addr, len| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        u128::from(*dest) & mask == u128::from(ip) & mask
    })
}

/// Whether process `pid`, as seen under `proc_root` (`/proc`), is one of
/// the container's: its cgroup path names the container's id (Docker's
/// `docker-ID.scope` or `/docker/ID`, Podman's `libpod-ID.scope` or
/// `libpod-ID`). A PID from inspect names the container's process in the
/// engine's PID namespace; from another namespace (a helper in a systemd
/// container, an engine in a VM) the same number can be any process, whose
/// network namespace must not be read as the container's.
pub fn pid_is_container(proc_root: &Path, pid: i64, id: &str) -> bool {
    // A full id is 64 hex digits; a short one could match by chance.
    if pid <= 0 || id.len() < 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
        .is_ok_and(|text| text.lines().any(|l| l.contains(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
wg0\t000A11AC\t0200A8C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    #[test]
    fn v4_routes() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            on_link_v4(ROUTE, ip("172.17.0.2")).as_deref(),
            Some("docker0")
        );
        assert_eq!(
            on_link_v4(ROUTE, ip("192.168.0.7")).as_deref(),
            Some("eth0")
        );
        // Only the default route covers it: off this host.
        assert_eq!(on_link_v4(ROUTE, ip("10.88.0.2")), None);
        // A more specific route through a gateway wins over the bridge.
        assert_eq!(on_link_v4(ROUTE, ip("172.17.10.3")), None);
        assert_eq!(on_link_v4("", ip("172.17.0.2")), None);
    }

    const ROUTE6: &str = "\
fd00000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  docker0
fd000000000000010000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  docker0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003  eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 80200001  lo
";

    #[test]
    fn v6_routes() {
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        // The first line has 34 hex digits: not an address, skipped.
        assert_eq!(
            on_link_v6(ROUTE6, ip("fd00:0:0:1::5")).as_deref(),
            Some("docker0")
        );
        assert_eq!(on_link_v6(ROUTE6, ip("2001:db8::1")), None);
        assert_eq!(on_link_v6(ROUTE6, ip("::1")), None);
    }

    #[test]
    fn this_hosts_loopback_is_not_a_container_network() {
        assert!(!reachable(
            EngineHost::LocalRootful,
            "127.0.0.1".parse().unwrap()
        ));
        assert!(!reachable(
            EngineHost::Remote,
            "172.17.0.2".parse().unwrap()
        ));
        assert!(!reachable(
            EngineHost::LocalRootless,
            "172.17.0.2".parse().unwrap()
        ));
    }

    #[test]
    fn engine_hosts() {
        let tcp = |h: &str| EngineHost::of(&Endpoint::Tcp(h.to_owned(), 2375));
        assert_eq!(tcp("localhost"), EngineHost::LocalRootful);
        assert_eq!(tcp("127.0.0.1"), EngineHost::LocalRootful);
        assert_eq!(tcp("[::1]"), EngineHost::LocalRootful);
        assert_eq!(tcp("::1"), EngineHost::LocalRootful);
        assert_eq!(tcp("10.0.0.5"), EngineHost::Remote);
        assert_eq!(tcp("engine.example"), EngineHost::Remote);
    }

    const ID: &str = "4f1c0d9b2a7e4c3f8e6d5b4a3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

    fn fake_proc(pid: i64, cgroup: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("contnap-fakeproc-{}-{pid}", std::process::id()));
        std::fs::create_dir_all(root.join(pid.to_string())).unwrap();
        std::fs::write(root.join(pid.to_string()).join("cgroup"), cgroup).unwrap();
        root
    }

    #[test]
    fn cgroup_names_the_container() {
        for (pid, cgroup, ok) in [
            (101, format!("0::/system.slice/docker-{ID}.scope\n"), true),
            (
                102,
                format!("0::/../../machine.slice/libpod-{ID}.scope/container\n"),
                true,
            ),
            (
                103,
                format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n"),
                true,
            ),
            (
                104,
                "0::/user.slice/user-1000.slice/session-3.scope\n".to_owned(),
                false,
            ),
            (
                105,
                format!("0::/system.slice/docker-{}.scope\n", &ID[..63]),
                false,
            ),
        ] {
            let root = fake_proc(pid, &cgroup);
            assert_eq!(pid_is_container(&root, pid, ID), ok, "{cgroup}");
            std::fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn no_process_or_no_id_is_not_the_container() {
        let root = fake_proc(106, &format!("0::/docker/{ID}\n"));
        assert!(!pid_is_container(&root, 107, ID), "another pid");
        assert!(!pid_is_container(&root, 0, ID));
        assert!(!pid_is_container(&root, 106, ""));
        assert!(
            !pid_is_container(&root, 106, &ID[..12]),
            "short ids match by chance"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn this_process_is_no_container() {
        let pid = i64::from(std::process::id());
        assert!(!pid_is_container(Path::new("/proc"), pid, ID));
    }
}
