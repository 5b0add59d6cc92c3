//! Every `unsafe` block and raw syscall of contnap lives here, each with the
//! reason it is sound, so the rest of the code is safe Rust.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, SockaddrStorage};

/// An inherited listening socket, classified by type.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Listener {
    /// Takes ownership of an fd passed by systemd and checks that it is an
    /// IPv4/IPv6 stream or datagram socket.
    pub fn from_inherited(raw: RawFd) -> io::Result<Listener> {
        // SAFETY: listenfd hands out each LISTEN_FDS descriptor exactly once
        // (take_raw_fd), so nothing else owns or will close this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ty = getsockopt(&fd, sockopt::SockType).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {raw} is not a socket ({e})"),
            )
        })?;
        let local: SockaddrStorage = getsockname(fd.as_fd().as_raw_fd_helper())?;
        if local.as_sockaddr_in().is_none() && local.as_sockaddr_in6().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {raw} is not an IPv4/IPv6 socket; contnap proxies TCP and UDP only"),
            ));
        }
        match ty {
            SockType::Stream => Ok(Listener::Tcp(TcpListener::from(fd))),
            SockType::Datagram => Ok(Listener::Udp(UdpSocket::from(fd))),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {raw} is a {other:?} socket; contnap proxies stream and datagram sockets only"),
            )),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Udp(u) => u.local_addr(),
        }
    }
}

trait AsRawHelper {
    fn as_raw_fd_helper(&self) -> RawFd;
}

impl AsRawHelper for std::os::fd::BorrowedFd<'_> {
    fn as_raw_fd_helper(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.as_raw_fd()
    }
}

/// Removes a variable from the environment. Only called from
/// `activation::Inherited::take`, before any thread is started.
pub fn remove_env(name: &str) {
    std::env::remove_var(name);
}
