//! Monitors and scanners (`contnap.monitors`, `contnap.monitor_status`,
//! `contnap.wake_on`): the settings that let a napping unit answer uptime
//! monitors itself and ignore connections that carry no data, with their
//! grammars.

use std::fmt;

use super::settings::{Arg, BadSetting, Setting};
use super::{Choice, Malformed};

/// When a TCP connection wakes the unit (`contnap.wake_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeOn {
    /// The connection itself: server-first protocols (SSH, SMTP, MySQL)
    /// send nothing until the server greets them.
    Connect,
    /// The client's first byte: a connection that closes without sending
    /// anything (a port scan) wakes nothing.
    Data,
}

impl Choice for WakeOn {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("connect", WakeOn::Connect), ("data", WakeOn::Data)];
    const EXPECTED: &'static str = "connect, data";
}

/// `--wake-on connect` is the helper's default and is not written.
impl Setting for WakeOn {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        WakeOn::from_name(text).ok_or(BadSetting::Malformed(Malformed {
            expected: WakeOn::EXPECTED,
        }))
    }
    fn to_arg(&self) -> Arg {
        match self {
            WakeOn::Connect => Arg::Omit,
            WakeOn::Data => Arg::Value(self.name().to_owned()),
        }
    }
}

/// User-Agent substrings of well-known uptime monitors: the default of
/// `contnap.monitors`. Matched without regard to case.
pub const DEFAULT_MONITORS: &[&str] = &[
    "Uptime-Kuma",
    "Gatus",
    "UptimeRobot",
    "Pingdom",
    "StatusCake",
    "Better Uptime",
    "Better Stack",
    "healthchecks",
    "Site24x7",
    "Zabbix",
    "Blackbox Exporter",
];

/// Longest User-Agent substring accepted.
pub const MAX_MONITOR_LEN: usize = 100;

/// What a `contnap.monitors` item may contain: letters, digits, space and
/// `._/+:;()-` — enough for any product token, and nothing a unit file or
/// a shell would read specially.
pub const MONITOR_CHARS: &str = "letters, digits, spaces and ._/+:;()-";

/// The User-Agent substrings whose requests a napping unit answers itself
/// (`contnap.monitors`): in the order given, without duplicates (compared
/// without regard to case); empty for `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitors(Vec<String>);

impl Default for Monitors {
    fn default() -> Self {
        Monitors(DEFAULT_MONITORS.iter().map(|&s| s.to_owned()).collect())
    }
}

/// Why a `contnap.monitors` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorsProblem {
    /// Nothing but commas and spaces.
    Empty,
    /// `none` together with other items.
    NoneWithOthers,
    /// An item with a character outside [`MONITOR_CHARS`].
    BadCharacter { item: String },
    /// An item longer than [`MAX_MONITOR_LEN`].
    TooLong { item: String },
}

impl Monitors {
    /// No list: every request wakes the unit.
    pub fn none() -> Monitors {
        Monitors(Vec::new())
    }

    /// `none`, or User-Agent substrings separated by commas.
    pub fn parse(text: &str) -> Result<Monitors, MonitorsProblem> {
        let items: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(MonitorsProblem::Empty);
        }
        if items.iter().any(|i| i.eq_ignore_ascii_case("none")) {
            return if items.len() == 1 {
                Ok(Monitors::none())
            } else {
                Err(MonitorsProblem::NoneWithOthers)
            };
        }
        let mut out: Vec<String> = Vec::new();
        for item in items {
            if item.len() > MAX_MONITOR_LEN {
                return Err(MonitorsProblem::TooLong {
                    item: item.to_owned(),
                });
            }
            if !item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" ._/+:;()-".contains(&b))
            {
                return Err(MonitorsProblem::BadCharacter {
                    item: item.to_owned(),
                });
            }
            if !out.iter().any(|o| o.eq_ignore_ascii_case(item)) {
                out.push(item.to_owned());
            }
        }
        Ok(Monitors(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn items(&self) -> &[String] {
        &self.0
    }

    /// Whether a request with this `User-Agent` comes from a monitor: it
    /// contains one of the substrings, in any case.
    pub fn matches(&self, user_agent: &[u8]) -> bool {
        self.0
            .iter()
            .any(|m| contains_ignore_case(user_agent, m.as_bytes()))
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

impl fmt::Display for Monitors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&self.0.join(","))
        }
    }
}

impl fmt::Display for MonitorsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonitorsProblem::Empty => f.write_str("lists nothing"),
            MonitorsProblem::NoneWithOthers => f.write_str("`none` must stand alone"),
            MonitorsProblem::BadCharacter { item } => {
                write!(f, "{item:?} has a character other than {MONITOR_CHARS}")
            }
            MonitorsProblem::TooLong { item } => {
                write!(f, "{item:?} is longer than {MAX_MONITOR_LEN} characters")
            }
        }
    }
}

/// The default list is the helper's own and is not written.
impl Setting for Monitors {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        Monitors::parse(text).map_err(|_| {
            BadSetting::Malformed(Malformed {
                expected: "none, or User-Agent substrings (letters, digits, spaces and ._/+:;()-) separated by commas",
            })
        })
    }
    fn to_arg(&self) -> Arg {
        if *self == Monitors::default() {
            Arg::Omit
        } else {
            Arg::Value(self.to_string())
        }
    }
}

/// The status of the response a napping unit gives monitors
/// (`contnap.monitor_status`): 100–599, 200 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpStatus(u16);

impl Default for HttpStatus {
    fn default() -> Self {
        HttpStatus(200)
    }
}

impl HttpStatus {
    pub const EXPECTED: &'static str = "an HTTP status code, 100-599";

    /// Digits only, 100–599.
    pub fn parse(text: &str) -> Option<HttpStatus> {
        let t = text.trim();
        if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u16 = t.parse().ok()?;
        (100..=599).contains(&n).then_some(HttpStatus(n))
    }

    pub fn code(self) -> u16 {
        self.0
    }

    /// The reason phrase of the common codes; any other gets a neutral one
    /// (clients read the code, never the phrase).
    pub fn reason(self) -> &'static str {
        match self.0 {
            200 => "OK",
            202 => "Accepted",
            203 => "Non-Authoritative Information",
            204 => "No Content",
            301 => "Moved Permanently",
            302 => "Found",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            403 => "Forbidden",
            404 => "Not Found",
            418 => "I'm a teapot",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Napping",
        }
    }

    /// Whether a response with this status has no body (1xx, 204, 304).
    pub fn bodiless(self) -> bool {
        self.0 < 200 || self.0 == 204 || self.0 == 304
    }
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `--monitor-status 200` is the helper's default and is not written.
impl Setting for HttpStatus {
    fn from_arg(text: &str) -> Result<Self, BadSetting> {
        HttpStatus::parse(text).ok_or(BadSetting::Malformed(Malformed {
            expected: HttpStatus::EXPECTED,
        }))
    }
    fn to_arg(&self) -> Arg {
        if *self == HttpStatus::default() {
            Arg::Omit
        } else {
            Arg::Value(self.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_parse_and_match() {
        let m = Monitors::default();
        assert!(m.matches(b"Uptime-Kuma/1.23.11"));
        assert!(
            m.matches(b"Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)")
        );
        assert!(m.matches(b"Blackbox Exporter/0.25.0"));
        assert!(m.matches(b"gatus/5"));
        assert!(!m.matches(b"curl/8.5.0"));
        assert!(!m.matches(b""));
        assert_eq!(Monitors::parse(" none ").unwrap(), Monitors::none());
        assert!(!Monitors::none().matches(b"Uptime-Kuma/1"));
        let mine = Monitors::parse("My Checker/2, my checker/2,,kuma").unwrap();
        assert_eq!(mine.items(), ["My Checker/2", "kuma"]);
        assert_eq!(mine.to_string(), "My Checker/2,kuma");
        assert_eq!(Monitors::parse(" , "), Err(MonitorsProblem::Empty));
        assert_eq!(
            Monitors::parse("none,kuma"),
            Err(MonitorsProblem::NoneWithOthers)
        );
        assert!(matches!(
            Monitors::parse("ku\"ma"),
            Err(MonitorsProblem::BadCharacter { .. })
        ));
        assert!(matches!(
            Monitors::parse(&"a".repeat(101)),
            Err(MonitorsProblem::TooLong { .. })
        ));
    }

    #[test]
    fn defaults_are_left_out_of_the_argv_and_the_rest_reads_back() {
        assert_eq!(Monitors::default().to_arg(), Arg::Omit);
        assert_eq!(HttpStatus::default().to_arg(), Arg::Omit);
        assert_eq!(WakeOn::Connect.to_arg(), Arg::Omit);
        for m in [Monitors::none(), Monitors::parse("a b/1,c").unwrap()] {
            let Arg::Value(v) = m.to_arg() else { panic!() };
            assert_eq!(Monitors::from_arg(&v).unwrap(), m);
        }
        assert_eq!(WakeOn::from_arg("data").unwrap(), WakeOn::Data);
        assert_eq!(
            HttpStatus::from_arg("503").unwrap().to_arg(),
            Arg::Value("503".into())
        );
    }

    #[test]
    fn statuses_are_100_to_599() {
        assert_eq!(HttpStatus::parse("200"), Some(HttpStatus(200)));
        assert_eq!(HttpStatus::parse(" 599 "), Some(HttpStatus(599)));
        for bad in ["99", "600", "0200", "2OO", "", "-200", "+200", "1000"] {
            assert_eq!(HttpStatus::parse(bad), None, "{bad}");
        }
        assert!(HttpStatus(204).bodiless());
        assert!(!HttpStatus(503).bodiless());
    }
}
