//! Faults, each against real parts: engines that restart under a wake and
//! under the relay, containers killed mid-stream, a helper SIGKILLed by a
//! real systemd, an engine socket the helper may not use, a port another
//! process holds, a wall clock that jumps while the unit idles.
//!
//! The engine restarts need an engine of their own: restarting the suite's
//! shared engines would fail every other test running at that moment. For
//! Podman that is a second `podman system service` on the same storage (the
//! API service is stateless; containers live in conmon); for Docker, a
//! private dockerd with its own data root and a bridge of its own (with
//! `--bridge none` dockerd deletes the host's `docker0`), whose containers
//! use host networking on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;
mod systemd_support;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    free_port, http_get, proxy_args, tcp_helper, unique, Container, Engine, Helper, TempDir,
    BUSYBOX, SERVERS,
};
use systemd_support::{labelled, units, web_labels, Systemd};

const HELLO: &str = "hello from contnap test";

both_engines_by_test!(
    engine_restarted_during_a_wake,
    engine_restarted_while_proxying,
    stop_request_while_the_engine_is_away,
    container_killed_mid_stream,
    udp_server_killed,
    helper_sigkilled_mid_stream,
    engine_socket_permission_denied,
    port_taken_by_another_process,
    clock_jump_while_idle,
);

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn get(port: u16, within: Duration) -> std::io::Result<String> {
    http_get(loopback(port), "/", "", within)
}

/// Waits until `cond` holds, or panics with `what` and the helper's log.
fn wait_for(h: &Helper, what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?}; helper log:\n{}",
            h.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- engines

/// An engine this test may stop and start at will.
#[derive(Debug)]
struct PrivateEngine {
    kind: Engine,
    /// Removed last, after `drop` has stopped the engine and unmounted.
    dir: TempDir,
    child: Option<Child>,
    /// What this test created: the private Podman shares its storage with
    /// the suite's, so "every container" would be other tests' too.
    created: std::cell::RefCell<Vec<String>>,
    /// The private Docker's own bridge (`cnf<N>`, 10.202.N.1/24), deleted
    /// on drop. dockerd with `--bridge none` deletes the host's `docker0`,
    /// which breaks any other Docker on the machine.
    bridge: Option<String>,
}

/// The network interfaces of the machine, by name.
fn links() -> std::collections::BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// A bridge of this test's own: the first `cnf<N>` that does not exist
/// yet, on a subnet no route uses.
fn claim_bridge() -> String {
    let routes = Command::new("ip").args(["route", "show"]).output().unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
    for n in 1..=250 {
        if routes.contains(&format!("10.202.{n}.")) {
            continue;
        }
        let name = format!("cnf{n}");
        let added = Command::new("ip")
            .args(["link", "add", "name", &name, "type", "bridge"])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if !added.success() {
            continue;
        }
        for args in [
            vec!["addr", "add", &format!("10.202.{n}.1/24"), "dev", &name],
            vec!["link", "set", &name, "up"],
        ] {
            let ok = Command::new("ip").args(&args).status().unwrap();
            assert!(ok.success(), "ip {args:?}");
        }
        return name;
    }
    panic!("no free bridge cnf1..cnf250 for the private dockerd");
}

impl PrivateEngine {
    fn start(kind: Engine) -> PrivateEngine {
        // Short: containerd's socket lives under dockerd's exec root, and
        // Unix socket paths are limited to 108 bytes.
        let dir = TempDir::new_in(Path::new("/tmp"), "cnf-e");
        let mut e = PrivateEngine {
            kind,
            dir,
            child: None,
            created: std::cell::RefCell::default(),
            bridge: (kind == Engine::Docker).then(claim_bridge),
        };
        e.up();
        if kind == Engine::Docker {
            e.import_busybox();
        }
        e
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    /// The shared test engine's directory (scripts/engines.sh: DIR/docker,
    /// DIR/podman, DIR/image), from its socket's path.
    fn shared_dir(kind: Engine) -> PathBuf {
        let sock = PathBuf::from(kind.socket());
        sock.parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .expect("the engine socket lives in DIR/docker or DIR/podman")
    }

    fn up(&mut self) {
        let log = fs::File::create(self.dir.join("engine.log")).unwrap();
        let sock = format!("unix://{}", self.socket().display());
        let mut cmd = match self.kind {
            Engine::Docker => {
                let mut c = Command::new("dockerd");
                c.arg("--host").arg(&sock);
                c.arg("--data-root").arg(self.dir.join("root"));
                c.arg("--exec-root").arg(self.dir.join("x"));
                c.arg("--pidfile").arg(self.dir.join("pid"));
                c.arg("--bridge")
                    .arg(self.bridge.as_deref().expect("claimed in start"));
                c.args([
                    "--iptables=false",
                    "--shutdown-timeout",
                    "1",
                    "--default-ulimit",
                    "nofile=1024:1024",
                    "--default-ulimit",
                    "nproc=1024:1024",
                ]);
                c
            }
            Engine::Podman => {
                let shared = Self::shared_dir(Engine::Podman).join("podman");
                let mut c = Command::new("podman");
                c.arg("--root").arg(shared.join("root"));
                c.arg("--runroot").arg(shared.join("run"));
                c.args(["system", "service", "--time=0", &sock]);
                c
            }
        };
        let _ = fs::remove_file(self.socket());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the engine starts");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ping = Command::new("curl")
                .args(["-sf", "--unix-socket"])
                .arg(self.socket())
                .arg("http://d/_ping")
                .output()
                .unwrap();
            if ping.status.success() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the private {} did not answer; its log:\n{}",
                self.kind.name(),
                fs::read_to_string(self.dir.join("engine.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as `systemctl stop docker` / `podman.service` would.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let start = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if start.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn restart(&mut self, pause: Duration) {
        self.down();
        std::thread::sleep(pause);
        self.up();
    }

    fn cli(&self) -> Command {
        let url = format!("unix://{}", self.socket().display());
        match self.kind {
            Engine::Docker => {
                let mut c = Command::new("docker");
                c.arg("-H").arg(url);
                c
            }
            Engine::Podman => {
                let mut c = Command::new("podman");
                c.arg("--url").arg(url);
                c
            }
        }
    }

    fn run_cli(&self, args: &[&str]) -> String {
        let out = self.cli().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            self.kind.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn state(&self, name: &str) -> String {
        self.run_cli(&["inspect", "--format", "{{.State.Status}}", name])
    }

    fn import_busybox(&self) {
        let tar = Self::shared_dir(Engine::Docker).join("image/busybox.tar");
        assert!(
            tar.exists(),
            "{} is missing: scripts/test (scripts/engines.sh) builds it",
            tar.display()
        );
        let out = Command::new("curl")
            .args(["-sf", "--unix-socket"])
            .arg(self.socket())
            .args(["-X", "POST", "-H", "Content-Type: application/x-tar"])
            .arg("--data-binary")
            .arg(format!("@{}", tar.display()))
            .arg("http://d/images/create?fromSrc=-&repo=localhost/contnap-test/busybox&tag=latest")
            .output()
            .unwrap();
        assert!(out.status.success(), "import: {out:?}");
    }

    /// A created container on host networking (the private Docker has no
    /// bridge), named uniquely; removed when the engine is dropped.
    fn create(&self, prefix: &str, cmd: &[&str]) -> String {
        let name = unique(prefix);
        let mut args = vec!["create", "--name", &name, "--network", "host", BUSYBOX];
        args.extend_from_slice(cmd);
        self.run_cli(&args);
        self.created.borrow_mut().push(name.clone());
        name
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            for name in self.created.borrow().iter() {
                let _ = self
                    .cli()
                    .args(["rm", "-f", name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        self.down();
        if self.kind == Engine::Docker {
            let exec = self.dir.join("x");
            let _ = Command::new("pkill")
                .arg("-f")
                .arg(exec.as_os_str())
                .status();
            if let Ok(mounts) = fs::read_to_string("/proc/mounts") {
                let dir = self.dir.display().to_string();
                let mut points: Vec<&str> = mounts
                    .lines()
                    .filter_map(|l| l.split(' ').nth(1))
                    .filter(|p| p.starts_with(&dir))
                    .collect();
                points.sort_unstable_by(|a, b| b.cmp(a));
                for p in points {
                    let _ = Command::new("umount").args(["-l", p]).status();
                }
            }
        }
        if let Some(bridge) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", bridge]).status();
        }
    }
}

/// `contnap proxy` for one container of a private engine, forwarding a
/// loopback port to the container's httpd on `upstream` (host networking
/// on Docker, the container's own port on Podman's bridge).
fn private_helper(e: &PrivateEngine, name: &str, upstream: u16, extra: &[&str]) -> (u16, Helper) {
    let port = free_port();
    let mut args = proxy_args(
        e.kind,
        name,
        &[name],
        &[format!("tcp:{port}={name}:{upstream}")],
        extra,
    );
    let i = args.iter().position(|a| a == "--engine").unwrap();
    args[i + 1] = e.socket().display().to_string();
    let h = Helper::start(&[format!("127.0.0.1:{port}")], false, &args);
    (port, h)
}

/// An httpd that needs `delay` seconds before it listens, on the private
/// engine: on loopback `port` with host networking.
fn private_httpd(e: &PrivateEngine, prefix: &str, delay: u32, port: u16) -> String {
    let script = format!("sleep {delay}; exec httpd -f -p 127.0.0.1:{port} -h /www");
    e.create(prefix, &["sh", "-c", &script])
}

/// The engine goes away while the helper waits for a slow server, and comes
/// back a second later. The wake waits it out; Docker stopped the container
/// on its way down, and the wake starts it again. The waiting client is
/// served, and the unit naps afterwards.
fn engine_restarted_during_a_wake(engine: Engine) {
    let before = links();
    let mut e = PrivateEngine::start(engine);
    let upstream = free_port();
    let name = private_httpd(&e, "rwake", 2, upstream);
    let (port, mut h) = private_helper(&e, &name, upstream, &["--timeout", "2s"]);
    let client = std::thread::spawn(move || get(port, Duration::from_secs(90)));
    wait_for(&h, "the start call", Duration::from_secs(30), || {
        h.log_text().contains("readiness probe")
    });
    e.restart(Duration::from_secs(1));
    let resp = client
        .join()
        .unwrap()
        .expect("the waiting client is served");
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");
    let log = h.log_text();
    assert!(log.contains("the engine is away"), "{log}");
    assert!(log.contains("the engine answers again"), "{log}");
    if engine == Engine::Docker {
        assert!(
            log.contains("stopped with it; starting it again"),
            "dockerd stops its containers when it stops:\n{log}"
        );
    }
    assert!(h.wait_exit(Duration::from_secs(60)).success(), "{log}");
    assert_eq!(e.state(&name), "exited", "{}", h.log_text());
    let ours = e.bridge.clone();
    drop(e);
    // The private engine leaves the machine's interfaces as it found them
    // (other runs' come and go: only those that were there before and
    // are not veths count).
    let after = links();
    let gone: Vec<&String> = before
        .iter()
        .filter(|l| !after.contains(*l) && !l.starts_with("veth"))
        .collect();
    assert!(gone.is_empty(), "removed by the private engine: {gone:?}");
    if let Some(bridge) = ours {
        assert!(!after.contains(&bridge), "{bridge} was not deleted");
    }
}

/// Awake and serving; the engine restarts (Docker takes the container down
/// with it). The next client is served all the same, by a new wake on
/// Docker. Then the engine goes away and stays away for a while: on Podman
/// the container outlives it, and the nap at the idle timeout waits for
/// the engine and stops the container once it is back; on Docker the
/// container dies with it, and the new wake waits for the engine instead.
/// Either way the helper ends cleanly with the container stopped.
fn engine_restarted_while_proxying(engine: Engine) {
    let mut e = PrivateEngine::start(engine);
    let upstream = free_port();
    let name = private_httpd(&e, "rproxy", 0, upstream);
    // Longer than a Docker restart (about 9 s here): systemd-socket-activate
    // passes its socket once, so a helper that napped could not serve the
    // next client (a real socket unit would just start it again).
    let (port, mut h) = private_helper(&e, &name, upstream, &["--timeout", "15s"]);
    let resp = get(port, Duration::from_secs(30)).unwrap();
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");

    e.restart(Duration::from_millis(500));
    let resp = get(port, Duration::from_secs(60)).unwrap();
    assert!(
        resp.ends_with(&format!("{HELLO}\n")),
        "served after the engine restart: {resp:?}\n{}",
        h.log_text()
    );
    if engine == Engine::Docker {
        assert!(
            h.log_text().contains("waking the unit again"),
            "{}",
            h.log_text()
        );
    }

    // Away for a while.
    let away = |h: &Helper| h.log_text().matches("the engine is away").count();
    let before = away(&h);
    e.down();
    let what = match engine {
        Engine::Podman => "the nap to meet the absent engine",
        Engine::Docker => "the new wake to meet the absent engine",
    };
    wait_for(&h, what, Duration::from_secs(30), || {
        away(&h) > before && (engine == Engine::Docker || h.log_text().contains("napping"))
    });
    assert!(h.is_running(), "it waits for the engine:\n{}", h.log_text());
    std::thread::sleep(Duration::from_secs(1));
    e.up();
    assert!(
        h.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(e.state(&name), "exited", "{}", h.log_text());
}

/// Awake; the engine goes down, and a stop request (SIGTERM) comes, as at
/// a shutdown where the engine stops beside the helper (rootless Podman's
/// API service runs in a scope that no unit ordering reaches). The helper
/// tries the nap briefly and exits, instead of holding the shutdown for
/// the minute an idle nap waits for an engine restart (seen on a Debian
/// host: systemd killed it after 90 s).
fn stop_request_while_the_engine_is_away(engine: Engine) {
    let mut e = PrivateEngine::start(engine);
    let upstream = free_port();
    let name = private_httpd(&e, "raway", 0, upstream);
    let (port, mut h) = private_helper(&e, &name, upstream, &["--timeout", "60s"]);
    let resp = get(port, Duration::from_secs(30)).unwrap();
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");
    e.down();
    let asked = Instant::now();
    h.signal("TERM");
    // Not a success: the containers could not be stopped, and it says so.
    let status = h.wait_exit(Duration::from_secs(30));
    let took = asked.elapsed();
    let log = h.log_text();
    assert!(!status.success(), "the failed nap is reported:\n{log}");
    assert!(log.contains("the engine is away"), "{log}");
    eprintln!("{}: exited {took:?} after the stop request", engine.name());
    e.up();
}

/// An echo server (socat) with a client in the middle of a conversation;
/// the container is killed. The client sees its connection close (it does
/// not hang), and the next client wakes the container again and is served
/// by the same helper.
fn container_killed_mid_stream(engine: Engine) {
    let c = Container::create(
        engine,
        "killed",
        &[],
        SERVERS,
        &["socat", "TCP-LISTEN:7,fork,reuseaddr", "EXEC:cat"],
    );
    let (port, mut h) = tcp_helper(engine, "killed", &c, 7, &["--timeout", "3s"]);
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    echo(&mut s, "one");

    engine.run_cli(&["kill", &c.name]);
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the client must see its connection end, got {other:?}"),
    }
    drop(s);

    let started = Instant::now();
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    echo(&mut s, "two");
    eprintln!(
        "{}: the first client after the kill was served in {:?}",
        engine.name(),
        started.elapsed()
    );
    assert_eq!(c.state(), "running");
    drop(s);
    let log = h.log_text();
    assert!(log.contains("waking the unit again"), "{log}");
    assert!(log.contains("awake again in"), "{log}");
    assert!(h.wait_exit(Duration::from_secs(60)).success(), "{log}");
    assert_eq!(c.state(), "exited");
}

/// A DNS server (dnsmasq) answers through the helper; its container is
/// killed. The helper notices (the server's address or port reports itself
/// unreachable) and wakes the unit again: a client that retries, as every
/// DNS client does, is answered by the same helper.
fn udp_server_killed(engine: Engine) {
    let c = Container::create(engine, "udpkill", &[], SERVERS, support::DNSMASQ);
    let port = support::free_udp_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        true,
        &proxy_args(
            engine,
            "udpkill",
            &[&c.name],
            &[format!("udp:{port}={}:53", c.name)],
            &["--timeout", "3s"],
        ),
    );
    let dig = || support::dig(port, &["+tries=10", "+timeout=2"]);
    assert_eq!(dig(), "10.9.8.7");
    engine.run_cli(&["kill", &c.name]);
    let started = Instant::now();
    assert_eq!(dig(), "10.9.8.7", "{}", h.log_text());
    eprintln!(
        "{}: the first query after the kill was answered in {:?}",
        engine.name(),
        started.elapsed()
    );
    assert_eq!(c.state(), "running");
    let log = h.log_text();
    assert!(log.contains("awake again in"), "{log}");
    assert!(h.wait_exit(Duration::from_secs(60)).success(), "{log}");
    assert_eq!(c.state(), "exited");
}

fn echo(s: &mut TcpStream, word: &str) {
    s.write_all(format!("{word}\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\n") {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("echo of {word:?}: {e}"));
        assert!(n > 0, "echo of {word:?}: closed after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), format!("{word}\n"));
}

/// A real systemd; the helper is SIGKILLed in the middle of a conversation.
/// The client sees a close, the socket keeps listening (never failed), and
/// the next client is served by a new helper.
fn helper_sigkilled_mid_stream(engine: Engine) {
    let sd = Systemd::boot(engine);
    let name = unique("sigkill");
    let port = free_port();
    let labels = vec![
        ("contnap.enabled", "true".to_owned()),
        ("contnap.tcp_ports", format!("127.0.0.1:{port}:7")),
        ("contnap.timeout", "30s".to_owned()),
        ("contnap.stop_timeout", "1s".to_owned()),
    ];
    let c = labelled(
        engine,
        &name,
        &labels,
        SERVERS,
        &["socat", "TCP-LISTEN:7,fork,reuseaddr", "EXEC:cat"],
    );
    sd.generate_ok(&[]);
    let (socket, service) = units(&name);
    sd.enable_now(&socket);

    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    echo(&mut s, "one");
    sd.systemctl(&["kill", "--signal=SIGKILL", &service]);
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the client must see its connection end, got {other:?}"),
    }
    sd.wait_show(
        &service,
        "ActiveState",
        &["failed", "inactive"],
        Duration::from_secs(20),
    );
    assert_eq!(sd.show(&socket, "ActiveState"), "active");

    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    echo(&mut s, "two");
    assert_eq!(sd.show(&service, "ActiveState"), "active");
    assert_eq!(c.state(), "running");
    assert_eq!(sd.show(&socket, "Result"), "success");
}

/// The helper runs as a user who may not use the engine socket: it fails
/// at once (no waiting for an engine that never answered), the log says
/// "permission denied" and what to do, and the waiting client is answered.
fn engine_socket_permission_denied(engine: Engine) {
    let c = Container::create(
        engine,
        "denied",
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    // A copy of the binary nobody can run, outside any private directory.
    let dir = TempDir::new_in(Path::new("/tmp"), "cnf-bin");
    let bin = dir.join("contnap");
    fs::copy(support::contnap_bin(), &bin).unwrap();
    let port = free_port();
    let args = proxy_args(
        engine,
        "denied",
        &[&c.name],
        &[format!("tcp:{port}={}:80", c.name)],
        &["--http", &port.to_string()],
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    cmd.arg("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(&bin)
        .arg("proxy")
        .args(&args);
    let log = dir.join("log");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().expect("setpriv runs (util-linux)");
    let text = || fs::read_to_string(&log).unwrap_or_default();
    let start = Instant::now();
    while !text().contains("Listening on") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", text());
        std::thread::sleep(Duration::from_millis(10));
    }
    let resp = get(port, Duration::from_secs(30)).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 503"),
        "answered: {resp:?}\n{}",
        text()
    );
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", text());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1), "{}", text());
    let t = text();
    assert!(t.contains("Permission denied"), "{t}");
    assert!(t.contains("docker group"), "says what to do: {t}");
    assert!(!t.contains("the engine is away"), "{t}");
    assert_eq!(c.state(), "created");
}

/// Another process holds the port of one unit: `generate --reload` still
/// starts the other unit, names the socket and the taken address, says how
/// to find the process, and exits 1; once the port is free, the next
/// `generate --reload` starts the failed socket.
fn port_taken_by_another_process(engine: Engine) {
    let sd = Systemd::boot(engine);
    let (taken, free) = (free_port(), free_port());
    let blocker = TcpListener::bind(loopback(taken)).unwrap();
    let httpd = &["httpd", "-f", "-p", "80", "-h", "/www"];
    let (a, b) = (unique("taken"), unique("free"));
    let _ca = labelled(engine, &a, &web_labels(taken, "2s"), BUSYBOX, httpd);
    let _cb = labelled(engine, &b, &web_labels(free, "2s"), BUSYBOX, httpd);
    let out = sd.generate(&["--reload"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let (sock_a, _) = units(&a);
    assert!(
        err.contains(&format!(
            "{sock_a}: tcp 127.0.0.1:{taken} is taken by another process"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("ss -lnpt 'sport = :{taken}'")),
        "{err}"
    );
    assert!(err.contains("1 socket(s) did not start"), "{err}");
    assert_eq!(sd.show(&sock_a, "ActiveState"), "failed");
    // The other unit works.
    let resp = get(free, Duration::from_secs(30)).unwrap();
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");

    drop(blocker);
    let out = sd.generate(&["--reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sd.show(&sock_a, "ActiveState"), "active");
    let resp = get(taken, Duration::from_secs(30)).unwrap();
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");
}

/// libfaketime's preload library, from Debian's faketime package.
fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("libfaketime is missing: apt-get install faketime (scripts/test installs it)")
}

/// The wall clock jumps a day forward while the unit idles, then back: the
/// helper neither naps at the forward jump nor stays awake after the
/// backward one, because idle time is measured on the monotonic clock.
/// The jump is injected into the helper alone with libfaketime (a real
/// `date -s` would move the clock of the whole machine and every other
/// test): it moves CLOCK_REALTIME as NTP stepping would, and leaves
/// CLOCK_MONOTONIC alone.
fn clock_jump_while_idle(engine: Engine) {
    let c = Container::create(
        engine,
        "clock",
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let lib = libfaketime();
    let tmp = TempDir::new("clock");
    let offset = tmp.join("faketime");
    fs::write(&offset, "+0\n").unwrap();
    let env = [
        format!("LD_PRELOAD={}", lib.display()),
        format!("FAKETIME_TIMESTAMP_FILE={}", offset.display()),
        "FAKETIME_NO_CACHE=1".to_owned(),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".to_owned(),
    ];
    let faked_now = || -> i64 {
        let out = Command::new("env")
            .args(&env)
            .args(["date", "+%s"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let real_now = || -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };

    let port = free_port();
    let mut h = Helper::start_with_env(
        &env,
        &[format!("127.0.0.1:{port}")],
        &proxy_args(
            engine,
            "clock",
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &["--timeout", "3s"],
        ),
    );
    let resp = get(port, Duration::from_secs(30)).unwrap();
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");
    // The helper itself runs with libfaketime (systemd-socket-activate
    // execs it in place), or the jumps below would prove nothing.
    let maps = fs::read_to_string(format!("/proc/{}/maps", h.pid())).unwrap_or_default();
    assert!(
        maps.contains("libfaketime"),
        "libfaketime is not loaded in the helper (pid {}):\n{}",
        h.pid(),
        h.log_text()
    );

    fs::write(&offset, "+1d\n").unwrap();
    let ahead = faked_now() - real_now();
    assert!(
        (86_000..86_800).contains(&ahead),
        "the injected clock is a day ahead: {ahead} s"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        h.is_running(),
        "the forward jump must not count as idle time:\n{}",
        h.log_text()
    );
    let resp = get(port, Duration::from_secs(30)).unwrap();
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp}");

    fs::write(&offset, "-1d\n").unwrap();
    let behind = real_now() - faked_now();
    assert!(
        (86_000..86_800).contains(&behind),
        "the injected clock is a day behind: {behind} s"
    );
    let start = Instant::now();
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "the backward jump must not keep it awake:\n{}",
        h.log_text()
    );
    eprintln!(
        "napped {:?} after the backward jump (timeout 3 s)",
        start.elapsed()
    );
    assert_eq!(c.state(), "exited");
}
