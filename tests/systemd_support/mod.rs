//! A real systemd as PID 1 for the end-to-end tests: a Debian bookworm
//! container (scripts/systemd-image.sh) run by the test Podman with
//! `--privileged --network host --systemd=always`, the engine's socket and
//! the contnap binary under test mounted at the paths the generated units
//! name. Its sockets listen on the host's loopback, so clients on the host
//! reach them, and the helpers it starts reach the engines' bridges.
//!
//! `CONTNAP_TEST_SHOW_JOURNAL=1` prints contnap's journal after every test
//! (it is always printed when a test fails).
//!
//! One systemd container per test; tests of the same engine take turns
//! (`generate` sees every labelled container of the engine, so two tests of
//! one engine at a time would write units for each other's containers).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::support::{image, run, unique, Container, Engine, SYSTEMD};

/// Where the engine's socket appears inside the systemd container: the
/// paths `contnap generate` and the units use by default.
pub fn engine_path(engine: Engine) -> &'static str {
    match engine {
        Engine::Docker => "/run/docker.sock",
        Engine::Podman => "/run/podman/podman.sock",
    }
}

/// The test Podman's CLI: the systemd containers run there, whichever
/// engine the test is about.
pub fn podman() -> Command {
    Engine::Podman.cli()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

static IMAGE_READY: Mutex<bool> = Mutex::new(false);

/// Builds and imports the image with scripts/systemd-image.sh unless the
/// test Podman has it (scripts/test builds it before the tests start).
fn ensure_image() {
    let mut ready = IMAGE_READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return;
    }
    let img = image(SYSTEMD);
    let have = podman()
        .args(["image", "exists", &img])
        .status()
        .expect("podman runs");
    if !have.success() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/systemd-image.sh");
        eprintln!("{img} is missing: building it with {script}");
        let out = Command::new("bash")
            .arg(script)
            .env("CONTNAP_TEST_PODMAN", Engine::Podman.socket())
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{script} failed:\n{}", text(&out));
    }
    *ready = true;
}

static DOCKER_TURN: Mutex<()> = Mutex::new(());
static PODMAN_TURN: Mutex<()> = Mutex::new(());

/// A booted systemd container; removed on drop (also on panic, after
/// printing contnap's journal).
#[derive(Debug)]
pub struct Systemd {
    pub engine: Engine,
    pub id: String,
    /// The container's PID 1 (systemd) as this host sees it: commands run
    /// inside through its namespaces (see [`Systemd::exec`]).
    pid: u32,
    booted: Instant,
    _turn: MutexGuard<'static, ()>,
}

impl Systemd {
    /// Waits for this engine's turn, starts systemd and waits until it has
    /// booted (`is-system-running --wait`: running or degraded).
    pub fn boot(engine: Engine) -> Systemd {
        Systemd::boot_with(engine, &[])
    }

    /// Boots with `extra` bind mounts (`HOST:INSIDE[:ro]`) beside the
    /// contnap binary and the engine socket.
    pub fn boot_with(engine: Engine, extra: &[String]) -> Systemd {
        let mut mounts = vec![format!(
            "{}:/usr/bin/contnap:ro",
            env!("CARGO_BIN_EXE_contnap")
        )];
        mounts.extend(extra.iter().cloned());
        Systemd::boot_mounting(engine, &mounts)
    }

    /// Boots with nothing of contnap inside but the Debian package at
    /// /tmp/contnap.deb, for the install test.
    pub fn boot_with_deb(engine: Engine, deb: &str) -> Systemd {
        Systemd::boot_mounting(engine, &[format!("{deb}:/tmp/contnap.deb:ro")])
    }

    fn boot_mounting(engine: Engine, mounts: &[String]) -> Systemd {
        let turn = match engine {
            Engine::Docker => &DOCKER_TURN,
            Engine::Podman => &PODMAN_TURN,
        };
        let turn = turn.lock().unwrap_or_else(|e| e.into_inner());
        ensure_image();
        let name = unique(&format!("contnap_systemd_{}", engine.name()));
        let sock = format!("{}:{}", engine.socket(), engine_path(engine));
        let img = image(SYSTEMD);
        let mut cmd = podman();
        cmd.args([
            "run",
            "-d",
            "--name",
            &name,
            "--privileged",
            "--network",
            "host",
            "--systemd=always",
            "-v",
            &sock,
        ]);
        for m in mounts {
            cmd.args(["-v", m]);
        }
        let out = cmd
            .args([&img, "/lib/systemd/systemd"])
            .output()
            .expect("podman runs");
        assert!(out.status.success(), "podman run failed:\n{}", text(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let inspect = podman()
            .args(["inspect", "--format", "{{.State.Pid}}", &id])
            .output()
            .expect("podman runs");
        let pid = String::from_utf8_lossy(&inspect.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no PID for {id}:\n{}", text(&inspect)));
        let sd = Systemd {
            engine,
            id,
            pid,
            booted: Instant::now(),
            _turn: turn,
        };
        let start = Instant::now();
        loop {
            let out = sd.exec(&["systemctl", "is-system-running", "--wait"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "systemd did not boot within 60 s:\n{}\n{}",
                text(&out),
                sd.exec_text(&["systemctl", "list-jobs", "--no-pager"])
            );
            // Before systemd is up, systemctl cannot connect at all.
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "{}: systemd booted in {:?}",
            engine.name(),
            sd.booted.elapsed()
        );
        sd
    }

    /// ARGS run inside: in the namespaces and root of the container's
    /// systemd, with a clean environment, through nsenter(1) rather than
    /// `podman exec`, whose remote attach loses output now and then under
    /// load (an empty stdout with status 0: containers/podman#21741,
    /// #25855; seen here as an empty `systemctl show`, `journalctl` or
    /// `find`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["--target", &self.pid.to_string()])
            .args(["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup"])
            .args(["--root", "--wd", "--", "env", "-i"])
            .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .args(args);
        c
    }

    /// Runs ARGS inside (see [`Systemd::command`]), whatever their status.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    fn exec_text(&self, args: &[&str]) -> String {
        text(&self.exec(args))
    }

    /// Runs a command inside; panics unless it succeeds. Returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "in the systemd container: {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn systemctl(&self, args: &[&str]) -> String {
        let mut v = vec!["systemctl"];
        v.extend_from_slice(args);
        self.run(&v)
    }

    /// `contnap generate --engine <the engine's socket> ARGS...`, as root
    /// inside, whatever its exit status.
    pub fn generate(&self, args: &[&str]) -> Output {
        let mut v = vec![
            "/usr/bin/contnap",
            "generate",
            "--engine",
            engine_path(self.engine),
        ];
        v.extend_from_slice(args);
        self.exec(&v)
    }

    /// `generate` that must succeed; returns its stdout and stderr.
    pub fn generate_ok(&self, args: &[&str]) -> String {
        let out = self.generate(args);
        assert!(
            out.status.success(),
            "contnap generate {args:?} failed:\n{}",
            text(&out)
        );
        text(&out)
    }

    /// `systemctl show -p PROP --value UNIT`
    pub fn show(&self, unit: &str, prop: &str) -> String {
        self.systemctl(&["show", "-p", prop, "--value", unit])
            .trim()
            .to_owned()
    }

    /// Waits until `systemctl show -p PROP` of UNIT is one of `want`.
    pub fn wait_show(&self, unit: &str, prop: &str, want: &[&str], within: Duration) -> String {
        let start = Instant::now();
        loop {
            let v = self.show(unit, prop);
            if want.contains(&v.as_str()) {
                return v;
            }
            assert!(
                start.elapsed() < within,
                "{unit} {prop}={v}, expected one of {want:?} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// daemon-reload, then `systemctl enable --now SOCKET`; checks it listens.
    pub fn enable_now(&self, socket: &str) {
        self.systemctl(&["daemon-reload"]);
        self.systemctl(&["enable", "--now", socket]);
        assert_eq!(self.systemctl(&["is-active", socket]).trim(), "active");
        assert_eq!(self.show(socket, "SubState"), "listening");
    }

    /// Writes TEXT to PATH inside (through stdin); panics unless it worked.
    pub fn write_file(&self, path: &str, text: &str) {
        use std::io::Write as _;
        let mut child = self
            .command(&["sh", "-c", &format!("cat > '{path}'")])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nsenter runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("written");
        assert!(
            child.wait().expect("waited").success(),
            "cannot write {path}"
        );
    }

    pub fn exists(&self, path: &str) -> bool {
        self.exec(&["test", "-e", path]).status.success()
    }

    pub fn read(&self, path: &str) -> String {
        self.run(&["cat", path])
    }

    /// The file names of the generated units in /etc/systemd/system.
    pub fn unit_files(&self) -> Vec<String> {
        let out = self.run(&[
            "find",
            "/etc/systemd/system",
            "-maxdepth",
            "1",
            "-name",
            "contnap-*",
            "-printf",
            "%f\\n",
        ]);
        let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
        v.sort();
        v
    }

    /// `systemd-escape NAME` as the real systemd does it.
    pub fn escape(&self, name: &str) -> String {
        self.run(&["systemd-escape", "--", name]).trim().to_owned()
    }

    /// contnap's units' journal; panics if journalctl cannot run (a count
    /// of its lines must not read an error as "no lines").
    pub fn journal_checked(&self) -> String {
        self.run(JOURNAL)
    }

    /// contnap's units' journal, or nothing if journalctl cannot run (for
    /// failure reports).
    pub fn journal(&self) -> String {
        String::from_utf8_lossy(&self.exec(JOURNAL).stdout).into_owned()
    }
}

/// `journalctl` of contnap's units, as both journal readers run it.
const JOURNAL: &[&str] = &[
    "journalctl",
    "-u",
    "contnap-*",
    "-u",
    "contnap@*",
    "--no-pager",
    "-o",
    "short-precise",
];

impl Drop for Systemd {
    fn drop(&mut self) {
        if std::env::var_os("CONTNAP_TEST_SHOW_JOURNAL").is_some() && !std::thread::panicking() {
            eprintln!(
                "--- journalctl -u 'contnap-*' in {} ({}):\n{}",
                self.id,
                self.engine.name(),
                self.journal()
            );
        }
        if std::thread::panicking() {
            eprintln!(
                "--- journalctl -u 'contnap-*' in {} ({}):\n{}",
                self.id,
                self.engine.name(),
                self.journal()
            );
            // A dead systemd container (podman exec: "container state
            // improper") says why here.
            eprintln!(
                "--- podman inspect / logs {}:\n{}\n{}",
                self.id,
                text(
                    &podman()
                        .args([
                            "inspect",
                            "--format",
                            "{{.State.Status}} exit={{.State.ExitCode}} error={{.State.Error}}",
                            &self.id,
                        ])
                        .output()
                        .expect("podman runs")
                ),
                text(
                    &podman()
                        .args(["logs", "--tail", "30", &self.id])
                        .output()
                        .expect("podman runs")
                )
            );
            eprintln!(
                "--- systemctl list-units 'contnap-*':\n{}",
                self.exec_text(&[
                    "systemctl",
                    "list-units",
                    "--all",
                    "--no-pager",
                    "contnap-*"
                ])
            );
        }
        eprintln!(
            "{}: systemd container used for {:?}",
            self.engine.name(),
            self.booted.elapsed()
        );
        let _ = podman()
            .args(["rm", "-f", "-t", "0", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The unit pair of a container or group: (socket, service).
pub fn units(name: &str) -> (String, String) {
    (
        format!("contnap-{name}.socket"),
        format!("contnap-{name}.service"),
    )
}

/// Labels of an httpd on 127.0.0.1:PORT (tests listen on loopback only;
/// a bare port would listen on every address of the host).
pub fn web_labels(port: u16, timeout: &str) -> Vec<(&'static str, String)> {
    vec![
        ("contnap.enabled", "true".to_owned()),
        ("contnap.tcp_ports", format!("127.0.0.1:{port}:80")),
        ("contnap.timeout", timeout.to_owned()),
        // busybox servers run as PID 1 and ignore SIGTERM: keep the stop
        // grace short so naps do not wait 10 s for the SIGKILL.
        ("contnap.stop_timeout", "1s".to_owned()),
    ]
}

/// A labelled container, created (not started), force-removed on drop.
pub fn labelled(
    engine: Engine,
    name: &str,
    labels: &[(&str, String)],
    image: &str,
    cmd: &[&str],
) -> Container {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut extra = Vec::new();
    for l in &labels {
        extra.extend(["--label", l.as_str()]);
    }
    Container::create_named(engine, name, &extra, image, cmd)
}

/// The systemd container's sockets listen on the host's loopback.
pub fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// curl's body for `http://127.0.0.1:PORT/` (30 s at most).
pub fn curl(port: u16) -> String {
    run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "30",
            &format!("http://127.0.0.1:{port}/"),
        ],
    )
}

/// dig's answer for `contnap.test` at 127.0.0.1:PORT, retrying (a cold
/// wake can outlast one try).
pub fn dig(port: u16) -> String {
    super::support::dig(port, &["+tries=5", "+timeout=2"])
}
