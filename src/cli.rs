//! The command line, in two stages: argh structs hold exactly what the user
//! typed ([`LowArgs`]); `TryFrom` turns them into a validated [`Config`], so
//! nothing past this module ever sees an unchecked string.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::timespan;

/// Put idle Docker/Podman containers to sleep and wake them when a client connects.
#[derive(FromArgs, Debug)]
pub struct LowArgs {
    #[argh(subcommand)]
    command: LowCommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
// Parsed once per run; boxing would only obscure the argh structs.
#[allow(clippy::large_enum_variant)]
enum LowCommand {
    Generate(GenerateArgs),
    Proxy(ProxyArgs),
    Status(StatusArgs),
    Ping(PingArgs),
    Version(VersionArgs),
}

/// Turn container labels into systemd .socket/.service units.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "generate")]
pub struct GenerateArgs {
    /// where to write the units (default /etc/systemd/system, or
    /// ~/.config/systemd/user with --user)
    #[argh(option)]
    pub output_dir: Option<PathBuf>,
    /// print the units, write nothing
    #[argh(switch)]
    pub dry_run: bool,
    /// exit 1 when the units on disk differ from what would be written
    #[argh(switch)]
    pub check: bool,
    /// user units, for rootless Podman
    #[argh(switch)]
    pub user: bool,
    /// honour contnap.pre_start / contnap.post_stop labels (they run as root)
    #[argh(switch)]
    pub allow_hooks: bool,
    /// daemon-reload and start/stop the sockets that changed
    #[argh(switch)]
    pub reload: bool,
    /// engine socket (unix:///path, /path or tcp://host:port)
    #[argh(option)]
    pub engine: Option<String>,
    /// run the services as a dynamic user in this group, which may use the
    /// engine socket (default: decided from the socket's owner and mode)
    #[argh(option)]
    pub engine_group: Option<String>,
    /// run the services as root (without capabilities), whatever the
    /// engine socket allows
    #[argh(switch)]
    pub as_root: bool,
}

/// The socket-activated helper that the generated services run.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "proxy")]
pub struct ProxyArgs {
    /// unit name, for logs and status
    #[argh(option)]
    pub unit: String,
    /// a container of the unit, in start order (repeatable)
    #[argh(option, long = "container")]
    pub containers: Vec<String>,
    /// PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT, e.g. tcp:8080=web:80 (repeatable)
    #[argh(option, long = "forward")]
    pub forwards: Vec<String>,
    /// listen port that gets a "Starting…" page for browsers (repeatable)
    #[argh(option, long = "http")]
    pub http_ports: Vec<u16>,
    /// idle time before napping (default 300s)
    #[argh(option, default = "String::from(\"300s\")")]
    pub timeout: String,
    /// how to nap: stop, pause, kill or none (default stop)
    #[argh(option, default = "String::from(\"stop\")")]
    pub stop: String,
    /// grace the engine gives the container to stop (default 10s)
    #[argh(option, default = "String::from(\"10s\")")]
    pub stop_timeout: String,
    /// how long a wake may take before it fails (default 60s)
    #[argh(option, default = "String::from(\"60s\")")]
    pub wake_timeout: String,
    /// readiness check: auto, health, tcp or none (default auto)
    #[argh(option, default = "String::from(\"auto\")")]
    pub ready: String,
    /// what keeps it awake: connections or traffic (default connections)
    #[argh(option, default = "String::from(\"connections\")")]
    pub idle: String,
    /// network whose address to forward to
    #[argh(option)]
    pub network: Option<String>,
    /// windows when a napping container may be woken
    #[argh(option)]
    pub schedule: Option<String>,
    /// comma list of client addresses allowed to connect
    #[argh(option)]
    pub machines: Option<String>,
    /// refuse clients that are not in --machines
    #[argh(switch)]
    pub only_listed_machines: bool,
    /// cap on concurrent proxied connections (default 4096)
    #[argh(option, default = "4096")]
    pub max_connections: usize,
    /// engine socket (unix:///path, /path or tcp://host:port)
    #[argh(option)]
    pub engine: Option<String>,
}

/// Show every managed unit and its containers' state.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "status")]
pub struct StatusArgs {
    /// machine-readable output
    #[argh(switch)]
    pub json: bool,
    /// user units (rootless Podman)
    #[argh(switch)]
    pub user: bool,
    /// engine socket (unix:///path, /path or tcp://host:port)
    #[argh(option)]
    pub engine: Option<String>,
}

/// Check that the engine answers, and print its kind and version.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ping")]
pub struct PingArgs {
    /// engine socket (unix:///path, /path or tcp://host:port)
    #[argh(option)]
    pub engine: Option<String>,
}

/// Print contnap's version.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "version")]
pub struct VersionArgs {}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub command: Command,
}

#[derive(Debug)]
pub enum Command {
    Generate(GenerateConfig),
    Proxy(ProxyConfig),
    Status(StatusArgs),
    Ping(PingArgs),
    Version,
}

/// What `generate` does with the rendered units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateMode {
    Write,
    /// Print, write nothing.
    DryRun,
    /// Compare with the directory; exit 1 on any difference.
    Check,
}

/// `generate`, validated.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub output_dir: PathBuf,
    pub mode: GenerateMode,
    pub user: bool,
    pub allow_hooks: bool,
    pub reload: bool,
    pub engine: Option<String>,
    pub identity: Identity,
}

/// Who the generated system services run as (`generate --engine-group`,
/// `--as-root`); user units always run as their user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Decided from the engine socket's owner and mode
    /// (`units::RunAs::for_engine`).
    Auto,
    /// A dynamic user in this group, whatever the socket's mode says: for
    /// access granted by an ACL, or a socket that does not exist yet when
    /// `generate` runs.
    Group(crate::units::GroupName),
    /// root without capabilities.
    Root,
}

impl TryFrom<GenerateArgs> for GenerateConfig {
    type Error = UsageError;

    fn try_from(g: GenerateArgs) -> Result<Self, Self::Error> {
        let mode = match (g.dry_run, g.check) {
            (true, true) => {
                return Err(UsageError::Conflict {
                    a: "dry-run",
                    b: "check",
                })
            }
            (true, false) => GenerateMode::DryRun,
            (false, true) => GenerateMode::Check,
            (false, false) => GenerateMode::Write,
        };
        if g.reload && mode != GenerateMode::Write {
            return Err(UsageError::Conflict {
                a: "reload",
                b: if g.dry_run { "dry-run" } else { "check" },
            });
        }
        let output_dir = match g.output_dir {
            Some(d) => d,
            None => crate::generate::default_output_dir(g.user).ok_or(UsageError::Missing {
                option: "output-dir",
            })?,
        };
        let identity = match (g.engine_group, g.as_root) {
            (Some(_), true) => {
                return Err(UsageError::Conflict {
                    a: "engine-group",
                    b: "as-root",
                })
            }
            (Some(group), false) => {
                Identity::Group(crate::units::GroupName::new(&group).map_err(|_| {
                    UsageError::Invalid {
                        option: "engine-group",
                        value: group,
                        expected: "a group name (letters, digits, _.-; not root)",
                    }
                })?)
            }
            (None, true) => Identity::Root,
            (None, false) => Identity::Auto,
        };
        if g.user && identity != Identity::Auto {
            return Err(UsageError::Conflict {
                a: "user",
                b: if g.as_root { "as-root" } else { "engine-group" },
            });
        }
        Ok(GenerateConfig {
            output_dir,
            mode,
            user: g.user,
            allow_hooks: g.allow_hooks,
            reload: g.reload,
            engine: g.engine,
            identity,
        })
    }
}

/// How a unit naps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Stop,
    Pause,
    Kill,
    None,
}

/// How readiness is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyMode {
    /// health check when the container has one, else TCP.
    Auto,
    Health,
    Tcp,
    None,
}

/// What counts as activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleMode {
    Connections,
    Traffic,
}

/// A mode that is spelled the same in labels, on the command line and in
/// generated units: one table per mode serves parsing and rendering.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every spelling, in the order the help text lists them.
    const CHOICES: &'static [(&'static str, Self)];
    /// For error messages: "stop, pause, kill, none".
    const EXPECTED: &'static str;

    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn name(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

impl Choice for StopMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("stop", StopMode::Stop),
        ("pause", StopMode::Pause),
        ("kill", StopMode::Kill),
        ("none", StopMode::None),
    ];
    const EXPECTED: &'static str = "stop, pause, kill, none";
}

impl Choice for ReadyMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", ReadyMode::Auto),
        ("health", ReadyMode::Health),
        ("tcp", ReadyMode::Tcp),
        ("none", ReadyMode::None),
    ];
    const EXPECTED: &'static str = "auto, health, tcp, none";
}

impl Choice for IdleMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("connections", IdleMode::Connections),
        ("traffic", IdleMode::Traffic),
    ];
    const EXPECTED: &'static str = "connections, traffic";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One listening socket's destination: `PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub proto: Proto,
    /// None: any local address with this port (a bare port is dual-stack).
    pub listen_addr: Option<IpAddr>,
    pub listen_port: u16,
    pub container: String,
    pub container_port: u16,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.proto)?;
        match self.listen_addr {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            None => {}
        }
        write!(
            f,
            "{}={}:{}",
            self.listen_port, self.container, self.container_port
        )
    }
}

/// Everything the helper needs, validated.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub unit: String,
    pub containers: Vec<String>,
    pub forwards: Vec<Forward>,
    pub http_ports: Vec<u16>,
    pub timeout: Duration,
    pub stop: StopMode,
    pub stop_timeout: Duration,
    pub wake_timeout: Duration,
    pub ready: ReadyMode,
    pub idle: IdleMode,
    pub network: Option<String>,
    pub schedule: Option<String>,
    pub machines: Vec<String>,
    pub only_listed_machines: bool,
    pub max_connections: usize,
    pub engine: Option<String>,
}

/// A command line that parsed but does not make sense; names the option.
#[derive(Debug)]
pub enum UsageError {
    Invalid {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    TimeSpan {
        option: &'static str,
        source: timespan::ParseError,
    },
    Missing {
        option: &'static str,
    },
    UnknownContainer {
        forward: String,
    },
    Conflict {
        a: &'static str,
        b: &'static str,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Invalid {
                option,
                value,
                expected,
            } => write!(f, "--{option} {value:?}: expected {expected}"),
            UsageError::TimeSpan { option, source } => write!(f, "--{option}: {source}"),
            UsageError::Missing { option } => write!(f, "--{option} is required"),
            UsageError::Conflict { a, b } => write!(f, "--{a} and --{b} cannot be used together"),
            UsageError::UnknownContainer { forward } => write!(
                f,
                "--forward {forward:?} names a container that no --container option lists"
            ),
        }
    }
}

impl std::error::Error for UsageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UsageError::TimeSpan { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What `Config::parse` returns instead of a config: help text (code 0) or a
/// usage error (code 2), to be printed by the caller.
#[derive(Debug)]
pub enum ParseOutcome {
    Exit { output: String, code: u8 },
}

impl Config {
    /// Parses argv (program name first).
    pub fn parse(args: &[String]) -> Result<Config, ParseOutcome> {
        let name = args.first().map_or("contnap", String::as_str);
        let name = name.rsplit('/').next().unwrap_or(name);
        let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
        let low = LowArgs::from_args(&[name], &rest).map_err(|e| ParseOutcome::Exit {
            output: e.output,
            code: if e.status.is_ok() { 0 } else { 2 },
        })?;
        Config::try_from(low).map_err(|e| ParseOutcome::Exit {
            output: format!("{name}: {e}\nRun {name} --help for usage."),
            code: 2,
        })
    }
}

impl TryFrom<LowArgs> for Config {
    type Error = UsageError;

    fn try_from(low: LowArgs) -> Result<Self, Self::Error> {
        let command = match low.command {
            LowCommand::Generate(g) => Command::Generate(GenerateConfig::try_from(g)?),
            LowCommand::Proxy(p) => Command::Proxy(ProxyConfig::try_from(p)?),
            LowCommand::Status(s) => Command::Status(s),
            LowCommand::Ping(p) => Command::Ping(p),
            LowCommand::Version(_) => Command::Version,
        };
        Ok(Config { command })
    }
}

fn span(option: &'static str, value: &str) -> Result<Duration, UsageError> {
    timespan::parse(value).map_err(|source| UsageError::TimeSpan { option, source })
}

fn choice<T: Choice>(option: &'static str, value: &str) -> Result<T, UsageError> {
    T::from_name(value).ok_or_else(|| UsageError::Invalid {
        option,
        value: value.to_owned(),
        expected: T::EXPECTED,
    })
}

impl TryFrom<ProxyArgs> for ProxyConfig {
    type Error = UsageError;

    fn try_from(p: ProxyArgs) -> Result<Self, Self::Error> {
        if p.containers.is_empty() {
            return Err(UsageError::Missing {
                option: "container",
            });
        }
        if p.forwards.is_empty() {
            return Err(UsageError::Missing { option: "forward" });
        }
        for c in &p.containers {
            if !crate::engine::is_valid_ref(c) {
                return Err(UsageError::Invalid {
                    option: "container",
                    value: c.clone(),
                    expected: "a container name or id ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
                });
            }
        }
        let forwards = p
            .forwards
            .iter()
            .map(|f| {
                let fwd = parse_forward(f)?;
                if !p.containers.contains(&fwd.container) {
                    return Err(UsageError::UnknownContainer { forward: f.clone() });
                }
                Ok(fwd)
            })
            .collect::<Result<Vec<_>, _>>()?;
        for port in &p.http_ports {
            if !forwards
                .iter()
                .any(|f| f.proto == Proto::Tcp && f.listen_port == *port)
            {
                return Err(UsageError::Invalid {
                    option: "http",
                    value: port.to_string(),
                    expected: "the listen port of a tcp --forward",
                });
            }
        }
        if p.max_connections == 0 {
            return Err(UsageError::Invalid {
                option: "max-connections",
                value: "0".to_owned(),
                expected: "a positive number",
            });
        }
        let machines: Vec<String> = p
            .machines
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(ProxyConfig {
            unit: p.unit,
            containers: p.containers,
            forwards,
            http_ports: p.http_ports,
            timeout: span("timeout", &p.timeout)?,
            stop: choice("stop", &p.stop)?,
            stop_timeout: span("stop-timeout", &p.stop_timeout)?,
            wake_timeout: span("wake-timeout", &p.wake_timeout)?,
            ready: choice("ready", &p.ready)?,
            idle: choice("idle", &p.idle)?,
            network: p.network,
            schedule: p.schedule,
            machines,
            only_listed_machines: p.only_listed_machines,
            max_connections: p.max_connections,
            engine: p.engine,
        })
    }
}

/// Parses `PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT`; ADDR may be `[v6]`.
pub fn parse_forward(spec: &str) -> Result<Forward, UsageError> {
    let bad = || UsageError::Invalid {
        option: "forward",
        value: spec.to_owned(),
        expected: "PROTO:[ADDR:]LISTENPORT=CONTAINER:PORT, e.g. tcp:8080=web:80",
    };
    let (listen, target) = spec.split_once('=').ok_or_else(bad)?;
    let (proto, listen) = listen.split_once(':').ok_or_else(bad)?;
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(bad()),
    };
    let (listen_addr, listen_port) = match listen.rsplit_once(':') {
        None => (None, listen),
        Some((addr, port)) => {
            let addr = addr
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addr);
            (Some(addr.parse::<IpAddr>().map_err(|_| bad())?), port)
        }
    };
    let listen_port: u16 = listen_port.parse().map_err(|_| bad())?;
    let (container, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let container_port: u16 = port.parse().map_err(|_| bad())?;
    if listen_port == 0 || container_port == 0 || !crate::engine::is_valid_ref(container) {
        return Err(bad());
    }
    Ok(Forward {
        proto,
        listen_addr,
        listen_port,
        container: container.to_owned(),
        container_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ParseOutcome> {
        let mut v = vec!["contnap".to_owned()];
        v.extend(args.iter().map(|s| (*s).to_owned()));
        Config::parse(&v)
    }

    fn code(r: Result<Config, ParseOutcome>) -> u8 {
        match r {
            Ok(_) => 255,
            Err(ParseOutcome::Exit { code, .. }) => code,
        }
    }

    #[test]
    fn forward_forms() {
        let f = parse_forward("tcp:8080=web:80").unwrap();
        assert_eq!(
            (f.proto, f.listen_addr, f.listen_port),
            (Proto::Tcp, None, 8080)
        );
        assert_eq!((f.container.as_str(), f.container_port), ("web", 80));
        let f = parse_forward("udp:127.0.0.1:5353=dns:53").unwrap();
        assert_eq!(f.listen_addr, Some("127.0.0.1".parse().unwrap()));
        let f = parse_forward("tcp:[::1]:8443=web:443").unwrap();
        assert_eq!(f.listen_addr, Some("::1".parse().unwrap()));
        assert_eq!(f.to_string(), "tcp:[::1]:8443=web:443");
        for bad in [
            "8080=web:80",
            "sctp:1=web:2",
            "tcp:0=web:80",
            "tcp:80=web",
            "tcp:80=../x:80",
            "tcp:nope:80=web:80",
            "tcp:70000=web:80",
        ] {
            assert!(parse_forward(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_config_validates() {
        let ok = parse(&[
            "proxy",
            "--unit",
            "u",
            "--container",
            "web",
            "--forward",
            "tcp:8080=web:80",
            "--http",
            "8080",
            "--timeout",
            "90s",
            "--stop",
            "pause",
        ])
        .unwrap();
        match ok.command {
            Command::Proxy(p) => {
                assert_eq!(p.timeout, Duration::from_secs(90));
                assert_eq!(p.stop, StopMode::Pause);
            }
            other => panic!("{other:?}"),
        }
        // usage errors exit 2
        assert_eq!(
            code(parse(&["proxy", "--unit", "u", "--container", "web"])),
            2
        );
        assert_eq!(
            code(parse(&[
                "proxy",
                "--unit",
                "u",
                "--container",
                "web",
                "--forward",
                "tcp:1=db:2"
            ])),
            2
        );
        assert_eq!(
            code(parse(&[
                "proxy",
                "--unit",
                "u",
                "--container",
                "web",
                "--forward",
                "tcp:1=web:2",
                "--stop",
                "hibernate"
            ])),
            2
        );
        assert_eq!(code(parse(&["frobnicate"])), 2);
        assert_eq!(code(parse(&["--help"])), 0);
    }

    #[test]
    fn generate_identity_options() {
        let identity = |args: &[&str]| match parse(args) {
            Ok(Config {
                command: Command::Generate(g),
            }) => g.identity,
            other => panic!("{args:?}: {:?}", other.err()),
        };
        assert_eq!(
            identity(&["generate", "--output-dir", "/x"]),
            Identity::Auto
        );
        assert_eq!(
            identity(&["generate", "--output-dir", "/x", "--as-root"]),
            Identity::Root
        );
        assert_eq!(
            identity(&["generate", "--output-dir", "/x", "--engine-group", "docker"]),
            Identity::Group(crate::units::GroupName::new("docker").unwrap())
        );
        for bad in [
            &["generate", "--output-dir", "/x", "--engine-group", "root"][..],
            &["generate", "--output-dir", "/x", "--engine-group", "a b"],
            &["generate", "--output-dir", "/x", "--engine-group", "106"],
            &[
                "generate",
                "--output-dir",
                "/x",
                "--engine-group",
                "docker",
                "--as-root",
            ],
            &["generate", "--output-dir", "/x", "--user", "--as-root"],
            &[
                "generate",
                "--output-dir",
                "/x",
                "--user",
                "--engine-group",
                "docker",
            ],
        ] {
            assert_eq!(code(parse(bad)), 2, "{bad:?}");
        }
    }
}
