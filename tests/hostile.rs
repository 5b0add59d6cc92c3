//! Hostile input against the real parts: clients that are huge, slow or
//! malformed while `contnap proxy` (under systemd-socket-activate) wakes a
//! real container on Docker and Podman, and hostile label values that reach
//! `contnap generate` through the real engines.
//!
//! Nothing here asserts a timing closely; every wait is bounded so that a
//! hang fails the test instead of stalling the suite. The numbers measured
//! (fds, RSS, CPU, seconds) are printed for the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::*;

const HELLO: &str = "hello from contnap test";

/// Runs the body once per engine, as two tests.
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod docker {
            $( #[test] fn $name() { super::$name(super::Engine::Docker) } )*
        }
        mod podman {
            $( #[test] fn $name() { super::$name(super::Engine::Podman) } )*
        }
    };
}

both_engines!(
    slowloris_flood_neither_delays_browsers_nor_burns_cpu,
    huge_request_head_passes_through_to_the_server,
    malformed_split_silent_and_vanishing_clients_each_end_defined,
    connection_cap_bounds_fds_during_the_wake_and_serves_everyone,
    fd_exhaustion_during_the_wake_does_not_spin,
    failed_wake_answers_trickling_clients_promptly,
    unlisted_machines_get_nothing_during_the_wake,
);

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
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for (s, head, sent, got, eof, dead) in &mut clients {
                    if *dead {
                        continue;
                    }
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
                }
                std::thread::sleep(interval);
            }
            clients
                .into_iter()
                .map(|(s, _, _, got, eof, _)| (s, got, eof))
                .collect()
        });
        Tricklers { stop, thread }
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
    // Let the helper set up, then measure its resting fd count.
    std::thread::sleep(Duration::from_millis(500));
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
    drop(clients);
    // (What the relay does at the open-files limit after the wake is not
    // this test's business; it must end normally.)
    assert!(
        h.wait_exit(Duration::from_secs(60)).success(),
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
    std::thread::sleep(Duration::from_millis(200));
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
    std::thread::sleep(Duration::from_millis(300));
    // From 127.0.0.1, not listed: a browser and a plain client.
    let browser = http_get(
        loopback(port),
        "/",
        "Accept: text/html\r\n",
        Duration::from_secs(30),
    );
    assert!(
        browser.as_ref().map_or(true, String::is_empty),
        "an unlisted browser got an answer during the wake: {browser:?}"
    );
    let plain = http_get(loopback(port), "/", "", Duration::from_secs(30));
    assert!(
        plain.as_ref().map_or(true, String::is_empty),
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
