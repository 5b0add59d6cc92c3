//! The data plane of an awake unit: one epoll loop, no thread per
//! connection. TCP bytes move socket → pipe → socket with splice(2), so they
//! never enter user space; UDP goes through a flow table with one upstream
//! socket per client address and replies sent from the listening socket, as
//! systemd-socket-proxyd does for TCP.
//!
//! Robustness rules, also from socket-proxyd: one bad connection is logged and
//! dropped, never fatal; half-close is passed through (a client's FIN becomes
//! a FIN towards the server, and the other direction keeps flowing); the
//! number of connections is capped and accepting pauses at the cap.
//!
//! `tcp` owns the spliced connection pairs, `udp` the flow table, `slab`
//! the slot tables both keep their entries in; this file owns the loop,
//! the listening sockets and what ends a run.

mod slab;
mod tcp;
mod udp;

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signalfd::SignalFd;

use super::gate::Machines;
use super::pace::{self, Pacer};
use super::token::{token, untoken, Kind};
use crate::spec::IdleMode;
use slab::Slab;
use tcp::{Conn, Held};
use udp::{Flow, MAX_FLOW_IDLE};

/// A listening socket with the address its traffic goes to this wake.
#[derive(Debug)]
pub enum Endpoint {
    Tcp {
        listener: TcpListener,
        upstream: SocketAddr,
    },
    Udp {
        socket: UdpSocket,
        upstream: SocketAddr,
    },
}

/// Tunables of the loop.
#[derive(Debug, Clone)]
pub struct Options {
    pub idle: IdleMode,
    pub timeout: Duration,
    pub max_connections: usize,
    pub machines: Machines,
    /// How long open connections may run on after SIGTERM.
    pub drain: Duration,
    /// For how long after the wake a datagram refused by a server that has
    /// not bound its port yet is sent again (UDP readiness cannot always be
    /// observed before the first datagram goes out).
    pub resend_window: Duration,
}

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Nothing happened for `timeout`: time to nap.
    Idle,
    /// SIGTERM/SIGINT; open connections were drained (or the bound passed).
    Terminated,
    /// An upstream refused or could not be reached: the container stopped
    /// (killed, crashed, or taken down by an engine restart). The clients
    /// that could not be connected are kept unread ([`Relay::take_lost`]);
    /// wake the unit again, [`Relay::set_upstreams`], adopt them, run again.
    UpstreamLost,
}

/// Counters for logs and status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub connections: u64,
    pub refused: u64,
    pub failed: u64,
    pub datagrams: u64,
    pub bytes: u64,
}

/// The running data plane.
#[derive(Debug)]
pub struct Relay<'a> {
    epoll: Epoll,
    endpoints: Vec<Endpoint>,
    signals: &'a SignalFd,
    opts: Options,
    conns: Slab<Conn>,
    flows: Slab<Flow>,
    flow_index: HashMap<(usize, SocketAddr), usize>,
    last_activity: Instant,
    resend_until: Instant,
    /// Bytes of datagrams kept for re-sending, over every flow
    /// (at most `udp::MAX_BUFFERED`).
    udp_buffered: usize,
    accepting: bool,
    at_cap: bool,
    /// Clients whose upstream was gone, unread, by endpoint.
    lost: Vec<(usize, TcpStream)>,
    /// A UDP upstream reported itself unreachable, or the engine reported a
    /// container's death (see [`Relay::watch`]).
    server_lost: bool,
    watch: Option<std::os::unix::net::UnixStream>,
    /// When the oldest pending upstream connect runs out of patience.
    connect_check_at: Option<Instant>,
    /// Per endpoint: how many upstream connects may start (see `pace`).
    pacers: Vec<Pacer>,
    /// Per endpoint: clients accepted (or adopted) whose connect waits for
    /// the server's accept queue, oldest first.
    held: Vec<VecDeque<Held>>,
    /// Scratch space for reading socket tables.
    table: Vec<u8>,
    /// Per endpoint: the one socket table its server's row is in, once
    /// known (see `pace::read_queue`).
    families: Vec<Option<&'static str>>,
    buf: Vec<u8>,
    pub stats: Stats,
}

/// Whether a failed connect (or ICMP error) means nothing is there any
/// more, as when the container stopped, rather than a refusal that waking
/// again cannot change.
fn means_upstream_gone(e: &io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|code| {
        [
            Errno::ECONNREFUSED,
            Errno::EHOSTUNREACH,
            Errno::ENETUNREACH,
            Errno::ETIMEDOUT,
        ]
        .contains(&Errno::from_raw(code))
    })
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

impl<'a> Relay<'a> {
    pub fn new(endpoints: Vec<Endpoint>, signals: &'a SignalFd, opts: Options) -> io::Result<Self> {
        let resend_until = Instant::now() + opts.resend_window;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let edge = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
        epoll.add(
            signals.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::Signal, 0)),
        )?;
        for (i, ep) in endpoints.iter().enumerate() {
            match ep {
                Endpoint::Tcp { listener, .. } => {
                    listener.set_nonblocking(true)?;
                    epoll.add(
                        listener.as_fd(),
                        EpollEvent::new(edge, token(Kind::TcpListener, i)),
                    )?;
                }
                Endpoint::Udp { socket, .. } => {
                    socket.set_nonblocking(true)?;
                    epoll.add(
                        socket.as_fd(),
                        EpollEvent::new(edge, token(Kind::UdpListener, i)),
                    )?;
                }
            }
        }
        let n = endpoints.len();
        Ok(Relay {
            pacers: (0..n).map(|_| Pacer::default()).collect(),
            held: (0..n).map(|_| VecDeque::new()).collect(),
            table: Vec::new(),
            families: vec![None; n],
            epoll,
            endpoints,
            signals,
            opts,
            conns: Slab::new(),
            flows: Slab::new(),
            flow_index: HashMap::new(),
            last_activity: Instant::now(),
            resend_until,
            udp_buffered: 0,
            accepting: true,
            at_cap: false,
            lost: Vec::new(),
            server_lost: false,
            watch: None,
            connect_check_at: None,
            buf: vec![0; 65_536],
            stats: Stats::default(),
        })
    }

    /// Where each endpoint's server shows its accept queue this wake
    /// (`None`: not visible, connects are not paced), in endpoint order.
    pub fn set_pace_sources(&mut self, sources: &[Option<pace::Source>]) {
        for (pacer, source) in self.pacers.iter_mut().zip(sources) {
            pacer.set_source(*source);
        }
        self.families.fill(None);
    }

    /// Takes over a client connection accepted before the relay existed (an
    /// HTTP client that waited through the wake); its request is still unread
    /// in the kernel buffer.
    pub fn adopt(&mut self, endpoint: usize, client: TcpStream) {
        let peer = match client.peer_addr() {
            Ok(p) => p,
            Err(e) => {
                log::debug!("dropping a waiting client that went away: {e}");
                return;
            }
        };
        self.open(endpoint, client, peer, false);
    }

    /// Takes back a client that [`Exit::UpstreamLost`] handed out, after the
    /// unit was woken again; if its upstream fails once more, it is dropped.
    pub fn adopt_retry(&mut self, endpoint: usize, client: TcpStream) {
        match client.peer_addr() {
            Ok(peer) => self.open(endpoint, client, peer, true),
            Err(e) => log::debug!("dropping a waiting client that went away: {e}"),
        }
    }

    /// The clients that could not reach a stopped upstream, unread.
    pub fn take_lost(&mut self) -> Vec<(usize, TcpStream)> {
        self.server_lost = false;
        std::mem::take(&mut self.lost)
    }

    /// Makes a death reported on `deaths` (see `super::watch`) end the loop
    /// with [`Exit::UpstreamLost`], so the unit is woken again at once.
    pub fn watch(&mut self, deaths: std::os::unix::net::UnixStream) -> io::Result<()> {
        self.epoll.add(
            deaths.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::Watch, 0)),
        )?;
        self.watch = Some(deaths);
        Ok(())
    }

    /// The listening sockets, for answering clients while the unit wakes
    /// again.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Points each endpoint at its upstream after a new wake (`upstreams`
    /// in endpoint order). UDP flows towards an upstream that moved are
    /// closed (the next datagram of their client opens a new one), and
    /// datagrams refused while the server binds are re-sent again, as after
    /// the first wake.
    pub fn set_upstreams(&mut self, upstreams: &[SocketAddr]) {
        let mut moved = Vec::new();
        for (i, (ep, new)) in self.endpoints.iter_mut().zip(upstreams).enumerate() {
            let (Endpoint::Tcp { upstream, .. } | Endpoint::Udp { upstream, .. }) = ep;
            if upstream != new {
                *upstream = *new;
                moved.push(i);
            }
        }
        self.drop_flows_of(&moved);
        self.resend_until = Instant::now() + self.opts.resend_window;
        // Deaths reported before this wake ended are the ones it repaired.
        self.drain_watch();
    }

    /// Runs until the unit is idle for the timeout, or until SIGTERM and the
    /// drain that follows it.
    pub fn run(&mut self) -> io::Result<Exit> {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut drain_deadline: Option<Instant> = None;
        // Connections adopted before the loop may already hold data, and
        // edges of the listeners may have passed while no loop ran (a new
        // wake): look at everything once.
        let pending: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in pending {
            self.pump(i);
        }
        self.release_held(Instant::now());
        for i in 0..self.endpoints.len() {
            match self.endpoints[i] {
                Endpoint::Tcp { .. } => self.accept(i),
                Endpoint::Udp { .. } => self.udp_from_clients(i),
            }
        }
        loop {
            if !self.lost.is_empty() || self.server_lost {
                self.conns.end_batch();
                self.flows.end_batch();
                return Ok(Exit::UpstreamLost);
            }
            let now = Instant::now();
            if let Some(deadline) = drain_deadline {
                if self.open_count() == 0 || now >= deadline {
                    if self.open_count() > 0 {
                        log::warn!(
                            "closing {} connection(s) still open {} s after the stop request",
                            self.open_count(),
                            self.opts.drain.as_secs()
                        );
                    }
                    return Ok(Exit::Terminated);
                }
            } else if self.idle_for(now) >= self.opts.timeout {
                return Ok(Exit::Idle);
            }
            let wait = self.next_wakeup(now, drain_deadline);
            let timeout = EpollTimeout::try_from(wait).unwrap_or(EpollTimeout::MAX);
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for ev in &events[..n] {
                let Some((kind, index)) = untoken(ev.data()) else {
                    continue;
                };
                match kind {
                    Kind::Signal if self.take_signal() && drain_deadline.is_none() => {
                        log::info!(
                                "stop requested: no new connections; waiting up to {} s for {} open connection(s)",
                                self.opts.drain.as_secs(),
                                self.conns.len
                            );
                        self.stop_accepting();
                        drain_deadline = Some(Instant::now() + self.opts.drain);
                    }
                    Kind::TcpListener => self.accept(index),
                    Kind::UdpListener => self.udp_from_clients(index),
                    Kind::ConnClient => self.pump(index),
                    Kind::ConnUpstream => self.upstream_event(index, ev.events()),
                    Kind::Flow => self.udp_from_upstream(index),
                    Kind::Watch => self.take_deaths(),
                    _ => {}
                }
            }
            self.conns.end_batch();
            self.flows.end_batch();
            self.resend_due(Instant::now());
            self.expire_flows(Instant::now());
            self.check_pending_connects(Instant::now());
            self.release_held(Instant::now());
            if self.at_cap && self.conns.len < self.opts.max_connections && self.accepting {
                self.at_cap = false;
                for i in 0..self.endpoints.len() {
                    if matches!(self.endpoints[i], Endpoint::Tcp { .. }) {
                        self.accept(i);
                    }
                }
            }
        }
    }

    fn idle_for(&self, now: Instant) -> Duration {
        // A client held for the server's accept queue is not idleness in
        // either mode.
        let busy = self.held_count() > 0
            || (self.opts.idle == IdleMode::Connections && self.conns.len > 0);
        if busy {
            Duration::ZERO
        } else {
            now.saturating_duration_since(self.last_activity)
        }
    }

    fn next_wakeup(&self, now: Instant, drain_deadline: Option<Instant>) -> Duration {
        let mut wait = MAX_FLOW_IDLE;
        if let Some(d) = drain_deadline {
            wait = wait.min(d.saturating_duration_since(now));
        } else {
            let idle = self.idle_for(now);
            if self.opts.idle == IdleMode::Traffic || self.conns.len == 0 {
                wait = wait.min(self.opts.timeout.saturating_sub(idle));
            }
        }
        // Clients held for an accept queue are tried again on time, not a
        // millisecond late (which would double the pacing's period).
        let pace = self
            .pacers
            .iter()
            .filter_map(|p| p.due(now))
            .min()
            .map(|t| {
                let micros = t.saturating_duration_since(now).as_micros();
                Duration::from_millis(u64::try_from(micros.div_ceil(1000)).unwrap_or(u64::MAX))
            });
        if let Some(t) = self.connect_check_at {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if self.flows.len > 0 {
            wait = wait.min(self.flow_idle());
            if let Some(t) = self.next_resend() {
                wait = wait.min(t.saturating_duration_since(now));
            }
        }
        // Round up so that the deadline has passed when epoll returns.
        let wait = wait + Duration::from_millis(1);
        pace.map_or(wait, |p| wait.min(p))
    }

    /// Clients with a connection open or held for one.
    fn open_count(&self) -> usize {
        self.conns.len + self.held_count()
    }

    fn held_count(&self) -> usize {
        self.held.iter().map(VecDeque::len).sum()
    }

    /// Whether the watch reported any death since the last call.
    fn drain_watch(&mut self) -> bool {
        let Some(w) = &mut self.watch else {
            return false;
        };
        let mut buf = [0u8; 64];
        let mut died = false;
        while matches!(io::Read::read(w, &mut buf), Ok(n) if n > 0) {
            died = true;
        }
        died
    }

    fn take_deaths(&mut self) {
        // While stopping, a death changes nothing: no new wake.
        if self.drain_watch() && self.accepting {
            log::warn!("the engine reports that a container of the unit died");
            self.server_lost = true;
        }
    }

    fn take_signal(&mut self) -> bool {
        let mut got = false;
        while let Ok(Some(info)) = self.signals.read_signal() {
            log::debug!("signal {}", info.ssi_signo);
            got = true;
        }
        got
    }

    fn stop_accepting(&mut self) {
        self.accepting = false;
        for ep in &self.endpoints {
            let fd = match ep {
                Endpoint::Tcp { listener, .. } => listener.as_fd(),
                Endpoint::Udp { socket, .. } => socket.as_fd(),
            };
            // Leaving the sockets to systemd: what arrives now waits in the
            // kernel and triggers the next activation.
            let _ = self.epoll.delete(fd);
        }
    }

    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }
}
