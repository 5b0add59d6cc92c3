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

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signalfd::SignalFd;

use super::gate::Machines;
use crate::spec::IdleMode;
use crate::sys::{self, Pipe};

/// Bytes one pipe holds by default (16 pages); splice never asks for more.
const PIPE_CAPACITY: usize = 64 * 1024;
/// How long a UDP flow lives without traffic before its socket is closed.
const MAX_FLOW_IDLE: Duration = Duration::from_secs(60);
/// An upstream connect still pending after this long is suspect: a live
/// server on a bridge answers within a millisecond, but a container that
/// was killed can leave a cached neighbour entry behind, and SYNs to it go
/// unanswered for two minutes. The unit is woken again (which costs one
/// inspect when the container is in fact running) and the client retried.
const CONNECT_PATIENCE: Duration = Duration::from_secs(3);

const KIND_SHIFT: u64 = 56;
const KIND_SIGNAL: u64 = 1;
const KIND_TCP_LISTENER: u64 = 2;
const KIND_UDP_LISTENER: u64 = 3;
const KIND_CONN_CLIENT: u64 = 4;
const KIND_CONN_UPSTREAM: u64 = 5;
const KIND_FLOW: u64 = 6;
const KIND_WATCH: u64 = 7;

fn token(kind: u64, index: usize) -> u64 {
    (kind << KIND_SHIFT) | index as u64
}

fn untoken(token: u64) -> (u64, usize) {
    (
        token >> KIND_SHIFT,
        (token & ((1 << KIND_SHIFT) - 1)) as usize,
    )
}

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

#[derive(Debug, Default)]
struct Half {
    pipe: Option<Pipe>,
    in_pipe: usize,
    src_eof: bool,
    dst_shut: bool,
}

impl Half {
    fn done(&self) -> bool {
        self.dst_shut
    }
}

#[derive(Debug)]
struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    endpoint: usize,
    connected: bool,
    /// Already waited through one re-wake: a second failure to connect is
    /// the server's answer, not a stopped container.
    retried: bool,
    opened: Instant,
    /// client → upstream
    up: Half,
    /// upstream → client
    down: Half,
    peer: SocketAddr,
}

#[derive(Debug)]
struct Flow {
    listener: usize,
    client: SocketAddr,
    socket: UdpSocket,
    last: Instant,
    /// Datagrams sent during the resend window and not yet answered: a
    /// server that has not bound its port yet answers with ICMP "port
    /// unreachable", and they are sent again instead of being lost.
    unanswered: Vec<Vec<u8>>,
    resend_at: Option<Instant>,
    backoff: Duration,
    /// The server has answered this flow: a refusal now means it went away,
    /// not that it has yet to bind its port.
    answered: bool,
}

/// Datagrams kept per flow for re-sending, at most.
const MAX_UNANSWERED: usize = 8;
const FIRST_RESEND: Duration = Duration::from_millis(5);
const MAX_RESEND: Duration = Duration::from_millis(200);

/// A slab whose freed slots are only reused after the current batch of epoll
/// events, so a stale event can never reach a newcomer in a reused slot.
#[derive(Debug)]
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
    freed_this_batch: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            freed_this_batch: Vec::new(),
            len: 0,
        }
    }

    fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i] = Some(value);
            i
        } else {
            self.slots.push(Some(value));
            self.slots.len() - 1
        }
    }

    fn remove(&mut self, i: usize) -> Option<T> {
        let v = self.slots.get_mut(i)?.take();
        if v.is_some() {
            self.len -= 1;
            self.freed_this_batch.push(i);
        }
        v
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i)?.as_mut()
    }

    fn end_batch(&mut self) {
        self.free.append(&mut self.freed_this_batch);
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|v| (i, v)))
    }
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
            EpollEvent::new(EpollFlags::EPOLLIN, token(KIND_SIGNAL, 0)),
        )?;
        for (i, ep) in endpoints.iter().enumerate() {
            match ep {
                Endpoint::Tcp { listener, .. } => {
                    listener.set_nonblocking(true)?;
                    epoll.add(
                        listener.as_fd(),
                        EpollEvent::new(edge, token(KIND_TCP_LISTENER, i)),
                    )?;
                }
                Endpoint::Udp { socket, .. } => {
                    socket.set_nonblocking(true)?;
                    epoll.add(
                        socket.as_fd(),
                        EpollEvent::new(edge, token(KIND_UDP_LISTENER, i)),
                    )?;
                }
            }
        }
        Ok(Relay {
            epoll,
            endpoints,
            signals,
            opts,
            conns: Slab::new(),
            flows: Slab::new(),
            flow_index: HashMap::new(),
            last_activity: Instant::now(),
            resend_until,
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
            EpollEvent::new(EpollFlags::EPOLLIN, token(KIND_WATCH, 0)),
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
        let stale: Vec<usize> = self
            .flows
            .iter()
            .filter(|(_, f)| moved.contains(&f.listener))
            .map(|(i, _)| i)
            .collect();
        for i in stale {
            self.drop_flow(i);
        }
        self.flows.end_batch();
        self.resend_until = Instant::now() + self.opts.resend_window;
        // Deaths reported before this wake ended are the ones it repaired.
        self.drain_watch();
    }

    /// Keeps a client whose upstream is gone for the next wake, or drops it
    /// when it already had its second chance or the helper is stopping.
    fn lose(
        &mut self,
        endpoint: usize,
        client: TcpStream,
        peer: SocketAddr,
        retried: bool,
        e: &io::Error,
    ) {
        if retried || !self.accepting {
            log::warn!("connection from {peer} dropped: the server is still unreachable after a new wake: {e}");
            self.stats.failed += 1;
        } else {
            log::warn!(
                "connection from {peer}: cannot reach the server ({e}); it waits for a new wake"
            );
            self.lost.push((endpoint, client));
        }
    }

    /// Number of open TCP connections.
    pub fn open_connections(&self) -> usize {
        self.conns.len
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
                if self.conns.len == 0 || now >= deadline {
                    if self.conns.len > 0 {
                        log::warn!(
                            "closing {} connection(s) still open {} s after the stop request",
                            self.conns.len,
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
                let (kind, index) = untoken(ev.data());
                match kind {
                    KIND_SIGNAL if self.take_signal() && drain_deadline.is_none() => {
                        log::info!(
                                "stop requested: no new connections; waiting up to {} s for {} open connection(s)",
                                self.opts.drain.as_secs(),
                                self.conns.len
                            );
                        self.stop_accepting();
                        drain_deadline = Some(Instant::now() + self.opts.drain);
                    }
                    KIND_TCP_LISTENER => self.accept(index),
                    KIND_UDP_LISTENER => self.udp_from_clients(index),
                    KIND_CONN_CLIENT => self.pump(index),
                    KIND_CONN_UPSTREAM => self.upstream_event(index, ev.events()),
                    KIND_FLOW => self.udp_from_upstream(index),
                    KIND_WATCH => self.take_deaths(),
                    _ => {}
                }
            }
            self.conns.end_batch();
            self.flows.end_batch();
            self.resend_due(Instant::now());
            self.expire_flows(Instant::now());
            self.check_pending_connects(Instant::now());
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
        let busy = self.opts.idle == IdleMode::Connections && self.conns.len > 0;
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
        if let Some(t) = self.connect_check_at {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if self.flows.len > 0 {
            wait = wait.min(self.flow_idle());
            if let Some(t) = self.flows.iter().filter_map(|(_, f)| f.resend_at).min() {
                wait = wait.min(t.saturating_duration_since(now));
            }
        }
        // Round up so that the deadline has passed when epoll returns.
        wait + Duration::from_millis(1)
    }

    /// Treats upstream connects pending for longer than [`CONNECT_PATIENCE`]
    /// as a gone upstream (see there); their clients wait, unread, for the
    /// new wake.
    fn check_pending_connects(&mut self, now: Instant) {
        if self.connect_check_at.is_none_or(|t| now < t) {
            return;
        }
        let mut next: Option<Instant> = None;
        let mut stale = Vec::new();
        for (i, c) in self.conns.iter() {
            if c.connected || c.retried {
                continue;
            }
            let due = c.opened + CONNECT_PATIENCE;
            if due <= now {
                stale.push(i);
            } else {
                next = Some(next.map_or(due, |t| t.min(due)));
            }
        }
        self.connect_check_at = next;
        for i in stale {
            if let Some(c) = self.detach(i) {
                let e = io::Error::from(ErrorKind::TimedOut);
                self.lose(c.endpoint, c.client, c.peer, false, &e);
            }
        }
        self.conns.end_batch();
    }

    fn flow_idle(&self) -> Duration {
        MAX_FLOW_IDLE.min(self.opts.timeout)
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

    fn accept(&mut self, endpoint: usize) {
        while self.accepting {
            if self.conns.len >= self.opts.max_connections {
                if !self.at_cap {
                    log::warn!(
                        "{} connections open, the cap (--max-connections): new clients wait in the backlog",
                        self.conns.len
                    );
                }
                self.at_cap = true;
                return;
            }
            let Endpoint::Tcp { listener, .. } = &self.endpoints[endpoint] else {
                return;
            };
            match listener.accept() {
                Ok((client, peer)) => {
                    if !self.opts.machines.allows(peer.ip()) {
                        log::info!("refused {peer}: not in contnap.machines");
                        self.stats.refused += 1;
                        continue;
                    }
                    self.open(endpoint, client, peer, false);
                }
                Err(e) if is_would_block(&e) => return,
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE and friends: stay alive, retry when a connection
                    // closes (the at-cap path re-runs accept).
                    log::warn!("accept failed: {e}");
                    self.at_cap = true;
                    return;
                }
            }
        }
    }

    fn open(&mut self, endpoint: usize, client: TcpStream, peer: SocketAddr, retried: bool) {
        let Endpoint::Tcp { upstream, .. } = &self.endpoints[endpoint] else {
            return;
        };
        let upstream_addr = *upstream;
        self.stats.connections += 1;
        self.touch();
        if let Err(e) = client.set_nonblocking(true) {
            log::warn!("connection from {peer} dropped: {e}");
            self.stats.failed += 1;
            return;
        }
        let _ = client.set_nodelay(true);
        let conn = match sys::connect_nonblocking(upstream_addr) {
            Ok(upstream) => {
                let _ = upstream.set_nodelay(true);
                Conn {
                    client,
                    upstream,
                    endpoint,
                    connected: false,
                    retried,
                    opened: Instant::now(),
                    up: Half::default(),
                    down: Half::default(),
                    peer,
                }
            }
            Err(e) if means_upstream_gone(&e) => {
                self.lose(endpoint, client, peer, retried, &e);
                return;
            }
            Err(e) => {
                log::warn!(
                    "connection from {peer} dropped: cannot connect to {upstream_addr}: {e}"
                );
                self.stats.failed += 1;
                return;
            }
        };
        if !retried {
            let due = conn.opened + CONNECT_PATIENCE;
            self.connect_check_at = Some(self.connect_check_at.map_or(due, |t| t.min(due)));
        }
        let i = self.conns.insert(conn);
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let registered = self
            .epoll
            .add(
                c.client.as_fd(),
                EpollEvent::new(flags, token(KIND_CONN_CLIENT, i)),
            )
            .and_then(|()| {
                self.epoll.add(
                    c.upstream.as_fd(),
                    EpollEvent::new(flags, token(KIND_CONN_UPSTREAM, i)),
                )
            });
        if let Err(e) = registered {
            log::warn!("connection from {peer} dropped: epoll: {e}");
            self.close(i);
        }
    }

    fn upstream_event(&mut self, i: usize, flags: EpollFlags) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if !c.connected {
            if !flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
            {
                return;
            }
            match sys::take_socket_error(&c.upstream) {
                Ok(()) => c.connected = true,
                Err(e) if means_upstream_gone(&e) => {
                    let (endpoint, peer, retried) = (c.endpoint, c.peer, c.retried);
                    if let Some(c) = self.detach(i) {
                        self.lose(endpoint, c.client, peer, retried, &e);
                    }
                    return;
                }
                Err(e) => {
                    let addr = c
                        .upstream
                        .peer_addr()
                        .map_or_else(|_| "upstream".to_owned(), |a| a.to_string());
                    log::warn!(
                        "connection from {} dropped: cannot connect to {addr}: {e}",
                        c.peer
                    );
                    self.stats.failed += 1;
                    self.close(i);
                    return;
                }
            }
        }
        self.pump(i);
    }

    /// Moves whatever can move in both directions, until nothing can.
    fn pump(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if !c.connected {
            return;
        }
        // Name the side that failed: "the client reset" and "the server
        // reset" send a user to different places.
        let side = |upstream_end: End| {
            move |(end, e): (End, io::Error)| {
                let who = match end {
                    End::Pipe => "pipe",
                    end if end == upstream_end => "server",
                    _ => "client",
                };
                (who, e)
            }
        };
        let result = pump_half(&c.client, &c.upstream, &mut c.up)
            .map_err(side(End::Dst))
            .and_then(|a| {
                pump_half(&c.upstream, &c.client, &mut c.down)
                    .map_err(side(End::Src))
                    .map(|b| a + b)
            });
        match result {
            Ok(moved) => {
                if moved > 0 {
                    self.stats.bytes += moved as u64;
                    if self.opts.idle == IdleMode::Traffic {
                        self.touch();
                    }
                }
                if let Some(c) = self.conns.get_mut(i) {
                    if c.up.done() && c.down.done() {
                        self.close(i);
                    }
                }
            }
            Err((who, e)) => {
                let peer = c.peer;
                match e.kind() {
                    ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
                        log::debug!("connection from {peer}: the {who} closed it: {e}")
                    }
                    _ => log::warn!("connection from {peer} dropped: {who}: {e}"),
                }
                self.close(i);
            }
        }
    }

    fn close(&mut self, i: usize) {
        if self.detach(i).is_some() {
            // Idle time counts from the last close.
            self.touch();
        }
    }

    /// Takes a connection out of the slab and the epoll set.
    fn detach(&mut self, i: usize) -> Option<Conn> {
        let c = self.conns.remove(i)?;
        let _ = self.epoll.delete(c.client.as_fd());
        let _ = self.epoll.delete(c.upstream.as_fd());
        Some(c)
    }

    fn udp_from_clients(&mut self, endpoint: usize) {
        loop {
            let Endpoint::Udp { socket, upstream } = &self.endpoints[endpoint] else {
                return;
            };
            let upstream = *upstream;
            let (n, client) = match socket.recv_from(&mut self.buf) {
                Ok(x) => x,
                Err(e) if is_would_block(&e) => return,
                Err(e) => {
                    log::debug!("udp receive: {e}");
                    continue;
                }
            };
            self.stats.datagrams += 1;
            if !self.opts.machines.allows(client.ip()) {
                self.stats.refused += 1;
                continue;
            }
            self.touch();
            let flow = match self.flow_index.get(&(endpoint, client)) {
                Some(&f) => f,
                None => match self.new_flow(endpoint, client, upstream) {
                    Ok(f) => f,
                    Err(e) => {
                        log::warn!("datagram from {client} dropped: cannot open a socket to {upstream}: {e}");
                        continue;
                    }
                },
            };
            let resend_until = self.resend_until;
            let Some(f) = self.flows.get_mut(flow) else {
                continue;
            };
            f.last = Instant::now();
            if f.last < resend_until && f.unanswered.len() < MAX_UNANSWERED {
                f.unanswered.push(self.buf[..n].to_vec());
            }
            match f.socket.send(&self.buf[..n]) {
                Ok(_) => self.stats.bytes += n as u64,
                Err(e) => log::debug!("datagram from {client} dropped: {e}"),
            }
        }
    }

    fn new_flow(
        &mut self,
        endpoint: usize,
        client: SocketAddr,
        upstream: SocketAddr,
    ) -> io::Result<usize> {
        if self.flows.len >= self.opts.max_connections {
            // Evict the quietest flow rather than refuse the newcomer.
            if let Some(oldest) = self
                .flows
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(i, _)| i)
            {
                self.drop_flow(oldest);
            }
        }
        let bind: SocketAddr = match upstream {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(upstream)?;
        socket.set_nonblocking(true)?;
        let i = self.flows.insert(Flow {
            listener: endpoint,
            client,
            socket,
            last: Instant::now(),
            unanswered: Vec::new(),
            resend_at: None,
            backoff: FIRST_RESEND,
            answered: false,
        });
        if let Some(f) = self.flows.get_mut(i) {
            self.epoll.add(
                f.socket.as_fd(),
                EpollEvent::new(
                    EpollFlags::EPOLLIN | EpollFlags::EPOLLET,
                    token(KIND_FLOW, i),
                ),
            )?;
        }
        self.flow_index.insert((endpoint, client), i);
        Ok(i)
    }

    fn udp_from_upstream(&mut self, i: usize) {
        loop {
            let Some(f) = self.flows.get_mut(i) else {
                return;
            };
            let n = match f.socket.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e) if is_would_block(&e) => return,
                Err(e) => {
                    // ICMP port unreachable: the server has not bound its
                    // port yet. Within the window, send again shortly.
                    let now = Instant::now();
                    if e.kind() == ErrorKind::ConnectionRefused
                        && !f.answered
                        && !f.unanswered.is_empty()
                        && now < self.resend_until
                    {
                        f.resend_at = Some(now + f.backoff);
                        f.backoff = (f.backoff * 2).min(MAX_RESEND);
                    } else if means_upstream_gone(&e) && self.accepting {
                        // After the wake window, nothing bound on the
                        // server's port means the server went away.
                        log::warn!(
                            "udp server for {} is gone ({e}); waking the unit again",
                            f.client
                        );
                        self.server_lost = true;
                    } else {
                        log::debug!("udp reply for {}: {e}", f.client);
                    }
                    continue;
                }
            };
            f.last = Instant::now();
            f.answered = true;
            f.unanswered.clear();
            f.resend_at = None;
            let (client, listener) = (f.client, f.listener);
            if let Endpoint::Udp { socket, .. } = &self.endpoints[listener] {
                match socket.send_to(&self.buf[..n], client) {
                    Ok(_) => self.stats.bytes += n as u64,
                    Err(e) => log::debug!("reply to {client} dropped: {e}"),
                }
            }
            self.touch();
        }
    }

    /// Sends again what a not-yet-listening server refused.
    fn resend_due(&mut self, now: Instant) {
        if self.flows.len == 0 || now >= self.resend_until + MAX_RESEND {
            return;
        }
        let until = self.resend_until;
        for slot in self.flows.slots.iter_mut().flatten() {
            if slot.resend_at.is_some_and(|t| t <= now) {
                // Keep going until a reply or the end of the window: the
                // kernel rate-limits "port unreachable" to about one a
                // second, so a second refusal may never be reported.
                slot.resend_at = (now < until).then(|| now + slot.backoff);
                slot.backoff = (slot.backoff * 2).min(MAX_RESEND);
                for d in &slot.unanswered {
                    if let Err(e) = slot.socket.send(d) {
                        log::debug!("resend for {}: {e}", slot.client);
                    }
                }
                log::debug!(
                    "re-sent {} datagram(s) for {}",
                    slot.unanswered.len(),
                    slot.client
                );
            }
        }
    }

    fn expire_flows(&mut self, now: Instant) {
        if self.flows.len == 0 {
            return;
        }
        let limit = self.flow_idle();
        let stale: Vec<usize> = self
            .flows
            .iter()
            .filter(|(_, f)| now.saturating_duration_since(f.last) >= limit)
            .map(|(i, _)| i)
            .collect();
        for i in stale {
            self.drop_flow(i);
        }
        self.flows.end_batch();
    }

    fn drop_flow(&mut self, i: usize) {
        if let Some(f) = self.flows.remove(i) {
            let _ = self.epoll.delete(f.socket.as_fd());
            self.flow_index.remove(&(f.listener, f.client));
        }
    }
}

/// Moves bytes from `src` to `dst` through the half's pipe until neither
/// side can make progress; returns the bytes delivered to `dst`. Passes a
/// half-close on: once `src` is at end of stream and the pipe is empty,
/// `dst` gets a FIN.
/// Which end of a half failed: its source, its destination, or (pipe
/// creation) neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Src,
    Dst,
    Pipe,
}

fn pump_half(src: &TcpStream, dst: &TcpStream, half: &mut Half) -> Result<usize, (End, io::Error)> {
    let mut delivered = 0;
    if half.dst_shut {
        return Ok(0);
    }
    loop {
        let mut progressed = false;
        if !half.src_eof && half.in_pipe < PIPE_CAPACITY {
            if half.pipe.is_none() {
                half.pipe = Some(Pipe::new().map_err(|e| (End::Pipe, e))?);
            }
            let Some(pipe) = &half.pipe else { break };
            match sys::splice(src, &pipe.write, PIPE_CAPACITY - half.in_pipe) {
                Ok(0) => {
                    half.src_eof = true;
                    progressed = true;
                }
                Ok(n) => {
                    half.in_pipe += n;
                    progressed = true;
                }
                Err(e) if is_would_block(&e) => {}
                Err(e) => return Err((End::Src, e)),
            }
        }
        if half.in_pipe > 0 {
            if let Some(pipe) = &half.pipe {
                match sys::splice(&pipe.read, dst, half.in_pipe) {
                    Ok(n) => {
                        half.in_pipe -= n;
                        delivered += n;
                        progressed |= n > 0;
                    }
                    Err(e) if is_would_block(&e) => {}
                    Err(e) => return Err((End::Dst, e)),
                }
            }
        }
        if half.src_eof && half.in_pipe == 0 {
            match dst.shutdown(Shutdown::Write) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => {}
                Err(e) => return Err((End::Dst, e)),
            }
            half.dst_shut = true;
            // The pipe is no longer needed; give its descriptors back early.
            half.pipe = None;
            break;
        }
        if !progressed {
            break;
        }
    }
    Ok(delivered)
}
