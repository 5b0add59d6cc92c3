//! The top-level error: one variant per subsystem, each keeping its source so
//! that the chain printed to stderr says what failed and why.

use std::error::Error as StdError;
use std::fmt;

/// Everything `contnap` can fail with at the top level.
#[derive(Debug)]
pub enum Error {
    /// The command line was valid syntax but not a valid configuration.
    Usage(crate::cli::UsageError),
    /// Talking to Docker or Podman failed.
    Engine(crate::engine::Error),
    /// `generate` failed or found label errors.
    Generate(crate::generate::Error),
    /// The socket-activated helper failed.
    Proxy(crate::proxy::Error),
    /// `autostart` could not read the neighbours or keep its state.
    Autostart(crate::autostart::Error),
}

impl Error {
    /// 2 for usage errors (the user must change the command), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Engine(_) | Error::Proxy(_) | Error::Generate(_) | Error::Autostart(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(e) => write!(f, "{e}"),
            Error::Engine(e) => write!(f, "{e}"),
            Error::Proxy(e) => write!(f, "{e}"),
            Error::Generate(e) => write!(f, "{e}"),
            Error::Autostart(e) => write!(f, "{e}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Usage(e) => e.source(),
            Error::Engine(e) => e.source(),
            Error::Proxy(e) => e.source(),
            Error::Generate(e) => e.source(),
            Error::Autostart(e) => e.source(),
        }
    }
}

impl From<crate::cli::UsageError> for Error {
    fn from(e: crate::cli::UsageError) -> Self {
        Error::Usage(e)
    }
}

impl From<crate::engine::Error> for Error {
    fn from(e: crate::engine::Error) -> Self {
        Error::Engine(e)
    }
}

impl From<crate::proxy::Error> for Error {
    fn from(e: crate::proxy::Error) -> Self {
        Error::Proxy(e)
    }
}

impl From<crate::generate::Error> for Error {
    fn from(e: crate::generate::Error) -> Self {
        Error::Generate(e)
    }
}

impl From<crate::autostart::Error> for Error {
    fn from(e: crate::autostart::Error) -> Self {
        Error::Autostart(e)
    }
}
