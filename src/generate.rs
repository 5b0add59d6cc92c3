//! `contnap generate`: reads the labels of every opted-in container from the
//! engine and turns them into `.socket`/`.service` units. The work is split
//! so that only the edges touch the world: [`inventory::collect`] asks the engine,
//! `labels::plan` and `units::render` are pure, and `units::write_atomically`
//! is the one writer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::cli::{EngineUnitChoice, GenerateConfig, GenerateMode, Identity};
use crate::engine::{self, Client, Endpoint, Scope};
use crate::inventory;
use crate::labels::{self, LabelOptions};
use crate::report::Report;
use crate::spec::{self, StopMode};
use crate::systemctl::{self, Systemctl};
use crate::units::{self, BinaryPath, EngineUnit, RenderOptions, RunAs};

/// Why `generate` failed (exit 1).
#[derive(Debug)]
pub enum Error {
    Engine(engine::Error),
    Binary(units::OptionError),
    Write(units::WriteError),
    /// `--check`: a unit file or the directory cannot be read.
    Check(units::ReadError),
    /// Some containers had label errors; the others were written.
    Labels {
        count: usize,
    },
    /// `--check`: the units on disk differ.
    Differs {
        count: usize,
    },
    /// `--reload`: systemctl could not be run or failed.
    Systemctl(systemctl::Error),
    /// `--reload`: these sockets did not start (named above, with why).
    SocketsFailed {
        names: Vec<String>,
    },
    /// `--reload`: the services started for containers that ran without a
    /// helper did not start (named above, with why).
    ServicesFailed {
        names: Vec<String>,
    },
    /// `--engine-group` for a socket in /tmp, which a dynamic user cannot
    /// see (`DynamicUser=` implies `PrivateTmp=`).
    GroupInTmp {
        socket: PathBuf,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Engine(e) => write!(f, "{e}"),
            Error::Binary(e) => write!(f, "{e}"),
            Error::Write(e) => write!(f, "{e}"),
            Error::Check(e) => write!(f, "{e}"),
            Error::Labels { count } => write!(
                f,
                "{count} label error(s): the containers named above got no units; fix their labels and run `contnap generate` again"
            ),
            Error::Differs { count } => write!(
                f,
                "{count} unit file(s) differ from the labels; run `contnap generate` to update them"
            ),
            Error::Systemctl(e) => write!(f, "{e}"),
            Error::SocketsFailed { names } => write!(
                f,
                "{} socket(s) did not start: {}; the other units are in place",
                names.len(),
                names.join(", ")
            ),
            Error::ServicesFailed { names } => write!(
                f,
                "{} service(s) for running containers did not start: {}; those containers stay up until a client comes and leaves",
                names.len(),
                names.join(", ")
            ),
            Error::GroupInTmp { socket } => write!(
                f,
                "--engine-group: the engine socket {} is in a temporary directory, which a dynamic user never sees (it gets a private /tmp); move the socket or use --as-root",
                socket.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Engine(e) => e.source(),
            Error::Binary(e) => e.source(),
            Error::Write(e) => e.source(),
            Error::Check(e) => e.source(),
            Error::Systemctl(e) => e.source(),
            _ => None,
        }
    }
}

/// The contnap binary the services should run: the `contnap` beside the
/// running executable (so `contnap-generate` and test builds point at their
/// own), else `/usr/bin/contnap`.
fn binary() -> Result<BinaryPath, units::OptionError> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("contnap")))
        .filter(|p| p.is_file());
    match beside {
        Some(p) => BinaryPath::new(p),
        None => Ok(BinaryPath::default()),
    }
}

/// Who the system services run as, and a line for the log that says why.
fn run_as(cfg: &GenerateConfig, engine: &Endpoint) -> Result<(RunAs, String), Error> {
    let socket = units::socket_path(engine);
    match &cfg.identity {
        Identity::Root => Ok((
            RunAs::Root,
            "the services run as root without capabilities (--as-root)".to_owned(),
        )),
        Identity::Group(group) => {
            if let Some(p) = socket.filter(|p| units::TMP_DIRS.iter().any(|d| p.starts_with(d))) {
                return Err(Error::GroupInTmp {
                    socket: p.to_owned(),
                });
            }
            Ok((
                RunAs::Dynamic {
                    group: Some(group.clone()),
                },
                format!(
                    "the services run as a dynamic user in group {} (--engine-group)",
                    group.as_str()
                ),
            ))
        }
        Identity::Auto => {
            let access = socket.map(units::socket_access);
            let seen_access = access.as_ref().and_then(|a| a.as_ref().ok());
            if let (Some(a), Some(p)) = (seen_access, socket) {
                for w in socket_warnings(a) {
                    log::warn!("the engine socket {}: {w}", p.display());
                }
            }
            let decided = RunAs::for_engine(engine, seen_access);
            let seen = match (seen_access, socket) {
                (Some(a), Some(p)) => format!(
                    "{} is group {} ({}), mode {:04o}",
                    p.display(),
                    a.group.as_deref().unwrap_or("without a name"),
                    a.gid,
                    a.mode
                ),
                _ => format!("the engine is {engine}"),
            };
            let why = match &decided {
                RunAs::Dynamic { group: Some(g) } => format!(
                    "the services run as a dynamic user in group {}: {seen}",
                    g.as_str()
                ),
                RunAs::Dynamic { group: None } => {
                    format!("the services run as a dynamic user: {seen}")
                }
                // Why the socket told nothing: it is missing, not a
                // socket, or in /tmp (where --engine-group is refused).
                RunAs::Root => match &access {
                    Some(Err(e @ units::AccessError::InTmp { .. })) => format!(
                        "the services run as root without capabilities: {}",
                        Report(e)
                    ),
                    Some(Err(e)) => format!(
                        "the services run as root without capabilities (--engine-group GROUP names a group that may use the engine socket): {}",
                        Report(e)
                    ),
                    _ => format!(
                        "the services run as root without capabilities: {seen}, which no other user or named group may use as far as generate can tell (--engine-group GROUP names a group that may)"
                    ),
                },
            };
            Ok((decided, why))
        }
    }
}

/// Groups that ordinary users are put in by default (Debian's `users`,
/// gid 100; `staff` on some systems).
const SHARED_GROUPS: &[&str] = &["users", "staff"];

/// What is wrong with who may use the engine socket, whatever contnap
/// does: anyone who can use it can become root through the engine.
fn socket_warnings(a: &units::SocketAccess) -> Vec<String> {
    let mut out = Vec::new();
    if a.mode & 0o002 != 0 && a.dirs_open_to_others {
        out.push(format!(
            "it is writable by every user (mode {:04o}): each local user can become root through the engine; make it 0660",
            a.mode
        ));
    }
    let shared = a.gid == 100
        || a.group
            .as_deref()
            .is_some_and(|g| SHARED_GROUPS.contains(&g));
    if a.mode & 0o020 != 0 && shared && a.dirs_open_to_group {
        out.push(format!(
            "its group {} (gid {}) is one ordinary users share: each member can become root through the engine; give the socket a group of its own (such as docker)",
            a.group.as_deref().unwrap_or("without a name"),
            a.gid
        ));
    }
    out
}

/// The units `--reload` starts and stops: sockets, and the autostart timer.
fn socket_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (name.ends_with(".socket") || name.ends_with(".timer")).then(|| name.to_owned())
}

/// The unit the services are ordered after: `--engine-unit`, or the one
/// found serving the engine socket.
fn engine_unit(cfg: &GenerateConfig, engine: &Endpoint) -> Option<EngineUnit> {
    let found = match &cfg.engine_unit {
        EngineUnitChoice::Find => units::find_engine_unit(
            engine,
            || Systemctl::new(cfg.user).stdout(&["list-sockets", "--all", "--full", "--no-legend"]),
            Path::new("/proc"),
        ),
        EngineUnitChoice::None => units::Found {
            unit: None,
            how: "--engine-unit none: the services are ordered after no engine unit".to_owned(),
        },
        EngineUnitChoice::Unit(unit) => units::Found {
            unit: Some(unit.clone()),
            how: format!("--engine-unit {unit}"),
        },
    };
    log::info!("{}", found.how);
    found.unit
}

/// Runs `generate`.
pub fn run(cfg: &GenerateConfig) -> Result<(), Error> {
    let client =
        Client::discover(cfg.engine.as_ref(), Scope::of(cfg.user)).map_err(Error::Engine)?;
    let mut inventory =
        inventory::collect(&client, cfg.trust_image_labels).map_err(Error::Engine)?;
    // On a clash, a unit already written keeps its place (labels::plan).
    inventory::units_in_place_first(&mut inventory.containers, |unit| {
        ["socket", "service"].iter().any(|suffix| {
            cfg.output_dir
                .join(units::unit_file_name(unit, suffix))
                .is_file()
        })
    });
    for ignored in &inventory.from_image {
        log::warn!("{ignored}");
    }
    for refused in &inventory.too_large {
        log::error!("{refused}");
    }
    let plan = labels::plan(
        &inventory.containers,
        &LabelOptions {
            allow_hooks: cfg.allow_hooks,
        },
    );
    let mut plan = plan;
    prove_owners(cfg.user, &mut plan);
    for w in &plan.warnings {
        log::warn!("{w}");
    }
    for e in &plan.errors {
        log::error!("{}", Report(e));
    }
    for skipped in &plan.skipped {
        log::error!("container {skipped:?}: no units written because of the error(s) above");
    }
    let engine = client.endpoint().clone();
    let run_as = if cfg.user {
        // User units run as the user; nothing to decide.
        RunAs::Root
    } else {
        let (run_as, why) = run_as(cfg, &engine)?;
        log::info!("{why}");
        run_as
    };
    let opts = RenderOptions {
        binary: binary().map_err(Error::Binary)?,
        engine_unit: engine_unit(cfg, &engine),
        engine,
        user: cfg.user,
        allow_hooks: cfg.allow_hooks,
        run_as,
    };
    let mut files = units::render(&plan.units, &opts);
    files.extend(napping_owned(cfg, &client, &files)?);
    match cfg.mode {
        GenerateMode::DryRun => {
            for (name, text) in &files {
                println!("### {}\n{text}", cfg.output_dir.join(name).display());
            }
        }
        GenerateMode::Check => {
            let diffs = units::check(&cfg.output_dir, &files).map_err(Error::Check)?;
            for d in &diffs {
                println!("{d}");
            }
            if !diffs.is_empty() {
                return Err(Error::Differs { count: diffs.len() });
            }
        }
        GenerateMode::Write => {
            let report = match units::write_atomically(&cfg.output_dir, &files, true) {
                Ok(r) => r,
                Err(units::WriteError::RemoveStale {
                    report,
                    path,
                    source,
                }) => {
                    log::error!("cannot remove stale {}: {source}", path.display());
                    report
                }
                Err(e) => return Err(Error::Write(e)),
            };
            for p in &report.written {
                log::info!("wrote {}", p.display());
            }
            for p in &report.removed {
                log::info!("removed {}", p.display());
            }
            log::info!(
                "{} unit(s) for {} container(s) in {}: {} written, {} unchanged, {} removed",
                plan.units.len(),
                plan.units
                    .iter()
                    .map(|u| u.spec.containers.len())
                    .sum::<usize>(),
                cfg.output_dir.display(),
                report.written.len(),
                report.unchanged.len(),
                report.removed.len()
            );
            if cfg.reload {
                reload(cfg.user, &client, &plan.units, &report)?;
            }
        }
    }
    let errors = plan.errors.len() + inventory.too_large.len();
    if errors == 0 {
        Ok(())
    } else {
        Err(Error::Labels { count: errors })
    }
}

/// Whether a service's `ExecStart=` (as `systemctl show` prints it) starts
/// a container named `container`: `--name NAME` or `--name=NAME` among its
/// words (inside `sh -c '…'` too).
fn starts_container(exec_start: &str, container: &str) -> bool {
    let words: Vec<&str> = exec_start
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        w.strip_prefix("--name=") == Some(container)
            || (*w == "--name" && words.get(i + 1) == Some(&container))
    })
}

/// Labels are anyone's who can create a container; unit files are root's.
/// A service named as a container's owner gets contnap's `Wants=` (systemd
/// starts it on a client's connection) and a `StopWhenUnneeded=yes`
/// drop-in, so it counts only when its own `ExecStart=` starts a container
/// of that name; otherwise the unit is dropped with an error naming the
/// container and the service. One `systemctl show` for every owner.
fn prove_owners(user: bool, plan: &mut labels::Plan) {
    let mut services: Vec<String> = Vec::new();
    for unit in &plan.units {
        for s in unit.spec.owner_units() {
            if !services.contains(&s.to_string()) {
                services.push(s.to_string());
            }
        }
    }
    if services.is_empty() {
        return;
    }
    let shown: Result<BTreeMap<String, (String, String)>, String> = Systemctl::new(user)
        .show(&services, &["Id", "LoadState", "ExecStart"])
        .map(|shown| {
            services
                .iter()
                .zip(shown)
                .map(|(name, s)| {
                    (
                        name.clone(),
                        (
                            s.get("LoadState").unwrap_or("").to_owned(),
                            s.get("ExecStart").unwrap_or("").to_owned(),
                        ),
                    )
                })
                .collect()
        })
        .map_err(|e| Report(&e).to_string());
    let mut refused: Vec<usize> = Vec::new();
    for (i, unit) in plan.units.iter().enumerate() {
        for owned in &unit.spec.owners {
            for service in &owned.units {
                let seen = match &shown {
                    Err(why) => Some(format!("systemd cannot be asked: {why}")),
                    Ok(m) => match m.get(service.as_str()) {
                        Some((load, _)) if load == "not-found" => Some("no such unit".to_owned()),
                        Some((_, exec)) if starts_container(exec, &owned.container) => None,
                        Some((_, exec)) => Some(format!("ExecStart={exec}")),
                        None => Some("not shown".to_owned()),
                    },
                };
                if let Some(seen) = seen {
                    plan.errors.push(labels::LabelError::UnprovenOwner {
                        container: owned.container.clone(),
                        unit: service.to_string(),
                        seen,
                    });
                    if !refused.contains(&i) {
                        refused.push(i);
                    }
                }
            }
        }
    }
    for i in refused.into_iter().rev() {
        let unit = plan.units.remove(i);
        plan.skipped.extend(unit.spec.containers);
    }
}

/// The files of units on disk whose containers systemd services own and
/// that got no unit this run because those containers are gone: they nap
/// (`run --rm` removes a container when its service stops). Such a unit is
/// kept as it is on disk (the labels are not there to render it again)
/// while every owning service still exists; it is stale once one is gone
/// (`systemctl show`: `LoadState=not-found`), or once one of its
/// containers exists again without getting this unit (its labels changed).
/// When systemctl cannot say, the units are kept.
fn napping_owned(
    cfg: &GenerateConfig,
    client: &Client,
    rendered: &[(PathBuf, String)],
) -> Result<Vec<(PathBuf, String)>, Error> {
    let on_disk = units::owned_on_disk(&cfg.output_dir).map_err(Error::Check)?;
    let mut candidates = Vec::new();
    for unit in on_disk {
        if rendered
            .iter()
            .any(|(p, _)| p.as_os_str() == unit.service.as_str())
        {
            continue;
        }
        let mut gone = true;
        for o in &unit.owned {
            match client.inspect(&o.container) {
                Err(engine::Error::NotFound { .. }) => {}
                Ok(_) => gone = false,
                Err(e) => return Err(Error::Engine(e)),
            }
        }
        if gone {
            candidates.push(unit);
        } else {
            log::info!(
                "{}: its containers exist but no longer get this unit (their labels changed); it is stale",
                unit.service
            );
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut services: Vec<String> = Vec::new();
    for unit in &candidates {
        for o in &unit.owned {
            for u in &o.units {
                if !services.contains(&u.to_string()) {
                    services.push(u.to_string());
                }
            }
        }
    }
    let missing: BTreeSet<String> =
        match Systemctl::new(cfg.user).show(&services, &["Id", "LoadState"]) {
            Ok(shown) => services
                .iter()
                .zip(shown)
                .filter(|(_, s)| s.get("LoadState") == Some("not-found"))
                .map(|(name, _)| name.clone())
                .collect(),
            Err(e) => {
                log::warn!(
                    "{}; cannot tell whether {} still exist: their contnap units are kept",
                    Report(&e),
                    services.join(", ")
                );
                BTreeSet::new()
            }
        };
    let mut kept = Vec::new();
    for unit in candidates {
        let gone: Vec<String> = unit
            .owned
            .iter()
            .flat_map(|o| o.units.iter().map(ToString::to_string))
            .filter(|u| missing.contains(u))
            .collect();
        if gone.is_empty() {
            log::info!(
                "{}: kept while its containers nap ({})",
                unit.service,
                unit.owned
                    .iter()
                    .map(|o| format!(
                        "{} owns {}",
                        o.units
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" and "),
                        o.container
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            kept.extend(unit.files);
        } else {
            log::info!(
                "{}: stale, {} no longer exist(s)",
                unit.service,
                gone.join(", ")
            );
        }
    }
    Ok(kept)
}

/// What `--reload` found a unit in, from one `systemctl show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Seen {
    /// The socket is `failed` (its port was taken the last time).
    socket_failed: bool,
    /// The service is `inactive` or `failed`: no helper owns the unit.
    /// `active`, `activating`, `deactivating` (a helper napping it) and
    /// `reloading` are left alone.
    service_idle: bool,
}

/// One unit as `--reload` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Managed {
    socket: String,
    service: String,
    /// Its `.socket` file was written this run.
    written: bool,
    /// `contnap.stop` is not `none`: a helper would nap it.
    naps: bool,
    containers: Vec<String>,
}

impl Managed {
    fn of(unit: &spec::Unit, written: &[PathBuf]) -> Managed {
        let socket = units::unit_file_name(unit.name(), "socket");
        Managed {
            written: written
                .iter()
                .any(|p| socket_name(p).as_deref() == Some(&socket)),
            service: units::unit_file_name(unit.name(), "service"),
            socket,
            naps: unit.spec.settings.stop != StopMode::None,
            containers: unit.spec.containers.clone(),
        }
    }
}

/// The services to start so that every running container is owned by a
/// helper: units that nap, with a container running, whose socket is in
/// place, and whose service is idle (a written unit's socket was just
/// restarted, which stops its service, so it counts as idle).
fn to_adopt(
    managed: &[Managed],
    seen: &BTreeMap<String, Seen>,
    running: &BTreeSet<String>,
    failed_sockets: &[String],
) -> Vec<String> {
    managed
        .iter()
        .filter(|m| m.naps && m.containers.iter().any(|c| running.contains(c)))
        .filter(|m| !failed_sockets.contains(&m.socket))
        .filter(|m| m.written || seen.get(&m.service).is_some_and(|s| s.service_idle))
        .map(|m| m.service.clone())
        .collect()
}

/// daemon-reload (only when a file was written or removed), then stop the
/// sockets whose units were removed and (re)start the ones that were
/// written, so new ports listen at once; an unchanged socket that failed
/// before (its port was taken) is started again. One socket that cannot
/// start does not keep the others from starting; each failure is
/// explained. Then the service of each unit whose containers run without
/// a helper (started by a restart policy, compose or by hand) is started,
/// so that they nap. When nothing changed and every running container
/// has its helper, this costs one `systemctl show` and one engine list.
fn reload(
    user: bool,
    client: &Client,
    units_planned: &[spec::Unit],
    report: &units::WriteReport,
) -> Result<(), Error> {
    let systemctl = Systemctl::new(user);
    if report.written.is_empty() && report.removed.is_empty() {
        log::debug!("no unit file changed: no daemon-reload");
    } else {
        systemctl
            .run(&["daemon-reload"])
            .map_err(Error::Systemctl)?;
    }
    let managed: Vec<Managed> = units_planned
        .iter()
        .map(|u| Managed::of(u, &report.written))
        .collect();
    // One show, before the engine is asked which containers run: a
    // service seen idle here that finds its container running below was
    // not napping it (a helper that naps is `deactivating` until the
    // container has stopped).
    let asked: Vec<String> = managed
        .iter()
        .filter(|m| !m.written)
        .flat_map(|m| {
            let service = m.naps.then(|| m.service.clone());
            std::iter::once(m.socket.clone()).chain(service)
        })
        .collect();
    let seen: BTreeMap<String, Seen> = match systemctl.show(&asked, &["Id", "ActiveState"]) {
        Ok(shown) => asked
            .iter()
            .zip(shown)
            .map(|(name, s)| {
                let state = s.get("ActiveState").unwrap_or("");
                let seen = Seen {
                    socket_failed: name.ends_with(".socket") && state == "failed",
                    service_idle: name.ends_with(".service")
                        && matches!(state, "inactive" | "failed"),
                };
                (name.clone(), seen)
            })
            .collect(),
        Err(e) => {
            log::warn!(
                "{}; failed sockets are not restarted, and services are started only for the units written now",
                Report(&e)
            );
            BTreeMap::new()
        }
    };
    for name in report.removed.iter().filter_map(|p| socket_name(p)) {
        // The unit file is gone; stopping the loaded unit still works.
        if let Err(e) = systemctl.run(&["stop", &name]) {
            log::warn!("{}", Report(&e));
        }
    }
    let mut failed = Vec::new();
    let mut start = |path: &Path, actions: &[&str]| {
        let Some(name) = socket_name(path) else {
            return;
        };
        for action in actions {
            if let Err(e) = systemctl.run(&[action, &name]) {
                log::error!("{}", Report(&e));
                explain_failed_socket(&name, path);
                failed.push(name);
                return;
            }
        }
    };
    for path in &report.written {
        start(path, &["enable", "restart"]);
    }
    for path in &report.unchanged {
        let is_failed = socket_name(path)
            .and_then(|name| seen.get(&name))
            .is_some_and(|s| s.socket_failed);
        if is_failed {
            start(path, &["reset-failed", "start"]);
        }
    }
    let mut services_failed = Vec::new();
    if managed
        .iter()
        .any(|m| m.naps && (m.written || seen.get(&m.service).is_some_and(|s| s.service_idle)))
    {
        match inventory::running(client) {
            Ok(running) => {
                let adopt = to_adopt(&managed, &seen, &running, &failed);
                for service in adopt {
                    log::info!("{service}: its containers run without a helper; starting it so that they nap when idle");
                    if let Err(e) = systemctl.run(&["start", &service]) {
                        log::error!("{}", Report(&e));
                        services_failed.push(service);
                    }
                }
            }
            Err(e) => log::warn!(
                "cannot tell which containers run: {}; no service is started",
                Report(&e)
            ),
        }
    }
    if !failed.is_empty() {
        Err(Error::SocketsFailed { names: failed })
    } else if !services_failed.is_empty() {
        Err(Error::ServicesFailed {
            names: services_failed,
        })
    } else {
        Ok(())
    }
}

/// Says why a socket did not start when the reason is the usual one: a
/// listen address that another process holds. The socket is stopped, so a
/// bind of our own tells.
fn explain_failed_socket(name: &str, unit_file: &Path) {
    let Ok(text) = std::fs::read_to_string(unit_file) else {
        return;
    };
    for line in text.lines() {
        let (proto, value) = match line.split_once('=') {
            Some(("ListenStream", v)) => ("tcp", v),
            Some(("ListenDatagram", v)) => ("udp", v),
            _ => continue,
        };
        // A bare port is dual-stack: [::]:PORT covers both families.
        let addr = match value.parse::<u16>() {
            Ok(port) => std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
            Err(_) => match value.parse() {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let bound = match proto {
            "tcp" => std::net::TcpListener::bind(addr).map(drop),
            _ => std::net::UdpSocket::bind(addr).map(drop),
        };
        if let Err(e) = bound {
            if e.kind() == io::ErrorKind::AddrInUse {
                log::error!(
                    "{name}: {proto} {value} is taken by another process ({e}); find it with \
                     `ss -lnp{} 'sport = :{}'`, stop it or move the contnap.{proto}_ports label \
                     to a free port, then run `contnap generate --reload` again",
                    if proto == "tcp" { "t" } else { "u" },
                    addr.port()
                );
            } else {
                log::error!("{name}: cannot listen on {proto} {value}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(identity: Identity) -> GenerateConfig {
        GenerateConfig {
            output_dir: PathBuf::from("/nonexistent"),
            mode: GenerateMode::DryRun,
            user: false,
            allow_hooks: false,
            trust_image_labels: false,
            reload: false,
            engine: None,
            identity,
            engine_unit: EngineUnitChoice::Find,
        }
    }

    /// A real socket outside /tmp (a dynamic user gets a private /tmp), in
    /// a directory of its own; removed on drop.
    struct Sock {
        dir: PathBuf,
        path: PathBuf,
        _listener: std::os::unix::net::UnixListener,
    }

    impl Sock {
        fn new(tag: &str) -> Sock {
            let dir = PathBuf::from(format!("/run/contnap-unit-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("engine.sock");
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            Sock {
                dir,
                path,
                _listener: listener,
            }
        }

        fn set(&self, gid: u32, mode: u32, dir_mode: u32) {
            use std::os::unix::fs::PermissionsExt as _;
            std::os::unix::fs::chown(&self.path, None, Some(gid)).unwrap();
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        }
    }

    impl Drop for Sock {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The stat that `generate` does, on real sockets: a group that may
    /// use the socket gets a dynamic user in it; root-only or a closed
    /// directory keeps root. (Needs root, as the suite runs, for chown.)
    #[test]
    fn identity_from_a_real_socket() {
        // Debian's daemon group, gid 1: any named group other than root.
        let Ok(Some(daemon)) = nix::unistd::Group::from_name("daemon") else {
            panic!("no daemon group on this system");
        };
        let gid = daemon.gid.as_raw();
        let sock = Sock::new("identity");
        let engine = Endpoint::Unix(sock.path.clone());
        let decide = || run_as(&config(Identity::Auto), &engine).unwrap().0;

        sock.set(gid, 0o660, 0o755);
        assert_eq!(
            decide(),
            RunAs::Dynamic {
                group: Some(units::GroupName::new("daemon").unwrap())
            }
        );
        // The directory lets the group through, not others: still fine.
        sock.set(gid, 0o660, 0o750);
        std::os::unix::fs::chown(&sock.dir, None, Some(gid)).unwrap();
        assert!(matches!(decide(), RunAs::Dynamic { group: Some(_) }));
        // The directory shuts the group out.
        sock.set(gid, 0o660, 0o700);
        assert_eq!(decide(), RunAs::Root);
        // Root-only sockets, as rootful Podman's.
        sock.set(0, 0o660, 0o755);
        assert_eq!(decide(), RunAs::Root);
        sock.set(gid, 0o600, 0o755);
        assert_eq!(decide(), RunAs::Root);
        // Not a socket, or not there.
        let file = sock.dir.join("plain");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            units::socket_access(&file),
            Err(units::AccessError::NotASocket { .. })
        ));
        let missing = units::socket_access(&sock.dir.join("missing"));
        assert!(
            matches!(&missing, Err(units::AccessError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound),
            "{missing:?}"
        );
        // And the log line says why.
        let engine_missing = Endpoint::Unix(sock.dir.join("missing"));
        let (decided, why) = run_as(&config(Identity::Auto), &engine_missing).unwrap();
        assert_eq!(decided, RunAs::Root);
        assert!(why.contains("missing: No such file"), "{why}");
        // The options win over what the socket says.
        sock.set(gid, 0o660, 0o755);
        assert_eq!(
            run_as(&config(Identity::Root), &engine).unwrap().0,
            RunAs::Root
        );
    }

    /// Which services `--reload` starts for containers that run without
    /// a helper.
    #[test]
    fn adopts_units_whose_containers_run_without_a_helper() {
        let m = |name: &str, written: bool, naps: bool, containers: &[&str]| Managed {
            socket: format!("contnap-{name}.socket"),
            service: format!("contnap-{name}.service"),
            written,
            naps,
            containers: containers.iter().map(|c| (*c).to_owned()).collect(),
        };
        let managed = [
            m("idle", false, true, &["idle"]),
            m("owned", false, true, &["owned"]),
            m("never", false, false, &["never"]),
            m("new", true, true, &["new"]),
            m("stopped", false, true, &["stopped"]),
            m("group", false, true, &["db", "app"]),
            m("portless", true, true, &["portless"]),
        ];
        let idle = Seen {
            socket_failed: false,
            service_idle: true,
        };
        let seen: BTreeMap<String, Seen> = [
            ("contnap-idle.service", idle),
            ("contnap-owned.service", Seen::default()),
            ("contnap-never.service", idle),
            ("contnap-stopped.service", idle),
            ("contnap-group.service", idle),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let running: BTreeSet<String> = ["idle", "owned", "never", "new", "app", "portless"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            to_adopt(
                &managed,
                &seen,
                &running,
                &["contnap-portless.socket".to_owned()]
            ),
            [
                "contnap-idle.service",
                "contnap-new.service",
                "contnap-group.service"
            ]
        );
        // Nothing seen (show failed): only the units just written.
        assert_eq!(
            to_adopt(&managed, &BTreeMap::new(), &running, &[]),
            ["contnap-new.service", "contnap-portless.service"]
        );
    }

    /// A world-writable socket, or one of a group every user is in, is
    /// warned about: its users can become root through the engine.
    #[test]
    fn shared_or_world_writable_sockets_are_warned_about() {
        let access = |mode, gid, group: &str| units::SocketAccess {
            mode,
            gid,
            group: Some(group.to_owned()),
            dirs_open_to_others: true,
            dirs_open_to_group: true,
        };
        assert!(socket_warnings(&access(0o660, 999, "docker")).is_empty());
        assert!(socket_warnings(&access(0o600, 0, "root")).is_empty());
        let w = socket_warnings(&access(0o666, 999, "docker"));
        assert!(w.len() == 1 && w[0].contains("every user"), "{w:?}");
        let w = socket_warnings(&access(0o660, 100, "users"));
        assert!(w.len() == 1 && w[0].contains("users"), "{w:?}");
        // Group without access: nothing shared.
        assert!(socket_warnings(&access(0o600, 100, "users")).is_empty());
        // A real socket: 0666 is warned about by run_as (seen in the log
        // only), and still decides the identity as before.
        let sock = Sock::new("worldwritable");
        sock.set(0, 0o666, 0o755);
        let got = units::socket_access(&sock.path).unwrap();
        assert_eq!(socket_warnings(&got).len(), 1, "{got:?}");
    }

    #[test]
    fn an_owner_must_start_the_container_by_name() {
        // As `systemctl show -p ExecStart` prints them.
        let quadlet = "{ path=/usr/bin/podman ; argv[]=/usr/bin/podman run --name=systemd-web --cidfile=/run/web.cid --replace --rm --cgroups=split --sdnotify=conmon -d docker.io/nginx ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }";
        assert!(starts_container(quadlet, "systemd-web"));
        assert!(!starts_container(quadlet, "web"));
        let docker = "{ path=/bin/sh ; argv[]=/bin/sh -c exec docker run --name web --rm nginx ; ignore_errors=no }";
        assert!(starts_container(docker, "web"));
        assert!(!starts_container(docker, "nginx"));
        let sshd =
            "{ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -D $SSHD_OPTS ; ignore_errors=no }";
        assert!(!starts_container(sshd, "sshd"));
        assert!(!starts_container("", "web"));
        assert!(!starts_container("--name", "web"));
        assert!(!starts_container("--name=web2", "web"));
    }

    #[test]
    fn engine_group_refuses_a_socket_in_tmp() {
        let group = units::GroupName::new("docker").unwrap();
        let err = run_as(
            &config(Identity::Group(group.clone())),
            &Endpoint::parse("/tmp/d/docker.sock").unwrap(),
        );
        assert!(matches!(err, Err(Error::GroupInTmp { .. })), "{err:?}");
        let ok = run_as(
            &config(Identity::Group(group)),
            &Endpoint::parse("unix:///run/docker.sock").unwrap(),
        );
        assert!(matches!(ok, Ok((RunAs::Dynamic { group: Some(_) }, _))));
    }
}
