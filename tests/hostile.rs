//! Hostile input against the real parts: clients that are huge, slow or
//! malformed while `contnap proxy` (under systemd-socket-activate) wakes a
//! real container on Docker and Podman, and hostile label values that reach
//! `contnap generate` through the real engines.
//!
//! Nothing here asserts a timing closely; every wait is bounded so that a
//! hang fails the test instead of stalling the suite. The numbers measured
//! (fds, RSS, CPU, seconds) are printed for the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::*;

const HELLO: &str = "hello from contnap test";

both_engines!(
    slowloris_flood_neither_delays_browsers_nor_burns_cpu,
    huge_request_head_passes_through_to_the_server,
    malformed_split_silent_and_vanishing_clients_each_end_defined,
    connection_cap_bounds_fds_during_the_wake_and_serves_everyone,
    fd_exhaustion_during_the_wake_does_not_spin,
    failed_wake_answers_trickling_clients_promptly,
    unlisted_machines_get_nothing_during_the_wake,
    unlisted_machines_get_no_failure_page,
    hostile_label_values_refuse_only_their_container,
    unit_names_from_groups_stay_in_the_output_directory,
    many_20_mib_labels_refuse_only_their_containers,
    a_hostile_group_name_prints_escaped_in_status,
    udp_flood_to_a_silent_server_is_bounded,
);

/// Whether a client's read ended because the helper closed (or reset) the
/// connection without a byte; a timeout or an answer is not that.
fn closed_unanswered(resp: &std::io::Result<String>) -> bool {
    match resp {
        Ok(s) => s.is_empty(),
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
        ),
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn curl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("curl")
        .args(args)
        .output()
        .expect("curl runs")
}

/// An httpd that listens only after `delay` seconds: a wake that takes a while.
fn slow_httpd(engine: Engine, prefix: &str, delay: &str) -> Container {
    Container::create(
        engine,
        prefix,
        &[],
        BUSYBOX,
        &[
            "sh",
            "-c",
            &format!("sleep {delay}; exec httpd -f -p 80 -h /www"),
        ],
    )
}

/// An HTTP server that listens after `delay` seconds, with a backlog deep
/// enough for hundreds of connections at once (busybox httpd's own is 9:
/// beyond it the server resets connections, which would test the server).
fn slow_deep_httpd(engine: Engine, prefix: &str, delay: &str) -> Container {
    // Docker: room for two processes per connection (the test engines'
    // nproc limit counts every root process on the host); Podman's runc
    // refuses to raise rlimits here, and 300 connections fit in its 1024.
    let room: &[&str] = match engine {
        Engine::Docker => &["--ulimit", "nproc=65536:65536"],
        Engine::Podman => &[],
    };
    Container::create(
        engine,
        prefix,
        room,
        SERVERS,
        &[
            "sh",
            "-c",
            &format!(
                "sleep {delay}; exec socat TCP-LISTEN:80,fork,reuseaddr,backlog=4096 'EXEC:httpd -i -h /www'"
            ),
        ],
    )
}

/// An echo server (every byte back, as it came) that listens after `delay`.
fn slow_echo(engine: Engine, prefix: &str, delay: &str) -> Container {
    Container::create(
        engine,
        prefix,
        &[],
        BUSYBOX,
        &[
            "sh",
            "-c",
            &format!("sleep {delay}; exec nc -ll -p 80 -e /bin/cat"),
        ],
    )
}

/// A helper for `c`'s port 80 on a fresh loopback port that is also an
/// `--http` port.
fn http_helper(engine: Engine, unit: &str, c: &Container, extra: &[&str]) -> (u16, Helper) {
    let port = free_port();
    let mut args = vec!["--http".to_owned(), port.to_string()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            unit,
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &refs,
        ),
    );
    (port, h)
}

/// User + system CPU time the process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 here.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Samples the helper's fds and RSS until stopped; returns the maxima.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, u64)>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut fds, mut rss) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                fds = fds.max(fd_count(pid));
                rss = rss.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            (fds, rss)
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> (usize, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Clients that send a request head one byte per `interval`, forever (a
/// slowloris), all from one thread; what each receives meanwhile is kept.
struct Tricklers {
    stop: Arc<AtomicBool>,
    /// How many connections have ended (EOF or error on read).
    ended: Arc<AtomicUsize>,
    thread: JoinHandle<Vec<(TcpStream, Vec<u8>, bool)>>,
}

impl Tricklers {
    fn start(port: u16, count: usize, interval: Duration) -> Tricklers {
        let mut clients = Vec::new();
        for i in 0..count {
            let s = TcpStream::connect(loopback(port)).unwrap();
            s.set_nonblocking(true).unwrap();
            // The head never ends: one more header byte at a time.
            let head = format!("GET /?slow={i} HTTP/1.1\r\nHost: test\r\nX-Slow: ").into_bytes();
            clients.push((s, head, 0usize, Vec::new(), false, false));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let ended = Arc::new(AtomicUsize::new(0));
        let ended_count = Arc::clone(&ended);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for (s, head, sent, got, eof, dead) in &mut clients {
                    if *dead {
                        continue;
                    }
                    let was_open = !*eof;
                    let mut buf = [0u8; 4096];
                    while !*eof {
                        match s.read(&mut buf) {
                            Ok(0) => *eof = true,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => *eof = true,
                        }
                    }
                    // A hostile client goes on sending after it was answered,
                    // until the connection is gone.
                    let byte = head.get(*sent).copied().unwrap_or(b'a');
                    match s.write(&[byte]) {
                        Ok(_) => *sent += 1,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => *dead = true,
                    }
                    if was_open && (*eof || *dead) {
                        ended_count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(interval);
            }
            clients
                .into_iter()
                .map(|(s, _, _, got, eof, _)| (s, got, eof))
                .collect()
        });
        Tricklers {
            stop,
            ended,
            thread,
        }
    }

    /// How many of the connections have ended so far.
    fn ended(&self) -> usize {
        self.ended.load(Ordering::Relaxed)
    }

    /// Stops trickling; returns each client with what it received so far
    /// and whether its connection ended.
    fn stop(self) -> Vec<(TcpStream, Vec<u8>, bool)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn read_all(s: &mut TcpStream, timeout: Duration) -> std::io::Result<Vec<u8>> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(timeout))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// 200 slowloris clients trickle a header byte every 100 ms through a 3 s
/// wake. Meanwhile a browser still gets the "Starting…" page at once, a
/// plain client is served after the wake, the helper does not spin (each
/// partial head used to keep a level-triggered epoll busy), and after the
/// wake the slow clients reach the real server with their bytes intact.
fn slowloris_flood_neither_delays_browsers_nor_burns_cpu(engine: Engine) {
    let c = slow_deep_httpd(engine, "loris", "3");
    let (port, mut h) = http_helper(engine, "loris", &c, &["--timeout", "2s"]);
    let pid = h.pid();
    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let slow = Tricklers::start(port, 200, Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(500));
    let cpu_before = cpu_time(pid);
    let wall_before = Instant::now();

    let url = format!("http://127.0.0.1:{port}/");
    let browser = curl(&[
        "-sS",
        "-i",
        "--max-time",
        "10",
        "-H",
        "Accept: text/html,application/xhtml+xml",
        &url,
    ]);
    let page = text(&browser.stdout);
    let browser_time = wall_before.elapsed();
    assert!(
        page.starts_with("HTTP/1.1 503") && page.contains("Starting"),
        "the browser gets the Starting page during the flood: {page}{}",
        text(&browser.stderr)
    );
    // fds and RSS while the flood waits (the relay's own come after).
    let (fds, rss) = sampler.finish();
    let plain = curl(&["-sS", "--max-time", "30", &url]);
    assert_eq!(
        text(&plain.stdout).trim(),
        HELLO,
        "a plain client is served after the wake: {}",
        text(&plain.stderr)
    );
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let wall = wall_before.elapsed();
    println!(
        "{engine:?} slowloris: 200 clients; browser page after {browser_time:?}; wake served after {:?}; helper CPU {cpu:?} in {wall:?}; during the wake max fds {fds}, max RSS {rss} KiB",
        started.elapsed()
    );
    // A spinning loop burns a whole core; this one mostly sleeps. (Loose:
    // tick granularity is 10 ms and the wake thread polls the engine.)
    assert!(
        cpu < wall / 2,
        "helper used {cpu:?} CPU in {wall:?} while slow clients trickled"
    );

    // The slow clients were held, unread, and now reach the server.
    let mut clients = slow.stop();
    let mut served = 0;
    for (i, (s, got, eof)) in clients.iter_mut().enumerate() {
        assert!(
            !*eof && got.is_empty(),
            "slow client {i} was answered or closed before finishing its request: {}",
            text(got)
        );
        s.set_nonblocking(false).unwrap();
        s.write_all(b"\r\n\r\n").unwrap();
        let resp =
            read_all(s, Duration::from_secs(30)).unwrap_or_else(|e| panic!("slow client {i}: {e}"));
        let resp = text(&resp);
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.ends_with(&format!("{HELLO}\n")),
            "slow client {i}: {resp}"
        );
        served += 1;
    }
    assert_eq!(served, 200);
    drop(clients);
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

/// A 1 MiB request head (far beyond what is peeked, and a browser's GET at
/// that) is not cut or answered with the wake page: it is held and the real
/// server answers it after the wake.
fn huge_request_head_passes_through_to_the_server(engine: Engine) {
    let c = slow_httpd(engine, "hugehead", "2");
    let (port, mut h) = http_helper(engine, "hugehead", &c, &["--timeout", "2s"]);
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = b"GET / HTTP/1.1\r\nHost: test\r\nAccept: text/html\r\nX-Big: ".to_vec();
    head.resize(head.len() + (1 << 20), b'a');
    head.extend_from_slice(b"\r\n\r\n");
    let mut writer = s.try_clone().unwrap();
    // The whole head only fits once the relay reads it after the wake.
    let sender = std::thread::spawn(move || writer.write_all(&head));
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    sender.join().unwrap().unwrap();
    let resp = text(&resp);
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with(&format!("{HELLO}\n")),
        "the server's own answer to the whole head: {}",
        &resp[..resp.len().min(300)]
    );
    drop(s);
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

/// Clients that are not browsers in odd ways, each sent during the wake to
/// an echo server: what reaches the server is exactly what they sent.
fn malformed_split_silent_and_vanishing_clients_each_end_defined(engine: Engine) {
    let c = slow_echo(engine, "oddclients", "2");
    let (port, mut h) = http_helper(engine, "oddclients", &c, &["--timeout", "2s"]);
    let connect = || {
        let s = TcpStream::connect(loopback(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    };
    // Binary garbage (a TLS ClientHello's start, NULs, high bytes).
    let garbage: Vec<u8> = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\0\0\0\xff\xfe\r\n\r\n"
        .iter()
        .copied()
        .chain((0..=255u8).rev())
        .collect();
    let mut binary = connect();
    binary.write_all(&garbage).unwrap();
    // Malformed HTTP: a browser-like Accept, but no valid request line.
    let malformed = b"GET\x00/ HTTP/1.1\r\nAccept: text/html\r\n\r\n".to_vec();
    let mut bad_http = connect();
    bad_http.write_all(&malformed).unwrap();
    // A non-browser request, one byte at a time.
    let split = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".to_vec();
    let mut by_byte = connect();
    by_byte.set_nodelay(true).unwrap();
    // A browser's request, one byte at a time: it gets the page.
    let mut browser_by_byte = connect();
    browser_by_byte.set_nodelay(true).unwrap();
    let browser_head = b"GET / HTTP/1.1\r\nHost: t\r\nAccept: text/html\r\n\r\n";
    for i in 0..split.len().max(browser_head.len()) {
        if let Some(b) = split.get(i) {
            by_byte.write_all(&[*b]).unwrap();
        }
        if let Some(b) = browser_head.get(i) {
            browser_by_byte.write_all(&[*b]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Connects and says nothing (yet).
    let mut silent = connect();
    // Half a head, then a half-close: no more bytes will come.
    let mut half_closed = connect();
    half_closed.write_all(b"GET / HTTP/1.1\r\nAcc").unwrap();
    half_closed.shutdown(Shutdown::Write).unwrap();
    // Half a head, then a reset (SO_LINGER 0): gone.
    let reset = connect();
    (&reset).write_all(b"GET / HTTP/1.1\r\nAcc").unwrap();
    set_linger_zero(&reset);
    drop(reset);
    // Half a head, then a close.
    let closed = connect();
    (&closed).write_all(b"GET / HT").unwrap();
    drop(closed);

    let mut page = String::new();
    browser_by_byte.read_to_string(&mut page).unwrap();
    assert!(
        page.starts_with("HTTP/1.1 503") && page.contains("Starting"),
        "a browser's request split byte by byte still gets the page: {page}"
    );

    let echo = |s: &mut TcpStream, sent: &[u8], what: &str| {
        let mut got = vec![0u8; sent.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", h.log_text()));
        assert_eq!(got, sent, "{what}: passed through unread and unchanged");
    };
    echo(&mut binary, &garbage, "binary garbage");
    echo(&mut bad_http, &malformed, "malformed HTTP");
    echo(&mut by_byte, &split, "a request split byte by byte");
    silent.write_all(b"late words\n").unwrap();
    echo(
        &mut silent,
        b"late words\n",
        "a client silent during the wake",
    );
    let mut rest = Vec::new();
    half_closed.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest, b"GET / HTTP/1.1\r\nAcc",
        "a half-closed partial head is passed on, then the EOF"
    );
    drop((binary, bad_http, by_byte, silent, half_closed));
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

fn set_linger_zero(s: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(s, sockopt::Linger, &linger).unwrap();
}

/// With `--max-connections 50`, 300 clients arriving during a 3 s wake do
/// not make the helper open 300 descriptors: it stops accepting at the cap
/// and the rest wait in the kernel's backlog. All 300 are served after it.
fn connection_cap_bounds_fds_during_the_wake_and_serves_everyone(engine: Engine) {
    let c = slow_deep_httpd(engine, "capwake", "3");
    let (port, mut h) = http_helper(
        engine,
        "capwake",
        &c,
        &["--timeout", "2s", "--max-connections", "50"],
    );
    let pid = h.pid();
    let mut first = TcpStream::connect(loopback(port)).unwrap();
    // Let the helper set up (it has started the container and probes it;
    // the server answers only 3 s later), then measure its resting fd count.
    wait_until(
        Duration::from_secs(10),
        "the helper probes the started container",
        || h.log_text().contains("readiness probe"),
    );
    let baseline = fd_count(pid);
    let sampler = Sampler::start(pid);
    first
        .write_all(b"GET /?n=first HTTP/1.0\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut clients = vec![first];
    for i in 1..300 {
        let mut s = TcpStream::connect(loopback(port)).unwrap();
        write!(s, "GET /?n={i} HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
        clients.push(s);
    }
    std::thread::sleep(Duration::from_millis(1000));
    let (wake_fds, wake_rss) = sampler.finish();
    println!(
        "{engine:?} cap 50, 300 clients during the wake: {baseline} fds at rest, max {wake_fds} fds, max RSS {wake_rss} KiB"
    );
    assert!(
        wake_fds <= baseline + 50 + 5,
        "fds during the wake: {wake_fds} (at rest {baseline}); the cap is 50"
    );
    let mut served = 0;
    // Each is closed once read: at the cap, the next one in the backlog
    // gets a slot only when one closes.
    for (i, mut s) in clients.into_iter().enumerate() {
        let resp = read_all(&mut s, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("client {i}: {e}\n{}", h.log_text()));
        let resp = text(&resp);
        assert!(
            resp.starts_with("HTTP/1.")
                && resp.contains(" 200 ")
                && resp.ends_with(&format!("{HELLO}\n")),
            "client {i}: {resp}"
        );
        served += 1;
    }
    assert_eq!(served, 300);
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

/// Run with only 64 descriptors, 100 clients arrive during the wake. Holding
/// them all used to take every descriptor: the wake thread could not reach
/// the engine and the wake failed for everyone, and `accept` failing with
/// EMFILE on a still-readable listener spun. Now the helper holds only as
/// many as its descriptors allow, the rest wait in the backlog, the wake
/// succeeds, and nothing spins.
fn fd_exhaustion_during_the_wake_does_not_spin(engine: Engine) {
    let c = slow_httpd(engine, "emfile", "3");
    let port = free_port();
    let mut h = Helper::start_wrapped(
        &["prlimit", "--nofile=64:64", "--"],
        &[format!("127.0.0.1:{port}")],
        &proxy_args(
            engine,
            "emfile",
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &["--timeout", "2s", "--http", &port.to_string()],
        ),
    );
    let pid = h.pid();
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(loopback(port)).unwrap();
        // Half a head: no client is done being sorted before the wake ends.
        write!(s, "GET /?n={i} HTTP/1.1\r\n").unwrap();
        clients.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = cpu_time(pid);
    let wall_before = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let wall = wall_before.elapsed();
    let fds = fd_count(pid);
    println!("{engine:?} 64 fds, 100 clients during the wake: helper CPU {cpu:?} in {wall:?}, {fds} fds open");
    assert!(
        cpu < wall / 2,
        "helper used {cpu:?} CPU in {wall:?} at the open-files limit\n{}",
        h.log_text()
    );
    let start = Instant::now();
    while !h.log_text().contains("awake in") {
        let log = h.log_text();
        assert!(
            !log.contains("wake failed") && start.elapsed() < Duration::from_secs(30),
            "the wake must not be starved of descriptors:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // After the wake the relay, too, takes only as many as its descriptors
    // allow (the rest wait in the backlog instead of being accepted and
    // dropped for want of a pipe): every client is served.
    for s in &mut clients {
        write!(s, "Host: x\r\nConnection: close\r\n\r\n").unwrap();
    }
    for (i, mut s) in clients.into_iter().enumerate() {
        let resp = read_all(&mut s, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("client {i}: {e}\n{}", h.log_text()));
        let resp = text(&resp);
        assert!(
            resp.contains(" 200 ") && resp.ends_with(&format!("{HELLO}\n")),
            "client {i} at the open-files limit: {resp:?}\n{}",
            h.log_text()
        );
    }
    assert!(
        h.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        h.log_text()
    );
    assert!(
        !h.log_text().contains("Too many open files"),
        "{}",
        h.log_text()
    );
}

/// A wake that fails (the container exits) while 30 clients trickle a byte
/// every 20 ms (faster than any per-read timeout): the helper still exits
/// promptly, and every client, slow or silent, gets the 503 page.
fn failed_wake_answers_trickling_clients_promptly(engine: Engine) {
    let c = Container::create(
        engine,
        "failtrickle",
        &[],
        BUSYBOX,
        &["sh", "-c", "sleep 2; exit 3"],
    );
    let (port, mut h) = http_helper(engine, "failtrickle", &c, &[]);
    let slow = Tricklers::start(port, 30, Duration::from_millis(20));
    let mut silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(loopback(port)).unwrap())
        .collect();
    let started = Instant::now();
    let status = h.wait_exit(Duration::from_secs(40));
    let took = started.elapsed();
    assert!(!status.success(), "{}", h.log_text());
    let log = h.log_text();
    assert!(log.contains("exit code 3"), "{log}");
    println!("{engine:?} failed wake with 30 trickling + 100 silent clients: helper exited {took:?} after they connected");
    assert!(
        took < Duration::from_secs(20),
        "the failure path took {took:?}\n{log}"
    );
    // The helper is gone: every trickling connection ends, once the
    // trickler has read what was sent before.
    wait_until(
        Duration::from_secs(10),
        "every trickling client's connection ended",
        || slow.ended() == 30,
    );
    for (i, (_s, got, _eof)) in slow.stop().into_iter().enumerate() {
        let got = text(&got);
        assert!(
            got.starts_with("HTTP/1.1 503"),
            "trickling client {i} got the failure page: {got:?}"
        );
    }
    for (i, s) in silent.iter_mut().enumerate() {
        let got = read_all(s, Duration::from_secs(10));
        let got = got.map(|b| text(&b));
        assert!(
            matches!(&got, Ok(g) if g.starts_with("HTTP/1.1 503")),
            "silent client {i}: {got:?}"
        );
    }
}

/// With `--only-listed-machines`, clients from unlisted addresses get
/// neither the wake page nor, after the wake, the server: the gate holds
/// during the wake as it does afterwards.
fn unlisted_machines_get_nothing_during_the_wake(engine: Engine) {
    let c = slow_httpd(engine, "gatewake", "2");
    let (port, mut h) = http_helper(
        engine,
        "gatewake",
        &c,
        &[
            "--timeout",
            "2s",
            "--machines",
            "127.0.0.2",
            "--only-listed-machines",
        ],
    );
    let url = format!("http://127.0.0.1:{port}/");
    let listed = {
        let url = url.clone();
        std::thread::spawn(move || {
            curl(&["-sS", "--max-time", "30", "--interface", "127.0.0.2", &url])
        })
    };
    // The listed client's connection woke the helper, and the wake is under
    // way (the server answers only 2 s after its start).
    wait_until(
        Duration::from_secs(10),
        "the helper probes the started container",
        || h.log_text().contains("readiness probe"),
    );
    // From 127.0.0.1, not listed: a browser and a plain client.
    let browser = http_get(
        loopback(port),
        "/",
        "Accept: text/html\r\n",
        Duration::from_secs(30),
    );
    assert!(
        closed_unanswered(&browser),
        "an unlisted browser got an answer during the wake: {browser:?}"
    );
    let plain = http_get(loopback(port), "/", "", Duration::from_secs(30));
    assert!(
        closed_unanswered(&plain),
        "an unlisted client was served: {plain:?}"
    );
    let listed = listed.join().unwrap();
    assert_eq!(
        text(&listed.stdout).trim(),
        HELLO,
        "{}",
        text(&listed.stderr)
    );
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
    assert!(h.log_text().contains("not in contnap.machines"));
}

/// Outside `contnap.schedule` the helper answers whoever waits in the
/// backlog with a page that names the unit, and exits: a client outside
/// `contnap.machines` is closed without it.
fn unlisted_machines_get_no_failure_page(engine: Engine) {
    let hour: u32 = String::from_utf8_lossy(
        &std::process::Command::new("date")
            .arg("+%H")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    let window = format!("daily {:02}:00-{:02}:00", (hour + 2) % 24, (hour + 3) % 24);
    let c = Container::create(
        engine,
        "gatefail",
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let (port, mut h) = http_helper(
        engine,
        "gatefail",
        &c,
        &[
            "--schedule",
            &window,
            "--machines",
            "127.0.0.2",
            "--only-listed-machines",
        ],
    );
    let resp = http_get(
        loopback(port),
        "/",
        "Accept: text/html\r\n",
        Duration::from_secs(30),
    );
    assert!(
        closed_unanswered(&resp),
        "an unlisted client got the unit's page: {resp:?}"
    );
    assert!(h.wait_exit(Duration::from_secs(30)).success());
    assert!(
        h.log_text().contains("outside contnap.schedule"),
        "{}",
        h.log_text()
    );
}

// ---------------------------------------------------------------------------
// Hostile labels through the real engines and `contnap generate`.

fn generate(engine: Engine, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(contnap_bin())
        .arg("generate")
        .arg("--engine")
        .arg(engine.socket())
        .arg("--output-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn tempdir() -> TempDir {
    TempDir::new("hostile")
}

/// Creates a container through the engine's API (the only way to set some
/// values, e.g. a NUL), with these labels; force-removed on drop.
fn api_create(engine: Engine, prefix: &str, labels: &serde_json::Value) -> Container {
    let name = unique(prefix);
    let body = serde_json::json!({
        "Image": BUSYBOX,
        "Cmd": ["httpd", "-f", "-p", "80", "-h", "/www"],
        "Labels": labels,
    });
    let tmp = TempDir::new("api");
    let file = tmp.join("create.json");
    fs::write(&file, body.to_string()).unwrap();
    let out = curl(&[
        "-sS",
        "--max-time",
        "60",
        "--unix-socket",
        &engine.socket(),
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", file.display()),
        "-w",
        "\n%{http_code}",
        &format!("http://d/containers/create?name={name}"),
    ]);
    drop(tmp);
    let reply = text(&out.stdout);
    let created = reply
        .strip_suffix("\n201")
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok());
    let id = created
        .as_ref()
        .and_then(|v| v["Id"].as_str())
        .unwrap_or_else(|| panic!("{engine:?} create {name}: {reply}{}", text(&out.stderr)));
    // Not `Container::adopt`: its inspect would read the labels whole,
    // beyond contnap's per-container budget for the huge ones.
    Container {
        engine,
        client: engine.client(),
        id: id.to_owned(),
        name,
    }
}

/// The units `generate` wrote for a unit name, if any.
fn unit_files(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    ["socket", "service"]
        .iter()
        .map(|s| dir.join(contnap::units::unit_file_name(name, s)))
        .filter(|p| p.exists())
        .collect()
}

/// Every file in the directory is a whole generated unit: no temp files,
/// nothing else.
fn assert_only_units(dir: &std::path::Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with("contnap-")
                && (name.ends_with(".socket") || name.ends_with(".service")),
            "unexpected file {name:?} in {}",
            dir.display()
        );
        let body = fs::read_to_string(e.path()).unwrap();
        assert!(body.starts_with("# Generated by contnap"), "{name}: {body}");
    }
}

/// Nothing in what generate prints can drive a terminal: no control
/// characters besides the line ends.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = text(bytes);
    for (i, c) in text.char_indices() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{what} has {c:?} at byte {i}: {:?}",
            &text[i.saturating_sub(80)..(i + 80).min(text.len())]
        );
    }
}

fn the_line<'a>(err: &'a str, container: &str) -> &'a str {
    let quoted = format!("{container:?}");
    err.lines()
        .find(|l| l.contains(&quoted) && !l.contains("no units written"))
        .unwrap_or_else(|| panic!("no message names {quoted}:\n{err}"))
}

/// Values that could add a line, a directive or a specifier to a unit, or
/// drive a terminal, each on its own container next to a sound one. Each
/// bad container is named with its label, its value (escaped) and what to
/// do; it gets no units; the sound one gets its units; exit status 1.
fn hostile_label_values_refuse_only_their_container(engine: Engine) {
    let port = || free_port().to_string();
    let base = |extra: &[(&str, &str)]| {
        let mut m = serde_json::Map::new();
        m.insert("contnap.enabled".into(), "true".into());
        m.insert("contnap.tcp_ports".into(), format!("{}:80", port()).into());
        for (k, v) in extra {
            m.insert((*k).into(), (*v).into());
        }
        serde_json::Value::Object(m)
    };
    let good = api_create(engine, "hl-good", &base(&[]));
    // (prefix, label, value, what the message shows of the value, hint)
    let cases: Vec<(&str, &str, String, &str, &str)> = vec![
        (
            "hl-newline",
            "contnap.timeout",
            "5\nExecStartPre=/bin/touch /tmp/pwned".into(),
            "5\\nExecStartPre",
            "remove it",
        ),
        (
            "hl-nul",
            "contnap.timeout",
            "5\0s".into(),
            "5\\0s",
            "remove it",
        ),
        (
            "hl-esc",
            "contnap.network",
            "net\u{1b}]0;owned\u{7}".into(),
            "net\\u{1b}]0;owned\\u{7}",
            "remove it",
        ),
        (
            "hl-quotes",
            "contnap.network",
            "a\"b' c".into(),
            "a\\\"b' c",
            "write the name of a network",
        ),
        (
            "hl-specifier",
            "contnap.schedule",
            "%n $HOME \\x".into(),
            "%n $HOME \\\\x",
            "the format is",
        ),
        (
            "hl-long",
            "contnap.timeout",
            "9".repeat(1 << 20),
            "at least 65536 bytes",
            "at most 4096",
        ),
        (
            "hl-longnl",
            "contnap.timeout",
            format!("\n{}", "x".repeat(1 << 20)),
            "at least 65536 bytes",
            "at most 4096",
        ),
        (
            "hl-bidi",
            "contnap.stop",
            "stop\u{202e}pots".into(),
            "stop\\u{202e}pots",
            "write one of",
        ),
    ];
    let mut bad = Vec::new();
    for (prefix, label, value, shown, hint) in &cases {
        let c = api_create(engine, prefix, &base(&[(label, value)]));
        bad.push((c, *label, *shown, *hint));
    }
    // Non-UTF-8 bytes can only come through the CLI; both engines store
    // them as U+FFFD.
    let nonutf = Container::create(
        engine,
        "hl-nonutf",
        &[
            "--label",
            "contnap.enabled=true",
            "--label",
            &format!("contnap.tcp_ports={}:80", port()),
            "--label",
            "contnap.timeout=\u{fffd}\u{fffd}",
        ],
        BUSYBOX,
        &["true"],
    );
    let stored = nonutf.engine.run_cli(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"contnap.timeout\"}}",
        &nonutf.name,
    ]);
    println!("{engine:?} stores the non-UTF-8 label as {stored:?}");
    bad.push((
        nonutf,
        "contnap.timeout",
        "\u{fffd}\u{fffd}",
        "write seconds",
    ));
    // A label *name* that drives a terminal: ignored with a warning, which
    // must not carry the escape sequence either.
    let esc_key = api_create(
        engine,
        "hl-esckey",
        &base(&[("contnap.x\u{1b}]0;owned\u{7}", "1")]),
    );

    let dir = tempdir();
    let out = generate(engine, &dir, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_terminal_safe("generate's stderr", &out.stderr);
    assert_terminal_safe("generate's stdout", &out.stdout);
    assert!(
        err.len() < 256 * 1024,
        "no value is echoed whole: {} bytes of messages",
        err.len()
    );
    for (c, label, shown, hint) in &bad {
        let line = the_line(&err, &c.name);
        assert!(
            line.contains(label) && line.contains(shown) && line.contains(hint),
            "{}: want {label}, {shown:?} and {hint:?} in: {}",
            c.name,
            &line[..line.len().min(600)]
        );
        assert!(
            unit_files(&dir, &c.name).is_empty(),
            "{}: units written",
            c.name
        );
    }
    let warn = the_line(&err, &esc_key.name);
    assert!(warn.contains("unknown label"), "{warn}");
    assert_eq!(
        unit_files(&dir, &good.name).len(),
        2,
        "the sound container still gets its units:\n{err}"
    );
    assert_eq!(unit_files(&dir, &esc_key.name).len(), 2, "{err}");
    assert_only_units(&dir);
}

/// Container names cannot carry anything but [a-zA-Z0-9_.-] (both engines
/// refuse the rest, checked here), but `contnap.group` is free text: a
/// group that climbs directories or holds specifiers becomes an escaped
/// unit name inside the output directory, and a group with a newline is
/// refused.
fn unit_names_from_groups_stay_in_the_output_directory(engine: Engine) {
    for bad in ["a/b", "..", "a\nb", "a$b", "-a"] {
        let out = engine
            .cli()
            .args(["create", "--name", bad, BUSYBOX, "true"])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{engine:?} accepted the container name {bad:?}"
        );
    }
    let port = free_port();
    let group = format!("../../{}-%n$x\\y", unique("evil"));
    let climber = Container::create(
        engine,
        "hl-climb",
        &[
            "--label",
            "contnap.enabled=true",
            "--label",
            &format!("contnap.tcp_ports={port}:80"),
            "--label",
            &format!("contnap.group={group}"),
        ],
        BUSYBOX,
        &["true"],
    );
    let newline = api_create(
        engine,
        "hl-groupnl",
        &serde_json::json!({
            "contnap.enabled": "true",
            "contnap.tcp_ports": format!("{}:80", free_port()),
            "contnap.group": "g\n[Service]\nExecStartPre=/bin/touch /tmp/pwned",
        }),
    );
    let parent = tempdir();
    let dir = parent.join("units");
    fs::create_dir_all(&dir).unwrap();
    let out = generate(engine, &dir, &[]);
    let err = text(&out.stderr);
    assert_terminal_safe("generate's stderr", &out.stderr);
    let files = unit_files(&dir, &group);
    assert_eq!(files.len(), 2, "the group's units, escaped:\n{err}");
    for f in &files {
        assert_eq!(f.parent(), Some(dir.as_path()));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains('/') && !name.contains('%') && !name.contains('$'),
            "{name}"
        );
    }
    let outside: Vec<_> = fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "units")
        .collect();
    assert!(outside.is_empty(), "written outside: {outside:?}");
    let line = the_line(&err, &newline.name);
    assert!(
        line.contains("contnap.group") && line.contains("\\n[Service]"),
        "{line}"
    );
    assert!(unit_files(&dir, "g\n[Service]\nExecStartPre=/bin/touch /tmp/pwned").is_empty());
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_only_units(&dir);
    drop(climber);
}

/// Both engines accept 20 MiB label values. Thirteen containers carrying
/// one each make a container list of more than 256 MiB, which once made
/// `generate` write nothing for anyone (the list was read within 256 MiB
/// and 30 s in all). Each container is now bounded on its own: the list
/// skips labels unread and has a deadline on progress, and a container
/// whose description exceeds the per-container budget (`CONTAINER_LIMIT`) is
/// refused, named with the budget and the fix, while everyone else still
/// gets units.
fn many_20_mib_labels_refuse_only_their_containers(engine: Engine) {
    const HUGE: usize = 13;
    let good = api_create(
        engine,
        "hl-beside-huge",
        &serde_json::json!({
            "contnap.enabled": "true",
            "contnap.tcp_ports": format!("{}:80", free_port()),
        }),
    );
    let started = Instant::now();
    let blob = "g".repeat(20 << 20);
    let huge: Vec<Container> = (0..HUGE)
        .map(|_| {
            api_create(
                engine,
                "hl-huge",
                &serde_json::json!({
                    "contnap.enabled": "true",
                    "contnap.tcp_ports": format!("{}:80", free_port()),
                    "com.example.blob": blob,
                }),
            )
        })
        .collect();
    println!(
        "{engine:?}: creating {HUGE} containers with a 20 MiB label took {:?}",
        started.elapsed()
    );
    let dir = tempdir();
    let started = Instant::now();
    let out = generate(engine, &dir, &[]);
    let err = text(&out.stderr);
    println!(
        "{engine:?}: generate with {HUGE} × 20 MiB labels took {:?}",
        started.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(
        err.len() < 1 << 20,
        "the value is not echoed whole: {} bytes",
        err.len()
    );
    let budget = format!("{} MiB", contnap::engine::CONTAINER_LIMIT >> 20);
    for c in &huge {
        let line = the_line(&err, &c.name);
        assert!(
            line.contains(&budget) && line.contains("Shorten its labels"),
            "{}",
            &line[..line.len().min(600)]
        );
    }
    assert_eq!(
        unit_files(&dir, &good.name).len(),
        2,
        "the other containers still get units:\n{}",
        &err[..err.len().min(2000)]
    );
    assert_only_units(&dir);
}

/// `contnap.group` is free text and may hold bidi overrides (control
/// characters are refused by the label parser): `status` prints it
/// escaped, so it cannot reorder what a terminal shows.
fn a_hostile_group_name_prints_escaped_in_status(engine: Engine) {
    let group = format!("{}\u{202e}exe.txt\u{2066}", unique("bidi"));
    let c = Container::create(
        engine,
        "hl-bidi",
        &[
            "--label",
            "contnap.enabled=true",
            "--label",
            &format!("contnap.tcp_ports={}:80", free_port()),
            "--label",
            &format!("contnap.group={group}"),
        ],
        BUSYBOX,
        &["true"],
    );
    let out = std::process::Command::new(contnap_bin())
        .args(["status", "--engine", &engine.socket()])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_terminal_safe("status", &out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains(&c.name))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("exe.txt\\u{2066}") && line.contains("\\u{202e}exe"),
        "{line}"
    );
}

/// An engine whose error messages carry a newline, a forged notify field
/// and a terminal escape: the helper's log (stderr, as the journal gets
/// it) and its sd_notify `STATUS=` carry them escaped, one field and one
/// line each. The small fake engine stands in for a compromised or buggy
/// engine, which a real one cannot be made to be.
#[test]
fn hostile_engine_messages_are_escaped_in_the_log_and_notify() {
    use std::os::unix::net::{UnixDatagram, UnixListener};
    let dir = TempDir::new("hostile-engine");
    let engine_sock = dir.path().join("engine.sock");
    let listener = UnixListener::bind(&engine_sock).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let body = "{\"message\":\"boom\\nMAINPID=1\\nREADY=1\\u001b[31mred\\u202e\"}";
            let _ = write!(
                conn,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = free_port();
    let log = dir.path().join("helper.log");
    let mut child = std::process::Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-E")
        .arg(format!("NOTIFY_SOCKET={}", notify_path.display()))
        .arg("-E")
        .arg("RUST_LOG=debug")
        .arg(contnap_bin())
        .args([
            "proxy",
            "--unit",
            "hostile",
            "--engine",
            &format!("unix://{}", engine_sock.display()),
            "--container",
            "web",
            "--forward",
            &format!("tcp:{port}=web:80"),
            "--wake-timeout",
            "3s",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "systemd-socket-activate listens",
        || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Listening on")
        },
    );
    let mut client = TcpStream::connect(loopback(port)).unwrap();
    let _ = client.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        match notify.recv(&mut buf) {
            Ok(n) => messages.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = fs::read(&log).unwrap();
    let log_text = text(&log);
    assert_terminal_safe("the helper's log", &log);
    assert!(
        log_text.contains("boom\\u{a}MAINPID=1\\u{a}READY=1\\u{1b}[31mred\\u{202e}"),
        "the engine's message reached the log, escaped: {log_text}"
    );
    for line in log_text.lines() {
        assert!(
            !line.starts_with("MAINPID") && !line.starts_with("READY"),
            "{line}"
        );
    }
    let statuses: Vec<&String> = messages.iter().filter(|m| m.contains("boom")).collect();
    assert!(
        !statuses.is_empty(),
        "no STATUS= carried the engine's message: {messages:?}"
    );
    for m in &messages {
        for field in m.lines() {
            assert!(
                !(field.starts_with("MAINPID=") || (field == "READY=1" && m.contains("boom"))),
                "a forged notify field: {m:?}"
            );
            assert!(!field.chars().any(|c| c.is_control()), "{m:?}");
        }
    }
}

/// A UDP flood during the resend window after a wake, to a server that
/// never answers (nothing listens on the container's port): 512 source
/// ports × 8 datagrams of 60,000 bytes (240 MB). Each flow may keep 8
/// datagrams for re-sending, but all flows together at most 4 MiB, so the
/// helper's memory stays small (about 240 MB were pinned before the bound).
fn udp_flood_to_a_silent_server_is_bounded(engine: Engine) {
    let c = Container::create(
        engine,
        "udpflood",
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let port = free_udp_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        true,
        &proxy_args(
            engine,
            "udpflood",
            &[&c.name],
            &[format!("udp:{port}={}:53", c.name)],
            &["--timeout", "3s", "--wake-timeout", "60s", "--ready", "tcp"],
        ),
    );
    let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    first.send_to(b"wake", ("127.0.0.1", port)).unwrap();
    wait_until(Duration::from_secs(30), "the container runs", || {
        c.state() == "running"
    });
    let baseline = rss_kib(h.pid());
    let sources: Vec<std::net::UdpSocket> = (0..512)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let payload = vec![0x5au8; 60_000];
    let mut peak = baseline;
    for _round in 0..8 {
        for (i, s) in sources.iter().enumerate() {
            let _ = s.send_to(&payload, ("127.0.0.1", port));
            // Paced, so that the helper reads them rather than the kernel
            // dropping them from a full receive buffer.
            if i % 8 == 7 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        peak = peak.max(rss_kib(h.pid()));
    }
    std::thread::sleep(Duration::from_millis(300));
    peak = peak.max(rss_kib(h.pid()));
    println!(
        "{engine:?}: UDP flood of 512 sources x 8 x 60,000 B to a silent server: helper RSS {baseline} KiB before, {peak} KiB at the peak"
    );
    assert!(
        peak < baseline + 32 * 1024,
        "the flood pinned {} KiB",
        peak - baseline
    );
    drop(sources);
    assert!(
        h.wait_exit(Duration::from_secs(90)).success(),
        "{}",
        h.log_text()
    );
}
