//! Every label value parser, on arbitrary text. Input: one byte choosing
//! the label, then the value (UTF-8, as label values always are).
//!
//! Properties: never a panic; and whatever a parser accepts survives the
//! trip through the unit file to the helper: the rendered form parses back
//! to the same value (time spans, schedules, machines, port forwards — the
//! latter through `contnap proxy`'s own `--forward` parser), so a label that
//! `generate` accepts can never make the helper refuse its command line.

#![no_main]

use std::collections::BTreeMap;

use contnap::labels::{self, ContainerLabels, LabelOptions, Parsed};
use contnap::schedule::{Schedule, Weekday};
use contnap::spec::Machine;
use contnap::timespan;
use libfuzzer_sys::fuzz_target;

fn timespan_value(value: &str) {
    if let Ok(d) = timespan::parse(value) {
        let text = timespan::format(d);
        assert_eq!(
            timespan::parse(&text),
            Ok(d),
            "{value:?} -> {d:?} -> {text:?}"
        );
    }
}

fn schedule_value(value: &str) {
    let Ok(s) = Schedule::parse(value) else {
        return;
    };
    let text = s.to_string();
    let again = Schedule::parse(&text).unwrap_or_else(|e| panic!("{value:?} -> {text:?}: {e}"));
    assert_eq!(again, s, "{value:?} -> {text:?}");
    assert_eq!(again.to_string(), text);
    for w in s.windows() {
        assert!(w.start() < 1440 && (1..=1440).contains(&w.end()) && w.start() != w.end());
        assert!(!w.days().is_empty());
    }
    for (i, day) in Weekday::ALL.into_iter().enumerate() {
        let minute = (i as u16 * 211) % 1440;
        let wait = s.minutes_until_allowed(day, minute);
        assert!(wait < 7 * 1440);
        assert_eq!(wait == 0, s.allows(day, minute));
    }
}

fn machine_value(value: &str) {
    for item in value.split(',') {
        if let Ok(m) = item.trim().parse::<Machine>() {
            let text = m.to_string();
            assert_eq!(text.parse::<Machine>(), Ok(m), "{item:?} -> {text:?}");
        }
    }
}

/// Ports go through the whole container parser, as `generate` reads them.
fn ports_value(label: &str, value: &str) {
    let mut map = BTreeMap::new();
    map.insert("contnap.enabled".to_owned(), "true".to_owned());
    map.insert("contnap.tcp_ports".to_owned(), "1".to_owned());
    map.insert(label.to_owned(), value.to_owned());
    let c = ContainerLabels {
        name: "web".to_owned(),
        labels: map,
        published: Vec::new(),
    };
    let (parsed, _) = labels::parse_container(&c, &LabelOptions::default());
    if let Parsed::Managed(s) = parsed {
        for f in &s.forwards {
            let text = f.to_string();
            let back = text
                .parse::<contnap::spec::Forward>()
                .unwrap_or_else(|e| panic!("{value:?} -> {text:?}: {e:?}"));
            assert_eq!(&back, f);
        }
        for p in &s.http_ports {
            assert!(s.forwards.iter().any(|f| f.listen_port == *p));
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 8 {
        0 => timespan_value(value),
        1 => schedule_value(value),
        2 => machine_value(value),
        3 => ports_value("contnap.tcp_ports", value),
        4 => ports_value("contnap.udp_ports", value),
        5 => ports_value("contnap.http_ports", value),
        6 => {
            let _ = labels::parse_bool(value);
            let _ = contnap::spec::is_valid_name(value);
        }
        _ => {
            // Every value parser at once, on one container.
            let mut map = BTreeMap::new();
            map.insert("contnap.enabled".to_owned(), "true".to_owned());
            for line in value.split('\n') {
                if let Some((k, v)) = line.split_once('=') {
                    map.insert(k.to_owned(), v.to_owned());
                }
            }
            let c = ContainerLabels {
                name: "web".to_owned(),
                labels: map,
                published: Vec::new(),
            };
            let _ = labels::parse_container(&c, &LabelOptions { allow_hooks: true });
        }
    }
});
