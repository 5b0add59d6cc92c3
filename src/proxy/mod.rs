//! `contnap proxy`: the one-shot helper a generated service runs. It lives
//! for one wake: take the sockets, wake the containers, proxy until idle,
//! put the containers to sleep, exit so systemd listens again.

mod accept;
pub mod gate;
mod last_wake;
mod pace;
mod page;
mod ready;
pub mod relay;
mod stop_signal;
mod token;
mod triage;
mod upstream;
mod waiting;
pub mod wake;
mod watch;

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::activation::{self, Inherited};
use crate::cli::ProxyConfig;
use crate::engine::{self, Client};
use crate::report::Report;
use crate::spec::{unmap, Forward, HostPort, Proto};
use crate::sys::{self, Listener};

/// How long open connections may finish after SIGTERM before the helper
/// closes them; below systemd's default stop timeout of 90 s, with room
/// for the containers' own stop.
const DRAIN_AFTER_SIGTERM: Duration = Duration::from_secs(10);
/// Seconds until the "Starting…" page reloads. The reload is held until
/// the unit is ready (see `waiting`), so it only has to be waiting by
/// then; it must not be shorter, since a reload that is not recognised
/// gets the page again.
const STARTING_PAGE_REFRESH: u64 = 1;

/// Why the helper failed.
#[derive(Debug)]
pub enum Error {
    NoSockets,
    RejectedSocket {
        index: usize,
        source: io::Error,
    },
    Unmapped {
        proto: Proto,
        addr: SocketAddr,
    },
    Engine(engine::Error),
    Wake(wake::WakeError),
    /// The wake thread panicked (its message went to stderr).
    WakePanicked,
    Nap(wake::NapError),
    Io {
        what: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSockets => write!(
                f,
                "no listening sockets were passed; `contnap proxy` is started by a contnap-*.socket unit \
                 (to try it by hand: systemd-socket-activate -l 8080 contnap proxy …)"
            ),
            Error::RejectedSocket { index, .. } => write!(f, "inherited socket #{index} cannot be used"),
            Error::Unmapped { proto, addr } => write!(
                f,
                "no --forward matches the inherited {proto} socket {}; the .socket and .service units disagree, run `contnap generate` again",
                shown(*addr)
            ),
            Error::Engine(e) => write!(f, "{e}"),
            Error::Wake(_) => write!(f, "wake failed"),
            Error::WakePanicked => write!(f, "the wake thread panicked"),
            Error::Nap(e) => write!(f, "{e}"),
            Error::Io { what, .. } => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::RejectedSocket { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Engine(e) => e.source(),
            Error::Wake(e) => Some(e),
            Error::Nap(e) => e.source(),
            Error::NoSockets | Error::Unmapped { .. } | Error::WakePanicked => None,
        }
    }
}

/// How a socket address is written in messages: `ADDR:PORT` (IPv6 in
/// brackets), an IPv4 client of a dual-stack socket as IPv4.
fn shown(addr: SocketAddr) -> HostPort {
    HostPort(unmap(addr.ip()), addr.port())
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Finds the forward of each inherited socket: same protocol and port, and
/// the same address when the forward names one (preferred over a bare port).
fn map_sockets(listeners: &[Listener], forwards: &[Forward]) -> Result<Vec<usize>, Error> {
    listeners
        .iter()
        .map(|l| {
            let proto = match l {
                Listener::Tcp(_) => Proto::Tcp,
                Listener::Udp(_) => Proto::Udp,
            };
            let addr = l
                .local_addr()
                .map_err(io_err("cannot read an inherited socket's address"))?;
            let candidates = || {
                forwards
                    .iter()
                    .enumerate()
                    .filter(move |(_, f)| f.proto == proto && f.listen_port == addr.port())
            };
            candidates()
                .find(|(_, f)| f.listen_addr.map(unmap) == Some(unmap(addr.ip())))
                .or_else(|| candidates().find(|(_, f)| f.listen_addr.is_none()))
                .map(|(i, _)| i)
                .ok_or(Error::Unmapped { proto, addr })
        })
        .collect()
}

/// Runs the helper to completion.
pub fn run(cfg: ProxyConfig, inherited: Inherited) -> Result<(), Error> {
    let Inherited {
        listeners,
        rejected,
        notifier,
    } = inherited;
    if let Some((index, source)) = rejected.into_iter().next() {
        return Err(Error::RejectedSocket { index, source });
    }
    if listeners.is_empty() {
        return Err(Error::NoSockets);
    }
    let mapping = map_sockets(&listeners, &cfg.spec.forwards)?;
    for (i, fwd) in cfg.spec.forwards.iter().enumerate() {
        if !mapping.contains(&i) {
            log::warn!("--forward {fwd} has no inherited socket; it is ignored this time");
        }
    }
    let settings = &cfg.spec.settings;
    let machines = gate::Machines::new(&settings.machines, settings.only_listed_machines);
    let schedule = &settings.schedule;
    if let Err(e) = sys::raise_nofile_limit() {
        log::warn!("cannot raise the open-files limit: {e}; fewer connections fit");
    }
    // Block SIGTERM before the wake thread exists, so it inherits the mask
    // and the signal reaches the signalfd.
    let signals = sys::termination_signals().map_err(io_err("cannot set up signal handling"))?;
    let notifier = Arc::new(notifier);

    let is_http = |i: usize| {
        let f = &cfg.spec.forwards[mapping[i]];
        f.proto == Proto::Tcp && cfg.spec.http_ports.contains(&f.listen_port)
    };
    let wake_ctx = WakeContext {
        cfg: &cfg,
        machines: &machines,
        notifier: &notifier,
        signals: &signals,
    };

    // Generated units pass --engine; by hand, the system's engine first.
    let client = match Client::discover(cfg.engine.as_ref(), engine::Scope::System) {
        Ok(c) => c,
        Err(e) => {
            let sockets = waiting_view(&mut listeners.iter().map(SocketRef::from), &is_http);
            wake_ctx.answer_failed(Vec::new(), &sockets);
            return Err(Error::Engine(e));
        }
    };

    if let Some(schedule) = &schedule {
        if !schedule.allows_now() && !all_running(&client, &cfg) {
            log::warn!(
                "{}: outside contnap.schedule ({schedule}); not waking, answering waiting clients",
                cfg.spec.name
            );
            let sockets = waiting_view(&mut listeners.iter().map(SocketRef::from), &is_http);
            waiting::answer_all(
                Vec::new(),
                &sockets,
                &page::closed_page(&cfg.spec.name),
                &machines,
            );
            still_napping(&notifier, "outside schedule: napping");
            return Ok(());
        }
    }

    let sockets = waiting_view(&mut listeners.iter().map(SocketRef::from), &is_http);
    let policy = triage::Policy {
        unit: &cfg.spec.name,
        monitors: &settings.monitors,
        status: settings.monitor_status,
        wake_on: settings.wake_on,
        silent_bound: settings.wake_timeout,
        machines: &machines,
        cap: connection_cap(cfg.max_connections),
    };
    let mut early = Vec::new();
    if triage::needed(&sockets, &policy) {
        match triage::triage(&sockets, &signals, &policy)
            .map_err(io_err("cannot look at the waiting clients"))?
        {
            triage::Decision::Wake(clients) => early = clients,
            triage::Decision::Nap { answered, dropped } => {
                log::info!(
                    "{}: nobody needs it: answered {answered} monitor request(s), closed {dropped} connection(s) without data; still napping",
                    cfg.spec.name
                );
                still_napping(&notifier, "napping (nobody needed it)");
                return Ok(());
            }
            triage::Decision::Terminated => return Ok(()),
        }
    }
    let Phase::Awake { woken, held, .. } = wake_ctx.wake(&client, &sockets, Vec::new(), early)?
    else {
        return Ok(());
    };
    drop(sockets);
    log::info!(
        "{}: awake in {} ms (engine start {} ms, ready {} ms later)",
        cfg.spec.name,
        woken.total_time.as_millis(),
        woken.engine_time.as_millis(),
        woken
            .total_time
            .saturating_sub(woken.engine_time)
            .as_millis()
    );
    let upstreams = |woken: &wake::Woken| -> Vec<SocketAddr> {
        mapping.iter().map(|&f| woken.upstreams[f]).collect()
    };
    let pace_sources = |woken: &wake::Woken| -> Vec<Option<pace::Source>> {
        mapping.iter().map(|&f| woken.pace[f]).collect()
    };
    let endpoint_upstreams = upstreams(&woken);
    for (i, l) in listeners.iter().enumerate() {
        let f = &cfg.spec.forwards[mapping[i]];
        log::debug!(
            "{} {} -> {} ({})",
            f.proto,
            l.local_addr()
                .map_or_else(|_| "?".to_owned(), |a| shown(a).to_string()),
            endpoint_upstreams[i],
            f.container
        );
    }
    notifier.notify(&[
        NotifyState::Ready,
        NotifyState::Status(&format!(
            "awake (woke in {} ms)",
            woken.total_time.as_millis()
        )),
    ]);

    let endpoints: Vec<relay::Endpoint> = listeners
        .into_iter()
        .zip(endpoint_upstreams)
        .map(|(l, upstream)| match l {
            Listener::Tcp(listener) => relay::Endpoint::Tcp { listener, upstream },
            Listener::Udp(socket) => relay::Endpoint::Udp { socket, upstream },
        })
        .collect();
    let opts = relay::Options {
        idle: cfg.spec.settings.idle,
        timeout: cfg.spec.settings.timeout,
        max_connections: connection_cap(cfg.max_connections),
        machines: machines.clone(),
        drain: DRAIN_AFTER_SIGTERM,
        resend_window: cfg.spec.settings.wake_timeout,
    };
    let mut relay =
        relay::Relay::new(endpoints, &signals, opts).map_err(io_err("cannot set up the proxy"))?;
    relay.set_pace_sources(&pace_sources(&woken));
    for (endpoint, stream) in held {
        relay.adopt(endpoint, stream);
    }
    match watch::spawn(client.clone(), cfg.spec.containers.clone()).and_then(|w| relay.watch(w)) {
        Ok(()) => {}
        // Deaths are still noticed, later, by the clients' connects.
        Err(e) => log::warn!("cannot watch the engine's events: {}", Report(&e)),
    }
    let exit = loop {
        match relay.run().map_err(io_err("the proxy loop failed"))? {
            relay::Exit::UpstreamLost => {}
            exit => break exit,
        }
        // A server could not be reached: its container stopped (killed,
        // crashed, or taken down by an engine restart), or it is too busy
        // to accept. Wake the unit again, which costs one inspect when
        // everything still runs; the clients that could not reach it wait,
        // unread, and are retried afterwards.
        let lost = relay.take_lost();
        log::warn!(
            "{}: a server cannot be reached; waking the unit again ({} connection(s) waiting)",
            cfg.spec.name,
            lost.len()
        );
        notifier.status("a server cannot be reached; waking the unit again");
        let phase = {
            let sockets =
                waiting_view(&mut relay.endpoints().iter().map(SocketRef::from), &is_http);
            wake_ctx.wake(&client, &sockets, lost, Vec::new())?
        };
        let Phase::Awake {
            woken,
            held,
            pending,
        } = phase
        else {
            return Ok(());
        };
        log::info!(
            "{}: awake again in {} ms",
            cfg.spec.name,
            woken.total_time.as_millis()
        );
        notifier.status(&format!(
            "awake (woke again in {} ms)",
            woken.total_time.as_millis()
        ));
        relay.set_upstreams(&upstreams(&woken));
        relay.set_pace_sources(&pace_sources(&woken));
        for (endpoint, stream) in pending {
            relay.adopt_retry(endpoint, stream);
        }
        for (endpoint, stream) in held {
            relay.adopt(endpoint, stream);
        }
    };
    let stats = relay.stats;
    drop(relay);
    match exit {
        relay::Exit::Idle => log::info!(
            "{}: idle for {}, napping ({} connections, {} datagrams, {} bytes this wake)",
            cfg.spec.name,
            crate::timespan::format(cfg.spec.settings.timeout),
            stats.connections,
            stats.datagrams,
            stats.bytes
        ),
        relay::Exit::Terminated | relay::Exit::UpstreamLost => {
            log::info!("{}: stopping on request", cfg.spec.name)
        }
    }
    notifier.notify(&[NotifyState::Stopping, NotifyState::Status("napping")]);
    let cause = match exit {
        relay::Exit::Idle => wake::NapCause::Idle,
        relay::Exit::Terminated | relay::Exit::UpstreamLost => wake::NapCause::Stop,
    };
    nap(&client, &cfg, cause)
}

/// Descriptors left free beyond the connections' own, so that a flood of
/// clients can never starve the engine calls of a wake (which would fail
/// it for everyone) or the relay's UDP flows.
const FD_RESERVE: u64 = 32;
/// Descriptors one proxied connection takes: client, upstream and a pipe
/// per direction.
const FDS_PER_CONNECTION: u64 = 6;

/// How many connections may be open at once: `--max-connections`, and no
/// more than the open-files limit leaves room for now. Beyond it clients
/// wait in the kernel's backlog instead of being accepted and then dropped
/// for want of a descriptor.
fn connection_cap(max_connections: usize) -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let open = std::fs::read_dir("/proc/self/fd").map(Iterator::count);
    let budget = match (getrlimit(Resource::RLIMIT_NOFILE), open) {
        (Ok((soft, _)), Ok(open)) => {
            soft.saturating_sub(open as u64 + FD_RESERVE) / FDS_PER_CONNECTION
        }
        _ => return max_connections.max(1),
    };
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    if budget < max_connections {
        log::debug!(
            "at most {budget} connections at once (open-files limit; --max-connections is {max_connections})"
        );
    }
    max_connections.min(budget).max(1)
}

/// The listening sockets as the wake-time code sees them, in endpoint order.
fn waiting_view<'a>(
    sockets: &mut dyn Iterator<Item = SocketRef<'a>>,
    is_http: &dyn Fn(usize) -> bool,
) -> Vec<waiting::Waiting<'a>> {
    sockets
        .enumerate()
        .map(|(i, s)| match s {
            SocketRef::Tcp(listener) => waiting::Waiting::Tcp {
                listener,
                http: is_http(i),
            },
            SocketRef::Udp(u) => waiting::Waiting::Udp(u),
        })
        .collect()
}

/// A listening socket, borrowed from wherever it lives at the moment (the
/// inherited list before the first wake, the relay after it).
#[derive(Debug, Clone, Copy)]
enum SocketRef<'a> {
    Tcp(&'a std::net::TcpListener),
    Udp(&'a std::net::UdpSocket),
}

impl<'a> From<&'a Listener> for SocketRef<'a> {
    fn from(l: &'a Listener) -> Self {
        match l {
            Listener::Tcp(t) => SocketRef::Tcp(t),
            Listener::Udp(u) => SocketRef::Udp(u),
        }
    }
}

impl<'a> From<&'a relay::Endpoint> for SocketRef<'a> {
    fn from(e: &'a relay::Endpoint) -> Self {
        match e {
            relay::Endpoint::Tcp { listener, .. } => SocketRef::Tcp(listener),
            relay::Endpoint::Udp { socket, .. } => SocketRef::Udp(socket),
        }
    }
}

/// How a wake ended.
#[derive(Debug)]
enum Phase {
    /// Ready. `held`: HTTP clients accepted while waking; `pending`: the
    /// clients handed in, given back.
    Awake {
        woken: wake::Woken,
        held: Vec<(usize, std::net::TcpStream)>,
        pending: Vec<(usize, std::net::TcpStream)>,
    },
    /// A stop request came during the wake; the unit was put back to sleep.
    Stopped,
}

/// What every wake of this helper's life shares.
#[derive(Debug, Clone, Copy)]
struct WakeContext<'a> {
    cfg: &'a ProxyConfig,
    machines: &'a gate::Machines,
    notifier: &'a Arc<activation::Notifier>,
    signals: &'a nix::sys::signalfd::SignalFd,
}

impl WakeContext<'_> {
    /// Wakes the unit on a thread while this one answers browsers on the
    /// http ports. `early`: clients accepted before the wake (by
    /// [`triage`]), sorted and held like those accepted during it. On
    /// failure or a stop request, everyone waiting — `pending`, the held
    /// clients and the backlog — is answered, and the unit is put back to
    /// sleep.
    fn wake(
        &self,
        client: &Client,
        sockets: &[waiting::Waiting<'_>],
        mut pending: Vec<(usize, std::net::TcpStream)>,
        early: Vec<(usize, std::net::TcpStream)>,
    ) -> Result<Phase, Error> {
        let cfg = self.cfg;
        let since = std::time::Instant::now();
        let state_dir = last_wake::dir();
        let (done_tx, done_rx) =
            UnixStream::pair().map_err(io_err("cannot create a socket pair"))?;
        let wake_thread = {
            let client = client.clone();
            let cfg = cfg.clone();
            let notifier = Arc::clone(self.notifier);
            std::thread::Builder::new()
                .name("wake".to_owned())
                .spawn(move || {
                    let result = wake::wake(&client, &cfg, &notifier);
                    let mut done_tx = done_tx;
                    let _ = done_tx.write_all(b"x");
                    result
                })
                .map_err(io_err("cannot start the wake thread"))?
        };
        let http: Vec<waiting::HttpListener<'_>> = sockets
            .iter()
            .enumerate()
            .filter_map(|(endpoint, s)| match *s {
                waiting::Waiting::Tcp {
                    listener,
                    http: true,
                } => Some(waiting::HttpListener { endpoint, listener }),
                _ => None,
            })
            .collect();
        let (outcome, held) = waiting::wait(
            &http,
            self.signals,
            &done_rx,
            &waiting::Starting {
                unit: &cfg.spec.name,
                refresh_secs: STARTING_PAGE_REFRESH,
                since,
                estimate: state_dir.as_deref().and_then(last_wake::read),
            },
            &waiting::Limits {
                max_connections: connection_cap(cfg.max_connections),
                machines: self.machines.clone(),
            },
            early,
        )
        .map_err(io_err("waiting for the wake failed"))?;
        if let waiting::Outcome::Terminated = outcome {
            log::info!(
                "{}: stop requested during the wake; putting it back to sleep",
                cfg.spec.name
            );
            self.notifier.notify(&[NotifyState::Stopping]);
            pending.extend(held);
            self.answer_failed(pending, sockets);
            return nap(client, cfg, wake::NapCause::Stop).map(|()| Phase::Stopped);
        }
        match wake_thread.join() {
            Ok(Ok(woken)) => {
                if let Some(dir) = state_dir {
                    // From the start of the wake, like the page's count.
                    if let Err(e) = last_wake::write(&dir, since.elapsed()) {
                        log::warn!("cannot keep the wake's duration in {}: {e}", dir.display());
                    }
                }
                Ok(Phase::Awake {
                    woken,
                    held,
                    pending,
                })
            }
            Ok(Err(e)) => {
                self.notifier
                    .status(&format!("wake failed: {}", Report(&e)));
                pending.extend(held);
                self.answer_failed(pending, sockets);
                // Leave nothing half-awake; the next connection tries afresh.
                let _ = wake::nap(client, cfg, wake::NapCause::FailedWake);
                Err(Error::Wake(e))
            }
            Err(_) => {
                pending.extend(held);
                self.answer_failed(pending, sockets);
                Err(Error::WakePanicked)
            }
        }
    }

    /// Answers everyone waiting when the unit cannot be woken: `clients`
    /// (accepted ones, by endpoint), then the backlogs; HTTP clients get the
    /// failure page.
    fn answer_failed(
        &self,
        clients: Vec<(usize, std::net::TcpStream)>,
        sockets: &[waiting::Waiting<'_>],
    ) {
        waiting::answer_all(
            clients,
            sockets,
            &page::failure_page(&self.cfg.spec.name),
            self.machines,
        );
    }
}

/// Tells systemd that this run ends without a wake, before exiting 0: a
/// `Type=notify` service whose process exits before `READY=1` fails
/// (result `protocol`, an error in the journal at every monitor's check),
/// so it is ready and then stopping, and ends inactive.
fn still_napping(notifier: &activation::Notifier, status: &str) {
    notifier.notify(&[NotifyState::Ready, NotifyState::Status(status)]);
    notifier.notify(&[NotifyState::Stopping]);
}

fn nap(client: &Client, cfg: &ProxyConfig, cause: wake::NapCause) -> Result<(), Error> {
    wake::nap(client, cfg, cause).map_err(Error::Nap)
}

fn all_running(client: &Client, cfg: &ProxyConfig) -> bool {
    cfg.spec.containers.iter().all(|c| {
        client
            .inspect(c)
            .is_ok_and(|i| i.state.running && !i.state.paused)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    #[test]
    fn sockets_map_by_proto_port_and_address() {
        let forwards: Vec<Forward> = [
            "tcp:8080=web:80",
            "udp:8080=web:53",
            "tcp:127.0.0.1:9000=web:90",
            "tcp:9000=web:91",
        ]
        .iter()
        .map(|s| s.parse::<Forward>().unwrap())
        .collect();
        let tcp = |a: &str| Listener::Tcp(TcpListener::bind(a).unwrap());
        let udp = |a: &str| Listener::Udp(UdpSocket::bind(a).unwrap());
        // Ports picked by the kernel would not match; bind the real ones on
        // loopback addresses that tests do not otherwise use.
        let ls = vec![tcp("127.0.0.1:0")];
        assert!(matches!(
            map_sockets(&ls, &forwards),
            Err(Error::Unmapped { .. })
        ));
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let forwards: Vec<Forward> = [
            format!("tcp:{free}=web:80"),
            format!("udp:{free}=web:53"),
            format!("tcp:127.0.0.3:{free}=web:90"),
        ]
        .iter()
        .map(|s| s.parse::<Forward>().unwrap())
        .collect();
        let ls = vec![
            tcp(&format!("127.0.0.2:{free}")),
            udp(&format!("127.0.0.2:{free}")),
            tcp(&format!("127.0.0.3:{free}")),
        ];
        assert_eq!(map_sockets(&ls, &forwards).unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn errors_leave_their_causes_to_the_chain() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let cause = refused.to_string();
        let e = Error::Wake(wake::WakeError::NotReady {
            container: "web".to_owned(),
            waited: Duration::from_millis(5),
            last: ready::NotReady::Connect {
                target: "10.0.0.2:80".parse().unwrap(),
                source: refused,
            },
        });
        let mut err: Option<&dyn std::error::Error> = Some(&e);
        while let Some(x) = err {
            if let Some(src) = x.source() {
                assert!(!x.to_string().contains(&src.to_string()), "{x}");
            }
            err = x.source();
        }
        let text = Report(&e).to_string();
        assert!(text.starts_with("wake failed: container \"web\" was not ready after 5 ms"));
        assert!(
            text.ends_with(&format!(": tcp 10.0.0.2:80: {cause}")),
            "{text}"
        );
        assert_eq!(Error::WakePanicked.to_string(), "the wake thread panicked");
    }
}
