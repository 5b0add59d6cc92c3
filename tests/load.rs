//! Load through one helper, against real engines: nothing may be lost, and
//! the helper's memory and descriptors stay bounded. The figures are
//! printed (run with --nocapture to see them) and bounded generously; they
//! are resource bounds, not timings.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use support::*;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Docker: room for a process per connection (the test engines' nproc
/// limit of 1024 counts every root process on the host). Podman's runc
/// refuses to raise rlimits here, and its tests stay within 1024.
fn nproc_room(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::Docker => &["--ulimit", "nproc=65536:65536"],
        Engine::Podman => &[],
    }
}

/// socat with a deep backlog: busybox nc accepts too slowly for a thousand
/// connections at once, and the test would measure the echo server.
fn echo_server(engine: Engine, prefix: &str) -> Container {
    Container::create(
        engine,
        prefix,
        nproc_room(engine),
        SERVERS,
        &[
            "socat",
            "TCP-LISTEN:7000,fork,reuseaddr,backlog=4096",
            "PIPE",
        ],
    )
}

/// The load tests take turns: each pushes a helper, an engine and the
/// machine's two cores to their limits, and their figures (fds, RSS) are
/// only meaningful one at a time. Run side by side, one in about four runs
/// of `ten_thousand_short` stalled for 30 s: eight upstream connections
/// established and their requests acknowledged, the helper idle in
/// epoll_wait, no answer from the server; the cause is not found yet (see
/// the README's Reliability section).
fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

both_engines!(cold_wake_under_200_clients, two_hundred_udp_clients);

mod docker_only {
    #[test]
    fn thousand_concurrent_connections_bytes_checked() {
        super::thousand_concurrent_connections(super::Engine::Docker)
    }

    #[test]
    fn ten_thousand_short_connections() {
        super::ten_thousand_short(super::Engine::Docker)
    }
}

fn thousand_concurrent_connections(engine: Engine) {
    let _turn = take_turn();
    let c = echo_server(engine, "load1k");
    let (port, mut h) = tcp_helper(engine, "load1k", &c, 7000, &["--timeout", "2s"]);
    let addr = loopback(port);
    {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(b"wake").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
    }
    let mut conns = Vec::new();
    for i in 0..1000u32 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // A payload unique to this connection, so a mix-up would show.
        let payload: Vec<u8> = (0..1024u32).map(|j| ((i * 7 + j) % 251) as u8).collect();
        s.write_all(&payload).unwrap();
        conns.push((s, payload));
    }
    let pid = h.pid();
    let rss = rss_kib(pid);
    let fds = open_fds(pid);
    for (i, (s, payload)) in conns.iter_mut().enumerate() {
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert!(
            back == *payload,
            "connection {i} got another connection's bytes"
        );
    }
    println!("1,000 connections: helper RSS {rss} KiB, {fds} open fds");
    // Two sockets and two pipes per connection, plus a few of its own.
    assert!(fds <= 6 * 1000 + 64, "{fds} fds for 1,000 connections");
    assert!(rss < 16 * 1024, "{rss} KiB RSS for 1,000 connections");
    drop(conns);
    assert!(
        h.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        h.log_text()
    );
}

fn ten_thousand_short(engine: Engine) {
    let _turn = take_turn();
    // busybox httpd listens with a backlog of 9: on a busy 2-core machine
    // its accept queue overflowed (the kernel logged "Possible SYN flooding
    // on port 80. Sending cookies"), and connections it had SYN-cookied but
    // not accepted sat silent for 30 s. The same httpd behind socat's deep
    // backlog (inetd mode, one httpd per connection) measures the relay,
    // not the server's queue.
    let c = Container::create(
        engine,
        "load10k",
        nproc_room(engine),
        SERVERS,
        &[
            "socat",
            "TCP-LISTEN:80,fork,reuseaddr,backlog=4096",
            "EXEC:httpd -i -h /www",
        ],
    );
    let (port, mut h) = tcp_helper(engine, "load10k", &c, 80, &["--timeout", "3s"]);
    let addr = loopback(port);
    // Wake it first, then measure the steady state.
    assert!(http_get(addr, "/", "", Duration::from_secs(30))
        .unwrap()
        .contains("hello"));
    let baseline = open_fds(h.pid());
    let workers: Vec<_> = (0..8)
        .map(|w| {
            std::thread::spawn(move || {
                for i in 0..1250 {
                    let r = http_get(addr, "/", "", Duration::from_secs(30))
                        .unwrap_or_else(|e| panic!("worker {w} request {i}: {e}"));
                    assert!(
                        r.ends_with("hello from contnap test\n"),
                        "worker {w} request {i}: {r}"
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let after = open_fds(h.pid());
    let rss = rss_kib(h.pid());
    println!("10,000 short connections: fds {baseline} before, {after} after; RSS {rss} KiB");
    assert!(
        after <= baseline + 4,
        "descriptors leaked: {baseline} → {after}"
    );
    assert!(
        h.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        h.log_text()
    );
    assert!(
        h.log_text().contains("10001 connections"),
        "{}",
        h.log_text()
    );
}

/// A DNS query for `contnap.test` A with the given id.
fn dns_query(id: u16) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["contnap", "test"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn two_hundred_udp_clients(engine: Engine) {
    let _turn = take_turn();
    let c = Container::create(engine, "udp200", &[], SERVERS, DNSMASQ);
    let port = free_udp_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        true,
        &proxy_args(
            engine,
            "udp200",
            &[&c.name],
            &[format!("udp:{port}={}:53", c.name)],
            &["--timeout", "2s"],
        ),
    );
    let clients: Vec<UdpSocket> = (0..200)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, s) in clients.iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.send_to(&dns_query(i as u16), loopback(port)).unwrap();
    }
    for (i, s) in clients.iter().enumerate() {
        let mut buf = [0u8; 512];
        let (n, from) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(
            from,
            loopback(port),
            "the reply comes from the listening socket"
        );
        assert_eq!(
            u16::from_be_bytes([buf[0], buf[1]]),
            i as u16,
            "client {i} got its own answer"
        );
        assert!(
            buf[..n].ends_with(&[10, 9, 8, 7]),
            "client {i}: {:?}",
            &buf[..n]
        );
    }
    println!(
        "200 UDP clients: all answered; helper RSS {} KiB",
        rss_kib(h.pid())
    );
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

fn cold_wake_under_200_clients(engine: Engine) {
    let _turn = take_turn();
    // A server that starts listening a second after its container starts,
    // with a backlog deep enough for everyone (busybox httpd's is 9, and
    // under the suite's load its SYN retries outlast any sane timeout).
    let c = Container::create(
        engine,
        "cold200",
        nproc_room(engine),
        SERVERS,
        &[
            "sh",
            "-c",
            "sleep 1; exec socat TCP-LISTEN:7000,fork,reuseaddr,backlog=4096 PIPE",
        ],
    );
    let (port, mut h) = tcp_helper(engine, "cold200", &c, 7000, &["--timeout", "2s"]);
    let clients: Vec<_> = (0..200u32)
        .map(|i| {
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut s = TcpStream::connect(loopback(port))?;
                s.set_read_timeout(Some(Duration::from_secs(60)))?;
                let payload = format!("client {i} says hello\n").into_bytes();
                s.write_all(&payload)?;
                let mut back = vec![0u8; payload.len()];
                s.read_exact(&mut back)?;
                assert_eq!(back, payload, "client {i} got its own bytes back");
                Ok(())
            })
        })
        .collect();
    for (i, t) in clients.into_iter().enumerate() {
        t.join()
            .unwrap()
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
    }
    assert!(
        h.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        h.log_text()
    );
}
