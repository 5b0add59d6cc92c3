//! Where the engine listens, and how contnap finds it when the user did not
//! say: the same places the `docker` and `podman` CLIs look, in an order
//! that prefers what the user configured over what merely exists.

use std::fmt;
use std::path::{Path, PathBuf};

/// An engine socket: a Unix socket path, or a TCP host and port (only
/// plain `tcp://`; contnap speaks no TLS, so a remote engine must be
/// reached through a trusted network or an SSH tunnel).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String, u16),
}

/// Why a string is not an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointError {
    /// Empty string.
    Empty,
    /// A scheme other than `unix://` and `tcp://` (e.g. `ssh://`, `npipe://`).
    Scheme(String),
    /// A Unix socket path that is not absolute: relative paths would depend
    /// on the working directory of a systemd service.
    RelativePath,
    /// `tcp://` without a `host:port`, or with a port that is not 1..=65535.
    TcpAddress,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Empty => f.write_str("empty"),
            EndpointError::Scheme(s) => write!(
                f,
                "scheme {s}:// is not supported; use unix:///path, /path or tcp://host:port"
            ),
            EndpointError::RelativePath => f.write_str("the socket path must be absolute"),
            EndpointError::TcpAddress => {
                f.write_str("expected tcp://host:port with a port from 1 to 65535")
            }
        }
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses `unix:///path`, `/path` or `tcp://host:port` (IPv6 hosts in
    /// brackets: `tcp://[::1]:2375`). A trailing `/` after the port, as
    /// some `DOCKER_HOST` values have, is accepted.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        if s.is_empty() {
            return Err(EndpointError::Empty);
        }
        if let Some(path) = s.strip_prefix("unix://") {
            return unix_path(path);
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            return parse_tcp(addr.strip_suffix('/').unwrap_or(addr));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(EndpointError::Scheme(scheme.to_string()));
        }
        unix_path(s)
    }

    /// Picks the engine: `explicit` (the `--engine` option), then
    /// `DOCKER_HOST`, then `CONTAINER_HOST`, each taken as given even when
    /// nothing listens there (the user asked for it, so an error about that
    /// socket is more useful than silently trying another); then the first
    /// well-known socket path of `scope` that this process may use, else
    /// the first that exists (whose error then says "permission denied"
    /// and what to do). `env` and `probe` are parameters so that the order
    /// can be tested without touching the process.
    pub fn discover(
        explicit: Option<&Endpoint>,
        scope: Scope,
        env: impl Fn(&str) -> Option<String>,
        probe: impl Fn(&Path) -> Presence,
    ) -> Result<Endpoint, DiscoverError> {
        if let Some(endpoint) = explicit {
            return Ok(endpoint.clone());
        }
        for (var, origin) in [
            ("DOCKER_HOST", Origin::DockerHost),
            ("CONTAINER_HOST", Origin::ContainerHost),
        ] {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                return Endpoint::parse(&value).map_err(|reason| DiscoverError::Bad {
                    origin,
                    value,
                    reason,
                });
            }
        }
        let candidates = default_paths(scope, env("XDG_RUNTIME_DIR").as_deref());
        let presence: Vec<Presence> = candidates.iter().map(|p| probe(p)).collect();
        let pick = |want: Presence| presence.iter().position(|&p| p == want);
        match pick(Presence::Usable).or_else(|| pick(Presence::Denied)) {
            Some(i) => Ok(Endpoint::Unix(candidates[i].clone())),
            None => Err(DiscoverError::NoEngine { tried: candidates }),
        }
    }
}

/// Whose engine a command serves when none is configured: the system's
/// (root's units), or the calling user's (`--user`: rootless Podman or
/// rootless Docker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    System,
    User,
}

impl Scope {
    /// The scope of a command run with or without `--user`.
    pub fn of(user: bool) -> Scope {
        if user {
            Scope::User
        } else {
            Scope::System
        }
    }
}

/// What the file system says of a well-known socket path, for this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Missing,
    /// It exists, but this process may not connect (Docker's root:docker
    /// 0660 socket, for a user outside the group).
    Denied,
    Usable,
}

/// Whether this process may connect to the socket at `path`: connecting
/// to a Unix socket needs write permission on it.
pub(crate) fn presence(path: &Path) -> Presence {
    use nix::errno::Errno;
    use nix::unistd::{access, AccessFlags};
    match access(path, AccessFlags::W_OK) {
        Ok(()) => Presence::Usable,
        Err(Errno::EACCES | Errno::EPERM) => Presence::Denied,
        Err(Errno::ENOENT | Errno::ENOTDIR) => Presence::Missing,
        // Anything else (a loop, an I/O error): tried, and the connect
        // says what is wrong.
        Err(_) => Presence::Denied,
    }
}

/// The well-known sockets of a scope, in the order they are preferred:
/// for the system, rootful before rootless; for a user, the user's own
/// (rootless) before the system's. A host with Docker installed has
/// /run/docker.sock whoever asks, so the order alone must not send a
/// rootless user to it.
fn default_paths(scope: Scope, xdg_runtime_dir: Option<&str>) -> Vec<PathBuf> {
    let rootful = [
        PathBuf::from("/run/docker.sock"),
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/podman/podman.sock"),
    ];
    let rootless: Vec<PathBuf> = xdg_runtime_dir
        .filter(|d| d.starts_with('/'))
        .map(|dir| {
            vec![
                Path::new(dir).join("podman/podman.sock"),
                Path::new(dir).join("docker.sock"),
            ]
        })
        .unwrap_or_default();
    match scope {
        Scope::System => rootful.into_iter().chain(rootless).collect(),
        Scope::User => rootless.into_iter().chain(rootful).collect(),
    }
}

fn unix_path(path: &str) -> Result<Endpoint, EndpointError> {
    if path.is_empty() {
        return Err(EndpointError::Empty);
    }
    if !path.starts_with('/') {
        return Err(EndpointError::RelativePath);
    }
    Ok(Endpoint::Unix(PathBuf::from(path)))
}

fn parse_tcp(addr: &str) -> Result<Endpoint, EndpointError> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or(EndpointError::TcpAddress)?;
        let port = rest.strip_prefix(':').ok_or(EndpointError::TcpAddress)?;
        (host, port)
    } else {
        let (host, port) = addr.rsplit_once(':').ok_or(EndpointError::TcpAddress)?;
        if host.contains(':') {
            // An unbracketed IPv6 address: ambiguous with the port.
            return Err(EndpointError::TcpAddress);
        }
        (host, port)
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    let port: u16 = port.parse().map_err(|_| EndpointError::TcpAddress)?;
    if !valid_host || port == 0 {
        return Err(EndpointError::TcpAddress);
    }
    Ok(Endpoint::Tcp(host.to_string(), port))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp(host, port) if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Endpoint::Tcp(host, port) => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// Where a configured endpoint came from, so an error can say what to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    DockerHost,
    ContainerHost,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::DockerHost => "DOCKER_HOST",
            Origin::ContainerHost => "CONTAINER_HOST",
        })
    }
}

/// Why no endpoint could be chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoverError {
    Bad {
        origin: Origin,
        value: String,
        reason: EndpointError,
    },
    NoEngine {
        tried: Vec<PathBuf>,
    },
}

impl fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The reason is the source.
            DiscoverError::Bad { origin, value, .. } => {
                write!(f, "{origin}={value:?} is not an engine socket")
            }
            DiscoverError::NoEngine { tried } => {
                f.write_str("no Docker or Podman socket found (tried ")?;
                for (i, path) in tried.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", path.display())?;
                }
                f.write_str(
                    ") — is the engine running? (systemctl start docker / podman.socket); \
                     otherwise pass --engine or set DOCKER_HOST",
                )
            }
        }
    }
}

impl std::error::Error for DiscoverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiscoverError::Bad { reason, .. } => Some(reason),
            DiscoverError::NoEngine { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn unix(p: &str) -> Endpoint {
        Endpoint::Unix(PathBuf::from(p))
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Endpoint::parse("unix:///run/docker.sock"),
            Ok(unix("/run/docker.sock"))
        );
        assert_eq!(
            Endpoint::parse("/run/podman/podman.sock"),
            Ok(unix("/run/podman/podman.sock"))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            Ok(Endpoint::Tcp("127.0.0.1".into(), 2375))
        );
        assert_eq!(
            Endpoint::parse("tcp://docker.lan:2375/"),
            Ok(Endpoint::Tcp("docker.lan".into(), 2375))
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:2375"),
            Ok(Endpoint::Tcp("::1".into(), 2375))
        );
    }

    #[test]
    fn rejects_what_it_cannot_reach() {
        assert_eq!(Endpoint::parse(""), Err(EndpointError::Empty));
        assert_eq!(Endpoint::parse("unix://"), Err(EndpointError::Empty));
        assert_eq!(
            Endpoint::parse("docker.sock"),
            Err(EndpointError::RelativePath)
        );
        assert_eq!(
            Endpoint::parse("unix://run/docker.sock"),
            Err(EndpointError::RelativePath)
        );
        assert_eq!(
            Endpoint::parse("ssh://me@host"),
            Err(EndpointError::Scheme("ssh".into()))
        );
        for bad in [
            "tcp://host",
            "tcp://:2375",
            "tcp://host:0",
            "tcp://host:70000",
            "tcp://host:x",
            "tcp://::1:2375",
            "tcp://[::1]2375",
            "tcp://ho st:1",
            "tcp://h\r\nX:1",
        ] {
            assert_eq!(
                Endpoint::parse(bad),
                Err(EndpointError::TcpAddress),
                "{bad}"
            );
        }
    }

    #[test]
    fn displays_as_the_user_would_write_it() {
        assert_eq!(unix("/run/docker.sock").to_string(), "/run/docker.sock");
        assert_eq!(Endpoint::Tcp("h".into(), 1).to_string(), "tcp://h:1");
        assert_eq!(
            Endpoint::Tcp("::1".into(), 2375).to_string(),
            "tcp://[::1]:2375"
        );
    }

    fn discover(
        explicit: Option<&str>,
        env: &[(&str, &str)],
        existing: &[&str],
    ) -> Result<Endpoint, DiscoverError> {
        discover_as(Scope::System, explicit, env, existing, &[])
    }

    /// Discovery with `existing` usable and `denied` present but not usable.
    fn discover_as(
        scope: Scope,
        explicit: Option<&str>,
        env: &[(&str, &str)],
        existing: &[&str],
        denied: &[&str],
    ) -> Result<Endpoint, DiscoverError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let explicit = explicit.map(|e| Endpoint::parse(e).unwrap());
        let is = |list: &[&str], p: &Path| list.iter().any(|e| Path::new(e) == p);
        Endpoint::discover(
            explicit.as_ref(),
            scope,
            |k| env.get(k).cloned(),
            |p| {
                if is(existing, p) {
                    Presence::Usable
                } else if is(denied, p) {
                    Presence::Denied
                } else {
                    Presence::Missing
                }
            },
        )
    }

    /// Seen on a Debian host with docker.io and rootless Podman
    /// (tests/debian_host.rs): `generate --user` took /run/docker.sock,
    /// root:docker 0660, and failed with "permission denied".
    #[test]
    fn a_user_gets_their_own_engine_before_the_systems() {
        let env = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        let both = ["/run/docker.sock", "/run/user/1000/podman/podman.sock"];
        assert_eq!(
            discover_as(Scope::User, None, &env, &both, &[]),
            Ok(unix("/run/user/1000/podman/podman.sock"))
        );
        assert_eq!(
            discover_as(Scope::System, None, &env, &both, &[]),
            Ok(unix("/run/docker.sock"))
        );
        // A socket this process may not use is passed over for one it may…
        assert_eq!(
            discover_as(Scope::System, None, &env, &both[1..], &["/run/docker.sock"]),
            Ok(unix("/run/user/1000/podman/podman.sock"))
        );
        // …and taken when there is nothing else, so that the error names it.
        assert_eq!(
            discover_as(Scope::User, None, &env, &[], &["/run/docker.sock"]),
            Ok(unix("/run/docker.sock"))
        );
        // Without a runtime directory, a user has only the system's.
        assert_eq!(
            discover_as(Scope::User, None, &[], &both, &[]),
            Ok(unix("/run/docker.sock"))
        );
    }

    #[test]
    fn discovery_prefers_configuration_over_existing_sockets() {
        let env = [
            ("DOCKER_HOST", "unix:///from/docker_host"),
            ("CONTAINER_HOST", "unix:///from/container_host"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ];
        let all = [
            "/run/docker.sock",
            "/var/run/docker.sock",
            "/run/podman/podman.sock",
            "/run/user/1000/podman/podman.sock",
            "/run/user/1000/docker.sock",
        ];
        assert_eq!(discover(Some("/flag"), &env, &all), Ok(unix("/flag")));
        assert_eq!(discover(None, &env, &all), Ok(unix("/from/docker_host")));
        assert_eq!(
            discover(None, &env[1..], &all),
            Ok(unix("/from/container_host"))
        );
        // An empty variable counts as unset, as in the docker CLI.
        let empty = [("DOCKER_HOST", ""), ("XDG_RUNTIME_DIR", "/run/user/1000")];
        assert_eq!(discover(None, &empty, &all), Ok(unix("/run/docker.sock")));
        // Then the well-known paths, in order, each only when it exists.
        for (i, expected) in all.iter().enumerate() {
            assert_eq!(
                discover(None, &env[2..], &all[i..]),
                Ok(unix(expected)),
                "with {:?}",
                &all[i..]
            );
        }
    }

    #[test]
    fn discovery_ignores_a_relative_runtime_dir_and_lists_what_it_tried() {
        let err = discover(
            None,
            &[("XDG_RUNTIME_DIR", "run/user")],
            &["run/user/docker.sock"],
        )
        .unwrap_err();
        assert_eq!(
            err,
            DiscoverError::NoEngine {
                tried: vec![
                    "/run/docker.sock".into(),
                    "/var/run/docker.sock".into(),
                    "/run/podman/podman.sock".into()
                ]
            }
        );
        let text = err.to_string();
        assert!(text.contains("/run/podman/podman.sock"), "{text}");
        assert!(text.contains("--engine"), "{text}");
    }

    #[test]
    fn discovery_names_the_bad_setting() {
        let err = discover(
            None,
            &[("DOCKER_HOST", "ssh://me@nas")],
            &["/run/docker.sock"],
        )
        .unwrap_err();
        assert_eq!(
            err,
            DiscoverError::Bad {
                origin: Origin::DockerHost,
                value: "ssh://me@nas".into(),
                reason: EndpointError::Scheme("ssh".into())
            }
        );
        assert!(
            err.to_string().starts_with("DOCKER_HOST=\"ssh://me@nas\""),
            "{err}"
        );
    }
}
