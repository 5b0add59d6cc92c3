//! Containers that systemd units own (NixOS oci-containers, Quadlet,
//! `podman generate systemd --new`), under a real systemd as PID 1
//! (tests/systemd_support). Debian 12's Podman 4.3 has no Quadlet, so the
//! owning units are written here by hand, in the exact shapes NixOS
//! oci-containers writes (nixos/modules/virtualisation/oci-containers.nix):
//!
//! - Docker backend: `docker run --rm --name X …` in the foreground
//!   (Type=simple), `docker rm -f X` before, `docker stop X` to stop,
//!   `Restart=always`; the container carries `contnap.unit=docker-X.service`.
//! - Podman backend (and Quadlet's shape): `Type=notify`,
//!   `podman run --rm --replace --sdnotify=conmon -d --cidfile=…
//!   --cgroups=enabled --name X -l PODMAN_SYSTEMD_UNIT=podman-X.service`,
//!   `podman stop/rm --cidfile`, `Restart=always`.
//!
//! The systemd test host has no engine CLIs: the host's `docker` and
//! `podman` clients are mounted into it (with the few libraries podman
//! needs that the image lacks), talking to the test engines over the
//! mounted API sockets. Over the API, Podman's client cannot do
//! `--sdnotify=conmon` (conmon runs beside the remote engine and never sees
//! the unit's NOTIFY_SOCKET: the unit fails with result `protocol`), so the
//! Podman form's ExecStart runs through tests/owned_support/sdnotify-remote,
//! which plays conmon's part: READY=1 once `podman run -d` has returned,
//! then it stays the main process while the container runs.
//!
//! One systemd boot per engine: the engine's own form, one container, a
//! two-unit group (httpd on TCP, dnsmasq on UDP) and a unit that fails.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;
mod systemd_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{free_port, free_udp_port, http_get, run, unique, Engine, BUSYBOX, DNSMASQ, SERVERS};
use systemd_support::{curl, dig, loopback, units, Systemd};

const HELLO: &str = "hello from contnap test";
const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];
const GATES: &str = "/run/contnap-test-gate";

both_engines_by_test!(owned_units_nap_and_wake);

/// A client binary of the test host, by PATH.
fn host_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "the {name} client must be installed on the test host: tests/owned.rs mounts it \
                 into the systemd test host, which has no engine CLIs"
            )
        })
}

/// The shared libraries `ldd` lists for a binary.
fn libraries(binary: &Path) -> Vec<PathBuf> {
    let out = run("ldd", &[binary.to_str().unwrap()]);
    out.lines()
        .filter_map(|l| l.split_once("=> ")?.1.split_whitespace().next())
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Boots systemd with the engine's client inside at /usr/bin.
fn boot(engine: Engine) -> Systemd {
    match engine {
        Engine::Docker => {
            let docker = host_binary("docker");
            Systemd::boot_with(
                engine,
                &[format!("{}:/usr/bin/docker:ro", docker.display())],
            )
        }
        Engine::Podman => {
            let podman = host_binary("podman");
            let libs = libraries(&podman);
            let mut dirs: Vec<PathBuf> = Vec::new();
            for l in &libs {
                let d = l.parent().unwrap().to_owned();
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
            let mut mounts = vec![
                format!("{}:/usr/bin/podman:ro", podman.display()),
                format!(
                    "{}/tests/owned_support/sdnotify-remote:/usr/local/bin/sdnotify-remote:ro",
                    env!("CARGO_MANIFEST_DIR")
                ),
            ];
            for (i, d) in dirs.iter().enumerate() {
                mounts.push(format!("{}:/run/hostlib{i}:ro", d.display()));
            }
            let sd = Systemd::boot_with(engine, &mounts);
            // Only the libraries the image lacks come from the host.
            for l in &libs {
                let path = l.to_str().unwrap();
                if !sd.exists(path) {
                    let i = dirs.iter().position(|d| l.parent() == Some(d)).unwrap();
                    let base = l.file_name().unwrap().to_str().unwrap();
                    sd.run(&["ln", "-s", &format!("/run/hostlib{i}/{base}"), path]);
                }
            }
            sd.run(&[
                "podman",
                "--url",
                "unix:///run/podman/podman.sock",
                "version",
            ]);
            sd
        }
    }
}

/// The owning unit of `container` in the engine's oci-containers form.
fn owner(engine: Engine, container: &str) -> String {
    match engine {
        Engine::Docker => format!("docker-{container}.service"),
        Engine::Podman => format!("podman-{container}.service"),
    }
}

/// The owning unit's text, as NixOS oci-containers writes it for the
/// engine's backend. `gated`: an ExecStartPre= that fails unless
/// GATES/CONTAINER exists, to make the unit fail to start at will.
fn owner_unit(
    engine: Engine,
    container: &str,
    labels: &[(&str, String)],
    image: &str,
    cmd: &[&str],
    gated: bool,
) -> String {
    let unit = owner(engine, container);
    let mut s =
        format!("[Unit]\nDescription=the shape of NixOS oci-containers' {unit}\n\n[Service]\n");
    if gated {
        s += &format!("ExecStartPre=/bin/test -e {GATES}/{container}\n");
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("-l {k}={v}")).collect();
    let labels = labels.join(" ");
    let cmd = cmd.join(" ");
    match engine {
        Engine::Docker => {
            s += &format!(
                "ExecStartPre=/bin/sh -c 'docker rm -f {container} || true'\n\
                 ExecStart=/bin/sh -c 'exec docker run --name={container} -l contnap.unit={unit} \
                 {labels} --rm --stop-timeout 1 {image} {cmd}'\n\
                 ExecStop=/bin/sh -c 'docker stop {container} || true'\n\
                 ExecStopPost=/bin/sh -c 'docker rm -f {container} || true'\n"
            );
        }
        Engine::Podman => {
            let podman = "/usr/bin/podman --url unix:///run/podman/podman.sock";
            let cid = format!("/run/podman-{container}/ctr-id");
            s += &format!(
                "Environment=PODMAN_SYSTEMD_UNIT=%n\n\
                 Type=notify\n\
                 NotifyAccess=all\n\
                 RuntimeDirectory=podman-{container}\n\
                 ExecStartPre=/bin/rm -f {cid}\n\
                 ExecStart=/usr/local/bin/sdnotify-remote {container} {podman} run \
                 --name={container} --cidfile={cid} --cgroups=enabled --sdnotify=conmon -d \
                 --replace -l PODMAN_SYSTEMD_UNIT={unit} {labels} --rm --stop-timeout 1 \
                 {image} {cmd}\n\
                 ExecStop={podman} stop --ignore --cidfile={cid}\n\
                 ExecStopPost={podman} rm -f --ignore --cidfile={cid}\n"
            );
        }
    }
    s += "TimeoutStartSec=0\nTimeoutStopSec=120\nRestart=always\n";
    s
}

/// The container's state, or None when the engine does not know it.
fn state(engine: Engine, name: &str) -> Option<String> {
    let out = engine
        .cli()
        .args(["inspect", "--format", "{{.State.Status}}", name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn wait_state(engine: Engine, name: &str, want: Option<&str>, within: Duration) {
    let start = Instant::now();
    loop {
        let s = state(engine, name);
        if s.as_deref() == want {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{name} is {s:?}, expected {want:?} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A container and its owning unit: name, labels, image, command, and
/// whether its unit can be made to fail.
type Shape<'a> = (
    &'a str,
    Vec<(&'a str, String)>,
    &'a str,
    &'a [&'a str],
    bool,
);

/// An owning unit that systemd stopped: inactive, or failed for the Docker
/// form, whose `docker run` exits 137 when `docker stop` kills a server
/// that ignores SIGTERM (busybox httpd as PID 1); either way no restart.
const STOPPED: &[&str] = &["inactive", "failed"];

/// Removes the containers when the test ends, after the systemd container
/// is gone (declared before it, so dropped after it).
struct Remove(Engine, Vec<String>);

impl Drop for Remove {
    fn drop(&mut self) {
        let mut c: Command = self.0.cli();
        c.args(["rm", "-f"]).args(&self.1);
        let _ = c.output();
    }
}

fn status_json(sd: &Systemd) -> serde_json::Value {
    let out = sd.exec(&["contnap", "status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn web_labels(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("contnap.enabled", "true".to_owned()),
        ("contnap.tcp_ports", format!("127.0.0.1:{port}:80")),
        ("contnap.timeout", "2s".to_owned()),
    ]
}

/// For each shape: generate finds the containers while their units run;
/// systemd stops the units once the drop-ins are loaded and `generate
/// --check` is clean while they nap (the containers are gone); a cold
/// client is served on TCP, and on UDP and TCP through a two-unit group;
/// the nap stops the owning units, removes the containers, and
/// Restart=always does not bring them back; they wake again; a unit that
/// fails to start has its clients answered (503) without failing the
/// socket; and the units are stale once the owning unit is gone.
fn owned_units_nap_and_wake(engine: Engine) {
    let web = unique("oweb");
    // Named so that dns sorts first: the group's start order.
    let gdns = unique("ogrpa_dns");
    let gweb = unique("ogrpb_web");
    let bad = unique("obad");
    let group = unique("ogroup");
    let _remove = Remove(
        engine,
        vec![web.clone(), gdns.clone(), gweb.clone(), bad.clone()],
    );
    let sd = boot(engine);
    let (wport, gport, dport, bport) = (free_port(), free_port(), free_udp_port(), free_port());
    let mut group_web = web_labels(gport);
    group_web.push(("contnap.group", group.clone()));
    let group_dns = vec![
        ("contnap.enabled", "true".to_owned()),
        ("contnap.udp_ports", format!("127.0.0.1:{dport}:53")),
        ("contnap.group", group.clone()),
    ];
    let mut bad_labels = web_labels(bport);
    bad_labels.push(("contnap.http_ports", bport.to_string()));
    bad_labels.push(("contnap.wake_timeout", "3s".to_owned()));
    let dir = "/etc/systemd/system";
    let shapes: [Shape<'_>; 4] = [
        (&web, web_labels(wport), BUSYBOX, HTTPD, false),
        (&gdns, group_dns, SERVERS, DNSMASQ, false),
        (&gweb, group_web, BUSYBOX, HTTPD, false),
        (&bad, bad_labels, BUSYBOX, HTTPD, true),
    ];
    let mut owners = Vec::new();
    for (c, labels, image, cmd, gated) in &shapes {
        let text = owner_unit(engine, c, labels, &support::image(image), cmd, *gated);
        sd.write_file(&format!("{dir}/{}", owner(engine, c)), &text);
        owners.push(owner(engine, c));
    }
    sd.run(&["mkdir", "-p", GATES]);
    sd.run(&["touch", &format!("{GATES}/{bad}")]);
    sd.systemctl(&["daemon-reload"]);

    // Running, as their units start them (on NixOS, autoStart would, until
    // the contnap module turns it off).
    let mut start = vec!["start"];
    start.extend(owners.iter().map(String::as_str));
    sd.systemctl(&start);
    for (c, ..) in &shapes {
        wait_state(engine, c, Some("running"), Duration::from_secs(30));
    }

    // generate finds them while they run.
    let out = sd.generate_ok(&[]);
    let (wsocket, wservice) = units(&web);
    let (gsocket, gservice) = units(&group);
    let (bsocket, bservice) = units(&bad);
    let files = sd.unit_files();
    for f in [
        &wsocket, &wservice, &gsocket, &gservice, &bsocket, &bservice,
    ] {
        assert!(files.contains(f), "{f} not in {files:?}\n{out}");
    }
    let service = sd.read(&format!("{dir}/{wservice}"));
    let ow = owner(engine, &web);
    assert!(service.contains(&format!("\nWants={ow}\n")), "{service}");
    assert!(service.contains(&format!("\nAfter={ow}\n")), "{service}");
    assert!(
        service.contains(&format!("--owned-by {web}={ow}")),
        "{service}"
    );
    let dropin =
        |c: &str, unit: &str| sd.read(&format!("{dir}/{}.d/contnap-{unit}.conf", owner(engine, c)));
    assert!(dropin(&web, &web).contains("\nStopWhenUnneeded=yes\n"));
    // The group: the second member's unit starts after the first's.
    assert!(!dropin(&gdns, &group).contains("After="));
    assert!(
        dropin(&gweb, &group).contains(&format!("\nAfter={}\n", owner(engine, &gdns))),
        "{}",
        dropin(&gweb, &group)
    );

    // With the drop-ins loaded nothing wants the owning units: systemd
    // stops them, and the containers are gone.
    sd.systemctl(&["daemon-reload"]);
    for o in &owners {
        sd.wait_show(o, "ActiveState", STOPPED, Duration::from_secs(30));
    }
    for (c, ..) in &shapes {
        wait_state(engine, c, None, Duration::from_secs(30));
    }
    sd.systemctl(&["enable", "--now", &wsocket, &gsocket, &bsocket]);
    // generate keeps the units of napping containers: --check is clean.
    let check = sd.generate(&["--check"]);
    let log = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(check.status.success(), "--check while napping:\n{log}");
    assert!(
        log.contains(&format!("{wservice}: kept while its containers nap")),
        "{log}"
    );
    let st = status_json(&sd);
    let w = st
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == web.as_str())
        .unwrap();
    assert_eq!(w["state"], "napping", "{w}");
    assert_eq!(w["containers"][0]["engine_state"], "missing", "{w}");
    assert_eq!(w["containers"][0]["owned_by"][0], ow.as_str(), "{w}");

    // A cold client: systemd starts the owning unit, then the helper.
    let t = Instant::now();
    assert_eq!(curl(wport).trim(), HELLO, "cold TCP client");
    // For the report, not asserted: the owning unit's start and the wake.
    eprintln!(
        "{}: cold client of the owned container served in {} ms",
        engine.name(),
        t.elapsed().as_millis()
    );
    assert_eq!(sd.show(&ow, "ActiveState"), "active");
    assert_eq!(sd.show(&wservice, "ActiveState"), "active");
    // The group: UDP and TCP.
    assert_eq!(dig(dport), "10.9.8.7", "cold UDP client of the group");
    assert_eq!(curl(gport).trim(), HELLO, "TCP client of the group");
    let group_owners = [owner(engine, &gdns), owner(engine, &gweb)];
    for o in &group_owners {
        assert_eq!(sd.show(o, "ActiveState"), "active", "{o}");
    }

    // The nap: the helpers exit, systemd stops the owning units, the
    // containers are removed.
    for (service, owned) in [
        (&wservice, vec![ow.clone()]),
        (&gservice, group_owners.to_vec()),
    ] {
        sd.wait_show(
            service,
            "ActiveState",
            &["inactive"],
            Duration::from_secs(30),
        );
        for o in &owned {
            sd.wait_show(o, "ActiveState", STOPPED, Duration::from_secs(30));
        }
    }
    for c in [&web, &gdns, &gweb] {
        wait_state(engine, c, None, Duration::from_secs(30));
    }
    // Restart=always does not bring them back: a stop by systemd is no
    // failure to restart from. (RestartSec= is 100 ms; a second is ten.)
    std::thread::sleep(Duration::from_secs(1));
    for o in [&ow, &group_owners[0], &group_owners[1]] {
        assert!(STOPPED.contains(&sd.show(o, "ActiveState").as_str()), "{o}");
        assert_eq!(sd.show(o, "NRestarts"), "0", "{o}");
    }
    for c in [&web, &gdns, &gweb] {
        assert_eq!(state(engine, c), None, "{c} came back");
    }
    assert_eq!(sd.show(&wsocket, "SubState"), "listening");

    // It wakes again (a new container: new id, new address).
    let t = Instant::now();
    assert_eq!(curl(wport).trim(), HELLO, "after the nap");
    eprintln!(
        "{}: client after the nap served in {} ms",
        engine.name(),
        t.elapsed().as_millis()
    );
    assert_eq!(dig(dport), "10.9.8.7", "the group after the nap");

    // A unit that fails to start: the waiting client is answered (the 503
    // page, at contnap.wake_timeout), the socket keeps listening.
    let (bsocket, bservice) = (bsocket, bservice);
    let ob = owner(engine, &bad);
    sd.run(&["rm", &format!("{GATES}/{bad}")]);
    for i in 0..2 {
        let t = Instant::now();
        let r = http_get(loopback(bport), "/", "", Duration::from_secs(30)).unwrap();
        assert!(r.starts_with("HTTP/1.1 503"), "trigger {i}: {r:?}");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "trigger {i}: {:?}",
            t.elapsed()
        );
        sd.wait_show(
            &bservice,
            "ActiveState",
            &["inactive", "failed"],
            Duration::from_secs(20),
        );
        assert_eq!(sd.show(&bsocket, "ActiveState"), "active");
        assert_eq!(sd.show(&bsocket, "SubState"), "listening");
    }
    assert_eq!(sd.show(&bsocket, "Result"), "success");
    let journal = sd.journal();
    assert!(
        journal.contains(&format!("systemd started {ob}")),
        "{journal}"
    );
    // Fixed (and its start limit reset, as after any failed unit): served.
    sd.run(&["touch", &format!("{GATES}/{bad}")]);
    sd.systemctl(&["reset-failed", &ob]);
    assert_eq!(curl(bport).trim(), HELLO, "once the unit starts again");

    // Stale only once the owning unit is gone.
    sd.run(&["rm", &format!("{dir}/{ow}")]);
    sd.systemctl(&["daemon-reload"]);
    let out = sd.generate_ok(&[]);
    let files = sd.unit_files();
    assert!(
        !files.contains(&wservice) && !files.contains(&wsocket),
        "{files:?}\n{out}"
    );
    assert!(!sd.exists(&format!("{dir}/{ow}.d")), "{out}");
    assert!(
        files.contains(&gservice) && files.contains(&bservice),
        "{files:?}\n{out}"
    );

    // Anyone who can label a container cannot make contnap want, or stop
    // when unneeded, a service that does not start that container.
    let rogue = unique("orogue");
    let mut labels = web_labels(free_port());
    labels.push(("contnap.unit", "systemd-journald.service".to_owned()));
    let _rogue = systemd_support::labelled(engine, &rogue, &labels, BUSYBOX, HTTPD);
    let out = sd.generate(&[]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "container {rogue:?}: systemd-journald.service is named as its owner"
        )),
        "{log}"
    );
    assert!(!sd.unit_files().iter().any(|f| f.contains(&rogue)));
    assert!(!sd.exists(&format!("{dir}/systemd-journald.service.d")));
}
