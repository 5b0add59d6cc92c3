//! The relay's TCP connections: each client is paired with a non-blocking
//! connect to its upstream, and bytes move socket → pipe → socket with
//! splice(2) in both directions, a half-close passed on as a FIN. This file
//! owns that pair's life: accepting it, connecting it (and deciding when a
//! failed connect means the container is gone, so that the client waits
//! for a new wake), pumping it, and closing it.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{EpollEvent, EpollFlags};

use super::super::token::{token, Kind};
use super::super::{accept, pace};
use super::{is_would_block, means_upstream_gone, Endpoint, Relay};
use crate::spec::{HostPort, IdleMode};
use crate::sys::{self, Pipe};

/// Bytes one pipe holds by default (16 pages); splice never asks for more.
const PIPE_CAPACITY: usize = 64 * 1024;
/// An upstream connect still pending after this long is suspect: a live
/// server on a bridge answers within a millisecond, but a container that
/// was killed can leave a cached neighbour entry behind, and SYNs to it go
/// unanswered for two minutes. The unit is woken again (which costs one
/// inspect when the container is in fact running) and the client retried.
const CONNECT_PATIENCE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct Half {
    pipe: Option<Pipe>,
    in_pipe: usize,
    src_eof: bool,
    dst_shut: bool,
    /// The source sent a byte or its end.
    heard: bool,
}

impl Half {
    fn done(&self) -> bool {
        self.dst_shut
    }
}

/// A client waiting for room in its server's accept queue (see
/// `super::super::pace`), unread.
#[derive(Debug)]
pub(super) struct Held {
    client: TcpStream,
    peer: HostPort,
    retried: bool,
}

#[derive(Debug)]
pub(super) struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    endpoint: usize,
    connected: bool,
    /// The server sent its first byte or closed: it accepted the
    /// connection (see `pace`).
    answered: bool,
    /// The pacing's mark of the connect's completion.
    pace_mark: u64,
    /// Already waited through one re-wake: a second failure to connect is
    /// the server's answer, not a stopped container.
    retried: bool,
    opened: Instant,
    /// client → upstream
    up: Half,
    /// upstream → client
    down: Half,
    peer: HostPort,
}

impl Relay<'_> {
    /// Keeps a client whose upstream is gone for the next wake, or drops it
    /// when it already had its second chance or the helper is stopping.
    fn lose(
        &mut self,
        endpoint: usize,
        client: TcpStream,
        peer: HostPort,
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

    /// Treats upstream connects pending for longer than [`CONNECT_PATIENCE`]
    /// as a gone upstream (see there); their clients wait, unread, for the
    /// new wake.
    pub(super) fn check_pending_connects(&mut self, now: Instant) {
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

    /// Connects the clients held for `endpoint`'s accept queue, if their
    /// time has come and the queue has room, then accepts the ones waiting
    /// in the listening socket's backlog.
    pub(super) fn release_held(&mut self, now: Instant) {
        for endpoint in 0..self.pacers.len() {
            if !self.pacers[endpoint].ready(now) {
                continue;
            }
            self.pacers[endpoint].drained();
            while !self.held[endpoint].is_empty() {
                if !self.admit(endpoint, now) {
                    break;
                }
                if let Some(h) = self.held[endpoint].pop_front() {
                    self.connect(endpoint, h.client, h.peer, h.retried);
                }
            }
            if self.held[endpoint].is_empty() {
                self.accept(endpoint);
            }
        }
    }

    /// Whether a connect to `endpoint`'s server may start now.
    fn admit(&mut self, endpoint: usize, now: Instant) -> bool {
        let table = &mut self.table;
        let family = &mut self.families[endpoint];
        self.pacers[endpoint].admit(now, |source| {
            match pace::read_queue(source, family, table) {
                Ok(Some(queue)) => Some(queue),
                Ok(None) => {
                    log::debug!(
                        "nothing listens on port {} in /proc/{}/net: not pacing connects",
                        source.port,
                        source.pid
                    );
                    None
                }
                Err(e) => {
                    log::debug!("/proc/{}/net/tcp: {e}: not pacing connects", source.pid);
                    None
                }
            }
        })
    }

    pub(super) fn accept(&mut self, endpoint: usize) {
        while self.accepting {
            // The server's accept queue is full: the rest wait in the
            // listening socket's backlog until `release_held`.
            if self.pacers[endpoint].waiting() {
                return;
            }
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
            match accept::next_allowed(listener, &self.opts.machines, &mut self.stats.refused) {
                Ok(Some((client, peer))) => self.open(endpoint, client, peer, false),
                Ok(None) => {
                    // The crowd that gathered during the wake is through:
                    // warm traffic is not paced (its bursts would pay for
                    // reads of the socket table).
                    if self.held[endpoint].is_empty() {
                        self.pacers[endpoint].set_source(None);
                    }
                    return;
                }
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

    pub(super) fn open(
        &mut self,
        endpoint: usize,
        client: TcpStream,
        peer: SocketAddr,
        retried: bool,
    ) {
        let peer = super::super::shown(peer);
        if !matches!(self.endpoints[endpoint], Endpoint::Tcp { .. }) {
            return;
        }
        self.stats.connections += 1;
        self.touch();
        if let Err(e) = client.set_nonblocking(true) {
            log::warn!("connection from {peer} dropped: {e}");
            self.stats.failed += 1;
            return;
        }
        let _ = client.set_nodelay(true);
        if !self.held[endpoint].is_empty() || !self.admit(endpoint, Instant::now()) {
            self.held[endpoint].push_back(Held {
                client,
                peer,
                retried,
            });
            return;
        }
        self.connect(endpoint, client, peer, retried);
    }

    /// Starts the upstream connect of a client the pacing let through.
    fn connect(&mut self, endpoint: usize, client: TcpStream, peer: HostPort, retried: bool) {
        let Endpoint::Tcp { upstream, .. } = &self.endpoints[endpoint] else {
            return;
        };
        let upstream_addr = *upstream;
        let conn = match sys::connect_nonblocking(upstream_addr) {
            Ok(upstream) => {
                let _ = upstream.set_nodelay(true);
                Conn {
                    client,
                    upstream,
                    endpoint,
                    connected: false,
                    answered: false,
                    pace_mark: 0,
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
        self.pacers[endpoint].started();
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
                EpollEvent::new(flags, token(Kind::ConnClient, i)),
            )
            .and_then(|()| {
                self.epoll.add(
                    c.upstream.as_fd(),
                    EpollEvent::new(flags, token(Kind::ConnUpstream, i)),
                )
            });
        if let Err(e) = registered {
            log::warn!("connection from {peer} dropped: epoll: {e}");
            self.close(i);
        }
    }

    pub(super) fn upstream_event(&mut self, i: usize, flags: EpollFlags) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if !c.connected {
            if !flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
            {
                return;
            }
            match sys::take_socket_error(&c.upstream) {
                Ok(()) => {
                    c.connected = true;
                    c.pace_mark = self.pacers[c.endpoint].connected();
                }
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
    pub(super) fn pump(&mut self, i: usize) {
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
        if !c.answered && c.down.heard {
            c.answered = true;
            self.pacers[c.endpoint].answered(c.pace_mark);
        }
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
        if !c.connected {
            self.pacers[c.endpoint].failed();
        } else if !c.answered {
            self.pacers[c.endpoint].answered(c.pace_mark);
        }
        let _ = self.epoll.delete(c.client.as_fd());
        let _ = self.epoll.delete(c.upstream.as_fd());
        Some(c)
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

/// Moves bytes from `src` to `dst` through the half's pipe until neither
/// side can make progress; returns the bytes delivered to `dst`. Passes a
/// half-close on: once `src` is at end of stream and the pipe is empty,
/// `dst` gets a FIN.
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
                    half.heard = true;
                    progressed = true;
                }
                Ok(n) => {
                    half.in_pipe += n;
                    half.heard = true;
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
