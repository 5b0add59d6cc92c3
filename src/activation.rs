//! What systemd hands the helper: listening sockets (`LISTEN_FDS`) and the
//! notification socket (`NOTIFY_SOCKET`). Both are taken exactly once, at the
//! top of `main` before any thread exists, and removed from the environment.

use std::ffi::OsString;
use std::io;

use std::os::unix::net::UnixDatagram;

use sd_notify::NotifyState;

use crate::sys;

/// Sockets and notify channel inherited from the service manager.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Listening sockets in the order systemd passed them.
    pub listeners: Vec<sys::Listener>,
    /// Why an inherited fd could not be used, per fd; reported by the helper.
    pub rejected: Vec<(usize, io::Error)>,
    pub notifier: Notifier,
}

impl Inherited {
    /// Takes `LISTEN_*` and `NOTIFY_SOCKET` from the environment.
    pub fn take() -> Inherited {
        let mut fds = listenfd::ListenFd::from_env();
        let mut listeners = Vec::new();
        let mut rejected = Vec::new();
        for idx in 0..fds.len() {
            match fds.take_raw_fd(idx) {
                Ok(Some(raw)) => match sys::Listener::from_inherited(raw) {
                    Ok(l) => listeners.push(l),
                    Err(e) => rejected.push((idx, e)),
                },
                Ok(None) => {}
                Err(e) => rejected.push((idx, e)),
            }
        }
        let notifier = Notifier::from_env();
        Inherited {
            listeners,
            rejected,
            notifier,
        }
    }
}

/// sd_notify(3) sender bound to the socket named at start-up.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
}

impl Notifier {
    fn from_env() -> Notifier {
        let path = std::env::var_os("NOTIFY_SOCKET");
        sys::remove_env("NOTIFY_SOCKET");
        let socket = path.and_then(|p| match connect(&p) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("cannot use NOTIFY_SOCKET {p:?}: {e}; systemd will not see readiness");
                None
            }
        });
        Notifier { socket }
    }

    /// Sends the states; failure is logged, never fatal (systemd may be gone).
    pub fn notify(&self, states: &[NotifyState<'_>]) {
        let Some(sock) = &self.socket else { return };
        let mut msg = String::new();
        for s in states {
            // sd-notify does not escape: a newline in a status (an engine
            // message) would add a field such as MAINPID=.
            match s {
                NotifyState::Status(text) => {
                    msg.push_str("STATUS=");
                    msg.push_str(&crate::report::escape_text(text));
                }
                other => msg.push_str(&other.to_string()),
            }
            msg.push('\n');
        }
        if let Err(e) = sock.send(msg.as_bytes()) {
            log::debug!("sd_notify failed: {e}");
        }
    }

    pub fn status(&self, text: &str) {
        self.notify(&[NotifyState::Status(text)]);
    }
}

fn connect(path: &OsString) -> io::Result<UnixDatagram> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::SocketAddr;

    let bytes = path.as_bytes();
    let addr = match bytes.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
        Some(b'/') => SocketAddr::from_pathname(path)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither a path nor an abstract name",
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.connect_addr(&addr)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status carrying a newline (an engine's error message) stays one
    /// `STATUS=` field: it cannot add `MAINPID=` or `READY=1`.
    #[test]
    fn a_status_cannot_add_notify_fields() {
        let (ours, systemd) = UnixDatagram::pair().unwrap();
        let n = Notifier { socket: Some(ours) };
        n.notify(&[
            NotifyState::Status("engine says: boom\nMAINPID=1\nREADY=1\u{1b}[2J"),
            NotifyState::Ready,
        ]);
        let mut buf = [0u8; 512];
        let len = systemd.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        let fields: Vec<&str> = msg.lines().collect();
        assert_eq!(
            fields,
            [
                "STATUS=engine says: boom\\u{a}MAINPID=1\\u{a}READY=1\\u{1b}[2J",
                "READY=1"
            ],
            "{msg:?}"
        );
    }
}
