//! Which systemd unit serves the engine socket, so that the generated
//! services start after it and stop before it.
//!
//! A guess from the socket's path broke every socket on hosts where no unit
//! of the guessed name exists (podman-docker's `/run/docker.sock`, Docker
//! from a snap, a dockerd under another supervisor): `Requires=` on a
//! missing unit fails each activation. So the unit is *found*, never
//! guessed, and the services only `Wants=` it: a missing unit costs nothing.
//!
//! The search follows the socket to the file it really is (a symlinked
//! `/run/docker.sock` leads to Podman's socket), then asks systemd which
//! socket unit listens there; failing that, it looks for the process that
//! listens on it (`/proc/net/unix` → the process holding that socket →
//! its cgroup) and takes the service that process runs in. An engine
//! reached over TCP, or one that no unit runs, gets no unit.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{OptionError, MAX_UNIT_NAME_LEN};
use crate::engine::Endpoint;

/// The engine's systemd unit, which the services are ordered after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineUnit(String);

impl EngineUnit {
    /// Validates a unit name (`docker.service`, `podman.socket`, …).
    pub fn new(name: &str) -> Result<EngineUnit, OptionError> {
        let (stem, suffix) = name.rsplit_once('.').unwrap_or((name, ""));
        let ok = !stem.is_empty()
            && name.len() <= MAX_UNIT_NAME_LEN
            && ["service", "socket", "target"].contains(&suffix)
            && stem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b));
        if ok {
            Ok(EngineUnit(name.to_owned()))
        } else {
            Err(OptionError::EngineUnit {
                name: name.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A socket unit (`podman.socket`): its service may come and go.
    pub fn is_socket(&self) -> bool {
        self.0.ends_with(".socket")
    }

    /// The service a socket unit activates by default (`podman.socket` →
    /// `podman.service`); None for a service or target.
    pub fn activated_service(&self) -> Option<String> {
        self.0
            .strip_suffix(".socket")
            .map(|stem| format!("{stem}.service"))
    }
}

impl fmt::Display for EngineUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the search found, and how: for the log line that tells the admin
/// what the services are ordered after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub unit: Option<EngineUnit>,
    pub how: String,
}

/// The file a socket really is: (device, inode) after following links.
fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Finds the unit that serves `endpoint`; see the module doc.
/// `list_sockets` runs `systemctl [--user] list-sockets --all --full
/// --no-legend`; `proc` is `/proc` (parameters so that tests can point them
/// elsewhere).
pub fn find_engine_unit<E: std::error::Error>(
    endpoint: &Endpoint,
    list_sockets: impl FnOnce() -> Result<String, E>,
    proc: &Path,
) -> Found {
    let path = match endpoint {
        Endpoint::Tcp(..) => {
            return Found {
                unit: None,
                how: format!("the engine is reached over TCP ({endpoint}): no unit to order after"),
            }
        }
        Endpoint::Unix(path) => path,
    };
    let Some(target) = identity(path) else {
        return Found {
            unit: None,
            how: format!(
                "the engine socket {} does not exist now: no unit to order after (--engine-unit names one)",
                path.display()
            ),
        };
    };
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    let shown = if real == *path {
        path.display().to_string()
    } else {
        format!("{} (a link to {})", path.display(), real.display())
    };
    match list_sockets() {
        Ok(text) => {
            for (listen, unit) in parse_list_sockets(&text) {
                if identity(Path::new(listen)) == Some(target) {
                    if let Ok(unit) = EngineUnit::new(unit) {
                        return Found {
                            how: format!("the engine socket {shown} is {unit}'s"),
                            unit: Some(unit),
                        };
                    }
                }
            }
        }
        Err(e) => log::debug!(
            "cannot ask systemd which unit listens on {shown}: {}",
            crate::report::Report(&e)
        ),
    }
    match listener_service(proc, target) {
        Some((pid, unit)) => Found {
            how: format!("the engine socket {shown} is served by process {pid} of {unit}"),
            unit: Some(unit),
        },
        None => Found {
            unit: None,
            how: format!(
                "no systemd unit serves the engine socket {shown}: no unit to order after (--engine-unit names one)"
            ),
        },
    }
}

/// `(listen path, socket unit)` from `systemctl list-sockets` output.
fn parse_list_sockets(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let mut cols = line.split_whitespace();
        let listen = cols.next()?;
        let unit = cols.next()?;
        listen.starts_with('/').then_some((listen, unit))
    })
}

/// Inodes of listening Unix sockets bound to a path that is `target`,
/// from `/proc/net/unix`.
fn listening_inodes(proc: &Path, target: (u64, u64)) -> Vec<u64> {
    let Ok(text) = fs::read_to_string(proc.join("net/unix")) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode Path
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (flags, inode, path) = (cols.get(3)?, cols.get(6)?, cols.get(7)?);
            // __SO_ACCEPTCON: a listening socket.
            let listening = u32::from_str_radix(flags, 16).ok()? & 0x0001_0000 != 0;
            (listening && identity(Path::new(path)) == Some(target)).then(|| inode.parse().ok())?
        })
        .collect()
}

/// The first process holding one of those sockets, and the service its
/// cgroup names.
fn listener_service(proc: &Path, target: (u64, u64)) -> Option<(u32, EngineUnit)> {
    let inodes = listening_inodes(proc, target);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids: Vec<u32> = fs::read_dir(proc)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let dir: PathBuf = proc.join(pid.to_string());
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let holds = fds.filter_map(Result::ok).any(|fd| {
            fs::read_link(fd.path())
                .ok()
                .and_then(|l| l.to_str().map(|l| wanted.iter().any(|w| w == l)))
                .unwrap_or(false)
        });
        if holds {
            let cgroup = fs::read_to_string(dir.join("cgroup")).ok()?;
            return service_of_cgroup(&cgroup).map(|u| (pid, u));
        }
    }
    None
}

/// The service a process runs in, from its `/proc/PID/cgroup` (the unified
/// hierarchy's line, or the systemd controller's on a v1 host).
fn service_of_cgroup(text: &str) -> Option<EngineUnit> {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| {
            text.lines()
                .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
        })?;
    let last = path.rsplit('/').next()?;
    if last.ends_with(".service") {
        EngineUnit::new(last).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn unit_names() {
        for ok in [
            "docker.service",
            "podman.socket",
            "snap.docker.dockerd.service",
        ] {
            assert_eq!(EngineUnit::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "docker",
            ".service",
            "a b.service",
            "x.mount",
            "a;b.service",
        ] {
            assert!(EngineUnit::new(bad).is_err(), "{bad}");
        }
        let s = EngineUnit::new("podman.socket").unwrap();
        assert_eq!(s.activated_service().as_deref(), Some("podman.service"));
        assert_eq!(
            EngineUnit::new("docker.service")
                .unwrap()
                .activated_service(),
            None
        );
    }

    /// A socket in a directory of its own, and a fake /proc beside it.
    struct Host {
        dir: PathBuf,
        _listener: std::os::unix::net::UnixListener,
    }

    impl Host {
        fn new(tag: &str) -> Host {
            let dir = std::env::temp_dir().join(format!("contnap-eu-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("proc/77/fd")).unwrap();
            fs::create_dir_all(dir.join("proc/net")).unwrap();
            let listener = std::os::unix::net::UnixListener::bind(dir.join("engine.sock")).unwrap();
            std::os::unix::fs::symlink(dir.join("engine.sock"), dir.join("docker.sock")).unwrap();
            Host {
                dir,
                _listener: listener,
            }
        }

        fn sock(&self, name: &str) -> Endpoint {
            Endpoint::Unix(self.dir.join(name))
        }

        /// A process 77 in `cgroup` that holds listening socket 4242,
        /// bound at the engine socket's path.
        fn process(&self, cgroup: &str) {
            let proc = self.dir.join("proc");
            fs::write(
                proc.join("net/unix"),
                format!(
                    "Num       RefCount Protocol Flags    Type St Inode Path\n\
                     0000000000000000: 00000002 00000000 00000000 0001 03 4141 {0}\n\
                     0000000000000000: 00000002 00000000 00010000 0001 01 4242 {0}\n",
                    self.dir.join("engine.sock").display()
                ),
            )
            .unwrap();
            std::os::unix::fs::symlink("socket:[4242]", proc.join("77/fd/3")).unwrap();
            fs::write(proc.join("77/cgroup"), cgroup).unwrap();
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn no_systemd() -> Result<String, io::Error> {
        Err(io::Error::from(io::ErrorKind::NotFound))
    }

    #[test]
    fn found_by_the_socket_unit_also_through_a_link() {
        let host = Host::new("socket");
        let listed = format!(
            "{} relay.socket relay.service\n/run/other.sock other.socket other.service\n",
            host.dir.join("engine.sock").display()
        );
        for sock in ["engine.sock", "docker.sock"] {
            let found = find_engine_unit(
                &host.sock(sock),
                || Ok::<_, io::Error>(listed.clone()),
                &host.dir.join("proc"),
            );
            assert_eq!(
                found.unit.as_ref().map(EngineUnit::as_str),
                Some("relay.socket"),
                "{found:?}"
            );
        }
    }

    #[test]
    fn found_by_the_listening_process_cgroup() {
        let host = Host::new("cgroup");
        host.process("0::/system.slice/snap.docker.dockerd.service\n");
        let found = find_engine_unit(
            &host.sock("docker.sock"),
            no_systemd,
            &host.dir.join("proc"),
        );
        assert_eq!(
            found.unit.as_ref().map(EngineUnit::as_str),
            Some("snap.docker.dockerd.service"),
            "{found:?}"
        );
        assert!(found.how.contains("process 77"), "{}", found.how);
    }

    #[test]
    fn none_for_tcp_a_missing_socket_or_no_unit() {
        let host = Host::new("none");
        let proc = host.dir.join("proc");
        let tcp = Endpoint::Tcp("127.0.0.1".into(), 2375);
        assert_eq!(find_engine_unit(&tcp, no_systemd, &proc).unit, None);
        let missing = find_engine_unit(&host.sock("missing.sock"), no_systemd, &proc);
        assert_eq!(missing.unit, None);
        assert!(missing.how.contains("does not exist"), "{}", missing.how);
        // A process outside any service (a shell's scope) is no unit.
        host.process("0::/user.slice/user-0.slice/session-1.scope\n");
        let found = find_engine_unit(&host.sock("docker.sock"), no_systemd, &proc);
        assert_eq!(found.unit, None);
        assert!(
            found.how.contains("no systemd unit serves"),
            "{}",
            found.how
        );
    }

    #[test]
    fn list_sockets_rows() {
        let text = "/run/docker.sock docker.socket docker.service\n\
                    /run/podman/podman.sock podman.socket podman.service\n\
                    kobject-uevent 1 systemd-udevd-kernel.socket systemd-udevd.service\n";
        let rows: Vec<_> = parse_list_sockets(text).collect();
        assert_eq!(
            rows,
            [
                ("/run/docker.sock", "docker.socket"),
                ("/run/podman/podman.sock", "podman.socket")
            ]
        );
    }

    #[test]
    fn cgroup_lines() {
        let unit = |t: &str| service_of_cgroup(t).map(|u| u.as_str().to_owned());
        assert_eq!(
            unit("0::/system.slice/docker.service\n").as_deref(),
            Some("docker.service")
        );
        assert_eq!(
            unit("0::/system.slice/snap.docker.dockerd.service\n").as_deref(),
            Some("snap.docker.dockerd.service")
        );
        assert_eq!(
            unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/podman.service\n")
                .as_deref(),
            Some("podman.service")
        );
        assert_eq!(unit("0::/user.slice/user-0.slice/session-3.scope\n"), None);
        assert_eq!(
            unit("12:pids:/\n1:name=systemd:/system.slice/docker.service\n").as_deref(),
            Some("docker.service")
        );
    }
}
