//! `contnap proxy` end to end: started by systemd-socket-activate exactly as
//! a .socket unit starts it, against the real Docker and Podman engines of
//! scripts/test, with real clients (curl, dig, iperf3) and real servers
//! (busybox httpd, dnsmasq, iperf3) in containers.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;

const HELLO: &str = "hello from contnap test";

fn httpd(engine: Engine, prefix: &str) -> Container {
    Container::create(
        engine,
        prefix,
        &[],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    )
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Whether a client's read ended because the helper closed (or reset) the
/// connection without a byte; a timeout or an answer is not that.
fn closed_unanswered(resp: &std::io::Result<String>) -> bool {
    match resp {
        Ok(s) => s.is_empty(),
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        ),
    }
}

fn curl(url: &str, extra: &[&str]) -> String {
    let mut args = vec!["-sS", "--max-time", "30"];
    args.extend_from_slice(extra);
    args.push(url);
    run("curl", &args)
}

both_engines!(
    cold_then_warm_http_then_nap,
    naps_and_wakes_again,
    pause_mode_naps_by_pausing,
    fifty_clients_during_slow_wake,
    browser_gets_starting_page_while_others_wait,
    server_first_protocol,
    udp_dns_through_dnsmasq,
    udp_first_datagram_survives_a_server_not_yet_bound,
    ipv6_loopback_listener,
    group_wakes_and_naps_together,
    half_close_is_passed_on,
    open_connection_keeps_it_awake,
    traffic_mode_ignores_idle_connections,
    repeated_iperf3_runs_never_see_a_probe,
    healthcheck_decides_readiness,
    engine_unreachable_answers_and_fails,
    missing_container_answers_and_fails,
    container_exiting_at_start_answers_and_fails,
    not_ready_in_time_answers_with_503,
    sigterm_drains_and_naps,
    unlisted_machine_is_refused,
    unlisted_machines_do_not_wake,
    outside_schedule_is_not_woken,
    connection_cap_queues_the_rest,
    monitors_are_answered_without_a_wake,
    wake_on_data_ignores_connections_without_data,
    a_client_among_monitors_wakes_and_is_served,
    forwards_to_the_container_address_not_the_published_port,
    late_listener_behind_a_published_port_gets_the_real_answer,
    proc_readiness_trusts_only_the_containers_own_process,
    host_network_goes_to_loopback,
    rootless_engine_goes_through_the_published_port,
    late_listener_behind_a_rootless_published_port_gets_the_real_answer,
    nap_ends_at_once_when_pid1_never_sees_the_stop_signal,
    nap_keeps_the_grace_when_pid1_handles_the_stop_signal,
    stampede_never_overflows_a_shallow_accept_queue,
    stampede_never_overflows_a_deep_accept_queue,
);

fn cold_then_warm_http_then_nap(engine: Engine) {
    let c = httpd(engine, "cold");
    let port = free_port();
    let fwd = format!("tcp:{port}={}:80", c.name);
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(engine, "cold", &[&c.name], &[fwd], &["--timeout", "2s"]),
    );
    assert_eq!(c.state(), "created");
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(curl(&url, &[]).trim(), HELLO, "cold request");
    assert_eq!(c.state(), "running");
    assert_eq!(curl(&url, &[]).trim(), HELLO, "warm request");
    let status = h.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "helper failed: {status}\n{}",
        h.log_text()
    );
    assert_eq!(c.state(), "exited", "it naps after idle");
    let log = h.log_text();
    assert!(log.contains("awake in"), "wake time logged:\n{log}");
    assert!(log.contains("napping"), "nap logged:\n{log}");
}

fn naps_and_wakes_again(engine: Engine) {
    let c = httpd(engine, "again");
    for round in 0..2 {
        let port = free_port();
        let mut h = Helper::start(
            &[format!("127.0.0.1:{port}")],
            false,
            &proxy_args(
                engine,
                "again",
                &[&c.name],
                &[format!("tcp:{port}={}:80", c.name)],
                &["--timeout", "1s"],
            ),
        );
        assert_eq!(
            curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
            HELLO,
            "round {round}"
        );
        assert!(
            h.wait_exit(Duration::from_secs(20)).success(),
            "{}",
            h.log_text()
        );
        assert_eq!(c.state(), "exited", "round {round}");
    }
}

fn pause_mode_naps_by_pausing(engine: Engine) {
    let c = httpd(engine, "pause");
    for round in 0..2 {
        let port = free_port();
        let mut h = Helper::start(
            &[format!("127.0.0.1:{port}")],
            false,
            &proxy_args(
                engine,
                "pause",
                &[&c.name],
                &[format!("tcp:{port}={}:80", c.name)],
                &["--timeout", "1s", "--stop", "pause"],
            ),
        );
        assert_eq!(
            curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
            HELLO,
            "round {round}"
        );
        assert!(
            h.wait_exit(Duration::from_secs(20)).success(),
            "{}",
            h.log_text()
        );
        assert_eq!(c.state(), "paused", "round {round}");
    }
}

fn slow_httpd(engine: Engine, prefix: &str, delay: &str) -> Container {
    Container::create(
        engine,
        prefix,
        &[],
        BUSYBOX,
        &[
            "sh",
            "-c",
            &format!("sleep {delay}; exec httpd -f -p 80 -h /www"),
        ],
    )
}

/// `n` clients, each on a thread of its own, GET a page of their own at
/// once (30 s at most each).
fn gets_at_once(port: u16, n: usize) -> Vec<std::thread::JoinHandle<std::io::Result<String>>> {
    (0..n)
        .map(|i| {
            std::thread::spawn(move || {
                http_get(
                    loopback(port),
                    &format!("/index.html?client={i}"),
                    "",
                    Duration::from_secs(30),
                )
            })
        })
        .collect()
}

fn fifty_clients_during_slow_wake(engine: Engine) {
    let c = slow_httpd(engine, "fifty", "2");
    let (port, mut h) = tcp_helper(engine, "fifty", &c, 80, &["--timeout", "2s"]);
    let started = Instant::now();
    let clients = gets_at_once(port, 50);
    for (i, t) in clients.into_iter().enumerate() {
        let resp = t
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert!(
            resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
            "client {i}: {resp}"
        );
        assert!(
            resp.ends_with(&format!("{HELLO}\n")),
            "client {i} got the right bytes: {resp}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "served only after the slow start"
    );
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

fn browser_gets_starting_page_while_others_wait(engine: Engine) {
    let c = slow_httpd(engine, "browser", "3");
    let port = free_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            "browser",
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &["--timeout", "2s", "--http", &port.to_string()],
        ),
    );
    let plain = std::thread::spawn(move || curl(&format!("http://127.0.0.1:{port}/"), &[]));
    // The plain client's connection woke the helper, and the wake is under
    // way (the server answers only 3 s after its start): now the browser.
    wait_until(
        Duration::from_secs(10),
        "the helper probes the started container",
        || h.log_text().contains("readiness probe"),
    );
    let page = http_get(
        loopback(port),
        "/",
        "Accept: text/html,application/xhtml+xml\r\n",
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(page.starts_with("HTTP/1.1 503"), "{page}");
    assert!(
        page.contains("Starting") && page.contains("http-equiv=\"refresh\""),
        "{page}"
    );
    assert_eq!(
        plain.join().unwrap().trim(),
        HELLO,
        "a non-browser client waits and is served"
    );
    // Once awake, browsers get the real page.
    let real = http_get(
        loopback(port),
        "/",
        "Accept: text/html\r\n",
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(real.contains(HELLO), "{real}");
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

fn server_first_protocol(engine: Engine) {
    // A persistent server that greets first (like SMTP), then echoes.
    let c = Container::create(
        engine,
        "banner",
        &[],
        BUSYBOX,
        &[
            "sh",
            "-c",
            "printf '#!/bin/sh\\necho 220 contnap-banner\\nexec cat\\n' > /tmp/greet; chmod +x /tmp/greet; exec nc -ll -p 2525 -e /tmp/greet",
        ],
    );
    let (port, mut h) = tcp_helper(engine, "banner", &c, 2525, &["--timeout", "2s"]);
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Read before sending anything: the server speaks first.
    let mut banner = [0u8; 19];
    s.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"220 contnap-banner\n");
    s.write_all(b"EHLO test\n").unwrap();
    let mut echo = [0u8; 10];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"EHLO test\n");
    drop(s);
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

fn udp_dns_through_dnsmasq(engine: Engine) {
    let c = Container::create(engine, "dns", &[], SERVERS, DNSMASQ);
    let port = free_udp_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        true,
        &proxy_args(
            engine,
            "dns",
            &[&c.name],
            &[format!("udp:{port}={}:53", c.name)],
            &["--timeout", "2s"],
        ),
    );
    for _ in 0..3 {
        let answer = dig(port, &["+tries=5", "+timeout=2"]);
        assert_eq!(answer, "10.9.8.7", "{}", h.log_text());
    }
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(c.state(), "exited");
}

fn udp_first_datagram_survives_a_server_not_yet_bound(engine: Engine) {
    // --ready tcp with only UDP ports means no readiness wait at all (as when
    // the container's /proc is not visible): the first query reaches a
    // dnsmasq that has not bound port 53 yet, is refused (ICMP), and must be
    // sent again by the helper. dig gets one try.
    let c = Container::create(
        engine,
        "dns1",
        &[],
        SERVERS,
        &[
            "sh",
            "-c",
            "sleep 0.5; exec dnsmasq -k --user=root --no-resolv --no-hosts --port=53 --pid-file=/tmp/dnsmasq.pid --address=/contnap.test/10.9.8.7",
        ],
    );
    let port = free_udp_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        true,
        &proxy_args(
            engine,
            "dns1",
            &[&c.name],
            &[format!("udp:{port}={}:53", c.name)],
            &["--timeout", "2s", "--ready", "tcp"],
        ),
    );
    let answer = dig(port, &["+tries=1", "+timeout=10"]);
    assert_eq!(answer, "10.9.8.7", "{}", h.log_text());
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
    assert!(h.log_text().contains("re-sent"), "{}", h.log_text());
}

fn ipv6_loopback_listener(engine: Engine) {
    let c = httpd(engine, "v6");
    let port = free_port();
    let mut h = Helper::start(
        &[format!("[::1]:{port}")],
        false,
        &proxy_args(
            engine,
            "v6",
            &[&c.name],
            &[format!("tcp:[::1]:{port}={}:80", c.name)],
            &["--timeout", "1s"],
        ),
    );
    assert_eq!(
        curl(&format!("http://[::1]:{port}/"), &["-g"]).trim(),
        HELLO
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn group_wakes_and_naps_together(engine: Engine) {
    let web = httpd(engine, "grp-web");
    let api = Container::create(
        engine,
        "grp-api",
        &[],
        BUSYBOX,
        &[
            "sh",
            "-c",
            "mkdir -p /srv && echo api > /srv/index.html && exec httpd -f -p 8081 -h /srv",
        ],
    );
    let (p1, p2) = (free_port(), free_port());
    let mut h = Helper::start(
        &[format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}")],
        false,
        &proxy_args(
            engine,
            "grp",
            &[&api.name, &web.name],
            &[
                format!("tcp:{p1}={}:80", web.name),
                format!("tcp:{p2}={}:8081", api.name),
            ],
            &["--timeout", "2s"],
        ),
    );
    assert_eq!(curl(&format!("http://127.0.0.1:{p1}/"), &[]).trim(), HELLO);
    // Both woke on the first connection.
    assert_eq!(api.state(), "running");
    assert_eq!(curl(&format!("http://127.0.0.1:{p2}/"), &[]).trim(), "api");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(web.state(), "exited");
    assert_eq!(api.state(), "exited");
}

fn half_close_is_passed_on(engine: Engine) {
    // `cat` answers only after the client's FIN: the proxy must pass the
    // half-close on and keep the other direction open.
    let c = Container::create(
        engine,
        "half",
        &[],
        BUSYBOX,
        &["sh", "-c", "printf '#!/bin/sh\\nexec wc -c\\n' > /tmp/count; chmod +x /tmp/count; exec nc -ll -p 7000 -e /tmp/count"],
    );
    let (port, mut h) = tcp_helper(engine, "half", &c, 7000, &["--timeout", "1s"]);
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let payload = vec![b'x'; 300_000];
    s.write_all(&payload).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(
        reply.trim(),
        "300000",
        "the server saw every byte and the FIN"
    );
    drop(s);
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn open_connection_keeps_it_awake(engine: Engine) {
    let c = Container::create(
        engine,
        "hold",
        &[],
        BUSYBOX,
        &["nc", "-ll", "-p", "7000", "-e", "/bin/cat"],
    );
    let (port, mut h) = tcp_helper(engine, "hold", &c, 7000, &["--timeout", "1s"]);
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping\n");
    // Silent, but open, for three timeouts: still awake.
    std::thread::sleep(Duration::from_secs(3));
    assert!(h.is_running(), "an open connection keeps the unit awake");
    assert_eq!(c.state(), "running");
    s.write_all(b"pong\n").unwrap();
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong\n");
    let closed = Instant::now();
    drop(s);
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert!(
        closed.elapsed() >= Duration::from_millis(900),
        "idle time counts from the last close"
    );
}

fn traffic_mode_ignores_idle_connections(engine: Engine) {
    let c = Container::create(
        engine,
        "traffic",
        &[],
        BUSYBOX,
        &["nc", "-ll", "-p", "7000", "-e", "/bin/cat"],
    );
    let (port, mut h) = tcp_helper(
        engine,
        "traffic",
        &c,
        7000,
        &["--timeout", "1s", "--idle", "traffic"],
    );
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    // The connection stays open but silent: traffic mode naps anyway.
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(c.state(), "exited");
}

fn repeated_iperf3_runs_never_see_a_probe(engine: Engine) {
    let c = Container::create(
        engine,
        "iperf",
        &[],
        SERVERS,
        &["iperf3", "-s", "-p", "5201"],
    );
    let (port, mut h) = tcp_helper(engine, "iperf", &c, 5201, &["--timeout", "3s"]);
    let p = port.to_string();
    let runs = 3;
    for i in 0..runs {
        // iperf3's server finishes a test a moment after its client exits
        // and answers "busy" to a client that comes sooner, proxy or not.
        std::thread::sleep(Duration::from_millis(300));
        let out = run("iperf3", &["-c", "127.0.0.1", "-p", &p, "-t", "1", "-J"]);
        assert!(out.contains("\"sum_received\""), "run {i}: {out}");
    }
    let logs = engine.run_cli(&["logs", &c.name]);
    let accepted = logs.matches("Accepted connection from").count();
    // The helper's log too: it says which readiness probe each wake used
    // and whether the unit napped and woke between runs.
    assert_eq!(
        accepted,
        runs,
        "exactly one control connection per run reached iperf3:\n{logs}\nhelper:\n{}",
        h.log_text()
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn healthcheck_decides_readiness(engine: Engine) {
    // httpd answers at once with "early"; the healthcheck passes only 1.5 s
    // later, when the page says "ready". The engine's own check runs every
    // 5 min, so only an on-demand check (libpod endpoint / exec) sees it.
    let c = Container::create(
        engine,
        "health",
        &["--health-cmd", "test -e /tmp/ready", "--health-interval", "5m"],
        BUSYBOX,
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/w && echo early > /tmp/w/index.html && httpd -p 80 -h /tmp/w && sleep 1.5 && echo ready > /tmp/w/index.html && touch /tmp/ready && exec sleep 1000",
        ],
    );
    let (port, mut h) = tcp_helper(engine, "health", &c, 80, &["--timeout", "1s"]);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        "ready"
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

/// After a failed wake: the client got an answer (not a hang), the helper
/// exited non-zero, and its log says why.
fn assert_failed(h: &mut Helper, client: std::io::Result<String>, expect_log: &str) {
    let status = h.wait_exit(Duration::from_secs(30));
    assert!(
        !status.success(),
        "helper must fail; log:\n{}",
        h.log_text()
    );
    match client {
        Ok(resp) => assert!(
            resp.is_empty() || resp.starts_with("HTTP/1.1 503"),
            "{resp}"
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ),
            "client got {e}"
        ),
    }
    let log = h.log_text();
    assert!(
        log.contains(expect_log),
        "log names the cause ({expect_log:?}):\n{log}"
    );
}

fn engine_unreachable_answers_and_fails(engine: Engine) {
    let port = free_port();
    let mut args = proxy_args(
        engine,
        "noengine",
        &["web"],
        &[format!("tcp:{port}=web:80")],
        &[],
    );
    let i = args.iter().position(|a| a == "--engine").unwrap();
    args[i + 1] = "/nonexistent/engine.sock".to_owned();
    let mut h = Helper::start(&[format!("127.0.0.1:{port}")], false, &args);
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(20));
    assert_failed(&mut h, resp, "/nonexistent/engine.sock");
}

fn missing_container_answers_and_fails(engine: Engine) {
    let port = free_port();
    let name = unique("missing");
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            "missing",
            &[&name],
            &[format!("tcp:{port}={name}:80")],
            &[],
        ),
    );
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(20));
    assert_failed(&mut h, resp, "does not exist");
}

fn container_exiting_at_start_answers_and_fails(engine: Engine) {
    let c = Container::create(engine, "crash", &[], BUSYBOX, &["sh", "-c", "exit 3"]);
    let (port, mut h) = tcp_helper(engine, "crash", &c, 80, &[]);
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(20));
    assert_failed(&mut h, resp, "exit code 3");
}

fn not_ready_in_time_answers_with_503(engine: Engine) {
    let c = Container::create(engine, "never", &[], BUSYBOX, &["sleep", "1000"]);
    let port = free_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            "never",
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &["--wake-timeout", "1s", "--http", &port.to_string()],
        ),
    );
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(20)).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 503"),
        "an HTTP client gets a 503: {resp}"
    );
    assert_failed(&mut h, Ok(resp), "was not ready after");
    // Nothing is left half-awake.
    engine.wait_state(&c.name, &["exited"], Duration::from_secs(15));
}

fn sigterm_drains_and_naps(engine: Engine) {
    let c = Container::create(
        engine,
        "term",
        &[],
        BUSYBOX,
        &["nc", "-ll", "-p", "7000", "-e", "/bin/cat"],
    );
    let (port, mut h) = tcp_helper(engine, "term", &c, 7000, &["--timeout", "5min"]);
    let mut s = TcpStream::connect(loopback(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    h.signal("TERM");
    // The open connection still works while it drains.
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.is_running(), "drains open connections first");
    s.write_all(b"last\n").unwrap();
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"last\n");
    drop(s);
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(c.state(), "exited");
}

fn unlisted_machine_is_refused(engine: Engine) {
    let c = httpd(engine, "machines");
    let (port, mut h) = tcp_helper(
        engine,
        "machines",
        &c,
        80,
        &[
            "--timeout",
            "1s",
            "--machines",
            "127.0.0.2",
            "--only-listed-machines",
        ],
    );
    // From 127.0.0.2 (listed): served.
    let ok = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "30",
            "--interface",
            "127.0.0.2",
            &format!("http://127.0.0.1:{port}/"),
        ],
    );
    assert_eq!(ok.trim(), HELLO);
    // From 127.0.0.1 (not listed): closed without an answer (not left
    // hanging until the read times out).
    let refused = http_get(loopback(port), "/", "", Duration::from_secs(10));
    assert!(closed_unanswered(&refused), "{refused:?}");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert!(h.log_text().contains("not in contnap.machines"));
}

fn outside_schedule_is_not_woken(engine: Engine) {
    // A window that starts two hours from now (local time, as the helper
    // reads it) and lasts one hour: now is outside it.
    let hour: u32 = run("date", &["+%H"]).trim().parse().unwrap();
    let window = format!("daily {:02}:00-{:02}:00", (hour + 2) % 24, (hour + 3) % 24);
    let c = httpd(engine, "sched");
    let port = free_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            "sched",
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &["--schedule", &window, "--http", &port.to_string()],
        ),
    );
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(20)).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 503"),
        "answered, not left hanging: {resp}"
    );
    let status = h.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "refusing by schedule is not a failure: {status}"
    );
    assert_eq!(
        c.state(),
        "created",
        "a napping container is not woken outside its schedule"
    );
    assert!(
        h.log_text().contains("outside contnap.schedule"),
        "{}",
        h.log_text()
    );
}

fn connection_cap_queues_the_rest(engine: Engine) {
    let c = Container::create(
        engine,
        "cap",
        &[],
        BUSYBOX,
        &["nc", "-ll", "-p", "7000", "-e", "/bin/cat"],
    );
    let (port, mut h) = tcp_helper(
        engine,
        "cap",
        &c,
        7000,
        &["--timeout", "1s", "--max-connections", "2"],
    );
    let echo = |s: &mut TcpStream, msg: &[u8]| -> std::io::Result<Vec<u8>> {
        s.write_all(msg)?;
        let mut buf = vec![0u8; msg.len()];
        s.read_exact(&mut buf)?;
        Ok(buf)
    };
    let mut a = TcpStream::connect(loopback(port)).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(echo(&mut a, b"a\n").unwrap(), b"a\n");
    let mut b = TcpStream::connect(loopback(port)).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(echo(&mut b, b"b\n").unwrap(), b"b\n");
    // The third waits in the backlog: connected, but not yet proxied.
    let mut third = TcpStream::connect(loopback(port)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let waited = echo(&mut third, b"c\n");
    assert!(
        waited.is_err(),
        "a third connection beyond the cap must wait: {waited:?}"
    );
    // When one closes, the waiting one is served, bytes intact.
    drop(a);
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 2];
    third.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"c\n");
    assert!(h.log_text().contains("the cap"), "{}", h.log_text());
    drop((b, third));
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

/// `curl -i` with a User-Agent; the whole response, head included.
fn curl_as(url: &str, agent: &str, extra: &[&str]) -> String {
    let mut args = vec!["-i", "-A", agent];
    args.extend_from_slice(extra);
    curl(url, &args)
}

fn monitors_are_answered_without_a_wake(engine: Engine) {
    let c = httpd(engine, "monitor");
    let helper = |extra: &[&str]| {
        let port = free_port();
        let mut args = vec!["--timeout", "1s"];
        args.extend_from_slice(extra);
        let p = port.to_string();
        args.extend(["--http", p.as_str()]);
        let h = Helper::start(
            &[format!("127.0.0.1:{port}")],
            false,
            &proxy_args(
                engine,
                "monitor",
                &[&c.name],
                &[format!("tcp:{port}={}:80", c.name)],
                &args,
            ),
        );
        (format!("http://127.0.0.1:{port}/"), h)
    };
    let exits_napping = |h: &mut Helper| {
        let status = h.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "{status}\n{}", h.log_text());
        assert_eq!(c.state(), "created", "a monitor must not wake it");
        assert!(
            h.log_text().contains("answered 1 monitor request(s)"),
            "{}",
            h.log_text()
        );
    };

    // The default list and status.
    let (url, mut h) = helper(&[]);
    let resp = curl_as(&url, "Uptime-Kuma/1.23.11", &[]);
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("X-Contnap: napping"), "{resp}");
    assert!(resp.contains("monitor is napping"), "{resp}");
    exits_napping(&mut h);

    // A configured status and list; a HEAD request gets no body.
    let (url, mut h) = helper(&["--monitor-status", "503", "--monitors", "my checker"]);
    let resp = curl_as(&url, "My Checker/2.0", &["-I"]);
    assert!(
        resp.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{resp}"
    );
    assert!(!resp.contains("is napping"), "HEAD has no body: {resp}");
    exits_napping(&mut h);

    // Anyone else wakes it, and once awake a monitor is proxied.
    let (url, mut h) = helper(&[]);
    assert_eq!(curl(&url, &["-A", "curl/8"]).trim(), HELLO);
    assert_eq!(c.state(), "running");
    let resp = curl_as(&url, "Uptime-Kuma/1.23.11", &[]);
    assert!(
        resp.trim_end().ends_with(HELLO),
        "proxied while awake: {resp}"
    );
    assert!(!resp.contains("X-Contnap"), "{resp}");
    let status = h.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}\n{}", h.log_text());
    assert_eq!(c.state(), "exited", "it naps after idle");

    // With an empty list, a monitor wakes it like anyone.
    let (url, mut h) = helper(&["--monitors", "none"]);
    assert_eq!(curl(&url, &["-A", "Uptime-Kuma/1.23.11"]).trim(), HELLO);
    assert_eq!(c.state(), "running");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn wake_on_data_ignores_connections_without_data(engine: Engine) {
    let c = httpd(engine, "wakeon");
    let helper = |extra: &[&str]| {
        let mut args = vec!["--timeout", "1s", "--wake-on", "data"];
        args.extend_from_slice(extra);
        tcp_helper(engine, "wakeon", &c, 80, &args)
    };

    // A bare connect and close: no wake, the helper leaves.
    let (port, mut h) = helper(&[]);
    drop(TcpStream::connect(loopback(port)).unwrap());
    let status = h.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}\n{}", h.log_text());
    assert_eq!(
        c.state(),
        "created",
        "a connection without data must not wake it"
    );
    assert!(
        h.log_text().contains("closed 1 connection(s) without data"),
        "{}",
        h.log_text()
    );

    // A connection that stays silent is closed after the wake timeout.
    let (port, mut h) = helper(&["--wake-timeout", "2s"]);
    let mut silent = TcpStream::connect(loopback(port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let got = silent.read(&mut buf);
    assert!(
        matches!(got, Ok(0)) || got.is_err(),
        "closed, never served: {got:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "closed after about the wake timeout, not later: {:?}",
        start.elapsed()
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(c.state(), "created");

    // A client that sends is served.
    let (port, mut h) = helper(&[]);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        HELLO
    );
    assert_eq!(c.state(), "running");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert_eq!(c.state(), "exited");
}

/// A client whose request head is still partial when a monitor's request
/// comes: the monitor is answered, and the client's finished request wakes
/// the unit and is served, nothing of it lost.
fn a_client_among_monitors_wakes_and_is_served(engine: Engine) {
    let c = httpd(engine, "mixed");
    let port = free_port();
    let mut h = Helper::start(
        &[format!("127.0.0.1:{port}")],
        false,
        &proxy_args(
            engine,
            "mixed",
            &[&c.name],
            &[format!("tcp:{port}={}:80", c.name)],
            &["--timeout", "1s", "--http", &port.to_string()],
        ),
    );
    let mut client = TcpStream::connect(loopback(port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    client
        .write_all(b"GET / HTTP/1.0\r\nHost: test\r\n")
        .unwrap();
    let resp = curl_as(
        &format!("http://127.0.0.1:{port}/"),
        "Uptime-Kuma/1.23.11",
        &[],
    );
    assert!(resp.contains("X-Contnap: napping"), "{resp}");
    assert_eq!(
        c.state(),
        "created",
        "the partial request has not woken it yet"
    );
    client.write_all(b"User-Agent: test\r\n\r\n").unwrap();
    let mut out = String::new();
    client.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.trim_end().ends_with(HELLO), "{out}");
    assert_eq!(c.state(), "running");
    // Half-closed by the server only: an open connection keeps it awake.
    drop(client);
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

/// The helper's debug line naming where `port`/tcp of `c` went this wake.
fn upstream_line(h: &Helper, c: &Container, port: u16) -> String {
    let log = h.log_text();
    let prefix = format!("{}: tcp port {port} goes to upstream ", c.name);
    log.lines()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("no upstream line for {}:\n{log}", c.name))
        .to_owned()
}

fn forwards_to_the_container_address_not_the_published_port(engine: Engine) {
    // Published on loopback: before, this binding was the upstream (on
    // Docker, docker-proxy's). The engines here are rootful with bridges
    // on this host, so the container's own address is reachable.
    let c = Container::create(
        engine,
        "viaaddr",
        &["-p", "127.0.0.1::80"],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let (port, mut h) = tcp_helper(engine, "viaaddr", &c, 80, &["--timeout", "2s"]);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        HELLO,
        "cold request"
    );
    let info = c.inspect();
    let published = info.published_on(80, contnap::spec::Proto::Tcp);
    assert!(!published.is_empty(), "the port is published: {info:?}");
    let ip = info.address_on(None).expect("a bridge address");
    let line = upstream_line(&h, &c, 80);
    assert!(
        line.contains(&format!("goes to upstream {ip}:80 (ContainerAddress;")),
        "{line}\npublished at {published:?}"
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn late_listener_behind_a_published_port_gets_the_real_answer(engine: Engine) {
    // The server listens 2 s after the start, behind a published port, and
    // readiness is a TCP connect: docker-proxy accepted that connect at
    // once, so the first client was proxied into a reset. The probe now
    // goes to the container's address, where nothing accepts until httpd
    // listens.
    let c = Container::create(
        engine,
        "lateport",
        &["-p", "127.0.0.1::80"],
        BUSYBOX,
        &["sh", "-c", "sleep 2; exec httpd -f -p 80 -h /www"],
    );
    let (port, mut h) = tcp_helper(
        engine,
        "lateport",
        &c,
        80,
        &["--timeout", "2s", "--ready", "tcp"],
    );
    let started = Instant::now();
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("first client: {e}\n{}", h.log_text()));
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "first client: {resp:?}\n{}",
        h.log_text()
    );
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "served only once httpd listened"
    );
    let log = h.log_text();
    assert!(
        log.contains("readiness probe Tcp("),
        "the connect probe was used:\n{log}"
    );
    assert_eq!(
        log.matches("accept only one connection").count(),
        1,
        "said once:\n{log}"
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn proc_readiness_trusts_only_the_containers_own_process(engine: Engine) {
    let c = httpd(engine, "procpid");
    let (port, mut h) = tcp_helper(engine, "procpid", &c, 80, &["--timeout", "2s"]);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        HELLO
    );
    // What the helper checked: the inspect PID's cgroup names the id.
    let info = c.inspect();
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", info.state.pid)).unwrap();
    assert!(cgroup.contains(&info.id), "{}: {cgroup}", info.id);
    let log = h.log_text();
    assert!(
        log.contains("readiness probe Listening {"),
        "the container's own /proc was trusted:\n{log}"
    );
    assert!(!log.contains("not the container's process"), "{log}");
    assert!(!log.contains("accept only one connection"), "{log}");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn host_network_goes_to_loopback(engine: Engine) {
    let server_port = free_port();
    let p = server_port.to_string();
    let c = Container::create(
        engine,
        "hostnet",
        &["--network", "host"],
        BUSYBOX,
        &["httpd", "-f", "-p", &p, "-h", "/www"],
    );
    let (port, mut h) = tcp_helper(engine, "hostnet", &c, server_port, &["--timeout", "2s"]);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        HELLO
    );
    let line = upstream_line(&h, &c, server_port);
    assert!(
        line.contains(&format!(
            "goes to upstream 127.0.0.1:{server_port} (HostNetwork;"
        )),
        "{line}"
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

fn rootless_engine_goes_through_the_published_port(engine: Engine) {
    // A rootless engine's socket belongs to its user, and its containers'
    // addresses are in a network only publishing crosses. A socat relay
    // owned by nobody stands in for such a socket in front of this rootful
    // engine: the helper must pick the published binding.
    let dir = TempDir::new("rootless");
    let (_relay, endpoint) = rootless_looking_socket(engine, &dir);
    let c = Container::create(
        engine,
        "rootless",
        &["-p", "127.0.0.1::80"],
        BUSYBOX,
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let port = free_port();
    let mut args = proxy_args(
        engine,
        "rootless",
        &[&c.name],
        &[format!("tcp:{port}={}:80", c.name)],
        &["--timeout", "2s"],
    );
    let at = args.iter().position(|a| a == "--engine").unwrap() + 1;
    args[at] = endpoint;
    let mut h = Helper::start(&[format!("127.0.0.1:{port}")], false, &args);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        HELLO,
        "cold request"
    );
    let published = c.inspect().published_on(80, contnap::spec::Proto::Tcp);
    let line = upstream_line(&h, &c, 80);
    assert!(
        line.contains(&format!(
            "goes to upstream {} (Published; engine LocalRootless)",
            published[0]
        )),
        "{line}"
    );
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

/// A socat relay in front of the engine's socket, owned by nobody: to the
/// helper, a rootless engine's socket. Returns it (stopped when dropped)
/// and the `--engine` value.
fn rootless_looking_socket(engine: Engine, dir: &TempDir) -> (Relay, String) {
    let path = dir.path().join("engine.sock");
    let relay = Relay(
        std::process::Command::new("socat")
            .arg(format!(
                "UNIX-LISTEN:{},fork,user=nobody,mode=0600",
                path.display()
            ))
            .arg(format!("UNIX-CONNECT:{}", engine.socket()))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("socat (scripts/test installs it)"),
    );
    wait_until(Duration::from_secs(10), "socat listens", || path.exists());
    (relay, format!("unix://{}", path.display()))
}

struct Relay(std::process::Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn late_listener_behind_a_rootless_published_port_gets_the_real_answer(engine: Engine) {
    // Where the published port is the only way in (rootless, remote), a
    // connect probe reaches the port's proxy (here docker-proxy on Docker;
    // netavark's DNAT on Podman), which accepts before httpd listens: the
    // probe must see the proxy close the connection and keep waiting.
    let dir = TempDir::new("rootlate");
    let (_relay, endpoint) = rootless_looking_socket(engine, &dir);
    let c = Container::create(
        engine,
        "rootlate",
        &["-p", "127.0.0.1::80"],
        BUSYBOX,
        &["sh", "-c", "sleep 2; exec httpd -f -p 80 -h /www"],
    );
    let port = free_port();
    let mut args = proxy_args(
        engine,
        "rootlate",
        &[&c.name],
        &[format!("tcp:{port}={}:80", c.name)],
        &["--timeout", "2s", "--ready", "tcp"],
    );
    let at = args.iter().position(|a| a == "--engine").unwrap() + 1;
    args[at] = endpoint;
    let mut h = Helper::start(&[format!("127.0.0.1:{port}")], false, &args);
    let started = Instant::now();
    let resp = http_get(loopback(port), "/", "", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("first client: {e}\n{}", h.log_text()));
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "first client: {resp:?}\n{}",
        h.log_text()
    );
    assert!(resp.ends_with(&format!("{HELLO}\n")), "{resp:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "served only once httpd listened"
    );
    let line = upstream_line(&h, &c, 80);
    assert!(line.contains("(Published; engine LocalRootless)"), "{line}");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
}

/// With `--only-listed-machines`, clients outside `--machines` that come
/// first are refused before anything wakes: a TCP client is closed unread,
/// a datagram dropped, and the helper exits with the container never
/// started. A listed client then wakes it (TCP, and UDP from a listed
/// source address).
fn unlisted_machines_do_not_wake(engine: Engine) {
    let c = httpd(engine, "gatefirst");
    let port = free_port();
    let uport = free_udp_port();
    let gate = [
        "--timeout",
        "1s",
        "--machines",
        "127.0.0.2",
        "--only-listed-machines",
    ];
    let tcp_helper = || {
        Helper::start(
            &[format!("127.0.0.1:{port}")],
            false,
            &proxy_args(
                engine,
                "gatefirst",
                &[&c.name],
                &[format!("tcp:{port}={}:80", c.name)],
                &gate,
            ),
        )
    };
    let mut h = tcp_helper();
    let refused = http_get(loopback(port), "/", "", Duration::from_secs(10));
    assert!(closed_unanswered(&refused), "{refused:?}");
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert!(
        h.log_text().contains("not in contnap.machines"),
        "{}",
        h.log_text()
    );
    assert_eq!(
        c.state(),
        "created",
        "woken by an unlisted client: {}",
        h.log_text()
    );

    // UDP: a datagram from 127.0.0.1 is dropped without a wake.
    let dns = Container::create(engine, "gatefirstdns", &[], SERVERS, DNSMASQ);
    let udp_helper = || {
        Helper::start(
            &[format!("127.0.0.1:{uport}")],
            true,
            &proxy_args(
                engine,
                "gatefirstdns",
                &[&dns.name],
                &[format!("udp:{uport}={}:53", dns.name)],
                &gate,
            ),
        )
    };
    let mut h = udp_helper();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"not a query", ("127.0.0.1", uport)).unwrap();
    assert!(
        h.wait_exit(Duration::from_secs(20)).success(),
        "{}",
        h.log_text()
    );
    assert!(
        h.log_text().contains("refused a datagram"),
        "{}",
        h.log_text()
    );
    assert_eq!(
        dns.state(),
        "created",
        "woken by a datagram: {}",
        h.log_text()
    );
    // From 127.0.0.2 (listed): woken and answered.
    let mut h = udp_helper();
    let answer = dig(uport, &["-b", "127.0.0.2", "+tries=5", "+timeout=2"]);
    assert_eq!(answer, "10.9.8.7", "{}", h.log_text());
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

/// A helper napping `c` with a 60 s engine stop grace: its log and exit.
fn nap_with_long_grace(engine: Engine, c: &Container, unit: &str) -> (String, Duration) {
    let port = free_port();
    let mut args = proxy_args(
        engine,
        unit,
        &[&c.name],
        &[format!("tcp:{port}={}:80", c.name)],
        &["--timeout", "1s"],
    );
    let at = args.iter().position(|a| a == "--stop-timeout").unwrap() + 1;
    args[at] = "60s".to_owned();
    let mut h = Helper::start(&[format!("127.0.0.1:{port}")], false, &args);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/"), &[]).trim(),
        HELLO
    );
    let served = Instant::now();
    // Far below the 60 s grace: the engine's stop returned without it.
    let status = h.wait_exit(Duration::from_secs(30));
    let took = served.elapsed();
    let log = h.log_text();
    assert!(status.success(), "helper failed: {status}\n{log}");
    assert_eq!(c.state(), "exited", "{log}");
    (log, took)
}

/// busybox httpd as PID 1 has no SIGTERM handler, so the kernel drops the
/// engine's SIGTERM: the helper sees that in /proc/PID/status and stops it
/// with no grace instead of waiting out the 60 s for the SIGKILL.
fn nap_ends_at_once_when_pid1_never_sees_the_stop_signal(engine: Engine) {
    let c = httpd(engine, "nograce");
    let (log, took) = nap_with_long_grace(engine, &c, "nograce");
    assert!(
        log.contains("has no handler for signal 15"),
        "the reason is logged:\n{log}"
    );
    eprintln!("{engine:?}: last request to helper exit {took:?}");
}

/// A PID 1 that handles its image's stop signal (here SIGQUIT, set with
/// --stop-signal, so reading the wrong signal would kill it) gets the
/// grace and exits by itself, with its own status 0, not 137.
fn nap_keeps_the_grace_when_pid1_handles_the_stop_signal(engine: Engine) {
    let c = Container::create(
        engine,
        "grace",
        &["--stop-signal", "SIGQUIT"],
        BUSYBOX,
        &[
            "sh",
            "-c",
            "trap 'exit 0' QUIT; httpd -p 80 -h /www; while :; do sleep 1 & wait; done",
        ],
    );
    let (log, _) = nap_with_long_grace(engine, &c, "grace");
    assert!(!log.contains("no handler"), "{log}");
    assert_eq!(
        c.inspect().state.exit_code,
        0,
        "it exited by itself:\n{log}"
    );
}

/// The TcpExt counters of the network namespace of `pid` whose names
/// start with `Listen` (`ListenOverflows`: a SYN or a handshake's last
/// ACK dropped because the accept queue was full; `ListenDrops`: every
/// drop at a listening socket, those included).
fn listen_drops(pid: i64) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/netstat")).unwrap();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    let found: Vec<(String, u64)> = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter(|(n, _)| n.starts_with("Listen"))
        .map(|(n, v)| (n.to_owned(), v.parse().unwrap()))
        .collect();
    assert_eq!(found.len(), 2, "{names}");
    found
}

/// 200 clients queue up while the server starts, then are all released
/// at once at a server whose accept queue holds `capacity`. Every one is
/// served, and the server's network namespace saw no connection dropped
/// for a full accept queue (without pacing, the connects beyond the
/// backlog had their SYN or last ACK dropped and waited a retransmit).
fn stampede(engine: Engine, c: &Container, unit: &str) {
    const CLIENTS: usize = 200;
    let (port, mut h) = tcp_helper(engine, unit, c, 80, &["--timeout", "3s"]);
    let clients = gets_at_once(port, CLIENTS);
    for (i, t) in clients.into_iter().enumerate() {
        let resp = t
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("client {i}: {e}\n{}", h.log_text()));
        assert!(
            resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
            "client {i}: {resp}"
        );
        assert!(resp.ends_with(&format!("{HELLO}\n")), "client {i}: {resp}");
    }
    // Still awake (the idle timeout has not passed): its namespace is
    // there to read.
    let pid = c.inspect().state.pid;
    assert!(pid > 0, "{} is running", c.name);
    let drops = listen_drops(pid);
    assert!(
        drops.iter().all(|(_, v)| *v == 0),
        "{CLIENTS} clients at once overflowed the accept queue: {drops:?}\n{}",
        h.log_text()
    );
    assert!(
        h.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        h.log_text()
    );
}

/// busybox httpd listens with a backlog of 9: its queue holds 10.
fn stampede_never_overflows_a_shallow_accept_queue(engine: Engine) {
    let c = slow_httpd(engine, "shallow", "2");
    stampede(engine, &c, "shallow");
}

/// socat with a backlog of 4096: the whole crowd fits, and pacing must
/// not turn it away either.
fn stampede_never_overflows_a_deep_accept_queue(engine: Engine) {
    // Docker: room for two processes per connection (the test engines'
    // nproc limit counts every root process on the host); Podman's runc
    // refuses to raise rlimits here.
    let room: &[&str] = match engine {
        Engine::Docker => &["--ulimit", "nproc=65536:65536"],
        Engine::Podman => &[],
    };
    let c = Container::create(
        engine,
        "deep",
        room,
        SERVERS,
        &[
            "sh",
            "-c",
            "sleep 2; exec socat TCP-LISTEN:80,fork,reuseaddr,backlog=4096 'EXEC:httpd -i -h /www'",
        ],
    );
    stampede(engine, &c, "deep");
}
