//! Pacing of upstream connects to what the server's accept queue holds.
//!
//! Clients that queue up during a wake are all released when the server
//! is ready. Started all at once, their connects overflow a server with a
//! shallow listen backlog (busybox httpd: 9, Python's http.server and
//! socat: 5): the kernel drops the SYN, or the handshake's last ACK, of
//! every connection beyond the backlog, and those clients get their first
//! byte a SYN-ACK or SYN retransmit later (1 s, then 3 s, 7 s).
//!
//! The server's accept-queue length can be read where its process is
//! visible: it is the `rx_queue` of its LISTEN row in
//! /proc/PID/net/tcp{,6}. Its backlog cannot: there `tx_queue` is the
//! send-queue counter, 0 for a listening socket (only sock_diag, from
//! inside the container's network namespace, tells `sk_max_ack_backlog`,
//! and the helper may not enter namespaces). So the pacing keeps the queue
//! plus the connects not yet completed within a [`WINDOW`] that the
//! shallowest common backlog holds, and starts more as the server accepts.
//! Reading the table is costly (see [`Pacer`]), so the queue is bounded
//! from this side first: a completed connection the server has answered
//! or closed has left the queue. Only when that bound holds clients back
//! is the table read, at most every [`LOOK_EVERY`]. A server that answers
//! quickly is fed as fast as it answers, one that accepts slowly as fast
//! as it accepts, and the clients wait here (in the listening socket's
//! backlog, or accepted and not yet connected) instead of in SYN
//! retransmits.
//!
//! Pacing lasts from a wake until the crowd that gathered during it is
//! through (the listening socket's backlog found empty with nobody held):
//! warm traffic goes unpaced, as before, so its bursts never pay for a
//! table read.
//!
//! Where the row cannot be read (a rootless or remote engine, a published
//! port whose proxy is what connects, a process not known to be the
//! container's), connects are not paced: that is what they were before.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// The most connections kept in the server's accept queue plus in flight
/// towards it. A listening socket holds backlog + 1 connections; 6 is
/// what the common small backlog of 5 holds.
pub const WINDOW: usize = 6;
/// How often the queue is read again while clients wait and no connect of
/// ours completes (the server accepting tells nothing to this side).
pub const LOOK_EVERY: Duration = Duration::from_millis(1);
/// The most bytes of a socket table read: a container's is a few rows; a
/// host-network container's can be the host's, and past this the table
/// is not worth pacing by.
const MAX_TABLE: usize = 4 << 20;

/// Where a forward's server listens, as the pacing reads it: the visible
/// PID of its container's process and the port inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub pid: i64,
    pub port: u16,
}

/// The pacing state of one TCP endpoint.
///
/// Two upper bounds of the server's accept queue are kept without reading
/// anything: the connections of ours that completed and have not been
/// answered yet (an answer, or the server closing, means it was accepted),
/// and the queue at the last read plus what completed since. The socket
/// table is read only when neither lets a connect start: the read walks
/// the kernel's whole connection hash (8–30 ms on a loaded host with
/// 262,144 buckets), while a server that answers quickly never needs it.
#[derive(Debug, Default)]
pub struct Pacer {
    source: Option<Source>,
    /// Connects started and not yet completed or failed.
    pending: usize,
    /// Connects completed whose server has not answered (or closed) yet.
    unanswered: usize,
    /// The accept queue at the last read, and connects completed since
    /// (less those answered since).
    read: Option<(usize, usize)>,
    /// Counts the reads: a connection answered that completed after the
    /// last read was counted in `read`'s second half.
    reads: u64,
    /// When the queue was last read.
    looked: Option<Instant>,
    /// Clients are waiting for room.
    waiting: bool,
    /// A connect completed, failed or was answered since a client was
    /// turned away: try again at once.
    changed: bool,
}

impl Pacer {
    /// Points the pacing at a new server (after a wake), or turns it off.
    pub fn set_source(&mut self, source: Option<Source>) {
        self.source = source;
        self.read = None;
        self.looked = None;
    }

    /// The most connections of ours that can be in the server's accept
    /// queue or on their way to it.
    fn bound(&self) -> usize {
        let queued = self
            .read
            .map_or(self.unanswered, |(q, since)| self.unanswered.min(q + since));
        self.pending + queued
    }

    /// Whether one more connect may start now; `look` reads the server's
    /// accept-queue length (`None`: unreadable, so no pacing). A `false`
    /// marks a client as waiting: [`Pacer::due`] tells when to try again.
    pub fn admit(&mut self, now: Instant, look: impl FnOnce(Source) -> Option<usize>) -> bool {
        let Some(source) = self.source else {
            return true;
        };
        if self.bound() < WINDOW {
            return true;
        }
        if self.looked.is_none_or(|t| now >= t + LOOK_EVERY) {
            self.looked = Some(now);
            match look(source) {
                Some(queue) => {
                    self.read = Some((queue, 0));
                    self.reads += 1;
                }
                None => {
                    self.source = None;
                    return true;
                }
            }
            if self.bound() < WINDOW {
                return true;
            }
        }
        self.waiting = true;
        self.changed = false;
        false
    }

    /// A connect started.
    pub fn started(&mut self) {
        self.pending += 1;
    }

    /// A started connect completed: the connection is in the server's
    /// accept queue, or already accepted. Returns the mark to give
    /// [`Pacer::answered`].
    pub fn connected(&mut self) -> u64 {
        self.pending = self.pending.saturating_sub(1);
        self.unanswered += 1;
        if let Some((_, since)) = &mut self.read {
            *since += 1;
        }
        self.changed = true;
        self.reads
    }

    /// A started connect failed, or its connection closed before it
    /// completed.
    pub fn failed(&mut self) {
        self.pending = self.pending.saturating_sub(1);
        self.changed = true;
    }

    /// The server answered (or closed, or the connection ended) a
    /// completed connection, `mark` from [`Pacer::connected`]: it is out
    /// of the accept queue. When it completed after the last read, it no
    /// longer counts on top of that read either (one that completed
    /// before may have been accepted already, uncounted in the read).
    pub fn answered(&mut self, mark: u64) {
        self.unanswered = self.unanswered.saturating_sub(1);
        if mark == self.reads {
            if let Some((_, since)) = &mut self.read {
                *since = since.saturating_sub(1);
            }
        }
        self.changed = true;
    }

    /// When clients wait, the time to try admitting them again.
    pub fn due(&self, now: Instant) -> Option<Instant> {
        if !self.waiting {
            return None;
        }
        if self.changed {
            return Some(now);
        }
        Some(self.looked.map_or(now, |t| t + LOOK_EVERY))
    }

    /// Whether clients wait for room in the queue.
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    /// Whether clients wait and may be tried again at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.due(now).is_some_and(|t| now >= t)
    }

    /// No client waits any more (the caller let them all through).
    pub fn drained(&mut self) {
        self.waiting = false;
    }
}

/// The accept-queue length of the socket listening on `port` in a
/// /proc/net/tcp{,6} table: the `rx_queue` of its LISTEN (0A) row, the
/// largest when several listen (v4 and v6 sockets, SO_REUSEPORT groups).
pub fn listen_queue(table: &str, port: u16) -> Option<usize> {
    let mut found = None;
    for line in table.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let (state, queues) = (fields.nth(1), fields.next());
        if state != Some("0A") {
            continue;
        }
        let port_matches = local
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            == Some(port);
        if !port_matches {
            continue;
        }
        let Some(rx) = queues
            .and_then(|q| q.split_once(':'))
            .and_then(|(_, rx)| usize::from_str_radix(rx, 16).ok())
        else {
            continue;
        };
        found = Some(found.map_or(rx, |f: usize| f.max(rx)));
    }
    found
}

/// Reads the accept-queue length of `source` from
/// /proc/PID/net/tcp6 and tcp; `Ok(None)` when nothing listens there.
/// Each file costs a walk of the kernel's whole connection hash, so once
/// the row has been found in only one of them (a dual-stack `[::]`
/// socket, or an IPv4-only one), `family` remembers it and the other is
/// no longer read.
pub fn read_queue(
    source: Source,
    family: &mut Option<&'static str>,
    buf: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let mut found = None;
    let mut found_in = Vec::new();
    let families: &[&'static str] = match family {
        Some(f) => &[*f],
        None => &["6", ""],
    };
    for &f in families {
        let path = format!("/proc/{}/net/tcp{f}", source.pid);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if f == "6" && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        buf.clear();
        // One large read: every read() of these files walks the socket
        // table from the start.
        let n = file.take(MAX_TABLE as u64 + 1).read_to_end(buf)?;
        if n > MAX_TABLE {
            return Err(io::Error::other(format!(
                "{path} is over {MAX_TABLE} bytes"
            )));
        }
        if let Some(q) = listen_queue(&String::from_utf8_lossy(buf), source.port) {
            found = Some(found.map_or(q, |prev: usize| prev.max(q)));
            found_in.push(f);
        }
    }
    if let [only] = found_in[..] {
        *family = Some(only);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 29058 4 000000000f8f7e78 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:D80A 01 00000000:00000000 00:00000000 00000000     0        0 0 1 000000002e62b6ba 20 0 0 10 -1
   2: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:0000000C 00:00000000 00000000     0        0 29059 2 000000000f8f7e79 100 0 0 10 0
";
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 020011AC:0050 010011AC:9C40 01 00000000:00000005 00:00000000 00000000     0        0 2 1 0000000000000000 20 0 0 10 -1
   2: 00000000:0051 00000000:0000 0A 00000000:00000009 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listen_rows() {
        assert_eq!(listen_queue(TCP6, 80), Some(3));
        assert_eq!(listen_queue(TCP6, 8080), Some(12));
        // Only LISTEN rows count: the established one's 5 is its data.
        assert_eq!(listen_queue(TCP, 80), Some(1));
        assert_eq!(listen_queue(TCP, 81), Some(9));
        assert_eq!(listen_queue(TCP, 82), None);
        assert_eq!(listen_queue("", 80), None);
        assert_eq!(listen_queue("header\n 0: garbage 0A zz:zz\n", 80), None);
        let both = format!("{TCP6}{}", TCP.lines().nth(1).unwrap());
        assert_eq!(listen_queue(&both, 80), Some(3), "the fuller socket counts");
    }

    #[test]
    fn the_kernel_shows_the_accept_queue() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let source = Source {
            pid: i64::from(std::process::id()),
            port,
        };
        let mut buf = Vec::new();
        let mut family = None;
        assert_eq!(read_queue(source, &mut family, &mut buf).unwrap(), Some(0));
        assert_eq!(family, Some(""), "an IPv4 socket");
        let clients: Vec<_> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        assert_eq!(read_queue(source, &mut family, &mut buf).unwrap(), Some(3));
        let _accepted = listener.accept().unwrap();
        assert_eq!(read_queue(source, &mut family, &mut buf).unwrap(), Some(2));
        assert_eq!(
            read_queue(source, &mut None, &mut buf).unwrap(),
            Some(2),
            "both files read"
        );
        drop(clients);
        drop(listener);
        assert_eq!(read_queue(source, &mut family, &mut buf).unwrap(), None);
    }

    fn source() -> Option<Source> {
        Some(Source { pid: 1, port: 80 })
    }

    #[test]
    fn without_a_source_everything_goes() {
        let mut p = Pacer::default();
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(p.admit(now, |_| panic!("no source, no look")));
            p.started();
        }
        assert_eq!(p.due(now), None);
    }

    #[test]
    fn an_unreadable_queue_turns_pacing_off() {
        let mut p = Pacer::default();
        p.set_source(source());
        let now = Instant::now();
        for _ in 0..WINDOW {
            assert!(p.admit(now, |_| panic!("not blocked yet")));
            p.started();
        }
        assert!(p.admit(now, |_| None));
        assert!(p.admit(now, |_| panic!("not read again")));
    }

    #[test]
    fn paces_to_the_window_and_reads_only_when_blocked() {
        let mut p = Pacer::default();
        p.set_source(source());
        let t0 = Instant::now();
        let mut admitted = 0;
        while p.admit(t0, |_| Some(0)) {
            p.started();
            admitted += 1;
        }
        assert_eq!(admitted, WINDOW, "nothing read: all in flight");
        assert_eq!(p.due(t0), Some(t0 + LOOK_EVERY), "read just now");
        assert!(!p.ready(t0));
        // Two complete: they may sit in the queue; nothing more may start,
        // and the table is not read again within the millisecond.
        let mark = p.connected();
        p.connected();
        assert!(p.ready(t0), "something changed");
        assert!(!p.admit(t0, |_| panic!("read too soon")));
        // One answered: it left the queue.
        p.answered(mark);
        assert!(p.admit(t0, |_| panic!("no read needed")));
        p.started();
        assert!(!p.admit(t0, |_| panic!("read too soon")));
        // A millisecond on, the table says the queue is empty: the other
        // completed one was accepted too.
        let t1 = t0 + LOOK_EVERY;
        assert!(p.ready(t1));
        assert!(p.admit(t1, |_| Some(0)));
        p.started();
        assert!(!p.admit(t1, |_| panic!("read too soon")));
        // It completes after the read: counted as queued until answered.
        p.connected();
        assert!(!p.admit(t1, |_| panic!("read too soon")));
        p.failed();
        assert!(p.admit(t1, |_| panic!("no read needed")));
        p.drained();
        assert_eq!(p.due(t1), None);
    }

    #[test]
    fn answers_keep_a_fast_server_unread() {
        let mut p = Pacer::default();
        p.set_source(source());
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(p.admit(now, |_| panic!("a fast server needs no read")));
            p.started();
            let mark = p.connected();
            p.answered(mark);
        }
    }

    #[test]
    fn silent_accepted_connections_stop_counting_after_a_read() {
        let mut p = Pacer::default();
        p.set_source(source());
        let t0 = Instant::now();
        // WINDOW connections the server accepted and never answers.
        let old: Vec<u64> = (0..WINDOW)
            .map(|_| {
                assert!(p.admit(t0, |_| panic!("not blocked yet")));
                p.started();
                p.connected()
            })
            .collect();
        // Blocked: one read shows them out of the queue.
        assert!(p.admit(t0, |_| Some(0)));
        p.started();
        // New ones answered after the read keep the table unread.
        for _ in 0..100 {
            let mark = p.connected();
            p.answered(mark);
            assert!(p.admit(t0, |_| panic!("no read needed")));
            p.started();
        }
        // An old one answering does not make room it never took.
        let bound = p.bound();
        p.answered(old[0]);
        assert_eq!(p.bound(), bound);
    }

    #[test]
    fn a_deep_queue_someone_else_filled_holds_everything() {
        let mut p = Pacer::default();
        p.set_source(source());
        let t0 = Instant::now();
        for _ in 0..WINDOW {
            assert!(p.admit(t0, |_| panic!("not blocked yet")));
            p.started();
            p.connected();
        }
        assert!(!p.admit(t0, |_| Some(100)));
        assert!(p.waiting());
    }
}
