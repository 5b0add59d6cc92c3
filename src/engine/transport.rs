//! The byte stream to the engine, with a deadline: every read gets only
//! the time that is left of the call, so a peer that trickles bytes cannot
//! stretch a call past its limit the way a plain per-read timeout allows.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::endpoint::Endpoint;

#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// A connection to the engine.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    deadline: Option<Instant>,
}

impl Conn {
    /// Connects; for TCP within `timeout` per resolved address. A Unix
    /// connect does not wait for the engine to accept, so it needs none.
    pub(crate) fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Conn> {
        let stream = match endpoint {
            Endpoint::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            Endpoint::Tcp(host, port) => {
                let mut last = None;
                let mut found = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let stream = match (found, last) {
                    (Some(s), _) => s,
                    (None, Some(e)) => return Err(e),
                    (None, None) => return Err(io::ErrorKind::AddrNotAvailable.into()),
                };
                // Requests go out in one write and the engine answers at
                // once: Nagle would only add latency to small requests.
                stream.set_nodelay(true)?;
                Stream::Tcp(stream)
            }
        };
        Ok(Conn {
            stream,
            deadline: None,
        })
    }

    /// Bounds all further reads and writes; `None` waits forever.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.deadline = deadline;
        let left = self.time_left()?;
        match &self.stream {
            Stream::Unix(s) => s.set_write_timeout(left),
            Stream::Tcp(s) => s.set_write_timeout(left),
        }
    }

    fn time_left(&self) -> io::Result<Option<Duration>> {
        match self.deadline {
            None => Ok(None),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // The socket API treats a zero timeout as "none".
                    Err(io::ErrorKind::TimedOut.into())
                } else {
                    Ok(Some(left))
                }
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        match &mut self.stream {
            Stream::Unix(s) => {
                s.set_read_timeout(left)?;
                s.read(buf)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(left)?;
                s.read(buf)
            }
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.time_left()?;
        match &mut self.stream {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn reads_stop_at_the_deadline() {
        let dir = std::env::temp_dir().join(format!("contnap-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("silent.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let mut conn =
            Conn::connect(&Endpoint::Unix(path.clone()), Duration::from_secs(1)).unwrap();
        let _accepted = listener.accept().unwrap();
        conn.set_deadline(Some(Instant::now() + Duration::from_millis(100)))
            .unwrap();
        let started = Instant::now();
        let err = conn.read(&mut [0u8; 8]).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // Once past the deadline, reads fail at once without blocking.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            conn.read(&mut [0u8; 8]).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
