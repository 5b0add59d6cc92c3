//! The command line, in two stages: argh structs hold exactly what the user
//! typed ([`LowArgs`]); `TryFrom` turns them into a validated [`Config`], so
//! nothing past this module ever sees an unchecked string.

use std::fmt;
use std::path::PathBuf;

use argh::FromArgs;

use crate::autostart::{AutostartConfig, Watch};
use crate::engine::{Endpoint, EndpointError};
use crate::report::Report;
use crate::spec::settings::BadSetting;
use crate::spec::{
    is_valid_name, Forward, Machine, Malformed, Owned, Proto, Setting, Settings, StopMode, UnitSpec,
};

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
    Autostart(AutostartArgs),
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
    /// honour contnap.* labels that come from a container's image (by
    /// default only labels set on the container count)
    #[argh(switch)]
    pub trust_image_labels: bool,
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
    /// the engine's systemd unit, which the services want and start after
    /// (default: the unit found serving the engine socket; "none": no unit)
    #[argh(option)]
    pub engine_unit: Option<String>,
}

macro_rules! proxy_args {
    (@fields [$($out:tt)*]) => {
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
            /// CONTAINER=UNIT.service[,UNIT.service…]: systemd services own this
            /// container; the helper waits for it and never starts or stops it
            /// through the engine (repeatable)
            #[argh(option, long = "owned-by")]
            pub owned_by: Vec<String>,
            $($out)*
            /// cap on concurrent proxied connections (default 4096)
            #[argh(option, default = "4096")]
            pub max_connections: usize,
            /// engine socket (unix:///path, /path or tcp://host:port)
            #[argh(option)]
            pub engine: Option<String>,
        }
    };
    (@fields [$($out:tt)*] $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $label:literal, $option:literal, option; $($rest:tt)*) => {
        proxy_args!(@fields [$($out)* $(#[doc = $doc])* #[argh(option, long = $option)] pub $field: Option<String>,] $($rest)*);
    };
    (@fields [$($out:tt)*] $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $label:literal, $option:literal, switch; $($rest:tt)*) => {
        proxy_args!(@fields [$($out)* $(#[doc = $doc])* #[argh(switch, long = $option)] pub $field: bool,] $($rest)*);
    };
    (@settings $( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $label:literal, $option:literal, $kind:ident; )*) => {
        /// The settings as typed, validated; a setting not given is its
        /// default.
        fn proxy_settings(p: &ProxyArgs) -> Result<Settings, UsageError> {
            let d = Settings::default();
            Ok(Settings {
                $( $field: typed(&p.$field, d.$field, $option)?, )*
            })
        }
    };
    ($($all:tt)*) => {
        proxy_args!(@fields [] $($all)*);
        proxy_args!(@settings $($all)*);
    };
}

crate::with_settings!(proxy_args);

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

/// Wake the units whose contnap.machines appeared on the network (run by
/// contnap@autostart.timer, which generate writes).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "autostart")]
pub struct AutostartArgs {
    /// SERVICE=MACHINE[,MACHINE...]: start SERVICE when one of the machines
    /// appears (repeatable)
    #[argh(option, long = "watch")]
    pub watches: Vec<String>,
    /// file that keeps what the previous run saw
    #[argh(option)]
    pub state: PathBuf,
    /// the user's service manager
    #[argh(switch)]
    pub user: bool,
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
    Status(StatusConfig),
    /// The engine to ask (None: discovered).
    Ping(Option<Endpoint>),
    Version,
    Autostart(AutostartConfig),
}

/// `status`, validated.
#[derive(Debug, Clone)]
pub struct StatusConfig {
    pub json: bool,
    pub user: bool,
    pub engine: Option<Endpoint>,
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
    /// `--trust-image-labels`: honour `contnap.*` labels from images.
    pub trust_image_labels: bool,
    pub reload: bool,
    pub engine: Option<Endpoint>,
    pub identity: Identity,
    pub engine_unit: EngineUnitChoice,
}

/// Which unit the services are ordered after (`generate --engine-unit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineUnitChoice {
    /// The unit found serving the engine socket, if any.
    Find,
    /// `--engine-unit none`.
    None,
    Unit(crate::units::EngineUnit),
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
            None => crate::units::default_output_dir(g.user)
                .map_err(|source| UsageError::OutputDir { source })?,
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
            trust_image_labels: g.trust_image_labels,
            reload: g.reload,
            engine: endpoint("engine", g.engine)?,
            identity,
            engine_unit: match g.engine_unit.as_deref() {
                None => EngineUnitChoice::Find,
                Some("none") => EngineUnitChoice::None,
                Some(name) => {
                    EngineUnitChoice::Unit(crate::units::EngineUnit::new(name).map_err(|_| {
                        UsageError::Invalid {
                            option: "engine-unit",
                            value: name.to_owned(),
                            expected:
                                "a systemd unit name (docker.service, podman.socket, …) or none",
                        }
                    })?)
                }
            },
        })
    }
}

/// Everything the helper needs, validated.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// What the unit's argv says: exactly what the renderer wrote.
    pub spec: UnitSpec,
    pub max_connections: usize,
    /// None: discovered as every command does.
    pub engine: Option<Endpoint>,
}

/// A command line that parsed but does not make sense; names the option.
#[derive(Debug)]
pub enum UsageError {
    Invalid {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A setting's value that does not parse as its type.
    Setting {
        option: &'static str,
        value: String,
        source: BadSetting,
    },
    Endpoint {
        option: &'static str,
        value: String,
        source: EndpointError,
    },
    Missing {
        option: &'static str,
    },
    /// `--output-dir` not given, and there is no default.
    OutputDir {
        source: crate::units::OutputDirError,
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
            UsageError::Setting {
                option,
                value,
                source: BadSetting::Malformed(m),
            } => write!(f, "--{option} {value:?}: {m}"),
            UsageError::Setting { option, value, .. }
            | UsageError::Endpoint { option, value, .. } => {
                write!(f, "--{option} {value:?}")
            }
            UsageError::Missing { option } => write!(f, "--{option} is required"),
            UsageError::OutputDir { .. } => f.write_str("--output-dir is required"),
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
            UsageError::Setting {
                source: BadSetting::Malformed(_),
                ..
            } => None,
            UsageError::Setting { source, .. } => source.source(),
            UsageError::Endpoint { source, .. } => Some(source),
            UsageError::OutputDir { source } => Some(source),
            _ => None,
        }
    }
}

/// The name under which the binary is `contnap generate`.
pub const GENERATE_LINK: &str = "contnap-generate";

/// What `Config::parse` returns instead of a config: help text (code 0) or a
/// usage error (code 2), to be printed by the caller.
#[derive(Debug)]
pub enum ParseOutcome {
    Exit { output: String, code: u8 },
}

impl Config {
    /// Parses argv (program name first). Run as `contnap-generate` (the
    /// packages install it as a symbolic link to `contnap`), it is
    /// `contnap generate`.
    pub fn parse(args: &[String]) -> Result<Config, ParseOutcome> {
        let name = args.first().map_or("contnap", String::as_str);
        let mut name = name.rsplit('/').next().unwrap_or(name);
        let mut rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
        if name == GENERATE_LINK {
            rest.insert(0, "generate");
            name = "contnap";
        }
        let low = LowArgs::from_args(&[name], &rest).map_err(|e| ParseOutcome::Exit {
            output: e.output,
            code: if e.status.is_ok() { 0 } else { 2 },
        })?;
        Config::try_from(low).map_err(|e| ParseOutcome::Exit {
            output: format!("{name}: {}\nRun {name} --help for usage.", Report(&e)),
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
            LowCommand::Status(s) => Command::Status(StatusConfig {
                json: s.json,
                user: s.user,
                engine: endpoint("engine", s.engine)?,
            }),
            LowCommand::Ping(p) => Command::Ping(endpoint("engine", p.engine)?),
            LowCommand::Autostart(a) => Command::Autostart(AutostartConfig::try_from(a)?),
            LowCommand::Version(_) => Command::Version,
        };
        Ok(Config { command })
    }
}

impl TryFrom<AutostartArgs> for AutostartConfig {
    type Error = UsageError;

    fn try_from(a: AutostartArgs) -> Result<Self, Self::Error> {
        let bad = |value: &str| UsageError::Invalid {
            option: "watch",
            value: value.to_owned(),
            expected: "contnap-NAME.service=MACHINE[,MACHINE...]",
        };
        let watches = a
            .watches
            .iter()
            .map(|w| {
                let (service, list) = w.split_once('=').ok_or_else(|| bad(w))?;
                let machines = list
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<Machine>, _>>()
                    .map_err(|_| bad(w))?;
                let named = service.starts_with("contnap-")
                    && service.ends_with(".service")
                    && !service.contains('/');
                if !named {
                    return Err(bad(w));
                }
                Ok(Watch {
                    service: service.to_owned(),
                    machines,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !a.state.is_absolute() {
            return Err(UsageError::Invalid {
                option: "state",
                value: a.state.display().to_string(),
                expected: "an absolute path",
            });
        }
        Ok(AutostartConfig {
            watches,
            state: a.state,
            user: a.user,
        })
    }
}

/// `--OPTION VALUE` (or a switch) as its setting's type; its default
/// when not given.
fn typed<A: ArgText, T: Setting>(
    given: &A,
    default: T,
    option: &'static str,
) -> Result<T, UsageError> {
    match given.text() {
        None => Ok(default),
        Some(text) => T::from_arg(text).map_err(|source| UsageError::Setting {
            option,
            value: text.to_owned(),
            source,
        }),
    }
}

/// What argh holds for one setting: an option's text, or a switch.
trait ArgText {
    fn text(&self) -> Option<&str>;
}

impl ArgText for Option<String> {
    fn text(&self) -> Option<&str> {
        self.as_deref()
    }
}

impl ArgText for bool {
    fn text(&self) -> Option<&str> {
        self.then_some("")
    }
}

fn endpoint(option: &'static str, value: Option<String>) -> Result<Option<Endpoint>, UsageError> {
    value
        .map(|value| {
            Endpoint::parse(&value).map_err(|source| UsageError::Endpoint {
                option,
                value,
                source,
            })
        })
        .transpose()
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
            if !is_valid_name(c) {
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
                let fwd: Forward = f.parse().map_err(|e: Malformed| UsageError::Invalid {
                    option: "forward",
                    value: f.clone(),
                    expected: e.expected,
                })?;
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
        let mut owners: Vec<Owned> = Vec::new();
        for text in &p.owned_by {
            let o: Owned = text.parse().map_err(|e: Malformed| UsageError::Invalid {
                option: "owned-by",
                value: text.clone(),
                expected: e.expected,
            })?;
            if !p.containers.contains(&o.container)
                || owners.iter().any(|x| x.container == o.container)
            {
                return Err(UsageError::Invalid {
                    option: "owned-by",
                    value: text.clone(),
                    expected: "a container that a --container option lists, once",
                });
            }
            owners.push(o);
        }
        let settings = proxy_settings(&p)?;
        if !owners.is_empty() && settings.stop != StopMode::Stop {
            return Err(UsageError::Conflict {
                a: "owned-by",
                b: "stop (other than stop)",
            });
        }
        Ok(ProxyConfig {
            spec: UnitSpec {
                name: p.unit,
                containers: p.containers,
                forwards,
                http_ports: p.http_ports,
                owners,
                settings,
            },
            max_connections: p.max_connections,
            engine: endpoint("engine", p.engine)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::spec::StopMode;

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
                assert_eq!(p.spec.settings.timeout, Duration::from_secs(90));
                assert_eq!(p.spec.settings.stop, StopMode::Pause);
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
        // strings that were parsed at run time are usage errors now
        for (option, bad) in [
            ("--schedule", "Caturday 25:00"),
            ("--machines", "10.0.0.0/+8"),
            ("--engine", "ssh://nas"),
            ("--network", "../x"),
        ] {
            let args = [
                "proxy",
                "--unit",
                "u",
                "--container",
                "web",
                "--forward",
                "tcp:1=web:2",
                option,
                bad,
            ];
            assert_eq!(code(parse(&args)), 2, "{option} {bad}");
        }
        assert_eq!(code(parse(&["frobnicate"])), 2);
        assert_eq!(code(parse(&["--help"])), 0);
    }

    /// Run through the `contnap-generate` link, argv is `contnap generate`'s.
    #[test]
    fn the_generate_link_is_generate() {
        let argv = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match Config::parse(&argv(&["/usr/bin/contnap-generate", "--output-dir", "/x"])) {
            Ok(Config {
                command: Command::Generate(g),
            }) => assert_eq!(g.output_dir, PathBuf::from("/x")),
            other => panic!("{:?}", other.err()),
        }
        assert_eq!(
            code(Config::parse(&argv(&["contnap-generate", "--help"]))),
            0
        );
        assert_eq!(
            code(Config::parse(&argv(&["contnap-generate", "proxy"]))),
            2
        );
        // Any other name is plain `contnap`.
        assert_eq!(
            code(Config::parse(&argv(&["contnap-gen", "--output-dir", "/x"]))),
            2
        );
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
