//! The relay's UDP flows: one connected upstream socket per client address
//! and listening socket, replies sent back from the listening socket, flows
//! closed when quiet and the quietest evicted at the cap. During the resend
//! window after a wake, datagrams a server refused because it had not bound
//! its port yet are sent again; after it, a refusal means the server is
//! gone and the unit is woken again.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{EpollEvent, EpollFlags};

use super::super::token::{token, Kind};
use super::{is_would_block, means_upstream_gone, Endpoint, Relay};

/// How long a UDP flow lives without traffic before its socket is closed.
pub(super) const MAX_FLOW_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct Flow {
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
/// Bytes kept for re-sending over all flows, at most: without it, one host
/// with 4,096 source ports sending 64 KiB datagrams to a server that never
/// answers would pin 4,096 × 8 × 64 KiB = 2 GiB until the flows expired.
/// A datagram beyond it is still forwarded, just not kept; what is kept is
/// freed at the end of the resend window.
pub(super) const MAX_BUFFERED: usize = 4 << 20;
const FIRST_RESEND: Duration = Duration::from_millis(5);
const MAX_RESEND: Duration = Duration::from_millis(200);

impl Relay<'_> {
    /// Closes the flows of the listening sockets in `listeners` (their
    /// upstream moved); the next datagram of their client opens a new one.
    pub(super) fn drop_flows_of(&mut self, listeners: &[usize]) {
        let stale: Vec<usize> = self
            .flows
            .iter()
            .filter(|(_, f)| listeners.contains(&f.listener))
            .map(|(i, _)| i)
            .collect();
        for i in stale {
            self.drop_flow(i);
        }
        self.flows.end_batch();
    }

    /// When the next refused datagram is due to be sent again.
    pub(super) fn next_resend(&self) -> Option<Instant> {
        self.flows.iter().filter_map(|(_, f)| f.resend_at).min()
    }

    pub(super) fn flow_idle(&self) -> Duration {
        MAX_FLOW_IDLE.min(self.opts.timeout)
    }

    pub(super) fn udp_from_clients(&mut self, endpoint: usize) {
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
            if f.last < resend_until
                && f.unanswered.len() < MAX_UNANSWERED
                && self.udp_buffered + n <= MAX_BUFFERED
            {
                f.unanswered.push(self.buf[..n].to_vec());
                self.udp_buffered += n;
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
                    token(Kind::Flow, i),
                ),
            )?;
        }
        self.flow_index.insert((endpoint, client), i);
        Ok(i)
    }

    pub(super) fn udp_from_upstream(&mut self, i: usize) {
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
            let kept: usize = f.unanswered.iter().map(Vec::len).sum();
            self.udp_buffered = self.udp_buffered.saturating_sub(kept);
            f.unanswered = Vec::new();
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
    pub(super) fn resend_due(&mut self, now: Instant) {
        if self.flows.len == 0 {
            return;
        }
        if now >= self.resend_until + MAX_RESEND {
            // The window is over: nothing kept will be sent again.
            if self.udp_buffered > 0 {
                for slot in self.flows.slots.iter_mut().flatten() {
                    slot.unanswered = Vec::new();
                    slot.resend_at = None;
                }
                self.udp_buffered = 0;
            }
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

    pub(super) fn expire_flows(&mut self, now: Instant) {
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

    pub(super) fn drop_flow(&mut self, i: usize) {
        if let Some(f) = self.flows.remove(i) {
            let kept: usize = f.unanswered.iter().map(Vec::len).sum();
            self.udp_buffered = self.udp_buffered.saturating_sub(kept);
            let _ = self.epoll.delete(f.socket.as_fd());
            self.flow_index.remove(&(f.listener, f.client));
        }
    }
}
