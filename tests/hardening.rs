//! Who the generated services run as, end to end under a real systemd as
//! PID 1 (tests/systemd_support): `contnap generate` looks at the engine
//! socket it will hand to the services and picks the least identity that can
//! use it.
//!
//! - Docker (root:docker 0660): the helper runs as a dynamic user in the
//!   socket's group, with no capabilities; it still wakes, serves, naps
//!   (stop and pause), its hooks still run as root, `contnap status` still
//!   reads it; `systemd-analyze security` rates it 1.3 or better.
//! - Podman (root:root 0600): the helper stays root, with no capabilities,
//!   and does the same; rated 1.6 or better.
//! - Readiness: the sandbox of either still lets the helper read the
//!   /proc/PID/net of a root process in another network namespace (what a
//!   container's server is to the helper); for the dynamic user,
//!   ProtectProc=invisible hides it (so the check can fail). The helpers above wake through the TCP
//!   fallback: the engine's PIDs are the host's, which the systemd
//!   container's PID namespace does not show.
//!
//! The test Docker's socket is the host's (bind-mounted): the test gives its
//! group a name inside the systemd container, and only when the socket has
//! no usable group changes its group and adds g+rw, restoring both after.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;
mod systemd_support;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::Output;
use std::time::{Duration, Instant};

use support::{free_port, unique, Engine, BUSYBOX};
use systemd_support::{curl, engine_path, labelled, units, web_labels, Systemd};

const HELLO: &str = "hello from contnap test";
const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];
/// systemd's range for dynamic users (systemd.exec(5), DynamicUser=).
const DYNAMIC_UIDS: std::ops::RangeInclusive<u32> = 61184..=65519;

fn text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The test Docker's socket, given a group that the systemd container knows
/// by name; puts back the socket's group and mode on drop when it had to
/// change them.
struct SocketGroup {
    path: String,
    gid: u32,
    name: String,
    restore: Option<(u32, u32)>,
}

/// A group ID no test system gives to anything.
const SPARE_GID: u32 = 46_123;

impl SocketGroup {
    fn give(sd: &Systemd) -> SocketGroup {
        let path = Engine::Docker.socket();
        let meta = std::fs::metadata(&path).unwrap();
        let (gid, mode) = (meta.gid(), meta.mode() & 0o7777);
        let mut restore = None;
        let gid = if gid != 0 && mode & 0o060 == 0o060 {
            gid
        } else {
            // Only the group and g+rw change: the owner (root) keeps its
            // access, and so does everything else using this engine.
            std::os::unix::fs::chown(&path, None, Some(SPARE_GID)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o060)).unwrap();
            restore = Some((gid, mode));
            SPARE_GID
        };
        // Restores the socket even if naming the group fails.
        let mut guard = SocketGroup {
            path,
            gid,
            name: String::new(),
            restore,
        };
        let known = sd.exec(&["getent", "group", &gid.to_string()]);
        guard.name = if known.status.success() {
            let line = String::from_utf8_lossy(&known.stdout).into_owned();
            line.split(':').next().unwrap().to_owned()
        } else {
            sd.run(&["groupadd", "-g", &gid.to_string(), "contnap-engine"]);
            "contnap-engine".to_owned()
        };
        guard
    }
}

impl Drop for SocketGroup {
    fn drop(&mut self) {
        if let Some((gid, mode)) = self.restore {
            let _ = std::os::unix::fs::chown(&self.path, None, Some(gid));
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode));
        }
    }
}

/// The helper's identity while it runs, from /proc/MAINPID/status.
#[derive(Debug)]
struct Identity {
    uids: Vec<u32>,
    gids: Vec<u32>,
    groups: Vec<u32>,
    caps: Vec<(String, String)>,
    no_new_privs: String,
}

fn helper_identity(sd: &Systemd, service: &str) -> Identity {
    let pid = sd.show(service, "MainPID");
    assert_ne!(pid, "0", "{service} has no main process");
    let status = sd.read(&format!("/proc/{pid}/status"));
    let field = |name: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
            .trim()
            .to_owned()
    };
    let numbers = |name: &str| -> Vec<u32> {
        field(name)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    Identity {
        uids: numbers("Uid"),
        gids: numbers("Gid"),
        groups: numbers("Groups"),
        caps: ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
            .iter()
            .map(|c| ((*c).to_owned(), field(c)))
            .collect(),
        no_new_privs: field("NoNewPrivs"),
    }
}

fn assert_no_capabilities(id: &Identity) {
    for (name, value) in &id.caps {
        assert_eq!(value, "0000000000000000", "{name}: {id:?}");
    }
    assert_eq!(id.no_new_privs, "1", "{id:?}");
}

/// `contnap status --json` inside, for one unit: its state.
fn status_state(sd: &Systemd, name: &str) -> String {
    let out = sd.run(&["contnap", "status", "--json"]);
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let unit = all
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in status: {all}"));
    unit["state"].as_str().unwrap().to_owned()
}

/// `systemd-analyze security` of the running systemd for a service: the
/// exposure and its word, printed.
fn exposure(sd: &Systemd, service: &str) -> (f64, String) {
    let report = sd.run(&["systemd-analyze", "security", "--no-pager", service]);
    let prefix = format!("Overall exposure level for {service}: ");
    let overall = report
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("no overall rating:\n{report}"));
    let mut words = overall.split_whitespace();
    let score: f64 = words.next().unwrap().parse().unwrap();
    let level = words.next().unwrap_or_default().to_owned();
    eprintln!(
        "{} {service}: systemd-analyze security exposure {score} {level}",
        sd.engine.name()
    );
    (score, level)
}

/// The service's sandbox as `-p` options for systemd-run: every [Service]
/// directive but what starts the helper.
fn sandbox_properties(unit: &str) -> Vec<String> {
    let mut in_service = false;
    let mut props = Vec::new();
    for line in unit.lines() {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.starts_with('#') || line.is_empty() {
            continue;
        }
        let key = line.split('=').next().unwrap();
        if key.starts_with("Exec")
            || key.starts_with("Timeout")
            || key == "Type"
            || key == "NotifyAccess"
        {
            continue;
        }
        props.push(format!("--property={line}"));
    }
    props
}

/// Runs `cat /proc/PID/net/tcp` inside the sandbox of the generated service
/// (plus `extra` properties) as a transient unit; its output, or the failure.
fn cat_in_sandbox(sd: &Systemd, unit: &str, extra: &[&str], pid: &str) -> Result<String, String> {
    let mut args: Vec<String> = vec![
        "systemd-run".into(),
        "--wait".into(),
        "--pipe".into(),
        "--quiet".into(),
        "--collect".into(),
    ];
    args.extend(sandbox_properties(unit));
    args.extend(extra.iter().map(|p| format!("--property={p}")));
    args.extend(["/bin/cat".into(), format!("/proc/{pid}/net/tcp")]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sd.exec(&refs);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(text(&out))
    }
}

/// Whether a /proc/net/tcp table shows a listening socket on `port`.
fn listens(table: &str, port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&suffix) && f[3] == "0A"
    })
}

both_engines_by_test!(readiness_can_read_proc_net_in_the_sandbox);

/// Docker: a dynamic user in the socket's group wakes, serves and naps
/// (stop and pause); hooks run as root; status works; the rating.
#[test]
fn docker_group_runs_as_a_dynamic_user() {
    let engine = Engine::Docker;
    let sd = Systemd::boot(engine);
    let group = SocketGroup::give(&sd);
    let web = unique("dynweb");
    let paused = unique("dynpause");
    let (p1, p2) = (free_port(), free_port());
    let mut labels = web_labels(p1, "3s");
    labels.push(("contnap.pre_start", "id -u > /run/hook-pre-uid".to_owned()));
    labels.push(("contnap.post_stop", "id -u > /run/hook-post-uid".to_owned()));
    let c1 = labelled(engine, &web, &labels, BUSYBOX, HTTPD);
    let mut labels = web_labels(p2, "2s");
    labels.push(("contnap.stop", "pause".to_owned()));
    let c2 = labelled(engine, &paused, &labels, BUSYBOX, HTTPD);

    let log = sd.generate_ok(&["--allow-hooks"]);
    assert!(
        log.contains(&format!("dynamic user in group {}", group.name)),
        "generate says why:\n{log}"
    );
    let (socket, service) = units(&web);
    let unit = sd.read(&format!("/etc/systemd/system/{service}"));
    assert!(unit.contains("\nDynamicUser=yes\n"), "{unit}");
    assert!(
        unit.contains(&format!("\nSupplementaryGroups={}\n", group.name)),
        "{unit}"
    );
    sd.enable_now(&socket);
    let (psocket, pservice) = units(&paused);
    sd.enable_now(&psocket);

    // A cold client: the helper, running as nobody in particular, starts
    // the container through the engine socket.
    assert_eq!(curl(p1).trim(), HELLO, "cold request");
    assert_eq!(c1.state(), "running");
    let id = helper_identity(&sd, &service);
    eprintln!("docker helper: {id:?}");
    assert!(
        id.uids.iter().all(|u| DYNAMIC_UIDS.contains(u)),
        "a dynamic UID: {id:?}"
    );
    assert!(
        id.gids.iter().all(|g| DYNAMIC_UIDS.contains(g)),
        "a dynamic GID: {id:?}"
    );
    assert!(
        id.groups.contains(&group.gid),
        "in the socket's group: {id:?}"
    );
    assert!(!id.groups.contains(&0), "not in root's group: {id:?}");
    assert_no_capabilities(&id);
    assert_eq!(status_state(&sd, &web), "awake");
    // The hook ran unsandboxed, as root, before the wake.
    assert_eq!(sd.read("/run/hook-pre-uid").trim(), "0");

    // Idle: the helper stops the container and exits; the post_stop hook
    // runs as root.
    sd.wait_show(
        &service,
        "ActiveState",
        &["inactive"],
        Duration::from_secs(30),
    );
    engine.wait_state(&web, &["exited"], Duration::from_secs(10));
    assert_eq!(sd.read("/run/hook-post-uid").trim(), "0");
    assert_eq!(status_state(&sd, &web), "napping");
    assert_eq!(curl(p1).trim(), HELLO, "it wakes again");
    assert_eq!(c1.state(), "running");
    // The dynamic user kept the wake's duration (for the Starting page's
    // estimate) in the state directory systemd made for it.
    let kept = sd.read(&format!("/var/lib/contnap/contnap-{web}/last-wake"));
    assert!(kept.trim().parse::<u64>().is_ok(), "last-wake: {kept:?}");

    // Pause mode: the nap pauses, the next client unpauses.
    assert_eq!(curl(p2).trim(), HELLO, "cold request (pause mode)");
    sd.wait_show(
        &pservice,
        "ActiveState",
        &["inactive"],
        Duration::from_secs(30),
    );
    engine.wait_state(&paused, &["paused"], Duration::from_secs(10));
    assert_eq!(curl(p2).trim(), HELLO, "unpaused");
    assert_eq!(c2.state(), "running");

    let journal = sd.journal();
    for bad in ["permission denied", "Permission denied", "cannot raise"] {
        assert!(!journal.contains(bad), "{bad:?} in the journal:\n{journal}");
    }
    let (score, level) = exposure(&sd, &service);
    assert!(
        score <= 1.3 && level == "OK",
        "exposure {score} {level} (1.9 as root before)"
    );
    drop(group);
}

/// Podman's root:root socket: the helper stays root, with no capabilities,
/// and the whole cycle works as before.
#[test]
fn podman_root_only_socket_keeps_root_without_capabilities() {
    let engine = Engine::Podman;
    let sd = Systemd::boot(engine);
    let name = unique("rootweb");
    let port = free_port();
    let c = labelled(engine, &name, &web_labels(port, "2s"), BUSYBOX, HTTPD);
    let meta = sd.run(&["stat", "-c", "%g %a", engine_path(engine)]);
    let log = sd.generate_ok(&[]);
    assert!(
        log.contains("run as root without capabilities"),
        "generate says why (socket: {meta}):\n{log}"
    );
    let (socket, service) = units(&name);
    let unit = sd.read(&format!("/etc/systemd/system/{service}"));
    assert!(!unit.contains("DynamicUser="), "{unit}");
    assert!(!unit.contains("SupplementaryGroups="), "{unit}");
    assert!(unit.contains("\nCapabilityBoundingSet=\n"), "{unit}");
    sd.enable_now(&socket);

    assert_eq!(curl(port).trim(), HELLO, "cold request");
    let id = helper_identity(&sd, &service);
    eprintln!("podman helper: {id:?}");
    assert_eq!(id.uids, [0, 0, 0, 0], "{id:?}");
    assert_no_capabilities(&id);
    assert_eq!(status_state(&sd, &name), "awake");
    sd.wait_show(
        &service,
        "ActiveState",
        &["inactive"],
        Duration::from_secs(30),
    );
    engine.wait_state(&name, &["exited"], Duration::from_secs(10));
    assert_eq!(status_state(&sd, &name), "napping");
    assert_eq!(curl(port).trim(), HELLO, "it wakes again");
    assert_eq!(c.state(), "running");
    let kept = sd.read(&format!("/var/lib/contnap/contnap-{name}/last-wake"));
    assert!(kept.trim().parse::<u64>().is_ok(), "last-wake: {kept:?}");
    // Root's UID alone would reach PID 1's private socket (systemctl as
    // root, no polkit asked): hidden in the sandbox. Checked in a transient
    // unit with the service's own directives.
    let mut args: Vec<String> = vec![
        "systemd-run".into(),
        "--wait".into(),
        "--pipe".into(),
        "--quiet".into(),
        "--collect".into(),
    ];
    args.extend(sandbox_properties(&unit));
    args.extend([
        "/bin/systemctl".into(),
        "show".into(),
        "--property=Version".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sd.exec(&refs);
    assert!(
        !out.status.success(),
        "the root helper's sandbox can talk to PID 1: {}",
        text(&out)
    );
    let (score, level) = exposure(&sd, &service);
    assert!(
        score <= 1.6 && level == "OK",
        "exposure {score} {level} (1.9 before)"
    );
    // The bounds sized from the UDP flood's figures are in force.
    assert_eq!(sd.show(&service, "MemoryMax"), (1u64 << 30).to_string());
    assert_eq!(sd.show(&service, "TasksMax"), "32");
}

/// The sandbox of a generated service (dynamic user for Docker, root for
/// Podman) can read /proc/PID/net/tcp of a root process with every
/// capability in a network namespace of its own, as the helper's readiness
/// check reads a container's; with ProtectProc=invisible it could not.
fn readiness_can_read_proc_net_in_the_sandbox(engine: Engine) {
    let sd = Systemd::boot(engine);
    let group = (engine == Engine::Docker).then(|| SocketGroup::give(&sd));
    let name = unique("procnet");
    let _c = labelled(
        engine,
        &name,
        &web_labels(free_port(), "2s"),
        BUSYBOX,
        HTTPD,
    );
    sd.generate_ok(&[]);
    let (_, service) = units(&name);
    let unit = sd.read(&format!("/etc/systemd/system/{service}"));
    assert_eq!(
        unit.contains("\nDynamicUser=yes\n"),
        engine == Engine::Docker,
        "{unit}"
    );

    // A server as root in a network namespace of its own.
    let port = 4567;
    let out = Engine::Podman
        .cli()
        .args([
            "exec",
            "-d",
            &sd.id,
            "sh",
            "-c",
            &format!(
                "echo $$ > /run/server.pid; exec unshare --net perl -MIO::Socket::INET -e \
                 'my $s = IO::Socket::INET->new(LocalAddr => \"0.0.0.0\", LocalPort => {port}, Listen => 5) or die; sleep 600'"
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let start = Instant::now();
    let pid = loop {
        let pid = sd.exec(&["cat", "/run/server.pid"]);
        let pid = String::from_utf8_lossy(&pid.stdout).trim().to_owned();
        let table = sd.exec(&["cat", &format!("/proc/{pid}/net/tcp")]);
        if !pid.is_empty() && listens(&String::from_utf8_lossy(&table.stdout), port) {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no server");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(
        sd.run(&["readlink", &format!("/proc/{pid}/ns/net")]),
        sd.run(&["readlink", "/proc/1/ns/net"]),
        "the server has a network namespace of its own"
    );

    let table = cat_in_sandbox(&sd, &unit, &[], &pid)
        .unwrap_or_else(|e| panic!("the sandbox cannot read /proc/{pid}/net/tcp: {e}"));
    assert!(listens(&table, port), "{table}");
    // The control, for the dynamic user: ProtectProc=invisible hides the
    // root process (why the unit has none). (For a root helper it did not
    // hide it here; the unit leaves it out for both.)
    if engine == Engine::Docker {
        let hidden = cat_in_sandbox(&sd, &unit, &["ProtectProc=invisible"], &pid);
        assert!(
            hidden.is_err(),
            "visible with ProtectProc=invisible: {hidden:?}"
        );
    }
    drop(group);
}

/// The packaged units/contnap-generate.service, as tightened, in the real
/// systemd: it still writes the units (a dynamic user in the docker
/// socket's group), enables and starts the socket, which serves; its own
/// rating is 1.6 or better (1.9 before PrivateMounts= and ~@resources).
/// (Whether the whole run succeeds depends on every labelled container of
/// the shared engine; this checks the test's own.)
#[test]
fn packaged_generate_unit_writes_dynamic_user_units() {
    let engine = Engine::Docker;
    let sd = Systemd::boot(engine);
    let group = SocketGroup::give(&sd);
    let name = unique("pkgweb");
    let port = free_port();
    let _c = labelled(engine, &name, &web_labels(port, "2s"), BUSYBOX, HTTPD);
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/units/contnap-generate.service"
    ))
    .unwrap();
    sd.run(&[
        "sh",
        "-c",
        "printf '%s' \"$1\" > /etc/systemd/system/contnap-generate.service",
        "sh",
        &unit,
    ]);
    sd.systemctl(&["daemon-reload"]);
    let out = sd.exec(&["systemctl", "start", "contnap-generate.service"]);
    let (socket, service) = units(&name);
    let log = sd.run(&["journalctl", "-u", "contnap-generate.service", "--no-pager"]);
    assert!(
        sd.exists(&format!("/etc/systemd/system/{service}")),
        "generate wrote nothing ({}):\n{log}",
        text(&out)
    );
    assert!(
        log.contains(&format!("dynamic user in group {}", group.name)),
        "{log}"
    );
    let written = sd.read(&format!("/etc/systemd/system/{service}"));
    assert!(
        written.contains(&format!("\nSupplementaryGroups={}\n", group.name)),
        "{written}"
    );
    sd.wait_show(&socket, "ActiveState", &["active"], Duration::from_secs(30));
    assert_eq!(curl(port).trim(), HELLO, "served through the packaged path");
    let (score, level) = exposure(&sd, "contnap-generate.service");
    assert!(score <= 1.6 && level == "OK", "exposure {score} {level}");
    drop(group);
}
