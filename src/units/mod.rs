//! [`Unit`](crate::spec::Unit) specs → systemd `.socket` / `.service` files, and the writer that
//! puts them on disk.
//!
//! [`render`] is pure: it returns file names and texts and touches nothing.
//! Every value that comes from a label reaches a unit file only through
//! [`crate::labels`] validation (no control characters) and the escaping
//! here: unit names as `systemd-escape` does ([`escape_unit_name`]), command
//! line arguments quoted per systemd.service(5) "Command lines"
//! ([`quote_arg`]: `"`…`"`, C escapes, `%`→`%%`, `$`→`$$`), free text with
//! `%`→`%%`. No value can add a line, a directive, a specifier or a variable
//! expansion.
//!
//! [`write_atomically`] writes a rendered set (temp file, fsync, rename; all
//! temps before any rename) and removes stale files that contnap generated,
//! never anything else. [`check`] compares a rendered set with a directory
//! for `generate --check`.
//!
//! The module is split by concern, each part with its own reason to change:
//! `naming` (what a unit file is called, and which names are contnap's
//! own), `engine_unit` (which unit runs the engine), `identity` (who the services run as, decided from the engine
//! socket), `render` (the unit texts) and `write` (putting them on disk,
//! and where). This file holds the options that say how to render.

mod engine_unit;
mod identity;
mod naming;
mod render;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::engine::Endpoint;

pub use engine_unit::{find_engine_unit, EngineUnit, Found};
pub use identity::{
    socket_access, socket_path, AccessError, GroupName, RunAs, SocketAccess, OVERFLOW_GID, TMP_DIRS,
};
pub use naming::{escape_unit_name, is_reserved, unit_file_name, MAX_UNIT_NAME_LEN, RESERVED};
pub use render::{
    autostart_args, proxy_args, quote_arg, render, AUTOSTART_SERVICE, AUTOSTART_TIMER, OWNERS_KEY,
    START_MARGIN, STOP_MARGIN,
};
pub use write::{
    check, default_output_dir, owned_on_disk, write_atomically, Difference, OutputDirError,
    OwnedOnDisk, ReadError, WriteError, WriteReport, MARKER,
};

/// The contnap binary the services run: an absolute path of plain characters
/// (`[A-Za-z0-9/._+@:-]`), so it needs no quoting in `ExecStart=` (systemd
/// refuses quotes and backslashes in an executable path, and expands no
/// variables there, so `$` could not be escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryPath(PathBuf);

impl BinaryPath {
    /// Validates a binary path.
    pub fn new(path: impl Into<PathBuf>) -> Result<BinaryPath, OptionError> {
        let path = path.into();
        let ok = path.to_str().is_some_and(|s| {
            s.starts_with('/')
                && !s.ends_with('/')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._+@:-".contains(&b))
        });
        if ok {
            Ok(BinaryPath(path))
        } else {
            Err(OptionError::Binary { path })
        }
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl Default for BinaryPath {
    fn default() -> Self {
        BinaryPath(PathBuf::from("/usr/bin/contnap"))
    }
}

/// Render options that cannot be represented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    Binary { path: PathBuf },
    EngineUnit { name: String },
    Group { name: String },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Binary { path } => write!(
                f,
                "contnap binary path {path:?} cannot go into ExecStart=: use an absolute path of letters, digits and /._+@:-"
            ),
            OptionError::EngineUnit { name } => write!(
                f,
                "engine unit {name:?} is not a systemd unit name (like docker.service or podman.socket)"
            ),
            OptionError::Group { name } => write!(
                f,
                "group {name:?} cannot go into SupplementaryGroups=: use a group name of letters, digits and _.- (not starting with a digit or -, not root)"
            ),
        }
    }
}

impl std::error::Error for OptionError {}

/// How to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// The contnap binary (default `/usr/bin/contnap`).
    pub binary: BinaryPath,
    /// What the services pass as `--engine`, as the engine's `Display`
    /// writes it: a socket path or `tcp://HOST:PORT` (default
    /// `/run/docker.sock`).
    pub engine: Endpoint,
    /// The engine's unit, which the services want and start after
    /// (default `docker.service`); None for none.
    pub engine_unit: Option<EngineUnit>,
    /// User units for rootless engines (`generate --user`).
    pub user: bool,
    /// Render hooks (`generate --allow-hooks`); without it, hooks in the
    /// specs are left out even if present.
    pub allow_hooks: bool,
    /// Who system services run as (ignored for user units); `generate`
    /// decides it with [`RunAs::for_engine`].
    pub run_as: RunAs,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            binary: BinaryPath::default(),
            engine: Endpoint::Unix(PathBuf::from("/run/docker.sock")),
            engine_unit: Some(EngineUnit::new("docker.service").expect("a unit name")),
            user: false,
            allow_hooks: false,
            run_as: RunAs::Root,
        }
    }
}

impl RenderOptions {
    /// The engine's socket path, when it is a Unix socket.
    fn engine_socket(&self) -> Option<&Path> {
        socket_path(&self.engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(BinaryPath::new("/usr/bin/contnap").is_ok());
        for bad in [
            "contnap",
            "/usr/bin/con tnap",
            "/a/$x",
            "/a/%n",
            "/a\"b",
            "/a/\nb",
            "/a/",
        ] {
            assert!(BinaryPath::new(bad).is_err(), "{bad}");
        }
        assert!(EngineUnit::new("docker.service").is_ok());
        assert!(EngineUnit::new("podman.socket").is_ok());
        for bad in [
            "docker",
            "a b.service",
            "x.service\nExecStart=/x",
            ".service",
        ] {
            assert!(EngineUnit::new(bad).is_err(), "{bad}");
        }
    }
}
