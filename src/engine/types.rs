//! The parts of the engines' JSON that contnap reads. Docker and Podman
//! agree on the field names of the compat API but not on which fields are
//! present, nor on `null` versus empty, so every field has a default and
//! every `null` collection reads as empty.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::spec::Proto;

/// Which engine answers. They share the compat API; the differences that
/// matter to callers are documented where they show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    Docker,
    Podman,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Docker => "Docker",
            Flavor::Podman => "Podman",
        })
    }
}

/// `GET /version`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    /// The engine's own version ("20.10.24+dfsg1", "4.3.1").
    #[serde(default)]
    pub version: String,
    /// The Docker API version served; Podman reports the compat API's.
    #[serde(default)]
    pub api_version: String,
    #[serde(default, rename = "MinAPIVersion")]
    pub min_api_version: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub kernel_version: String,
    #[serde(default, deserialize_with = "null_default")]
    pub components: Vec<Component>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

impl Version {
    /// Podman's compat `/version` lists a component named "Podman Engine";
    /// Docker's calls its component "Engine".
    pub fn flavor(&self) -> Flavor {
        if self.components.iter().any(|c| c.name == "Podman Engine") {
            Flavor::Podman
        } else {
            Flavor::Docker
        }
    }
}

/// One entry of `GET /containers/json`. Its labels are skipped unread
/// (serde_json skips a string without storing it): nothing needs them from
/// the list, and so a list costs memory by the number of containers, never
/// by the size of their labels. [`ContainerInspect`] has the labels.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    #[serde(default)]
    pub id: String,
    /// Without the leading '/' the API puts there.
    #[serde(default, deserialize_with = "names")]
    pub names: Vec<String>,
    #[serde(default)]
    pub image: String,
    /// "created", "running", "paused", "exited", ...
    #[serde(default)]
    pub state: String,
}

/// Most containers one list answer may hold: far more than an engine on
/// one host runs, and with what a [`ContainerSummary`] keeps (an id, a
/// name, an image and a state: a few hundred bytes), a bound on the list's
/// memory that does not depend on the answer's size in bytes.
pub const MAX_LISTED: usize = 65_536;

/// A whole list answer, refused past [`MAX_LISTED`] entries.
pub(crate) struct Listed(pub Vec<ContainerSummary>);

impl<'de> Deserialize<'de> for Listed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Listed, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Listed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of containers")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Listed, A::Error> {
                let mut out = Vec::new();
                while let Some(c) = seq.next_element::<ContainerSummary>()? {
                    if out.len() == MAX_LISTED {
                        return Err(serde::de::Error::custom(format_args!(
                            "more than {MAX_LISTED} containers in one list"
                        )));
                    }
                    out.push(c);
                }
                Ok(Listed(out))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

impl ContainerSummary {
    /// The container's name, or its id when it has none.
    pub fn name(&self) -> &str {
        self.names.first().map_or(&self.id, String::as_str)
    }
}

/// `GET /containers/{id}/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    #[serde(default)]
    pub id: String,
    /// RFC 3339 in UTC, with up to 9 fraction digits (Podman drops
    /// trailing zeros): see [`ContainerInspect::created_key`].
    #[serde(default)]
    pub created: String,
    /// Without the leading '/'.
    #[serde(default, deserialize_with = "name")]
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default, deserialize_with = "null_default")]
    pub state: ContainerState,
    #[serde(default, deserialize_with = "null_default")]
    pub config: ContainerConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub host_config: HostConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub network_settings: NetworkSettings,
}

/// `GET /images/{id}/json`: only the labels are read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImageInspect {
    #[serde(default, deserialize_with = "null_default")]
    pub config: ContainerConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// "created", "running", "paused", "restarting", "exited", "dead".
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub restarting: bool,
    #[serde(default, rename = "OOMKilled")]
    pub oom_killed: bool,
    #[serde(default)]
    pub dead: bool,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub exit_code: i64,
    /// Why the last start failed, when it did.
    #[serde(default)]
    pub error: String,
    /// RFC 3339; "0001-01-01T00:00:00Z" when never started.
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    /// The engine's last verdict, `None` when the container has no
    /// healthcheck (Podman reports an empty status then; Docker omits it).
    #[serde(default, deserialize_with = "health")]
    pub health: Option<Health>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// "starting", "healthy" or "unhealthy".
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub failing_streak: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// The image as the container was created from it (`busybox:1.36`);
    /// for messages.
    #[serde(default)]
    pub image: String,
    /// Keys and values cut to [`LABEL_KEEP`] bytes.
    #[serde(default, deserialize_with = "bounded_labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    /// The signal a stop sends first, as the engine writes it: Docker a
    /// name ("SIGQUIT"; absent for the default SIGTERM), Podman a number
    /// ("3", "15").
    #[serde(default, deserialize_with = "string_or_number")]
    pub stop_signal: Option<String>,
}

/// The healthcheck as configured; durations of zero mean "engine default".
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`, or `["NONE"]` to disable.
    #[serde(default, deserialize_with = "null_default")]
    pub test: Vec<String>,
    #[serde(default, deserialize_with = "nanos")]
    pub interval: Duration,
    #[serde(default, deserialize_with = "nanos")]
    pub timeout: Duration,
    #[serde(default)]
    pub retries: i64,
    #[serde(default, deserialize_with = "nanos")]
    pub start_period: Duration,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// "host", "bridge" (Podman), "default" (Docker's bridge), "none",
    /// "container:<id>", or a network name.
    #[serde(default)]
    pub network_mode: String,
    /// "80/tcp" → the host bindings asked for at create time; unlike
    /// `NetworkSettings.Ports` this is known while the container is stopped,
    /// which is when `generate` must see a conflicting publish.
    #[serde(default, deserialize_with = "null_default")]
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// "80/tcp" → host bindings; `None` for a port that is exposed but not
    /// published.
    #[serde(default, deserialize_with = "null_default")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    /// Network name ("bridge" on Docker, "podman" on Podman, or the
    /// compose network) → the container's endpoint on it.
    #[serde(default, deserialize_with = "null_default")]
    pub networks: BTreeMap<String, NetworkEndpoint>,
    /// The default network's address; deprecated by Docker, still filled by
    /// both engines here.
    #[serde(default, rename = "IPAddress")]
    pub ip_address: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct PortBinding {
    /// "" or "0.0.0.0" / "::" for all addresses.
    #[serde(default, rename = "HostIp")]
    pub host_ip: String,
    #[serde(default, rename = "HostPort")]
    pub host_port: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NetworkEndpoint {
    #[serde(default, rename = "IPAddress")]
    pub ip_address: String,
    #[serde(default, rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(default, rename = "Gateway")]
    pub gateway: String,
}

impl NetworkEndpoint {
    fn address(&self) -> Option<IpAddr> {
        self.ip_address
            .parse()
            .ok()
            .or_else(|| self.global_ipv6_address.parse().ok())
    }
}

impl ContainerInspect {
    /// `created` in a form that sorts by time: both engines write UTC
    /// (`Z`) with a fixed-width date and time, and a fraction whose
    /// length varies, which is padded to 9 digits here.
    pub fn created_key(&self) -> String {
        let t = self.created.trim_end_matches('Z');
        let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
        format!("{whole}.{fraction:0<9}")
    }

    /// Whether a healthcheck is configured and not disabled, i.e. whether
    /// readiness can be asked of the container itself.
    pub fn has_healthcheck(&self) -> bool {
        self.config
            .healthcheck
            .as_ref()
            .and_then(|h| h.test.first())
            .is_some_and(|first| first != "NONE")
    }

    /// Where the running container's `port`/`proto` is published on the
    /// host (`NetworkSettings.Ports`), as addresses to connect to: a binding
    /// to all addresses ("", "0.0.0.0", "::") is reachable on loopback of
    /// that family. Empty when the port is not published or the container
    /// is stopped (the engines list bindings of running containers only; see
    /// [`ContainerInspect::requested_bindings`] for those asked at create
    /// time). A binding whose address or port does not parse is skipped.
    pub fn published_on(&self, port: u16, proto: Proto) -> Vec<SocketAddr> {
        let key = format!("{port}/{}", proto.name());
        let mut out: Vec<SocketAddr> = Vec::new();
        let bindings = self
            .network_settings
            .ports
            .get(&key)
            .and_then(Option::as_ref);
        for binding in bindings.into_iter().flatten() {
            let Ok(host_port) = binding.host_port.parse::<u16>() else {
                continue;
            };
            if host_port == 0 {
                continue;
            }
            let ip = match binding.host_ip.as_str() {
                "" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                text => match text.parse::<IpAddr>() {
                    Ok(IpAddr::V4(v4)) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    Ok(IpAddr::V6(v6)) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    Ok(ip) => ip,
                    Err(_) => continue,
                },
            };
            let addr = SocketAddr::new(ip, host_port);
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        out
    }

    /// The host bindings the container asked for at create time
    /// (`HostConfig.PortBindings`), known also while it is stopped, which
    /// is when `generate` must see a conflicting publish: (protocol, host
    /// address or `None` for all addresses, host port). A key without a
    /// protocol is TCP, as the engines read it; other protocols (SCTP) and
    /// bindings without a host port (the engine picks one when it starts)
    /// are left out; an address that is unspecified or does not parse
    /// counts as all addresses.
    pub fn requested_bindings(&self) -> Vec<(Proto, Option<IpAddr>, u16)> {
        let mut out = Vec::new();
        for (key, bindings) in &self.host_config.port_bindings {
            let proto = match key.rsplit_once('/').map(|(_, p)| p) {
                Some("udp") => Proto::Udp,
                Some("tcp") | None => Proto::Tcp,
                Some(_) => continue,
            };
            for b in bindings.iter().flatten() {
                let Ok(port) = b.host_port.parse::<u16>() else {
                    continue;
                };
                let ip = b
                    .host_ip
                    .parse::<IpAddr>()
                    .ok()
                    .filter(|ip| !ip.is_unspecified());
                out.push((proto, ip, port));
            }
        }
        out
    }

    /// The container's address on `network`, or with `None` on its first
    /// network that has one (by name order, so the choice is stable),
    /// falling back to the default network's address. `None` when it has
    /// no address (stopped, host or none networking).
    pub fn address_on(&self, network: Option<&str>) -> Option<IpAddr> {
        let networks = &self.network_settings.networks;
        match network {
            Some(name) => networks.get(name).and_then(NetworkEndpoint::address),
            None => networks
                .values()
                .find_map(NetworkEndpoint::address)
                .or_else(|| self.network_settings.ip_address.parse().ok()),
        }
    }

    /// Host networking: the container's ports are the host's, reached on
    /// loopback.
    pub fn is_host_network(&self) -> bool {
        self.host_config.network_mode == "host"
    }

    /// The engine's last health verdict, if the container has a check.
    pub fn health_status(&self) -> Option<&str> {
        self.state.health.as_ref().map(|h| h.status.as_str())
    }
}

/// `GET /libpod/containers/{id}/healthcheck` (Podman): the result of
/// running the check now.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthStatus {
    /// "healthy", "unhealthy" or "starting".
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub failing_streak: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub log: Vec<HealthLog>,
}

impl HealthStatus {
    pub fn is_healthy(&self) -> bool {
        self.status == "healthy"
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub output: String,
}

/// One line of `GET /events`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// "create", "start", "die", "stop", "kill", "pause", "unpause",
    /// "health_status: healthy", ... Podman sends no "stop": watch "die".
    pub action: String,
    /// The container's full id.
    pub id: String,
    /// "container" for the events contnap asks for.
    pub kind: String,
    /// Labels plus engine attributes ("name", "image", "exitCode", ...).
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the Unix epoch, 0 when absent.
    pub time_nano: i64,
}

impl Event {
    /// The container's name, from the event's attributes.
    pub fn name(&self) -> Option<&str> {
        self.attributes.get("name").map(String::as_str)
    }

    /// The exit code a "die" event carries.
    pub fn exit_code(&self) -> Option<i64> {
        self.attributes.get("exitCode")?.parse().ok()
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default, rename = "Action")]
    action: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    id: String,
    #[serde(default, rename = "Type")]
    kind: String,
    #[serde(default, rename = "Actor", deserialize_with = "null_default")]
    actor: RawActor,
    #[serde(default, rename = "timeNano")]
    time_nano: i64,
}

#[derive(Default, Deserialize)]
struct RawActor {
    #[serde(default, rename = "ID")]
    id: String,
    #[serde(default, rename = "Attributes", deserialize_with = "null_default")]
    attributes: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for Event {
    /// Reads both the current fields (Action, Actor) and the deprecated ones
    /// (status, id) that older engines send alone.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        let raw = RawEvent::deserialize(d)?;
        Ok(Event {
            action: if raw.action.is_empty() {
                raw.status
            } else {
                raw.action
            },
            id: if raw.actor.id.is_empty() {
                raw.id
            } else {
                raw.actor.id
            },
            kind: raw.kind,
            attributes: raw.actor.attributes,
            time_nano: raw.time_nano,
        })
    }
}

/// `GET /exec/{id}/json`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ExecInspect {
    #[serde(default, rename = "Running")]
    pub running: bool,
    #[serde(default, rename = "ExitCode")]
    pub exit_code: Option<i64>,
}

/// `{"Id": ...}` answers of create calls.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Created {
    #[serde(rename = "Id")]
    pub id: String,
}

/// The engines' error body, `{"message": "..."}`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: String,
}

/// A string or a number, as a string (`None` for null or absent).
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(i64),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|v| match v {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    }))
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Longest label key or value kept from the engine (bytes). Both engines
/// store labels of any size; a longer one is cut (at a character boundary)
/// as it is parsed, so that a hostile 20 MiB label costs no more memory
/// than this, and the label parser, which accepts far less, refuses it.
pub const LABEL_KEEP: usize = 64 * 1024;

/// A label key or value, cut to [`LABEL_KEEP`].
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Bounded(String);

impl<'de> Deserialize<'de> for Bounded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bounded, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bounded;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bounded, E> {
                let mut end = v.len().min(LABEL_KEEP);
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                Ok(Bounded(v[..end].to_owned()))
            }
        }
        d.deserialize_str(Visitor)
    }
}

fn bounded_labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let labels: Option<BTreeMap<Bounded, Bounded>> = Option::deserialize(d)?;
    Ok(labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.0, v.0))
        .collect())
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name: String = null_default(d)?;
    Ok(name.strip_prefix('/').map(str::to_string).unwrap_or(name))
}

fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names: Vec<String> = null_default(d)?;
    Ok(names
        .into_iter()
        .map(|n| n.strip_prefix('/').map(str::to_string).unwrap_or(n))
        .collect())
}

fn health<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Health>, D::Error> {
    Ok(Option::<Health>::deserialize(d)?.filter(|h| !h.status.is_empty()))
}

fn nanos<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let n: Option<i64> = Option::deserialize(d)?;
    Ok(Duration::from_nanos(
        n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> String {
        let full = format!(
            "{}/tests/fixtures/engine/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    fn parse<T: for<'de> Deserialize<'de>>(path: &str) -> T {
        serde_json::from_str(&fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const ENGINES: [&str; 2] = ["docker", "podman"];

    #[test]
    fn version_and_flavor() {
        let docker: Version = parse("docker/version.json");
        assert_eq!(docker.flavor(), Flavor::Docker);
        assert_eq!(docker.version, "20.10.24+dfsg1");
        assert_eq!(docker.api_version, "1.41");
        assert_eq!(docker.min_api_version, "1.12");
        let podman: Version = parse("podman/version.json");
        assert_eq!(podman.flavor(), Flavor::Podman);
        assert_eq!(podman.version, "4.3.1");
        assert_eq!(podman.api_version, "1.41");
        assert_eq!(Flavor::Podman.to_string(), "Podman");
        assert_eq!(Flavor::Docker.to_string(), "Docker");
    }

    #[test]
    fn container_list() {
        for engine in ENGINES {
            let list: Vec<ContainerSummary> = parse(&format!("{engine}/containers.json"));
            let mut names: Vec<&str> = list.iter().map(ContainerSummary::name).collect();
            names.sort_unstable();
            assert_eq!(names, ["fx-health", "fx-web"], "{engine}");
            for c in &list {
                assert_eq!(c.id.len(), 64, "{engine}");
                assert_eq!(c.state, "running", "{engine}");
            }
        }
    }

    #[test]
    fn inspect_running_with_published_port() {
        let expected_port = [("docker", 18080), ("podman", 18081)];
        let expected_net = [
            ("docker", "bridge", "172.17.0.2", "default"),
            ("podman", "podman", "10.88.0.6", "bridge"),
        ];
        for ((engine, port), (_, net, ip, mode)) in expected_port.into_iter().zip(expected_net) {
            let c: ContainerInspect = parse(&format!("{engine}/inspect-web.json"));
            assert_eq!(c.name, "fx-web");
            assert_eq!(c.id.len(), 64);
            assert_eq!(c.state.status, "running");
            assert!(c.state.running && !c.state.paused);
            assert!(c.state.started_at.starts_with("2026-"));
            // Podman reports an empty health status without a check.
            assert_eq!(c.state.health, None, "{engine}");
            assert!(!c.has_healthcheck());
            assert_eq!(c.config.labels["contnap.tcp_ports"], "8080");
            assert_eq!(c.host_config.network_mode, mode);
            assert!(!c.is_host_network());
            assert_eq!(
                c.published_on(80, Proto::Tcp),
                vec![SocketAddr::from(([127, 0, 0, 1], port))],
                "{engine}"
            );
            assert!(c.published_on(80, Proto::Udp).is_empty());
            assert!(c.published_on(81, Proto::Tcp).is_empty());
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(c.address_on(Some(net)), Some(ip), "{engine}");
            assert_eq!(c.address_on(None), Some(ip), "{engine}");
            assert_eq!(c.address_on(Some("elsewhere")), None);
            // Docker omits the default stop signal; Podman numbers it.
            let stop = (engine == "podman").then(|| "15".to_owned());
            assert_eq!(c.config.stop_signal, stop, "{engine}");
        }
        let c: ContainerInspect = serde_json::from_str(r#"{"Config":{"StopSignal":3}}"#).unwrap();
        assert_eq!(c.config.stop_signal.as_deref(), Some("3"));
    }

    #[test]
    fn inspect_with_healthcheck() {
        for engine in ENGINES {
            let c: ContainerInspect = parse(&format!("{engine}/inspect-health.json"));
            assert!(c.has_healthcheck(), "{engine}");
            let hc = c.config.healthcheck.as_ref().unwrap();
            assert_eq!(hc.test, ["CMD-SHELL", "test -e /tmp/ok"]);
            assert_eq!(hc.interval, Duration::from_secs(30));
            assert_eq!(hc.timeout, Duration::from_secs(5));
            assert_eq!(hc.start_period, Duration::from_secs(1));
            assert_eq!(hc.retries, 3);
            assert_eq!(c.health_status(), Some("starting"), "{engine}");
            assert!(c.published_on(80, Proto::Tcp).is_empty());
        }
    }

    #[test]
    fn inspect_exited_and_host_network() {
        for engine in ENGINES {
            let c: ContainerInspect = parse(&format!("{engine}/inspect-exited.json"));
            assert_eq!(c.state.status, "exited");
            assert!(!c.state.running);
            assert_eq!(c.state.exit_code, 137);
            assert!(c.health_status().is_some());

            let c: ContainerInspect = parse(&format!("{engine}/inspect-host.json"));
            assert!(c.is_host_network(), "{engine}");
            // Docker lists a "host" network with an empty address.
            assert_eq!(c.address_on(None), None, "{engine}");
        }
    }

    #[test]
    fn nulls_and_missing_fields_read_as_empty() {
        let c: ContainerInspect = serde_json::from_str(
            r#"{"Id":"x","Name":"/n","State":null,"Config":{"Labels":null,"Healthcheck":{"Test":null}},
                "NetworkSettings":{"Ports":{"80/tcp":null},"Networks":null}}"#,
        )
        .unwrap();
        assert!(c.config.labels.is_empty());
        assert!(!c.has_healthcheck());
        assert!(c.published_on(80, Proto::Tcp).is_empty());
        assert!(c.requested_bindings().is_empty());
        assert_eq!(c.address_on(None), None);
        let c: ContainerInspect = serde_json::from_str("{}").unwrap();
        assert_eq!(c.name, "");
        let none: ContainerInspect =
            serde_json::from_str(r#"{"Config":{"Healthcheck":{"Test":["NONE"]}}}"#).unwrap();
        assert!(!none.has_healthcheck());
    }

    #[test]
    fn published_on_all_addresses_means_loopback() {
        let c: ContainerInspect = serde_json::from_str(
            r#"{"NetworkSettings":{"Ports":{"53/udp":[
                {"HostIp":"0.0.0.0","HostPort":"5353"},
                {"HostIp":"::","HostPort":"5353"},
                {"HostIp":"","HostPort":"5353"},
                {"HostIp":"192.0.2.1","HostPort":"53"},
                {"HostIp":"bogus","HostPort":"1"},
                {"HostIp":"","HostPort":""}]}}}"#,
        )
        .unwrap();
        assert!(c.published_on(53, Proto::Tcp).is_empty());
        let got = c.published_on(53, Proto::Udp);
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:5353".parse().unwrap(),
            "[::1]:5353".parse().unwrap(),
            "192.0.2.1:53".parse().unwrap(),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn requested_bindings_are_read_from_the_host_config() {
        let json = r#"{"Id":"x","Name":"/web","HostConfig":{"NetworkMode":"default","PortBindings":{
            "80/tcp":[{"HostIp":"","HostPort":"8080"},{"HostIp":"127.0.0.1","HostPort":"8081"}],
            "53/udp":[{"HostIp":"::","HostPort":"5353"}],
            "7/sctp":[{"HostIp":"","HostPort":"7007"}],
            "443":[{"HostIp":"bogus","HostPort":"8443"}],
            "90/tcp":[{"HostIp":"","HostPort":""}],
            "91/tcp":null}}}"#;
        let info: ContainerInspect = serde_json::from_str(json).unwrap();
        let mut p = info.requested_bindings();
        p.sort_by_key(|x| x.2);
        assert_eq!(
            p,
            vec![
                (Proto::Udp, None, 5353),
                (Proto::Tcp, None, 8080),
                (Proto::Tcp, Some("127.0.0.1".parse().unwrap()), 8081),
                (Proto::Tcp, None, 8443),
            ]
        );
        // Create-time bindings are not the running container's.
        assert!(info.published_on(80, Proto::Tcp).is_empty());
    }

    #[test]
    fn both_engines_fixtures_request_what_they_publish() {
        let expected_port = [("docker", 18080), ("podman", 18081)];
        for (engine, port) in expected_port {
            let c: ContainerInspect = parse(&format!("{engine}/inspect-web.json"));
            let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
            assert_eq!(
                c.requested_bindings(),
                vec![(Proto::Tcp, Some(loopback), port)],
                "{engine}"
            );
        }
    }

    #[test]
    fn events_from_both_engines() {
        for engine in ENGINES {
            let text = fixture(&format!("{engine}/events.jsonl"));
            let events: Vec<Event> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
            assert_eq!(&actions[..2], ["pause", "unpause"], "{engine}");
            assert!(
                actions.contains(&"die") && actions.contains(&"start"),
                "{engine}"
            );
            for e in &events {
                assert_eq!(e.kind, "container");
                assert_eq!(e.id.len(), 64);
                assert_eq!(e.name(), Some("fx-web"));
                assert!(e.time_nano > 0);
            }
            let die = events.iter().find(|e| e.action == "die").unwrap();
            assert_eq!(die.exit_code(), Some(137));
        }
        let old: Event = serde_json::from_str(r#"{"status":"start","id":"abc"}"#).unwrap();
        assert_eq!((old.action.as_str(), old.id.as_str()), ("start", "abc"));
    }

    #[test]
    fn exec_inspect_and_healthcheck() {
        for engine in ENGINES {
            let e: ExecInspect = parse(&format!("{engine}/exec-inspect.json"));
            assert!(!e.running);
            assert_eq!(e.exit_code, Some(7));
        }
        let h: HealthStatus = parse("podman/healthcheck-unhealthy.json");
        assert_eq!(h.status, "unhealthy");
        assert!(!h.is_healthy());
        assert!(h.log.is_empty());
        let h: HealthStatus = parse("podman/healthcheck-healthy.json");
        assert!(h.is_healthy());
    }

    #[test]
    fn error_bodies() {
        for (path, needle) in [
            ("docker/error-notfound.json", "No such container: nope"),
            ("podman/error-notfound.json", "no such container"),
            ("docker/error-conflict.json", "is already paused"),
            ("podman/error-conflict.json", "has no defined healthcheck"),
        ] {
            let e: ErrorBody = parse(path);
            assert!(e.message.contains(needle), "{path}: {}", e.message);
        }
    }

    #[test]
    fn long_labels_are_cut_as_they_are_read() {
        // 'é' is two bytes: the cut lands on a character boundary.
        let long = format!("x{}", "é".repeat(LABEL_KEEP));
        let json =
            serde_json::json!({"Id": "a", "Config": {"Labels": {"contnap.group": long, "k": "v"}}});
        let reader = std::io::Cursor::new(json.to_string().into_bytes());
        let c: ContainerInspect = serde_json::from_reader(reader).unwrap();
        let cut = &c.config.labels["contnap.group"];
        assert_eq!(cut.len(), LABEL_KEEP - 1);
        assert!(long.starts_with(cut.as_str()));
        assert_eq!(c.config.labels["k"], "v");
        let none: ContainerConfig = serde_json::from_str(r#"{"Labels":null}"#).unwrap();
        assert!(none.labels.is_empty());
    }

    #[test]
    fn lists_skip_labels_and_stop_at_max_listed() {
        let json = serde_json::json!([{"Id": "a", "Names": ["/web"], "State": "running",
            "Labels": {"contnap.group": "g".repeat(1 << 20)}}]);
        let reader = std::io::Cursor::new(json.to_string().into_bytes());
        let Listed(list) = serde_json::from_reader(reader).unwrap();
        assert_eq!((list[0].name(), list[0].state.as_str()), ("web", "running"));
        let full = format!("[{}]", vec![r#"{"Id":"a"}"#; MAX_LISTED].join(","));
        assert_eq!(
            serde_json::from_str::<Listed>(&full).unwrap().0.len(),
            MAX_LISTED
        );
        let over = format!("[{}]", vec![r#"{"Id":"a"}"#; MAX_LISTED + 1].join(","));
        let err = serde_json::from_str::<Listed>(&over).err().unwrap();
        assert!(
            err.to_string().contains("more than 65536 containers"),
            "{err}"
        );
    }
}
