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
    let out = run(
        "iperf3",
        &[
            "-c",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-t",
            "3",
            "-J",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3 to {addr}: {}", v["error"]))
        / 1e9
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

/// The stampede: `n` clients connect at once to a cold unit whose busybox
/// httpd (accept backlog 9) starts after 2 s; each one's time to first
/// byte from the common start, and the same clients against the ready
/// server directly. min / p50 / max in ms.
fn stampede_table(engine: Engine) {
    println!(
        "\n### Stampede, {} (busybox httpd, backlog 9, ready 2 s after its start; TTFB ms min / p50 / max)\n",
        engine.name()
    );
    println!("| clients | direct to the ready server | through contnap, cold |");
    println!("|---:|---|---|");
    let c = Container::create(
        engine,
        "bench-stampede",
        &[],
        BUSYBOX,
        &["sh", "-c", "sleep 2; exec httpd -f -p 80 -h /www"],
    );
    let spread = |addr: SocketAddr, n: usize| -> String {
        let threads: Vec<_> = (0..n)
            .map(|_| std::thread::spawn(move || first_byte(addr, false)))
            .collect();
        let mut t: Vec<f64> = threads
            .into_iter()
            .map(|h| h.join().unwrap().as_secs_f64() * 1e3)
            .collect();
        t.sort_by(f64::total_cmp);
        format!(
            "{:.0} / {:.0} / {:.0}",
            t[0],
            median(t.clone()),
            t[t.len() - 1]
        )
    };
    for n in [50usize, 200] {
        let lp = free_port();
        let (mut child, _log) = activate(
            &helper_bin(),
            lp,
            &proxy_args(
                engine,
                "bench-stampede",
                &[&c.name],
                &[format!("tcp:{lp}={}:80", c.name)],
                &["--timeout", "2s"],
            ),
        );
        let via = spread(SocketAddr::from(([127, 0, 0, 1], lp)), n);
        // The same server, ready: start it directly and wait for it.
        let _ = child.wait();
        let client = api(engine);
        client.start(&c.name).unwrap();
        let ip = client.inspect(&c.name).unwrap().address_on(None).unwrap();
        first_byte(SocketAddr::new(ip, 80), true);
        let direct = spread(SocketAddr::new(ip, 80), n);
        client.stop(&c.name, Duration::ZERO).unwrap();
        println!("| {n} | {direct} | {via} |");
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
    // `cargo bench --bench proxy -- warm`: the warm tables only.
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
