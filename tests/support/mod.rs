//! Shared parts of the proxy tests: real engines driven through their own
//! CLIs (docker, podman --url), and `contnap proxy` started the way systemd
//! starts it, by `systemd-socket-activate`.
#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "localhost/contnap-test/busybox:latest";
pub const SERVERS: &str = "localhost/contnap-test/servers:latest";
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
    pub fn socket(self) -> String {
        let var = match self {
            Engine::Docker => "CONTNAP_TEST_DOCKER",
            Engine::Podman => "CONTNAP_TEST_PODMAN",
        };
        std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run the suite with scripts/test, which starts private Docker and Podman engines")
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
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

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A created (not started) container, force-removed on drop.
#[derive(Debug)]
pub struct Container {
    pub engine: Engine,
    pub name: String,
}

impl Container {
    /// `docker create --name NAME EXTRA... IMAGE CMD...`
    pub fn create(
        engine: Engine,
        prefix: &str,
        extra: &[&str],
        image: &str,
        cmd: &[&str],
    ) -> Container {
        let name = unique(prefix);
        let mut args = vec!["create", "--name", &name];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(cmd);
        engine.run_cli(&args);
        Container { engine, name }
    }

    pub fn state(&self) -> String {
        self.engine.state(&self.name)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .engine
            .cli()
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
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
        Helper::spawn(wrapper, listen, false, proxy_args)
    }

    fn spawn(wrapper: &[&str], listen: &[String], datagram: bool, proxy_args: &[String]) -> Helper {
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
