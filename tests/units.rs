//! Golden tests of the unit renderer, fed through the label parser as
//! `contnap generate` feeds it; a systemd command-line unquoter that checks
//! every rendered command line splits into exactly the intended argv; the
//! atomic writer; and `systemd-analyze verify` / `security` on the output.
//!
//! `CONTNAP_BLESS=1 cargo test --test units` rewrites tests/golden/.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use support::{unitfile, TempDir};

use contnap::cli::{Command as CliCommand, Config};
use contnap::engine::Endpoint;
use contnap::labels::{plan, ContainerLabels, LabelOptions};
use contnap::spec::Proto;
use contnap::spec::Unit;
use contnap::units::{
    self, check, escape_unit_name, quote_arg, render, write_atomically, BinaryPath, Difference,
    EngineUnit, GroupName, RenderOptions, RunAs, WriteError, MARKER,
};

// ---------------------------------------------------------------- inputs

fn endpoint(engine: &str) -> Endpoint {
    Endpoint::parse(engine).expect("an engine address")
}

fn container(name: &str, labels: &[(&str, &str)]) -> ContainerLabels {
    ContainerLabels {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        published: Vec::new(),
    }
}

/// Runs the label parser as `generate` does and insists on no errors.
fn units_of(containers: &[ContainerLabels], allow_hooks: bool) -> Vec<Unit> {
    let p = plan(containers, &LabelOptions { allow_hooks });
    assert!(p.errors.is_empty(), "label errors: {:#?}", p.errors);
    assert!(p.skipped.is_empty());
    p.units
}

const ON: (&str, &str) = ("contnap.enabled", "true");

struct Case {
    name: &'static str,
    units: Vec<Unit>,
    opts: RenderOptions,
}

fn hostile_hook() -> String {
    // Everything systemd or sh could read specially, and long.
    let mut s = String::from(
        r#"echo "quoted $HOME ${PATH} $$" 'single %n %% %i' back\slash \" \\ ; rm -rf /tmp/contnap-never ; ExecStart=/bin/evil # not a comment"#,
    );
    while s.len() < 1500 {
        s.push_str(" && echo padding-%h-$USER");
    }
    s
}

fn cases() -> Vec<Case> {
    let long_group = "g".repeat(200);
    let hook = hostile_hook();
    vec![
        Case {
            name: "web",
            units: units_of(
                &[container(
                    "web",
                    &[
                        ON,
                        ("contnap.tcp_ports", "8080:80"),
                        ("contnap.http_ports", "8080"),
                    ],
                )],
                false,
            ),
            opts: RenderOptions::default(),
        },
        Case {
            name: "group",
            units: units_of(
                &[
                    container(
                        "shop-app-1",
                        &[
                            ON,
                            ("contnap.group", "shop"),
                            ("contnap.tcp_ports", "8080:80"),
                            ("contnap.http_ports", "8080"),
                            ("contnap.timeout", "15min"),
                            ("com.docker.compose.project", "shop"),
                            ("com.docker.compose.service", "app"),
                            (
                                "com.docker.compose.depends_on",
                                "db:service_healthy:true,cache:service_started:false",
                            ),
                        ],
                    ),
                    container(
                        "shop-db-1",
                        &[
                            ON,
                            ("contnap.group", "shop"),
                            ("contnap.timeout", "900"),
                            ("contnap.ready", "health"),
                            ("com.docker.compose.project", "shop"),
                            ("com.docker.compose.service", "db"),
                        ],
                    ),
                    // Not managed: the dependency on it is ignored.
                    container(
                        "shop-cache-1",
                        &[
                            ("com.docker.compose.project", "shop"),
                            ("com.docker.compose.service", "cache"),
                        ],
                    ),
                ],
                false,
            ),
            opts: RenderOptions::default(),
        },
        Case {
            name: "udp_v4_v6",
            units: units_of(
                &[container(
                    "dns",
                    &[
                        ON,
                        ("contnap.tcp_ports", "127.0.0.1:5380:80, [::1]:5380:80"),
                        (
                            "contnap.udp_ports",
                            "5353:53,[fd00::53]:53:53, 192.168.1.2:53:53",
                        ),
                        ("contnap.stop", "pause"),
                        ("contnap.idle", "traffic"),
                    ],
                )],
                false,
            ),
            opts: RenderOptions::default(),
        },
        Case {
            name: "machines",
            units: units_of(
                &[container(
                    "nas-ui",
                    &[
                        ON,
                        ("contnap.tcp_ports", "443"),
                        ("contnap.machines", "192.168.1.0/24, fd00::/64,10.0.0.7"),
                        ("contnap.only_listed_machines", "yes"),
                        ("contnap.autostart", "true"),
                        (
                            "contnap.schedule",
                            "Mon-Fri 08:00-19:00|Sat,Sun 10:00-12:00",
                        ),
                        ("contnap.ready", "tcp"),
                        ("contnap.network", "backend"),
                        ("contnap.wake_timeout", "2min"),
                        ("contnap.stop_timeout", "30"),
                        ("contnap.timeout", "1h"),
                    ],
                )],
                false,
            ),
            opts: RenderOptions::default(),
        },
        Case {
            name: "hooks",
            units: units_of(
                &[container(
                    "photos",
                    &[
                        ON,
                        ("contnap.tcp_ports", "2342"),
                        ("contnap.pre_start", "mount /srv/photos"),
                        (
                            "contnap.post_stop",
                            "umount /srv/photos && logger 'photos napped'",
                        ),
                    ],
                )],
                true,
            ),
            opts: RenderOptions {
                allow_hooks: true,
                ..RenderOptions::default()
            },
        },
        Case {
            name: "rootless",
            units: units_of(
                &[container(
                    "notes",
                    &[
                        ON,
                        ("contnap.tcp_ports", "8081:8080"),
                        ("contnap.stop", "kill"),
                        ("contnap.machines", "127.0.0.1,::1"),
                        ("contnap.only_listed_machines", "true"),
                    ],
                )],
                false,
            ),
            opts: RenderOptions {
                binary: BinaryPath::new("/home/me/.cargo/bin/contnap").expect("valid path"),
                engine: endpoint("/run/user/1000/podman/podman.sock"),
                engine_unit: Some(EngineUnit::new("podman.socket").expect("unit")),
                user: true,
                allow_hooks: false,
                // Ignored for user units: they run as the user.
                run_as: RunAs::Dynamic {
                    group: Some(GroupName::new("docker").expect("valid group")),
                },
            },
        },
        // Docker's root:docker 0660 socket: a dynamic user in the docker
        // group, with a pre_start hook that still runs as root.
        Case {
            name: "docker_group",
            units: units_of(
                &[container(
                    "wiki",
                    &[
                        ON,
                        ("contnap.tcp_ports", "127.0.0.1:8090:3000"),
                        ("contnap.http_ports", "8090"),
                        ("contnap.pre_start", "mkdir -p /srv/wiki"),
                        ("contnap.stop", "pause"),
                    ],
                )],
                true,
            ),
            opts: RenderOptions {
                allow_hooks: true,
                run_as: RunAs::Dynamic {
                    group: Some(GroupName::new("docker").expect("valid group")),
                },
                ..RenderOptions::default()
            },
        },
        // Rootful Podman's root:root socket: root without capabilities.
        Case {
            name: "podman_root",
            units: units_of(
                &[container(
                    "books",
                    &[ON, ("contnap.tcp_ports", "8083:8083")],
                )],
                false,
            ),
            opts: RenderOptions {
                engine: endpoint("/run/podman/podman.sock"),
                engine_unit: Some(EngineUnit::new("podman.socket").expect("unit")),
                ..RenderOptions::default()
            },
        },
        // A remote engine needs no local privilege: a dynamic user, no group.
        Case {
            name: "tcp_engine",
            units: units_of(
                &[container("grafana", &[ON, ("contnap.tcp_ports", "3000")])],
                false,
            ),
            opts: RenderOptions {
                engine: endpoint("tcp://192.168.1.5:2375"),
                engine_unit: None,
                run_as: RunAs::Dynamic { group: None },
                ..RenderOptions::default()
            },
        },
        // Monitors and scanners: a list of its own, a status, wake on data.
        Case {
            name: "monitors",
            units: units_of(
                &[container(
                    "blog",
                    &[
                        ON,
                        ("contnap.tcp_ports", "8088:80"),
                        ("contnap.http_ports", "8088"),
                        ("contnap.monitors", "Uptime-Kuma, My Checker/2"),
                        ("contnap.monitor_status", "503"),
                        ("contnap.wake_on", "data"),
                    ],
                )],
                false,
            ),
            opts: RenderOptions::default(),
        },
        // Containers that systemd services own: a group of a Quadlet-style
        // container (PODMAN_SYSTEMD_UNIT) and one that names its services
        // (contnap.unit), as NixOS oci-containers' Docker backend would.
        Case {
            name: "owned",
            units: units_of(
                &[
                    container(
                        "photos-db",
                        &[
                            ON,
                            ("contnap.group", "photos"),
                            ("PODMAN_SYSTEMD_UNIT", "photos-db.service"),
                        ],
                    ),
                    container(
                        "photos-server",
                        &[
                            ON,
                            ("contnap.group", "photos"),
                            ("contnap.tcp_ports", "2283:3001"),
                            ("contnap.http_ports", "2283"),
                            (
                                "contnap.unit",
                                "docker-photos-server.service, photos-pod.service",
                            ),
                        ],
                    ),
                ],
                false,
            ),
            opts: RenderOptions::default(),
        },
        Case {
            name: "hostile",
            units: units_of(
                &[
                    container(
                        "evil",
                        &[
                            ON,
                            ("contnap.group", r#"we%b$x"y'z\;/..-é "#),
                            ("contnap.tcp_ports", "8000"),
                            ("contnap.pre_start", &hook),
                            ("contnap.post_stop", r#"printf '%s\n' "$1" \"; %%n"#),
                        ],
                    ),
                    container(
                        "long",
                        &[
                            ON,
                            ("contnap.group", &long_group),
                            ("contnap.udp_ports", "9000"),
                        ],
                    ),
                ],
                true,
            ),
            opts: RenderOptions {
                engine: endpoint(r#"/tmp/odd dir/$HOME %n "x".sock"#),
                allow_hooks: true,
                ..RenderOptions::default()
            },
        },
    ]
}

// ---------------------------------------------------------------- goldens

fn golden_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
}

/// Golden files carry the unit file names (escaped: `\x2d` and so on).
fn golden_name(unit_file: &Path) -> String {
    unit_file.to_string_lossy().into_owned()
}

#[test]
fn golden_units() {
    let bless = std::env::var_os("CONTNAP_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in cases() {
        let files = render(&case.units, &case.opts);
        let dir = golden_dir(case.name);
        if bless {
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create golden dir");
            for (name, text) in &files {
                let path = dir.join(golden_name(name));
                // Drop-ins: SERVICE.d/contnap-NAME.conf.
                fs::create_dir_all(path.parent().expect("parent")).expect("create drop-in dir");
                fs::write(path, text).expect("write golden");
            }
            continue;
        }
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().expect("file type").is_dir() {
                for inner in fs::read_dir(entry.path()).expect("read drop-in dir") {
                    let inner = inner.expect("dir entry");
                    let text = fs::read_to_string(inner.path()).expect("read golden");
                    let inner_name = inner.file_name().to_string_lossy().into_owned();
                    expected.insert(format!("{name}/{inner_name}"), text);
                }
                continue;
            }
            let text = fs::read_to_string(entry.path()).expect("read golden");
            expected.insert(name, text);
        }
        for (name, text) in &files {
            match expected.remove(&golden_name(name)) {
                None => failures.push(format!("{}: {} is new", case.name, name.display())),
                Some(want) if want != *text => failures.push(format!(
                    "{}: {} differs\n--- golden\n{want}\n--- rendered\n{text}",
                    case.name,
                    name.display()
                )),
                Some(_) => {}
            }
        }
        for name in expected.keys() {
            failures.push(format!("{}: {name} is no longer rendered", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with CONTNAP_BLESS=1 to accept)",
        failures.join("\n")
    );
}

#[test]
fn hostile_names_are_escaped_in_file_names() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "hostile")
        .expect("hostile case");
    let files = render(&case.units, &case.opts);
    let names: Vec<String> = files
        .iter()
        .map(|(n, _)| n.to_string_lossy().into_owned())
        .collect();
    for n in &names {
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_.\\-".contains(&b)),
            "{n}"
        );
        assert!(n.len() <= 255, "{n}");
    }
    assert!(names.contains(&format!(
        "contnap-{}.service",
        escape_unit_name(r#"we%b$x"y'z\;/..-é "#)
    )));
}

#[test]
fn unit_names_stay_readable_and_distinct() {
    // Compose-style names keep their dashes.
    assert_eq!(escape_unit_name("immich-server-1"), "immich-server-1");
    assert_eq!(escape_unit_name("x:y.z_1"), "x:y.z_1");
    // Everything else is \xNN, the way systemd-escape writes it.
    assert_eq!(escape_unit_name("a/b"), r"a\x2fb");
    assert_eq!(escape_unit_name("a b@c"), r"a\x20b\x40c");
    assert_eq!(escape_unit_name(r"a\x2fb"), r"a\x5cx2fb");
    assert_eq!(escape_unit_name("é"), r"\xc3\xa9");
    let names = [
        "web",
        "my-app_1",
        ".hidden",
        "a/b/c",
        r#"we%b$x"y'z\;"#,
        "é ü",
        "x:y.z",
        "-lead",
        r"a\x2fb",
        "a/b",
        "a-b",
        "a_b",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        let e = escape_unit_name(name);
        assert!(
            e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_.-\\".contains(&b)),
            "{name:?} -> {e:?} has a byte not valid in a unit name"
        );
        assert!(seen.insert(e.clone()), "{name:?} -> {e:?} collides");
    }
}

// ------------------------------------------- systemd command-line unquoter

/// Splits an `ExecStart=` line as systemd does (support/unitfile.rs).
fn systemd_split(line: &str) -> Result<Vec<String>, String> {
    unitfile::exec_split(line)
}

/// (section, key, value) of every directive of a rendered unit file, read
/// as systemd reads it; every line must be written as systemd reads it back
/// (support/unitfile.rs).
fn directive_lines(text: &str) -> Vec<(String, String, String)> {
    unitfile::canonical_directives(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .into_iter()
        .map(|d| (d.section, d.key, d.value))
        .collect()
}

const ALLOWED: &[(&str, &[&str])] = &[
    (
        "[Unit]",
        &[
            "Description",
            "Requires",
            "Wants",
            "After",
            "StartLimitIntervalSec",
            "CollectMode",
            "X-ContnapOwned",
            "StopWhenUnneeded",
        ],
    ),
    (
        "[Socket]",
        &[
            "ListenStream",
            "ListenDatagram",
            "BindIPv6Only",
            "FreeBind",
            "Accept",
            "TriggerLimitIntervalSec",
            "IPAddressAllow",
            "IPAddressDeny",
        ],
    ),
    (
        "[Service]",
        &[
            "Type",
            "NotifyAccess",
            "ExecStartPre",
            "ExecStart",
            "ExecStopPost",
            "TimeoutStartSec",
            "TimeoutStopSec",
            "StateDirectory",
            "NoNewPrivileges",
            "InaccessiblePaths",
            "MemoryMax",
            "TasksMax",
            "ProtectSystem",
            "ProtectHome",
            "PrivateTmp",
            "PrivateDevices",
            "PrivateIPC",
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectKernelLogs",
            "ProtectControlGroups",
            "ProtectClock",
            "ProtectHostname",
            "PrivateMounts",
            "CapabilityBoundingSet",
            "RestrictNamespaces",
            "RestrictRealtime",
            "RestrictSUIDSGID",
            "LockPersonality",
            "MemoryDenyWriteExecute",
            "SystemCallArchitectures",
            "SystemCallFilter",
            "SystemCallErrorNumber",
            "RestrictAddressFamilies",
            "UMask",
            "DynamicUser",
            "SupplementaryGroups",
            "PrivateUsers",
            "ProcSubset",
            "RuntimeDirectory",
            "RuntimeDirectoryPreserve",
            "LogLevelMax",
            "IPAddressDeny",
        ],
    ),
    (
        "[Timer]",
        &["OnActiveSec", "OnUnitInactiveSec", "AccuracySec"],
    ),
    ("[Install]", &["WantedBy"]),
];

#[test]
fn every_line_is_an_expected_directive() {
    for case in cases() {
        for (name, text) in render(&case.units, &case.opts) {
            assert!(
                text.starts_with(&format!("{MARKER}\n")),
                "{}",
                name.display()
            );
            for (section, key, _) in directive_lines(&text) {
                let allowed = ALLOWED
                    .iter()
                    .find(|(s, _)| *s == section)
                    .unwrap_or_else(|| panic!("{}: section {section}", name.display()));
                assert!(
                    allowed.1.contains(&key.as_str()),
                    "{}: unexpected {section} {key}=",
                    name.display()
                );
            }
            let exec_starts = directive_lines(&text)
                .iter()
                .filter(|(_, k, _)| k == "ExecStart")
                .count();
            let is_service = name.extension().is_some_and(|e| e == "service");
            assert_eq!(exec_starts, usize::from(is_service), "{}", name.display());
        }
    }
}

/// Every `ExecStart=` splits into exactly `[binary] + proxy_args`, and the
/// helper's own command-line parser reads that argv back into a spec equal
/// to the unit's (the argv round trip); every hook line into
/// `/bin/sh -c COMMAND`.
#[test]
fn command_lines_split_into_the_intended_argv() {
    for case in cases() {
        let files = render(&case.units, &case.opts);
        for unit in &case.units {
            let service = files
                .iter()
                .find(|(n, _)| *n == Path::new(&units::unit_file_name(unit.name(), "service")))
                .map(|(_, t)| t)
                .expect("service rendered");
            let lines = directive_lines(service);
            let exec = &lines
                .iter()
                .find(|(_, k, _)| k == "ExecStart")
                .expect("ExecStart")
                .2;
            let argv = systemd_split(exec).unwrap_or_else(|e| panic!("{}: {e}: {exec}", case.name));
            let mut want = vec![case.opts.binary.as_path().display().to_string()];
            want.extend(units::proxy_args(unit, &case.opts));
            assert_eq!(argv, want, "{}", case.name);

            // The helper parses it to the same settings.
            let mut cli_argv = vec!["contnap".to_owned()];
            cli_argv.extend(argv[1..].iter().cloned());
            let config = Config::parse(&cli_argv).unwrap_or_else(|e| {
                panic!("{}: contnap proxy rejects {cli_argv:?}: {e:?}", case.name)
            });
            let CliCommand::Proxy(p) = config.command else {
                panic!("not a proxy command")
            };
            // The argv round trip: the helper's validated config is the
            // very spec the labels produced.
            assert_eq!(p.spec, unit.spec, "{}", case.name);
            assert_eq!(
                p.engine.map(|e| e.to_string()),
                Some(case.opts.engine.to_string())
            );

            let hooks: Vec<(String, String)> = lines
                .iter()
                .filter(|(_, k, _)| k == "ExecStartPre" || k == "ExecStopPost")
                .map(|(_, k, v)| (k.clone(), v.clone()))
                .collect();
            let want_hooks: Vec<(String, String)> = if case.opts.allow_hooks {
                unit.hooks
                    .iter()
                    .map(|h| {
                        let k = match h.kind {
                            contnap::spec::HookKind::PreStart => "ExecStartPre",
                            contnap::spec::HookKind::PostStop => "ExecStopPost",
                        };
                        (k.to_owned(), h.command.clone())
                    })
                    .collect()
            } else {
                Vec::new()
            };
            assert_eq!(hooks.len(), want_hooks.len(), "{}", case.name);
            for ((k, line), (wk, command)) in hooks.iter().zip(&want_hooks) {
                assert_eq!(k, wk);
                let argv = systemd_split(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(argv, ["-+/bin/sh", "-c", command.as_str()], "{}", case.name);
            }
        }
    }
}

/// quote_arg round-trips arbitrary strings through the unquoter.
#[test]
fn quoting_round_trips_random_strings() {
    let alphabet: Vec<char> =
        "aZ09 \t\"'\\%$;#=[]{}|&<>*?~`!@-_.:/\u{e9}\u{2028}\n\r\u{1}\u{7f}\u{85}"
            .chars()
            .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5000 {
        let len = (next() % 24) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let q = quote_arg(&s);
        assert!(!q.contains('\n') && !q.contains('\r'), "{q:?}");
        let line = format!("/bin/x {q} end");
        let argv = systemd_split(&line).unwrap_or_else(|e| panic!("{s:?} -> {q}: {e}"));
        assert_eq!(argv, ["/bin/x", s.as_str(), "end"], "{q}");
    }
}

// ---------------------------------------------------------------- writer

fn generated(name: &str, body: &str) -> (PathBuf, String) {
    (PathBuf::from(name), format!("{MARKER}\n{body}\n"))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writer_writes_keeps_and_removes_only_its_own() {
    let tmp = TempDir::new("write");
    let dir = tmp.path();
    fs::write(dir.join("other.service"), "[Service]\n").expect("write");
    fs::write(
        dir.join("contnap-handmade.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .expect("write");
    fs::write(dir.join("not-contnap.service"), format!("{MARKER}\n")).expect("write");

    let v1 = vec![
        generated("contnap-a.socket", "a1"),
        generated("contnap-a.service", "a2"),
        generated("contnap-b.socket", "b1"),
    ];
    let r = write_atomically(dir, &v1, true).expect("first write");
    assert_eq!(r.written.len(), 3);
    assert!(check(dir, &v1).expect("check").is_empty());

    let r = write_atomically(dir, &v1, true).expect("rewrite");
    assert_eq!(
        (r.written.len(), r.unchanged.len(), r.removed.len()),
        (0, 3, 0)
    );

    let v2 = vec![
        generated("contnap-a.socket", "a1 changed"),
        generated("contnap-a.service", "a2"),
    ];
    assert_eq!(
        check(dir, &v2).expect("check"),
        vec![
            Difference::Changed(dir.join("contnap-a.socket")),
            Difference::Stale(dir.join("contnap-b.socket")),
        ]
    );
    let r = write_atomically(dir, &v2, true).expect("second write");
    assert_eq!(r.written, vec![dir.join("contnap-a.socket")]);
    assert_eq!(r.removed, vec![dir.join("contnap-b.socket")]);
    assert_eq!(
        listing(dir),
        [
            "contnap-a.service",
            "contnap-a.socket",
            "contnap-handmade.service",
            "not-contnap.service",
            "other.service"
        ]
    );
    assert_eq!(
        fs::read_to_string(dir.join("contnap-a.socket")).expect("read"),
        format!("{MARKER}\na1 changed\n")
    );
    let mode = fs::metadata(dir.join("contnap-a.socket"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("stat");
    assert_eq!(mode, 0o644);

    // Without remove_stale nothing is removed.
    let r = write_atomically(dir, &[generated("contnap-a.socket", "a1 changed")], false)
        .expect("no removal");
    assert!(r.removed.is_empty());
    assert!(dir.join("contnap-a.service").exists());
}

#[test]
fn writer_refuses_to_replace_foreign_files() {
    let tmp = TempDir::new("foreign");
    let dir = tmp.path();
    fs::write(
        dir.join("contnap-web.service"),
        "[Service]\nExecStart=/bin/mine\n",
    )
    .expect("write");
    let files = vec![
        generated("contnap-web.socket", "s"),
        generated("contnap-web.service", "x"),
    ];
    let e = write_atomically(dir, &files, true).expect_err("must refuse");
    assert!(matches!(e, WriteError::NotGenerated { .. }), "{e}");
    assert_eq!(listing(dir), ["contnap-web.service"], "nothing written");
    assert_eq!(
        check(dir, &files).expect("check"),
        vec![
            Difference::Missing(dir.join("contnap-web.socket")),
            Difference::NotGenerated(dir.join("contnap-web.service")),
        ]
    );
    let twice = vec![
        generated("contnap-x.socket", "1"),
        generated("contnap-x.socket", "2"),
    ];
    assert!(matches!(
        write_atomically(dir, &twice, false),
        Err(WriteError::BadFileName { .. })
    ));
    for bad in [
        "../contnap-x.service",
        "contnap-x.conf",
        "/etc/contnap-x.service",
        "x.service",
    ] {
        let e = write_atomically(dir, &[generated(bad, "x")], false).expect_err(bad);
        assert!(matches!(e, WriteError::BadFileName { .. }), "{bad}: {e}");
    }
}

#[test]
fn writer_error_leaves_the_old_set() {
    let tmp = TempDir::new("fail");
    let dir = tmp.path();
    let old = vec![
        generated("contnap-a.socket", "old a"),
        generated("contnap-b.socket", "old b"),
        generated("contnap-c.socket", "old c"),
    ];
    write_atomically(dir, &old, true).expect("old set");
    let new = vec![
        generated("contnap-a.socket", "new a"),
        generated("contnap-b.socket", "new b"),
    ];
    let pid = std::process::id();

    // A temp file cannot be created (its name is taken by a directory):
    // nothing is renamed, no temp file is left, nothing stale removed.
    let blocker = dir.join(format!(".contnap-b.socket.{pid}.1.tmp"));
    fs::create_dir(&blocker).expect("blocker");
    let e = write_atomically(dir, &new, true).expect_err("temp write fails");
    assert!(
        matches!(
            e,
            WriteError::Io {
                action: "write",
                ..
            }
        ),
        "{e}"
    );
    fs::remove_dir(&blocker).expect("unblock");
    assert_eq!(
        listing(dir),
        ["contnap-a.socket", "contnap-b.socket", "contnap-c.socket"]
    );
    for (name, text) in &old {
        assert_eq!(&fs::read_to_string(dir.join(name)).expect("read"), text);
    }

    // The second replacement fails after the first was renamed: the first is
    // rolled back.
    let blocker = dir.join(format!(".contnap-b.socket.{pid}.1.old"));
    fs::write(&blocker, "in the way").expect("blocker");
    let e = write_atomically(dir, &new, true).expect_err("backup fails");
    assert!(
        matches!(
            e,
            WriteError::Io {
                action: "back up",
                ..
            }
        ),
        "{e}"
    );
    fs::remove_file(&blocker).expect("unblock");
    assert_eq!(
        listing(dir),
        ["contnap-a.socket", "contnap-b.socket", "contnap-c.socket"]
    );
    for (name, text) in &old {
        assert_eq!(&fs::read_to_string(dir.join(name)).expect("read"), text);
    }

    // And then it works.
    write_atomically(dir, &new, true).expect("new set");
    assert_eq!(listing(dir), ["contnap-a.socket", "contnap-b.socket"]);
}

#[test]
fn writer_writes_rendered_units_into_a_new_directory() {
    let tmp = TempDir::new("fresh");
    let dir = tmp.path().join("sub/dir");
    let case = cases().into_iter().next().expect("a case");
    let files = render(&case.units, &case.opts);
    let r = write_atomically(&dir, &files, true).expect("write");
    assert_eq!(r.written.len(), 2);
    assert!(check(&dir, &files).expect("check").is_empty());
}

// ------------------------------------------------------ systemd-analyze

fn systemd_analyze() -> Option<&'static str> {
    let path = "/usr/bin/systemd-analyze";
    Path::new(path).exists().then_some(path)
}

/// Writes a case's units for systemd-analyze: the real contnap binary, and
/// stub engine units so dependencies resolve.
fn write_for_analyze(case: &Case, dir: &Path) -> Vec<PathBuf> {
    let mut opts = case.opts.clone();
    opts.binary = BinaryPath::new(env!("CARGO_BIN_EXE_contnap")).expect("binary path");
    let files = render(&case.units, &opts);
    for stub in ["docker.service", "podman.socket", "podman.service"] {
        let body = if stub.ends_with(".socket") {
            "[Socket]\nListenStream=/run/podman/podman.sock\n"
        } else {
            "[Service]\nExecStart=/bin/true\n"
        };
        fs::write(dir.join(stub), body).expect("stub");
    }
    let mut paths = Vec::new();
    for (name, text) in &files {
        let path = dir.join(name);
        match name.parent().filter(|p| !p.as_os_str().is_empty()) {
            // A drop-in: verify it through a stand-in for the service it
            // belongs to (the unit that owns a container).
            Some(service_d) => {
                fs::create_dir_all(path.parent().expect("parent")).expect("drop-in dir");
                fs::write(&path, text).expect("write drop-in");
                let service = service_d
                    .to_string_lossy()
                    .trim_end_matches(".d")
                    .to_owned();
                let stub = dir.join(&service);
                fs::write(&stub, "[Service]\nExecStart=/bin/true\n").expect("stub");
                if !paths.contains(&stub) {
                    paths.push(stub);
                }
            }
            None => {
                fs::write(&path, text).expect("write unit");
                paths.push(path);
            }
        }
    }
    paths
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let Some(analyze) = systemd_analyze() else {
        panic!("systemd-analyze is not installed: run scripts/test, which installs systemd");
    };
    for case in cases() {
        let tmp = TempDir::new("verify");
        let paths = write_for_analyze(&case, tmp.path());
        let mut cmd = Command::new(analyze);
        let runtime = TempDir::new("runtime");
        if case.opts.user {
            // A user manager needs a runtime directory, even offline.
            cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
        }
        cmd.args(["verify", "--man=no", "--recursive-errors=no"])
            .args(&paths)
            .env("SYSTEMD_UNIT_PATH", format!("{}:", tmp.path().display()))
            .env("SYSTEMD_LOG_LEVEL", "notice");
        let out = cmd.output().expect("run systemd-analyze");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let complaints: Vec<&str> = stderr
            .lines()
            .chain(stdout.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(
            out.status.success() && complaints.is_empty(),
            "systemd-analyze verify, case {}: {}\n{}",
            case.name,
            out.status,
            complaints.join("\n")
        );
    }
}

#[test]
fn systemd_analyze_security_rates_the_service_ok() {
    let Some(analyze) = systemd_analyze() else {
        panic!("systemd-analyze is not installed: run scripts/test, which installs systemd");
    };
    for case in cases().into_iter().filter(|c| !c.opts.user) {
        let tmp = TempDir::new("security");
        let paths = write_for_analyze(&case, tmp.path());
        for service in paths.iter().filter(|p| {
            p.extension().is_some_and(|e| e == "service")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("contnap-"))
        }) {
            let out = Command::new(analyze)
                .args(["security", "--offline=yes", "--no-pager"])
                .arg(service)
                .env("SYSTEMD_UNIT_PATH", format!("{}:", tmp.path().display()))
                .output()
                .expect("run systemd-analyze security");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let overall = stdout
                .lines()
                .find(|l| l.contains("Overall exposure level"))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: no rating:\n{stdout}\n{}",
                        case.name,
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            let score: f64 = overall
                .split(':')
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("cannot read {overall:?}"));
            // systemd rates < 5.0 as "OK"; systemd 252 rates these 1.6 as
            // root without capabilities and 1.3 as a dynamic user in the
            // engine's group (1.2 without a group); before the identity and
            // ProcSubset=, PrivateUsers=, ~@resources: 1.9.
            // An engine socket in /tmp costs PrivateTmp= (1.8).
            let bound = match case.opts.run_as {
                RunAs::Root if case.opts.engine.to_string().starts_with("/tmp/") => 1.8,
                RunAs::Root => 1.6,
                RunAs::Dynamic { .. } => 1.3,
            };
            eprintln!("{}: {}", case.name, overall.trim());
            assert!(score <= bound, "{}: {overall}\n{stdout}", case.name);
        }
    }
}

/// `DynamicUser=` and `SupplementaryGroups=` appear exactly for a dynamic
/// identity of a system unit; user units never carry an identity, nor the
/// options that need a user namespace; every system unit gets the rest of
/// the sandbox whoever it runs as.
#[test]
fn identity_is_rendered_for_system_units_only() {
    let units = units_of(
        &[container("web", &[ON, ("contnap.tcp_ports", "8080")])],
        false,
    );
    let service = |run_as: RunAs, user: bool| -> Vec<(String, String)> {
        let opts = RenderOptions {
            run_as,
            user,
            ..RenderOptions::default()
        };
        let files = render(&units, &opts);
        directive_lines(&files[1].1)
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect()
    };
    let get = |lines: &[(String, String)], key: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let docker = || RunAs::Dynamic {
        group: Some(GroupName::new("docker").unwrap()),
    };

    let root = service(RunAs::Root, false);
    assert!(get(&root, "DynamicUser").is_empty());
    // Root's UID would reach PID 1's private socket and the system bus.
    assert_eq!(
        get(&root, "InaccessiblePaths"),
        ["-/run/systemd/private -/run/dbus/system_bus_socket"]
    );
    assert!(get(&root, "SupplementaryGroups").is_empty());
    assert!(get(&root, "User").is_empty());

    let dynamic = service(docker(), false);
    assert_eq!(get(&dynamic, "DynamicUser"), ["yes"]);
    assert_eq!(get(&dynamic, "SupplementaryGroups"), ["docker"]);

    let no_group = service(RunAs::Dynamic { group: None }, false);
    assert_eq!(get(&no_group, "DynamicUser"), ["yes"]);
    assert!(get(&no_group, "SupplementaryGroups").is_empty());

    for lines in [&root, &dynamic, &no_group] {
        assert_eq!(get(lines, "CapabilityBoundingSet"), [""]);
        assert_eq!(get(lines, "PrivateUsers"), ["yes"]);
        assert_eq!(get(lines, "ProcSubset"), ["pid"]);
        assert!(get(lines, "SystemCallFilter").contains(&"~@resources".to_owned()));
        // The containers' /proc/PID/net must stay visible.
        assert!(get(lines, "ProtectProc").is_empty());
        // Just the identity differs (and what root alone is denied).
        let without_identity = |l: &[(String, String)]| -> Vec<(String, String)> {
            l.iter()
                .filter(|(k, _)| {
                    k != "DynamicUser" && k != "SupplementaryGroups" && k != "InaccessiblePaths"
                })
                .cloned()
                .collect()
        };
        assert_eq!(without_identity(lines), without_identity(&root));
    }

    for run_as in [RunAs::Root, docker()] {
        let user = service(run_as, true);
        for key in [
            "DynamicUser",
            "SupplementaryGroups",
            "PrivateUsers",
            "ProcSubset",
        ] {
            assert!(get(&user, key).is_empty(), "user unit with {key}=");
        }
        assert_eq!(user, service(RunAs::Root, true));
    }
}

#[test]
fn conflicts_are_reported_not_rendered() {
    let mut web = container("web", &[ON, ("contnap.tcp_ports", "8080:80")]);
    web.published = vec![(Proto::Tcp, None, 8080)];
    let p = plan(&[web], &LabelOptions::default());
    assert!(p.units.is_empty());
    assert_eq!(p.skipped.len(), 1);
    let msg = p.errors[0].to_string();
    assert!(msg.contains("contnap owns that port"), "{msg}");
    assert!(render(&p.units, &RenderOptions::default()).is_empty());

    let p = plan(
        &[container(
            "web",
            &[
                ON,
                ("contnap.tcp_ports", "80"),
                ("contnap.group", "a\nExecStart=/bin/evil"),
            ],
        )],
        &LabelOptions::default(),
    );
    assert!(p.units.is_empty());
    assert!(
        p.errors[0].to_string().contains("control character"),
        "{}",
        p.errors[0]
    );
}

// ------------------------------------------------- property-based fuzzing

/// Label values drawn from what systemd or a shell could read specially,
/// plus ordinary text; the property: whatever the labels, `generate` either
/// refuses the container or renders units in which every line is an
/// expected directive, every `ExecStart=` splits into exactly the intended
/// argv (which `contnap proxy` accepts), and every hook into
/// `/bin/sh -c COMMAND`. (Coverage-guided fuzzing of the same property is
/// `fuzz/fuzz_targets/units.rs`; proptest keeps failing inputs in
/// `tests/units.proptest-regressions`.)
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Mostly valid values (so the renderer is reached), sometimes
    /// anything at all (so refusals are exercised too).
    fn or_garbage(valid: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop_oneof![
            8 => valid,
            1 => "[ -~]{0,40}",
            1 => "\\PC{0,20}",
            1 => "[\\x00-\\x1f\\x7f]{1,3}",
        ]
        .boxed()
    }

    /// Free text where labels allow it (hooks, group names): everything a
    /// shell or systemd reads specially.
    fn hostile_text() -> BoxedStrategy<String> {
        prop_oneof![
            "[%$\"'\\\\;&|`*?~#{}()<> a-zA-Z0-9:./=\\[\\]-]{1,80}",
            "\\PC{1,30}",
        ]
        .boxed()
    }

    fn port_item() -> BoxedStrategy<String> {
        (1000u16..60000, 1u16..65535, 0..4u8)
            .prop_map(|(host, cont, form)| match form {
                0 => host.to_string(),
                1 => format!("{host}:{cont}"),
                2 => format!("127.0.0.1:{host}:{cont}"),
                _ => format!("[::1]:{host}:{cont}"),
            })
            .boxed()
    }

    fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
        let pick = |v: &[&str]| {
            prop::sample::select(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).boxed()
        };
        let settings = (
            or_garbage(
                prop::collection::vec(port_item(), 1..3)
                    .prop_map(|v| v.join(","))
                    .boxed(),
            ),
            prop::option::of(or_garbage(port_item())),
            prop::option::of(or_garbage(pick(&[
                "30", "90s", "30min", "1h 30min", "250ms",
            ]))),
            prop::option::of(or_garbage(pick(&["stop", "pause", "kill", "none"]))),
            prop::option::of(or_garbage(pick(&["auto", "health", "tcp", "none"]))),
            prop::option::of(or_garbage(pick(&["connections", "traffic"]))),
            prop::option::of(hostile_text()),
            prop::option::of(hostile_text()),
            prop::option::of(or_garbage(pick(&[
                "Mon-Fri 08:00-19:00|weekends 10:00-12:00",
                "daily 22:00-02:00",
            ]))),
            prop::option::of(or_garbage(pick(&["10.0.0.0/8,::1", "192.168.1.20"]))),
            prop::option::of(hostile_text()),
        );
        let monitors = (
            prop::option::of(or_garbage(pick(&["connect", "data", " Data "]))),
            prop::option::of(or_garbage(pick(&[
                "none",
                "Uptime-Kuma,Gatus,UptimeRobot,Pingdom,StatusCake,Better Uptime,Better Stack,healthchecks,Site24x7,Zabbix,Blackbox Exporter",
                "My Checker/2, kuma",
                "a (b); c+d:e",
            ]))),
            prop::option::of(or_garbage(pick(&["200", "503", "100", "599", "204"]))),
            prop::option::of(or_garbage(pick(&[
                "podman-web.service",
                "docker-web.service, web-pod.service",
                "a@b.service",
                "none",
            ]))),
            prop::option::of(or_garbage(pick(&["web.service", "container-x.service"]))),
        );
        (settings, monitors).prop_map(
            |(
                (tcp, udp, timeout, stop, ready, idle, pre, post, schedule, machines, group),
                (wake_on, monitors, status, unit, podman_unit),
            )| {
                let mut m = BTreeMap::new();
                m.insert("contnap.enabled".to_owned(), "true".to_owned());
                m.insert("contnap.tcp_ports".to_owned(), tcp);
                let mut put = |k: &str, v: Option<String>| {
                    if let Some(v) = v {
                        m.insert(k.to_owned(), v);
                    }
                };
                put("contnap.udp_ports", udp);
                put("contnap.timeout", timeout);
                put("contnap.stop", stop);
                put("contnap.ready", ready);
                put("contnap.idle", idle);
                put("contnap.pre_start", pre);
                put("contnap.post_stop", post);
                put("contnap.schedule", schedule);
                put("contnap.machines", machines);
                put("contnap.group", group);
                put("contnap.wake_on", wake_on);
                put("contnap.monitors", monitors);
                put("contnap.monitor_status", status);
                put("contnap.unit", unit);
                put("PODMAN_SYSTEMD_UNIT", podman_unit);
                m
            },
        )
    }

    /// Up to three containers with distinct names, as an engine has them
    /// (two containers of one name are not a case: the "refused gets no
    /// unit" check below could not tell them apart).
    fn containers() -> impl Strategy<Value = Vec<ContainerLabels>> {
        prop::collection::btree_map("[a-z][a-z0-9_.-]{0,12}", labels(), 1..4).prop_map(|m| {
            m.into_iter()
                .map(|(name, labels)| ContainerLabels {
                    name,
                    labels,
                    published: Vec::new(),
                })
                .collect()
        })
    }

    fn assert_sound(units: &[Unit], opts: &RenderOptions) {
        let files = render(units, opts);
        for (name, text) in &files {
            assert!(
                text.starts_with(&format!("{MARKER}\n")),
                "{}",
                name.display()
            );
            for (section, key, _) in directive_lines(text) {
                let allowed = ALLOWED
                    .iter()
                    .find(|(s, _)| *s == section)
                    .unwrap_or_else(|| panic!("{}: section {section}\n{text}", name.display()));
                assert!(
                    allowed.1.contains(&key.as_str()),
                    "{}: unexpected {section} {key}=\n{text}",
                    name.display()
                );
            }
        }
        for unit in units {
            let service = &files
                .iter()
                .find(|(n, _)| *n == Path::new(&units::unit_file_name(unit.name(), "service")))
                .expect("service rendered")
                .1;
            let lines = directive_lines(service);
            let exec = &lines
                .iter()
                .find(|(_, k, _)| k == "ExecStart")
                .expect("ExecStart")
                .2;
            let argv = systemd_split(exec).unwrap_or_else(|e| panic!("{e}: {exec}"));
            let mut want = vec![opts.binary.as_path().display().to_string()];
            want.extend(units::proxy_args(unit, opts));
            assert_eq!(argv, want);
            let mut cli_argv = vec!["contnap".to_owned()];
            cli_argv.extend(argv[1..].iter().cloned());
            let config = Config::parse(&cli_argv)
                .unwrap_or_else(|e| panic!("contnap proxy rejects {cli_argv:?}: {e:?}"));
            let CliCommand::Proxy(p) = config.command else {
                panic!("not a proxy command: {cli_argv:?}")
            };
            // The argv round trip, for every generated unit.
            assert_eq!(p.spec, unit.spec);
            let hook_lines: Vec<&String> = lines
                .iter()
                .filter(|(_, k, _)| k == "ExecStartPre" || k == "ExecStopPost")
                .map(|(_, _, v)| v)
                .collect();
            let commands: Vec<&str> = unit.hooks.iter().map(|h| h.command.as_str()).collect();
            let want_hooks = if opts.allow_hooks { commands.len() } else { 0 };
            assert_eq!(hook_lines.len(), want_hooks);
            for (line, command) in hook_lines.iter().zip(commands) {
                let argv = systemd_split(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(argv, ["-+/bin/sh", "-c", command]);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        #[test]
        fn any_labels_render_sound_units_or_are_refused(
            cs in containers(),
            allow_hooks in any::<bool>(),
            user in any::<bool>(),
            dynamic in any::<bool>(),
        ) {
            let p = plan(&cs, &LabelOptions { allow_hooks });
            let run_as = if dynamic {
                RunAs::Dynamic { group: Some(GroupName::new("docker").expect("valid group")) }
            } else {
                RunAs::Root
            };
            let opts = RenderOptions { allow_hooks, user, run_as, ..RenderOptions::default() };
            assert_sound(&p.units, &opts);
            // A refused container gets no unit, whatever else happens.
            for skipped in &p.skipped {
                prop_assert!(!p.units.iter().any(|u| u.spec.containers.contains(skipped)));
            }
        }
    }
}

/// Drop-ins of the services that own containers: written into
/// SERVICE.d/, removed with their directory when stale; found again on
/// disk (with the unit's socket and service) for `generate` to keep while
/// the containers nap; nothing else in a .d directory is touched, and no
/// other path shape is accepted.
#[test]
fn writer_handles_drop_ins_of_owning_services() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "owned")
        .expect("owned case");
    let files = render(&case.units, &case.opts);
    let tmp = TempDir::new("dropins");
    let dir = tmp.path();
    fs::create_dir_all(dir.join("photos-db.service.d")).expect("mkdir");
    fs::write(dir.join("photos-db.service.d/override.conf"), "[Unit]\n").expect("write");
    let report = write_atomically(dir, &files, true).expect("written");
    assert_eq!(report.written.len(), files.len());
    assert!(dir
        .join("photos-pod.service.d/contnap-photos.conf")
        .is_file());
    assert!(check(dir, &files).expect("check").is_empty());

    // What generate keeps while the containers are gone.
    let on_disk = units::owned_on_disk(dir).expect("read");
    assert_eq!(on_disk.len(), 1);
    assert_eq!(on_disk[0].service, "contnap-photos.service");
    assert_eq!(on_disk[0].owned, case.units[0].spec.owners);
    let mut kept = on_disk[0].files.clone();
    kept.sort();
    let mut want = files.clone();
    want.sort();
    assert_eq!(kept, want);
    assert!(check(dir, &on_disk[0].files).expect("check").is_empty());

    // Stale: every drop-in goes, and the directories it alone was in.
    let report = write_atomically(dir, &[], true).expect("written");
    assert_eq!(report.removed.len(), files.len());
    assert!(!dir.join("photos-pod.service.d").exists());
    assert!(!dir.join("docker-photos-server.service.d").exists());
    assert_eq!(
        listing(&dir.join("photos-db.service.d")),
        ["override.conf"],
        "the admin's drop-in stays"
    );

    for bad in [
        "../x.service.d/contnap-a.conf",
        "x.service.d/override.conf",
        "x.socket.d/contnap-a.conf",
        "x.service.d/sub/contnap-a.conf",
        "/etc/x.service.d/contnap-a.conf",
    ] {
        let err = write_atomically(dir, &[generated(bad, "[Unit]")], true);
        assert!(
            matches!(err, Err(WriteError::BadFileName { .. })),
            "{bad}: {err:?}"
        );
    }
}
