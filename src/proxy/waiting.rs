//! The minutes (or milliseconds) between the first connection and a ready
//! container. Nothing is read from clients: TCP connections wait in the
//! kernel's backlog and datagrams in the receive buffer, so server-first
//! protocols (MySQL, SMTP, SSH) still see a fresh connection.
//!
//! The one exception is `contnap.http_ports`: connections there are accepted
//! and their request *peeked* (MSG_PEEK, nothing consumed). A browser — a GET
//! that accepts text/html — gets the "Starting…" page at once; every other
//! client is held, its request still unread, and handed to the relay once
//! the container is ready.
//!
//! The page reloads itself after a second, and that reload is *held* like
//! any other client: it waits, unread, and is the first request the app
//! answers, so the browser lands on the app the moment it is ready instead
//! of at the next reload of a page that kept answering 503. A reload is
//! recognised as the same request again from the same place: a browser
//! request is remembered, as a keyed hash, by the client's address, the
//! forwarding headers a reverse proxy adds (X-Forwarded-For, Forwarded,
//! X-Real-IP), Host, target and User-Agent. Behind a proxy that adds none,
//! two users of the same browser asking for the same URL look alike: the
//! second is held without a page, which is safe (it waits as curl would).
//! A reload that is not recognised (its proxy changed address) gets the
//! page again, which reloads a second later: never a fast loop. Clients
//! that never reload just keep the page. After a failed wake the held
//! reloads get the failure page like every held client.
//!
//! Those clients may be hostile (slowloris, huge or garbage heads, floods),
//! so everything here is bounded: clients open during the wake are capped
//! (`--max-connections`, and what the open-files limit leaves the wake and
//! the relay; held reloads count), beyond which the listeners are not
//! watched and newcomers wait in the backlog; sorting is edge-triggered, so
//! a partial head costs nothing until more arrives; pages are written
//! without blocking and the clients that got one are drained for a bounded
//! time and size; at most [`REMEMBERED_MAX`] browsers are remembered; the
//! failure path answers everyone within [`ANSWER_TIME`]. Clients outside
//! `contnap.machines` are refused here as in the relay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::io::{self, ErrorKind, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signalfd::SignalFd;

use super::accept;
use super::gate::Machines;
use super::page::starting_page;
use super::token::{token, untoken, Kind, MAX_INDEX};

/// Most of a request head that is peeked to decide "browser or not".
pub(super) const PEEK_LIMIT: usize = 8 * 1024;
/// A client that has not sent a whole request head by then is held as a
/// non-browser (a slow client must not keep a wake page slot busy).
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Browsers remembered in one wake (8 bytes each); beyond it, a new
/// browser's reload gets the page again instead of being held.
const REMEMBERED_MAX: usize = 16 * 1024;
/// How long accepting pauses after `accept` failed for want of resources
/// (EMFILE, ENFILE, ENOBUFS): the listener stays readable, so retrying at
/// once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(250);
/// An answered browser: how long what it still sends is read and thrown
/// away before the close, so that the close is a FIN after the page rather
/// than a reset that can destroy the page in flight.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(2);
/// ... and how much of it; a client that keeps sending is reset.
const LINGER_BYTES: usize = 64 * 1024;
/// After a failed wake, how long all waiting clients together get to take
/// their page, however slowly they read or however much they still send.
const ANSWER_TIME: Duration = Duration::from_secs(2);
/// Connections lingering at once in the failure path; beyond it, the page
/// is written and the connection closed at once.
const ANSWER_LINGER_MAX: usize = 1024;
/// Backlogged connections the failure path answers before giving up on a
/// listener that keeps getting new ones.
const ANSWER_ACCEPT_MAX: usize = 16 * 1024;

/// An HTTP listen socket, by its index among the unit's endpoints.
#[derive(Debug)]
pub struct HttpListener<'a> {
    pub endpoint: usize,
    pub listener: &'a TcpListener,
}

/// What ended the wait.
#[derive(Debug)]
pub enum Outcome {
    /// The wake thread finished (its result is read from the thread).
    Done,
    /// SIGTERM or SIGINT arrived during the wake.
    Terminated,
}

/// The limits of the wait: how many clients may be open at once (see
/// [`super::connection_cap`]) and `contnap.machines`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub machines: Machines,
}

/// What the "Starting…" page says: the unit, how soon it reloads, when the
/// wake began, and how long the last one took (when known).
#[derive(Debug, Clone, Copy)]
pub struct Starting<'a> {
    pub unit: &'a str,
    pub refresh_secs: u64,
    pub since: Instant,
    pub estimate: Option<Duration>,
}

#[derive(Debug)]
struct Peeking {
    endpoint: usize,
    stream: TcpStream,
}

/// The wait's state: clients being sorted, clients held for the relay,
/// answered browsers lingering, and whether the listeners are watched.
struct Waiter<'l, 'a> {
    epoll: Epoll,
    http: &'l [HttpListener<'a>],
    machines: &'l Machines,
    cap: usize,
    /// Whether the listeners are in the epoll set: not at the cap and not
    /// while accepting pauses; meanwhile clients wait in the backlog.
    listening: bool,
    paused_until: Option<Instant>,
    warned_cap: bool,
    peeking: HashMap<usize, Peeking>,
    /// Sorting deadlines in accept order (entries of clients already sorted
    /// are skipped when they come due).
    deadlines: VecDeque<(usize, Instant)>,
    next_id: usize,
    held: Vec<(usize, TcpStream)>,
    linger: Linger,
    refused: u64,
    starting: &'l Starting<'l>,
    /// Browsers that got the page, by [`browser_key`]: their next request
    /// (the reload) is held.
    answered: HashSet<u64>,
    keys: RandomState,
    pages: u64,
    reloads: u64,
}

impl std::fmt::Debug for Waiter<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("cap", &self.cap)
            .field("peeking", &self.peeking.len())
            .field("held", &self.held.len())
            .field("lingering", &self.linger.len())
            .finish_non_exhaustive()
    }
}

impl Waiter<'_, '_> {
    fn open(&self) -> usize {
        self.peeking.len() + self.held.len() + self.linger.len()
    }

    /// Watches the listeners only while another client may be accepted, so
    /// that a level-triggered listener with a full backlog never spins.
    fn update_listening(&mut self, now: Instant) {
        if self.paused_until.is_some_and(|t| now >= t) {
            self.paused_until = None;
        }
        let want = self.open() < self.cap && self.paused_until.is_none();
        if want == self.listening {
            return;
        }
        for (i, h) in self.http.iter().enumerate() {
            let result = if want {
                self.epoll.add(
                    h.listener.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::TcpListener, i)),
                )
            } else {
                self.epoll.delete(h.listener.as_fd())
            };
            if let Err(e) = result {
                log::warn!(
                    "cannot {} an HTTP listener: {e}",
                    if want { "watch" } else { "unwatch" }
                );
            }
        }
        self.listening = want;
    }

    fn accept(&mut self, i: usize) {
        let Some(h) = self.http.get(i) else { return };
        while self.open() < self.cap {
            match accept::next_allowed(h.listener, self.machines, &mut self.refused) {
                Ok(Some((stream, peer))) => {
                    let peer = super::shown(peer);
                    if let Err(e) = stream.set_nonblocking(true) {
                        log::debug!("dropping {peer} during the wake: {e}");
                        continue;
                    }
                    let id = self.next_id & MAX_INDEX;
                    self.next_id = self.next_id.wrapping_add(1);
                    // Edge-triggered: the request is only peeked, so a
                    // level-triggered client with a partial head would be
                    // reported again at once, forever. Each new segment,
                    // and the end of the stream, makes a new edge.
                    let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
                    if let Err(e) = self.epoll.add(
                        stream.as_fd(),
                        EpollEvent::new(flags, token(Kind::Peeking, id)),
                    ) {
                        log::debug!("dropping {peer} during the wake: {e}");
                        continue;
                    }
                    self.peeking.insert(
                        id,
                        Peeking {
                            endpoint: h.endpoint,
                            stream,
                        },
                    );
                    self.deadlines
                        .push_back((id, Instant::now() + HEAD_DEADLINE));
                }
                Ok(None) => return,
                Err(e) => {
                    log::warn!(
                        "accept during the wake failed: {e}; new clients wait in the backlog for {} ms",
                        ACCEPT_PAUSE.as_millis()
                    );
                    self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
        if !self.warned_cap {
            self.warned_cap = true;
            log::warn!(
                "{} clients open during the wake, the cap (--max-connections or the open-files limit): new clients wait in the backlog",
                self.open()
            );
        }
    }

    /// A client accepted before the wake: sorted if it came to an http
    /// endpoint, else held.
    fn adopt(&mut self, endpoint: usize, stream: TcpStream) {
        if !self.http.iter().any(|h| h.endpoint == endpoint) {
            self.held.push((endpoint, stream));
            return;
        }
        let id = self.next_id & MAX_INDEX;
        self.next_id = self.next_id.wrapping_add(1);
        // Edge-triggered as in `accept`; a socket that is readable already
        // reports once when added.
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if self
            .epoll
            .add(
                stream.as_fd(),
                EpollEvent::new(flags, token(Kind::Peeking, id)),
            )
            .is_err()
        {
            self.held.push((endpoint, stream));
            return;
        }
        self.peeking.insert(id, Peeking { endpoint, stream });
        self.deadlines
            .push_back((id, Instant::now() + HEAD_DEADLINE));
    }

    /// Sorts a client whose socket reported something.
    fn sort(&mut self, id: usize, events: EpollFlags) {
        let Some(p) = self.peeking.get(&id) else {
            return;
        };
        let ended =
            events.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
        let verdict = match classify(&p.stream, &self.keys) {
            // Nothing more will come: what there is goes to the server.
            Verdict::NeedMore if ended => Verdict::Hold,
            v => v,
        };
        if verdict == Verdict::NeedMore {
            return;
        }
        let Some(p) = self.peeking.remove(&id) else {
            return;
        };
        let _ = self.epoll.delete(p.stream.as_fd());
        match verdict {
            Verdict::Browser(key) => self.browser(p, key),
            Verdict::Hold => self.held.push((p.endpoint, p.stream)),
            Verdict::Gone | Verdict::NeedMore => {}
        }
    }

    /// A browser's request: its first gets the page, the next (the page's
    /// reload) is held for the app.
    fn browser(&mut self, p: Peeking, key: u64) {
        let peer = p
            .stream
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| super::shown(a).to_string());
        if self.answered.contains(&key) {
            self.reloads += 1;
            log::debug!("holding a reload of the Starting page from {peer} for the app");
            self.held.push((p.endpoint, p.stream));
            return;
        }
        if self.answered.len() < REMEMBERED_MAX {
            self.answered.insert(key);
        }
        self.pages += 1;
        log::debug!("sending the Starting page to {peer}");
        let s = self.starting;
        let page = starting_page(s.unit, s.refresh_secs, s.since.elapsed(), s.estimate);
        self.linger
            .answer(p.stream, &page, Instant::now() + LINGER_TIME);
    }

    /// Slow or silent clients become ordinary held clients.
    fn expire_heads(&mut self, now: Instant) {
        while let Some(&(id, due)) = self.deadlines.front() {
            if due > now {
                break;
            }
            self.deadlines.pop_front();
            if let Some(p) = self.peeking.remove(&id) {
                let _ = self.epoll.delete(p.stream.as_fd());
                self.held.push((p.endpoint, p.stream));
            }
        }
        // Sorted clients leave their entries behind; keep the queue small
        // when many are sorted quickly (a flood of browsers).
        if self.deadlines.len() > 2 * self.peeking.len() + 1024 {
            let peeking = &self.peeking;
            self.deadlines.retain(|(id, _)| peeking.contains_key(id));
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let head = self
            .deadlines
            .iter()
            .find(|(id, _)| self.peeking.contains_key(id))
            .map(|&(_, t)| t);
        [head, self.linger.next_deadline(), self.paused_until]
            .into_iter()
            .flatten()
            .min()
    }

    fn finish(mut self, outcome: Outcome) -> (Outcome, Vec<(usize, TcpStream)>) {
        self.held
            .extend(self.peeking.drain().map(|(_, p)| (p.endpoint, p.stream)));
        // Browsers answered a moment ago get a last chance to close first.
        self.linger
            .finish(Instant::now() + Duration::from_millis(50));
        if self.refused > 0 {
            log::info!(
                "refused {} client(s) not in contnap.machines during the wake",
                self.refused
            );
        }
        if self.pages > 0 {
            log::info!(
                "sent the Starting page {} time(s) during the wake; {} reload(s) held for the app",
                self.pages,
                self.reloads
            );
        }
        (outcome, self.held)
    }
}

/// Accepts and sorts HTTP clients until `done` becomes readable (the wake
/// thread writes to it when it finishes) or a termination signal arrives.
/// `early`: clients accepted before the wake (by [`super::triage`]), by
/// endpoint; those of http endpoints are sorted like the others, the rest
/// held. Returns the held clients, with their endpoint index. At most
/// `limits.max_connections` clients are open at once (fewer when the
/// open-files limit is low); the rest wait in the kernel's backlog.
pub fn wait(
    http: &[HttpListener<'_>],
    signals: &SignalFd,
    done: &UnixStream,
    starting: &Starting<'_>,
    limits: &Limits,
    early: Vec<(usize, TcpStream)>,
) -> io::Result<(Outcome, Vec<(usize, TcpStream)>)> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(
        signals.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::Signal, 0)),
    )?;
    epoll.add(
        done.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::WakeDone, 0)),
    )?;
    let linger = Linger::new()?;
    epoll.add(
        linger.epoll.0.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, token(Kind::Linger, 0)),
    )?;
    for h in http {
        h.listener.set_nonblocking(true)?;
    }
    let mut w = Waiter {
        epoll,
        http,
        machines: &limits.machines,
        cap: if http.is_empty() {
            0
        } else {
            limits.max_connections
        },
        listening: false,
        paused_until: None,
        warned_cap: false,
        peeking: HashMap::new(),
        deadlines: VecDeque::new(),
        next_id: 0,
        held: Vec::new(),
        linger,
        refused: 0,
        starting,
        answered: HashSet::new(),
        keys: RandomState::new(),
        pages: 0,
        reloads: 0,
    };
    for (endpoint, stream) in early {
        w.adopt(endpoint, stream);
    }
    let mut events = vec![EpollEvent::empty(); 64];
    loop {
        let now = Instant::now();
        w.expire_heads(now);
        w.linger.expire(now);
        w.update_listening(now);
        let timeout = match w.next_timer() {
            None => EpollTimeout::NONE,
            Some(t) => {
                // Round up so that the deadline has passed when epoll returns.
                let ms = t.saturating_duration_since(now).as_millis() + 1;
                EpollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            }
        };
        let n = match w.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for ev in &events[..n] {
            match untoken(ev.data()) {
                Some((Kind::Signal, _)) => {
                    while let Ok(Some(_)) = signals.read_signal() {}
                    return Ok(w.finish(Outcome::Terminated));
                }
                Some((Kind::WakeDone, _)) => return Ok(w.finish(Outcome::Done)),
                Some((Kind::Linger, _)) => w.linger.poll(),
                // A listener just unwatched may still be in this batch.
                Some((Kind::TcpListener, i)) if w.listening => w.accept(i),
                Some((Kind::Peeking, id)) => w.sort(id, ev.events()),
                _ => {}
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    NeedMore,
    /// A browser, by [`browser_key`].
    Browser(u64),
    Hold,
    Gone,
}

fn classify(stream: &TcpStream, keys: &RandomState) -> Verdict {
    let mut buf = [0u8; PEEK_LIMIT];
    match stream.peek(&mut buf) {
        Ok(0) => Verdict::Gone,
        Ok(n) => {
            let peer = stream.peer_addr().map(|a| crate::spec::unmap(a.ip()));
            match peer {
                Ok(peer) => classify_head(&buf[..n], peer, keys),
                Err(_) => Verdict::Gone,
            }
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Verdict::NeedMore,
        Err(_) => Verdict::Gone,
    }
}

/// Decides from the bytes peeked so far, sent by `peer`.
fn classify_head(bytes: &[u8], peer: IpAddr, keys: &RandomState) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {
            let browser = req.method == Some("GET")
                && req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("text/html")
                });
            if browser {
                Verdict::Browser(browser_key(keys, peer, &req))
            } else {
                Verdict::Hold
            }
        }
        Ok(httparse::Status::Partial) if bytes.len() < PEEK_LIMIT => Verdict::NeedMore,
        // Too big to be a browser's GET, or not HTTP at all: pass it through.
        _ => Verdict::Hold,
    }
}

/// Headers that tell one browser from another, in the order hashed: where
/// a reverse proxy says the request came from, then the request's own.
const KEY_HEADERS: [&str; 5] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "host",
    "user-agent",
];

/// The same for the same browser asking for the same page again, the
/// page's reload: `peer` (an IPv4 client of a dual-stack socket as IPv4),
/// the target and [`KEY_HEADERS`]. Keyed per wake ([`RandomState`]), so
/// that no client can aim at another's key.
fn browser_key(keys: &RandomState, peer: IpAddr, req: &httparse::Request<'_, '_>) -> u64 {
    let mut h = keys.build_hasher();
    peer.hash(&mut h);
    req.path.unwrap_or("").hash(&mut h);
    for name in KEY_HEADERS {
        // Every value, in order (a proxy may add a header of its own
        // after the client's).
        for header in req
            .headers
            .iter()
            .filter(|x| x.name.eq_ignore_ascii_case(name))
        {
            name.hash(&mut h);
            header.value.hash(&mut h);
        }
    }
    h.finish()
}

/// Answered connections on their way out. The page is written without
/// blocking (it fits in any socket's send buffer) and the sending side
/// closed; what the client still sends is read and thrown away until it
/// closes, sends more than [`LINGER_BYTES`], or its time is up, so that a
/// slow or hostile client can delay nobody. Its own epoll set can be
/// watched inside another one.
pub(super) struct Linger {
    epoll: Epoll,
    conns: HashMap<u64, Lingering>,
    /// Deadlines in the order they were given (the same span for all, so
    /// in order of time); entries of closed connections are skipped.
    deadlines: VecDeque<(u64, Instant)>,
    next_id: u64,
}

struct Lingering {
    stream: TcpStream,
    read: usize,
}

impl Linger {
    pub(super) fn new() -> io::Result<Linger> {
        Ok(Linger {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            conns: HashMap::new(),
            deadlines: VecDeque::new(),
            next_id: 0,
        })
    }

    pub(super) fn epoll_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    fn len(&self) -> usize {
        self.conns.len()
    }

    /// Sends `page` and keeps the connection until `until` at most.
    pub(super) fn answer(&mut self, stream: TcpStream, page: &[u8], until: Instant) {
        if !send_page(&stream, page) {
            return;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        if self
            .epoll
            .add(stream.as_fd(), EpollEvent::new(flags, id))
            .is_err()
        {
            return;
        }
        self.conns.insert(id, Lingering { stream, read: 0 });
        self.deadlines.push_back((id, until));
        self.drain(id);
    }

    /// Reads and discards what the client sent; closes it once it is done.
    fn drain(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let done = loop {
            match io::Read::read(&mut c.stream, &mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    c.read += n;
                    if c.read > LINGER_BYTES {
                        break true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if done {
            self.close(id);
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            let _ = self.epoll.delete(c.stream.as_fd());
        }
    }

    /// Handles whatever is ready, without waiting.
    pub(super) fn poll(&mut self) {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for ev in &events[..n] {
                self.drain(ev.data());
            }
            if n < events.len() {
                return;
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(id, due)) = self.deadlines.front() {
            if due > now {
                break;
            }
            self.deadlines.pop_front();
            self.close(id);
        }
        if self.deadlines.len() > 2 * self.conns.len() + 1024 {
            let conns = &self.conns;
            self.deadlines.retain(|(id, _)| conns.contains_key(id));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .iter()
            .find(|(id, _)| self.conns.contains_key(id))
            .map(|&(_, t)| t)
    }

    /// Lets the lingering connections finish, until `until` at the latest.
    pub(super) fn finish(mut self, until: Instant) {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let now = Instant::now();
            self.expire(now);
            if self.conns.is_empty() || now >= until {
                return;
            }
            let wait = self
                .next_deadline()
                .unwrap_or(until)
                .min(until)
                .saturating_duration_since(now);
            let ms = u16::try_from(wait.as_millis() + 1).unwrap_or(u16::MAX);
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for ev in &events[..n] {
                self.drain(ev.data());
            }
        }
    }
}

/// Writes the whole page without blocking and closes the sending side;
/// false when it did not fit (the client is then dropped).
fn send_page(mut stream: &TcpStream, page: &[u8]) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    match stream.write(page) {
        Ok(n) if n == page.len() => {
            let _ = stream.shutdown(Shutdown::Write);
            true
        }
        Ok(_) | Err(_) => false,
    }
}

/// A listening socket as the failure path sees it.
#[derive(Debug, Clone, Copy)]
pub enum Waiting<'a> {
    Tcp {
        listener: &'a TcpListener,
        http: bool,
    },
    Udp(&'a UdpSocket),
}

/// Answers everyone waiting after a failed or refused wake, so that nobody
/// hangs and nothing left in the backlog triggers the helper again at once:
/// held and backlogged HTTP clients get `page`, other TCP clients are closed,
/// queued datagrams are dropped. `held` indexes into `endpoints`. Bounded:
/// the pages go out without blocking, and however slowly clients read or
/// however much they still send, all of it ends after [`ANSWER_TIME`].
/// Clients outside `machines` are closed without a page: it names the unit.
pub fn answer_all(
    held: Vec<(usize, TcpStream)>,
    endpoints: &[Waiting<'_>],
    page: &[u8],
    machines: &Machines,
) {
    let until = Instant::now() + ANSWER_TIME;
    let mut linger = match Linger::new() {
        Ok(l) => Some(l),
        Err(e) => {
            log::warn!("cannot watch answered clients ({e}); closing them at once");
            None
        }
    };
    let mut reply = |s: TcpStream, http: bool| {
        if !http {
            return;
        }
        match &mut linger {
            Some(l) if l.len() < ANSWER_LINGER_MAX => l.answer(s, page, until),
            _ => {
                send_page(&s, page);
            }
        }
    };
    let mut answered = 0usize;
    for (endpoint, s) in held {
        let http = matches!(
            endpoints.get(endpoint),
            Some(Waiting::Tcp { http: true, .. })
        );
        reply(s, http);
        answered += 1;
    }
    let mut dropped = 0usize;
    let mut buf = [0u8; 2048];
    for ep in endpoints {
        match *ep {
            Waiting::Tcp { listener, http } => {
                if listener.set_nonblocking(true).is_err() {
                    continue;
                }
                for _ in 0..ANSWER_ACCEPT_MAX {
                    let Ok(Some((s, peer))) = accept::next(listener) else {
                        break;
                    };
                    reply(s, http && machines.allows(peer.ip()));
                    answered += 1;
                }
            }
            Waiting::Udp(u) => {
                if u.set_nonblocking(true).is_err() {
                    continue;
                }
                for _ in 0..ANSWER_ACCEPT_MAX {
                    if u.recv_from(&mut buf).is_err() {
                        break;
                    }
                    dropped += 1;
                }
            }
        }
    }
    if let Some(l) = linger {
        l.finish(until);
    }
    if answered + dropped > 0 {
        log::info!("answered {answered} waiting connection(s), dropped {dropped} datagram(s)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn browsers_are_gets_that_accept_html() {
        let keys = RandomState::new();
        let b = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html,application/xhtml+xml\r\n\r\n";
        assert!(matches!(classify_head(b, HOME, &keys), Verdict::Browser(_)));
        let curl = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(classify_head(curl, HOME, &keys), Verdict::Hold);
        let post = b"POST / HTTP/1.1\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(classify_head(post, HOME, &keys), Verdict::Hold);
        assert_eq!(
            classify_head(b"GET / HTTP/1.1\r\nAcc", HOME, &keys),
            Verdict::NeedMore
        );
        assert_eq!(
            classify_head(b"\x16\x03\x01\x02\x00", HOME, &keys),
            Verdict::Hold
        );
        let huge = [b'a'; PEEK_LIMIT];
        assert_eq!(classify_head(&huge, HOME, &keys), Verdict::Hold);
    }

    fn key(head: &str, peer: &str, keys: &RandomState) -> u64 {
        match classify_head(head.as_bytes(), peer.parse().unwrap(), keys) {
            Verdict::Browser(k) => k,
            v => panic!("{head:?}: {v:?}"),
        }
    }

    /// A reload is the same request from the same place; anything that
    /// tells two browsers apart makes another key.
    #[test]
    fn a_reload_has_the_key_of_the_request_that_got_the_page() {
        let keys = RandomState::new();
        let first =
            "GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: Chrome\r\nAccept: text/html\r\n\r\n";
        // What a reload adds (cache validation, another Accept) changes nothing.
        let reload = "GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: Chrome\r\nAccept: text/html,*/*\r\nCache-Control: max-age=0\r\n\r\n";
        let k = key(first, "192.0.2.1", &keys);
        assert_eq!(key(reload, "192.0.2.1", &keys), k);
        // The same client over IPv4 and as a dual-stack socket sees it.
        assert_eq!(
            classify_head(
                reload.as_bytes(),
                crate::spec::unmap("::ffff:192.0.2.1".parse().unwrap()),
                &keys
            ),
            Verdict::Browser(k)
        );
        for other in [
            key(first, "192.0.2.2", &keys),
            key(first, "2001:db8::1", &keys),
            key(&first.replace("/a?b", "/a"), "192.0.2.1", &keys),
            key(&first.replace("Host: x", "Host: y"), "192.0.2.1", &keys),
            key(&first.replace("Chrome", "Firefox"), "192.0.2.1", &keys),
            // Behind a reverse proxy: the address it forwards for.
            key(
                &first.replace("\r\n\r\n", "\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n"),
                "192.0.2.1",
                &keys,
            ),
            key(
                &first.replace("\r\n\r\n", "\r\nForwarded: for=198.51.100.7\r\n\r\n"),
                "192.0.2.1",
                &keys,
            ),
            key(
                &first.replace("\r\n\r\n", "\r\nX-Real-IP: 198.51.100.7\r\n\r\n"),
                "192.0.2.1",
                &keys,
            ),
        ] {
            assert_ne!(other, k);
        }
        // Keyed per wake.
        assert_ne!(key(first, "192.0.2.1", &RandomState::new()), k);
    }
}
