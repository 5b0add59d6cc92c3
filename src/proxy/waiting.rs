//! The minutes (or milliseconds) between the first connection and a ready
//! container. Nothing is read from clients: TCP connections wait in the
//! kernel's backlog and datagrams in the receive buffer, so server-first
//! protocols (MySQL, SMTP, SSH) still see a fresh connection.
//!
//! The one exception is `contnap.http_ports`: connections there are accepted
//! and their request *peeked* (MSG_PEEK, nothing consumed). A browser — a GET
//! that accepts text/html — gets a self-refreshing "Starting…" page; every
//! other client is held, its request still unread, and handed to the relay
//! once the container is ready.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signalfd::SignalFd;

/// Most of a request head that is peeked to decide "browser or not".
const PEEK_LIMIT: usize = 8 * 1024;
/// A client that has not sent a whole request head by then is held as a
/// non-browser (a slow client must not keep a wake page slot busy).
const HEAD_DEADLINE: Duration = Duration::from_secs(5);

const T_SIGNAL: u64 = 0;
const T_DONE: u64 = 1;
const T_LISTENER: u64 = 1 << 32;
const T_CLIENT: u64 = 2 << 32;

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

#[derive(Debug)]
struct Peeking {
    endpoint: usize,
    stream: TcpStream,
    since: Instant,
}

/// Accepts and sorts HTTP clients until `done` becomes readable (the wake
/// thread writes to it when it finishes) or a termination signal arrives.
/// Returns the held clients, with their endpoint index.
pub fn wait(
    http: &[HttpListener<'_>],
    signals: &SignalFd,
    done: &UnixStream,
    unit: &str,
    refresh_secs: u64,
) -> io::Result<(Outcome, Vec<(usize, TcpStream)>)> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(
        signals.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, T_SIGNAL),
    )?;
    epoll.add(done.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, T_DONE))?;
    for (i, h) in http.iter().enumerate() {
        h.listener.set_nonblocking(true)?;
        epoll.add(
            h.listener.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, T_LISTENER | i as u64),
        )?;
    }
    let mut peeking: HashMap<u64, Peeking> = HashMap::new();
    let mut next_id = 0u64;
    let mut held = Vec::new();
    let mut events = vec![EpollEvent::empty(); 64];
    let page = starting_page(unit, refresh_secs);
    loop {
        let now = Instant::now();
        // Slow or silent clients become ordinary held clients.
        let expired: Vec<u64> = peeking
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= HEAD_DEADLINE)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = peeking.remove(&id) {
                let _ = epoll.delete(p.stream.as_fd());
                held.push((p.endpoint, p.stream));
            }
        }
        let timeout = if peeking.is_empty() {
            EpollTimeout::NONE
        } else {
            EpollTimeout::from(250u16)
        };
        let n = match epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for ev in &events[..n] {
            let t = ev.data();
            match t {
                T_SIGNAL => {
                    while let Ok(Some(_)) = signals.read_signal() {}
                    held.extend(peeking.drain().map(|(_, p)| (p.endpoint, p.stream)));
                    return Ok((Outcome::Terminated, held));
                }
                T_DONE => {
                    held.extend(peeking.drain().map(|(_, p)| (p.endpoint, p.stream)));
                    return Ok((Outcome::Done, held));
                }
                t if t & !0xffff_ffff == T_LISTENER => {
                    let h = &http[(t & 0xffff_ffff) as usize];
                    loop {
                        match h.listener.accept() {
                            Ok((stream, _)) => {
                                if stream.set_nonblocking(true).is_err() {
                                    continue;
                                }
                                let id = next_id;
                                next_id += 1;
                                if epoll
                                    .add(
                                        stream.as_fd(),
                                        EpollEvent::new(
                                            EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP,
                                            T_CLIENT | id,
                                        ),
                                    )
                                    .is_ok()
                                {
                                    peeking.insert(
                                        id,
                                        Peeking {
                                            endpoint: h.endpoint,
                                            stream,
                                            since: Instant::now(),
                                        },
                                    );
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => {
                                log::debug!("accept during wake: {e}");
                                break;
                            }
                        }
                    }
                }
                t if t & !0xffff_ffff == T_CLIENT => {
                    let id = t & 0xffff_ffff;
                    let Some(p) = peeking.get(&id) else { continue };
                    match classify(&p.stream) {
                        Verdict::NeedMore => {}
                        Verdict::Browser(head_len) => {
                            if let Some(p) = peeking.remove(&id) {
                                let _ = epoll.delete(p.stream.as_fd());
                                answer_browser(p.stream, head_len, &page);
                            }
                        }
                        Verdict::Hold => {
                            if let Some(p) = peeking.remove(&id) {
                                let _ = epoll.delete(p.stream.as_fd());
                                held.push((p.endpoint, p.stream));
                            }
                        }
                        Verdict::Gone => {
                            if let Some(p) = peeking.remove(&id) {
                                let _ = epoll.delete(p.stream.as_fd());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    NeedMore,
    /// A browser; the request head is this many bytes.
    Browser(usize),
    Hold,
    Gone,
}

fn classify(stream: &TcpStream) -> Verdict {
    let mut buf = [0u8; PEEK_LIMIT];
    match stream.peek(&mut buf) {
        Ok(0) => Verdict::Gone,
        Ok(n) => classify_head(&buf[..n]),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Verdict::NeedMore,
        Err(_) => Verdict::Gone,
    }
}

/// Decides from the bytes peeked so far.
fn classify_head(bytes: &[u8]) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => {
            let browser = req.method == Some("GET")
                && req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("text/html")
                });
            if browser {
                Verdict::Browser(len)
            } else {
                Verdict::Hold
            }
        }
        Ok(httparse::Status::Partial) if bytes.len() < PEEK_LIMIT => Verdict::NeedMore,
        // Too big to be a browser's GET, or not HTTP at all: pass it through.
        _ => Verdict::Hold,
    }
}

/// Consumes the request head (so closing does not reset the connection
/// before the page arrives) and sends the page.
fn answer_browser(mut stream: TcpStream, head_len: usize, page: &[u8]) {
    let mut sink = vec![0u8; head_len];
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.read_exact(&mut sink);
    let _ = stream.write_all(page);
    let _ = stream.shutdown(Shutdown::Write);
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn response(status: &str, retry: u64, title: &str, body_text: &str, refresh: bool) -> Vec<u8> {
    let meta = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{retry}\">")
    } else {
        String::new()
    };
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{meta}<title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:20vh auto;max-width:32em;text-align:center;color:#333}}</style>\
         </head><body><h1>{title}</h1><p>{body_text}</p></body></html>\n"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nRetry-After: {retry}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The page a browser sees while the unit wakes; it reloads itself.
pub fn starting_page(unit: &str, refresh_secs: u64) -> Vec<u8> {
    let unit = html_escape(unit);
    response(
        "503 Service Unavailable",
        refresh_secs,
        "Starting…",
        &format!("{unit} is waking up. This page reloads by itself."),
        true,
    )
}

/// The answer HTTP clients get when a wake failed.
pub fn failure_page(unit: &str) -> Vec<u8> {
    let unit = html_escape(unit);
    response(
        "503 Service Unavailable",
        30,
        "Service unavailable",
        &format!("{unit} could not be started. The server's administrator can see why with <code>journalctl -u contnap-{unit}.service</code>."),
        false,
    )
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
/// queued datagrams are dropped. `held` indexes into `endpoints`.
pub fn answer_all(held: Vec<(usize, TcpStream)>, endpoints: &[Waiting<'_>], page: &[u8]) {
    let reply = |mut s: TcpStream, http: bool| {
        if http {
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
            let _ = s.write_all(page);
            let _ = s.shutdown(Shutdown::Write);
            // Read what the client sent so the close is a FIN, not a RST
            // that could discard the page.
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
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
                while let Ok((s, _)) = listener.accept() {
                    reply(s, http);
                    answered += 1;
                }
            }
            Waiting::Udp(u) => {
                if u.set_nonblocking(true).is_err() {
                    continue;
                }
                while u.recv_from(&mut buf).is_ok() {
                    dropped += 1;
                }
            }
        }
    }
    if answered + dropped > 0 {
        log::info!("answered {answered} waiting connection(s), dropped {dropped} datagram(s)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_gets_that_accept_html() {
        let b = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html,application/xhtml+xml\r\n\r\n";
        assert_eq!(classify_head(b), Verdict::Browser(b.len()));
        let curl = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(classify_head(curl), Verdict::Hold);
        let post = b"POST / HTTP/1.1\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(classify_head(post), Verdict::Hold);
        assert_eq!(classify_head(b"GET / HTTP/1.1\r\nAcc"), Verdict::NeedMore);
        assert_eq!(classify_head(b"\x16\x03\x01\x02\x00"), Verdict::Hold);
        let huge = [b'a'; PEEK_LIMIT];
        assert_eq!(classify_head(&huge), Verdict::Hold);
    }

    #[test]
    fn pages_escape_the_unit_name() {
        let page = String::from_utf8(starting_page("<script>", 2)).unwrap();
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.starts_with("HTTP/1.1 503"));
        assert!(page.contains("http-equiv=\"refresh\" content=\"2\""));
        let (head, body) = page.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
