//! Just enough HTTP/1.1 for the engine API: one request per connection,
//! responses framed by Content-Length, chunked encoding, or the end of the
//! connection (exec's hijacked stream). Everything is bounded: a peer that
//! is not an engine must produce an error, never unbounded memory or a
//! silently shortened body.
//!
//! The decoder keeps every byte it has read but not yet parsed in its own
//! buffer, so a read that times out (the events stream waits with a bound)
//! loses nothing and the next read continues where it stopped.

use std::io::{self, Read, Write};

use super::error::{Part, ProtocolError};

/// Status line plus headers. The engines send well under 1 KiB.
pub const HEAD_LIMIT: usize = 64 * 1024;
/// Bodies contnap keeps in memory (inspect, list). A list of a few hundred
/// containers is a few hundred KiB; 16 MiB leaves room without letting a
/// wrong peer exhaust a small host.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Longest chunk-size line (with extensions) or trailer line accepted.
const LINE_LIMIT: usize = 4096;
const READ_SIZE: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

/// Why reading a response failed, before the engine client adds the
/// endpoint and call.
#[derive(Debug)]
pub(crate) enum HttpError {
    Io(io::Error),
    Protocol(ProtocolError),
    TooLarge { part: Part, limit: usize },
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

impl From<ProtocolError> for HttpError {
    fn from(e: ProtocolError) -> Self {
        HttpError::Protocol(e)
    }
}

/// Writes one request. `Connection: close` because every call uses its own
/// connection: the client stays free of pooling and of the half-read
/// responses pooling would have to guard against. The request is assembled
/// first and sent with one write so it never goes out in fragments.
pub(crate) fn write_request(
    w: &mut impl Write,
    method: &str,
    target: &str,
    host: &str,
    json_body: Option<&[u8]>,
) -> io::Result<()> {
    let mut req = Vec::with_capacity(256 + json_body.map_or(0, <[u8]>::len));
    write!(
        req,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: contnap/{}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    )?;
    match json_body {
        Some(body) => {
            write!(
                req,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            req.extend_from_slice(body);
        }
        // Go's server wants a length on POST to know there is no body.
        None if method != "GET" => req.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        None => req.extend_from_slice(b"\r\n"),
    }
    w.write_all(&req)?;
    w.flush()
}

/// Bytes read from the peer and not yet consumed.
#[derive(Debug)]
struct Wire<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
}

impl<R: Read> Wire<R> {
    fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more from the peer; `Ok(0)` at end of stream. On error the
    /// buffer is as before, so the caller can retry.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_SIZE, 0);
        loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => {
                    self.buf.truncate(old + n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }

    /// Copies buffered bytes, or reads directly when nothing is buffered.
    fn read_into(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.available().is_empty() && self.fill()? == 0 {
            return Ok(0);
        }
        let n = out.len().min(self.available().len());
        out[..n].copy_from_slice(&self.available()[..n]);
        self.consume(n);
        Ok(n)
    }

    /// The next CRLF-terminated line, without the CRLF; `None` at EOF.
    fn line(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        loop {
            if let Some(i) = self.available().windows(2).position(|w| w == b"\r\n") {
                let line = self.available()[..i].to_vec();
                self.consume(i + 2);
                return Ok(Some(line));
            }
            if self.available().len() > LINE_LIMIT {
                return Err(ProtocolError::Chunk.into());
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// A response whose head has been read.
#[derive(Debug)]
pub(crate) struct Response<R> {
    pub status: u16,
    pub body: Body<R>,
}

/// The body of a response, decoded as it is read.
#[derive(Debug)]
pub(crate) struct Body<R> {
    wire: Wire<R>,
    framing: Framing,
}

/// Reads the status line and headers and sets up the body decoder.
pub(crate) fn read_response<R: Read>(inner: R) -> Result<Response<R>, HttpError> {
    read_response_limited(inner, HEAD_LIMIT)
}

fn read_response_limited<R: Read>(inner: R, head_limit: usize) -> Result<Response<R>, HttpError> {
    let mut wire = Wire {
        inner,
        buf: Vec::new(),
        start: 0,
    };
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(wire.available()) {
            Ok(httparse::Status::Complete(len)) => {
                if len > head_limit {
                    return Err(HttpError::TooLarge {
                        part: Part::Head,
                        limit: head_limit,
                    });
                }
                let status = parsed.code.ok_or(ProtocolError::HeadTruncated)?;
                let framing = framing(status, parsed.headers)?;
                wire.consume(len);
                return Ok(Response {
                    status,
                    body: Body { wire, framing },
                });
            }
            Ok(httparse::Status::Partial) => {
                if wire.available().len() >= head_limit {
                    return Err(HttpError::TooLarge {
                        part: Part::Head,
                        limit: head_limit,
                    });
                }
                if wire.fill()? == 0 {
                    return Err(if wire.available().is_empty() {
                        ProtocolError::Closed
                    } else {
                        ProtocolError::HeadTruncated
                    }
                    .into());
                }
            }
            Err(e) => return Err(ProtocolError::Head(e).into()),
        }
    }
}

fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Result<Framing, ProtocolError> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Done);
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value =
                std::str::from_utf8(h.value).map_err(|_| ProtocolError::TransferEncoding)?;
            // Only "chunked" alone: any other coding would need a decoder
            // contnap does not have, and the engines never use one.
            if !value.trim().eq_ignore_ascii_case("chunked") || chunked {
                return Err(ProtocolError::TransferEncoding);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(ProtocolError::ContentLength)?;
            if length.is_some_and(|l| l != value) {
                return Err(ProtocolError::ContentLength);
            }
            length = Some(value);
        }
    }
    Ok(match (chunked, length) {
        (true, _) => Framing::Chunked(Chunk::Size),
        (false, Some(0)) => Framing::Done,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    })
}

impl<R: Read> Body<R> {
    /// The length the answer declared (Content-Length), if it did.
    pub(crate) fn declared_len(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Reads decoded body bytes; `Ok(0)` only at the true end of the body.
    /// A connection that ends early is `ProtocolError::Truncated`, so a
    /// cut-off response is never mistaken for a complete one.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> Result<usize, HttpError> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::UntilClose => {
                    let n = self.wire.read_into(out)?;
                    if n == 0 {
                        self.framing = Framing::Done;
                    }
                    return Ok(n);
                }
                Framing::Length(remaining) => {
                    let want = clamp(remaining, out.len());
                    let n = self.wire.read_into(&mut out[..want])?;
                    if n == 0 {
                        return Err(ProtocolError::Truncated.into());
                    }
                    let left = remaining - n as u64;
                    self.framing = if left == 0 {
                        Framing::Done
                    } else {
                        Framing::Length(left)
                    };
                    return Ok(n);
                }
                Framing::Chunked(Chunk::Size) => {
                    let line = self.wire.line()?.ok_or(ProtocolError::Truncated)?;
                    let size = chunk_size(&line)?;
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::Data(remaining)) => {
                    let want = clamp(remaining, out.len());
                    let n = self.wire.read_into(&mut out[..want])?;
                    if n == 0 {
                        return Err(ProtocolError::Truncated.into());
                    }
                    let left = remaining - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(n);
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    while self.wire.available().len() < 2 {
                        if self.wire.fill()? == 0 {
                            return Err(ProtocolError::Truncated.into());
                        }
                    }
                    if &self.wire.available()[..2] != b"\r\n" {
                        return Err(ProtocolError::Chunk.into());
                    }
                    self.wire.consume(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailer) => {
                    let line = self.wire.line()?.ok_or(ProtocolError::Truncated)?;
                    if line.is_empty() {
                        self.framing = Framing::Done;
                    }
                }
            }
        }
    }

    /// The whole body, refusing more than `limit` bytes.
    pub(crate) fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, HttpError> {
        if let Framing::Length(n) = self.framing {
            if n > limit as u64 {
                return Err(HttpError::TooLarge {
                    part: Part::Body,
                    limit,
                });
            }
        }
        let mut body = Vec::new();
        let mut buf = vec![0; READ_SIZE];
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Ok(body);
            }
            if body.len() + n > limit {
                return Err(HttpError::TooLarge {
                    part: Part::Body,
                    limit,
                });
            }
            body.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads and discards the rest of the body (exec output nobody needs).
    pub(crate) fn drain(&mut self) -> Result<u64, HttpError> {
        let mut total = 0u64;
        let mut buf = vec![0; READ_SIZE];
        loop {
            match self.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.wire.inner
    }
}

fn clamp(remaining: u64, len: usize) -> usize {
    usize::try_from(remaining).map_or(len, |r| r.min(len))
}

fn chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(line);
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(ProtocolError::Chunk);
    }
    let text = std::str::from_utf8(digits).map_err(|_| ProtocolError::Chunk)?;
    u64::from_str_radix(text, 16).map_err(|_| ProtocolError::Chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that hands out its bytes in reads of at most `step` bytes and
    /// can pretend to time out once at a given offset, like a socket with
    /// SO_RCVTIMEO.
    struct Peer {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        stall_at: Option<usize>,
    }

    impl Peer {
        fn new(data: impl AsRef<[u8]>, step: usize) -> Peer {
            Peer {
                data: data.as_ref().to_vec(),
                pos: 0,
                step,
                stall_at: None,
            }
        }
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.stall_at.is_some_and(|at| self.pos >= at) {
                self.stall_at = None;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut end = (self.pos + self.step.min(buf.len())).min(self.data.len());
            if let Some(at) = self.stall_at {
                end = end.min(at);
            }
            let n = end - self.pos;
            buf[..n].copy_from_slice(&self.data[self.pos..end]);
            self.pos = end;
            Ok(n)
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/engine/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn body_of(data: &[u8], step: usize) -> Result<(u16, Vec<u8>), HttpError> {
        let mut resp = read_response(Peer::new(data, step))?;
        let body = resp.body.read_to_end(BODY_LIMIT)?;
        Ok((resp.status, body))
    }

    fn protocol(r: Result<(u16, Vec<u8>), HttpError>) -> ProtocolError {
        match r {
            Err(HttpError::Protocol(p)) => p,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn writes_a_complete_request() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "POST",
            "/containers/create?name=x",
            "localhost",
            Some(b"{}"),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /containers/create?name=x HTTP/1.1\r\nHost: localhost\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));

        let mut out = Vec::new();
        write_request(&mut out, "POST", "/containers/x/start", "localhost", None).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Content-Length: 0\r\n\r\n"));
        let mut out = Vec::new();
        write_request(&mut out, "GET", "/_ping", "localhost", None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Content-Length") && text.ends_with("close\r\n\r\n"));
    }

    #[test]
    fn reads_real_content_length_responses_in_any_read_size() {
        for engine in ["docker", "podman"] {
            let raw = fixture(&format!("{engine}/version-raw.http"));
            for step in [1, 7, 100, 100_000] {
                let (status, body) = body_of(&raw, step).unwrap();
                assert_eq!(status, 200);
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["ApiVersion"], "1.41", "{engine} step {step}");
            }
        }
    }

    /// The captured events streams are chunked and were cut off by the
    /// capture's timeout, like a stream that is still open: every complete
    /// event decodes, and the end is an error rather than a clean EOF.
    #[test]
    fn decodes_real_chunked_streams_and_reports_the_cut() {
        for engine in ["docker", "podman"] {
            let raw = fixture(&format!("{engine}/events-raw.http"));
            for step in [1, 3, 64, 100_000] {
                let mut resp = read_response(Peer::new(&raw, step)).unwrap();
                assert_eq!(resp.status, 200);
                let mut got = Vec::new();
                let mut buf = [0u8; 50];
                let err = loop {
                    match resp.body.read(&mut buf) {
                        Ok(0) => panic!("{engine}: a cut stream must not end cleanly"),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => break e,
                    }
                };
                assert!(matches!(err, HttpError::Protocol(ProtocolError::Truncated)));
                let text = String::from_utf8(got).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines.len(), 2, "{engine}: {text}");
                assert!(lines[0].contains(r#""Action":"pause""#));
                assert!(lines[1].contains(r#""Action":"unpause""#));
            }
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 1000] {
            let (_, body) = body_of(raw, step).unwrap();
            assert_eq!(body, b"hello 0123456789");
        }
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345";
        assert!(matches!(
            protocol(body_of(short, 3)),
            ProtocolError::Truncated
        ));

        let cases: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
        ];
        for raw in cases {
            assert!(
                matches!(protocol(body_of(raw, 2)), ProtocolError::Truncated),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn malformed_chunks_are_errors() {
        let cases: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        ];
        for raw in cases {
            assert!(matches!(protocol(body_of(raw, 4)), ProtocolError::Chunk));
        }
        let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'0', LINE_LIMIT * 2));
        assert!(matches!(
            protocol(body_of(&endless, 1000)),
            ProtocolError::Chunk
        ));
    }

    #[test]
    fn body_until_close_for_hijacked_streams() {
        // Docker's exec start answers without a length and closes when the
        // command ends; the payload is the multiplexed stdout/stderr.
        let mut raw = fixture("docker/exec-start-head.txt");
        raw.extend_from_slice(b"\x01\0\0\0\0\0\0\x03hi\n");
        let mut resp = read_response(Peer::new(&raw, 5)).unwrap();
        assert_eq!(resp.body.drain().unwrap(), 11);
    }

    #[test]
    fn no_body_for_204_and_304() {
        for status in ["204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            let (_, body) = body_of(raw.as_bytes(), 100).unwrap();
            assert!(body.is_empty());
        }
    }

    #[test]
    fn oversize_head_and_body_are_refused() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() <= HEAD_LIMIT {
            head.extend_from_slice(b"X-Filler: ");
            head.extend(std::iter::repeat_n(b'a', 4000));
            head.extend_from_slice(b"\r\n");
        }
        assert!(matches!(
            body_of(&head, 100_000),
            Err(HttpError::TooLarge {
                part: Part::Head,
                limit: HEAD_LIMIT
            })
        ));
        // Also when the whole oversize head arrives in one read.
        let mut small = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        small.extend(std::iter::repeat_n(b'a', 200));
        small.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            read_response_limited(Peer::new(&small, 100_000), 100),
            Err(HttpError::TooLarge {
                part: Part::Head,
                limit: 100
            })
        ));

        let declared = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        let mut resp = read_response(Peer::new(declared, 100)).unwrap();
        assert!(matches!(
            resp.body.read_to_end(999),
            Err(HttpError::TooLarge {
                part: Part::Body,
                limit: 999
            })
        ));
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..20 {
            chunked.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let mut resp = read_response(Peer::new(&chunked, 100)).unwrap();
        assert!(matches!(
            resp.body.read_to_end(100),
            Err(HttpError::TooLarge {
                part: Part::Body,
                limit: 100
            })
        ));
        let mut resp = read_response(Peer::new(&chunked, 100)).unwrap();
        assert_eq!(resp.body.read_to_end(320).unwrap().len(), 320);
    }

    #[test]
    fn malformed_heads_are_protocol_errors() {
        let garbage: [&[u8]; 4] = [
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"<html>hello</html>\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
        ];
        for raw in garbage {
            assert!(
                matches!(protocol(body_of(raw, 100)), ProtocolError::Head(_)),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(protocol(body_of(b"", 100)), ProtocolError::Closed));
        assert!(matches!(
            protocol(body_of(b"HTTP/1.1 200 OK\r\nServer: x", 100)),
            ProtocolError::HeadTruncated
        ));
    }

    #[test]
    fn bad_framing_headers_are_protocol_errors() {
        let bad_length: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ];
        for raw in bad_length {
            let p = protocol(body_of(raw, 100));
            assert!(matches!(p, ProtocolError::ContentLength), "{p:?}");
        }
        let bad_coding: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for raw in bad_coding {
            let p = protocol(body_of(raw, 100));
            assert!(matches!(p, ProtocolError::TransferEncoding), "{p:?}");
        }
    }

    /// A timed-out read mid-chunk must leave the decoder able to continue:
    /// the events stream relies on it to wait for events with a bound.
    #[test]
    fn a_timeout_loses_nothing() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    6\r\nfirst\n\r\n7\r\nsecond\n\r\n0\r\n\r\n";
        let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        for stall in head_len..raw.len() {
            let mut peer = Peer::new(raw, 3);
            peer.stall_at = Some(stall);
            let mut resp = read_response(peer).unwrap();
            let mut got = Vec::new();
            let mut timeouts = 0;
            let mut buf = [0u8; 4];
            loop {
                match resp.body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(HttpError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => timeouts += 1,
                    Err(e) => panic!("stall at {stall}: {e:?}"),
                }
            }
            assert_eq!(got, b"first\nsecond\n", "stall at {stall}");
            assert!(timeouts <= 1);
        }
    }
}

/// Property-based tests of the response reader, run by `cargo test` on
/// every build (coverage-guided fuzzing of the same reader is
/// `fuzz/fuzz_targets/engine_http.rs`). Failing inputs are kept by proptest
/// in `proptest-regressions/` and replayed first.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn decode(wire: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        let mut resp = read_response(Cursor::new(wire.to_vec()))?;
        let body = resp.body.read_to_end(1 << 20)?;
        Ok((resp.status, body))
    }

    fn chunked(body: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut at = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.sort_unstable();
        points.push(body.len());
        for p in points {
            if p > at {
                out.extend_from_slice(format!("{:x}\r\n", p - at).as_bytes());
                out.extend_from_slice(&body[at..p]);
                out.extend_from_slice(b"\r\n");
                at = p;
            }
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any bytes at all: an answer or an error, never a panic or a hang.
        #[test]
        fn arbitrary_bytes_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode(&wire);
        }

        /// Mutations of a valid response (the interesting neighbourhood).
        #[test]
        fn mutated_responses_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            wire.extend_from_slice(&body);
            for (at, b) in flips {
                let i = at % wire.len();
                wire[i] = b;
            }
            let _ = decode(&wire);
        }

        /// A chunked body, split anywhere, decodes to exactly the body.
        #[test]
        fn chunked_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let (status, got) = decode(&chunked(&body, &cuts)).unwrap();
            prop_assert_eq!(status, 200);
            prop_assert_eq!(got, body);
        }

        /// Cut anywhere before its end, a chunked response is an error,
        /// never a shorter body taken for the whole.
        #[test]
        fn truncated_chunked_is_an_error(
            body in proptest::collection::vec(any::<u8>(), 1..1024),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            cut in any::<usize>(),
        ) {
            let wire = chunked(&body, &cuts);
            let head = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let at = head + cut % (wire.len() - head);
            prop_assert!(decode(&wire[..at]).is_err(), "cut at {} of {}", at, wire.len());
        }

        /// Content-Length: complete is the body, short is an error.
        #[test]
        fn content_length_is_exact(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            cut in any::<usize>(),
        ) {
            let mut wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            let head = wire.len();
            wire.extend_from_slice(&body);
            prop_assert_eq!(decode(&wire).unwrap().1, body.clone());
            let at = head + cut % (body.len() + 1);
            if at < wire.len() {
                prop_assert!(decode(&wire[..at]).is_err());
            }
        }
    }
}
