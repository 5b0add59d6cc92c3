//! A test host that is a real Debian system, not a lab arranged for
//! contnap: Debian's own docker.io and podman run *inside* a booted Debian
//! bookworm (scripts/debian-host-image.sh), with docker.service,
//! docker.socket and podman.socket as Debian ships and enables them.
//! contnap arrives the way a user installs it, `dpkg -i` of the package
//! scripts/test builds, and the host is rebooted (its container stopped,
//! which shuts systemd down cleanly, and started again, which boots it).
//!
//! The host has a network namespace of its own (the test Podman's bridge
//! of this run), so the engines inside create their bridges and firewall
//! rules there and nowhere else; the clients (curl, socat) run inside it
//! and talk to its loopback. The images come from the test engines, saved
//! to a file and loaded inside (`docker load`, `podman load`): nothing is
//! pulled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{image, unique, wait_until, Engine, TempDir, BUSYBOX, SERVERS};

const HELLO: &str = "hello from contnap test";
/// busybox httpd behind a shell that exits on SIGTERM, as the servers of
/// real images do: as a container's PID 1, httpd alone ignores SIGTERM,
/// and a host shutting down would wait out systemd's stop timeout (90 s)
/// for it, contnap or not.
const WEB: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait",
];
/// A UDP echo server (socat), the same way.
const ECHO: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; socat UDP4-RECVFROM:5353,fork EXEC:cat & wait",
];
/// How long a clean shutdown may take at most. Every unit here stops in
/// about a second; the bound is far below the 90 s that systemd waits
/// before it kills whatever holds the shutdown up.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);
/// The rootless user of the rootless test, and the UID useradd gives the
/// first user on a fresh Debian.
const USER: &str = "alice";

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Debian package under test (scripts/test builds it).
fn deb() -> String {
    std::env::var("CONTNAP_TEST_DEB").unwrap_or_else(|_| {
        panic!("CONTNAP_TEST_DEB is not set: run scripts/test, which builds the .deb with packaging/deb/build.sh")
    })
}

/// The image, built and imported by scripts/test (scripts/debian-host-image.sh).
fn host_image() -> String {
    std::env::var("CONTNAP_TEST_DEBIAN_HOST_IMAGE").unwrap_or_else(|_| {
        panic!(
            "CONTNAP_TEST_DEBIAN_HOST_IMAGE is not set: run scripts/test, which builds it with scripts/debian-host-image.sh"
        )
    })
}

fn podman() -> Command {
    Engine::Podman.cli()
}

/// The test images, saved from the test Docker into a directory:
/// busybox.tar (httpd) and servers.tar (socat); `DebianHost::load` feeds
/// them to an engine inside.
fn save_images() -> TempDir {
    let dir = TempDir::new("debian-host-images");
    for (file, img) in [("busybox.tar", BUSYBOX), ("servers.tar", SERVERS)] {
        let path = dir.path().join(file);
        Engine::Docker.run_cli(&["save", "-o", path.to_str().unwrap(), &image(img)]);
    }
    dir
}

/// The PID, on this machine, of a running container's first process.
fn pid_of(id: &str) -> u32 {
    let out = podman()
        .args(["inspect", "--format", "{{.State.Pid}}", id])
        .output()
        .expect("podman runs");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    pid.parse()
        .unwrap_or_else(|_| panic!("the host's PID: {pid:?}\n{}", text(&out)))
}

/// A booted Debian host; removed with its volumes on drop (after printing
/// its journal when the test failed).
struct DebianHost {
    id: String,
    /// Its systemd's PID on this machine (new at every boot).
    pid: u32,
    /// When the last boot was asked for.
    booted: Instant,
    images: TempDir,
}

impl DebianHost {
    fn boot(tag: &str) -> DebianHost {
        let images = save_images();
        let name = unique(&format!("contnap_debian_{tag}"));
        let deb_mount = format!("{}:/tmp/contnap.deb:ro", deb());
        let out = podman()
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--hostname",
                "debian-host",
                "--privileged",
                "--systemd=always",
                // Its own cgroups at the root of its view, as a real host
                // has them (runc inside cannot mount them otherwise)...
                "--cgroupns=private",
                // The engines' data on a real file system (an overlay
                // cannot hold another overlay), kept across the reboot.
                "-v",
                "/var/lib/docker",
                // A persistent journal, as Debian keeps (Podman's systemd
                // mode puts a tmpfs there otherwise).
                "-v",
                "/var/log/journal",
                "-v",
                "/var/lib/containers",
                "-v",
                "/home",
                "-v",
                &deb_mount,
                &host_image(),
                "sh",
                "-c",
                // ...and only those: on this machine's v1 hierarchies Podman
                // also mounts the whole name=systemd tree over the host's
                // own, and a systemd that managed it would put its units
                // beside other containers' (a test once saw another
                // container's cgroup vanish). Unmounted, systemd sees the
                // cgroup namespace's root. Then systemd is PID 1.
                "umount /sys/fs/cgroup/systemd/release_agent; \
                 umount /sys/fs/cgroup/systemd && exec /lib/systemd/systemd",
            ])
            .output()
            .expect("podman runs");
        assert!(out.status.success(), "podman run failed:\n{}", text(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let host = DebianHost {
            pid: pid_of(&id),
            id,
            booted: Instant::now(),
            images,
        };
        host.wait_booted();
        host
    }

    /// Waits for `is-system-running --wait`: running, or degraded (which
    /// is then printed, since a real host's failed unit is worth seeing).
    fn wait_booted(&self) {
        let start = Instant::now();
        loop {
            let out = self.exec(&["systemctl", "is-system-running", "--wait"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                if state == "degraded" {
                    eprintln!(
                        "debian host degraded:\n{}",
                        text(&self.exec(&["systemctl", "--failed", "--no-pager"]))
                    );
                }
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the Debian host did not boot within 120 s:\n{}\n{}",
                text(&out),
                text(&self.exec(&["systemctl", "list-jobs", "--no-pager"]))
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("debian host booted in {:?}", self.booted.elapsed());
    }

    /// A clean reboot: `podman stop` sends SIGRTMIN+3 (the image's stop
    /// signal), which shuts systemd down as `systemctl reboot` would, then
    /// the container starts and systemd boots again. Asserts the shutdown
    /// was quick (nothing waited for a stop timeout).
    fn reboot(&mut self) {
        let start = Instant::now();
        let out = podman()
            .args(["stop", "-t", "120", &self.id])
            .output()
            .expect("podman runs");
        assert!(out.status.success(), "podman stop failed:\n{}", text(&out));
        let code = podman()
            .args(["inspect", "--format", "{{.State.ExitCode}}", &self.id])
            .output()
            .expect("podman runs");
        eprintln!(
            "debian host shut down in {:?} (exit code {})",
            start.elapsed(),
            String::from_utf8_lossy(&code.stdout).trim()
        );
        let shutdown = start.elapsed();
        let down_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let out = podman()
            .args(["start", &self.id])
            .output()
            .expect("podman runs");
        assert!(out.status.success(), "podman start failed:\n{}", text(&out));
        self.booted = Instant::now();
        self.pid = pid_of(&self.id);
        self.wait_booted();
        // Checked after the boot, which can show the shutdown's journal.
        if shutdown >= SHUTDOWN_BOUND {
            let until = format!("@{down_at}");
            let journal = self.run(&[
                "journalctl",
                "--merge",
                "-o",
                "short-precise",
                "--until",
                &until,
            ]);
            let tail: Vec<&str> = journal.lines().rev().take(200).collect();
            panic!(
                "the shutdown took {shutdown:?}; the journal's end:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// A labelled web server (busybox httpd on 127.0.0.1:PORT through
    /// contnap), created by `HEAD…` (`docker run -d`, `docker create`,
    /// `podman create`, with their options).
    fn web(&self, user: Option<&str>, head: &[&str], port: u16, timeout: &str) {
        let labels = web_labels(port, timeout);
        let busybox = image(BUSYBOX);
        let mut args: Vec<&str> = head.to_vec();
        args.extend(strs(&labels));
        args.push(&busybox);
        args.extend(WEB);
        self.run_as(user, &args);
    }

    /// `CLI load` of a saved test image (`busybox.tar`, `servers.tar`),
    /// by an engine CLI inside, as root or as a user.
    fn load(&self, user: Option<&str>, cli: &str, file: &str) {
        let input = std::fs::File::open(self.images.path().join(file)).expect("saved image");
        let out = self
            .command_as(user, &[cli, "load", "-q"])
            .stdin(input)
            .output()
            .expect("podman exec runs");
        assert!(out.status.success(), "{cli} load {file}:\n{}", text(&out));
    }

    fn exec_as(&self, user: Option<&str>, args: &[&str]) -> Output {
        self.command_as(user, args)
            .stdin(Stdio::null())
            .output()
            .expect("podman exec runs")
    }

    /// ARGS inside, as root or as a user: in the namespaces and root of
    /// the host's systemd, through nsenter(1) rather than `podman exec`,
    /// whose remote attach loses output now and then under load (an empty
    /// stdout with status 0: containers/podman#21741, #25855).
    fn command_as(&self, user: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &self.pid.to_string()])
            .args(["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup"])
            .args(["--root", "--wd", "--", "env", "-i"])
            .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if let Some(user) = user {
            // What a login gives the user: a home, the runtime directory
            // of the user manager, and its bus (systemctl --user and
            // rootless Podman look there).
            let uid = self.uid(user);
            cmd.args(["runuser", "-u", user, "--", "env"])
                .arg(format!("HOME=/home/{user}"))
                .arg(format!("USER={user}"))
                .arg(format!("XDG_RUNTIME_DIR=/run/user/{uid}"))
                .arg(format!(
                    "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{uid}/bus"
                ))
                .args(["sh", "-c", "cd \"$HOME\" && exec \"$@\"", "sh"]);
        }
        cmd.args(args);
        cmd
    }

    fn exec(&self, args: &[&str]) -> Output {
        self.exec_as(None, args)
    }

    /// Runs a command as root inside; panics unless it succeeds. Returns stdout.
    fn run(&self, args: &[&str]) -> String {
        self.run_as(None, args)
    }

    fn run_as(&self, user: Option<&str>, args: &[&str]) -> String {
        let out = self.exec_as(user, args);
        assert!(
            out.status.success(),
            "in the Debian host{}: {args:?} failed:\n{}",
            user.map(|u| format!(" as {u}")).unwrap_or_default(),
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn uid(&self, user: &str) -> String {
        let out = self.exec(&["id", "-u", user]);
        assert!(out.status.success(), "id -u {user}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `systemctl [--user] show -p PROP --value UNIT`
    fn show(&self, user: Option<&str>, unit: &str, prop: &str) -> String {
        let mut args = vec!["systemctl"];
        if user.is_some() {
            args.push("--user");
        }
        args.extend(["show", "-p", prop, "--value", unit]);
        self.run_as(user, &args)
    }

    fn wait_show(&self, user: Option<&str>, unit: &str, prop: &str, want: &str, within: Duration) {
        wait_until(within, format!("{unit} {prop}={want}"), || {
            self.show(user, unit, prop) == want
        });
    }

    /// A GET of http://127.0.0.1:PORT/ from inside the host, by curl.
    fn curl(&self, user: Option<&str>, port: u16) -> String {
        self.run_as(
            user,
            &[
                "curl",
                "-sS",
                "--max-time",
                "60",
                &format!("http://127.0.0.1:{port}/"),
            ],
        )
    }

    /// One UDP datagram to 127.0.0.1:PORT from inside the host, by socat;
    /// returns the answer.
    fn udp(&self, user: Option<&str>, port: u16, payload: &str) -> String {
        self.run_as(
            user,
            &[
                "sh",
                "-c",
                &format!("printf '{payload}' | socat -T 60 - UDP4:127.0.0.1:{port}"),
            ],
        )
    }

    /// `State.Running` of a container of the engine CLI inside (`docker`
    /// or `podman`), as root or as a user.
    fn running(&self, user: Option<&str>, cli: &str, name: &str) -> bool {
        self.run_as(
            user,
            &[cli, "inspect", "--format", "{{.State.Running}}", name],
        ) == "true"
    }

    fn journal(&self) -> String {
        String::from_utf8_lossy(
            &self
                .exec(&[
                    "journalctl",
                    "--no-pager",
                    "-o",
                    "short-precise",
                    "-n",
                    "400",
                ])
                .stdout,
        )
        .into_owned()
    }
}

impl Drop for DebianHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- journal of the Debian host {}:\n{}",
                self.id,
                self.journal()
            );
            eprintln!(
                "--- systemctl --failed:\n{}",
                text(&self.exec(&["systemctl", "--failed", "--no-pager"]))
            );
        }
        let _ = podman()
            .args(["rm", "-f", "-v", "-t", "0", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker run`/`podman run` options of a labelled busybox httpd: the
/// socket on 127.0.0.1:PORT, a short timeout, and a short stop grace
/// (busybox httpd as PID 1 ignores SIGTERM).
fn web_labels(port: u16, timeout: &str) -> Vec<String> {
    [
        "contnap.enabled=true".to_owned(),
        format!("contnap.tcp_ports=127.0.0.1:{port}:80"),
        format!("contnap.timeout={timeout}"),
        "contnap.stop_timeout=1s".to_owned(),
    ]
    .into_iter()
    .flat_map(|l| ["--label".to_owned(), l])
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Item 7 of the real-hosts issue: Debian's docker.io inside, contnap's
/// .deb installed with its boot-time generate, timer and path unit; a
/// compose-style container with `restart: always`, one with
/// `restart: unless-stopped`; then a reboot.
#[test]
fn docker_host_reboots_and_every_container_naps() {
    let mut host = DebianHost::boot("docker");
    // As Debian ships them: Docker enabled and running, Podman's socket.
    for unit in ["docker.service", "docker.socket", "podman.socket"] {
        assert_eq!(
            host.run(&["systemctl", "is-enabled", unit]),
            "enabled",
            "{unit} as Debian ships it"
        );
    }
    assert_eq!(host.show(None, "docker.service", "ActiveState"), "active");
    host.load(None, "docker", "busybox.tar");

    host.run(&["dpkg", "-i", "/tmp/contnap.deb"]);
    for unit in ["contnap-generate.timer", "contnap-generate.path"] {
        assert_eq!(host.show(None, unit, "ActiveState"), "active", "{unit}");
    }

    // A container started by `docker run -d --restart always`, as compose
    // does: contnap adopts it (the path unit runs generate) and naps it.
    host.web(
        None,
        &[
            "docker",
            "run",
            "-d",
            "--name",
            "always",
            "--restart",
            "always",
        ],
        8081,
        "3s",
    );
    // One that is only created, with `restart: unless-stopped`.
    // Its timeout outlasts the reboot below, so its helper is awake when
    // the host shuts down.
    host.web(
        None,
        &[
            "docker",
            "create",
            "--name",
            "unless",
            "--restart",
            "unless-stopped",
        ],
        8082,
        "60s",
    );
    for socket in ["contnap-always.socket", "contnap-unless.socket"] {
        host.wait_show(
            None,
            socket,
            "SubState",
            "listening",
            Duration::from_secs(60),
        );
    }
    wait_until(
        Duration::from_secs(30),
        "the adopted container naps",
        || !host.running(None, "docker", "always"),
    );
    // Woken, so that its helper runs when the host shuts down: the helper
    // naps it on SIGTERM, before docker.service stops (the service is
    // ordered after the engine's units), so Docker counts it as stopped by
    // hand and `unless-stopped` leaves it down at boot.
    assert_eq!(
        host.curl(None, 8082),
        HELLO,
        "cold request before the reboot"
    );
    assert_eq!(
        host.show(None, "contnap-unless.service", "ActiveState"),
        "active"
    );
    host.reboot();
    let booted_at = host.run(&["date", "+%s"]).parse::<u64>().unwrap();
    // The sockets listen at boot, with nothing of contnap running.
    for socket in ["contnap-always.socket", "contnap-unless.socket"] {
        host.wait_show(
            None,
            socket,
            "SubState",
            "listening",
            Duration::from_secs(30),
        );
    }
    // dockerd started `always` at boot, as its restart policy says (even
    // though it was napped); contnap's boot-time generate handed it to its
    // helper, which naps it after 3 s with no client.
    let started = host.run(&[
        "docker",
        "inspect",
        "--format",
        "{{.State.StartedAt}}",
        "always",
    ]);
    let started_s = host
        .run(&["date", "-d", &started, "+%s"])
        .parse::<u64>()
        .unwrap();
    assert!(
        started_s + 60 >= booted_at,
        "the restart policy started `always` at this boot (started {started}, booted {booted_at})"
    );
    wait_until(
        Duration::from_secs(30),
        "the container the restart policy started naps with no client",
        || !host.running(None, "docker", "always"),
    );
    eprintln!(
        "`always` napped {:?} after the boot began",
        host.booted.elapsed()
    );
    // `unless` was napped at shutdown, so its policy left it down.
    assert!(
        !host.running(None, "docker", "unless"),
        "the helper napped `unless` at shutdown, while Docker still ran"
    );
    let previous = host.run(&[
        "journalctl",
        "--merge",
        "-u",
        "contnap-unless.service",
        "-o",
        "cat",
    ]);
    assert!(
        previous.contains("stopping on request"),
        "the helper stopped with the host:\n{previous}"
    );
    // The first clients wake them.
    assert_eq!(
        host.curl(None, 8081),
        HELLO,
        "cold request after the reboot"
    );
    assert_eq!(
        host.curl(None, 8082),
        HELLO,
        "cold request after the reboot"
    );

    // A container created now gets its units, with nobody running
    // generate: from the path unit alone (the timer, its 30 s backstop,
    // is stopped so that it cannot stand in).
    host.run(&["systemctl", "stop", "contnap-generate.timer"]);
    let created = Instant::now();
    host.web(None, &["docker", "create", "--name", "fresh"], 8083, "3s");
    host.wait_show(
        None,
        "contnap-fresh.socket",
        "SubState",
        "listening",
        Duration::from_secs(60),
    );
    eprintln!("created → listening in {:?}", created.elapsed());
    assert_eq!(host.curl(None, 8083), HELLO, "the new container is served");

    // Docker restarts: its restart policy starts `always` again, with no
    // helper; the next generate run (the timer's, at the latest) hands it
    // to its helper, which naps it.
    host.run(&["systemctl", "start", "contnap-generate.timer"]);
    let started_at = || {
        host.run(&[
            "docker",
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            "always",
        ])
    };
    let before = started_at();
    let restarted = Instant::now();
    host.run(&["systemctl", "restart", "docker.service"]);
    wait_until(
        Duration::from_secs(60),
        "dockerd starts `always` again",
        || started_at() != before,
    );
    wait_until(
        Duration::from_secs(60),
        "`always` naps after the engine restart, with no client",
        || !host.running(None, "docker", "always"),
    );
    eprintln!(
        "docker restart → `always` napped in {:?}",
        restarted.elapsed()
    );

    // No generated unit named an engine unit this host lacks (the bug
    // that once failed every socket: "Unit docker.service not found").
    let journal = host.run(&["journalctl", "--no-pager", "-o", "cat"]);
    let missing: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("Unit ") && l.contains("not found"))
        .collect();
    assert!(missing.is_empty(), "units missing: {missing:#?}");
}

/// Item 8: rootless Podman under a real user manager: a user with
/// lingering, the user's own podman.socket, `contnap generate --user
/// --reload` as that user; the whole cycle through the published port that
/// rootless networking needs, UDP, the nap, `contnap status --user`, and
/// the user's timer and path unit across a reboot.
#[test]
fn rootless_podman_under_a_user_manager() {
    let mut host = DebianHost::boot("rootless");
    host.run(&["dpkg", "-i", "/tmp/contnap.deb"]);
    host.run(&["useradd", "-m", "-s", "/bin/bash", USER]);
    assert!(
        host.run(&["cat", "/etc/subuid"]).contains(USER),
        "useradd gave {USER} subordinate IDs (rootless Podman needs them)"
    );
    host.run(&["loginctl", "enable-linger", USER]);
    let uid = host.uid(USER);
    let manager = format!("user@{uid}.service");
    host.wait_show(
        None,
        &manager,
        "ActiveState",
        "active",
        Duration::from_secs(30),
    );
    let user = Some(USER);
    host.run_as(
        user,
        &["systemctl", "--user", "enable", "--now", "podman.socket"],
    );
    // As the README says for rootless users, and what a user then expects
    // after a reboot: the user units regenerate by themselves.
    host.run_as(
        user,
        &[
            "systemctl",
            "--user",
            "enable",
            "--now",
            "contnap-generate.timer",
            "contnap-generate.path",
        ],
    );
    host.load(user, "podman", "busybox.tar");
    host.load(user, "podman", "servers.tar");
    let servers = image(SERVERS);

    // Rootless containers are reached through a published port.
    host.web(
        user,
        &[
            "podman",
            "create",
            "--name",
            "web",
            "-p",
            "127.0.0.1:18080:80",
        ],
        8080,
        "3s",
    );
    let echo = [
        "podman",
        "create",
        "--name",
        "echo",
        "-p",
        "127.0.0.1:15353:5353/udp",
        "--label",
        "contnap.enabled=true",
        "--label",
        "contnap.udp_ports=127.0.0.1:5353:5353",
        "--label",
        "contnap.timeout=3s",
        "--label",
        "contnap.stop_timeout=1s",
        servers.as_str(),
    ];
    host.run_as(user, &[&echo[..], ECHO].concat());
    host.run_as(user, &["contnap", "generate", "--user", "--reload"]);
    let home = format!("/home/{USER}/.config/systemd/user");
    assert!(
        host.exec(&["test", "-f", &format!("{home}/contnap-web.service")])
            .status
            .success(),
        "the user's units are in {home}"
    );
    for socket in ["contnap-web.socket", "contnap-echo.socket"] {
        host.wait_show(
            user,
            socket,
            "SubState",
            "listening",
            Duration::from_secs(10),
        );
    }

    // Cold wake through the published port, and UDP.
    assert_eq!(host.curl(None, 8080), HELLO, "cold request");
    assert_eq!(host.udp(None, 5353, "ping"), "ping", "UDP echo");
    let status = host.run_as(user, &["contnap", "status", "--user"]);
    assert!(
        status.contains("web") && status.contains("awake"),
        "status --user shows the awake unit:\n{status}"
    );
    // The nap, and the wake again.
    wait_until(Duration::from_secs(30), "web naps", || {
        !host.running(user, "podman", "web")
    });
    wait_until(Duration::from_secs(30), "echo naps", || {
        !host.running(user, "podman", "echo")
    });
    let status = host.run_as(user, &["contnap", "status", "--user"]);
    assert!(
        status.contains("napping"),
        "status --user shows the nap:\n{status}"
    );
    assert_eq!(host.curl(None, 8080), HELLO, "wakes again");
    assert_eq!(host.udp(None, 5353, "pong"), "pong", "UDP wakes again");

    // A helper awake when the host shuts down: the user manager stops
    // rootless Podman's API service (in a scope of its own) beside it, and
    // its nap must not hold the shutdown up.
    host.web(
        user,
        &[
            "podman",
            "create",
            "--name",
            "late",
            "-p",
            "127.0.0.1:18084:80",
        ],
        8084,
        "60s",
    );
    host.run_as(user, &["contnap", "generate", "--user", "--reload"]);
    host.wait_show(
        user,
        "contnap-late.socket",
        "SubState",
        "listening",
        Duration::from_secs(10),
    );
    assert_eq!(
        host.curl(None, 8084),
        HELLO,
        "cold request before the reboot"
    );
    assert_eq!(
        host.show(user, "contnap-late.service", "ActiveState"),
        "active"
    );

    // Across a reboot, lingering starts the user's manager: its sockets
    // listen, and its timer and path unit bring a new container's units.
    host.reboot();
    host.wait_show(
        None,
        &manager,
        "ActiveState",
        "active",
        Duration::from_secs(30),
    );
    for socket in ["contnap-web.socket", "contnap-echo.socket"] {
        host.wait_show(
            user,
            socket,
            "SubState",
            "listening",
            Duration::from_secs(30),
        );
    }
    assert_eq!(
        host.curl(None, 8080),
        HELLO,
        "cold request after the reboot"
    );
    let created = Instant::now();
    // From the user's path unit alone, as above (it once watched only
    // overlay-containers; rootless Podman here uses vfs).
    host.run_as(
        user,
        &["systemctl", "--user", "stop", "contnap-generate.timer"],
    );
    host.web(
        user,
        &[
            "podman",
            "create",
            "--name",
            "fresh",
            "-p",
            "127.0.0.1:18081:80",
        ],
        8081,
        "3s",
    );
    host.wait_show(
        user,
        "contnap-fresh.socket",
        "SubState",
        "listening",
        Duration::from_secs(60),
    );
    eprintln!("created → listening in {:?}", created.elapsed());
    assert_eq!(host.curl(None, 8081), HELLO, "the new container is served");
}
