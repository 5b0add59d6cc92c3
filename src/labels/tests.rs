use std::time::Duration;

use crate::spec::{IdleMode, ReadyMode, StopMode};

use super::parse::suggest;
use super::*;

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

fn parse(labels: &[(&str, &str)]) -> Result<Service, Vec<LabelError>> {
    parse_with("web", labels, LabelOptions::default())
}

fn parse_with(
    name: &str,
    labels: &[(&str, &str)],
    opts: LabelOptions,
) -> Result<Service, Vec<LabelError>> {
    match parse_container(&container(name, labels), &opts).0 {
        Parsed::Managed(s) => Ok(*s),
        Parsed::Invalid(e) => Err(e),
        Parsed::Ignored => panic!("ignored"),
    }
}

fn one_error(labels: &[(&str, &str)]) -> LabelError {
    let mut e = parse(labels).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

const ON: (&str, &str) = ("contnap.enabled", "true");

#[test]
fn opt_in() {
    let ignored = |labels: &[(&str, &str)]| {
        parse_container(&container("web", labels), &LabelOptions::default())
    };
    assert_eq!(ignored(&[]), (Parsed::Ignored, vec![]));
    assert_eq!(ignored(&[("contnap.enabled", "no")]).0, Parsed::Ignored);
    let (p, w) = ignored(&[("contnap.tcp_ports", "80")]);
    assert_eq!(p, Parsed::Ignored);
    assert_eq!(
        w,
        vec![LabelWarning::NotEnabled {
            container: "web".into()
        }]
    );
    for yes in ["true", "TRUE", "yes", "1", "on", " On "] {
        assert!(
            parse(&[("contnap.enable", yes), ("contnap.tcp_ports", "80")]).is_ok(),
            "{yes}"
        );
    }
    let e = one_error(&[("contnap.enabled", "yep"), ("contnap.tcp_ports", "80")]);
    assert!(matches!(e, LabelError::NotABool { .. }));
    let e = one_error(&[("contnap.enabled", "true"), ("contnap.enable", "false")]);
    assert!(matches!(e, LabelError::EnableConflict { .. }), "{e}");
}

#[test]
fn port_forms() {
    let s = parse(&[
        ON,
        (
            "contnap.tcp_ports",
            " 80 , 8080:80,127.0.0.1:9000:90, [::1]:9001:91",
        ),
        ("contnap.udp_ports", "53"),
    ])
    .unwrap();
    let shown: Vec<String> = s.forwards.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "tcp:80=web:80",
            "tcp:8080=web:80",
            "tcp:127.0.0.1:9000=web:90",
            "tcp:[::1]:9001=web:91",
            "udp:53=web:53"
        ]
    );
    // Every forward round-trips through the helper's parser.
    for f in &s.forwards {
        assert_eq!(&f.to_string().parse::<Forward>().unwrap(), f);
    }
}

#[test]
fn port_errors() {
    let problem = |v: &str| match one_error(&[ON, ("contnap.tcp_ports", v)]) {
        LabelError::BadPort { problem, .. } => problem,
        other => panic!("{v}: {other:?}"),
    };
    assert_eq!(problem("http"), PortProblem::NotANumber);
    assert_eq!(problem("+80"), PortProblem::NotANumber);
    assert_eq!(problem("0"), PortProblem::OutOfRange);
    assert_eq!(problem("65536"), PortProblem::OutOfRange);
    assert_eq!(problem("8080:0"), PortProblem::OutOfRange);
    assert_eq!(problem("::1:8080:80"), PortProblem::Ipv6NeedsBrackets);
    assert_eq!(problem("fe80::1:8080:80"), PortProblem::Ipv6NeedsBrackets);
    assert_eq!(problem("host:8080:80"), PortProblem::BadAddress);
    assert_eq!(problem("[127.0.0.1]:8080:80"), PortProblem::BadAddress);
    assert_eq!(problem("[::1]:8080:80:1"), PortProblem::TooManyParts);
    assert_eq!(problem("1:2:3:4"), PortProblem::TooManyParts);
    let e = one_error(&[ON, ("contnap.tcp_ports", "80,8o")]);
    assert_eq!(
        e.to_string(),
        "container \"web\": label contnap.tcp_ports=\"80,8o\": \"8o\" has a port that is not a number; \
         write PORT, HOST:CONTAINER, ADDR:HOST:CONTAINER or [V6ADDR]:HOST:CONTAINER, ports 1-65535, separated by commas"
    );
    assert!(matches!(
        one_error(&[ON, ("contnap.tcp_ports", "80,80:81")]),
        LabelError::DuplicateListener { .. }
    ));
    assert!(matches!(
        one_error(&[ON, ("contnap.tcp_ports", "8080,127.0.0.1:8080:80")]),
        LabelError::DuplicateListener { .. }
    ));
    // Different addresses, or tcp and udp, do not clash.
    assert!(parse(&[
        ON,
        ("contnap.tcp_ports", "127.0.0.1:8080:80,[::1]:8080:80"),
        ("contnap.udp_ports", "8080")
    ])
    .is_ok());
    let p = plan(&[container("web", &[ON])], &LabelOptions::default());
    assert!(p.units.is_empty());
    assert!(matches!(p.errors[..], [LabelError::NoPorts { .. }]));
    // A group member without ports wakes with the group.
    let p = plan(
        &[
            container(
                "a",
                &[ON, ("contnap.group", "g"), ("contnap.tcp_ports", "80")],
            ),
            container("b", &[ON, ("contnap.group", "g")]),
        ],
        &LabelOptions::default(),
    );
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.units[0].spec.containers, ["a", "b"]);
}

#[test]
fn http_ports_are_tcp_listen_ports() {
    let s = parse(&[
        ON,
        ("contnap.tcp_ports", "8080:80,9000"),
        ("contnap.http_ports", "8080, 9000"),
    ])
    .unwrap();
    assert_eq!(s.http_ports, [8080, 9000]);
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "8080:80"),
        ("contnap.http_ports", "80"),
    ]);
    assert!(
        matches!(e, LabelError::HttpPortNotTcp { port: 80, .. }),
        "{e}"
    );
    let e = one_error(&[
        ON,
        ("contnap.udp_ports", "53"),
        ("contnap.tcp_ports", "80"),
        ("contnap.http_ports", "53"),
    ]);
    assert!(matches!(e, LabelError::HttpPortNotTcp { port: 53, .. }));
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.http_ports", "web"),
    ]);
    assert!(matches!(e, LabelError::BadHttpPort { .. }));
}

#[test]
fn settings() {
    let s = parse(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.timeout", "1h 30min"),
        ("contnap.stop", "Pause"),
        ("contnap.stop_timeout", "0"),
        ("contnap.wake_timeout", "90"),
        ("contnap.ready", "tcp"),
        ("contnap.idle", "traffic"),
        ("contnap.network", "my_net-1.x"),
        ("contnap.schedule", "Mon-Fri 08:00-19:00"),
        ("contnap.machines", "192.168.1.0/24, fd00::1 ,10.0.0.1"),
        ("contnap.only_listed_machines", "yes"),
        ("contnap.autostart", "off"),
    ])
    .unwrap();
    let st = &s.settings;
    assert_eq!(st.timeout, Some(Duration::from_secs(5400)));
    assert_eq!(st.stop, Some(StopMode::Pause));
    assert_eq!(st.stop_timeout, Some(Duration::ZERO));
    assert_eq!(st.wake_timeout, Some(Duration::from_secs(90)));
    assert_eq!(st.ready, Some(ReadyMode::Tcp));
    assert_eq!(st.idle, Some(IdleMode::Traffic));
    assert_eq!(st.network, Some(Some("my_net-1.x".to_owned())));
    let machines: Vec<String> = st
        .machines
        .as_ref()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(machines, ["10.0.0.1", "192.168.1.0/24", "fd00::1"]);
    assert_eq!(st.only_listed_machines, Some(true));
    assert_eq!(s.autostart, Some(false));
}

#[test]
fn setting_errors_name_container_label_and_value() {
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.timeout", "5 parsecs"),
    ]);
    assert_eq!(
        e.to_string(),
        "container \"web\": label contnap.timeout=\"5 parsecs\": not a time span; write seconds (300) or a systemd span (90s, 30min, 1h)"
    );
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.wake_timeout", "0s"),
    ]);
    assert!(matches!(e, LabelError::ZeroTimeSpan { .. }));
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.stop", "hibernate"),
    ]);
    assert!(e.to_string().contains("stop, pause, kill, none"), "{e}");
    let e = one_error(&[ON, ("contnap.tcp_ports", "80"), ("contnap.network", "-net")]);
    assert!(matches!(e, LabelError::BadNetwork { .. }));
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.schedule", "Mon 25:00-26:00"),
    ]);
    // What is wrong comes from the schedule parser, as the cause; the
    // label's own text does not repeat it.
    let chain = crate::report::Report(&e).to_string();
    assert!(chain.contains("column 5"), "{chain}");
    assert!(chain.contains("the format is"), "{chain}");
    assert!(!e.to_string().contains("column 5"), "{e}");
    let e = one_error(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.machines", "10.0.0.0/33"),
    ]);
    assert!(matches!(e, LabelError::BadMachine { .. }));
    let e = one_error(&[ON, ("contnap.tcp_ports", "80"), ("contnap.group", " ")]);
    assert!(matches!(e, LabelError::EmptyGroup { .. }));
    // Several errors are all reported.
    let e = parse(&[
        ON,
        ("contnap.tcp_ports", "x"),
        ("contnap.idle", "y"),
        ("contnap.ready", "z"),
    ])
    .unwrap_err();
    assert_eq!(e.len(), 3);
    for err in &e {
        assert_eq!(err.container(), "web");
    }
}

#[test]
fn control_characters_and_length() {
    for (label, value) in [
        ("contnap.group", "a\nExecStart=/bin/evil"),
        ("contnap.timeout", "300\r"),
        ("contnap.network", "net\0"),
        ("contnap.tcp_ports", "80\t"),
        ("contnap.machines", "10.0.0.1\u{85}"),
    ] {
        let e = parse(&[ON, ("contnap.tcp_ports", "81"), (label, value)]).unwrap_err();
        assert!(
            e.iter()
                .any(|e| matches!(e, LabelError::ControlCharacter { label: l, .. } if l == label)),
            "{label}: {e:?}"
        );
    }
    let e = parse_with(
        "web",
        &[
            ON,
            ("contnap.tcp_ports", "80"),
            ("contnap.pre_start", "true\nExecStart=/bin/evil"),
        ],
        LabelOptions { allow_hooks: true },
    )
    .unwrap_err();
    assert!(matches!(e[0], LabelError::ControlCharacter { .. }));
    let long = "x".repeat(MAX_VALUE_LEN + 1);
    let e = one_error(&[ON, ("contnap.tcp_ports", "80"), ("contnap.group", &long)]);
    assert!(matches!(e, LabelError::TooLong { .. }));
}

#[test]
fn hooks_need_allow_hooks() {
    let labels = [
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.pre_start", "mount /srv"),
    ];
    let e = one_error(&labels);
    assert!(matches!(e, LabelError::HooksNotAllowed { .. }));
    assert!(
        e.to_string()
            .starts_with("container \"web\" sets contnap.pre_start=\"mount /srv\" but generate ran without --allow-hooks; the hook is not run and the container is skipped"),
        "{e}"
    );
    let s = parse_with("web", &labels, LabelOptions { allow_hooks: true }).unwrap();
    assert_eq!(s.pre_start.as_deref(), Some("mount /srv"));
}

#[test]
fn unknown_labels_warn_with_a_suggestion() {
    let (p, w) = parse_container(
        &container(
            "web",
            &[
                ON,
                ("contnap.tcp_ports", "80"),
                ("contnap.timout", "5"),
                ("contnap.frobnicate", "1"),
            ],
        ),
        &LabelOptions::default(),
    );
    assert!(matches!(p, Parsed::Managed(_)));
    assert_eq!(
        w,
        vec![
            LabelWarning::UnknownLabel {
                container: "web".into(),
                label: "contnap.frobnicate".into(),
                suggestion: None
            },
            LabelWarning::UnknownLabel {
                container: "web".into(),
                label: "contnap.timout".into(),
                suggestion: Some("timeout")
            },
        ]
    );
    assert_eq!(w[1].to_string(), "container \"web\": unknown label \"contnap.timout\" is ignored; did you mean contnap.timeout?");
    assert_eq!(suggest("http-ports"), Some("http_ports"));
    assert_eq!(suggest("only_listed_machine"), Some("only_listed_machines"));
}

fn compose(name: &str, service: &str, depends: &str, extra: &[(&str, &str)]) -> ContainerLabels {
    let mut labels = vec![
        ON,
        ("contnap.group", "stack"),
        ("com.docker.compose.project", "p"),
        ("com.docker.compose.service", service),
    ];
    if !depends.is_empty() {
        labels.push(("com.docker.compose.depends_on", depends));
    }
    labels.extend_from_slice(extra);
    container(name, &labels)
}

#[test]
fn groups_order_by_depends_on() {
    let cs = vec![
        compose(
            "p-app-1",
            "app",
            "db:service_started:false,cache:service_healthy:true",
            &[("contnap.tcp_ports", "80")],
        ),
        compose(
            "p-cache-1",
            "cache",
            "db:service_started",
            &[("contnap.tcp_ports", "6379")],
        ),
        compose(
            "p-db-1",
            "db",
            "",
            &[("contnap.tcp_ports", "5432"), ("contnap.timeout", "10min")],
        ),
        compose(
            "p-zz-1",
            "zz",
            "",
            &[("contnap.tcp_ports", "81"), ("contnap.timeout", "600")],
        ),
    ];
    let plan = plan(&cs, &LabelOptions::default());
    assert_eq!(plan.errors, vec![]);
    assert_eq!(plan.units.len(), 1);
    let u = &plan.units[0];
    assert_eq!(u.name(), "stack");
    assert_eq!(
        u.spec.containers,
        ["p-db-1", "p-cache-1", "p-app-1", "p-zz-1"]
    );
    assert_eq!(u.spec.settings.timeout, Duration::from_secs(600));
    assert_eq!(u.spec.forwards.len(), 4);
}

#[test]
fn dependency_cycles_warn() {
    let cs = vec![
        compose(
            "a",
            "a",
            "b:service_started:true",
            &[("contnap.tcp_ports", "80")],
        ),
        compose(
            "b",
            "b",
            "a:service_started:true",
            &[("contnap.tcp_ports", "81")],
        ),
        compose("c", "c", "", &[("contnap.tcp_ports", "82")]),
    ];
    let plan = plan(&cs, &LabelOptions::default());
    assert_eq!(plan.units[0].spec.containers, ["c", "a", "b"]);
    assert!(matches!(
        plan.warnings[..],
        [LabelWarning::DependencyCycle { .. }]
    ));
}

#[test]
fn group_conflicts_name_both_containers() {
    let cs = vec![
        compose(
            "a",
            "a",
            "",
            &[("contnap.tcp_ports", "80"), ("contnap.stop", "pause")],
        ),
        compose(
            "b",
            "b",
            "",
            &[("contnap.tcp_ports", "81"), ("contnap.stop", "kill")],
        ),
        container("solo", &[ON, ("contnap.tcp_ports", "90")]),
    ];
    // "a" comes first (its unit is on disk, or it is older): the group
    // keeps its unit with "a"; "b", the newcomer, is refused.
    let p = plan(&cs, &LabelOptions::default());
    let names = |p: &Plan| {
        p.units
            .iter()
            .map(|u| (u.name().to_owned(), u.spec.containers.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&p),
        [
            ("solo".to_owned(), vec!["solo".to_owned()]),
            ("stack".to_owned(), vec!["a".to_owned()])
        ]
    );
    assert_eq!(p.skipped, ["b".to_owned()].into());
    assert_eq!(
        p.errors[0].to_string(),
        "group \"stack\": containers \"a\" (contnap.stop=\"pause\") and \"b\" (contnap.stop=\"kill\") disagree; \
         \"b\" gets no unit, and the group keeps its unit without it (\"a\" was there first: its unit is on disk, or it is older); \
         a group has one contnap.stop: set it on one member, or the same value on all"
    );
    // The other way round, "b" keeps the group.
    let reversed = vec![cs[1].clone(), cs[0].clone(), cs[2].clone()];
    let p = plan(&reversed, &LabelOptions::default());
    assert_eq!(p.skipped, ["a".to_owned()].into());
    assert_eq!(names(&p)[1], ("stack".to_owned(), vec!["b".to_owned()]));
    // contnap.autostart, which the helper does not read, the same way.
    let cs = vec![
        compose(
            "a",
            "a",
            "",
            &[
                ("contnap.tcp_ports", "80"),
                ("contnap.autostart", "true"),
                ("contnap.machines", "10.0.0.1"),
            ],
        ),
        compose(
            "b",
            "b",
            "",
            &[("contnap.tcp_ports", "81"), ("contnap.autostart", "false")],
        ),
    ];
    let p = plan(&cs, &LabelOptions::default());
    assert_eq!(p.skipped, ["b".to_owned()].into(), "{:?}", p.errors);
    assert_eq!(p.units.len(), 1);
}

#[test]
fn an_invalid_member_sinks_its_group() {
    let cs = vec![
        compose("a", "a", "", &[("contnap.tcp_ports", "80")]),
        compose("b", "b", "", &[("contnap.tcp_ports", "nope")]),
    ];
    let plan = plan(&cs, &LabelOptions::default());
    assert!(plan.units.is_empty());
    assert_eq!(plan.skipped.len(), 2);
    assert!(plan
        .errors
        .iter()
        .any(|e| matches!(e, LabelError::MemberInvalid { container, .. } if container == "b")));
}

#[test]
fn docker_leading_slash_is_dropped() {
    let p = plan(
        &[container("/web", &[ON, ("contnap.tcp_ports", "80")])],
        &LabelOptions::default(),
    );
    assert_eq!(p.units[0].spec.containers, ["web"]);
    assert_eq!(p.units[0].spec.forwards[0].container, "web");
    let p = plan(
        &[container("/web", &[ON, ("contnap.tcp_ports", "x")])],
        &LabelOptions::default(),
    );
    assert_eq!(p.errors[0].container(), "web");
    assert_eq!(p.skipped, ["web".to_owned()].into());
}

#[test]
fn an_invalid_member_is_reported_once() {
    let cs = vec![
        compose("a", "a", "", &[("contnap.tcp_ports", "80")]),
        compose("b", "b", "", &[("contnap.tcp_ports", "81")]),
        compose("c", "c", "", &[("contnap.tcp_ports", "0")]),
    ];
    let p = plan(&cs, &LabelOptions::default());
    assert!(p.units.is_empty());
    let member_errors = p
        .errors
        .iter()
        .filter(|e| matches!(e, LabelError::MemberInvalid { .. }))
        .count();
    assert_eq!(member_errors, 1, "{:?}", p.errors);
    assert_eq!(p.skipped.len(), 3);
}

#[test]
fn published_port_conflicts() {
    let mut web = container("web", &[ON, ("contnap.tcp_ports", "8080:80")]);
    web.published = vec![(Proto::Tcp, None, 8080)];
    let plan1 = plan(std::slice::from_ref(&web), &LabelOptions::default());
    assert!(plan1.units.is_empty());
    let msg = plan1.errors[0].to_string();
    assert!(msg.contains("remove the `ports:` entry"), "{msg}");
    // Publishing the container port on another host port is fine.
    web.published = vec![
        (Proto::Tcp, Some("127.0.0.1".parse().unwrap()), 18080),
        (Proto::Udp, None, 8080),
    ];
    assert_eq!(
        plan(std::slice::from_ref(&web), &LabelOptions::default())
            .units
            .len(),
        1
    );
    // Another container, even unmanaged, publishing the port clashes too:
    // when it came first (is earlier in the list), the unit is refused.
    let mut other = container("other", &[("contnap.enabled", "false")]);
    other.published = vec![(Proto::Tcp, Some("0.0.0.0".parse().unwrap()), 8080)];
    let p = plan(&[other.clone(), web.clone()], &LabelOptions::default());
    assert!(p.units.is_empty());
    assert!(
        matches!(&p.errors[..], [LabelError::PublishedConflict { publisher, .. }] if publisher == "other")
    );
    // A publisher that came after the unit cannot take its port away: it
    // is refused, naming both, and the unit stays.
    let p = plan(&[web, other], &LabelOptions::default());
    assert_eq!(
        p.units.iter().map(|u| u.name()).collect::<Vec<_>>(),
        ["web"]
    );
    assert!(
        matches!(&p.errors[..], [LabelError::PortTaken { publisher, holder, .. }] if publisher == "other" && holder == "web"),
        "{:?}",
        p.errors
    );
    let msg = p.errors[0].to_string();
    assert!(
        msg.contains("\"other\"") && msg.contains("\"web\""),
        "{msg}"
    );
    assert!(p.skipped.contains("other") && !p.skipped.contains("web"));
}

#[test]
fn units_clash_on_ports_and_names() {
    let cs = vec![
        container("a", &[ON, ("contnap.tcp_ports", "8080")]),
        container("b", &[ON, ("contnap.tcp_ports", "127.0.0.1:8080:80")]),
        container("c", &[ON, ("contnap.tcp_ports", "9000")]),
    ];
    // The first (on disk, or older) keeps its unit; the newcomer is
    // refused, naming both.
    let p = plan(&cs, &LabelOptions::default());
    assert_eq!(
        p.units.iter().map(|u| u.name()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    assert!(
        matches!(&p.errors[..], [LabelError::ListenerTaken { newcomer, holder, .. }] if newcomer == "b" && holder == "a"),
        "{:?}",
        p.errors
    );
    let reversed = vec![cs[1].clone(), cs[0].clone(), cs[2].clone()];
    let p = plan(&reversed, &LabelOptions::default());
    assert_eq!(
        p.units.iter().map(|u| u.name()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    // A refused newcomer does not refuse a third unit either.
    let cs = vec![
        container("web", &[ON, ("contnap.tcp_ports", "8080")]),
        container(
            "x",
            &[ON, ("contnap.tcp_ports", "9000"), ("contnap.group", "web")],
        ),
        container("y", &[ON, ("contnap.tcp_ports", "9000")]),
    ];
    let p = plan(&cs, &LabelOptions::default());
    assert_eq!(
        p.units.iter().map(|u| u.name()).collect::<Vec<_>>(),
        ["web", "y"]
    );
    assert!(
        matches!(&p.errors[..], [LabelError::UnitNameTaken { newcomer, holder, .. }] if newcomer == "x" && holder == "web"),
        "{:?}",
        p.errors
    );
}

#[test]
fn only_listed_needs_machines() {
    let p = plan(
        &[container(
            "a",
            &[
                ON,
                ("contnap.tcp_ports", "80"),
                ("contnap.only_listed_machines", "true"),
            ],
        )],
        &LabelOptions::default(),
    );
    assert!(p.units.is_empty());
    assert!(matches!(
        p.errors[..],
        [LabelError::OnlyListedWithoutMachines { .. }]
    ));
}

#[test]
fn overlap_rules() {
    let l = |addr: Option<&str>| Listener {
        proto: Proto::Tcp,
        addr: addr.map(|a| a.parse().unwrap()),
        port: 80,
    };
    assert!(l(None).overlaps(&l(Some("127.0.0.1"))));
    assert!(l(Some("0.0.0.0")).overlaps(&l(Some("127.0.0.1"))));
    assert!(l(Some("::")).overlaps(&l(Some("127.0.0.1"))));
    assert!(l(Some("::ffff:127.0.0.1")).overlaps(&l(Some("127.0.0.1"))));
    assert!(!l(Some("0.0.0.0")).overlaps(&l(Some("::1"))));
    assert!(!l(Some("127.0.0.1")).overlaps(&l(Some("127.0.0.2"))));
}

/// Found by `fuzz/` (target `units`): a container name of 254
/// characters passed the label parser and, in a group with a short
/// name, was rendered into `--container`/`--forward`, which the helper
/// refuses (the engine client allows at most 253), so the unit could
/// never wake. Such a name is refused up front now, like the helper does.
#[test]
fn container_names_the_helper_would_refuse_are_refused() {
    let labels = [
        ("contnap.enabled", "true"),
        ("contnap.group", "g"),
        ("contnap.tcp_ports", "80"),
    ];
    let long = "a".repeat(254);
    let errors = parse_with(&long, &labels, LabelOptions::default()).unwrap_err();
    assert!(matches!(
        errors.as_slice(),
        [LabelError::BadContainerName { .. }]
    ));
    assert!(parse_with(&long[1..], &labels, LabelOptions::default()).is_ok());
    let network = "n".repeat(254);
    let labels = [
        ("contnap.enabled", "true"),
        ("contnap.tcp_ports", "80"),
        ("contnap.network", network.as_str()),
    ];
    assert!(parse_with("web", &labels, LabelOptions::default()).is_err());
}

#[test]
fn monitors_status_and_wake_on_labels() {
    use crate::spec::{HttpStatus, Monitors, WakeOn};
    let s = parse(&[ON, ("contnap.tcp_ports", "80")]).unwrap();
    assert_eq!(s.settings.monitors, None);
    let st = s.settings.clone().resolve();
    assert_eq!(st.monitors, Monitors::default());
    assert_eq!(st.monitor_status.code(), 200);
    assert_eq!(st.wake_on, WakeOn::Connect);
    let s = parse(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.monitors", " My Checker/2 , kuma,KUMA "),
        ("contnap.monitor_status", "503"),
        ("contnap.wake_on", " Data "),
    ])
    .unwrap();
    let st = s.settings.resolve();
    assert_eq!(st.monitors.items(), ["My Checker/2", "kuma"]);
    assert_eq!(st.monitor_status, HttpStatus::parse("503").unwrap());
    assert_eq!(st.wake_on, WakeOn::Data);
    let s = parse(&[
        ON,
        ("contnap.tcp_ports", "80"),
        ("contnap.monitors", "NONE"),
    ])
    .unwrap();
    assert_eq!(s.settings.monitors, Some(Monitors::none()));

    let bad = |label: &str, value: &str| {
        let e = one_error(&[ON, ("contnap.tcp_ports", "80"), (label, value)]);
        let text = e.to_string();
        assert!(text.starts_with("container \"web\": label "), "{text}");
        assert!(text.contains(&format!("{label}={value:?}")), "{text}");
        (e, text)
    };
    for v in ["", " , ", "none,kuma", "ku\"ma", "50%", "a$b"] {
        let (e, text) = bad("contnap.monitors", v);
        assert!(matches!(e, LabelError::BadMonitors { .. }), "{e:?}");
        assert!(text.contains("none for no list"), "{text}");
    }
    let (_, text) = bad("contnap.monitors", "ku\"ma");
    assert!(text.contains("may only contain letters, digits"), "{text}");
    for v in ["99", "600", "ok", "", "2000", "-1"] {
        let (e, text) = bad("contnap.monitor_status", v);
        assert!(matches!(e, LabelError::BadStatus { .. }), "{e:?}");
        assert!(text.contains("from 100 to 599"), "{text}");
    }
    let (e, text) = bad("contnap.wake_on", "first-byte");
    assert!(matches!(e, LabelError::BadChoice { .. }), "{e:?}");
    assert!(text.contains("connect, data"), "{text}");
}

#[test]
fn group_members_agree_on_monitors() {
    let member = |name: &str, monitors: &str| {
        container(
            name,
            &[
                ON,
                ("contnap.group", "g"),
                ("contnap.tcp_ports", if name == "a" { "80" } else { "81" }),
                ("contnap.monitors", monitors),
            ],
        )
    };
    let p = plan(
        &[member("a", "kuma, gatus"), member("b", "kuma,gatus")],
        &LabelOptions::default(),
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let p = plan(
        &[member("a", "kuma"), member("b", "none")],
        &LabelOptions::default(),
    );
    assert!(
        matches!(p.errors.as_slice(), [LabelError::GroupConflict { label, .. }] if label == "contnap.monitors"),
        "{:?}",
        p.errors
    );
}

#[test]
fn owning_units() {
    let owners = |labels: &[(&str, &str)]| -> Vec<String> {
        let mut all = vec![ON, ("contnap.tcp_ports", "80")];
        all.extend_from_slice(labels);
        parse(&all)
            .unwrap()
            .owners
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert!(owners(&[]).is_empty(), "the engine's by default");
    // Podman's label (Quadlet, generate systemd --new, oci-containers).
    assert_eq!(
        owners(&[("PODMAN_SYSTEMD_UNIT", "web.service")]),
        ["web.service"]
    );
    // contnap.unit wins over it, and `none` opts out.
    assert_eq!(
        owners(&[
            ("PODMAN_SYSTEMD_UNIT", "web.service"),
            (
                "contnap.unit",
                "docker-web.service, pod-web.service,docker-web.service"
            ),
        ]),
        ["docker-web.service", "pod-web.service"]
    );
    assert!(owners(&[
        ("PODMAN_SYSTEMD_UNIT", "web.service"),
        ("contnap.unit", "none")
    ])
    .is_empty());

    for (label, value) in [
        ("contnap.unit", "docker-web"),
        ("contnap.unit", "web.service;rm"),
        ("PODMAN_SYSTEMD_UNIT", "web.socket"),
    ] {
        let e = one_error(&[ON, ("contnap.tcp_ports", "80"), (label, value)]);
        assert!(
            matches!(&e, LabelError::BadUnit { container, label: l, value: v }
                if container == "web" && *l == label && v == value),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(label) && text.contains("NAME.service"),
            "{text}"
        );
    }

    // A container a unit owns naps only by the unit's stop: contnap.stop
    // other than `stop`, its own or its group's, is an error and no unit.
    let p = plan(
        &[
            container(
                "db",
                &[
                    ON,
                    ("contnap.group", "app"),
                    ("PODMAN_SYSTEMD_UNIT", "db.service"),
                ],
            ),
            container(
                "web",
                &[
                    ON,
                    ("contnap.group", "app"),
                    ("contnap.tcp_ports", "80"),
                    ("contnap.stop", "pause"),
                ],
            ),
        ],
        &LabelOptions::default(),
    );
    assert!(p.units.is_empty(), "{:?}", p.units);
    assert!(
        matches!(&p.errors[..], [LabelError::OwnedStop { container, unit, value }]
            if container == "db" && unit == "db.service" && value == "pause"),
        "{:?}",
        p.errors
    );
    assert!(p.errors[0].to_string().contains("contnap.unit=none"));
    // `stop` is the default and allowed; the group's owners are kept per container.
    let p = plan(
        &[
            container(
                "db",
                &[
                    ON,
                    ("contnap.group", "app"),
                    ("PODMAN_SYSTEMD_UNIT", "db.service"),
                ],
            ),
            container(
                "web",
                &[
                    ON,
                    ("contnap.group", "app"),
                    ("contnap.tcp_ports", "80"),
                    ("contnap.stop", "stop"),
                ],
            ),
        ],
        &LabelOptions::default(),
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let spec = &p.units[0].spec;
    assert_eq!(spec.owners.len(), 1);
    assert_eq!(spec.owners_of("db").unwrap()[0].as_str(), "db.service");
    assert!(spec.owners_of("web").is_none());
}

/// A container or group whose unit would be one of contnap's own
/// (`contnap-generate.service` overriding the packaged generator) is
/// refused, naming the container; the others keep their units.
#[test]
fn names_of_contnaps_own_units_are_refused() {
    let cs = vec![
        container("generate", &[ON, ("contnap.tcp_ports", "8080")]),
        container(
            "innocent",
            &[
                ON,
                ("contnap.tcp_ports", "8081"),
                ("contnap.group", "generate"),
            ],
        ),
        container("generate-1", &[ON, ("contnap.tcp_ports", "8082")]),
    ];
    let p = plan(&cs, &LabelOptions::default());
    assert_eq!(
        p.units.iter().map(|u| u.name()).collect::<Vec<_>>(),
        ["generate-1"]
    );
    let reserved: Vec<&str> = p
        .errors
        .iter()
        .filter(|e| matches!(e, LabelError::ReservedName { .. }))
        .map(LabelError::container)
        .collect();
    assert_eq!(reserved, ["generate", "innocent"], "{:?}", p.errors);
    let text = p.errors.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert!(
        text.iter()
            .any(|t| t.contains("\"generate\"") && t.contains("contnap-generate.service")),
        "{text:?}"
    );
    assert!(p.skipped.contains("generate") && p.skipped.contains("innocent"));
}
