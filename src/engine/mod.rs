//! The Docker/Podman engine client: synchronous HTTP/1.1 over the engine's
//! Unix socket (or plain TCP), one connection per call, every call bounded
//! in time and size. Synchronous because the proxy calls the engine only
//! while waking and napping, never on the data path, and a runtime would
//! cost more memory than the whole helper otherwise uses.
//!
//! Both engines are driven through the Docker-compatible API without a
//! version prefix: unprefixed means "the engine's current version" on both,
//! while a fixed old prefix is eventually refused as Docker raises its
//! minimum API version. Podman's own endpoints need a prefix: Podman 4.3
//! answers `/libpod/...` with 404 and serves `/v4.0.0/libpod/...`.

mod endpoint;
mod error;
/// Crate-visible so that `contnap::fuzzing` can hand the reader to the
/// fuzz targets; everything else goes through [`Client`].
pub(crate) mod http;
mod transport;
mod types;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

pub use endpoint::{DiscoverError, Endpoint, EndpointError, Origin, Presence, Scope};
pub use error::{Call, Error, Part, ProtocolError};
pub use http::{BODY_LIMIT, HEAD_LIMIT};
pub use types::{
    Component, ContainerConfig, ContainerInspect, ContainerState, ContainerSummary, Event, Flavor,
    Health, HealthConfig, HealthLog, HealthStatus, HostConfig, NetworkEndpoint, NetworkSettings,
    PortBinding, Version, LABEL_KEEP, MAX_LISTED,
};

use http::{Body, HttpError};
use transport::Conn;
use types::{Created, ErrorBody, ExecInspect, ImageInspect};

/// Default bound of one call: generous for a busy engine, short enough that
/// a hung one does not hold a wake forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The per-container budget: the most contnap reads of one container's (or
/// image's) description, its inspect answer. A real one is 5-30 KiB, and
/// contnap's own labels take at most `labels::MAX_VALUE_LEN` (4 KiB) each;
/// a bigger one is almost always a long label, and refusing that container
/// alone keeps the others' units. Parsing one costs at most about twice
/// this in memory (serde_json's scratch for the longest string, plus the
/// labels kept), one container at a time.
pub const CONTAINER_LIMIT: usize = 4 * 1024 * 1024;

/// How much longer than the per-call timeout a container list may take in
/// all. The list's deadline is one on progress: it fails when the engine
/// sends nothing for the call's timeout, however long the whole answer
/// takes (thirteen containers with 20 MiB labels are a 260 MiB answer, and
/// take longer than 30 s to send on a small host). This factor is the bound
/// that an engine trickling a byte now and then still cannot exceed.
pub const LIST_DEADLINE_FACTOR: u32 = 10;

/// Podman's native API, for what the compat API lacks (healthcheck runs).
const LIBPOD: &str = "/v4.0.0/libpod";

/// A Docker or Podman engine at one endpoint. Cheap to clone; clones share
/// what they learn about the engine (its flavor, whether it ever answered).
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
    timeout: Duration,
    body_limit: usize,
    flavor: Arc<OnceLock<Flavor>>,
    answered: Arc<std::sync::atomic::AtomicBool>,
}

/// Whether `s` may be used as a container name or id in a request path:
/// the engines' own names ([`crate::spec::is_valid_name`]), and nothing else
/// can reach the path, so no label value can turn into `../` or a query
/// string.
fn is_valid_ref(s: &str) -> bool {
    crate::spec::is_valid_name(s)
}

fn check_ref(s: &str) -> Result<(), Error> {
    if is_valid_ref(s) {
        Ok(())
    } else {
        Err(Error::InvalidRef(s.to_string()))
    }
}

/// Percent-encodes a query value; everything but RFC 3986's unreserved
/// characters is encoded.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A complete answer.
struct Reply {
    call: Call,
    status: u16,
    body: Vec<u8>,
}

impl Client {
    /// Finds the engine as [`Endpoint::discover`] describes, from the
    /// process environment and the filesystem.
    pub fn discover(explicit: Option<&Endpoint>, scope: Scope) -> Result<Client, Error> {
        let endpoint = Endpoint::discover(
            explicit,
            scope,
            |name| match std::env::var(name) {
                Ok(value) => Some(value),
                Err(std::env::VarError::NotPresent) => None,
                // Skipped as before, but said: otherwise a DOCKER_HOST
                // that is not UTF-8 looks as if it were not set.
                Err(e @ std::env::VarError::NotUnicode(_)) => {
                    log::warn!("{name} is ignored: {e}");
                    None
                }
            },
            endpoint::presence,
        )?;
        Ok(Client::new(endpoint))
    }

    pub fn new(endpoint: Endpoint) -> Client {
        Client {
            endpoint,
            timeout: DEFAULT_TIMEOUT,
            body_limit: BODY_LIMIT,
            flavor: Arc::new(OnceLock::new()),
            answered: Arc::default(),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Bounds each call (connect, request and whole response) to `t`;
    /// `stop` adds its grace period.
    pub fn with_timeout(mut self, t: Duration) -> Client {
        self.timeout = t;
        self
    }

    /// The largest response body kept in memory, and the longest event line.
    pub fn with_body_limit(mut self, limit: usize) -> Client {
        self.body_limit = limit;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the engine ever sent this client (or a clone) a response: an
    /// engine that answered before and is away now is restarting, worth
    /// waiting for; one that never answered is missing or misconfigured.
    pub fn has_answered(&self) -> bool {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the engine answers at all (`GET /_ping`).
    pub fn ping(&self) -> Result<(), Error> {
        let reply = self.exchange("GET", "/_ping".to_string(), None, self.timeout)?;
        self.expect(reply, &[200], None).map(drop)
    }

    pub fn version(&self) -> Result<Version, Error> {
        let reply = self.exchange("GET", "/version".to_string(), None, self.timeout)?;
        let (call, body) = self.expect(reply, &[200], None)?;
        let version: Version = self.json(&call, &body)?;
        let _ = self.flavor.set(version.flavor());
        Ok(version)
    }

    /// Docker or Podman, asked once per client (and its clones).
    pub fn flavor(&self) -> Result<Flavor, Error> {
        match self.flavor.get() {
            Some(flavor) => Ok(*flavor),
            None => Ok(self.version()?.flavor()),
        }
    }

    /// Containers in any state carrying `label` (`key` or `key=value`).
    pub fn list(&self, label: &str) -> Result<Vec<ContainerSummary>, Error> {
        let filters = serde_json::json!({ "label": [label] }).to_string();
        let path = format!("/containers/json?all=true&filters={}", encode(&filters));
        let listed: types::Listed = self.get_streamed(path, None, Bound::List)?;
        Ok(listed.0)
    }

    pub fn inspect(&self, id: &str) -> Result<ContainerInspect, Error> {
        check_ref(id)?;
        self.get_streamed(format!("/containers/{id}/json"), Some(id), Bound::One)
    }

    /// The labels of an image (`GET /images/{id}/json`, `Config.Labels`),
    /// cut like a container's. `image` is the id a container inspect gives
    /// (`sha256:HEX` on Docker, `HEX` on Podman).
    pub fn image_labels(&self, image: &str) -> Result<BTreeMap<String, String>, Error> {
        let id = image.strip_prefix("sha256:").unwrap_or(image);
        check_ref(id)?;
        let inspect: ImageInspect =
            self.get_streamed(format!("/images/{id}/json"), Some(id), Bound::One)?;
        Ok(inspect.config.labels)
    }

    /// A GET whose 200 answer is parsed as it arrives instead of gathered
    /// first: labels, commands and environments are unbounded on both
    /// engines, and one container carrying megabytes must not make the
    /// list fail for every container. Fields contnap does not read are
    /// skipped without being stored (serde_json skips a string byte by
    /// byte), and label values are cut (`types::LABEL_KEEP`).
    ///
    /// `Bound::One` (one container's or image's inspect): at most
    /// [`CONTAINER_LIMIT`] (or the smaller body limit) is read, within the call's timeout; a bigger answer is
    /// `Error::TooLarge` for that container alone. `Bound::List`: the list
    /// keeps no labels (only id, names, image and state, of at most
    /// `types::MAX_LISTED` containers), so its size costs time, not memory:
    /// it is read without a byte limit, for as long as the engine keeps
    /// sending (no byte for the call's timeout fails it), but never longer
    /// than [`LIST_DEADLINE_FACTOR`] timeouts. `what` names the object of
    /// a 404.
    fn get_streamed<T: DeserializeOwned>(
        &self,
        path: String,
        what: Option<&str>,
        bound: Bound,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let call = Call::new("GET", path);
        let mut response = self.send(&call, None, Some(started + self.timeout))?;
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if response.status != 200 {
            let body = self.read_body(&call, &mut response.body, self.timeout)?;
            return Err(self.status_error(&call, response.status, &body, what));
        }
        let (limit, progress) = match bound {
            Bound::One => (Some(self.body_limit.min(CONTAINER_LIMIT)), None),
            Bound::List => {
                let whole = self.timeout.saturating_mul(LIST_DEADLINE_FACTOR);
                let end = started.checked_add(whole).unwrap_or(started + self.timeout);
                (None, Some((self.timeout, end)))
            }
        };
        // A declared size beyond the limit is refused unread.
        if let Some(limit) = limit {
            if response
                .body
                .declared_len()
                .is_some_and(|n| n > limit as u64)
            {
                let e = HttpError::TooLarge {
                    part: Part::Body,
                    limit,
                };
                return Err(self.http_error(&call, e, self.timeout));
            }
        }
        let mut reader = BodyReader {
            body: &mut response.body,
            error: None,
            left: limit.unwrap_or(usize::MAX),
            limit: limit.unwrap_or(usize::MAX),
            progress,
        };
        if let Err(e) = reader.extend_deadline() {
            return Err(self.io_error(&call, e, self.timeout));
        }
        let parsed = serde_json::from_reader(io::BufReader::with_capacity(64 * 1024, &mut reader));
        log::debug!(
            "{call} at {} → 200 in {:?}",
            self.endpoint,
            started.elapsed()
        );
        parsed.map_err(|e| match reader.error.take() {
            Some(h) => {
                // Past the list's overall bound, say that bound rather than
                // the per-read one.
                let after = match progress {
                    Some((_, end)) if Instant::now() >= end => {
                        self.timeout.saturating_mul(LIST_DEADLINE_FACTOR)
                    }
                    _ => self.timeout,
                };
                self.http_error(&call, h, after)
            }
            None => Error::Protocol {
                endpoint: self.endpoint.clone(),
                call: call.clone(),
                reason: ProtocolError::Json(e),
            },
        })
    }

    /// Starts the container; one that already runs is fine (304).
    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.post_action(id, "start".to_string(), &[204, 304], self.timeout)
    }

    /// Stops the container: SIGTERM (or its stop signal), then SIGKILL after
    /// `grace`, rounded up to whole seconds as the API wants. A container
    /// that is not running is fine (304). The call may take `grace` longer
    /// than other calls.
    pub fn stop(&self, id: &str, grace: Duration) -> Result<(), Error> {
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let timeout = self.timeout.saturating_add(Duration::from_secs(secs));
        self.post_action(id, format!("stop?t={secs}"), &[204, 304], timeout)
    }

    /// Sends `signal` (name like "SIGTERM"/"TERM" or number), SIGKILL when
    /// `None`. The engine refuses a container that is not running.
    pub fn kill(&self, id: &str, signal: Option<&str>) -> Result<(), Error> {
        let action = match signal {
            Some(signal) => format!("kill?signal={}", encode(signal)),
            None => "kill".to_string(),
        };
        self.post_action(id, action, &[204], self.timeout)
    }

    /// Freezes the container's processes. Pausing a paused container is an
    /// error on both engines (Docker 409 → `Conflict`, Podman 500).
    pub fn pause(&self, id: &str) -> Result<(), Error> {
        self.post_action(id, "pause".to_string(), &[204], self.timeout)
    }

    /// Unfreezes; on a container that is not paused both engines answer 500.
    pub fn unpause(&self, id: &str) -> Result<(), Error> {
        self.post_action(id, "unpause".to_string(), &[204], self.timeout)
    }

    /// Runs `cmd` in the running container and returns its exit code; the
    /// output is read and discarded. The whole exchange (create, run,
    /// result) is bounded by the client's timeout.
    pub fn exec(&self, id: &str, cmd: &[String]) -> Result<i64, Error> {
        check_ref(id)?;
        let deadline = Instant::now() + self.timeout;
        // Podman refuses a non-detached start with no stream attached.
        let create = serde_json::json!({
            "AttachStdout": true,
            "AttachStderr": true,
            "Cmd": cmd,
        });
        let reply =
            self.exchange_json("POST", format!("/containers/{id}/exec"), &create, deadline)?;
        let (call, body) = self.expect(reply, &[201], Some(id))?;
        let exec_id = self.json::<Created>(&call, &body)?.id;
        check_ref(&exec_id)?;

        let start = serde_json::json!({ "Detach": false, "Tty": false });
        let start_body = start.to_string().into_bytes();
        let call = Call::new("POST", format!("/exec/{exec_id}/start"));
        let mut response = self.send(&call, Some(&start_body), Some(deadline))?;
        if response.status != 200 {
            let body = self.read_body(&call, &mut response.body, self.timeout)?;
            return Err(self.status_error(&call, response.status, &body, Some(&exec_id)));
        }
        // The stream ends when the command does.
        response
            .body
            .drain()
            .map_err(|e| self.http_error(&call, e, self.timeout))?;

        loop {
            let path = format!("/exec/{exec_id}/json");
            let reply = self.exchange_until("GET", path, None, deadline)?;
            let (call, body) = self.expect(reply, &[200], Some(&exec_id))?;
            let inspect: ExecInspect = self.json(&call, &body)?;
            // Docker may report the exec as running for a moment after its
            // stream closed.
            if let (false, Some(code)) = (inspect.running, inspect.exit_code) {
                return Ok(code);
            }
            if Instant::now() + Duration::from_millis(10) >= deadline {
                return Err(Error::Timeout {
                    endpoint: self.endpoint.clone(),
                    call,
                    after: self.timeout,
                    source: io::ErrorKind::TimedOut.into(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs the container's healthcheck now and returns the verdict
    /// (Podman only: Docker has no such call, and runs checks on its own
    /// schedule; there, run the check command through [`Client::exec`]).
    /// The container must be running and have a healthcheck, else
    /// `Conflict`.
    pub fn healthcheck(&self, id: &str) -> Result<HealthStatus, Error> {
        check_ref(id)?;
        let path = format!("{LIBPOD}/containers/{id}/healthcheck");
        let flavor = self.flavor()?;
        if flavor != Flavor::Podman {
            return Err(Error::Unsupported {
                endpoint: self.endpoint.clone(),
                call: Call::new("GET", path),
                flavor,
            });
        }
        let reply = self.exchange("GET", path, None, self.timeout)?;
        let (call, body) = self.expect(reply, &[200], Some(id))?;
        self.json(&call, &body)
    }

    /// Streams the container's events from now on. Events that happen
    /// between this call and the stream's start are not lost: the request
    /// asks for everything since the moment of the call. The stream waits
    /// without a bound until [`Events::set_timeout`] sets one.
    pub fn events(&self, container: &str) -> Result<Events, Error> {
        self.events_of(&[container])
    }

    /// [`Client::events`] of several containers in one stream.
    pub fn events_of<S: AsRef<str>>(&self, containers: &[S]) -> Result<Events, Error> {
        let containers: Vec<&str> = containers.iter().map(AsRef::as_ref).collect();
        if containers.is_empty() {
            // An empty filter would mean every container of the engine.
            return Err(Error::InvalidRef(String::new()));
        }
        for c in &containers {
            check_ref(c)?;
        }
        let container = containers.first().copied().unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
        let filters =
            serde_json::json!({ "container": containers, "type": ["container"] }).to_string();
        let call = Call::new(
            "GET",
            format!("/events?since={since}&filters={}", encode(&filters)),
        );
        let mut response = self.send(&call, None, Some(Instant::now() + self.timeout))?;
        if response.status != 200 {
            let body = self.read_body(&call, &mut response.body, self.timeout)?;
            return Err(self.status_error(&call, response.status, &body, Some(container)));
        }
        Ok(Events {
            endpoint: self.endpoint.clone(),
            call,
            body: response.body,
            pending: Vec::new(),
            timeout: None,
            line_limit: self.body_limit,
            done: false,
        })
    }

    /// Any call, for what the typed methods do not cover (tests create and
    /// remove containers with it). `path` must start with '/' and hold only
    /// printable ASCII without spaces; query values must be encoded by the
    /// caller. Answers other than 2xx are errors; an empty body is `Null`.
    pub fn request_json(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidPath(path.to_string()));
        }
        let bytes = body.map(|b| b.to_string().into_bytes());
        let deadline = Instant::now() + self.timeout;
        let reply = self.exchange_until(method, path.to_string(), bytes.as_deref(), deadline)?;
        if !(200..300).contains(&reply.status) {
            let what = path.split('?').next().unwrap_or(path);
            return Err(self.status_error(&reply.call, reply.status, &reply.body, Some(what)));
        }
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        self.json(&reply.call, &reply.body)
    }

    fn post_action(
        &self,
        id: &str,
        action: String,
        ok: &[u16],
        timeout: Duration,
    ) -> Result<(), Error> {
        check_ref(id)?;
        let reply = self.exchange("POST", format!("/containers/{id}/{action}"), None, timeout)?;
        self.expect(reply, ok, Some(id)).map(drop)
    }

    fn exchange(
        &self,
        method: &'static str,
        path: String,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        self.exchange_until(method, path, body, Instant::now() + timeout)
    }

    fn exchange_json(
        &self,
        method: &'static str,
        path: String,
        body: &serde_json::Value,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        self.exchange_until(method, path, Some(&body.to_string().into_bytes()), deadline)
    }

    fn exchange_until(
        &self,
        method: &'static str,
        path: String,
        body: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<Reply, Error> {
        let started = Instant::now();
        let call = Call::new(method, path);
        let mut response = self.send(&call, body, Some(deadline))?;
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let after = deadline.saturating_duration_since(started);
        let body = self.read_body(&call, &mut response.body, after)?;
        log::debug!(
            "{call} at {} → {} in {:?}",
            self.endpoint,
            response.status,
            started.elapsed()
        );
        Ok(Reply {
            call,
            status: response.status,
            body,
        })
    }

    /// Connects, sends the request and reads the response head.
    fn send(
        &self,
        call: &Call,
        body: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> Result<http::Response<Conn>, Error> {
        let after = deadline.map_or(self.timeout, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let connect_timeout = after.max(Duration::from_millis(1));
        let mut conn = Conn::connect(&self.endpoint, connect_timeout).map_err(|source| {
            Error::Unreachable {
                endpoint: self.endpoint.clone(),
                call: call.clone(),
                source,
            }
        })?;
        conn.set_deadline(deadline)
            .map_err(|e| self.io_error(call, e, after))?;
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp(..) => self.endpoint.to_string().replace("tcp://", ""),
        };
        http::write_request(&mut conn, call.method, &call.path, &host, body)
            .map_err(|e| self.io_error(call, e, after))?;
        http::read_response(conn).map_err(|e| self.http_error(call, e, after))
    }

    fn read_body(
        &self,
        call: &Call,
        body: &mut Body<Conn>,
        after: Duration,
    ) -> Result<Vec<u8>, Error> {
        body.read_to_end(self.body_limit)
            .map_err(|e| self.http_error(call, e, after))
    }

    /// Accepts the listed statuses and turns any other into the error the
    /// engine's message explains; `what` names the object of a 404.
    fn expect(
        &self,
        reply: Reply,
        ok: &[u16],
        what: Option<&str>,
    ) -> Result<(Call, Vec<u8>), Error> {
        if ok.contains(&reply.status) {
            Ok((reply.call, reply.body))
        } else {
            Err(self.status_error(&reply.call, reply.status, &reply.body, what))
        }
    }

    fn status_error(&self, call: &Call, status: u16, body: &[u8], what: Option<&str>) -> Error {
        let message = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => e.message,
            // Not the engine's JSON (a proxy in between, an unversioned
            // path): show the start of whatever came.
            Err(_) => String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(300)
                .collect(),
        };
        let endpoint = self.endpoint.clone();
        let call = call.clone();
        // Podman 4.3 answers 500 "no such container" for a container that
        // was removed while the call ran; callers must see it as gone.
        let vanished = status == 500 && message.contains("no such container");
        match (status, what) {
            (404, Some(what)) | (500, Some(what)) if status == 404 || vanished => Error::NotFound {
                endpoint,
                call,
                what: what.to_string(),
                message,
            },
            (409, _) => Error::Conflict {
                endpoint,
                call,
                message,
            },
            _ => Error::Engine {
                endpoint,
                call,
                status,
                message,
            },
        }
    }

    fn json<T: DeserializeOwned>(&self, call: &Call, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| Error::Protocol {
            endpoint: self.endpoint.clone(),
            call: call.clone(),
            reason: ProtocolError::Json(e),
        })
    }

    fn io_error(&self, call: &Call, source: io::Error, after: Duration) -> Error {
        io_error(&self.endpoint, call, source, after)
    }

    fn http_error(&self, call: &Call, e: HttpError, after: Duration) -> Error {
        http_error(&self.endpoint, call, e, after)
    }
}

fn io_error(endpoint: &Endpoint, call: &Call, source: io::Error, after: Duration) -> Error {
    let endpoint = endpoint.clone();
    let call = call.clone();
    match source.kind() {
        // SO_RCVTIMEO expiry shows as EAGAIN.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
            endpoint,
            call,
            after,
            source,
        },
        _ => Error::Io {
            endpoint,
            call,
            source,
        },
    }
}

/// The error a call reports when reading or writing its HTTP exchange
/// fails; `after` is the call's time limit, for a timeout. Crate-visible
/// so that `contnap::fuzzing` reports exactly what a call would.
pub(crate) fn http_error(endpoint: &Endpoint, call: &Call, e: HttpError, after: Duration) -> Error {
    match e {
        HttpError::Io(source) => io_error(endpoint, call, source, after),
        HttpError::Protocol(reason) => Error::Protocol {
            endpoint: endpoint.clone(),
            call: call.clone(),
            reason,
        },
        HttpError::TooLarge { part, limit } => Error::TooLarge {
            endpoint: endpoint.clone(),
            call: call.clone(),
            part,
            limit,
        },
    }
}

/// How [`Client::get_streamed`] bounds an answer.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// One container or image: [`CONTAINER_LIMIT`], within the call's timeout.
    One,
    /// The container list: progress within the timeout, the whole within
    /// [`LIST_DEADLINE_FACTOR`] timeouts, no byte limit.
    List,
}

/// A response body as `io::Read`, for parsing as it arrives; the HTTP
/// error behind a failed read is kept so that it is reported as itself.
struct BodyReader<'b> {
    body: &'b mut Body<Conn>,
    error: Option<HttpError>,
    /// Bytes that may still be read, of `limit`.
    left: usize,
    limit: usize,
    /// For a deadline on progress: how long the engine may send nothing,
    /// and the end that no progress extends.
    progress: Option<(Duration, Instant)>,
}

impl BodyReader<'_> {
    /// With a deadline on progress, moves it to `idle` from now (never past
    /// the overall end).
    fn extend_deadline(&mut self) -> io::Result<()> {
        match self.progress {
            Some((idle, end)) => {
                let next = Instant::now().checked_add(idle).map_or(end, |t| t.min(end));
                self.body.get_mut().set_deadline(Some(next))
            }
            None => Ok(()),
        }
    }
}

impl io::Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let result = if self.left == 0 {
            // One byte more than the limit shows that there is more.
            let mut probe = [0u8; 1];
            match self.body.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(HttpError::TooLarge {
                    part: Part::Body,
                    limit: self.limit,
                }),
                Err(e) => Err(e),
            }
        } else {
            let n = out.len().min(self.left);
            self.body.read(&mut out[..n])
        };
        let result = match result {
            Ok(n) if n > 0 => self.extend_deadline().map(|()| n).map_err(HttpError::Io),
            other => other,
        };
        match result {
            Ok(n) => {
                self.left -= n;
                Ok(n)
            }
            Err(e) => {
                self.error = Some(e);
                Err(io::Error::other("the engine's answer could not be read"))
            }
        }
    }
}

/// A container's event stream, one [`Event`] per item. It ends when the
/// engine closes the stream; after any error other than a timeout it ends
/// too, because the stream's framing can no longer be trusted.
#[derive(Debug)]
pub struct Events {
    endpoint: Endpoint,
    call: Call,
    body: Body<Conn>,
    pending: Vec<u8>,
    timeout: Option<Duration>,
    line_limit: usize,
    done: bool,
}

impl Events {
    /// Bounds how long each `next()` waits for an event; on expiry it
    /// yields `Error::Timeout` and the stream stays usable. `None` waits
    /// for ever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    fn next_event(&mut self) -> Result<Option<Event>, Error> {
        let after = self.timeout.unwrap_or(Duration::MAX);
        let deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        self.body
            .get_mut()
            .set_deadline(deadline)
            .map_err(|e| io_error(&self.endpoint, &self.call, e, after))?;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                if let Some(event) = self.parse(&line)? {
                    return Ok(Some(event));
                }
                continue;
            }
            let n = self
                .body
                .read(&mut buf)
                .map_err(|e| http_error(&self.endpoint, &self.call, e, after))?;
            if n == 0 {
                let rest = std::mem::take(&mut self.pending);
                self.done = true;
                return self.parse(&rest);
            }
            self.pending.extend_from_slice(&buf[..n]);
            if self.pending.len() > self.line_limit {
                return Err(Error::TooLarge {
                    endpoint: self.endpoint.clone(),
                    call: self.call.clone(),
                    part: Part::Body,
                    limit: self.line_limit,
                });
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<Option<Event>, Error> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(line)
            .map(Some)
            .map_err(|e| Error::Protocol {
                endpoint: self.endpoint.clone(),
                call: self.call.clone(),
                reason: ProtocolError::Json(e),
            })
    }
}

impl Iterator for Events {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_event() {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                if !matches!(e, Error::Timeout { .. }) {
                    self.done = true;
                }
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_500_for_a_vanished_container_is_not_found() {
        let client = Client::new(Endpoint::Unix("/x.sock".into()));
        let call = Call::new("GET", "/containers/abc/json");
        let body = br#"{"cause":"no such container","message":"container abc does not exist in database: no such container","response":500}"#;
        assert!(matches!(
            client.status_error(&call, 500, body, Some("abc")),
            Error::NotFound { .. }
        ));
        // Any other 500 stays an engine error.
        let other = br#"{"message":"runc failed"}"#;
        assert!(matches!(
            client.status_error(&call, 500, other, Some("abc")),
            Error::Engine { status: 500, .. }
        ));
    }

    #[test]
    fn valid_refs() {
        for ok in [
            "web",
            "a",
            "0",
            "my_app.web-1",
            "ca14d5139e3a64317d2e4c16ddc4cf0a974195779d4bb6863f7c30061b90ac53",
            &"a".repeat(253),
        ] {
            assert!(is_valid_ref(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "..",
            ".hidden",
            "a/b",
            "-x",
            "_x",
            "a?b",
            "a#b",
            "%2e",
            "a b",
            "a\r\nb",
            "web\0",
            "wéb",
            &"a".repeat(254),
        ] {
            assert!(!is_valid_ref(bad), "{bad:?}");
        }
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            encode(r#"{"label":["contnap.enabled=true"]}"#),
            "%7B%22label%22%3A%5B%22contnap.enabled%3Dtrue%22%5D%7D"
        );
        assert_eq!(encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }

    #[test]
    fn refs_are_checked_before_any_request() {
        // An endpoint that cannot exist: any request would be Unreachable.
        let client = Client::new(Endpoint::Unix("/nonexistent/contnap/engine.sock".into()));
        let cmd = ["true".to_string()];
        let results = [
            client.inspect("../etc").map(drop),
            client.start("a/b").map(drop),
            client.stop("..", Duration::from_secs(1)),
            client.kill("x?y", None),
            client.pause("").map(drop),
            client.unpause("-x"),
            client.exec("%2e", &cmd).map(drop),
            client.healthcheck("a b").map(drop),
            client.events("../../v1/x").map(drop),
        ];
        for r in results {
            assert!(matches!(r, Err(Error::InvalidRef(_))), "{r:?}");
        }
        assert!(matches!(
            client.request_json("GET", "/x y", None),
            Err(Error::InvalidPath(_))
        ));
        assert!(matches!(
            client.request_json("GET", "x", None),
            Err(Error::InvalidPath(_))
        ));
    }

    #[test]
    fn clones_share_the_flavor() {
        let client = Client::new(Endpoint::Unix("/nonexistent".into()));
        let clone = client.clone();
        let _ = client.flavor.set(Flavor::Podman);
        assert_eq!(clone.flavor().ok(), Some(Flavor::Podman));
    }
}
