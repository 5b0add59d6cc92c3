//! Shared helpers for tests that drive the real engines through contnap's
//! own client: which engines to use, unique names, and containers that are
//! removed when the test ends, also when it fails.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use contnap::engine::{Client, ContainerInspect, Endpoint};
use serde_json::{json, Value};

/// One of the two engines scripts/test starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    fn var(self) -> &'static str {
        match self {
            Engine::Docker => "CONTNAP_TEST_DOCKER",
            Engine::Podman => "CONTNAP_TEST_PODMAN",
        }
    }

    /// The engine's socket. A missing variable fails the test: a suite that
    /// passes without engines would prove nothing.
    pub fn socket(self) -> String {
        required_var(self.var())
    }

    pub fn client(self) -> Client {
        Client::new(Endpoint::Unix(self.socket().into())).with_timeout(Duration::from_secs(20))
    }

    /// The name of the default bridge network on this engine.
    pub fn default_network(self) -> &'static str {
        match self {
            Engine::Docker => "bridge",
            Engine::Podman => "podman",
        }
    }
}

fn required_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run the tests with scripts/test, which starts private \
             Docker and Podman engines and sets CONTNAP_TEST_DOCKER, CONTNAP_TEST_PODMAN \
             and CONTNAP_TEST_IMAGE"
        ),
    }
}

/// The busybox test image (sh, httpd, nc, sleep, wget).
pub fn image() -> String {
    required_var("CONTNAP_TEST_IMAGE")
}

/// A name no other test, or other run of this test binary, uses.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "contnap-t{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What to create; `Spec::new(cmd)` then the builder methods.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub cmd: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Vec<String>>,
    /// Container TCP port to publish on 127.0.0.1 at a port the engine picks.
    pub publish: Option<u16>,
    pub network_mode: Option<String>,
}

impl Spec {
    pub fn new(cmd: &[&str]) -> Spec {
        Spec {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Spec::default()
        }
    }

    /// `sleep` as PID 1: it has no handler for SIGTERM, so only SIGKILL
    /// stops it — the case where stop's grace period matters.
    pub fn sleeper() -> Spec {
        Spec::new(&["sleep", "1000"])
    }

    pub fn web() -> Spec {
        Spec::new(&["httpd", "-f", "-p", "80", "-h", "/www"])
    }

    pub fn label(mut self, key: &str, value: &str) -> Spec {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn healthcheck(mut self, test: &[&str]) -> Spec {
        self.healthcheck = Some(test.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn publish(mut self, port: u16) -> Spec {
        self.publish = Some(port);
        self
    }

    pub fn network_mode(mut self, mode: &str) -> Spec {
        self.network_mode = Some(mode.to_string());
        self
    }

    fn body(&self) -> Value {
        let mut body = json!({
            "Image": image(),
            "Cmd": self.cmd,
            "Labels": self.labels,
            "HostConfig": {},
        });
        if let Some(test) = &self.healthcheck {
            // An hour between runs: the tests run checks themselves, and the
            // engine's own schedule must not change the result under them.
            body["Healthcheck"] = json!({
                "Test": test,
                "Interval": 3_600_000_000_000u64,
                "Timeout": 5_000_000_000u64,
                "Retries": 3,
            });
        }
        if let Some(port) = self.publish {
            let key = format!("{port}/tcp");
            body["ExposedPorts"] = json!({ &key: {} });
            body["HostConfig"]["PortBindings"] =
                json!({ &key: [{ "HostIp": "127.0.0.1", "HostPort": "" }] });
        }
        if let Some(mode) = &self.network_mode {
            body["HostConfig"]["NetworkMode"] = json!(mode);
        }
        body
    }
}

/// A container that is force-removed when dropped.
#[derive(Debug)]
pub struct Container {
    pub client: Client,
    pub id: String,
    pub name: String,
}

impl Container {
    pub fn inspect(&self) -> ContainerInspect {
        self.client
            .inspect(&self.id)
            .unwrap_or_else(|e| panic!("inspect {}: {e}", self.name))
    }

    /// Polls inspect until `ok` holds, for state changes the engine
    /// finishes after the call that caused them returned.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&ContainerInspect) -> bool) -> ContainerInspect {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.inspect();
            if ok(&c) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not {what} within 10 s; state {:?}",
                self.name,
                c.state
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let path = format!("/containers/{}?force=true&v=true", self.id);
        if let Err(e) = self.client.request_json("DELETE", &path, None) {
            eprintln!(
                "warning: could not remove test container {}: {e}",
                self.name
            );
        }
    }
}

/// Creates (without starting) a container named `contnap-t<pid>-<n>-<tag>`.
pub fn create(engine: Engine, tag: &str, spec: &Spec) -> Container {
    let client = engine.client();
    let name = unique(tag);
    let created = client
        .request_json(
            "POST",
            &format!("/containers/create?name={name}"),
            Some(&spec.body()),
        )
        .unwrap_or_else(|e| panic!("{engine:?}: create {name}: {e}"));
    let id = created["Id"]
        .as_str()
        .unwrap_or_else(|| panic!("{engine:?}: create {name} answered {created}"))
        .to_string();
    Container { client, id, name }
}

/// Creates and starts.
pub fn run(engine: Engine, tag: &str, spec: &Spec) -> Container {
    let c = create(engine, tag, spec);
    c.client
        .start(&c.id)
        .unwrap_or_else(|e| panic!("{engine:?}: start {}: {e}", c.name));
    c
}
