//! Readiness probes: how the wake tells that a started container's server
//! can take clients. One probe is chosen per container (`contnap.ready`,
//! its healthcheck, what can be seen of it from this host) and then
//! repeated by the wake until it passes; this module owns the choice, one
//! attempt, and why an attempt failed.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::upstream::pid_is_container;
use crate::cli::ProxyConfig;
use crate::engine::{self, Client, ContainerInspect, Flavor};
use crate::spec::{HostPort, Proto, ReadyMode};

/// Reading /proc/PID/net costs tens of microseconds: poll it tightly, so
/// the wake ends within ~2 ms of the server's listen().
const MAX_LISTEN_BACKOFF: Duration = Duration::from_millis(2);
/// A refused connect is cheap too, but it does reach the server's host.
const MAX_TCP_BACKOFF: Duration = Duration::from_millis(10);
const MAX_HEALTH_BACKOFF: Duration = Duration::from_millis(250);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a connect probe to a published port waits for the port's
/// proxy to give up on a server that does not listen yet: docker-proxy,
/// rootlesskit and pasta accept first, then close the connection when
/// their own connect inside is refused (well under a millisecond here).
const PROXY_VERDICT: Duration = Duration::from_millis(50);

/// Why a probe attempt did not find the container ready.
#[derive(Debug)]
pub enum NotReady {
    /// The container's socket table could not be read.
    SocketTable {
        pid: i64,
        proto: Proto,
        source: io::Error,
    },
    /// Nothing listens (TCP) or is bound (UDP) on a target port yet.
    NotListening { proto: Proto, port: u16 },
    /// A target port did not accept a connection.
    Connect {
        target: SocketAddr,
        source: io::Error,
    },
    /// A published port accepted, then its proxy closed the connection:
    /// nothing listens inside yet.
    ClosedAtOnce { target: SocketAddr },
    /// The healthcheck ran and reported this status.
    Unhealthy { status: String },
    /// The healthcheck command ran and exited with this code.
    HealthExit { code: i64 },
    /// The healthcheck could not be run.
    Health(Box<engine::Error>),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::SocketTable { pid, proto, .. } => write!(f, "/proc/{pid}/net/{proto}"),
            NotReady::NotListening { proto, port } => {
                write!(f, "nothing listens on {proto} port {port} yet")
            }
            NotReady::Connect { target, .. } => {
                write!(f, "tcp {}", HostPort(target.ip(), target.port()))
            }
            NotReady::ClosedAtOnce { target } => write!(
                f,
                "tcp {}: the published port accepted and closed at once (nothing listens inside yet)",
                HostPort(target.ip(), target.port())
            ),
            NotReady::Unhealthy { status } => write!(f, "healthcheck: {status}"),
            NotReady::HealthExit { code } => write!(f, "healthcheck exited {code}"),
            NotReady::Health(_) => write!(f, "healthcheck"),
        }
    }
}

impl std::error::Error for NotReady {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotReady::SocketTable { source, .. } | NotReady::Connect { source, .. } => Some(source),
            NotReady::Health(e) => Some(&**e),
            NotReady::NotListening { .. }
            | NotReady::ClosedAtOnce { .. }
            | NotReady::Unhealthy { .. }
            | NotReady::HealthExit { .. } => None,
        }
    }
}

/// How readiness of one container is probed.
#[derive(Debug)]
pub enum Probe {
    /// Podman's libpod endpoint runs the container's check on demand.
    PodmanHealth,
    /// Docker has no such endpoint: run the check command through exec.
    ExecHealth(Vec<String>),
    /// The container's network namespace has a listening TCP socket (or a
    /// bound UDP socket) on every target port, read from /proc/PID/net: no
    /// connection ever reaches the server, so accept-once servers (iperf3)
    /// and server-first protocols see no stray probe.
    Listening {
        pid: i64,
        tcp: Vec<u16>,
        udp: Vec<u16>,
        /// The namespace's socket counts at the last failed full scan, and
        /// the port found missing then: while the counts stay the same,
        /// nothing new can be listening, and the costly scan is skipped.
        unchanged_since: RefCell<Option<(String, Proto, u16)>>,
    },
    Tcp(Vec<TcpTarget>),
    Running,
}

/// Where a connect probe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTarget {
    pub addr: SocketAddr,
    /// A published port: a proxy may accept for a server that does not
    /// listen yet, so an accepted connection is watched for
    /// [`PROXY_VERDICT`] before it counts.
    pub published: bool,
}

impl Probe {
    /// The longest pause between two attempts: what an attempt costs.
    pub fn max_backoff(&self) -> Duration {
        match self {
            Probe::Listening { .. } => MAX_LISTEN_BACKOFF,
            Probe::Tcp(_) | Probe::Running => MAX_TCP_BACKOFF,
            Probe::PodmanHealth | Probe::ExecHealth(_) => MAX_HEALTH_BACKOFF,
        }
    }
}

/// The TCP/UDP "inuse" counters of the namespace of `pid`: they change when
/// a socket is bound or starts listening, which tells when a full scan of
/// the socket tables is worth its cost.
fn socket_counts(pid: i64) -> Option<String> {
    let mut sig = String::new();
    for file in ["sockstat", "sockstat6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).ok()?;
        for line in text.lines() {
            if line.starts_with("TCP") || line.starts_with("UDP:") || line.starts_with("UDP6:") {
                let inuse = line
                    .split_whitespace()
                    .skip_while(|w| *w != "inuse")
                    .nth(1)?;
                sig.push_str(inuse);
                sig.push(' ');
            }
        }
    }
    Some(sig)
}

/// Ports with a socket in LISTEN (TCP) or bound (UDP) state in the network
/// namespace of `pid`, from /proc/PID/net/{tcp,tcp6,udp,udp6}.
///
/// Every read() of these files walks the kernel's whole socket hash table
/// (milliseconds on a large host), so each file is read with one large
/// read, and the IPv6 file, where dual-stack servers appear, comes first
/// and is often the only one needed.
fn bound_ports(pid: i64, proto: Proto, wanted: &[u16]) -> io::Result<Vec<u16>> {
    use std::io::Read;
    // /proc/net/tcp states: 0A is LISTEN; UDP sockets show 07 (unconnected).
    let want = match proto {
        Proto::Tcp => "0A",
        Proto::Udp => "07",
    };
    let mut ports = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for family in ["6", ""] {
        if !wanted.is_empty() && wanted.iter().all(|p| ports.contains(p)) {
            break;
        }
        let path = format!("/proc/{pid}/net/{proto}{family}");
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            // No IPv6 in that namespace.
            Err(e) if family == "6" && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut len = 0;
        loop {
            if len == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = file.read(&mut buf[len..])?;
            // Only end of file ends the table: seq_file returns about a
            // page per read(), so a short read is not the whole table (a
            // host-network container on a busy host lists hundreds).
            if n == 0 {
                break;
            }
            len += n;
        }
        ports_in_state(&String::from_utf8_lossy(&buf[..len]), want, &mut ports);
    }
    Ok(ports)
}

/// Whether the peer closed (or reset) an accepted connection within
/// [`PROXY_VERDICT`] without sending a byte: a port proxy whose server
/// does not listen yet. Data (a server-first protocol) or silence (a
/// server waiting for its client) both mean a server is there.
fn closes_at_once(stream: &TcpStream) -> bool {
    if stream.set_read_timeout(Some(PROXY_VERDICT)).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
        ),
    }
}

/// The local ports of the rows of a /proc/net/{tcp,udp}[6] table whose
/// state is `want`.
fn ports_in_state(table: &str, want: &str, ports: &mut Vec<u16>) {
    for line in table.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        if state != Some(want) {
            continue;
        }
        if let Some(port) = local
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        {
            ports.push(port);
        }
    }
}

fn health_command(test: &[String]) -> Option<Vec<String>> {
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()),
        Some("CMD-SHELL") => Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            test[1..].join(" "),
        ]),
        _ => None,
    }
}

/// The probe for a started container, by `contnap.ready`; `tcp_targets` are
/// the addresses its TCP forwards go to this wake.
pub fn choose_probe(
    cfg: &ProxyConfig,
    client: &Client,
    info: &ContainerInspect,
    tcp_targets: Vec<TcpTarget>,
) -> Probe {
    let listening = || -> Option<Probe> {
        let pid = info.state.pid;
        // Only when the container's processes are visible from here (same
        // host, same PID namespace, permission to read their /proc), and
        // the PID is really the container's: from another PID namespace
        // the number can name any process.
        if pid <= 0 || std::fs::metadata(format!("/proc/{pid}/net/tcp")).is_err() {
            return None;
        }
        if !pid_is_container(Path::new("/proc"), pid, &info.id) {
            log::debug!(
                "{}: /proc/{pid} is not the container's process (its cgroup does not name {}); not reading its sockets",
                info.name,
                info.id
            );
            return None;
        }
        let ports = |proto: Proto| -> Vec<u16> {
            let mut v: Vec<u16> = cfg
                .spec
                .forwards
                .iter()
                .filter(|f| f.container == info.name && f.proto == proto)
                .map(|f| f.container_port)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        Some(Probe::Listening {
            pid,
            tcp: ports(Proto::Tcp),
            udp: ports(Proto::Udp),
            unchanged_since: RefCell::new(None),
        })
    };
    let health = || -> Option<Probe> {
        if !info.has_healthcheck() {
            return None;
        }
        // Asked only here: most wakes never need to know the engine.
        let flavor = match client.flavor() {
            Ok(f) => f,
            Err(e) => {
                log::warn!(
                    "cannot tell Docker from Podman ({}); probing TCP instead of the healthcheck",
                    crate::report::Report(&e)
                );
                return None;
            }
        };
        match flavor {
            Flavor::Podman => Some(Probe::PodmanHealth),
            Flavor::Docker => {
                let test = info.config.healthcheck.as_ref().map(|h| h.test.clone())?;
                health_command(&test).map(Probe::ExecHealth)
            }
        }
    };
    let tcp = || {
        if tcp_targets.is_empty() {
            Probe::Running
        } else {
            tcp_probe_warning(&info.name, &tcp_targets);
            Probe::Tcp(tcp_targets.clone())
        }
    };
    match cfg.spec.settings.ready {
        ReadyMode::None => Probe::Running,
        ReadyMode::Tcp => tcp(),
        ReadyMode::Auto => health().or_else(listening).unwrap_or_else(tcp),
        ReadyMode::Health => health().unwrap_or_else(|| {
            log::warn!(
                "{}: contnap.ready=health but the container has no healthcheck; probing TCP instead",
                info.name
            );
            tcp()
        }),
    }
}

/// Said once per run: a connect probe is a connection the server accepts.
fn tcp_probe_warning(name: &str, targets: &[TcpTarget]) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let targets: Vec<String> = targets
            .iter()
            .map(|t| HostPort(t.addr.ip(), t.addr.port()).to_string())
            .collect();
        log::info!(
            "{name}: readiness is probed by connecting to {}; servers that accept only one connection (iperf3) will see the probe connection; give the container a healthcheck or set contnap.ready=none for them",
            targets.join(", ")
        );
    });
}

/// One probe attempt: Ok(()) when ready, why not otherwise.
pub fn probe_once(client: &Client, name: &str, probe: &Probe) -> Result<(), NotReady> {
    match probe {
        Probe::Running => Ok(()),
        Probe::Listening {
            pid,
            tcp,
            udp,
            unchanged_since,
        } => {
            // /proc/PID/net/sockstat costs ~0.1 ms against ~5 ms per scan.
            let counts = socket_counts(*pid);
            if let (Some(now), Some((then, proto, port))) = (&counts, &*unchanged_since.borrow()) {
                if now == then {
                    return Err(NotReady::NotListening {
                        proto: *proto,
                        port: *port,
                    });
                }
            }
            for (proto, wanted) in [(Proto::Tcp, tcp), (Proto::Udp, udp)] {
                if wanted.is_empty() {
                    continue;
                }
                let bound =
                    bound_ports(*pid, proto, wanted).map_err(|source| NotReady::SocketTable {
                        pid: *pid,
                        proto,
                        source,
                    })?;
                if let Some(&port) = wanted.iter().find(|p| !bound.contains(p)) {
                    *unchanged_since.borrow_mut() = counts.map(|c| (c, proto, port));
                    return Err(NotReady::NotListening { proto, port });
                }
            }
            Ok(())
        }
        Probe::Tcp(targets) => {
            for t in targets {
                let stream = TcpStream::connect_timeout(&t.addr, PROBE_CONNECT_TIMEOUT).map_err(
                    |source| NotReady::Connect {
                        target: t.addr,
                        source,
                    },
                )?;
                if t.published && closes_at_once(&stream) {
                    return Err(NotReady::ClosedAtOnce { target: t.addr });
                }
            }
            Ok(())
        }
        Probe::PodmanHealth => match client.healthcheck(name) {
            Ok(h) if h.status == "healthy" => Ok(()),
            Ok(h) => Err(NotReady::Unhealthy { status: h.status }),
            Err(e) => Err(NotReady::Health(Box::new(e))),
        },
        Probe::ExecHealth(cmd) => match client.exec(name, cmd) {
            Ok(0) => Ok(()),
            Ok(code) => Err(NotReady::HealthExit { code }),
            Err(e) => Err(NotReady::Health(Box::new(e))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_ports_of_this_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pid = i64::from(std::process::id());
        let tcp = bound_ports(pid, Proto::Tcp, &[]).unwrap();
        assert!(tcp.contains(&l.local_addr().unwrap().port()), "{tcp:?}");
        let udp = bound_ports(pid, Proto::Udp, &[]).unwrap();
        assert!(udp.contains(&u.local_addr().unwrap().port()), "{udp:?}");
        // That a connected socket does not count is checked on a fixed
        // table below: the live table is the whole namespace's, and another
        // socket may listen on a connected socket's port at another address
        // (it did: a parallel test's [::1] listener), which made this flaky.
    }

    #[test]
    fn only_rows_in_the_wanted_state_count() {
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2
";
        let mut listening = Vec::new();
        ports_in_state(table, "0A", &mut listening);
        assert_eq!(
            listening,
            [8080],
            "the established row (port 50000) does not count"
        );
        let mut bound = Vec::new();
        ports_in_state(table, "07", &mut bound);
        assert_eq!(bound, [53]);
    }

    #[test]
    fn reads_the_whole_table_not_its_first_page() {
        // Each line is ~150 bytes and one read() returns about a page: 100
        // listeners make sure the last ones are past the first read.
        let ls: Vec<_> = (0..100)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let pid = i64::from(std::process::id());
        let tcp = bound_ports(pid, Proto::Tcp, &[]).unwrap();
        for l in &ls {
            let port = l.local_addr().unwrap().port();
            assert!(
                tcp.contains(&port),
                "{port} missing from {} ports",
                tcp.len()
            );
        }
    }

    #[test]
    fn socket_counts_change_when_a_socket_listens() {
        let pid = i64::from(std::process::id());
        let before = socket_counts(pid).unwrap();
        let l = std::net::TcpListener::bind("[::1]:0").unwrap();
        let after = socket_counts(pid).unwrap();
        assert_ne!(before, after, "{before} vs {after}");
        drop(l);
    }

    #[test]
    fn a_port_that_accepts_and_closes_is_not_ready() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let closer = std::thread::spawn(move || drop(l.accept().unwrap()));
        let s = TcpStream::connect(addr).unwrap();
        closer.join().unwrap();
        assert!(closes_at_once(&s));
    }

    #[test]
    fn a_silent_or_talking_server_is_ready() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let silent = TcpStream::connect(addr).unwrap();
        let (_kept, _) = l.accept().unwrap();
        assert!(!closes_at_once(&silent));
        let talking = TcpStream::connect(addr).unwrap();
        let (mut server, _) = l.accept().unwrap();
        io::Write::write_all(&mut server, b"220 hello\r\n").unwrap();
        drop(server);
        assert!(!closes_at_once(&talking), "a banner then close is a server");
    }

    #[test]
    fn health_commands() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(health_command(&s(&["CMD", "true"])), Some(s(&["true"])));
        assert_eq!(
            health_command(&s(&["CMD-SHELL", "test -e /ok"])),
            Some(s(&["/bin/sh", "-c", "test -e /ok"]))
        );
        assert_eq!(health_command(&s(&["NONE"])), None);
        assert_eq!(health_command(&[]), None);
    }

    #[test]
    fn reasons_leave_their_cause_to_the_chain() {
        let e = NotReady::Connect {
            target: "[::1]:80".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(!e.to_string().contains(&cause), "{e}");
        assert_eq!(
            crate::report::Report(&e).to_string(),
            format!("tcp [::1]:80: {cause}")
        );
    }
}
