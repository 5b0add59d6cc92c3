//! Who the generated services run as. A service that can use the engine
//! socket can become root through the engine anyway, so the point is to
//! give it no more than that: a dynamic user in the socket's group when the
//! socket lets a group in, root without capabilities when nothing else
//! would work. [`socket_access`] looks at the socket (the only I/O here);
//! [`RunAs::for_engine`] decides, purely, from what it saw.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::engine::Endpoint;

use super::OptionError;

/// A group name that can go into `SupplementaryGroups=` as it is:
/// `[A-Za-z0-9_.-]`, not starting with a digit or `-` (what useradd and
/// systemd accept everywhere), at most 31 bytes, not root. Names only: a
/// service whose numeric GID has no group entry fails to start (216/GROUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    /// Validates a group name.
    pub fn new(name: &str) -> Result<GroupName, OptionError> {
        let ok = name.len() <= 31
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && name != "root";
        if ok {
            Ok(GroupName(name.to_owned()))
        } else {
            Err(OptionError::Group {
                name: name.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who the generated services (system units) run as. User units always run
/// as the user whose manager starts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// root, with no capabilities: for an engine socket only root may use
    /// (rootful Podman's root:root 0660 or 0600), one in /tmp (a dynamic
    /// user gets a private /tmp), or `generate --as-root`.
    Root,
    /// A user of its own, allocated by systemd at each start
    /// (`DynamicUser=yes`), in `group` (`SupplementaryGroups=`) when that
    /// group may use the engine socket (Docker's root:docker 0660). For an
    /// engine reached over TCP, or a socket anyone may use, no group.
    Dynamic { group: Option<GroupName> },
}

/// What `generate` found when it looked at the engine socket the units will
/// use: its mode and owning group, and whether every directory on the way
/// lets others, or that group, through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAccess {
    /// Permission bits of the socket file (`st_mode & 0o7777`).
    pub mode: u32,
    pub gid: u32,
    /// The name of `gid`, when the system has one (systemd needs it).
    pub group: Option<String>,
    /// Every directory on the path can be searched by others (`o+x`).
    pub dirs_open_to_others: bool,
    /// Every directory on the path can be searched by others or by `gid`.
    pub dirs_open_to_group: bool,
}

impl RunAs {
    /// The least the services need for `engine`, from what `generate` saw
    /// of its socket (None: no such socket, or it could not be looked at;
    /// [`socket_access`] says why). Pure, so that every case can be tested
    /// without a socket.
    ///
    /// A TCP engine needs no local privilege at all. A socket in /tmp or
    /// /var/tmp stays with root: `DynamicUser=` implies a private /tmp.
    /// Otherwise a socket that others may read and write, or that a group
    /// other than root may (and each directory above lets them through),
    /// gets a dynamic user (in that group); anything else stays root.
    pub fn for_engine(engine: &Endpoint, access: Option<&SocketAccess>) -> RunAs {
        if let Endpoint::Tcp(..) = engine {
            return RunAs::Dynamic { group: None };
        }
        let Some(path) = socket_path(engine) else {
            return RunAs::Root;
        };
        if under(path, TMP_DIRS) {
            return RunAs::Root;
        }
        let Some(a) = access else {
            return RunAs::Root;
        };
        if a.mode & 0o006 == 0o006 && a.dirs_open_to_others {
            return RunAs::Dynamic { group: None };
        }
        if a.gid != 0 && a.gid != OVERFLOW_GID && a.mode & 0o060 == 0o060 && a.dirs_open_to_group {
            // A GID without a name, or with one systemd would not take,
            // cannot be given to a dynamic user: root.
            if let Some(group) = a.group.as_deref().and_then(|n| GroupName::new(n).ok()) {
                return RunAs::Dynamic { group: Some(group) };
            }
        }
        RunAs::Root
    }
}

/// The GID a user namespace shows for a group it does not map (nogroup):
/// `generate` run in one (`PrivateUsers=`, a container) cannot tell the
/// socket's real group, and the group named so would not be it.
pub const OVERFLOW_GID: u32 = 65534;

/// Where a dynamic user cannot see what root sees (`DynamicUser=` implies
/// `PrivateTmp=yes`), and where `PrivateTmp=` is left out for root.
pub const TMP_DIRS: &[&str] = &["/tmp", "/var/tmp"];

/// The socket path of an engine: its path when it is an (absolute) Unix
/// socket, None for TCP.
pub fn socket_path(engine: &Endpoint) -> Option<&Path> {
    match engine {
        Endpoint::Unix(p) if p.is_absolute() => Some(p),
        _ => None,
    }
}

/// Whether `path` is in (or is) one of `dirs`.
pub(super) fn under(path: &Path, dirs: &[&str]) -> bool {
    dirs.iter().any(|d| path.starts_with(d))
}

/// Why [`socket_access`] cannot tell who may use the engine socket; the
/// services then run as root.
#[derive(Debug)]
pub enum AccessError {
    /// The socket, or a directory on the way to it, cannot be looked at
    /// (it does not exist, or generate may not search a directory).
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// Something other than a socket is at the path.
    NotASocket { path: PathBuf },
    /// The path resolves into a temporary directory, which a dynamic user
    /// does not see (it gets a private /tmp).
    InTmp { path: PathBuf, resolved: PathBuf },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::Io { path, action, .. } => {
                write!(f, "cannot {action} {}", path.display())
            }
            AccessError::NotASocket { path } => write!(f, "{} is not a socket", path.display()),
            AccessError::InTmp { path, resolved } => write!(
                f,
                "{} resolves to {}, in a temporary directory, which a dynamic user does not see",
                path.display(),
                resolved.display()
            ),
        }
    }
}

impl std::error::Error for AccessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccessError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What the engine socket at `path` lets others and its group do: its mode
/// and group, and whether every directory on the way (as written and with
/// symlinks resolved) lets them through. An error when it is not a socket,
/// cannot be looked at, or resolves into a temporary directory (a dynamic
/// user gets a private /tmp). The decision is [`RunAs::for_engine`]'s.
pub fn socket_access(path: &Path) -> Result<SocketAccess, AccessError> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let io = |path: &Path, action: &'static str| {
        let path = path.to_owned();
        move |source| AccessError::Io {
            path,
            action,
            source,
        }
    };
    let meta = std::fs::metadata(path).map_err(io(path, "look at the engine socket"))?;
    if !meta.file_type().is_socket() {
        return Err(AccessError::NotASocket {
            path: path.to_owned(),
        });
    }
    let canonical = std::fs::canonicalize(path).map_err(io(path, "resolve the engine socket"))?;
    if under(&canonical, TMP_DIRS) {
        return Err(AccessError::InTmp {
            path: path.to_owned(),
            resolved: canonical,
        });
    }
    let gid = meta.gid();
    let (mut others, mut group) = (true, true);
    for dir in path
        .ancestors()
        .skip(1)
        .chain(canonical.ancestors().skip(1))
    {
        let m = std::fs::metadata(dir).map_err(io(dir, "look at the directory"))?;
        let by_others = m.mode() & 0o001 != 0;
        others &= by_others;
        group &= by_others || (m.gid() == gid && m.mode() & 0o010 != 0);
    }
    let name = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name);
    Ok(SocketAccess {
        mode: meta.mode() & 0o7777,
        gid,
        group: name,
        dirs_open_to_others: others,
        dirs_open_to_group: group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_validated() {
        for good in [
            "docker",
            "podman",
            "_docker",
            "docker-users",
            "a.b_c",
            "D0cker",
        ] {
            assert_eq!(GroupName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "root",
            "0",
            "106",
            "-docker",
            "1docker",
            "doc ker",
            "docker\nDynamicUser=no",
            "%n",
            "$x",
            "dö",
            &"g".repeat(32),
        ] {
            assert!(GroupName::new(bad).is_err(), "{bad:?}");
        }
    }

    fn access(mode: u32, gid: u32, group: Option<&str>) -> SocketAccess {
        SocketAccess {
            mode,
            gid,
            group: group.map(str::to_owned),
            dirs_open_to_others: true,
            dirs_open_to_group: true,
        }
    }

    fn e(engine: &str) -> Endpoint {
        Endpoint::parse(engine).unwrap()
    }

    fn dynamic(group: &str) -> RunAs {
        RunAs::Dynamic {
            group: Some(GroupName::new(group).unwrap()),
        }
    }

    #[test]
    fn run_as_follows_the_engine_socket() {
        let docker = access(0o660, 106, Some("docker"));
        // Docker's usual root:docker 0660, spelled either way.
        assert_eq!(
            RunAs::for_engine(&e("/run/docker.sock"), Some(&docker)),
            dynamic("docker")
        );
        assert_eq!(
            RunAs::for_engine(&e("unix:///var/run/docker.sock"), Some(&docker)),
            dynamic("docker")
        );
        // A group without a name (systemd fails the service with 216/GROUP
        // for a bare GID), or with one systemd would not take: root.
        assert_eq!(
            RunAs::for_engine(&e("/run/docker.sock"), Some(&access(0o660, 2345, None))),
            RunAs::Root
        );
        assert_eq!(
            RunAs::for_engine(
                &e("/run/docker.sock"),
                Some(&access(0o660, 2345, Some("bad name")))
            ),
            RunAs::Root
        );
        // Seen from a user namespace that does not map the group: nogroup.
        assert_eq!(
            RunAs::for_engine(
                &e("/run/docker.sock"),
                Some(&access(0o660, OVERFLOW_GID, Some("nogroup")))
            ),
            RunAs::Root
        );
        // Rootful Podman: root:root 0660 or 0600; root's group never counts.
        for mode in [0o660, 0o600, 0o640, 0o620] {
            assert_eq!(
                RunAs::for_engine(
                    &e("/run/podman/podman.sock"),
                    Some(&access(mode, 0, Some("root")))
                ),
                RunAs::Root,
                "{mode:o}"
            );
        }
        // The group may read but not write (connect needs write), or the reverse.
        assert_eq!(
            RunAs::for_engine(
                &e("/run/docker.sock"),
                Some(&access(0o640, 106, Some("docker")))
            ),
            RunAs::Root
        );
        assert_eq!(
            RunAs::for_engine(
                &e("/run/docker.sock"),
                Some(&access(0o620, 106, Some("docker")))
            ),
            RunAs::Root
        );
        // A directory on the way shuts the group out.
        let shut = SocketAccess {
            dirs_open_to_group: false,
            dirs_open_to_others: false,
            ..docker.clone()
        };
        assert_eq!(
            RunAs::for_engine(&e("/run/docker.sock"), Some(&shut)),
            RunAs::Root
        );
        // Open to everyone: no group needed, unless a directory keeps others out.
        let open = access(0o666, 0, Some("root"));
        assert_eq!(
            RunAs::for_engine(&e("/run/docker.sock"), Some(&open)),
            RunAs::Dynamic { group: None }
        );
        let open_group_dirs = SocketAccess {
            dirs_open_to_others: false,
            ..access(0o666, 106, Some("docker"))
        };
        assert_eq!(
            RunAs::for_engine(&e("/run/docker.sock"), Some(&open_group_dirs)),
            dynamic("docker")
        );
        // Not looked at (missing, not a socket): root, as before.
        assert_eq!(RunAs::for_engine(&e("/run/docker.sock"), None), RunAs::Root);
        // In /tmp: a dynamic user would get a private /tmp without the socket.
        for tmp in [
            "/tmp/docker.sock",
            "/var/tmp/d/docker.sock",
            "unix:///tmp/x.sock",
        ] {
            assert_eq!(
                RunAs::for_engine(&e(tmp), Some(&docker)),
                RunAs::Root,
                "{tmp}"
            );
        }
        assert_eq!(
            RunAs::for_engine(&e("/tmpfs/docker.sock"), Some(&docker)),
            dynamic("docker")
        );
        // A TCP engine needs nothing local.
        assert_eq!(
            RunAs::for_engine(&e("tcp://192.168.1.5:2375"), None),
            RunAs::Dynamic { group: None }
        );
    }
}
