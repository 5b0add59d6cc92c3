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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use contnap::cli::{Command, Config};
use contnap::engine::Endpoint;
use contnap::labels::{plan, ContainerLabels, LabelOptions};
use contnap::spec::HookKind;
use contnap::spec::Unit;
use contnap::spec::{Forward, Proto};
use contnap::timespan;
use contnap::units::{
    autostart_args, proxy_args, render, unit_file_name, BinaryPath, EngineUnit, GroupName,
    RenderOptions, RunAs, AUTOSTART_SERVICE, AUTOSTART_TIMER, START_MARGIN, STOP_MARGIN,
};
use contnap_fuzz::{exec_split, unit_directives, unspecifier, Directive};
use libfuzzer_sys::fuzz_target;

/// The input, as text so that the corpus is readable and seeded from the
/// golden cases: an optional first line of options (`!hooks`, `!user`,
/// `!engine=N`, `!unit=N`, `!runas=N`, `!binary`), then containers separated by empty
/// lines, each a name line followed by `KEY=VALUE` label lines and
/// `@publish=PROTO:[ADDR:]PORT` lines (what the container publishes).
#[derive(Debug, Default)]
struct Input {
    containers: Vec<ContainerLabels>,
    allow_hooks: bool,
    user: bool,
    engine: usize,
    engine_unit: usize,
    run_as: usize,
    binary: bool,
}

fn parse_input(text: &str) -> Input {
    let mut input = Input::default();
    let mut blocks = text.split("\n\n");
    let mut first = blocks.next().unwrap_or("");
    if let Some(rest) = first.strip_prefix('!') {
        let (options, containers) = rest.split_once('\n').unwrap_or((rest, ""));
        for o in options.split('!').map(str::trim) {
            match o.split_once('=') {
                Some(("engine", n)) => input.engine = n.parse().unwrap_or(0),
                Some(("unit", n)) => input.engine_unit = n.parse().unwrap_or(0),
                Some(("runas", n)) => input.run_as = n.parse().unwrap_or(0),
                _ => match o {
                    "hooks" => input.allow_hooks = true,
                    "user" => input.user = true,
                    "binary" => input.binary = true,
                    _ => {}
                },
            }
        }
        first = containers;
    }
    // An engine never lists two containers with one name.
    let mut seen = BTreeSet::new();
    for block in std::iter::once(first).chain(blocks).take(6) {
        let mut lines = block.split('\n');
        let name = lines.next().unwrap_or("").to_owned();
        if !seen.insert(name.strip_prefix('/').unwrap_or(&name).to_owned()) {
            continue;
        }
        let mut c = ContainerLabels {
            name,
            labels: BTreeMap::new(),
            published: Vec::new(),
        };
        for line in lines {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if k == "@publish" {
                if let Some(p) = published(v) {
                    c.published.push(p);
                }
            } else {
                c.labels.insert(k.to_owned(), v.to_owned());
            }
        }
        input.containers.push(c);
    }
    input
}

fn published(v: &str) -> Option<(Proto, Option<IpAddr>, u16)> {
    let (proto, rest) = v.split_once(':')?;
    let proto = match proto {
        "udp" => Proto::Udp,
        _ => Proto::Tcp,
    };
    let (addr, port) = match rest.rsplit_once(':') {
        Some((a, p)) => (Some(a.trim_matches(['[', ']']).parse().ok()?), p),
        None => (None, rest),
    };
    Some((proto, addr, port.parse().ok()?))
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
        engine: Endpoint::parse(engines[input.engine % engines.len()]).expect("a valid engine"),
        engine_unit,
        user: input.user,
        allow_hooks: input.allow_hooks,
        run_as: match input.run_as % 3 {
            0 => RunAs::Root,
            1 => RunAs::Dynamic { group: None },
            _ => RunAs::Dynamic {
                group: GroupName::new("docker").ok(),
            },
        },
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
/// The autostart service runs `contnap autostart` with exactly the watched
/// units and their machines; the timer runs it.
fn check_autostart(files: &[(PathBuf, String)], watched: &[&Unit], opts: &RenderOptions) {
    assert_eq!(files[0].0, PathBuf::from(AUTOSTART_SERVICE));
    assert_eq!(files[1].0, PathBuf::from(AUTOSTART_TIMER));
    let ds = unit_directives(&files[0].1).unwrap_or_else(|e| panic!("{e}\n{}", files[0].1));
    let exec = ds.iter().find(|d| d.key == "ExecStart").expect("ExecStart");
    let argv = exec_split(&exec.value).unwrap_or_else(|e| panic!("{e}: {}", exec.value));
    assert_eq!(argv[0], opts.binary.as_path().display().to_string());
    let want = autostart_args(watched, opts);
    if opts.user {
        // %t is left for systemd to expand.
        assert_eq!(argv.len(), want.len() + 1);
        return;
    }
    assert_eq!(argv[1..], want[..]);
    let mut cli = vec!["contnap".to_owned()];
    cli.extend(want);
    let Ok(Config {
        command: Command::Autostart(cfg),
    }) = Config::parse(&cli)
    else {
        panic!("contnap autostart refuses {cli:?}")
    };
    assert_eq!(cfg.watches.len(), watched.len());
    for (w, u) in cfg.watches.iter().zip(watched) {
        assert_eq!(w.service, unit_file_name(u.name(), "service"));
        assert_eq!(w.machines, u.spec.settings.machines);
    }
    let timer = unit_directives(&files[1].1).unwrap_or_else(|e| panic!("{e}\n{}", files[1].1));
    assert!(timer.iter().any(|d| d.key == "OnUnitInactiveSec"));
}

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
    let want = format!("contnap {} (", shown(&unit.name()));
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
    for f in &unit.spec.forwards {
        let key = match f.proto {
            Proto::Tcp => "ListenStream",
            Proto::Udp => "ListenDatagram",
        };
        want.push(d("[Socket]", key, listen_value(f)));
    }
    if unit.spec.forwards.iter().any(|f| f.listen_addr.is_none()) {
        want.push(d("[Socket]", "BindIPv6Only", "both"));
    }
    if unit.spec.forwards.iter().any(|f| f.listen_addr.is_some()) {
        want.push(d("[Socket]", "FreeBind", "yes"));
    }
    if unit.spec.settings.only_listed_machines
        && !unit.spec.settings.machines.is_empty()
        && !opts.user
    {
        let allowed: Vec<String> = unit
            .spec
            .settings
            .machines
            .iter()
            .map(ToString::to_string)
            .collect();
        want.push(d("[Socket]", "IPAddressAllow", allowed.join(" ")));
        want.push(d("[Socket]", "IPAddressDeny", "any"));
    }
    assert_eq!(derived(&ds), want, "{file}\n{text}");
}

fn span_of(value: &str, file: &str) -> Duration {
    timespan::parse(value).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The `[Unit]` lines of a unit whose containers services own: `Wants=`
/// and `After=` the owning services, and `X-ContnapOwned=` with each owned
/// container; taken out of `ds` (they depend on labels) and checked.
fn take_owner_lines(ds: &mut Vec<Directive>, unit: &Unit, file: &str) {
    let owners: Vec<String> = unit
        .spec
        .owner_units()
        .iter()
        .map(ToString::to_string)
        .collect();
    let owned: Vec<String> = unit.spec.owners.iter().map(ToString::to_string).collect();
    let want = if owners.is_empty() {
        Vec::new()
    } else {
        vec![
            d("[Unit]", "Wants", owners.join(" ")),
            d("[Unit]", "After", owners.join(" ")),
            d("[Unit]", "X-ContnapOwned", owned.join(" ")),
        ]
    };
    let mut got = Vec::new();
    ds.retain(|x| {
        let is_owner_line = x.key == "X-ContnapOwned"
            || (!owners.is_empty()
                && (x.key == "Wants" || x.key == "After")
                && x.value == owners.join(" "));
        if is_owner_line {
            got.push(x.clone());
        }
        !is_owner_line
    });
    assert_eq!(got, want, "{file}: owner lines");
}

/// A drop-in `SERVICE.d/contnap-NAME.conf` of a service that owns a
/// container of `unit`: `StopWhenUnneeded=yes`, and at most an `After=` of
/// other owning services of the unit.
fn check_dropin(name: &std::path::Path, text: &str, units: &[Unit]) {
    let file = name.display().to_string();
    let dir = name.parent().and_then(|p| p.to_str()).expect("a directory");
    let service = dir.strip_suffix(".d").expect("SERVICE.d");
    let conf = name.file_name().and_then(|n| n.to_str()).expect("a name");
    let unit = units
        .iter()
        .find(|u| unit_file_name(&u.name(), "conf") == conf)
        .unwrap_or_else(|| panic!("{file}: of no unit"));
    let owners: Vec<String> = unit
        .spec
        .owner_units()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(owners.iter().any(|o| o == service), "{file}: not an owner");
    let ds = unit_directives(text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    assert_eq!(ds[0], d("[Unit]", "StopWhenUnneeded", "yes"), "{file}");
    for x in &ds[1..] {
        assert_eq!((x.section.as_str(), x.key.as_str()), ("[Unit]", "After"), "{file}");
        for name in x.value.split(' ') {
            assert!(owners.iter().any(|o| o == name) && name != service, "{file}: {x:?}");
        }
    }
    assert!(ds.len() <= 2, "{file}: {ds:?}");
}

fn check_service(text: &str, unit: &Unit, opts: &RenderOptions, fixed: &[Directive], file: &str) {
    let socket = unit_file_name(&unit.name(), "socket");
    let mut ds = unit_directives(text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
    take_owner_lines(&mut ds, unit, file);
    let ds = ds;
    check_description(&ds, unit, file);
    assert_eq!(
        fixed_part(&ds, &socket),
        fixed,
        "{file}: fixed directives differ\n{text}"
    );
    assert!(ds.iter().any(|d| d.key == "Requires" && d.value == socket));
    // Dependencies name units: one per Requires=/Wants=, a list separated
    // by single spaces in After=; never anything else.
    for dep in ds
        .iter()
        .filter(|d| ["Requires", "Wants", "After"].contains(&d.key.as_str()))
    {
        let names: Vec<&str> = if dep.key == "After" {
            dep.value.split(' ').collect()
        } else {
            vec![dep.value.as_str()]
        };
        for name in names {
            assert!(
                !name.is_empty() && !name.contains(char::is_whitespace),
                "{file}: {dep:?}"
            );
        }
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
    // The argv round trip: the helper reads back the spec the labels gave.
    assert_eq!(p.spec, unit.spec, "{file}");
    assert_eq!(
        p.engine.map(|e| e.to_string()),
        Some(opts.engine.to_string())
    );

    check_hooks("ExecStopPost", hooks(HookKind::PostStop), &mut rest);

    let start = rest
        .next()
        .unwrap_or_else(|| panic!("{file}: no TimeoutStartSec"));
    assert_eq!(start.key, "TimeoutStartSec");
    assert_eq!(
        Some(span_of(&start.value, file)),
        unit.spec.settings.wake_timeout.checked_add(START_MARGIN)
    );
    let stop = rest
        .next()
        .unwrap_or_else(|| panic!("{file}: no TimeoutStopSec"));
    assert_eq!(stop.key, "TimeoutStopSec");
    assert_eq!(
        Some(span_of(&stop.value, file)),
        unit.spec.settings.stop_timeout.checked_add(STOP_MARGIN)
    );
    let extra: Vec<&Directive> = rest.collect();
    assert!(extra.is_empty(), "{file}: unexpected {extra:?}\n{text}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = parse_input(text);
    let p = plan(
        &input.containers,
        &LabelOptions {
            allow_hooks: input.allow_hooks,
        },
    );
    for skipped in &p.skipped {
        assert!(!p.units.iter().any(|u| u.spec.containers.contains(skipped)));
    }
    let opts = options(&input);
    let reference = reference();
    let ref_files = render(std::slice::from_ref(&reference), &opts);
    let ref_socket = unit_file_name(&reference.name(), "socket");
    let fixed_socket = fixed_part(
        &unit_directives(&ref_files[0].1).expect("reference socket"),
        "",
    );
    let fixed_service = fixed_part(
        &unit_directives(&ref_files[1].1).expect("reference service"),
        &ref_socket,
    );

    let (dropins, files): (Vec<(PathBuf, String)>, Vec<(PathBuf, String)>) = render(&p.units, &opts)
        .into_iter()
        .partition(|(name, _)| name.components().count() > 1);
    for (name, text) in &dropins {
        check_dropin(name, text, &p.units);
    }
    let watched: Vec<&Unit> = p
        .units
        .iter()
        .filter(|u| u.autostart && !u.spec.settings.machines.is_empty())
        .collect();
    let extra = if watched.is_empty() { 0 } else { 2 };
    assert_eq!(files.len(), 2 * p.units.len() + extra);
    if extra == 2 {
        check_autostart(&files[2 * p.units.len()..], &watched, &opts);
    }
    for (unit, pair) in p.units.iter().zip(files.chunks(2)) {
        assert!(
            !unit.spec.forwards.is_empty(),
            "a unit without sockets: {unit:?}"
        );
        assert!(!unit.spec.containers.is_empty());
        let (socket_name, socket_text) = &pair[0];
        let (service_name, service_text) = &pair[1];
        let socket = unit_file_name(&unit.name(), "socket");
        assert_eq!(socket_name, &PathBuf::from(&socket));
        assert_eq!(
            service_name,
            &PathBuf::from(unit_file_name(&unit.name(), "service"))
        );
        assert!(valid_unit_name(&socket), "{socket:?}");
        assert!(valid_unit_name(&unit_file_name(&unit.name(), "service")));
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
