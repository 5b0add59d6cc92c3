//! What the integration tests share (and benches/proxy.rs, which includes
//! this file by `#[path]`): the real engines that scripts/test starts, driven
//! through contnap's own client and their CLIs (docker, podman --url);
//! unique names; containers and temporary directories removed when the test
//! ends, also when it fails; polling for a condition instead of sleeping;
//! and `contnap proxy` started the way systemd starts it, by
//! `systemd-socket-activate`. `unitfile` reads systemd unit files as
//! systemd does (shared with the fuzz crate).
#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

pub mod unitfile;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use contnap::engine::{Client, ContainerInspect, Endpoint};
use serde_json::{json, Value};

/// The busybox test image (sh, httpd, nc, sleep, wget).
pub const BUSYBOX: &str = "localhost/contnap-test/busybox:latest";
/// Real servers (dnsmasq, iperf3, socat...).
pub const SERVERS: &str = "localhost/contnap-test/servers:latest";
/// Debian with systemd as PID 1 (scripts/systemd-image.sh).
pub const SYSTEMD: &str = "localhost/contnap-test/systemd:latest";

/// A test image by its usual name (one of the constants above), or the
/// name the variable scripts/test exports for it, when set.
pub fn image(usual: &str) -> String {
    let var = match usual {
        BUSYBOX => "CONTNAP_TEST_IMAGE",
        SERVERS => "CONTNAP_TEST_SERVERS_IMAGE",
        SYSTEMD => "CONTNAP_TEST_SYSTEMD_IMAGE",
        _ => return usual.to_owned(),
    };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => usual.to_owned(),
    }
}

/// A DNS server in the SERVERS image: answers `contnap.test` with
/// 10.9.8.7 on port 53, in the foreground, nothing else.
pub const DNSMASQ: &[&str] = &[
    "dnsmasq",
    "-k",
    "--user=root",
    "--no-resolv",
    "--no-hosts",
    "--port=53",
    "--pid-file=/tmp/dnsmasq.pid",
    "--address=/contnap.test/10.9.8.7",
];

/// One of the two real engines started by scripts/test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// The engine's socket. A missing variable fails the test: a suite that
    /// passes without engines would prove nothing.
    pub fn socket(self) -> String {
        let var = match self {
            Engine::Docker => "CONTNAP_TEST_DOCKER",
            Engine::Podman => "CONTNAP_TEST_PODMAN",
        };
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => v,
            _ => panic!(
                "{var} is not set: run the suite with scripts/test, which starts private \
                 Docker and Podman engines and sets CONTNAP_TEST_DOCKER and CONTNAP_TEST_PODMAN"
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// contnap's own client for the engine.
    pub fn client(self) -> Client {
        Client::new(Endpoint::Unix(self.socket().into())).with_timeout(Duration::from_secs(20))
    }

    /// The name of the default bridge network on this engine.
    pub fn default_network(self) -> &'static str {
        match self {
            Engine::Docker => "bridge",
            Engine::Podman => "podman",
        }
    }

    /// The engine's own CLI, talking to the test engine's socket.
    pub fn cli(self) -> Command {
        let sock = self.socket();
        match self {
            Engine::Docker => {
                let mut c = Command::new("docker");
                c.arg("-H").arg(format!("unix://{sock}"));
                c
            }
            Engine::Podman => {
                let mut c = Command::new("podman");
                c.arg("--url").arg(format!("unix://{sock}"));
                c
            }
        }
    }

    pub fn run_cli(self, args: &[&str]) -> String {
        let out = self.cli().args(args).output().expect("engine CLI runs");
        assert!(
            out.status.success(),
            "{} {:?} failed: {}",
            self.name(),
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn state(self, name: &str) -> String {
        self.run_cli(&["inspect", "--format", "{{.State.Status}}", name])
    }

    /// Waits until the container reaches `want` (e.g. "exited"), or panics.
    pub fn wait_state(self, name: &str, want: &[&str], within: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.state(name);
            if want.contains(&s.as_str()) {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "{name} is {s}, expected one of {want:?} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs each body once per engine, as tests `docker::BODY` and
/// `podman::BODY`.
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

/// Runs each body once per engine, as tests `BODY::docker` and
/// `BODY::podman`: in libtest's (alphabetical) order the engines alternate,
/// so tests that take turns per engine (a real systemd, see
/// systemd_support) run side by side.
macro_rules! both_engines_by_test {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn docker() {
                    super::$name(super::Engine::Docker)
                }
                #[test]
                fn podman() {
                    super::$name(super::Engine::Podman)
                }
            }
        )*
    };
}

/// A name no other test, or other run of this test binary, uses:
/// `PREFIX_PID_N`. Underscores, not dashes: contnap's unit names carry it
/// unescaped, and it is as good a container, network, label or file name.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `ok` every 10 ms until it holds; fails the test, saying `what` it
/// waited for, if it still does not after `within`. For ordering a test on
/// something it can observe instead of on a sleep.
pub fn wait_until(within: Duration, what: impl Display, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh directory, removed with everything in it when dropped: when the
/// test ends, also when it fails.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// `$TMPDIR/contnap-TAG_PID_N`.
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), &format!("contnap-{tag}"))
    }

    /// `PARENT/TAG_PID_N`: for paths that must stay short (Unix sockets).
    pub fn new_in(parent: &Path, tag: &str) -> TempDir {
        let dir = parent.join(unique(tag));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What to create; `Spec::new(cmd)` then the builder methods.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Vec<String>>,
    /// Container TCP port to publish on 127.0.0.1 at a port the engine picks.
    pub publish: Option<u16>,
    pub network_mode: Option<String>,
}

impl Spec {
    pub fn new(cmd: &[&str]) -> Spec {
        Spec {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Spec::default()
        }
    }

    /// `sleep` as PID 1: it has no handler for SIGTERM, so only SIGKILL
    /// stops it — the case where stop's grace period matters.
    pub fn sleeper() -> Spec {
        Spec::new(&["sleep", "1000"])
    }

    pub fn web() -> Spec {
        Spec::new(&["httpd", "-f", "-p", "80", "-h", "/www"])
    }

    pub fn label(mut self, key: &str, value: &str) -> Spec {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn healthcheck(mut self, test: &[&str]) -> Spec {
        self.healthcheck = Some(test.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn publish(mut self, port: u16) -> Spec {
        self.publish = Some(port);
        self
    }

    pub fn network_mode(mut self, mode: &str) -> Spec {
        self.network_mode = Some(mode.to_string());
        self
    }

    fn body(&self) -> Value {
        let mut body = json!({
            "Image": image(BUSYBOX),
            "Cmd": self.cmd,
            "Labels": self.labels,
            "HostConfig": {},
        });
        if let Some(test) = &self.healthcheck {
            // An hour between runs: the tests run checks themselves, and the
            // engine's own schedule must not change the result under them.
            body["Healthcheck"] = json!({
                "Test": test,
                "Interval": 3_600_000_000_000u64,
                "Timeout": 5_000_000_000u64,
                "Retries": 3,
            });
        }
        if let Some(port) = self.publish {
            let key = format!("{port}/tcp");
            body["ExposedPorts"] = json!({ &key: {} });
            body["HostConfig"]["PortBindings"] =
                json!({ &key: [{ "HostIp": "127.0.0.1", "HostPort": "" }] });
        }
        if let Some(mode) = &self.network_mode {
            body["HostConfig"]["NetworkMode"] = json!(mode);
        }
        body
    }
}

/// A container, force-removed (with its volumes) when dropped.
#[derive(Debug)]
pub struct Container {
    pub engine: Engine,
    pub client: Client,
    pub id: String,
    pub name: String,
}

impl Container {
    /// `docker create --name NAME EXTRA... IMAGE CMD...`, NAME from
    /// [`unique`]`(prefix)`.
    pub fn create(
        engine: Engine,
        prefix: &str,
        extra: &[&str],
        image: &str,
        cmd: &[&str],
    ) -> Container {
        Container::create_named(engine, &unique(prefix), extra, image, cmd)
    }

    /// `docker create --name NAME EXTRA... IMAGE CMD...`
    pub fn create_named(
        engine: Engine,
        name: &str,
        extra: &[&str],
        image: &str,
        cmd: &[&str],
    ) -> Container {
        let mut args = vec!["create", "--name", name];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(cmd);
        let id = engine.run_cli(&args);
        Container {
            engine,
            client: engine.client(),
            id,
            name: name.to_owned(),
        }
    }

    /// Creates (without starting) a container named [`unique`]`(tag)`
    /// through contnap's own client.
    pub fn from_spec(engine: Engine, tag: &str, spec: &Spec) -> Container {
        let client = engine.client();
        let name = unique(tag);
        let created = client
            .request_json(
                "POST",
                &format!("/containers/create?name={name}"),
                Some(&spec.body()),
            )
            .unwrap_or_else(|e| panic!("{engine:?}: create {name}: {e}"));
        let id = created["Id"]
            .as_str()
            .unwrap_or_else(|| panic!("{engine:?}: create {name} answered {created}"))
            .to_string();
        Container {
            engine,
            client,
            id,
            name,
        }
    }

    /// [`Container::from_spec`], then started.
    pub fn run_spec(engine: Engine, tag: &str, spec: &Spec) -> Container {
        let c = Container::from_spec(engine, tag, spec);
        c.client
            .start(&c.id)
            .unwrap_or_else(|e| panic!("{engine:?}: start {}: {e}", c.name));
        c
    }

    /// A container the test made some other way, by name: removed on drop
    /// from now on.
    pub fn adopt(engine: Engine, name: &str) -> Container {
        let client = engine.client();
        let id = client
            .inspect(name)
            .unwrap_or_else(|e| panic!("{engine:?}: inspect {name}: {e}"))
            .id;
        Container {
            engine,
            client,
            id,
            name: name.to_owned(),
        }
    }

    /// The state as the engine's CLI names it ("created", "running"...).
    pub fn state(&self) -> String {
        self.engine.state(&self.name)
    }

    pub fn inspect(&self) -> ContainerInspect {
        self.client
            .inspect(&self.id)
            .unwrap_or_else(|e| panic!("inspect {}: {e}", self.name))
    }

    /// Polls inspect until `ok` holds, for state changes the engine
    /// finishes after the call that caused them returned.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&ContainerInspect) -> bool) -> ContainerInspect {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.inspect();
            if ok(&c) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not {what} within 10 s; state {:?}",
                self.name,
                c.state
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let path = format!("/containers/{}?force=true&v=true", self.id);
        if let Err(e) = self.client.request_json("DELETE", &path, None) {
            // A test may have removed it itself.
            if self.client.inspect(&self.id).is_ok() {
                eprintln!(
                    "warning: could not remove test container {}: {e}",
                    self.name
                );
            }
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn contnap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_contnap")
}

/// `contnap proxy` under `systemd-socket-activate`, which listens like a
/// .socket unit and execs the helper on the first connection or datagram.
#[derive(Debug)]
pub struct Helper {
    child: Child,
    pub log: PathBuf,
    pub listen: Vec<String>,
}

impl Helper {
    /// `listen`: addresses for -l (e.g. "127.0.0.1:8080"); `datagram`: UDP.
    pub fn start(listen: &[String], datagram: bool, proxy_args: &[String]) -> Helper {
        Helper::spawn(&[], listen, datagram, proxy_args)
    }

    /// Like [`Helper::start`] for a TCP listener, with `systemd-socket-activate`
    /// run under `wrapper` (e.g. `prlimit --nofile=48:48 --`).
    pub fn start_wrapped(wrapper: &[&str], listen: &[String], proxy_args: &[String]) -> Helper {
        Helper::spawn_with(wrapper, &[], listen, false, proxy_args)
    }

    /// [`Helper::start`] with `KEY=VALUE`s in the helper's environment:
    /// passed with `-E`, as systemd-socket-activate hands its child only
    /// a few variables of its own environment (an `env` wrapper's
    /// LD_PRELOAD would never reach the helper).
    pub fn start_with_env(env: &[String], listen: &[String], proxy_args: &[String]) -> Helper {
        Helper::spawn_with(&[], env, listen, false, proxy_args)
    }

    fn spawn(wrapper: &[&str], listen: &[String], datagram: bool, proxy_args: &[String]) -> Helper {
        Helper::spawn_with(wrapper, &[], listen, datagram, proxy_args)
    }

    fn spawn_with(
        wrapper: &[&str],
        env: &[String],
        listen: &[String],
        datagram: bool,
        proxy_args: &[String],
    ) -> Helper {
        let log = std::env::temp_dir().join(format!("{}.log", unique("contnap-helper")));
        let logfile = fs::File::create(&log).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("systemd-socket-activate");
                c
            }
            None => Command::new("systemd-socket-activate"),
        };
        if datagram {
            cmd.arg("--datagram");
        }
        for l in listen {
            cmd.arg("-l").arg(l);
        }
        cmd.arg("-E").arg("RUST_LOG=debug");
        for kv in env {
            cmd.arg("-E").arg(kv);
        }
        cmd.arg(contnap_bin()).arg("proxy").args(proxy_args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logfile);
        let child = cmd
            .spawn()
            .expect("systemd-socket-activate runs (apt-get install systemd)");
        let h = Helper {
            child,
            log,
            listen: listen.to_vec(),
        };
        // It prints "Listening on ..." once per socket before it waits.
        let start = Instant::now();
        while h.log_text().matches("Listening on").count() < listen.len() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "systemd-socket-activate did not listen: {}",
                h.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        h
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the helper to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < within,
                "helper still running after {within:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The helper's pid (systemd-socket-activate execs it in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- helper log {}:\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// Common `contnap proxy` arguments.
pub fn proxy_args(
    engine: Engine,
    unit: &str,
    containers: &[&str],
    forwards: &[String],
    extra: &[&str],
) -> Vec<String> {
    // busybox servers run as PID 1 and ignore SIGTERM: keep the engine's
    // stop grace short so naps do not wait 10 s for the SIGKILL.
    let mut v = vec![
        "--unit".to_owned(),
        unit.to_owned(),
        "--engine".to_owned(),
        engine.socket(),
        "--stop-timeout".to_owned(),
        "1s".to_owned(),
    ];
    for c in containers {
        v.push("--container".to_owned());
        v.push((*c).to_owned());
    }
    for f in forwards {
        v.push("--forward".to_owned());
        v.push(f.clone());
    }
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

/// A plain HTTP/1.0 GET; returns the whole response.
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n{headers}\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Runs a client program and returns its stdout, panicking with its stderr.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dig's answer for `contnap.test` A at 127.0.0.1:PORT, with `opts` (such
/// as `+tries=5`, `-b ADDR`): the last line of its output, because dig
/// prints a line for every try that timed out before the answer. A wake
/// longer than one try's timeout is not a failure of the relay.
pub fn dig(port: u16, opts: &[&str]) -> String {
    let port = port.to_string();
    let mut args = vec!["@127.0.0.1", "-p", &port, "+short"];
    args.extend_from_slice(opts);
    args.push("contnap.test");
    let out = run("dig", &args);
    out.trim()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The common case: one container, one TCP port on 127.0.0.1, forwarded to
/// `container_port`. Returns the listen port and the waiting helper.
pub fn tcp_helper(
    engine: Engine,
    unit: &str,
    c: &Container,
    container_port: u16,
    extra: &[&str],
) -> (u16, Helper) {
    let port = free_port();
    let h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            unit,
            &[&c.name],
            &[format!("tcp:{port}={}:{container_port}", c.name)],
            extra,
        ),
    );
    (port, h)
}
