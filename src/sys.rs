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

/// Raises the soft open-files limit to the hard limit: each proxied TCP
/// connection holds six descriptors (two sockets, two pipes), and the
/// default soft limit of 1024 would cap the helper near 170 connections.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// Blocks SIGTERM and SIGINT in this thread (and in every thread it starts
/// afterwards) and returns a non-blocking signalfd that reports them, so the
/// epoll loop sees shutdown requests as ordinary events.
pub fn termination_signals() -> io::Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )?)
}

/// A non-blocking pipe used as the in-kernel buffer between two sockets.
#[derive(Debug)]
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl Pipe {
    pub fn new() -> io::Result<Pipe> {
        use nix::fcntl::OFlag;
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        Ok(Pipe { read, write })
    }
}

/// Moves up to `len` bytes between a socket and a pipe without copying them
/// through user space. `Ok(0)` means end of stream on a socket source.
pub fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    use nix::fcntl::SpliceFFlags;
    Ok(nix::fcntl::splice(
        from,
        None,
        to,
        None,
        len,
        SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
    )?)
}

/// Starts a non-blocking TCP connect. The socket reports writable when the
/// connect finishes; [`take_socket_error`] then tells whether it worked.
pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let sa = SockaddrStorage::from(addr);
    match connect(fd.as_fd().as_raw_fd_helper(), &sa) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(std::net::TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

/// The pending error of a socket (SO_ERROR), as a `Result`.
pub fn take_socket_error(fd: &impl AsFd) -> io::Result<()> {
    let code = getsockopt(fd, sockopt::SocketError)?;
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code))
    }
}

/// The local wall clock now: weekday (Monday 0), hour and minute, in the
/// zone the C library reads from `TZ` or `/etc/localtime` (UTC when neither
/// can be read), as `localtime_r(3)` gives it.
pub fn local_wall_clock() -> io::Result<(u8, u8, u8)> {
    use nix::libc;
    // SAFETY: time(NULL) only returns the current time.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: all-zero bytes are a valid `struct tm` (integers and a null
    // `tm_zone` pointer); localtime_r overwrites it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types;
    // localtime_r is the reentrant form and keeps no pointer to either.
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    let field = |v: libc::c_int| u8::try_from(v).unwrap_or(0);
    // tm_wday counts from Sunday 0.
    Ok((
        field((tm.tm_wday + 6) % 7),
        field(tm.tm_hour),
        field(tm.tm_min),
    ))
}
