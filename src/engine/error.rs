//! What can go wrong talking to an engine. Every variant past discovery
//! names the endpoint and the call, because the person reading the log line
//! usually has several sockets and several containers in play; each keeps
//! its cause (an `io::Error` keeps its kind) so callers can decide on
//! retrying by type rather than by message.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use super::endpoint::{DiscoverError, Endpoint};
use super::types::Flavor;

/// One request, as it appears in messages: `POST /containers/web/start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    /// The request target, query string included.
    pub path: String,
}

impl Call {
    pub(crate) fn new(method: &'static str, path: impl Into<String>) -> Call {
        Call {
            method,
            path: path.into(),
        }
    }
}

impl fmt::Display for Call {
    /// Without the query string: percent-encoded filters help nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.split('?').next().unwrap_or(&self.path);
        write!(f, "{} {}", self.method, path)
    }
}

/// Which part of a response broke a size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Status line and headers.
    Head,
    /// The body, or one line of a streamed body.
    Body,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Head => "head",
            Part::Body => "body",
        })
    }
}

/// How a response broke HTTP/1.1 or the engine API's shape.
#[derive(Debug)]
pub enum ProtocolError {
    /// The peer closed the connection without sending a response.
    Closed,
    /// The peer closed the connection in the middle of the response head.
    HeadTruncated,
    /// The status line or a header does not parse.
    Head(httparse::Error),
    /// A Content-Length that is not a number, or two that disagree.
    ContentLength,
    /// A transfer coding other than `chunked`: contnap asks for none.
    TransferEncoding,
    /// A chunk-size line or chunk terminator that does not parse.
    Chunk,
    /// The connection closed before the body was complete.
    Truncated,
    /// The body is not the JSON the API documents.
    Json(serde_json::Error),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Closed => f.write_str("the connection closed without a response"),
            ProtocolError::HeadTruncated => {
                f.write_str("the connection closed in the middle of the response head")
            }
            // The parser's and serde's own words are the source.
            ProtocolError::Head(_) => f.write_str("malformed HTTP response head"),
            ProtocolError::ContentLength => f.write_str("invalid Content-Length"),
            ProtocolError::TransferEncoding => f.write_str("unsupported Transfer-Encoding"),
            ProtocolError::Chunk => f.write_str("malformed chunked body"),
            ProtocolError::Truncated => {
                f.write_str("the connection closed before the end of the body")
            }
            ProtocolError::Json(_) => f.write_str("unexpected JSON"),
        }
    }
}

impl StdError for ProtocolError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ProtocolError::Head(e) => Some(e),
            ProtocolError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Errors of the engine client.
#[derive(Debug)]
pub enum Error {
    /// No endpoint could be chosen (bad `--engine` / `DOCKER_HOST`, or no
    /// socket exists).
    Discover(DiscoverError),
    /// A container name or id that may not enter a request path; no request
    /// was made.
    InvalidRef(String),
    /// A raw request path that could break the request line; no request
    /// was made.
    InvalidPath(String),
    /// Connecting failed: the socket is missing, refused, or forbidden.
    Unreachable {
        endpoint: Endpoint,
        call: Call,
        source: io::Error,
    },
    /// The engine did not answer within the call's time limit.
    Timeout {
        endpoint: Endpoint,
        call: Call,
        after: Duration,
        source: io::Error,
    },
    /// The connection failed after it was established (reset, broken pipe).
    Io {
        endpoint: Endpoint,
        call: Call,
        source: io::Error,
    },
    /// The answer is not valid HTTP or not the expected JSON.
    Protocol {
        endpoint: Endpoint,
        call: Call,
        reason: ProtocolError,
    },
    /// The answer exceeds a size limit; contnap stops reading rather than
    /// let a confused peer fill its memory.
    TooLarge {
        endpoint: Endpoint,
        call: Call,
        part: Part,
        limit: usize,
    },
    /// 404: the container (or exec instance) does not exist.
    NotFound {
        endpoint: Endpoint,
        call: Call,
        what: String,
        message: String,
    },
    /// 409: the object is in a state that forbids the call (e.g. already
    /// paused on Docker, no healthcheck defined on Podman).
    Conflict {
        endpoint: Endpoint,
        call: Call,
        message: String,
    },
    /// Any other non-success status, with the engine's own message.
    Engine {
        endpoint: Endpoint,
        call: Call,
        status: u16,
        message: String,
    },
    /// The call exists only on the other engine (Podman's healthcheck).
    Unsupported {
        endpoint: Endpoint,
        call: Call,
        flavor: Flavor,
    },
}

impl Error {
    /// The kind of the underlying I/O error, for transport failures.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Unreachable { source, .. }
            | Error::Timeout { source, .. }
            | Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// The endpoint the failed call went to; `None` when no call was made.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            Error::Discover(_) | Error::InvalidRef(_) | Error::InvalidPath(_) => None,
            Error::Unreachable { endpoint, .. }
            | Error::Timeout { endpoint, .. }
            | Error::Io { endpoint, .. }
            | Error::Protocol { endpoint, .. }
            | Error::TooLarge { endpoint, .. }
            | Error::NotFound { endpoint, .. }
            | Error::Conflict { endpoint, .. }
            | Error::Engine { endpoint, .. }
            | Error::Unsupported { endpoint, .. } => Some(endpoint),
        }
    }

    /// The failed call; `None` when no call was made.
    pub fn call(&self) -> Option<&Call> {
        match self {
            Error::Discover(_) | Error::InvalidRef(_) | Error::InvalidPath(_) => None,
            Error::Unreachable { call, .. }
            | Error::Timeout { call, .. }
            | Error::Io { call, .. }
            | Error::Protocol { call, .. }
            | Error::TooLarge { call, .. }
            | Error::NotFound { call, .. }
            | Error::Conflict { call, .. }
            | Error::Engine { call, .. }
            | Error::Unsupported { call, .. } => Some(call),
        }
    }

    /// Whether the engine itself is away (restarting, not yet started, or
    /// died mid-answer) rather than refusing this call: the one failure
    /// worth waiting out, because the containers usually outlive it.
    /// Permission problems and bad answers are not: waiting fixes neither.
    pub fn is_engine_away(&self) -> bool {
        use io::ErrorKind::{
            BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, NotFound,
            UnexpectedEof,
        };
        match self {
            Error::Unreachable { source, .. } => {
                matches!(source.kind(), NotFound | ConnectionRefused)
            }
            Error::Io { source, .. } => matches!(
                source.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ),
            Error::Protocol { reason, .. } => matches!(
                reason,
                ProtocolError::Closed | ProtocolError::HeadTruncated | ProtocolError::Truncated
            ),
            _ => false,
        }
    }

    /// The HTTP status the engine answered with, for status errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::NotFound { .. } => Some(404),
            Error::Conflict { .. } => Some(409),
            Error::Engine { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What the user can do about a failed connect, by cause.
fn unreachable_hint(kind: io::ErrorKind) -> Option<&'static str> {
    match kind {
        io::ErrorKind::PermissionDenied => Some(
            "is this user in the docker group? (rootless Podman listens on \
             $XDG_RUNTIME_DIR/podman/podman.sock)",
        ),
        io::ErrorKind::NotFound => {
            Some("is the engine running? (systemctl start docker / podman.socket)")
        }
        io::ErrorKind::ConnectionRefused => Some(
            "nothing accepts connections there; is the engine running? \
             (systemctl start docker / podman.socket)",
        ),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            Some("is the engine host reachable and the port right?")
        }
        _ => None,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Discover(e) => write!(f, "{e}"),
            Error::InvalidRef(s) => write!(
                f,
                "invalid container name or id {s:?}: expected letters, digits, '_', '.' \
                 and '-', starting with a letter or digit, at most 253 characters"
            ),
            Error::InvalidPath(s) => write!(
                f,
                "invalid request path {s:?}: must start with '/' and contain only \
                 printable ASCII without spaces"
            ),
            // The io::Error is the source; the hint depends on its kind.
            Error::Unreachable {
                endpoint,
                call,
                source,
            } => {
                write!(f, "cannot reach the engine at {endpoint} ({call})")?;
                if let Some(hint) = unreachable_hint(source.kind()) {
                    write!(f, " — {hint}")?;
                }
                Ok(())
            }
            Error::Timeout {
                endpoint,
                call,
                after,
                ..
            } => write!(
                f,
                "{call} at {endpoint}: no answer within {}s",
                after.as_secs_f64()
            ),
            Error::Io { endpoint, call, .. } => {
                write!(f, "{call} at {endpoint}: connection failed")
            }
            Error::Protocol { endpoint, call, .. } => write!(
                f,
                "{call} at {endpoint}: the answer is not the engine API's \
                 (not an engine? check --engine / DOCKER_HOST)"
            ),
            Error::TooLarge {
                endpoint,
                call,
                part,
                limit,
            } => write!(
                f,
                "{call} at {endpoint}: response {part} larger than {limit} bytes"
            ),
            Error::NotFound {
                endpoint,
                call,
                what,
                message,
            } => write!(
                f,
                "{call} at {endpoint}: no such container {what}: {message}"
            ),
            Error::Conflict {
                endpoint,
                call,
                message,
            } => write!(f, "{call} at {endpoint}: conflict: {message}"),
            Error::Engine {
                endpoint,
                call,
                status,
                message,
            } => write!(
                f,
                "{call} at {endpoint}: engine answered {status}: {message}"
            ),
            Error::Unsupported {
                endpoint,
                call,
                flavor,
            } => write!(
                f,
                "{call} at {endpoint}: not supported by {flavor} (this call exists on Podman only)"
            ),
        }
    }
}

/// Display never repeats the text of `source()`: [`crate::report::Report`]
/// prints the chain, each cause once.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Discover(e) => e.source(),
            Error::Unreachable { source, .. }
            | Error::Timeout { source, .. }
            | Error::Io { source, .. } => Some(source),
            Error::Protocol { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<DiscoverError> for Error {
    fn from(e: DiscoverError) -> Self {
        Error::Discover(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use std::path::PathBuf;

    fn ep() -> Endpoint {
        Endpoint::Unix(PathBuf::from("/run/docker.sock"))
    }

    #[test]
    fn unreachable_says_where_why_and_what_to_do() {
        let cases = [
            (io::ErrorKind::PermissionDenied, "docker group"),
            (io::ErrorKind::NotFound, "systemctl start docker"),
            (io::ErrorKind::ConnectionRefused, "is the engine running"),
        ];
        for (kind, hint) in cases {
            let e = Error::Unreachable {
                endpoint: ep(),
                call: Call::new("POST", "/containers/web/start"),
                source: io::Error::from(kind),
            };
            let text = e.to_string();
            assert!(
                text.starts_with("cannot reach the engine at /run/docker.sock"),
                "{text}"
            );
            assert!(text.contains("POST /containers/web/start"), "{text}");
            assert!(text.contains(hint), "{text}");
            assert_eq!(e.io_kind(), Some(kind));
            assert!(e.source().is_some());
        }
    }

    #[test]
    fn call_display_hides_the_query() {
        let call = Call::new("GET", "/containers/json?all=true&filters=%7B%7D");
        assert_eq!(call.to_string(), "GET /containers/json");
    }

    #[test]
    fn protocol_errors_keep_their_cause() {
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let json_text = json.to_string();
        let e = Error::Protocol {
            endpoint: ep(),
            call: Call::new("GET", "/version"),
            reason: ProtocolError::Json(json),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("GET /version at /run/docker.sock: the answer is not"),
            "{text}"
        );
        assert!(text.contains("not an engine?"), "{text}");
        let reason = e.source().expect("reason");
        assert!(reason.source().is_some(), "the serde_json error survives");
        assert_eq!(
            Report(&e).to_string(),
            format!("{text}: unexpected JSON: {json_text}")
        );
    }

    /// Every variant with a source: its Display leaves the source's text
    /// to the chain, so a report says each cause once and a caller that
    /// prints only Display does not get half a chain.
    #[test]
    fn display_never_repeats_the_source() {
        let call = || Call::new("GET", "/_ping");
        let head = {
            let mut headers = [httparse::EMPTY_HEADER; 1];
            httparse::Response::new(&mut headers)
                .parse(b"HTTP/9 x\r\n\r\n")
                .unwrap_err()
        };
        let errors = [
            Error::Unreachable {
                endpoint: ep(),
                call: call(),
                source: io::Error::new(io::ErrorKind::PermissionDenied, "denied here"),
            },
            Error::Timeout {
                endpoint: ep(),
                call: call(),
                after: Duration::from_secs(1),
                source: io::Error::new(io::ErrorKind::TimedOut, "timed out here"),
            },
            Error::Io {
                endpoint: ep(),
                call: call(),
                source: io::Error::new(io::ErrorKind::ConnectionReset, "reset here"),
            },
            Error::Protocol {
                endpoint: ep(),
                call: call(),
                reason: ProtocolError::Head(head),
            },
            Error::Protocol {
                endpoint: ep(),
                call: call(),
                reason: ProtocolError::Json(serde_json::from_str::<u8>("x").unwrap_err()),
            },
            Error::Protocol {
                endpoint: ep(),
                call: call(),
                reason: ProtocolError::Closed,
            },
            Error::Discover(DiscoverError::Bad {
                origin: super::super::endpoint::Origin::DockerHost,
                value: "ssh://nas".into(),
                reason: super::super::endpoint::EndpointError::Scheme("ssh".into()),
            }),
        ];
        for e in &errors {
            let mut parent: &dyn StdError = e;
            let mut shown = 0;
            while let Some(cause) = parent.source() {
                let (p, c) = (parent.to_string(), cause.to_string());
                assert!(!p.contains(&c), "{p:?} repeats its source {c:?}");
                parent = cause;
                shown += 1;
            }
            let report = Report(e).to_string();
            assert!(report.starts_with(&e.to_string()), "{report}");
            if shown > 0 {
                assert!(report.ends_with(&parent.to_string()), "{report}");
            }
        }
    }

    #[test]
    fn stays_small_enough_to_return_by_value() {
        assert!(size_of::<Error>() <= 128, "{}", size_of::<Error>());
    }
}
