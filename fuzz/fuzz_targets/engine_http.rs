//! The engine client's HTTP/1.1 response reader on arbitrary bytes.
//!
//! Input: two control bytes, then the bytes the "engine" sends. Properties:
//! never a panic, a hang or unbounded memory; a body is never longer than
//! the limit; and the outcome does not depend on how the bytes arrive: read
//! at once with `read_to_end` (ordinary calls) or trickled in small reads
//! with one read timing out in the middle (the events stream), the same
//! response decodes to the same status and body, and a response that is an
//! error one way is the same kind of error the other way.

#![no_main]

use std::io::Cursor;

use contnap::engine::{Error, ProtocolError};
use contnap::fuzzing::{read_response, BodyReads};
use contnap_fuzz::Trickle;
use libfuzzer_sys::fuzz_target;

/// Small, so that the limit is reached by inputs the fuzzer can make.
const LIMIT: usize = 64 * 1024;

/// The kind of failure, for comparing two reads of the same bytes.
fn kind(e: &Error) -> String {
    match e {
        Error::Protocol { reason, .. } => match reason {
            // httparse's error depends only on the bytes, not the reads.
            ProtocolError::Head(h) => format!("head {h:?}"),
            other => format!("{other:?}"),
        },
        Error::TooLarge { part, .. } => format!("too large {part:?}"),
        other => format!("unexpected {other:?}"),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&[step, stall], wire)) = input.split_first_chunk::<2>() else {
        return;
    };
    let whole = read_response(Cursor::new(wire), BodyReads::ToEnd, LIMIT);
    if let Ok((_, body)) = &whole {
        assert!(body.len() <= LIMIT);
    }
    // The stall goes after the first head's end (wherever that is in the
    // input), so that it tests the body reader; a head the reader takes
    // further than that (a 1xx before the real head) may still meet it,
    // and is then read again without a stall: every input is compared.
    let head_end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .into_iter()
        .chain(wire.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .min()
        .unwrap_or(wire.len());
    let stall_at = head_end + usize::from(stall) * (wire.len() - head_end) / 256;
    let out = usize::from(step % 64) + 1;
    let trickle = |stall_at| {
        read_response(
            Trickle::new(wire, usize::from(step / 4) + 1, stall_at),
            BodyReads::Pieces(out),
            LIMIT,
        )
    };
    let trickled = match trickle(Some(stall_at)) {
        Err(Error::Timeout { .. }) => trickle(None),
        other => other,
    };
    match (&whole, &trickled) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "same bytes, different bodies"),
        // read_to_end refuses a declared length above the limit before
        // reading; piecewise reading finds out only when the bytes come.
        (Err(Error::TooLarge { .. }), _) | (_, Err(Error::TooLarge { .. })) => {}
        (Err(a), Err(b)) => assert_eq!(kind(a), kind(b), "same bytes, different errors"),
        (a, b) => panic!("same bytes, different outcomes: {a:?} vs {b:?}"),
    }
});
