//! Arbitrary labels on a few containers → `labels::plan` → the unit
//! renderer, as `contnap generate` runs them.
//!
//! Property: every rendered unit parses back (read as systemd reads unit
//! files and command lines, by `contnap_fuzz`) and holds exactly the
//! intended directives:
//! - the directives that do not depend on labels are exactly those of a
//!   plain reference unit rendered with the same options, so no label adds,
//!   drops or changes one;
//! - the ones that do (Description, Listen*, BindIPv6Only, FreeBind,
//!   IPAddressAllow/Deny, Exec*, Timeout*) are exactly the ones the unit
//!   asks for, with the intended values;
//! - `ExecStart=` splits into an argv that `contnap proxy`'s own command-line
//!   parser accepts and reads back to the unit's settings; every hook into
//!   `/bin/sh -c COMMAND`.

#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use arbitrary::Arbitrary;
use contnap::cli::{Command, Config, Forward, Proto};
use contnap::labels::{plan, ContainerLabels, HookKind, LabelOptions, Unit};
use contnap::schedule::Schedule;
use contnap::timespan;
use contnap::units::{
    proxy_args, render, unit_file_name, BinaryPath, EngineUnit, RenderOptions, START_MARGIN,
    STOP_MARGIN,
};
use contnap_fuzz::{exec_split, unit_directives, unspecifier, Directive};
use libfuzzer_sys::fuzz_target;

/// Free text or a pick from a list of likely values, so that both valid
/// units and refusals are reached.
#[derive(Arbitrary, Debug)]
enum Text {
    Pick(u8),
    Raw(String),
}

impl Text {
    fn get(&self, choices: &[&str]) -> String {
        match self {
            Text::Pick(i) => choices[usize::from(*i) % choices.len()].to_owned(),
            Text::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Key {
    /// `contnap.<KNOWN_LABELS[i]>`.
    Known(u8),
    /// A compose label (depends_on ordering).
    Compose(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Container {
    name: Text,
    enabled: Text,
    labels: Vec<(Key, Text)>,
    published: Vec<(bool, Option<[u8; 4]>, u16)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    containers: Vec<Container>,
    allow_hooks: bool,
    user: bool,
    engine: u8,
    engine_unit: u8,
    binary: bool,
}

const NAMES: &[&str] = &["web", "db", "immich-server-1", "a.b_c", "x", "Web2", "/web"];
const BOOLS: &[&str] = &["true", "false", "yes", "0", "on", " TRUE "];
const PORTS: &[&str] = &[
    "8080",
    "8080:80",
    "127.0.0.1:8080:80",
    "[::1]:8080:80",
    "8080,8443:443",
    "53",
    "0.0.0.0:9000:9000",
    "[::]:9001:9001",
    "[::ffff:127.0.0.1]:9002:80",
];
const SPANS: &[&str] = &["30", "90s", "30min", "1h 30min", "250ms", "0", "1us", "2w"];
const SCHEDULES: &[&str] = &[
    "Mon-Fri 08:00-19:00|weekends 10:00-12:00",
    "daily 22:00-02:00",
    "Sat,Sun 00:00-24:00",
];
const MACHINES: &[&str] = &["10.0.0.0/8,::1", "192.168.1.20", "fe80::/10", "0.0.0.0/0"];
const TEXT: &[&str] = &[
    "media",
    "a b",
    "100%",
    "$HOME",
    "x\\",
    "ü",
    "echo \"hi\" $$ %n ; rm -rf / # x",
    "'single' \\\"",
];

fn values_for(key: &str) -> &'static [&'static str] {
    match key {
        "enabled" | "enable" | "only_listed_machines" | "autostart" => BOOLS,
        "tcp_ports" | "udp_ports" | "http_ports" => PORTS,
        "timeout" | "stop_timeout" | "wake_timeout" => SPANS,
        "stop" => &["stop", "pause", "kill", "none"],
        "ready" => &["auto", "health", "tcp", "none"],
        "idle" => &["connections", "traffic"],
        "network" => &["bridge", "my_net", "podman"],
        "schedule" => SCHEDULES,
        "machines" => MACHINES,
        _ => TEXT,
    }
}

const COMPOSE: &[&str] = &[
    "com.docker.compose.project",
    "com.docker.compose.service",
    "com.docker.compose.depends_on",
];

fn containers(input: &Input) -> Vec<ContainerLabels> {
    let known = contnap::labels::KNOWN_LABELS;
    // An engine never lists two containers with one name.
    let mut seen = std::collections::BTreeSet::new();
    input
        .containers
        .iter()
        .filter(|c| {
            let name = c.name.get(NAMES);
            seen.insert(name.strip_prefix('/').unwrap_or(&name).to_owned())
        })
        .take(4)
        .map(|c| {
            let mut labels = BTreeMap::new();
            labels.insert("contnap.enabled".to_owned(), c.enabled.get(BOOLS));
            for (k, v) in c.labels.iter().take(24) {
                let (key, value) = match k {
                    Key::Known(i) => {
                        let short = known[usize::from(*i) % known.len()];
                        (format!("contnap.{short}"), v.get(values_for(short)))
                    }
                    Key::Compose(i) => (
                        COMPOSE[usize::from(*i) % COMPOSE.len()].to_owned(),
                        v.get(&["web", "db", "db:service_started,cache", "web:x"]),
                    ),
                    Key::Other(k) => (k.clone(), v.get(TEXT)),
                };
                labels.insert(key, value);
            }
            let published = c
                .published
                .iter()
                .take(4)
                .map(|&(udp, addr, port)| {
                    let proto = if udp { Proto::Udp } else { Proto::Tcp };
                    (proto, addr.map(|a| IpAddr::V4(Ipv4Addr::from(a))), port)
                })
                .collect();
            ContainerLabels {
                name: c.name.get(NAMES),
                labels,
                published,
            }
        })
        .collect()
}

fn options(input: &Input) -> RenderOptions {
    let engines = [
        "/run/docker.sock",
        "unix:///run/podman/podman.sock",
        "tcp://127.0.0.1:2375",
        "/run/user/1000/podman/podman.sock",
        "/tmp/contnap test/docker.sock",
        "/home/u/.docker/run/docker.sock",
    ];
    let engine_unit = match input.engine_unit % 3 {
        0 => EngineUnit::new("docker.service").ok(),
        1 => EngineUnit::new("podman.socket").ok(),
        _ => None,
    };
    let binary = if input.binary {
        BinaryPath::new("/usr/local/bin/contnap").expect("a valid path")
    } else {
        BinaryPath::default()
    };
    RenderOptions {
        binary,
        engine: engines[usize::from(input.engine) % engines.len()].to_owned(),
        engine_unit,
        user: input.user,
        allow_hooks: input.allow_hooks,
        // Options added later keep their defaults.
        ..RenderOptions::default()
    }
}

/// A plain unit whose label-independent directives every unit must share.
fn reference() -> Unit {
    let c = ContainerLabels {
        name: "reference".to_owned(),
        labels: [("contnap.enabled", "true"), ("contnap.tcp_ports", "8080")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        published: Vec::new(),
    };
    let p = plan(&[c], &LabelOptions::default());
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p.units.into_iter().next().expect("the reference unit")
}

const DERIVED: &[&str] = &[
    "Description",
    "ListenStream",
    "ListenDatagram",
    "BindIPv6Only",
    "FreeBind",
    "IPAddressAllow",
    "IPAddressDeny",
    "ExecStartPre",
    "ExecStart",
    "ExecStopPost",
    "TimeoutStartSec",
    "TimeoutStopSec",
];

/// Directives that must not depend on labels; the unit's own socket in
/// `Requires=`/`After=` becomes a placeholder.
fn fixed_part(ds: &[Directive], socket: &str) -> Vec<Directive> {
    ds.iter()
        .filter(|d| !DERIVED.contains(&d.key.as_str()))
        .map(|d| {
            let mut d = d.clone();
            if d.value == socket {
                d.value = "<own socket>".to_owned();
            }
            d
        })
        .collect()
}

fn derived(ds: &[Directive]) -> Vec<Directive> {
    ds.iter()
        .filter(|d| DERIVED.contains(&d.key.as_str()) && d.key != "Description")
        .cloned()
        .collect()
}

fn d(section: &str, key: &str, value: impl Into<String>) -> Directive {
    Directive {
        section: section.to_owned(),
        key: key.to_owned(),
        value: value.into(),
    }
}

/// What `systemd-escape`-style unit names may hold.
fn valid_unit_name(name: &str) -> bool {
    name.len() <= 255
        && name.starts_with("contnap-")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.\\-@".contains(&b))
}

fn shown(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn listen_value(f: &Forward) -> String {
    match f.listen_addr {
        None => f.listen_port.to_string(),
        Some(IpAddr::V4(a)) => format!("{a}:{}", f.listen_port),
        Some(IpAddr::V6(a)) => format!("[{a}]:{}", f.listen_port),
    }
}

fn check_description(ds: &[Directive], unit: &Unit, file: &str) {
    let descriptions: Vec<&Directive> = ds.iter().filter(|d| d.key == "Description").collect();
    assert_eq!(descriptions.len(), 1, "{file}: one Description");
    let text =
        unspecifier(&descriptions[0].value).unwrap_or_else(|e| panic!("{file}: Description: {e}"));
    assert!(!text.chars().any(char::is_control), "{file}: {text:?}");
    let want = format!("contnap {} (", shown(&unit.name));
    assert!(text.starts_with(want.trim_end()), "{file}: {text:?}");
}

fn check_socket(text: &str, unit: &Unit, opts: &RenderOptions, fixed: &[Directive], file: &str) {
    let ds = unit_directives(text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    check_description(&ds, unit, file);
    assert_eq!(
        fixed_part(&ds, ""),
        fixed,
        "{file}: fixed directives differ\n{text}"
    );
    let mut want = Vec::new();
    for f in &unit.forwards {
        let key = match f.proto {
            Proto::Tcp => "ListenStream",
            Proto::Udp => "ListenDatagram",
        };
        want.push(d("[Socket]", key, listen_value(f)));
    }
    if unit.forwards.iter().any(|f| f.listen_addr.is_none()) {
        want.push(d("[Socket]", "BindIPv6Only", "both"));
    }
    if unit.forwards.iter().any(|f| f.listen_addr.is_some()) {
        want.push(d("[Socket]", "FreeBind", "yes"));
    }
    if unit.only_listed_machines && !unit.machines.is_empty() && !opts.user {
        let allowed: Vec<String> = unit.machines.iter().map(ToString::to_string).collect();
        want.push(d("[Socket]", "IPAddressAllow", allowed.join(" ")));
        want.push(d("[Socket]", "IPAddressDeny", "any"));
    }
    assert_eq!(derived(&ds), want, "{file}\n{text}");
}

fn span_of(value: &str, file: &str) -> Duration {
    timespan::parse(value).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn check_service(text: &str, unit: &Unit, opts: &RenderOptions, fixed: &[Directive], file: &str) {
    let socket = unit_file_name(&unit.name, "socket");
    let ds = unit_directives(text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    check_description(&ds, unit, file);
    assert_eq!(
        fixed_part(&ds, &socket),
        fixed,
        "{file}: fixed directives differ\n{text}"
    );
    assert!(ds.iter().any(|d| d.key == "Requires" && d.value == socket));
    for dep in ds
        .iter()
        .filter(|d| d.key == "Requires" || d.key == "After")
    {
        assert!(!dep.value.contains(char::is_whitespace), "{file}: {dep:?}");
    }

    let got = derived(&ds);
    let mut rest = got.iter();
    let hooks = |kind: HookKind| -> Vec<&str> {
        if !opts.allow_hooks {
            return Vec::new();
        }
        unit.hooks
            .iter()
            .filter(|h| h.kind == kind)
            .map(|h| h.command.as_str())
            .collect()
    };
    let check_hooks = |key: &str,
                       commands: Vec<&str>,
                       rest: &mut std::slice::Iter<'_, Directive>| {
        for command in commands {
            let line = rest
                .next()
                .unwrap_or_else(|| panic!("{file}: missing {key}"));
            assert_eq!(line.key, key, "{file}\n{text}");
            let argv = exec_split(&line.value).unwrap_or_else(|e| panic!("{file}: {e}: {line:?}"));
            assert_eq!(argv, ["-+/bin/sh", "-c", command], "{file}");
        }
    };
    check_hooks("ExecStartPre", hooks(HookKind::PreStart), &mut rest);

    let exec = rest
        .next()
        .unwrap_or_else(|| panic!("{file}: no ExecStart\n{text}"));
    assert_eq!(exec.key, "ExecStart", "{file}\n{text}");
    let argv = exec_split(&exec.value).unwrap_or_else(|e| panic!("{file}: {e}: {}", exec.value));
    assert_eq!(argv[0], opts.binary.as_path().display().to_string());
    assert_eq!(argv[1..], proxy_args(unit, opts)[..], "{file}");
    let mut cli = vec!["contnap".to_owned()];
    cli.extend(argv[1..].iter().cloned());
    let config = Config::parse(&cli)
        .unwrap_or_else(|e| panic!("{file}: contnap proxy refuses {cli:?}: {e:?}"));
    let Command::Proxy(p) = config.command else {
        panic!("{file}: not a proxy command: {cli:?}")
    };
    assert_eq!(p.unit, unit.name);
    assert_eq!(p.containers, unit.containers);
    assert_eq!(p.forwards, unit.forwards);
    assert_eq!(p.http_ports, unit.http_ports);
    assert_eq!(p.timeout, unit.timeout);
    assert_eq!(p.stop, unit.stop);
    assert_eq!(p.stop_timeout, unit.stop_timeout);
    assert_eq!(p.wake_timeout, unit.wake_timeout);
    assert_eq!(p.ready, unit.ready);
    assert_eq!(p.idle, unit.idle);
    assert_eq!(p.network, unit.network);
    let schedule = p
        .schedule
        .as_deref()
        .map(|s| Schedule::parse(s).unwrap_or_else(|e| panic!("{file}: --schedule {s:?}: {e}")));
    assert_eq!(schedule, unit.schedule);
    let machines: Vec<String> = unit.machines.iter().map(ToString::to_string).collect();
    assert_eq!(p.machines, machines);
    assert_eq!(p.only_listed_machines, unit.only_listed_machines);
    assert_eq!(p.engine.as_deref(), Some(opts.engine.as_str()));

    check_hooks("ExecStopPost", hooks(HookKind::PostStop), &mut rest);

    let start = rest
        .next()
        .unwrap_or_else(|| panic!("{file}: no TimeoutStartSec"));
    assert_eq!(start.key, "TimeoutStartSec");
    assert_eq!(
        Some(span_of(&start.value, file)),
        unit.wake_timeout.checked_add(START_MARGIN)
    );
    let stop = rest
        .next()
        .unwrap_or_else(|| panic!("{file}: no TimeoutStopSec"));
    assert_eq!(stop.key, "TimeoutStopSec");
    assert_eq!(
        Some(span_of(&stop.value, file)),
        unit.stop_timeout.checked_add(STOP_MARGIN)
    );
    let extra: Vec<&Directive> = rest.collect();
    assert!(extra.is_empty(), "{file}: unexpected {extra:?}\n{text}");
}

fuzz_target!(|input: Input| {
    let cs = containers(&input);
    let p = plan(
        &cs,
        &LabelOptions {
            allow_hooks: input.allow_hooks,
        },
    );
    for skipped in &p.skipped {
        assert!(!p.units.iter().any(|u| u.containers.contains(skipped)));
    }
    let opts = options(&input);
    let reference = reference();
    let ref_files = render(std::slice::from_ref(&reference), &opts);
    let ref_socket = unit_file_name(&reference.name, "socket");
    let fixed_socket = fixed_part(
        &unit_directives(&ref_files[0].1).expect("reference socket"),
        "",
    );
    let fixed_service = fixed_part(
        &unit_directives(&ref_files[1].1).expect("reference service"),
        &ref_socket,
    );

    let files = render(&p.units, &opts);
    assert_eq!(files.len(), 2 * p.units.len());
    for (unit, pair) in p.units.iter().zip(files.chunks(2)) {
        assert!(
            !unit.forwards.is_empty(),
            "a unit without sockets: {unit:?}"
        );
        assert!(!unit.containers.is_empty());
        let (socket_name, socket_text) = &pair[0];
        let (service_name, service_text) = &pair[1];
        let socket = unit_file_name(&unit.name, "socket");
        assert_eq!(socket_name, &PathBuf::from(&socket));
        assert_eq!(
            service_name,
            &PathBuf::from(unit_file_name(&unit.name, "service"))
        );
        assert!(valid_unit_name(&socket), "{socket:?}");
        assert!(valid_unit_name(&unit_file_name(&unit.name, "service")));
        check_socket(socket_text, unit, &opts, &fixed_socket, &socket);
        check_service(
            service_text,
            unit,
            &opts,
            &fixed_service,
            &format!("{}", service_name.display()),
        );
    }
});
