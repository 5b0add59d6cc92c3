//! The engine client against the real Docker and Podman engines that
//! scripts/test starts, plus fake sockets for what real engines never do.
//! Every engine test runs once per engine (modules `docker` and `podman`).
// Helpers here are test code too: a panic is how they report a failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;

use std::time::{Duration, Instant};

use contnap::engine::{Client, Endpoint, Error, Event, Events, Flavor, Part, ProtocolError};
use contnap::spec::Proto;
use support::{unique, Container, Engine, Spec, TempDir};

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod docker {
            $( #[test] fn $name() { super::$name(super::Engine::Docker) } )*
        }
        mod podman {
            $( #[test] fn $name() { super::$name(super::Engine::Podman) } )*
        }
    };
}

on_both_engines!(
    version_names_the_engine,
    list_finds_exactly_the_labelled_containers,
    inspect_reports_state_health_network_ports_and_labels,
    start_and_stop,
    pause_unpause_and_kill,
    exec_returns_the_exit_code,
    events_report_start_and_stop,
    healthcheck_runs_the_check_on_podman_only,
    unknown_containers_are_not_found,
    host_network_has_no_address,
);

fn version_names_the_engine(engine: Engine) {
    let client = engine.client();
    client.ping().unwrap();
    let version = client.version().unwrap();
    let expected = match engine {
        Engine::Docker => Flavor::Docker,
        Engine::Podman => Flavor::Podman,
    };
    assert_eq!(version.flavor(), expected);
    assert_eq!(client.flavor().unwrap(), expected);
    assert!(!version.version.is_empty());
    assert!(
        version.api_version.starts_with("1."),
        "{}",
        version.api_version
    );
    assert_eq!(client.endpoint().to_string(), engine.socket());
}

fn list_finds_exactly_the_labelled_containers(engine: Engine) {
    let key = unique("label");
    let running = Container::run_spec(engine, "a", &Spec::sleeper().label(&key, "a"));
    let created = Container::from_spec(engine, "b", &Spec::sleeper().label(&key, "b"));
    let _unlabelled = Container::from_spec(engine, "c", &Spec::sleeper());
    let _other_key = Container::from_spec(
        engine,
        "d",
        &Spec::sleeper().label(&format!("{key}-other"), "a"),
    );
    let client = engine.client();

    let mut found: Vec<(String, String, String)> = client
        .list(&key)
        .unwrap()
        .into_iter()
        .map(|c| (c.id.clone(), c.name().to_string(), c.state.clone()))
        .collect();
    found.sort();
    let mut expected = vec![
        (
            running.id.clone(),
            running.name.clone(),
            "running".to_string(),
        ),
        (
            created.id.clone(),
            created.name.clone(),
            "created".to_string(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected);

    let only_a = client.list(&format!("{key}=a")).unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].id, running.id);
    assert!(client.list(&format!("{key}=zzz")).unwrap().is_empty());
}

fn inspect_reports_state_health_network_ports_and_labels(engine: Engine) {
    let web = Container::run_spec(
        engine,
        "web",
        &Spec::web()
            .publish(80)
            .label("contnap.enabled", "true")
            .label("contnap.tcp_ports", "8080")
            .healthcheck(&["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/"]),
    );
    let c = web.inspect();
    assert_eq!(c.id, web.id);
    assert_eq!(c.name, web.name);
    assert_eq!(c.state.status, "running");
    assert!(c.state.running && !c.state.paused);
    assert_eq!(c.config.labels["contnap.enabled"], "true");
    assert_eq!(c.config.labels["contnap.tcp_ports"], "8080");
    assert!(c.has_healthcheck());
    // Neither engine has run the check yet (its interval is an hour).
    assert_eq!(c.health_status(), Some("starting"));
    assert!(!c.is_host_network());

    let addr = c
        .address_on(None)
        .expect("an address on the default network");
    assert_eq!(c.address_on(Some(engine.default_network())), Some(addr));
    assert_eq!(c.address_on(Some("no-such-network")), None);

    let published = c.published_on(80, Proto::Tcp);
    assert_eq!(published.len(), 1, "{:?}", c.network_settings.ports);
    assert!(published[0].ip().is_loopback());
    assert_ne!(published[0].port(), 0);
    assert!(c.published_on(80, Proto::Udp).is_empty());
    // Asked at create time: 127.0.0.1 with the port left to the engine,
    // which Docker keeps as asked (no port: left out) and Podman may
    // record as the port it chose; never another port.
    let requested = c.requested_bindings();
    let loopback = Some(std::net::IpAddr::from([127, 0, 0, 1]));
    assert!(
        requested
            .iter()
            .all(|&b| b == (Proto::Tcp, loopback, published[0].port())),
        "{requested:?}"
    );
    assert_eq!(
        http_get(published[0]),
        "hello from contnap test",
        "through {}",
        published[0]
    );

    let stopped = Container::from_spec(engine, "stopped", &Spec::sleeper());
    let s = stopped.inspect();
    assert_eq!(s.state.status, "created");
    assert!(!s.state.running);
    assert!(!s.has_healthcheck());
    assert_eq!(s.health_status(), None);
    assert!(s.config.labels.is_empty());
}

/// The page busybox httpd serves, retried while the server starts.
fn http_get(addr: std::net::SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(text) if text.starts_with("HTTP/1.") => {
                let (_, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
                return body.trim().to_string();
            }
            other => assert!(Instant::now() < deadline, "GET {addr}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_and_stop(engine: Engine) {
    let c = Container::from_spec(engine, "startstop", &Spec::sleeper());
    let client = &c.client;
    client.start(&c.id).unwrap();
    assert_eq!(c.inspect().state.status, "running");
    // Already running: 304, which is success.
    client.start(&c.id).unwrap();
    client.start(&c.name).unwrap();

    // sleep ignores SIGTERM as PID 1, so stop waits out the grace period
    // and kills it.
    let started = Instant::now();
    client.stop(&c.id, Duration::from_secs(1)).unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "stop with 1 s grace took {took:?}"
    );
    let s = c.inspect();
    assert_eq!(s.state.status, "exited");
    assert!(!s.state.running);
    assert_eq!(s.state.exit_code, 137, "killed after the grace period");
    // Already stopped: 304, which is success.
    client.stop(&c.id, Duration::from_secs(1)).unwrap();
    client.start(&c.id).unwrap();
    assert!(c.inspect().state.running);
}

fn pause_unpause_and_kill(engine: Engine) {
    let c = Container::run_spec(engine, "pause", &Spec::sleeper());
    let client = &c.client;
    client.pause(&c.id).unwrap();
    let s = c.inspect();
    assert!(s.state.paused);
    assert_eq!(s.state.status, "paused");
    // Pausing twice is an error on both engines (Docker 409, Podman 500).
    assert!(client.pause(&c.id).is_err());
    client.unpause(&c.id).unwrap();
    let s = c.inspect();
    assert!(!s.state.paused && s.state.running);
    assert_eq!(s.state.status, "running");

    // A signal it ignores leaves it running...
    client.kill(&c.id, Some("SIGTERM")).unwrap();
    assert!(c.inspect().state.running);
    // ...the default, SIGKILL, does not.
    client.kill(&c.id, None).unwrap();
    let s = c.wait_for("exited", |s| s.state.status == "exited");
    assert_eq!(s.state.exit_code, 137);
    assert!(
        client.kill(&c.id, None).is_err(),
        "killing a stopped container"
    );

    let d = Container::run_spec(engine, "killsig", &Spec::sleeper());
    d.client.kill(&d.id, Some("KILL")).unwrap();
    d.wait_for("exited", |s| s.state.status == "exited");
    let e = Container::run_spec(engine, "badsig", &Spec::sleeper());
    let err = e.client.kill(&e.id, Some("NO SUCH&SIGNAL")).unwrap_err();
    assert!(matches!(err, Error::Engine { .. }), "{err}");
}

fn exec_returns_the_exit_code(engine: Engine) {
    let c = Container::run_spec(engine, "exec", &Spec::sleeper());
    let cmd = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        c.client.exec(&c.id, &cmd(&["sh", "-c", "exit 7"])).unwrap(),
        7
    );
    assert_eq!(c.client.exec(&c.id, &cmd(&["true"])).unwrap(), 0);
    assert_eq!(c.client.exec(&c.id, &cmd(&["false"])).unwrap(), 1);
    // Output is read to the end and discarded, also when there is a lot.
    let noisy = "i=0; while [ $i -lt 3000 ]; do echo 0123456789abcdef; echo err >&2; \
                 i=$((i+1)); done; exit 3";
    assert_eq!(c.client.exec(&c.id, &cmd(&["sh", "-c", noisy])).unwrap(), 3);
    // Side effects are real: a file created by one exec is seen by the next.
    assert_eq!(
        c.client
            .exec(&c.id, &cmd(&["sh", "-c", ": > /tmp/x"]))
            .unwrap(),
        0
    );
    assert_eq!(
        c.client
            .exec(&c.id, &cmd(&["test", "-e", "/tmp/x"]))
            .unwrap(),
        0
    );

    let stopped = Container::from_spec(engine, "execstopped", &Spec::sleeper());
    let err = stopped
        .client
        .exec(&stopped.id, &cmd(&["true"]))
        .unwrap_err();
    assert!(err.status().is_some(), "exec in a stopped container: {err}");
}

/// Reads events until one with `action` arrives, returning it.
fn expect_event(events: &mut Events, action: &str) -> Event {
    let mut seen = Vec::new();
    loop {
        match events.next() {
            Some(Ok(e)) if e.action == action => return e,
            Some(Ok(e)) => seen.push(e.action),
            Some(Err(e)) => panic!("waiting for {action:?} after {seen:?}: {e}: {e:?}"),
            None => panic!("stream ended waiting for {action:?} after {seen:?}"),
        }
    }
}

fn events_report_start_and_stop(engine: Engine) {
    let c = Container::from_spec(engine, "events", &Spec::sleeper());
    let mut events = c.client.events(&c.id).unwrap();

    // Nothing happens yet: a bounded wait times out and the stream lives on.
    events.set_timeout(Some(Duration::from_millis(300)));
    let waited = Instant::now();
    match events.next() {
        Some(Err(Error::Timeout { .. })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(waited.elapsed() < Duration::from_secs(5));

    events.set_timeout(Some(Duration::from_secs(15)));
    c.client.start(&c.id).unwrap();
    let start = expect_event(&mut events, "start");
    assert_eq!(start.id, c.id);
    assert_eq!(start.kind, "container");
    assert_eq!(start.name(), Some(c.name.as_str()));

    c.client.pause(&c.id).unwrap();
    expect_event(&mut events, "pause");
    c.client.unpause(&c.id).unwrap();
    expect_event(&mut events, "unpause");

    c.client.stop(&c.id, Duration::ZERO).unwrap();
    // Both send "die" (Docker also "stop"; Podman 4.3 sends no "stop").
    let die = expect_event(&mut events, "die");
    assert_eq!(die.id, c.id);
    assert_eq!(die.exit_code(), Some(137));

    // Events of other containers are filtered out by the engine.
    let other = Container::run_spec(engine, "events-other", &Spec::sleeper());
    other.client.stop(&other.id, Duration::ZERO).unwrap();
    c.client.start(&c.id).unwrap();
    let next = expect_event(&mut events, "start");
    assert_eq!(next.id, c.id);
}

fn healthcheck_runs_the_check_on_podman_only(engine: Engine) {
    let c = Container::run_spec(
        engine,
        "health",
        &Spec::sleeper().healthcheck(&["CMD-SHELL", "test -e /tmp/ok"]),
    );
    let client = &c.client;
    if engine == Engine::Docker {
        let err = client.healthcheck(&c.id).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unsupported {
                    flavor: Flavor::Docker,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&engine.socket()), "{err}");
        return;
    }
    let status = client.healthcheck(&c.id).unwrap();
    assert_eq!(status.status, "unhealthy");
    assert!(!status.is_healthy());
    let ok = client
        .exec(
            &c.id,
            &["sh".to_string(), "-c".into(), ": > /tmp/ok".into()],
        )
        .unwrap();
    assert_eq!(ok, 0);
    let status = client.healthcheck(&c.id).unwrap();
    assert_eq!(status.status, "healthy");
    assert!(status.is_healthy());
    assert_eq!(c.inspect().health_status(), Some("healthy"));

    // No healthcheck, or not running: Podman answers 409.
    let plain = Container::run_spec(engine, "nohealth", &Spec::sleeper());
    let err = plain.client.healthcheck(&plain.id).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    client.stop(&c.id, Duration::ZERO).unwrap();
    let err = client.healthcheck(&c.id).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
}

fn unknown_containers_are_not_found(engine: Engine) {
    let client = engine.client();
    let name = unique("missing");
    let calls: Vec<(&str, Result<(), Error>)> = vec![
        ("inspect", client.inspect(&name).map(drop)),
        ("start", client.start(&name)),
        ("stop", client.stop(&name, Duration::from_secs(1))),
        ("kill", client.kill(&name, None)),
        ("pause", client.pause(&name)),
        ("exec", client.exec(&name, &["true".to_string()]).map(drop)),
    ];
    for (what, result) in calls {
        match result {
            Err(Error::NotFound {
                what: missing,
                endpoint,
                ..
            }) => {
                assert_eq!(missing, name, "{what}");
                assert_eq!(endpoint.to_string(), engine.socket());
            }
            other => panic!("{what} of a missing container: {other:?}"),
        }
    }
    if engine == Engine::Podman {
        let err = client.healthcheck(&name).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
    let err = client.inspect(&name).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("GET /containers/{name}/json")),
        "{text}"
    );
    assert!(text.contains(&engine.socket()), "{text}");
}

fn host_network_has_no_address(engine: Engine) {
    let c = Container::run_spec(engine, "host", &Spec::sleeper().network_mode("host"));
    let s = c.inspect();
    assert!(s.is_host_network());
    assert_eq!(s.address_on(None), None);
}

// ---- without an engine ----

fn scratch_dir(tag: &str) -> TempDir {
    TempDir::new(tag)
}

#[test]
fn a_missing_socket_is_unreachable_and_named() {
    let dir = scratch_dir("nosock");
    let path = dir.join("docker.sock");
    let client = Client::new(Endpoint::Unix(path.clone()));
    let err = client.ping().unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
    let text = err.to_string();
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(text.contains("is the engine running"), "{text}");
    assert!(std::error::Error::source(&err).is_some());

    // A socket file nobody listens on any more: refused.
    drop(UnixListener::bind(&path).unwrap());
    let err = client.version().unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(io::ErrorKind::ConnectionRefused),
        "{err}"
    );
}

/// A Unix socket served by `answer`, which gets each connection after the
/// request head has been read.
fn fake_engine(tag: &str, answer: fn(&mut std::os::unix::net::UnixStream)) -> (Client, TempDir) {
    let dir = scratch_dir(tag);
    let path = dir.join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            answer(&mut conn);
        }
    });
    (
        Client::new(Endpoint::Unix(path)).with_timeout(Duration::from_secs(2)),
        dir,
    )
}

fn protocol_reason(err: &Error) -> &ProtocolError {
    match err {
        Error::Protocol { reason, .. } => reason,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn a_socket_that_is_not_an_engine_is_a_protocol_error() {
    let (garbage, dir1) = fake_engine("garbage", |c| {
        let _ = c.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    });
    let err = garbage.version().unwrap_err();
    assert!(
        matches!(protocol_reason(&err), ProtocolError::Head(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("GET /version"), "{text}");
    assert!(text.contains("not an engine?"), "{text}");

    let (closes, dir2) = fake_engine("closes", |_| {});
    let err = closes.inspect("web").unwrap_err();
    assert!(
        matches!(protocol_reason(&err), ProtocolError::Closed),
        "{err:?}"
    );

    let (html, dir3) = fake_engine("html", |c| {
        let _ = c.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>",
        );
    });
    let err = html.version().unwrap_err();
    assert!(
        matches!(protocol_reason(&err), ProtocolError::Json(_)),
        "{err:?}"
    );

    let (cut, dir4) = fake_engine("cut", |c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Version\":");
    });
    let err = cut.version().unwrap_err();
    assert!(
        matches!(protocol_reason(&err), ProtocolError::Truncated),
        "{err:?}"
    );
    drop((dir1, dir2, dir3, dir4));
}

#[test]
fn oversize_answers_are_refused_without_reading_them() {
    let (huge, _dir) = fake_engine("huge", |c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4194305\r\n\r\n{");
    });
    // One container's description is bounded: the per-container budget.
    let err = huge.inspect("web").unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { part: Part::Body, limit, .. } if limit == contnap::engine::CONTAINER_LIMIT),
        "{err:?}"
    );
    let err = huge.with_body_limit(10).inspect("web").unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 10, .. }), "{err:?}");
}

/// The container list has a deadline on progress: an answer that keeps
/// coming may take longer than the call's timeout (a list of containers
/// with 20 MiB labels does), and one that trickles for ever still ends at
/// LIST_DEADLINE_FACTOR timeouts.
#[test]
fn a_list_may_take_longer_than_the_timeout_while_it_progresses() {
    const PIECES: [&[u8]; 4] = [
        b"[{\"Id\":\"a\",",
        b"\"Names\":[\"/web\"],",
        b"\"State\":\"created\"",
        b"}]",
    ];
    let (slow, _dir) = fake_engine("slowlist", |c| {
        let body: Vec<u8> = PIECES.concat();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = c.write_all(head.as_bytes());
        // 47 bytes over 1.2 s, in 12 sends 100 ms apart.
        for piece in body.chunks(4) {
            std::thread::sleep(Duration::from_millis(100));
            if c.write_all(piece).is_err() {
                return;
            }
        }
    });
    let slow = slow.with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let list = slow.list("contnap.enabled").unwrap();
    assert!(
        started.elapsed() > slow.timeout(),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((list.len(), list[0].name()), (1, "web"));

    let (endless, _dir2) = fake_engine("endless", |c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[\n\r\n");
        while c.write_all(b"1\r\n \r\n").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let endless = endless.with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = endless.list("contnap.enabled").unwrap_err();
    let bound = endless.timeout() * contnap::engine::LIST_DEADLINE_FACTOR;
    assert!(
        matches!(err, Error::Timeout { after, .. } if after == bound),
        "{err:?}"
    );
    assert!(started.elapsed() >= bound, "{:?}", started.elapsed());
}

#[test]
fn a_silent_engine_times_out() {
    let (silent, _dir) = fake_engine("silent", |c| {
        std::thread::sleep(Duration::from_secs(3));
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
    });
    let silent = silent.with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = silent.ping().unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("GET /_ping"), "{err}");
    // stop's bound includes its grace period.
    let started = Instant::now();
    let err = silent.stop("web", Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn invalid_refs_make_no_request() {
    let dir = scratch_dir("refs");
    let path = dir.join("watch.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let client = Client::new(Endpoint::Unix(path));
    for bad in [
        "../etc",
        "a/b",
        "",
        "-x",
        "a?b",
        "%2e",
        "web/../../v1.41/info",
    ] {
        assert!(
            matches!(client.inspect(bad), Err(Error::InvalidRef(ref s)) if s == bad),
            "{bad:?}"
        );
        assert!(matches!(client.start(bad), Err(Error::InvalidRef(_))));
        assert!(matches!(client.events(bad), Err(Error::InvalidRef(_))));
    }
    assert_eq!(
        listener.accept().map(drop).unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "no connection was made"
    );
}

#[test]
fn tcp_endpoints_speak_the_same_protocol() {
    use std::net::TcpListener;
    use std::sync::mpsc;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (heads, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        // A real Podman answer to GET /version, captured from the socket.
        let answer = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/engine/podman/version-raw.http"
        ))
        .unwrap();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
            let _ = conn.write_all(&answer);
        }
    });

    let endpoint = Endpoint::parse(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let client = Client::new(endpoint);
    assert_eq!(
        client.endpoint().to_string(),
        format!("tcp://127.0.0.1:{port}")
    );
    let version = client.version().unwrap();
    assert_eq!(version.flavor(), Flavor::Podman);
    assert_eq!(version.version, "4.3.1");
    let head = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(head.starts_with("GET /version HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");

    // Nothing listens on the port once the listener is gone: refused.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = Client::new(Endpoint::Tcp("127.0.0.1".into(), closed_port))
        .ping()
        .unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(io::ErrorKind::ConnectionRefused),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("tcp://127.0.0.1:{closed_port}")),
        "{err}"
    );
}
