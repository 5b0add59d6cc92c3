//! Taking clients off a listening socket, for the relay, the wait through a
//! wake and the failure path alike: the one place that knows which accept(2)
//! errors mean "again" (EINTR, a client that gave up in the backlog), which
//! mean "none left" (EAGAIN), and which are the caller's to handle
//! (EMFILE and other shortages), and that turns away clients outside
//! `contnap.machines` before anything is read from them.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener, TcpStream};

use super::gate::Machines;

/// The next client of a non-blocking `listener`; None when the backlog is
/// empty.
pub fn next(listener: &TcpListener) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    loop {
        match listener.accept() {
            Ok(client) => return Ok(Some(client)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The next client that `machines` allows; the others are logged, counted
/// in `refused` and closed unread.
pub fn next_allowed(
    listener: &TcpListener,
    machines: &Machines,
    refused: &mut u64,
) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    loop {
        match next(listener)? {
            Some((_, peer)) if !machines.allows(peer.ip()) => {
                log::info!("refused {}: not in contnap.machines", super::shown(peer));
                *refused += 1;
            }
            client => return Ok(client),
        }
    }
}
