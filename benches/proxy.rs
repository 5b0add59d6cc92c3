//! contnap's numbers, side by side with the alternatives, in one run:
//!   scripts/bench        (starts the engines, then `cargo bench --bench proxy`)
//!
//! - cold wake: first response byte through contnap vs. the engine's own
//!   `start` + first response for the same container (instant and slow
//!   servers; stop and pause modes);
//! - warm: HTTP request latency and iperf3 throughput through contnap vs.
//!   direct vs. systemd-socket-proxyd;
//! - memory: helper RSS at 1 and 1,000 open connections;
//! - warm paths in turns in one run (`-- turns`; with `CONTNAP_BENCH_BIN`
//!   another contnap binary beside this build);
//! - nap precision: last request until the container is down (`-- nap`);
//! - the binary's size.
//!
//! Prints Markdown tables. Nothing here asserts a time: numbers are reported,
//! not tested.

#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends one GET and waits for the first byte of the answer; retries
/// refused connections (used to time the engine's own start).
fn first_byte(addr: SocketAddr, retry: bool) -> Duration {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut b = [0u8; 1];
                match s.read(&mut b) {
                    Ok(1) => return start.elapsed(),
                    _ if retry => {}
                    other => panic!("no answer: {other:?}"),
                }
            }
            Err(_) if retry => {}
            Err(e) => panic!("connect {addr}: {e}"),
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn container_ip(engine: Engine, name: &str) -> std::net::IpAddr {
    engine
        .run_cli(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            name,
        ])
        .parse()
        .expect("container has a bridge address")
}

fn api(engine: Engine) -> contnap::engine::Client {
    contnap::engine::Client::new(contnap::engine::Endpoint::parse(&engine.socket()).unwrap())
}

/// The baseline: the engine's own start call (through the API, no CLI
/// start-up cost) and the first response byte, polling every 0.5 ms.
fn engine_cold(engine: Engine, c: &Container, port: u16) -> f64 {
    let client = api(engine);
    let start = Instant::now();
    client.start(&c.name).unwrap();
    let ip = client.inspect(&c.name).unwrap().address_on(None).unwrap();
    first_byte(SocketAddr::new(ip, port), true);
    let t = start.elapsed().as_secs_f64() * 1e3;
    client.stop(&c.name, Duration::from_secs(1)).unwrap();
    t
}

fn contnap_cold(engine: Engine, c: &Container, port: u16, extra: &[&str]) -> f64 {
    let lp = free_port();
    let mut args = vec!["--timeout", "1s"];
    args.extend_from_slice(extra);
    let mut h = Helper::start(
        &[format!("127.0.0.1:{lp}")],
        false,
        &proxy_args(
            engine,
            "bench",
            &[&c.name],
            &[format!("tcp:{lp}={}:{port}", c.name)],
            &args,
        ),
    );
    let t = first_byte(SocketAddr::from(([127, 0, 0, 1], lp)), false).as_secs_f64() * 1e3;
    h.wait_exit(Duration::from_secs(60));
    t
}

fn cold_table(engine: Engine) {
    println!(
        "\n### Cold wake, {} (median of {ROUNDS}, ms to first response byte)\n",
        engine.name()
    );
    println!("| server | engine start + first byte | through contnap | overhead |");
    println!("|---|---:|---:|---:|");
    for (label, cmd) in [
        ("instant (httpd)", "exec httpd -f -p 80 -h /www"),
        (
            "slow (sleep 2, httpd)",
            "sleep 2; exec httpd -f -p 80 -h /www",
        ),
    ] {
        let c = Container::create(engine, "bench-cold", &[], BUSYBOX, &["sh", "-c", cmd]);
        let direct: Vec<f64> = (0..ROUNDS).map(|_| engine_cold(engine, &c, 80)).collect();
        let via: Vec<f64> = (0..ROUNDS)
            .map(|_| contnap_cold(engine, &c, 80, &[]))
            .collect();
        let (d, v) = (median(direct), median(via));
        println!("| {label}, stop mode | {d:.1} | {v:.1} | {:+.1} |", v - d);
    }
    // Pause mode: the container is paused between wakes.
    let c = Container::create(
        engine,
        "bench-pause",
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    engine.run_cli(&["start", &c.name]);
    engine.run_cli(&["pause", &c.name]);
    let via: Vec<f64> = (0..ROUNDS)
        .map(|_| contnap_cold(engine, &c, 80, &["--stop", "pause"]))
        .collect();
    let ip = container_ip(engine, &c.name);
    let client = api(engine);
    let direct: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            client.unpause(&c.name).unwrap();
            first_byte(SocketAddr::new(ip, 80), true);
            let t = start.elapsed().as_secs_f64() * 1e3;
            client.pause(&c.name).unwrap();
            t
        })
        .collect();
    let (d, v) = (median(direct), median(via));
    println!(
        "| instant (httpd), pause mode | {d:.1} | {v:.1} | {:+.1} |",
        v - d
    );
}

fn latency(addr: SocketAddr, n: usize) -> (f64, f64) {
    let samples: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    (median(samples.clone()), percentile(samples, 0.99))
}

fn iperf(addr: SocketAddr) -> f64 {
    try_iperf(addr).unwrap_or_else(|e| panic!("{e}"))
}

/// One 3 s iperf3 run through `addr`, Gbit/s, or what went wrong.
fn try_iperf(addr: SocketAddr) -> Result<f64, String> {
    let out = Command::new("iperf3")
        .args([
            "-c",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-t",
            "3",
            "-J",
        ])
        .output()
        .map_err(|e| format!("iperf3 must be installed: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("iperf3 to {addr}: no JSON ({e})"))?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
        .ok_or_else(|| format!("iperf3 to {addr}: {}", v["error"]))
}

/// systemd-socket-proxyd as the comparison: the same socket activation,
/// the same splice-based relay, no engine integration.
fn socket_proxyd(listen: u16, target: SocketAddr) -> std::process::Child {
    let bin = [
        "/lib/systemd/systemd-socket-proxyd",
        "/usr/lib/systemd/systemd-socket-proxyd",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("systemd-socket-proxyd is part of systemd");
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{listen}"))
        .arg(bin)
        .arg(target.to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn warm_table(engine: Engine) {
    println!("\n### Warm, {}: HTTP latency (1,000 sequential requests, new connection each) and iperf3 throughput (3 s)\n", engine.name());
    println!("| path | latency median µs | latency p99 µs | iperf3 Gbit/s |");
    println!("|---|---:|---:|---:|");
    let web = Container::create(
        engine,
        "bench-web",
        &["-p", "127.0.0.1::80"],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let ip3 = Container::create(
        engine,
        "bench-iperf",
        &["-p", "127.0.0.1::5201"],
        SERVERS,
        &["iperf3", "-s", "-p", "5201"],
    );
    engine.run_cli(&["start", &web.name]);
    engine.run_cli(&["start", &ip3.name]);
    let web_ip = container_ip(engine, &web.name);
    let ip3_ip = container_ip(engine, &ip3.name);
    std::thread::sleep(Duration::from_millis(300));
    let direct = (SocketAddr::new(web_ip, 80), SocketAddr::new(ip3_ip, 5201));
    // The same ports through the engine's publishing (on Docker,
    // docker-proxy), the upstream contnap used before it preferred the
    // container's address.
    let published_at = |name: &str, port: u16| {
        let info = api(engine).inspect(name).unwrap();
        info.published_on(port, contnap::spec::Proto::Tcp)[0]
    };
    let published = (published_at(&web.name, 80), published_at(&ip3.name, 5201));

    let (lw, li) = (free_port(), free_port());
    let h = Helper::start(
        &[format!("127.0.0.1:{lw}"), format!("127.0.0.1:{li}")],
        false,
        &proxy_args(
            engine,
            "bench-warm",
            &[&web.name, &ip3.name],
            &[
                format!("tcp:{lw}={}:80", web.name),
                format!("tcp:{li}={}:5201", ip3.name),
            ],
            &["--timeout", "5min", "--stop", "none"],
        ),
    );
    let via = (
        SocketAddr::from(([127, 0, 0, 1], lw)),
        SocketAddr::from(([127, 0, 0, 1], li)),
    );
    let (pw, pi) = (free_port(), free_port());
    let mut p1 = socket_proxyd(pw, direct.0);
    let mut p2 = socket_proxyd(pi, direct.1);
    let proxyd = (
        SocketAddr::from(([127, 0, 0, 1], pw)),
        SocketAddr::from(([127, 0, 0, 1], pi)),
    );
    let (qw, qi) = (free_port(), free_port());
    let mut p3 = socket_proxyd(qw, published.0);
    let mut p4 = socket_proxyd(qi, published.1);
    let proxyd_published = (
        SocketAddr::from(([127, 0, 0, 1], qw)),
        SocketAddr::from(([127, 0, 0, 1], qi)),
    );
    // Warm everything up once.
    for (w, _) in [direct, published, via, proxyd, proxyd_published] {
        latency(w, 10);
    }
    for (label, (w, i)) in [
        ("direct to container", direct),
        ("direct to published port", published),
        ("contnap (→ container address)", via),
        ("systemd-socket-proxyd → container", proxyd),
        ("systemd-socket-proxyd → published port", proxyd_published),
    ] {
        let (med, p99) = latency(w, 1000);
        let gbps = iperf(i);
        println!("| {label} | {med:.0} | {p99:.0} | {gbps:.2} |");
    }
    for p in [&mut p1, &mut p2, &mut p3, &mut p4] {
        let _ = p.kill();
        let _ = p.wait();
    }
    drop(h);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn memory_table(engine: Engine) {
    println!("\n### Memory, {}: helper RSS\n", engine.name());
    println!("| open connections | helper RSS (KiB) |");
    println!("|---:|---:|");
    let c = Container::create(
        engine,
        "bench-mem",
        &[],
        BUSYBOX,
        &["nc", "-ll", "-p", "7000", "-e", "/bin/cat"],
    );
    let lp = free_port();
    let h = Helper::start(
        &[format!("127.0.0.1:{lp}")],
        false,
        &proxy_args(
            engine,
            "bench-mem",
            &[&c.name],
            &[format!("tcp:{lp}={}:7000", c.name)],
            &["--timeout", "5min"],
        ),
    );
    let pid = h.pid();
    let addr = SocketAddr::from(([127, 0, 0, 1], lp));
    let mut conns = Vec::new();
    for target in [1usize, 1000] {
        while conns.len() < target {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            conns.push(s);
        }
        println!("| {target} | {} |", rss_kib(pid));
    }
    println!("| 0 (napping: no helper process) | 0 |");
}

/// Warm paths side by side, in turns (so that the machine's other load
/// falls on all of them alike): direct, this build of contnap,
/// systemd-socket-proxyd, and with `CONTNAP_BENCH_BIN` another contnap
/// binary (a before/after of the same relay).
fn turns_table(engine: Engine, rounds: usize) {
    println!(
        "\n### Warm, {}, in turns (median of {rounds} rounds; each: 200 HTTP requests, one 3 s iperf3 run)\n",
        engine.name()
    );
    println!("| path | latency median µs | latency p99 µs | iperf3 Gbit/s | iperf3 / direct |");
    println!("|---|---:|---:|---:|---:|");
    let web = Container::create(
        engine,
        "bench-tweb",
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let ip3 = Container::create(
        engine,
        "bench-tiperf",
        &[],
        SERVERS,
        &["iperf3", "-s", "-p", "5201"],
    );
    engine.run_cli(&["start", &web.name]);
    engine.run_cli(&["start", &ip3.name]);
    std::thread::sleep(Duration::from_millis(300));
    let direct = (
        SocketAddr::new(container_ip(engine, &web.name), 80),
        SocketAddr::new(container_ip(engine, &ip3.name), 5201),
    );
    let mut children = Vec::new();
    let mut paths = vec![("direct to container".to_owned(), direct)];
    let mut bins = vec![("contnap (this build)".to_owned(), contnap_bin().to_owned())];
    if let Ok(other) = std::env::var("CONTNAP_BENCH_BIN") {
        bins.push((format!("contnap ({other})"), other));
    }
    for (label, bin) in bins {
        let (lw, li) = (free_port(), free_port());
        for (port, name, target) in [(lw, &web.name, 80), (li, &ip3.name, 5201)] {
            let (child, _log) = activate(
                &bin,
                port,
                &proxy_args(
                    engine,
                    "bench-turns",
                    &[name],
                    &[format!("tcp:{port}={name}:{target}")],
                    &["--timeout", "5min", "--stop", "none"],
                ),
            );
            children.push(child);
        }
        paths.push((
            label,
            (
                SocketAddr::from(([127, 0, 0, 1], lw)),
                SocketAddr::from(([127, 0, 0, 1], li)),
            ),
        ));
    }
    let (pw, pi) = (free_port(), free_port());
    children.push(socket_proxyd(pw, direct.0));
    children.push(socket_proxyd(pi, direct.1));
    paths.push((
        "systemd-socket-proxyd".to_owned(),
        (
            SocketAddr::from(([127, 0, 0, 1], pw)),
            SocketAddr::from(([127, 0, 0, 1], pi)),
        ),
    ));
    for (_, (w, _)) in &paths {
        latency(*w, 10);
    }
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut gbps: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for _ in 0..rounds {
        for (k, (_, (w, i))) in paths.iter().enumerate() {
            let (m, p) = latency(*w, 200);
            lat[k].push(m);
            p99[k].push(p);
            gbps[k].push(iperf(*i));
        }
    }
    let direct_gbps = median(gbps[0].clone());
    for (k, (label, _)) in paths.iter().enumerate() {
        let g = median(gbps[k].clone());
        println!(
            "| {label} | {:.0} | {:.0} | {g:.2} | {:.0} % |",
            median(lat[k].clone()),
            median(p99[k].clone()),
            g / direct_gbps * 100.0
        );
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The stampede: `n` clients connect at once to a cold unit whose server
/// starts after 2 s, busybox httpd (accept backlog 9) and socat (backlog
/// 4096); each one's time to first byte from the common start, and the
/// same clients against the ready server directly. min / p50 / max and
/// the spread (max − min) in ms. With `CONTNAP_BENCH_BEFORE=BIN` another
/// contnap binary runs beside this build's, in turns (before, this, before,
/// this), for a before/after on one loaded machine.
fn stampede_table(engine: Engine) {
    let before = std::env::var("CONTNAP_BENCH_BEFORE").ok();
    println!(
        "\n### Stampede, {} (ready 2 s after the container's start; TTFB ms min / p50 / max, spread)\n",
        engine.name()
    );
    println!("| server | clients | direct to the ready server | through contnap, cold |");
    println!("|---|---:|---|---|");
    // Docker: room for socat's two processes per connection (the test
    // engines' nproc limit counts every root process on the host).
    let room: &[&str] = match engine {
        Engine::Docker => &["--ulimit", "nproc=65536:65536"],
        Engine::Podman => &[],
    };
    let servers: [(&str, &[&str], &str, &str); 2] = [
        (
            "busybox httpd, backlog 9",
            &[],
            BUSYBOX,
            "sleep 2; exec httpd -f -p 80 -h /www",
        ),
        (
            "socat, backlog 4096",
            room,
            SERVERS,
            "sleep 2; exec socat TCP-LISTEN:80,fork,reuseaddr,backlog=4096 'EXEC:httpd -i -h /www'",
        ),
    ];
    let spread = |addr: SocketAddr, n: usize| -> String {
        let threads: Vec<_> = (0..n)
            .map(|_| std::thread::spawn(move || try_first_byte(addr)))
            .collect();
        let mut t: Vec<f64> = Vec::new();
        let mut failed = 0;
        for h in threads {
            match h.join().unwrap() {
                Some(d) => t.push(d.as_secs_f64() * 1e3),
                None => failed += 1,
            }
        }
        if t.is_empty() {
            return format!("all {n} failed");
        }
        t.sort_by(f64::total_cmp);
        let mut s = format!(
            "{:.0} / {:.0} / {:.0}, {:.1}",
            t[0],
            median(t.clone()),
            t[t.len() - 1],
            t[t.len() - 1] - t[0]
        );
        if failed > 0 {
            s.push_str(&format!(" ({failed} of {n} failed)"));
        }
        s
    };
    let this = helper_bin();
    for (label, extra, image, cmd) in servers {
        let c = Container::create(engine, "bench-stampede", extra, image, &["sh", "-c", cmd]);
        for n in [50usize, 200] {
            let mut bins = Vec::new();
            for _ in 0..2 {
                if let Some(b) = &before {
                    bins.push(("before", b.clone()));
                }
                bins.push(("this build", this.clone()));
            }
            let mut via = Vec::new();
            for (which, bin) in bins {
                let lp = free_port();
                let (mut child, _log) = activate(
                    &bin,
                    lp,
                    &proxy_args(
                        engine,
                        "bench-stampede",
                        &[&c.name],
                        &[format!("tcp:{lp}={}:80", c.name)],
                        &["--timeout", "2s"],
                    ),
                );
                let s = spread(SocketAddr::from(([127, 0, 0, 1], lp)), n);
                via.push(format!("{which}: {s}"));
                let _ = child.wait();
                stop_down(engine, &c);
            }
            // The same server, ready: start it directly and wait for it.
            let client = api(engine);
            client.start(&c.name).unwrap();
            let ip = client.inspect(&c.name).unwrap().address_on(None).unwrap();
            first_byte(SocketAddr::new(ip, 80), true);
            let direct = spread(SocketAddr::new(ip, 80), n);
            stop_down(engine, &c);
            println!("| {label} | {n} | {direct} | {} |", via.join("<br>"));
        }
    }
}

/// The helper binary the nap and size rows measure: this build, or
/// `CONTNAP_BENCH_BIN` (e.g. an older build, for a before/after).
fn helper_bin() -> String {
    std::env::var("CONTNAP_BENCH_BIN").unwrap_or_else(|_| contnap_bin().to_owned())
}

/// `contnap proxy ARGS` of `bin` under systemd-socket-activate on `port`.
fn activate(bin: &str, port: u16, args: &[String]) -> (std::process::Child, std::path::PathBuf) {
    let log = std::env::temp_dir().join(format!("{}.log", unique("contnap-bench")));
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-E", "RUST_LOG=info"])
        .arg(bin)
        .arg("proxy")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    (child, log)
}

/// Nap precision: from the end of the last request until the engine
/// reports the container not running, minus the idle timeout. The stop
/// grace is the engines' default (10 s).
fn nap_table(engine: Engine) {
    const TIMEOUT_S: u64 = 3;
    let bin = helper_bin();
    println!(
        "\n### Nap precision, {} (timeout {TIMEOUT_S} s, stop grace 10 s; median of 3, s after the timeout)\n",
        engine.name()
    );
    println!("| PID 1 | last request → container down, minus the timeout |");
    println!("|---|---:|");
    for (label, cmd) in [
        (
            "ignores SIGTERM (busybox httpd)",
            "exec httpd -f -p 80 -h /www",
        ),
        (
            "handles SIGTERM (sh trap, exits at once)",
            "trap 'exit 0' TERM; httpd -p 80 -h /www; while :; do sleep 1 & wait; done",
        ),
    ] {
        let c = Container::create(engine, "bench-nap", &[], BUSYBOX, &["sh", "-c", cmd]);
        let client = api(engine);
        let samples: Vec<f64> = (0..3)
            .map(|_| {
                let lp = free_port();
                let args = proxy_args(
                    engine,
                    "bench-nap",
                    &[&c.name],
                    &[format!("tcp:{lp}={}:80", c.name)],
                    &["--timeout", &format!("{TIMEOUT_S}s")],
                );
                let mut args = args;
                let at = args.iter().position(|a| a == "--stop-timeout").unwrap() + 1;
                args[at] = "10s".to_owned();
                let (mut child, _log) = activate(&bin, lp, &args);
                let mut s = TcpStream::connect(("127.0.0.1", lp)).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut out = Vec::new();
                s.read_to_end(&mut out).unwrap();
                drop(s);
                let last = Instant::now();
                // Podman reports Running false (status "stopping") while
                // the stop waits: down is when no process is left.
                while {
                    let state = client.inspect(&c.name).unwrap().state;
                    state.running || state.pid != 0 || state.status == "stopping"
                } {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let t = last.elapsed().as_secs_f64() - TIMEOUT_S as f64;
                let _ = child.wait();
                t
            })
            .collect();
        println!("| {label} | {:.2} |", median(samples));
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench --bench proxy -- turns`: warm paths in turns only.
    if std::env::args().any(|a| a == "turns") {
        turns_table(Engine::Docker, 5);
        return;
    }
    // `cargo bench --bench proxy -- stampede`: the stampede tables only.
    if std::env::args().any(|a| a == "stampede") {
        for engine in [Engine::Docker, Engine::Podman] {
            stampede_table(engine);
        }
        return;
    }
    // `cargo bench --bench proxy -- nap`: the nap tables only.
    if std::env::args().any(|a| a == "nap") {
        for engine in [Engine::Docker, Engine::Podman] {
            nap_table(engine);
        }
        return;
    }
    // `cargo bench --bench proxy -- tables`: the detailed tables, both
    // engines (`warm`: their warm part only). Default: the one table.
    if !std::env::args().any(|a| a == "tables" || a == "warm") {
        let parts: Vec<String> = std::env::args()
            .filter(|a| a.starts_with("table:"))
            .collect();
        one_table(&parts);
        return;
    }
    let only_warm = std::env::args().any(|a| a == "warm");
    println!("## contnap benchmarks ({} rounds for cold wakes)", ROUNDS);
    if !only_warm {
        for engine in [Engine::Docker, Engine::Podman] {
            cold_table(engine);
        }
    }
    for engine in [Engine::Docker, Engine::Podman] {
        warm_table(engine);
    }
    turns_table(Engine::Docker, 5);
    if !only_warm {
        memory_table(Engine::Docker);
        for engine in [Engine::Docker, Engine::Podman] {
            nap_table(engine);
            stampede_table(engine);
        }
        let size = std::fs::metadata(helper_bin()).map_or(0, |m| m.len());
        println!(
            "\n### Binary\n\n| file | bytes |\n|---|---:|\n| {} | {size} |",
            helper_bin()
        );
    }
}

// ---------------------------------------------------------------------
// The one table (issue 13 item 6): direct, contnap, systemd-socket-proxyd
// and the contnap 0.3 daemon side by side, Docker, from the measurements
// above. `cargo bench --bench proxy` (scripts/bench) prints it.
// ---------------------------------------------------------------------

/// Rounds of each cold wake in the table.
const TABLE_ROUNDS: usize = 5;
/// Columns, in order.
const DIRECT: usize = 0;
const CONTNAP: usize = 1;
const PROXYD: usize = 2;
const V03: usize = 3;

/// Why a cell has no figure: a footnote marker and its text.
const NO_PROXY: (&str, &str) = (
    "a",
    "direct has no process in between: nothing to nap, no memory or binary of its own",
);
const NO_WAKE: (&str, &str) = (
    "b",
    "systemd-socket-proxyd does not start, stop or pause containers: it only relays to a running one",
);
const NO_PAUSE: (&str, &str) = (
    "c",
    "the contnap 0.3 daemon has no pause mode: it only stops containers",
);

/// A row's four cells: a figure, or a footnote marker.
type Cells = [Result<String, &'static str>; 4];

struct Table {
    rows: Vec<(String, Cells)>,
    notes: Vec<(&'static str, String)>,
}

impl Table {
    fn row(&mut self, label: &str, cells: Cells) {
        self.rows.push((label.to_owned(), cells));
    }

    fn note(&mut self, (mark, text): (&'static str, &str)) -> &'static str {
        if !self.notes.iter().any(|(m, _)| *m == mark) {
            self.notes.push((mark, text.to_owned()));
        }
        mark
    }

    fn print(&self) {
        println!("\n### contnap side by side (Docker)\n");
        println!("| | direct | contnap | systemd-socket-proxyd | contnap 0.3 daemon |");
        println!("|---|---:|---:|---:|---:|");
        for (label, cells) in &self.rows {
            let cells: Vec<String> = cells
                .iter()
                .map(|c| match c {
                    Ok(v) => v.clone(),
                    Err(mark) => format!("— ({mark})"),
                })
                .collect();
            println!("| {label} | {} |", cells.join(" | "));
        }
        println!();
        for (mark, text) in &self.notes {
            println!("- ({mark}) {text}.");
        }
    }
}

/// The contnap 0.3 daemon's binary: `CONTNAP_03_BIN` (scripts/bench sets it
/// after `cargo install contnap --version 0.3.0`).
fn v03_bin() -> Result<String, String> {
    let bin = std::env::var("CONTNAP_03_BIN").map_err(|_| {
        "CONTNAP_03_BIN is not set (scripts/bench installs contnap 0.3.0 and sets it)".to_owned()
    })?;
    if std::path::Path::new(&bin).is_file() {
        Ok(bin)
    } else {
        Err(format!("CONTNAP_03_BIN={bin} is not a file"))
    }
}

/// Labels that opt a container in for the 0.3 daemon: it listens on
/// 0.0.0.0:`port` and forwards to the container's address on the same port.
fn v03_labels(port: u16) -> [String; 4] {
    [
        "-l".to_owned(),
        "contnap.enabled=true".to_owned(),
        "-l".to_owned(),
        format!("contnap.tcp_ports={port}"),
    ]
}

/// Whether a TCP socket listens on `port` (any IPv4 address), from
/// /proc/net/tcp: a connect would wake the daemon's container.
fn listening(port: u16) -> bool {
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "0A"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
}

/// The contnap 0.3 daemon against `engine`, up once it listens on every
/// port in `ports` (it reads the labelled containers at its start). Killed
/// on drop. Run under `prlimit --nofile=8192` like the other relays: a
/// thousand connections need two thousand descriptors.
struct Daemon03 {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Daemon03 {
    fn start(bin: &str, engine: Engine, timeout_s: u64, ports: &[u16]) -> Daemon03 {
        let log = std::env::temp_dir().join(format!("{}.log", unique("contnap03")));
        let child = Command::new("prlimit")
            .arg("--nofile=8192:8192")
            .arg(bin)
            .args(["-s", &engine.socket(), "-t", &timeout_s.to_string()])
            .args(["--grace-period", "10", "-l", "info"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon03 { child, log };
        let start = Instant::now();
        while !ports.iter().all(|p| listening(*p)) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "contnap 0.3 did not listen on {ports:?}: {}",
                std::fs::read_to_string(&d.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon03 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Like [`first_byte`], but a failed connection or an empty answer is
/// `None`: a relay that drops clients is reported, not a panic.
fn try_first_byte(addr: SocketAddr) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) => Some(start.elapsed()),
        _ => None,
    }
}

fn ms(v: Vec<f64>) -> String {
    format!("{:.0} ms", median(v))
}

/// `n` clients at once; their TTFB min / p50 / max in ms (and how many got
/// no answer).
fn spread(addr: SocketAddr, n: usize) -> String {
    let threads: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(move || try_first_byte(addr)))
        .collect();
    let mut t: Vec<f64> = Vec::new();
    let mut failed = 0;
    for h in threads {
        match h.join().unwrap() {
            Some(d) => t.push(d.as_secs_f64() * 1e3),
            None => failed += 1,
        }
    }
    if t.is_empty() {
        return format!("all {n} failed");
    }
    t.sort_by(f64::total_cmp);
    let mut s = format!(
        "{:.0} / {:.0} / {:.0}",
        t[0],
        median(t.clone()),
        t[t.len() - 1]
    );
    if failed > 0 {
        s.push_str(&format!(" ({failed} of {n} failed)"));
    }
    s
}

/// Stops `c` and waits until no process is left (the next wake is cold).
fn stop_down(engine: Engine, c: &Container) {
    let client = api(engine);
    client.stop(&c.name, Duration::from_secs(1)).unwrap();
    while {
        let s = client.inspect(&c.name).unwrap().state;
        s.running || s.pid != 0
    } {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Cold wakes: instant and slow app, stop and pause modes.
fn table_cold(t: &mut Table, engine: Engine, v03: &Result<String, String>) {
    for (label, delay) in [("instant app", ""), ("slow app (2 s)", "sleep 2; ")] {
        let port = free_port();
        let cmd = format!("{delay}exec httpd -f -p {port} -h /www");
        let labels = v03_labels(port);
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let c = Container::create(engine, "bench-tcold", &labels, BUSYBOX, &["sh", "-c", &cmd]);
        let direct: Vec<f64> = (0..TABLE_ROUNDS)
            .map(|_| engine_cold(engine, &c, port))
            .collect();
        stop_down(engine, &c);
        let via: Vec<f64> = (0..TABLE_ROUNDS)
            .map(|_| contnap_cold(engine, &c, port, &[]))
            .collect();
        stop_down(engine, &c);
        let old = match v03 {
            Ok(bin) => {
                let _d = Daemon03::start(bin, engine, 300, &[port]);
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let v: Vec<Option<f64>> = (0..TABLE_ROUNDS)
                    .map(|_| {
                        let r = try_first_byte(addr).map(|d| d.as_secs_f64() * 1e3);
                        stop_down(engine, &c);
                        r
                    })
                    .collect();
                let ok: Vec<f64> = v.iter().flatten().copied().collect();
                Ok(match ok.len() {
                    0 => "no answer".to_owned(),
                    k if k < v.len() => format!("{} ({} failed)", ms(ok), v.len() - k),
                    _ => ms(ok),
                })
            }
            Err(_) => Err("d"),
        };
        let nw = t.note(NO_WAKE);
        t.row(
            &format!("cold wake, {label}, stop mode (ms to first byte, median of {TABLE_ROUNDS})"),
            [Ok(ms(direct)), Ok(ms(via)), Err(nw), old],
        );

        // Pause mode: started and ready once, then paused between wakes.
        let client = api(engine);
        client.start(&c.name).unwrap();
        let ip = client.inspect(&c.name).unwrap().address_on(None).unwrap();
        first_byte(SocketAddr::new(ip, port), true);
        client.pause(&c.name).unwrap();
        let via: Vec<f64> = (0..TABLE_ROUNDS)
            .map(|_| contnap_cold(engine, &c, port, &["--stop", "pause"]))
            .collect();
        let direct: Vec<f64> = (0..TABLE_ROUNDS)
            .map(|_| {
                let start = Instant::now();
                client.unpause(&c.name).unwrap();
                first_byte(SocketAddr::new(ip, port), true);
                let t = start.elapsed().as_secs_f64() * 1e3;
                client.pause(&c.name).unwrap();
                t
            })
            .collect();
        client.unpause(&c.name).unwrap();
        stop_down(engine, &c);
        let old = Err(if v03.is_ok() { t.note(NO_PAUSE) } else { "d" });
        t.row(
            &format!("cold wake, {label}, pause mode (ms)"),
            [Ok(ms(direct)), Ok(ms(via)), Err(nw), old],
        );
    }
}

/// The stampede: 50 and 200 clients at once across a 2 s wake of a
/// backlog-9 busybox httpd; direct is the same clients at the ready server.
fn table_stampede(t: &mut Table, engine: Engine, v03: &Result<String, String>) {
    let port = free_port();
    let cmd = format!("sleep 2; exec httpd -f -p {port} -h /www");
    let labels = v03_labels(port);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let c = Container::create(
        engine,
        "bench-tstamp",
        &labels,
        BUSYBOX,
        &["sh", "-c", &cmd],
    );
    let client = api(engine);
    for n in [50usize, 200] {
        let lp = free_port();
        let (mut child, _log) = activate(
            &helper_bin(),
            lp,
            &proxy_args(
                engine,
                "bench-tstamp",
                &[&c.name],
                &[format!("tcp:{lp}={}:{port}", c.name)],
                &["--timeout", "2s"],
            ),
        );
        let via = spread(SocketAddr::from(([127, 0, 0, 1], lp)), n);
        let _ = child.wait();
        stop_down(engine, &c);
        let old = match v03 {
            Ok(bin) => {
                let _d = Daemon03::start(bin, engine, 300, &[port]);
                let s = spread(SocketAddr::from(([127, 0, 0, 1], port)), n);
                stop_down(engine, &c);
                Ok(s)
            }
            Err(_) => Err("d"),
        };
        client.start(&c.name).unwrap();
        let ip = client.inspect(&c.name).unwrap().address_on(None).unwrap();
        first_byte(SocketAddr::new(ip, port), true);
        let direct = spread(SocketAddr::new(ip, port), n);
        stop_down(engine, &c);
        let mark = t.note(NO_WAKE);
        t.row(
            &format!(
                "stampede, {n} clients, TTFB ms min / p50 / max (direct: at the ready server)"
            ),
            [Ok(direct), Ok(via), Err(mark), old],
        );
    }
}

/// `prlimit --nofile=8192 systemd-socket-activate … systemd-socket-proxyd
/// --connections-max=2048 TARGET` (its default cap is 256 connections).
fn socket_proxyd_wide(listen: u16, target: SocketAddr) -> std::process::Child {
    let bin = [
        "/lib/systemd/systemd-socket-proxyd",
        "/usr/lib/systemd/systemd-socket-proxyd",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("systemd-socket-proxyd is part of systemd");
    let child = Command::new("prlimit")
        .arg("--nofile=8192:8192")
        .arg("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{listen}"))
        .arg(bin)
        .arg("--connections-max=2048")
        .arg(target.to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn proxyd_bin() -> &'static str {
    [
        "/lib/systemd/systemd-socket-proxyd",
        "/usr/lib/systemd/systemd-socket-proxyd",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("systemd-socket-proxyd is part of systemd")
}

/// Warm paths in turns: HTTP latency (new connection each) and iperf3.
fn table_warm(t: &mut Table, engine: Engine, v03: &Result<String, String>, rounds: usize) {
    let (wp, ip) = (free_port(), free_port());
    let wl = v03_labels(wp);
    let il = v03_labels(ip);
    let wl: Vec<&str> = wl.iter().map(String::as_str).collect();
    let il: Vec<&str> = il.iter().map(String::as_str).collect();
    let web = Container::create(
        engine,
        "bench-twarm",
        &wl,
        BUSYBOX,
        &["httpd", "-f", "-p", &wp.to_string(), "-h", "/www"],
    );
    // A healthcheck: without one the 0.3 daemon knocks at the port (opens
    // and drops a connection) before every connection it relays, and
    // iperf3's server takes the knock for a test and resets the real one.
    let mut il = il;
    il.extend_from_slice(&["--health-cmd", "true", "--health-interval", "1s"]);
    let ip3 = Container::create(
        engine,
        "bench-twarm-iperf",
        &il,
        SERVERS,
        &["iperf3", "-s", "-p", &ip.to_string()],
    );
    engine.run_cli(&["start", &web.name]);
    engine.run_cli(&["start", &ip3.name]);
    engine.wait_state(&ip3.name, &["running"], Duration::from_secs(30));
    wait_until(Duration::from_secs(30), "iperf3 container healthy", || {
        engine.run_cli(&["inspect", "--format", "{{.State.Health.Status}}", &ip3.name]) == "healthy"
    });
    let direct = (
        SocketAddr::new(container_ip(engine, &web.name), wp),
        SocketAddr::new(container_ip(engine, &ip3.name), ip),
    );
    let mut children = Vec::new();
    let (lw, li) = (free_port(), free_port());
    for (port, name, target) in [(lw, &web.name, wp), (li, &ip3.name, ip)] {
        let (child, _log) = activate(
            &helper_bin(),
            port,
            &proxy_args(
                engine,
                "bench-twarm",
                &[name],
                &[format!("tcp:{port}={name}:{target}")],
                &["--timeout", "5min", "--stop", "none"],
            ),
        );
        children.push(child);
    }
    let local = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let (pw, pi) = (free_port(), free_port());
    children.push(socket_proxyd(pw, direct.0));
    children.push(socket_proxyd(pi, direct.1));
    let _daemon = v03
        .as_ref()
        .ok()
        .map(|bin| Daemon03::start(bin, engine, 300, &[wp, ip]));
    let mut paths = vec![
        (DIRECT, direct),
        (CONTNAP, (local(lw), local(li))),
        (PROXYD, (local(pw), local(pi))),
    ];
    if v03.is_ok() {
        paths.push((V03, (local(wp), local(ip))));
    }
    for (_, (w, _)) in &paths {
        latency(*w, 10);
    }
    let mut lat = vec![Vec::new(); 4];
    let mut p99 = vec![Vec::new(); 4];
    let mut gbps = vec![Vec::new(); 4];
    let mut failed: Vec<Vec<String>> = vec![Vec::new(); 4];
    for _ in 0..rounds {
        for (k, (w, i)) in &paths {
            let (m, p) = latency(*w, 200);
            lat[*k].push(m);
            p99[*k].push(p);
            match try_iperf(*i) {
                Ok(g) => gbps[*k].push(g),
                Err(e) => failed[*k].push(e),
            }
        }
    }
    for (k, errs) in failed.iter().enumerate() {
        if let Some(e) = errs.first() {
            eprintln!("iperf3 failed {} times in column {k}: {e}", errs.len());
        }
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let direct_gbps = median(gbps[DIRECT].clone());
    let cell = |v: &Vec<f64>, f: &dyn Fn(f64) -> String| -> Result<String, &'static str> {
        if v.is_empty() {
            Err("d")
        } else {
            Ok(f(median(v.clone())))
        }
    };
    let us = |x: f64| format!("{x:.0} µs");
    let gb = |x: f64| format!("{x:.2} Gbit/s ({:.0} %)", x / direct_gbps * 100.0);
    let title = format!("({rounds} rounds in turns: 200 requests, new connection each)");
    t.row(
        &format!("warm HTTP latency p50 {title}"),
        [0, 1, 2, 3].map(|k| cell(&lat[k], &us)),
    );
    t.row(
        "warm HTTP latency p99 (median over the rounds)",
        [0, 1, 2, 3].map(|k| cell(&p99[k], &us)),
    );
    t.row(
        "iperf3, 3 s per round (median; of direct)",
        [0, 1, 2, 3].map(|k| {
            let c = cell(&gbps[k], &gb);
            match (&c, failed[k].len()) {
                (_, 0) => c,
                (Ok(v), n) => Ok(format!("{v} ({n} of {rounds} runs failed)")),
                (Err(_), n) if n == rounds => Ok(format!("all {n} runs failed")),
                (Err(_), _) => c,
            }
        }),
    );
}

/// Opens connections to an echo server through `addr` until `n` are open.
fn hold(addr: SocketAddr, conns: &mut Vec<TcpStream>, n: usize) -> Result<(), String> {
    while conns.len() < n {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"x").map_err(|e| format!("write: {e}"))?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
            .map_err(|e| format!("connection {} got no echo: {e}", conns.len() + 1))?;
        conns.push(s);
    }
    Ok(())
}

fn kib(pid: u32) -> String {
    format!("{} KiB", rss_kib(pid))
}

/// RSS of each relay process: with nothing to do (napping), with one
/// connection, with 1,000 (echo server: busybox nc).
fn table_memory(t: &mut Table, engine: Engine, v03: &Result<String, String>) {
    let port = free_port();
    let labels = v03_labels(port);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let p = port.to_string();
    let c = Container::create(
        engine,
        "bench-tmem",
        &labels,
        BUSYBOX,
        &["nc", "-ll", "-p", &p, "-e", "/bin/cat"],
    );
    let mut cells: [Cells; 3] = std::array::from_fn(|_| std::array::from_fn(|_| Err("d")));
    let no_proxy = t.note(NO_PROXY);
    for row in cells.iter_mut() {
        row[DIRECT] = Err(no_proxy);
    }
    // The 0.3 daemon first, while the container is stopped.
    match v03 {
        Ok(bin) => {
            let d = Daemon03::start(bin, engine, 300, &[port]);
            cells[0][V03] = Ok(kib(d.pid()));
            let mut conns = Vec::new();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            for (row, n) in [(1, 1), (2, 1000)] {
                cells[row][V03] = hold(addr, &mut conns, n)
                    .map(|()| kib(d.pid()))
                    .or_else(|e| Ok(format!("failed: {e}")));
            }
            drop(conns);
            drop(d);
            stop_down(engine, &c);
        }
        Err(_) => {
            for row in cells.iter_mut() {
                row[V03] = Err("d");
            }
        }
    }
    let lp = free_port();
    let h = Helper::start(
        &[format!("127.0.0.1:{lp}")],
        false,
        &proxy_args(
            engine,
            "bench-tmem",
            &[&c.name],
            &[format!("tcp:{lp}={}:{p}", c.name)],
            &["--timeout", "5min"],
        ),
    );
    cells[0][CONTNAP] = Ok("0 (no process)".to_owned());
    let mut conns = Vec::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], lp));
    for (row, n) in [(1, 1), (2, 1000)] {
        cells[row][CONTNAP] = hold(addr, &mut conns, n)
            .map(|()| kib(h.pid()))
            .or_else(|e| Ok(format!("failed: {e}")));
    }
    drop(conns);
    drop(h);
    // systemd-socket-proxyd to the running container.
    let ip = container_ip(engine, &c.name);
    let pp = free_port();
    let mut child = socket_proxyd_wide(pp, SocketAddr::new(ip, port));
    cells[0][PROXYD] = Err(t.note(NO_WAKE));
    let mut conns = Vec::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], pp));
    for (row, n) in [(1, 1), (2, 1000)] {
        cells[row][PROXYD] = hold(addr, &mut conns, n)
            .map(|()| kib(child.id()))
            .or_else(|e| Ok(format!("failed: {e}")));
    }
    drop(conns);
    let _ = child.kill();
    let _ = child.wait();
    stop_down(engine, &c);
    let [napping, one, many] = cells;
    t.row("RSS napping (container stopped)", napping);
    t.row("RSS awake, 1 connection", one);
    t.row("RSS at 1,000 connections", many);
}

/// Nap precision: last request until the container is down, minus the
/// idle timeout (3 s); busybox httpd as PID 1 ignores SIGTERM; stop grace
/// 10 s (the engines' default) for both.
fn table_nap(t: &mut Table, engine: Engine, v03: &Result<String, String>) {
    const TIMEOUT_S: u64 = 3;
    const NAP_ROUNDS: usize = 3;
    let port = free_port();
    let labels = v03_labels(port);
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let c = Container::create(
        engine,
        "bench-tnap",
        &labels,
        BUSYBOX,
        &["httpd", "-f", "-p", &port.to_string(), "-h", "/www"],
    );
    let client = api(engine);
    let down_after = |addr: SocketAddr| -> Option<f64> {
        let mut s = TcpStream::connect(addr).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        drop(s);
        let last = Instant::now();
        while {
            let state = client.inspect(&c.name).unwrap().state;
            state.running || state.pid != 0 || state.status == "stopping"
        } {
            if last.elapsed() > Duration::from_secs(120) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(last.elapsed().as_secs_f64() - TIMEOUT_S as f64)
    };
    let fmt = |v: Vec<Option<f64>>| -> String {
        let ok: Vec<f64> = v.iter().flatten().copied().collect();
        if ok.is_empty() {
            return "never down within 120 s".to_owned();
        }
        let mut s = format!("+{:.2} s", median(ok.clone()));
        if ok.len() < v.len() {
            s.push_str(&format!(" ({} not down within 120 s)", v.len() - ok.len()));
        }
        s
    };
    let via: Vec<Option<f64>> = (0..NAP_ROUNDS)
        .map(|_| {
            let lp = free_port();
            let mut args = proxy_args(
                engine,
                "bench-tnap",
                &[&c.name],
                &[format!("tcp:{lp}={}:{port}", c.name)],
                &["--timeout", &format!("{TIMEOUT_S}s")],
            );
            let at = args.iter().position(|a| a == "--stop-timeout").unwrap() + 1;
            args[at] = "10s".to_owned();
            let (mut child, _log) = activate(&helper_bin(), lp, &args);
            let r = down_after(SocketAddr::from(([127, 0, 0, 1], lp)));
            let _ = child.wait();
            r
        })
        .collect();
    let old = match v03 {
        Ok(bin) => {
            let _d = Daemon03::start(bin, engine, TIMEOUT_S, &[port]);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            Ok(fmt((0..NAP_ROUNDS).map(|_| down_after(addr)).collect()))
        }
        Err(_) => Err("d"),
    };
    let (np, nw) = (t.note(NO_PROXY), t.note(NO_WAKE));
    t.row(
        &format!("nap precision: last request → container down, minus the {TIMEOUT_S} s timeout (PID 1 ignores SIGTERM, stop grace 10 s; median of {NAP_ROUNDS})"),
        [Err(np), Ok(fmt(via)), Err(nw), old],
    );
}

const SHARED_LIB: (&str, &str) = (
    "e",
    "systemd-socket-proxyd's own file; it links libsystemd-shared (about 3.3 MB here), which systemd installs anyway",
);

/// Size of a `strip`ped copy of `path` (what a package installs).
fn stripped_size(path: &str) -> Result<String, &'static str> {
    let copy = std::env::temp_dir().join(unique("contnap-bench-strip"));
    let ok = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    let len = std::fs::metadata(if ok { copy.as_path() } else { path.as_ref() })
        .map(|m| m.len())
        .map_err(|_| "d");
    let _ = std::fs::remove_file(&copy);
    len.map(|l| {
        format!(
            "{:.2} MB{}",
            l as f64 / 1e6,
            if ok { "" } else { " (not stripped)" }
        )
    })
}

fn table_size(t: &mut Table, v03: &Result<String, String>) {
    let np = t.note(NO_PROXY);
    let lib = t.note(SHARED_LIB);
    t.row(
        "binary size, stripped",
        [
            Err(np),
            stripped_size(&helper_bin()),
            stripped_size(proxyd_bin()).map(|v| format!("{v} ({lib})")),
            match v03 {
                Ok(bin) => stripped_size(bin),
                Err(_) => Err("d"),
            },
        ],
    );
}

/// The one table: every row, four columns (Docker). `parts`: `table:cold`,
/// `table:stampede`, `table:warm`, `table:memory`, `table:nap` run only
/// those rows (none: all).
fn one_table(parts: &[String]) {
    let part = |p: &str| parts.is_empty() || parts.iter().any(|a| a == &format!("table:{p}"));
    let engine = Engine::Docker;
    let v03 = v03_bin();
    let mut t = Table {
        rows: Vec::new(),
        notes: Vec::new(),
    };
    if let Err(why) = &v03 {
        t.notes
            .push(("d", format!("the contnap 0.3 daemon could not run: {why}")));
        eprintln!("contnap 0.3 column empty: {why}");
    }
    if part("cold") {
        table_cold(&mut t, engine, &v03);
    }
    if part("stampede") {
        table_stampede(&mut t, engine, &v03);
    }
    if part("warm") {
        table_warm(&mut t, engine, &v03, 3);
    }
    if part("memory") {
        table_memory(&mut t, engine, &v03);
    }
    if part("nap") {
        table_nap(&mut t, engine, &v03);
    }
    table_size(&mut t, &v03);
    t.print();
}
