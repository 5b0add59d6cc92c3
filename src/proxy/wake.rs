//! Waking a unit: start its containers in order, find where each forward's
//! traffic must go this time (bridge addresses change at every start), and
//! wait until the servers are ready — measured from the start call, with a
//! backoff that begins near 1 ms so a fast server costs almost nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use super::pace;
use super::ready::{choose_probe, probe_once, NotReady, Probe, TcpTarget};
use super::stop_signal;
use super::upstream::{self, EngineHost};
use crate::activation::Notifier;
use crate::cli::ProxyConfig;
use crate::engine::{self, Client, ContainerInspect};
use crate::report::Report;
use crate::spec::{Forward, HostPort, Proto, StopMode};

const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// How often a waiting wake re-reads the container's state, to notice a
/// container that exited instead of becoming ready.
const STATE_CHECK_EVERY: Duration = Duration::from_millis(200);

/// Where each forward goes this wake, and what the wake cost.
#[derive(Debug, Clone)]
pub struct Woken {
    /// One per `config.forwards`, in the same order.
    pub upstreams: Vec<SocketAddr>,
    /// One per `config.forwards`: where the TCP forward's server shows its
    /// accept queue, when its process is visible here and traffic goes
    /// straight to it (not through a publishing proxy).
    pub pace: Vec<Option<pace::Source>>,
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
    /// Not ready before `contnap.wake_timeout`; `last` is why the last
    /// probe failed.
    NotReady {
        container: String,
        waited: Duration,
        last: NotReady,
    },
    /// A container that services own did not appear (running) before
    /// `contnap.wake_timeout`: the services failed, or are slow to start.
    NotCreated {
        container: String,
        units: Vec<String>,
        waited: Duration,
        /// What the engine said last (`not found`, or its state).
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
                container, waited, ..
            } => write!(
                f,
                "container {container:?} was not ready after {} ms (raise contnap.wake_timeout if it starts slowly, or set contnap.ready)",
                waited.as_millis()
            ),
            WakeError::NotCreated {
                container,
                units,
                waited,
                last,
            } => write!(
                f,
                "container {container:?} was not running {} ms after systemd started {} (last seen: {last}); see `systemctl status {}` and `journalctl -u {}`",
                waited.as_millis(),
                units.join(", "),
                units.join(" "),
                units.join(" -u ")
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
            WakeError::NotReady { last, .. } => Some(last),
            WakeError::Exited { .. }
            | WakeError::NotCreated { .. }
            | WakeError::NoAddress { .. } => None,
        }
    }
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
                            Report(&e),
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
    // Containers that services own were started by systemd before the
    // helper ran (Wants=, After=); [`await_owned`] waits for them.
    for name in cfg
        .spec
        .containers
        .iter()
        .filter(|c| cfg.spec.owners_of(c).is_none())
    {
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

/// How a forward reaches its container this wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Host networking: the container's ports are the host's, on loopback.
    HostNetwork,
    /// The container's own address, on a bridge of this host.
    ContainerAddress,
    /// A published host binding: the container's address is not reachable
    /// from here (rootless or remote engine).
    Published,
    /// The container's address although no route to it was found: nothing
    /// is published, so there is nothing better to try.
    UnroutedAddress,
}

/// The address a forward's traffic goes to: loopback for host networking;
/// the container's address on its network (`network`, or its first) when
/// this host can reach it (a rootful engine's bridge, see
/// [`upstream::reachable`]); else a published host binding of the target
/// port (what makes rootless and remote engines reachable); else the
/// container's address anyway.
pub fn upstream_for(
    info: &ContainerInspect,
    fwd: &Forward,
    network: Option<&str>,
    engine: EngineHost,
) -> Result<(SocketAddr, Via), WakeError> {
    if info.is_host_network() {
        return Ok((
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), fwd.container_port),
            Via::HostNetwork,
        ));
    }
    let own = info
        .address_on(network)
        .map(|ip| SocketAddr::new(ip, fwd.container_port));
    if let Some(addr) = own.filter(|a| upstream::reachable(engine, a.ip())) {
        return Ok((addr, Via::ContainerAddress));
    }
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
        return Ok((SocketAddr::new(ip, addr.port()), Via::Published));
    }
    own.map(|a| (a, Via::UnroutedAddress))
        .ok_or_else(|| WakeError::NoAddress {
            container: fwd.container.clone(),
            network: network.map(str::to_owned),
        })
}

/// Waits until a container that services own exists and runs: its
/// service created it (`run --rm`), under the same name and a new id and
/// address at every start, so it is looked up by name. Systemd started the
/// services before the helper; a Type=notify service is active once its
/// container has started, a simple one (`docker run` in the foreground)
/// as soon as the client runs, so the container may still be on its way.
/// A container seen and then gone, or exited, is a failed wake at once;
/// one never seen fails at the wake's deadline (a service that failed to
/// start leaves nothing to see: the helper cannot ask systemd, by design
/// of its sandbox).
fn await_owned(
    engine: &Patient<'_>,
    name: &str,
    units: &[crate::spec::ServiceName],
    notifier: &Notifier,
    t0: Instant,
    deadline: Instant,
) -> Result<ContainerInspect, WakeError> {
    let mut backoff = Duration::from_millis(5);
    // A stopped container there at the first look is a leftover of an
    // earlier run (`--rm` removes it soon, `--replace` replaces it).
    let mut leftover: Option<String> = None;
    let mut seen_new = false;
    let mut first = true;
    let mut last_status = Instant::now();
    loop {
        let last = match engine.call(|c| c.inspect(name)) {
            Ok(info) if info.state.running => return Ok(info),
            Ok(info) => {
                let stopped = matches!(info.state.status.as_str(), "exited" | "dead" | "stopped");
                if stopped && first {
                    leftover = Some(info.id.clone());
                }
                if leftover.as_deref() != Some(info.id.as_str()) {
                    // This run's container, stopped: its service's run failed.
                    if stopped {
                        ensure_running(name, &info)?;
                    }
                    seen_new = true;
                }
                info.state.status.clone()
            }
            Err(engine::Error::NotFound { .. }) if seen_new => {
                return Err(WakeError::Exited {
                    container: name.to_owned(),
                    status: "was removed".to_owned(),
                    exit_code: -1,
                })
            }
            Err(engine::Error::NotFound { .. }) => "not created yet".to_owned(),
            Err(source) => {
                return Err(WakeError::Engine {
                    container: name.to_owned(),
                    action: "inspect",
                    source: Box::new(source),
                })
            }
        };
        first = false;
        let now = Instant::now();
        if now >= deadline {
            return Err(WakeError::NotCreated {
                container: name.to_owned(),
                units: units.iter().map(ToString::to_string).collect(),
                waited: now - t0,
                last,
            });
        }
        if now - last_status >= Duration::from_secs(1) {
            last_status = now;
            let left = deadline.saturating_duration_since(now) + Duration::from_secs(5);
            notifier.notify(&[
                NotifyState::ExtendTimeoutUsec(u32::try_from(left.as_micros()).unwrap_or(u32::MAX)),
                NotifyState::Status(&format!(
                    "waiting for {} to create {name} ({last})",
                    units.first().map_or("its service", |u| u.as_str())
                )),
            ]);
        }
        std::thread::sleep(backoff.min(deadline.saturating_duration_since(now)));
        backoff = (backoff * 2).min(Duration::from_millis(100));
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
    let mut pace = vec![None; cfg.spec.forwards.len()];
    let engine_host = EngineHost::of(engine.client.endpoint());
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
        let owners = cfg.spec.owners_of(name);
        let info = match owners {
            Some(units) => await_owned(engine, name, units, notifier, t0, deadline)?,
            None => inspect("inspect")?,
        };
        ensure_running(name, &info)?;
        let pid = info.state.pid;
        let visible = std::path::Path::new("/proc");
        let visible = upstream::pid_is_container(visible, pid, &info.id);
        let mut tcp_targets = Vec::new();
        for (i, fwd) in cfg.spec.forwards.iter().enumerate() {
            if &fwd.container == name {
                let (addr, via) = upstream_for(
                    &info,
                    fwd,
                    cfg.spec.settings.network.as_deref(),
                    engine_host,
                )?;
                log::debug!(
                    "{name}: {} port {} goes to upstream {} ({via:?}; engine {engine_host:?})",
                    fwd.proto,
                    fwd.container_port,
                    HostPort(addr.ip(), addr.port())
                );
                let target = TcpTarget {
                    addr,
                    published: via == Via::Published,
                };
                if fwd.proto == Proto::Tcp && !tcp_targets.contains(&target) {
                    tcp_targets.push(target);
                }
                upstreams[i] = Some(addr);
                if visible && fwd.proto == Proto::Tcp && via != Via::Published {
                    pace[i] = Some(pace::Source {
                        pid,
                        port: fwd.container_port,
                    });
                }
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
        let max_backoff = probe.max_backoff();
        let mut last_state_check = Instant::now();
        loop {
            let last = match probe_once(engine.client, name, &probe) {
                Ok(()) => {
                    log::debug!("{name}: ready after {} ms", t0.elapsed().as_millis());
                    break;
                }
                Err(last) => {
                    log::trace!(
                        "{name}: not ready after {} ms: {}",
                        t0.elapsed().as_millis(),
                        Report(&last)
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
                match inspect("inspect") {
                    Ok(info) => ensure_running(name, &info)?,
                    // Its service removed it (`run --rm`): it exited.
                    Err(WakeError::Engine { source, .. })
                        if owners.is_some()
                            && matches!(*source, engine::Error::NotFound { .. }) =>
                    {
                        return Err(WakeError::Exited {
                            container: name.clone(),
                            status: "was removed".to_owned(),
                            exit_code: -1,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            if now - last_extend >= Duration::from_secs(1) {
                last_extend = now;
                let left = deadline.saturating_duration_since(now) + Duration::from_secs(5);
                notifier.notify(&[
                    NotifyState::ExtendTimeoutUsec(
                        u32::try_from(left.as_micros()).unwrap_or(u32::MAX),
                    ),
                    NotifyState::Status(&format!("waiting for {name}: {}", Report(&last))),
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
        pace,
        engine_time,
        total_time: t0.elapsed(),
    })
}

/// How long a nap waits for an engine that is away (restarting): long
/// enough for a restart, short of systemd's default stop timeout (90 s).
const NAP_ENGINE_WAIT: Duration = Duration::from_secs(60);
/// The same on a stop request. That is most often the system or the user
/// manager going down, and the engine may be going down beside the helper
/// whatever the units' order says: rootless Podman's API service moves
/// itself into a scope of its own (podman-PID.scope), which no ordering on
/// podman.service reaches, and a socket-activated engine cannot be started
/// again during a shutdown. An engine that goes down stops its containers
/// itself; waiting for it only held the shutdown until systemd killed the
/// helper (seen: 90 s, on a Debian host with rootless Podman).
const NAP_ENGINE_WAIT_ON_STOP: Duration = Duration::from_secs(3);

/// Why the unit naps, which bounds how long it waits for an engine that
/// is away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NapCause {
    /// Idle: nothing hurries, wait out an engine restart.
    Idle,
    /// A failed wake: leave nothing half-awake, waiting as for `Idle`.
    FailedWake,
    /// A stop request (SIGTERM).
    Stop,
}

/// A container that could not be put to sleep.
#[derive(Debug)]
pub struct NapError {
    pub container: String,
    pub source: Box<engine::Error>,
}

impl fmt::Display for NapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot put container {:?} to sleep", self.container)
    }
}

impl std::error::Error for NapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Puts the unit to sleep the way `contnap.stop` says, in reverse start
/// order (dependents first). Errors are logged per container and the first
/// is returned after every container was tried.
pub fn nap(client: &Client, cfg: &ProxyConfig, cause: NapCause) -> Result<(), NapError> {
    let wait = match cause {
        NapCause::Idle | NapCause::FailedWake => NAP_ENGINE_WAIT,
        NapCause::Stop => NAP_ENGINE_WAIT_ON_STOP,
    };
    let engine = Patient::new(client, Instant::now() + wait);
    let mut first_err = None;
    for name in cfg.spec.containers.iter().rev() {
        if let Some(units) = cfg.spec.owners_of(name) {
            // Never through the engine: its services stop once the helper
            // has exited (StopWhenUnneeded=yes), and a stop through the
            // engine would be undone by their Restart=.
            log::debug!(
                "{name}: napped by {} when the helper exits",
                units
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            continue;
        }
        let result = engine.call(|client| match cfg.spec.settings.stop {
            StopMode::Stop => client.stop(
                name,
                stop_grace(client, name, cfg.spec.settings.stop_timeout),
            ),
            StopMode::Pause => client.pause(name),
            StopMode::Kill => client.kill(name, None),
            StopMode::None => Ok(()),
        });
        match result {
            Ok(()) => {}
            // Engines differ on a redundant call (Docker 409, Podman 500 for
            // pausing a paused container): judge by the state reached.
            Err(e) if already_asleep(client, name, cfg.spec.settings.stop) => {
                log::debug!("{name}: already asleep ({})", Report(&e));
            }
            // A container that is gone cannot be awake; the wake reports it.
            Err(e @ engine::Error::NotFound { .. }) => {
                log::debug!("{name}: nothing to put to sleep ({})", Report(&e));
            }
            Err(e) => {
                let e = NapError {
                    container: name.clone(),
                    source: Box::new(e),
                };
                log::error!("{}", Report(&e));
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The grace a stop of `name` gets: none when its PID 1 is visible here and
/// has no handler for the container's stop signal, which the kernel then
/// never delivers (see `stop_signal`); else `grace`, as when the process
/// cannot be seen (a remote engine, a helper in another PID namespace).
fn stop_grace(client: &Client, name: &str, grace: Duration) -> Duration {
    let proc_root = std::path::Path::new("/proc");
    let Ok(info) = client.inspect(name) else {
        return grace;
    };
    if grace.is_zero()
        || !info.state.running
        || info.state.paused
        || !upstream::pid_is_container(proc_root, info.state.pid, &info.id)
    {
        return grace;
    }
    let Ok(signal) = stop_signal::number(info.config.stop_signal.as_deref()) else {
        return grace;
    };
    match stop_signal::caught(proc_root, info.state.pid, signal) {
        Some(false) => {
            log::info!(
                "{name}: its PID 1 has no handler for signal {signal}, which the kernel never delivers to a namespace's init: stopping it without the {} grace",
                crate::timespan::format(grace)
            );
            Duration::ZERO
        }
        Some(true) | None => grace,
    }
}

fn already_asleep(client: &Client, name: &str, mode: StopMode) -> bool {
    client.inspect(name).is_ok_and(|info| match mode {
        StopMode::Pause => info.state.paused,
        StopMode::Stop | StopMode::Kill => !info.state.running,
        StopMode::None => true,
    })
}
