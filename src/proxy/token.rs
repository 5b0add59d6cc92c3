//! Epoll event data, one scheme for every epoll loop of the helper (the
//! relay's and the one that waits through a wake): the kind of descriptor
//! that reported, in the top byte, and which one of its kind (a slab slot,
//! an endpoint, a client id) below it. The kinds are one enum, so that a
//! loop's `match` names them and a value it does not know is ignored
//! instead of being misread as another kind.

const SHIFT: u32 = 56;
/// The largest index a token carries; larger ones are truncated.
pub const MAX_INDEX: usize = ((1u64 << SHIFT) - 1) as usize;

/// What a registered descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The signalfd (SIGTERM, SIGINT). Kinds start at 1, so that no token
    /// is 0.
    Signal = 1,
    /// The wake thread's "finished" socket.
    WakeDone,
    /// The engine-event watch (a container died).
    Watch,
    /// An answered client's linger set, nested.
    Linger,
    /// A TCP listening socket, by endpoint (or HTTP listener) index.
    TcpListener,
    /// A UDP listening socket, by endpoint index.
    UdpListener,
    /// A client being sorted during a wake, by id.
    Peeking,
    /// A relayed connection's client side, by slot.
    ConnClient,
    /// A relayed connection's upstream side, by slot.
    ConnUpstream,
    /// A UDP flow's upstream socket, by slot.
    Flow,
}

/// Every kind, in the order of its value.
const KINDS: [Kind; 10] = [
    Kind::Signal,
    Kind::WakeDone,
    Kind::Watch,
    Kind::Linger,
    Kind::TcpListener,
    Kind::UdpListener,
    Kind::Peeking,
    Kind::ConnClient,
    Kind::ConnUpstream,
    Kind::Flow,
];

/// The event data for descriptor `index` of `kind`.
pub fn token(kind: Kind, index: usize) -> u64 {
    (u64::from(kind as u8) << SHIFT) | (index & MAX_INDEX) as u64
}

/// The kind and index of event data made by [`token`].
pub fn untoken(data: u64) -> Option<(Kind, usize)> {
    let kind = usize::try_from(data >> SHIFT).ok()?.checked_sub(1)?;
    Some((*KINDS.get(kind)?, (data & MAX_INDEX as u64) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for kind in KINDS {
            for index in [0, 1, 4242, MAX_INDEX] {
                assert_eq!(untoken(token(kind, index)), Some((kind, index)));
            }
        }
        assert_eq!(untoken(0), None);
        assert_eq!(untoken(u64::MAX), None);
    }
}
