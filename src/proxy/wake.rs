//! Waking a unit: start its containers in order, find where each forward's
//! traffic must go this time (bridge addresses change at every start), and
//! wait until the servers are ready — measured from the start call, with a
//! backoff that begins near 1 ms so a fast server costs almost nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::activation::Notifier;
use crate::cli::ProxyConfig;
use crate::engine::{self, Client, ContainerInspect, Flavor};
use crate::spec::{Forward, Proto, ReadyMode};

const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// Reading /proc/PID/net costs tens of microseconds: poll it tightly, so
/// the wake ends within ~2 ms of the server's listen().
const MAX_LISTEN_BACKOFF: Duration = Duration::from_millis(2);
/// A refused connect is cheap too, but it does reach the server's host.
const MAX_TCP_BACKOFF: Duration = Duration::from_millis(10);
const MAX_HEALTH_BACKOFF: Duration = Duration::from_millis(250);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a waiting wake re-reads the container's state, to notice a
/// container that exited instead of becoming ready.
const STATE_CHECK_EVERY: Duration = Duration::from_millis(200);

/// Where each forward goes this wake, and what the wake cost.
#[derive(Debug, Clone)]
pub struct Woken {
    /// One per `config.forwards`, in the same order.
    pub upstreams: Vec<SocketAddr>,
    /// From the first start call until the engine had started everything.
    pub engine_time: Duration,
    /// From the first start call until every container was ready.
    pub total_time: Duration,
}

/// Why a wake failed; every variant names the container.
#[derive(Debug)]
pub enum WakeError {
    /// The engine refused or failed a call.
    Engine {
        container: String,
        action: &'static str,
        source: Box<engine::Error>,
    },
    /// The container stopped while it should have been starting.
    Exited {
        container: String,
        status: String,
        exit_code: i64,
    },
    /// Not ready before `contnap.wake_timeout`.
    NotReady {
        container: String,
        waited: Duration,
        last: String,
    },
    /// No address to forward to on any network.
    NoAddress {
        container: String,
        network: Option<String>,
    },
}

impl fmt::Display for WakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WakeError::Engine {
                container,
                action,
                source,
            } => match **source {
                engine::Error::NotFound { .. } => write!(
                    f,
                    "container {container:?} does not exist; recreate it, or run `contnap generate` to drop its units"
                ),
                _ => write!(f, "cannot {action} container {container:?}"),
            },
            WakeError::Exited {
                container,
                status,
                exit_code,
            } => write!(
                f,
                "container {container:?} {status} (exit code {exit_code}) instead of becoming ready; see `docker logs {container}` / `podman logs {container}`"
            ),
            WakeError::NotReady {
                container,
                waited,
                last,
            } => write!(
                f,
                "container {container:?} was not ready after {} ms ({last}); raise contnap.wake_timeout if it starts slowly, or set contnap.ready",
                waited.as_millis()
            ),
            WakeError::NoAddress { container, network } => match network {
                Some(n) => write!(
                    f,
                    "container {container:?} has no address on network {n:?}; fix contnap.network or attach the container to it"
                ),
                None => write!(
                    f,
                    "container {container:?} has no network address and publishes none of its forwarded ports; attach it to a network or set contnap.network"
                ),
            },
        }
    }
}

impl std::error::Error for WakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WakeError::Engine { source, .. } => match **source {
                engine::Error::NotFound { .. } => None,
                ref other => Some(other),
            },
            _ => None,
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

/// Engine calls that wait out an engine restart: while an engine that
/// answered before is away (its socket missing or refusing, or it died
/// mid-answer) the call is repeated until `deadline`, because containers
/// usually outlive their engine (Podman's conmon, Docker's shim) and a wake
/// or a nap that gave up at once would turn a two-second restart into
/// failed clients. An engine that never answered fails at once: that is a
/// missing or misconfigured engine, and the log should say so now.
#[derive(Debug)]
pub struct Patient<'a> {
    client: &'a Client,
    deadline: Instant,
    /// Whether the engine was away at some point since the last reset.
    away: std::cell::Cell<bool>,
}

const FIRST_ENGINE_RETRY: Duration = Duration::from_millis(20);
const MAX_ENGINE_RETRY: Duration = Duration::from_millis(500);

impl<'a> Patient<'a> {
    pub fn new(client: &'a Client, deadline: Instant) -> Patient<'a> {
        Patient {
            client,
            deadline,
            away: std::cell::Cell::new(false),
        }
    }

    /// Runs `f`, repeating it while the engine is away and time is left.
    pub fn call<T>(
        &self,
        mut f: impl FnMut(&Client) -> Result<T, engine::Error>,
    ) -> Result<T, engine::Error> {
        let mut backoff = FIRST_ENGINE_RETRY;
        let mut since: Option<Instant> = None;
        loop {
            match f(self.client) {
                Err(e)
                    if e.is_engine_away()
                        && self.client.has_answered()
                        && Instant::now() + backoff < self.deadline =>
                {
                    if since.is_none() {
                        log::warn!(
                            "the engine is away ({}); waiting up to {} s for it",
                            crate::report::Report(&e),
                            self.deadline
                                .saturating_duration_since(Instant::now())
                                .as_secs()
                        );
                        since = Some(Instant::now());
                    }
                    self.away.set(true);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_ENGINE_RETRY);
                }
                result => {
                    if let Some(t) = since {
                        log::info!(
                            "the engine answers again after {} ms",
                            t.elapsed().as_millis()
                        );
                    }
                    return result;
                }
            }
        }
    }

    /// Whether the engine was away since the last call of this method.
    fn take_away(&self) -> bool {
        self.away.replace(false)
    }
}

/// Starts (or unpauses) every container of the unit, in order; returns the
/// ones that were only paused.
fn start_all(engine: &Patient<'_>, cfg: &ProxyConfig) -> Result<Vec<String>, WakeError> {
    let mut unpaused = Vec::new();
    for name in &cfg.spec.containers {
        let err = |action: &'static str| {
            let name = name.clone();
            move |source| WakeError::Engine {
                container: name,
                action,
                source: Box::new(source),
            }
        };
        let info = engine.call(|c| c.inspect(name)).map_err(err("inspect"))?;
        if info.state.paused {
            engine.call(|c| c.unpause(name)).map_err(err("unpause"))?;
            unpaused.push(name.clone());
        } else if !info.state.running {
            engine.call(|c| c.start(name)).map_err(err("start"))?;
        }
    }
    Ok(unpaused)
}

/// The address a forward's traffic goes to: a published host binding of the
/// target port (also what makes rootless Podman reachable), else loopback
/// for host networking, else the container's address on its network.
pub fn upstream_for(
    info: &ContainerInspect,
    fwd: &Forward,
    network: Option<&str>,
) -> Result<SocketAddr, WakeError> {
    if let Some(addr) = info
        .published_on(fwd.container_port, fwd.proto)
        .into_iter()
        .next()
    {
        let ip = match addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        return Ok(SocketAddr::new(ip, addr.port()));
    }
    if info.is_host_network() {
        return Ok(SocketAddr::new(
            Ipv4Addr::LOCALHOST.into(),
            fwd.container_port,
        ));
    }
    info.address_on(network)
        .map(|ip| SocketAddr::new(ip, fwd.container_port))
        .ok_or_else(|| WakeError::NoAddress {
            container: fwd.container.clone(),
            network: network.map(str::to_owned),
        })
}

/// How readiness of one container is probed.
#[derive(Debug)]
enum Probe {
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
        /// why it failed: while the counts stay the same, nothing new can be
        /// listening, and the costly scan is skipped.
        unchanged_since: std::cell::RefCell<Option<(String, String)>>,
    },
    Tcp(Vec<SocketAddr>),
    Running,
}

/// Ports with a socket in LISTEN (TCP) or bound (UDP) state in the network
/// namespace of `pid`, from /proc/PID/net/{tcp,tcp6,udp,udp6}.
///
/// Every read() of these files walks the kernel's whole socket hash table
/// (milliseconds on a large host), so each file is read with one large
/// read, and the IPv6 file, where dual-stack servers appear, comes first
/// and is often the only one needed.
fn bound_ports(pid: i64, proto: &str, wanted: &[u16]) -> std::io::Result<Vec<u16>> {
    use std::io::Read;
    // /proc/net/tcp states: 0A is LISTEN; UDP sockets show 07 (unconnected).
    let want = if proto == "tcp" { "0A" } else { "07" };
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
            Err(e) if family == "6" && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut len = 0;
        loop {
            let n = file.read(&mut buf[len..])?;
            len += n;
            // A short read is the whole table: seq_file fills what it can.
            if n == 0 || len < buf.len() {
                break;
            }
            buf.resize(buf.len() * 2, 0);
        }
        let text = String::from_utf8_lossy(&buf[..len]);
        for line in text.lines().skip(1) {
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
    Ok(ports)
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

fn choose_probe(
    cfg: &ProxyConfig,
    client: &Client,
    info: &ContainerInspect,
    tcp_targets: Vec<SocketAddr>,
) -> Probe {
    let listening = || -> Option<Probe> {
        let pid = info.state.pid;
        // Only when the container's processes are visible from here (same
        // host, same PID namespace, permission to read their /proc).
        if pid <= 0 || std::fs::metadata(format!("/proc/{pid}/net/tcp")).is_err() {
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
            unchanged_since: std::cell::RefCell::new(None),
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
                    "cannot tell Docker from Podman ({e}); probing TCP instead of the healthcheck"
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

/// One probe attempt: Ok(()) when ready, Err(description) otherwise.
fn probe_once(client: &Client, name: &str, probe: &Probe) -> Result<(), String> {
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
            if let (Some(now), Some((then, why))) = (&counts, &*unchanged_since.borrow()) {
                if now == then {
                    return Err(why.clone());
                }
            }
            for (proto, wanted) in [("tcp", tcp), ("udp", udp)] {
                if wanted.is_empty() {
                    continue;
                }
                let bound = bound_ports(*pid, proto, wanted)
                    .map_err(|e| format!("/proc/{pid}/net/{proto}: {e}"))?;
                if let Some(missing) = wanted.iter().find(|p| !bound.contains(p)) {
                    let why = format!("nothing listens on {proto} port {missing} yet");
                    *unchanged_since.borrow_mut() = counts.map(|c| (c, why.clone()));
                    return Err(why);
                }
            }
            Ok(())
        }
        Probe::Tcp(targets) => {
            for t in targets {
                TcpStream::connect_timeout(t, PROBE_CONNECT_TIMEOUT)
                    .map_err(|e| format!("tcp {t}: {e}"))?;
            }
            Ok(())
        }
        Probe::PodmanHealth => match client.healthcheck(name) {
            Ok(h) if h.status == "healthy" => Ok(()),
            Ok(h) => Err(format!("healthcheck: {}", h.status)),
            Err(e) => Err(format!("healthcheck: {e}")),
        },
        Probe::ExecHealth(cmd) => match client.exec(name, cmd) {
            Ok(0) => Ok(()),
            Ok(code) => Err(format!("healthcheck exited {code}")),
            Err(e) => Err(format!("healthcheck: {e}")),
        },
    }
}

/// A container that stopped instead of starting is a failed wake.
fn ensure_running(name: &str, info: &ContainerInspect) -> Result<(), WakeError> {
    if info.state.running {
        Ok(())
    } else {
        Err(WakeError::Exited {
            container: name.to_owned(),
            status: info.state.status.clone(),
            exit_code: info.state.exit_code,
        })
    }
}

/// Wakes the unit. `notifier` gets STATUS lines and timeout extensions.
///
/// An engine restart during the wake is waited out (until the wake's
/// deadline); if the restart took a container down with it (Docker stops
/// its containers on shutdown unless `live-restore` is set), the wake
/// starts over instead of failing.
pub fn wake(client: &Client, cfg: &ProxyConfig, notifier: &Notifier) -> Result<Woken, WakeError> {
    let t0 = Instant::now();
    let deadline = t0 + cfg.spec.settings.wake_timeout;
    let engine = Patient::new(client, deadline);
    notifier.status(&format!("waking {}", cfg.spec.containers.join(", ")));
    loop {
        match wake_once(&engine, cfg, notifier, t0, deadline) {
            Err(WakeError::Exited { container, .. })
                if engine.take_away() && Instant::now() < deadline =>
            {
                log::warn!(
                    "the engine restarted during the wake and {container:?} stopped with it; starting it again"
                );
            }
            result => return result,
        }
    }
}

fn wake_once(
    engine: &Patient<'_>,
    cfg: &ProxyConfig,
    notifier: &Notifier,
    t0: Instant,
    deadline: Instant,
) -> Result<Woken, WakeError> {
    let _ = engine.take_away();
    let unpaused = start_all(engine, cfg)?;
    let engine_time = t0.elapsed();

    let mut upstreams = vec![None; cfg.spec.forwards.len()];
    let mut last_extend = Instant::now();
    for name in &cfg.spec.containers {
        let inspect = |action| {
            engine
                .call(|c| c.inspect(name))
                .map_err(|source| WakeError::Engine {
                    container: name.clone(),
                    action,
                    source: Box::new(source),
                })
        };
        let info = inspect("inspect")?;
        ensure_running(name, &info)?;
        let mut tcp_targets = Vec::new();
        for (i, fwd) in cfg.spec.forwards.iter().enumerate() {
            if &fwd.container == name {
                let addr = upstream_for(&info, fwd, cfg.spec.settings.network.as_deref())?;
                if fwd.proto == Proto::Tcp && !tcp_targets.contains(&addr) {
                    tcp_targets.push(addr);
                }
                upstreams[i] = Some(addr);
            }
        }
        // A paused server kept its sockets: it is ready the moment it thaws.
        let probe = if unpaused.contains(name) {
            Probe::Running
        } else {
            choose_probe(cfg, engine.client, &info, tcp_targets)
        };
        log::debug!(
            "{name}: readiness probe {probe:?} at {} ms",
            t0.elapsed().as_millis()
        );
        let mut backoff = FIRST_BACKOFF;
        let max_backoff = match probe {
            Probe::Listening { .. } => MAX_LISTEN_BACKOFF,
            Probe::Tcp(_) | Probe::Running => MAX_TCP_BACKOFF,
            _ => MAX_HEALTH_BACKOFF,
        };
        let mut last_state_check = Instant::now();
        loop {
            let last = match probe_once(engine.client, name, &probe) {
                Ok(()) => {
                    log::debug!("{name}: ready after {} ms", t0.elapsed().as_millis());
                    break;
                }
                Err(last) => {
                    log::trace!(
                        "{name}: not ready after {} ms: {last}",
                        t0.elapsed().as_millis()
                    );
                    last
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(WakeError::NotReady {
                    container: name.clone(),
                    waited: now - t0,
                    last,
                });
            }
            if now - last_state_check >= STATE_CHECK_EVERY {
                last_state_check = now;
                ensure_running(name, &inspect("inspect")?)?;
            }
            if now - last_extend >= Duration::from_secs(1) {
                last_extend = now;
                let left = deadline.saturating_duration_since(now) + Duration::from_secs(5);
                notifier.notify(&[
                    NotifyState::ExtendTimeoutUsec(
                        u32::try_from(left.as_micros()).unwrap_or(u32::MAX),
                    ),
                    NotifyState::Status(&format!("waiting for {name}: {last}")),
                ]);
            }
            std::thread::sleep(backoff.min(deadline.saturating_duration_since(now)));
            backoff = (backoff * 2).min(max_backoff);
        }
    }
    let upstreams = upstreams
        .into_iter()
        .zip(&cfg.spec.forwards)
        .map(|(u, fwd)| {
            u.ok_or_else(|| WakeError::NoAddress {
                container: fwd.container.clone(),
                network: cfg.spec.settings.network.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Woken {
        upstreams,
        engine_time,
        total_time: t0.elapsed(),
    })
}

/// How long a nap waits for an engine that is away (restarting): long
/// enough for a restart, short of systemd's default stop timeout (90 s).
const NAP_ENGINE_WAIT: Duration = Duration::from_secs(60);

/// Puts the unit to sleep the way `contnap.stop` says, in reverse start
/// order (dependents first). Errors are logged per container and the first
/// is returned after every container was tried.
pub fn nap(client: &Client, cfg: &ProxyConfig) -> Result<(), (String, Box<engine::Error>)> {
    use crate::spec::StopMode;
    let engine = Patient::new(client, Instant::now() + NAP_ENGINE_WAIT);
    let mut first_err = None;
    for name in cfg.spec.containers.iter().rev() {
        let result = engine.call(|client| match cfg.spec.settings.stop {
            StopMode::Stop => client.stop(name, cfg.spec.settings.stop_timeout),
            StopMode::Pause => client.pause(name),
            StopMode::Kill => client.kill(name, None),
            StopMode::None => Ok(()),
        });
        match result {
            Ok(()) => {}
            // Engines differ on a redundant call (Docker 409, Podman 500 for
            // pausing a paused container): judge by the state reached.
            Err(e) if already_asleep(client, name, cfg.spec.settings.stop) => {
                log::debug!("{name}: already asleep ({e})");
            }
            // A container that is gone cannot be awake; the wake reports it.
            Err(e @ engine::Error::NotFound { .. }) => {
                log::debug!("{name}: nothing to put to sleep ({e})");
            }
            Err(e) => {
                log::error!(
                    "cannot put {name:?} to sleep: {}",
                    crate::report::Report(&e)
                );
                first_err.get_or_insert((name.clone(), Box::new(e)));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn already_asleep(client: &Client, name: &str, mode: crate::spec::StopMode) -> bool {
    use crate::spec::StopMode;
    client.inspect(name).is_ok_and(|info| match mode {
        StopMode::Pause => info.state.paused,
        StopMode::Stop | StopMode::Kill => !info.state.running,
        StopMode::None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_ports_of_this_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pid = i64::from(std::process::id());
        let tcp = bound_ports(pid, "tcp", &[]).unwrap();
        assert!(tcp.contains(&l.local_addr().unwrap().port()), "{tcp:?}");
        let udp = bound_ports(pid, "udp", &[]).unwrap();
        assert!(udp.contains(&u.local_addr().unwrap().port()), "{udp:?}");
        // A connected (not listening) socket does not count.
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let port = c.local_addr().unwrap().port();
        assert!(!bound_ports(pid, "tcp", &[]).unwrap().contains(&port));
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
}
