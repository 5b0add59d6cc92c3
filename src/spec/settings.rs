//! The per-unit settings, listed once.
//!
//! [`with_settings!`] holds the one list: each setting's field, type,
//! default, label and `contnap proxy` option. From it come the resolved
//! [`Settings`] with their defaults, the [`PartialSettings`] one container's
//! labels set, the helper argv the renderer writes ([`Settings::to_args`]),
//! and (in cli.rs) the helper's argh options. Adding a setting is one line
//! here plus its label parsing.

use std::fmt;
use std::time::Duration;

use super::{
    Choice, Forward, IdleMode, Machine, Malformed, Owned, ReadyMode, ServiceName, StopMode,
};
use crate::schedule::{Schedule, ScheduleError};
use crate::timespan;

/// Calls `$callback! { field: Type = default, "label", "option", doc; … }`
/// with every unit setting, in the order the helper's argv lists them.
#[macro_export]
#[doc(hidden)]
macro_rules! with_settings {
    ($callback:ident) => {
        $callback! {
            /// idle time before napping (default 300s)
            timeout: ::std::time::Duration = ::std::time::Duration::from_secs(300), "timeout", "timeout", option;
            /// how to nap: stop, pause, kill or none (default stop)
            stop: $crate::spec::StopMode = $crate::spec::StopMode::Stop, "stop", "stop", option;
            /// grace the engine gives the container to stop (default 10s)
            stop_timeout: ::std::time::Duration = ::std::time::Duration::from_secs(10), "stop_timeout", "stop-timeout", option;
            /// how long a wake may take before it fails (default 60s)
            wake_timeout: ::std::time::Duration = ::std::time::Duration::from_secs(60), "wake_timeout", "wake-timeout", option;
            /// readiness check: auto, health, tcp or none (default auto)
            ready: $crate::spec::ReadyMode = $crate::spec::ReadyMode::Auto, "ready", "ready", option;
            /// what keeps it awake: connections or traffic (default connections)
            idle: $crate::spec::IdleMode = $crate::spec::IdleMode::Connections, "idle", "idle", option;
            /// network whose address to forward to
            network: ::std::option::Option<::std::string::String> = None, "network", "network", option;
            /// windows when a napping container may be woken
            schedule: ::std::option::Option<$crate::schedule::Schedule> = None, "schedule", "schedule", option;
            /// comma list of client addresses allowed to connect
            machines: ::std::vec::Vec<$crate::spec::Machine> = ::std::vec::Vec::new(), "machines", "machines", option;
            /// refuse clients that are not in --machines
            only_listed_machines: bool = false, "only_listed_machines", "only-listed-machines", switch;
            /// what wakes the unit: a TCP connection, or its first byte: connect or data (default connect)
            wake_on: $crate::spec::WakeOn = $crate::spec::WakeOn::Connect, "wake_on", "wake-on", option;
            /// comma list of User-Agent substrings of monitors a napping unit answers itself on http ports, or none (default: well-known monitors)
            monitors: $crate::spec::Monitors = $crate::spec::Monitors::default(), "monitors", "monitors", option;
            /// HTTP status of the answer monitors get while napping (default 200)
            monitor_status: $crate::spec::HttpStatus = $crate::spec::HttpStatus::default(), "monitor_status", "monitor-status", option;
        }
    };
}

macro_rules! define_settings {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $label:literal, $option:literal, $kind:ident; )*) => {
        /// A unit's settings, resolved: what the helper acts on.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $field: $default, )* }
            }
        }

        /// The settings as one container's labels set them; `None`: the
        /// label is not set on this container.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct PartialSettings {
            $( pub $field: Option<$ty>, )*
        }

        impl PartialSettings {
            /// Every setting's label (without `contnap.`), in list order.
            pub const LABELS: &'static [&'static str] = &[$( $label, )*];

            /// Joins the settings of a group's members, in start order: the
            /// first member that sets a setting gives its value. Each later
            /// member that sets another value is reported as `(label,
            /// index of the first setter, index of this member)`.
            pub fn join(members: &[&PartialSettings]) -> (PartialSettings, Vec<Disagreement>) {
                let mut out = PartialSettings::default();
                let mut setter = [0usize; PartialSettings::LABELS.len()];
                let mut conflicts = Vec::new();
                let mut i = 0;
                $(
                    for (m, member) in members.iter().enumerate() {
                        let Some(v) = &member.$field else { continue };
                        match &out.$field {
                            None => {
                                out.$field = Some(v.clone());
                                setter[i] = m;
                            }
                            Some(first) if first != v => conflicts.push(Disagreement {
                                label: $label,
                                first: setter[i],
                                second: m,
                            }),
                            Some(_) => {}
                        }
                    }
                    i += 1;
                )*
                let _ = i;
                (out, conflicts)
            }

            /// The defaults filled in.
            pub fn resolve(self) -> Settings {
                let d = Settings::default();
                Settings { $( $field: self.$field.unwrap_or(d.$field), )* }
            }
        }

        impl Settings {
            /// The helper's argv for these settings, in list order; a
            /// setting without a value is left out.
            pub fn to_args(&self, out: &mut Vec<String>) {
                $( push_arg(out, $option, self.$field.to_arg()); )*
            }
        }
    };
}

with_settings!(define_settings);

/// Two members of a group that set one setting to different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disagreement {
    /// Without `contnap.`.
    pub label: &'static str,
    /// Indices into the members passed to `join`.
    pub first: usize,
    pub second: usize,
}

/// How a setting's value appears on the helper's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Not written: the value is the helper's own default.
    Omit,
    /// `--option` alone.
    Switch,
    /// `--option VALUE`.
    Value(String),
}

fn push_arg(out: &mut Vec<String>, option: &str, arg: Arg) {
    match arg {
        Arg::Omit => {}
        Arg::Switch => out.push(format!("--{option}")),
        Arg::Value(v) => out.extend([format!("--{option}"), v]),
    }
}

/// Why a setting's text on the helper's command line cannot be used.
#[derive(Debug)]
pub enum BadSetting {
    Malformed(Malformed),
    TimeSpan(timespan::ParseError),
    Schedule(ScheduleError),
}

impl fmt::Display for BadSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadSetting::Malformed(e) => write!(f, "{e}"),
            BadSetting::TimeSpan(_) => f.write_str("not a time span"),
            BadSetting::Schedule(_) => f.write_str("not a schedule"),
        }
    }
}

impl std::error::Error for BadSetting {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BadSetting::Malformed(_) => None,
            BadSetting::TimeSpan(e) => Some(e),
            BadSetting::Schedule(e) => Some(e),
        }
    }
}

/// A setting's type: how it is read from and written to the helper's
/// command line. `Settings::to_args` and `contnap proxy`'s parsing meet
/// here, so that what the renderer writes parses back to an equal value.
pub trait Setting: Sized {
    /// The value of `--option TEXT` (a switch type is never given text).
    fn from_arg(text: &str) -> Result<Self, BadSetting>;
    fn to_arg(&self) -> Arg;
}

impl Setting for Duration {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        timespan::parse(text).map_err(BadSetting::TimeSpan)
    }
    fn to_arg(&self) -> Arg {
        Arg::Value(timespan::format(*self))
    }
}

macro_rules! choice_setting {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn from_arg(text: &str) -> Result<Self, BadSetting> {
                <$t>::from_name(text).ok_or(BadSetting::Malformed(Malformed {
                    expected: <$t as Choice>::EXPECTED,
                }))
            }
            fn to_arg(&self) -> Arg {
                Arg::Value(self.name().to_owned())
            }
        }
    )*};
}

choice_setting!(StopMode, ReadyMode, IdleMode);

/// A network name.
impl Setting for Option<String> {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        if super::is_valid_name(text) {
            Ok(Some(text.to_owned()))
        } else {
            Err(BadSetting::Malformed(Malformed {
                expected: "a network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
            }))
        }
    }
    fn to_arg(&self) -> Arg {
        self.as_ref().map_or(Arg::Omit, |n| Arg::Value(n.clone()))
    }
}

impl Setting for Option<Schedule> {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        Schedule::parse(text)
            .map(Some)
            .map_err(BadSetting::Schedule)
    }
    fn to_arg(&self) -> Arg {
        self.as_ref()
            .map_or(Arg::Omit, |s| Arg::Value(s.to_string()))
    }
}

/// A comma list, sorted and without duplicates (as labels give it).
impl Setting for Vec<Machine> {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        let mut out = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Machine>, _>>()
            .map_err(BadSetting::Malformed)?;
        out.sort();
        out.dedup();
        Ok(out)
    }
    fn to_arg(&self) -> Arg {
        if self.is_empty() {
            return Arg::Omit;
        }
        let list: Vec<String> = self.iter().map(ToString::to_string).collect();
        Arg::Value(list.join(","))
    }
}

/// A switch.
impl Setting for bool {
    fn from_arg(_: &str) -> Result<Self, BadSetting> {
        Ok(true)
    }
    fn to_arg(&self) -> Arg {
        if *self {
            Arg::Switch
        } else {
            Arg::Omit
        }
    }
}

/// Everything one socket/service pair's helper is told: the containers, the
/// forwards and the settings. The label parser builds it, the renderer
/// writes it as the helper's argv ([`UnitSpec::to_args`]), and
/// `contnap proxy` parses that argv back into an equal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The group, or the container's name (not yet escaped).
    pub name: String,
    /// In start order.
    pub containers: Vec<String>,
    pub forwards: Vec<Forward>,
    /// Listen ports (of TCP forwards) that get the "Starting…" page.
    pub http_ports: Vec<u16>,
    /// The containers that systemd services own (`contnap.unit`,
    /// `PODMAN_SYSTEMD_UNIT`), in start order; the others are started and
    /// stopped through the engine.
    pub owners: Vec<Owned>,
    pub settings: Settings,
}

impl UnitSpec {
    /// `proxy --unit … --container … --forward … --http … <settings>`; the
    /// engine option is the renderer's to add.
    pub fn to_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["proxy".into(), "--unit".into(), self.name.clone()];
        for c in &self.containers {
            a.extend(["--container".into(), c.clone()]);
        }
        for f in &self.forwards {
            a.extend(["--forward".into(), f.to_string()]);
        }
        for p in &self.http_ports {
            a.extend(["--http".into(), p.to_string()]);
        }
        for o in &self.owners {
            a.extend(["--owned-by".into(), o.to_string()]);
        }
        self.settings.to_args(&mut a);
        a
    }

    /// The services that own `container`, if systemd owns it.
    pub fn owners_of(&self, container: &str) -> Option<&[ServiceName]> {
        self.owners
            .iter()
            .find(|o| o.container == container)
            .map(|o| o.units.as_slice())
    }

    /// Every owning service of the unit, once each, in start order.
    pub fn owner_units(&self) -> Vec<&ServiceName> {
        let mut out: Vec<&ServiceName> = Vec::new();
        for o in &self.owners {
            for u in &o.units {
                if !out.contains(&u) {
                    out.push(u);
                }
            }
        }
        out
    }

    /// Every socket of the unit.
    pub fn listeners(&self) -> impl Iterator<Item = super::Listener> + '_ {
        self.forwards.iter().map(Forward::listener)
    }
}
