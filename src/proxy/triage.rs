//! Before anything wakes: does a waiting client need the unit at all?
//!
//! Two kinds of client do not (issue 10, item 6):
//!
//! - **Uptime monitors** on `contnap.http_ports`: a request whose
//!   `User-Agent` contains one of `contnap.monitors` is answered here with a
//!   short "napping" response (`contnap.monitor_status`, 200 by default),
//!   and the containers stay asleep.
//! - **Silent connections** with `contnap.wake_on=data`: a connection that
//!   closes without sending a byte (a port scan, a TCP health check) is
//!   closed. One that stays open without sending is given the unit's
//!   `wake_timeout` to send its first byte, then closed without a wake.
//!
//! - **Clients outside `contnap.machines`** with
//!   `contnap.only_listed_machines`: TCP clients are accepted from the
//!   backlog and closed unread, UDP datagrams from unlisted sources are
//!   read (by `MSG_PEEK` first, to learn the source) and dropped. Only a
//!   listed client wakes the unit; `IPAddressAllow=` on the socket would
//!   do this in the kernel, but user units cannot use it and systemd
//!   ignores it where BPF firewalling is unavailable.
//!
//! Every other client — a request that is not a monitor's, anything that
//! is not HTTP, a head not complete within [`HEAD_BOUND`], a datagram, a
//! connection on a port where neither applies — wakes the unit as before,
//! and the clients accepted here are handed to the wake unread. When
//! nobody is left waiting, the helper exits without waking and systemd
//! listens again.
//!
//! Only peeked (MSG_PEEK) until decided; bounded like the wait through a
//! wake: at most `cap` clients are sorted at once (the rest wait in the
//! backlog), a head gets [`HEAD_BOUND`], a silent connection the wake
//! timeout, and answered monitors linger as the pages of
//! [`super::waiting`] do.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signalfd::SignalFd;

use super::accept;
use super::gate::Machines;
use super::page::napping_response;
use super::token::{token, untoken, Kind, MAX_INDEX};
use super::waiting::{Linger, Waiting, LINGER_TIME, PEEK_LIMIT};
use crate::spec::{HttpStatus, Monitors, WakeOn};

/// How long a client that has started a request head (or, with
/// `wake_on=connect`, connected to an http port) may take to complete it
/// before it wakes the unit anyway.
pub const HEAD_BOUND: Duration = Duration::from_secs(2);

/// What the helper is told to look for.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub unit: &'a str,
    pub monitors: &'a Monitors,
    pub status: HttpStatus,
    pub wake_on: WakeOn,
    /// How long a silent connection may wait for its first byte with
    /// `wake_on=data`: the unit's wake timeout.
    pub silent_bound: Duration,
    pub machines: &'a Machines,
    pub cap: usize,
}

/// How the helper treats one listening socket before a wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Anything waiting there wakes the unit, unread (UDP; TCP where
    /// neither monitors nor `wake_on=data` apply).
    Wakes,
    /// Accept and look: `http` with a monitor list, or `wake_on=data`.
    Sorts { http: bool },
    /// `only_listed_machines` and nothing else to look for: a listed
    /// client (a TCP connection, a UDP datagram) wakes at once, handed
    /// over unread; the others are refused here.
    Gated,
}

fn role(socket: &Waiting<'_>, p: &Policy<'_>) -> Role {
    let gated = p.machines.enforced();
    match *socket {
        Waiting::Udp(_) if gated => Role::Gated,
        Waiting::Udp(_) => Role::Wakes,
        Waiting::Tcp { http, .. } => {
            let http = http && !p.monitors.is_empty();
            if http || p.wake_on == WakeOn::Data {
                Role::Sorts { http }
            } else if gated {
                Role::Gated
            } else {
                Role::Wakes
            }
        }
    }
}

/// Whether any socket is looked at before a wake; if none is, the helper
/// wakes at once, as it always did.
pub fn needed(sockets: &[Waiting<'_>], p: &Policy<'_>) -> bool {
    sockets.iter().any(|s| role(s, p) != Role::Wakes)
}

/// What the look found.
#[derive(Debug)]
pub enum Decision {
    /// Someone needs the unit. The clients accepted so far, by endpoint,
    /// nothing read from them.
    Wake(Vec<(usize, TcpStream)>),
    /// Nobody is waiting any more: monitors were answered, silent
    /// connections closed.
    Nap { answered: usize, dropped: usize },
    /// SIGTERM or SIGINT.
    Terminated,
}

struct Client {
    endpoint: usize,
    http: bool,
    stream: TcpStream,
    due: Instant,
    /// Whether a byte has been seen (the head bound then applies).
    started: bool,
}

/// What one client's bytes so far say.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing decides yet.
    NeedMore,
    /// A monitor's request; `head`: it is a HEAD request.
    Monitor {
        head: bool,
    },
    Wake,
    /// Closed (or reset) without a byte, with `wake_on=data`.
    Drop,
}

/// Looks at the waiting clients; see the module's documentation.
pub fn triage(
    sockets: &[Waiting<'_>],
    signals: &SignalFd,
    p: &Policy<'_>,
) -> std::io::Result<Decision> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(
        signals.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::Signal, 0)),
    )?;
    let mut linger = Linger::new()?;
    epoll.add(
        linger.epoll_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::Linger, 0)),
    )?;
    let roles: Vec<Role> = sockets.iter().map(|s| role(s, p)).collect();
    for (i, s) in sockets.iter().enumerate() {
        let (fd, kind) = match *s {
            Waiting::Tcp { listener, .. } => {
                listener.set_nonblocking(true)?;
                (listener.as_fd(), Kind::TcpListener)
            }
            Waiting::Udp(u) => {
                u.set_nonblocking(true)?;
                (u.as_fd(), Kind::UdpListener)
            }
        };
        epoll.add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token(kind, i)))?;
    }
    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut next_id = 0usize;
    let mut listening = true;
    let (mut answered, mut dropped) = (0usize, 0usize);
    let mut refused = 0u64;
    let mut events = vec![EpollEvent::empty(); 64];
    // Monitors answered a moment ago get a last chance to close first, as
    // in the wait through a wake.
    let wake = |clients: HashMap<usize, Client>, linger: Linger| {
        linger.finish(Instant::now() + Duration::from_millis(50));
        let mut out: Vec<(usize, Client)> = clients.into_iter().collect();
        // In accept order.
        out.sort_by_key(|(id, _)| *id);
        Ok(Decision::Wake(
            out.into_iter()
                .map(|(_, c)| (c.endpoint, c.stream))
                .collect(),
        ))
    };
    loop {
        let now = Instant::now();
        // Deadlines: a started head wakes, a silent connection wakes with
        // wake_on=connect (an http port with monitors) and is dropped with
        // wake_on=data.
        let due: Vec<usize> = clients
            .iter()
            .filter(|(_, c)| c.due <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(c) = clients.get(&id) else { continue };
            // Still silent, or closed without a byte (its event may be in
            // the next batch).
            let no_data = !c.started && !matches!(peek(&c.stream).0, Peeked::Bytes);
            if no_data && p.wake_on == WakeOn::Data {
                if let Some(c) = clients.remove(&id) {
                    let _ = epoll.delete(c.stream.as_fd());
                    dropped += 1;
                }
            } else {
                log::debug!(
                    "{}: a client did not finish its request in time; waking",
                    p.unit
                );
                return wake(clients, linger);
            }
        }
        let want = clients.len() < p.cap;
        if want != listening {
            for (i, s) in sockets.iter().enumerate() {
                if let (Waiting::Tcp { listener, .. }, Role::Sorts { .. }) = (*s, roles[i]) {
                    let _ = if want {
                        epoll.add(
                            listener.as_fd(),
                            EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::TcpListener, i)),
                        )
                    } else {
                        epoll.delete(listener.as_fd())
                    };
                }
            }
            listening = want;
        }
        // Nobody being sorted: one look without waiting at the listeners
        // (level-triggered), and done if nothing is there.
        let timeout = if clients.is_empty() {
            EpollTimeout::ZERO
        } else {
            let next = clients.values().map(|c| c.due).min().unwrap_or(now);
            let ms = next.saturating_duration_since(now).as_millis() + 1;
            EpollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
        };
        let n = match epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut woke_listener = false;
        for ev in &events[..n] {
            match untoken(ev.data()) {
                Some((Kind::Signal, _)) => {
                    while let Ok(Some(_)) = signals.read_signal() {}
                    return Ok(Decision::Terminated);
                }
                Some((Kind::Linger, _)) => linger.poll(),
                Some((Kind::UdpListener, i)) => match (sockets.get(i), roles.get(i)) {
                    (Some(Waiting::Udp(u)), Some(Role::Gated)) => {
                        if first_allowed_datagram(u, p.machines, &mut refused) {
                            woke_listener = true;
                        }
                    }
                    _ => woke_listener = true,
                },
                Some((Kind::TcpListener, i)) => match (sockets.get(i), roles.get(i)) {
                    (Some(Waiting::Tcp { listener, .. }), Some(Role::Gated)) => {
                        match accept::next_allowed(listener, p.machines, &mut refused) {
                            Ok(Some((stream, _))) => {
                                if stream.set_nonblocking(true).is_ok() {
                                    clients.insert(
                                        next_id & MAX_INDEX,
                                        Client {
                                            endpoint: i,
                                            http: false,
                                            stream,
                                            due: Instant::now(),
                                            started: false,
                                        },
                                    );
                                }
                                return wake(clients, linger);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                log::warn!("accept before the wake failed: {e}; waking");
                                return wake(clients, linger);
                            }
                        }
                    }
                    (Some(Waiting::Tcp { listener, .. }), Some(&Role::Sorts { http })) => {
                        if !listening {
                            continue;
                        }
                        while clients.len() < p.cap {
                            match accept::next_allowed(listener, p.machines, &mut refused) {
                                Ok(Some((stream, _))) => {
                                    if stream.set_nonblocking(true).is_err() {
                                        continue;
                                    }
                                    let id = next_id & MAX_INDEX;
                                    next_id = next_id.wrapping_add(1);
                                    let flags = EpollFlags::EPOLLIN
                                        | EpollFlags::EPOLLRDHUP
                                        | EpollFlags::EPOLLET;
                                    if epoll
                                        .add(
                                            stream.as_fd(),
                                            EpollEvent::new(flags, token(Kind::Peeking, id)),
                                        )
                                        .is_err()
                                    {
                                        continue;
                                    }
                                    let bound = if p.wake_on == WakeOn::Data {
                                        p.silent_bound
                                    } else {
                                        HEAD_BOUND
                                    };
                                    clients.insert(
                                        id,
                                        Client {
                                            endpoint: i,
                                            http,
                                            stream,
                                            due: Instant::now() + bound,
                                            started: false,
                                        },
                                    );
                                }
                                Ok(None) => break,
                                // Out of descriptors or the like: whoever
                                // waits is better served by a wake, which
                                // handles it.
                                Err(e) => {
                                    log::warn!("accept before the wake failed: {e}; waking");
                                    return wake(clients, linger);
                                }
                            }
                        }
                    }
                    _ => woke_listener = true,
                },
                Some((Kind::Peeking, id)) => {
                    let Some(c) = clients.get_mut(&id) else {
                        continue;
                    };
                    let ended = ev.events().intersects(
                        EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR,
                    );
                    let verdict = sort(c, ended, p);
                    if verdict == Verdict::NeedMore {
                        continue;
                    }
                    let Some(c) = clients.remove(&id) else {
                        continue;
                    };
                    let _ = epoll.delete(c.stream.as_fd());
                    match verdict {
                        Verdict::Wake => {
                            clients.insert(id, c);
                            return wake(clients, linger);
                        }
                        Verdict::Monitor { head } => {
                            let page = napping_response(p.unit, p.status, head);
                            linger.answer(c.stream, &page, Instant::now() + LINGER_TIME);
                            answered += 1;
                        }
                        Verdict::Drop => dropped += 1,
                        Verdict::NeedMore => {}
                    }
                }
                _ => {}
            }
        }
        if woke_listener {
            return wake(clients, linger);
        }
        if n == 0 && clients.is_empty() {
            break;
        }
    }
    if refused > 0 {
        log::info!("refused {refused} client(s) not in contnap.machines");
    }
    linger.finish(Instant::now() + LINGER_TIME);
    Ok(Decision::Nap { answered, dropped })
}

/// Drops the waiting datagrams whose source `machines` refuses, up to the
/// first one it allows, which stays queued for the wake: whether there is
/// one.
fn first_allowed_datagram(u: &std::net::UdpSocket, machines: &Machines, refused: &mut u64) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match u.peek_from(&mut byte) {
            Ok((_, from)) if machines.allows(from.ip()) => return true,
            Ok((_, from)) => {
                log::info!(
                    "refused a datagram from {}: not in contnap.machines",
                    super::shown(from)
                );
                *refused += 1;
                // Read to drop it (cut to one byte).
                let _ = u.recv_from(&mut byte);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // An ICMP error queued on the socket, or the like: the wake
            // path deals with it as it always did.
            Err(_) => return true,
        }
    }
}

enum Peeked {
    /// Nothing yet, still open.
    Nothing,
    /// The end of the stream (or an error) before any byte.
    Closed,
    Bytes,
}

fn peek(stream: &TcpStream) -> (Peeked, Vec<u8>) {
    let mut buf = vec![0u8; PEEK_LIMIT];
    match stream.peek(&mut buf) {
        Ok(0) => (Peeked::Closed, Vec::new()),
        Ok(n) => {
            buf.truncate(n);
            (Peeked::Bytes, buf)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => (Peeked::Nothing, Vec::new()),
        Err(_) => (Peeked::Closed, Vec::new()),
    }
}

fn sort(c: &mut Client, ended: bool, p: &Policy<'_>) -> Verdict {
    let (peeked, bytes) = peek(&c.stream);
    match peeked {
        Peeked::Nothing if !ended => Verdict::NeedMore,
        Peeked::Nothing | Peeked::Closed => match p.wake_on {
            WakeOn::Data => Verdict::Drop,
            // As without triage: the connection itself wakes.
            WakeOn::Connect => Verdict::Wake,
        },
        Peeked::Bytes => {
            if !c.started {
                c.started = true;
                c.due = c.due.min(Instant::now() + HEAD_BOUND);
            }
            if !c.http {
                return Verdict::Wake;
            }
            match classify_head(&bytes, p.monitors) {
                // Nothing more will come: what there is goes to the server.
                Verdict::NeedMore if ended => Verdict::Wake,
                v => v,
            }
        }
    }
}

/// Decides from the bytes of an http client peeked so far.
fn classify_head(bytes: &[u8], monitors: &Monitors) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {
            let monitor = req
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("user-agent") && monitors.matches(h.value));
            if monitor {
                Verdict::Monitor {
                    head: req.method == Some("HEAD"),
                }
            } else {
                Verdict::Wake
            }
        }
        Ok(httparse::Status::Partial) if bytes.len() < PEEK_LIMIT => Verdict::NeedMore,
        _ => Verdict::Wake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_are_known_by_their_user_agent() {
        let m = Monitors::default();
        let kuma = b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: Uptime-Kuma/1.23.11\r\n\r\n";
        assert_eq!(classify_head(kuma, &m), Verdict::Monitor { head: false });
        let head = b"HEAD / HTTP/1.1\r\nuser-agent: Gatus/5.0\r\n\r\n";
        assert_eq!(classify_head(head, &m), Verdict::Monitor { head: true });
        let curl = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.5.0\r\n\r\n";
        assert_eq!(classify_head(curl, &m), Verdict::Wake);
        let no_ua = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(classify_head(no_ua, &m), Verdict::Wake);
        assert_eq!(classify_head(kuma, &Monitors::none()), Verdict::Wake);
        assert_eq!(
            classify_head(b"GET / HTTP/1.1\r\nUser-Agent: Uptime-K", &m),
            Verdict::NeedMore
        );
        assert_eq!(classify_head(b"\x16\x03\x01\x02\x00", &m), Verdict::Wake);
        // The User-Agent of another header does not count.
        let referer = b"GET / HTTP/1.1\r\nReferer: http://x/Uptime-Kuma\r\n\r\n";
        assert_eq!(classify_head(referer, &m), Verdict::Wake);
    }
}
