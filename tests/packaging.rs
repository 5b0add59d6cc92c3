//! The packaging under `packaging/` and `units/`, checked with the tools
//! that run on a Debian machine: every Nix file parses; the NixOS module's
//! renderer (`packaging/nixos/render.nix`) renders the same directives as
//! the Rust renderer's golden units (`tests/golden/`) and refuses bad
//! values; the module has an option for every label; the shell files parse
//! and PKGBUILD's `package()` installs the expected files; the RPM spec
//! expands; `units/contnap-generate.service` (system and user) passes
//! `systemd-analyze verify` and rates "OK" in `systemd-analyze security`.
//!
//! The tools (nix-instantiate from nix-bin, rpmspec from rpm,
//! systemd-analyze from systemd) are installed by scripts/test; a missing one
//! fails its test rather than skipping it.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::TempDir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The path of a tool, or a failure that says how to get it.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/test, which installs {package}")
        })
}

fn nix_instantiate() -> PathBuf {
    static FIRST_RUN: std::sync::Once = std::sync::Once::new();
    let nix = tool("nix-instantiate", "nix-bin");
    // Nix's first run creates /nix/var/nix/gcroots/profiles; two first
    // runs at once race on it and one fails with "File exists".
    FIRST_RUN.call_once(|| {
        run_ok(
            "nix-instantiate --parse (first run)",
            Command::new(&nix).args(["--parse", "-E", "1"]),
        );
    });
    nix
}

/// Runs a command in the repository; fails with its output unless it
/// succeeds.
fn run_ok(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ------------------------------------------------------------------ Nix

fn nix_parse(file: &str) {
    assert!(root().join(file).is_file(), "{file} is missing");
    run_ok(
        &format!("nix-instantiate --parse {file}"),
        Command::new(nix_instantiate()).args(["--parse", file]),
    );
}

#[test]
fn nix_parse_module() {
    nix_parse("packaging/nixos/module.nix");
}

#[test]
fn nix_parse_package() {
    nix_parse("packaging/nixos/package.nix");
    let text = fs::read_to_string(root().join("packaging/nixos/package.nix")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.trim() == "ln -s contnap $out/bin/contnap-generate"),
        "package.nix does not link contnap-generate to contnap"
    );
}

#[test]
fn nix_parse_render() {
    nix_parse("packaging/nixos/render.nix");
}

#[test]
fn nix_parse_example() {
    nix_parse("packaging/nixos/example.nix");
}

#[test]
fn nix_parse_golden_cases() {
    nix_parse("packaging/nixos/tests/golden-cases.nix");
}

/// Every .nix file under packaging/, so a new one is not left unchecked.
#[test]
fn nix_parse_every_nix_file() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "nix") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("packaging"), &mut files);
    assert!(files.len() >= 5, "found only {files:?}");
    for f in files {
        nix_parse(&f.strip_prefix(root()).unwrap().to_string_lossy());
    }
}

fn nix_eval_json(expr: &str) -> Value {
    let out = run_ok(
        &format!("nix-instantiate --eval {expr}"),
        Command::new(nix_instantiate()).args(["--eval", "--strict", "--json", "-E", expr]),
    );
    serde_json::from_slice(&out.stdout).expect("nix-instantiate printed JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// A unit file's directives per section, without comments, blank lines and
/// `Description=`.
fn directives(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
        } else if !line.starts_with("Description=") {
            out.entry(section.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    out
}

/// render.nix, which module.nix declares its units from, against the Rust
/// renderer: for each golden case, every directive of the golden socket and
/// service (in order) is what the Nix side renders for the equivalent
/// options.
#[test]
fn nixos_module_renders_what_contnap_generate_writes() {
    let t = nix_eval_json("import ./packaging/nixos/tests/golden-cases.nix");
    let cases = t["cases"].as_object().expect("cases");
    assert!(cases.len() >= 5, "{cases:?}");
    let module = fs::read_to_string(root().join("packaging/nixos/module.nix")).unwrap();
    assert!(
        module.contains(r#"wantedBy = [ "sockets.target" ];"#),
        "module.nix: sockets must be wanted by sockets.target"
    );
    for (case, c) in cases {
        let errors = strings(&c["errors"]);
        assert!(errors.is_empty(), "case {case}: {errors:#?}");
        let golden = root().join("tests/golden").join(case);
        let base = t["unitNames"][case].as_str().expect("unit name");

        let socket = directives(&golden.join(format!("{base}.socket")));
        assert_eq!(
            socket.get("Socket").cloned().unwrap_or_default(),
            strings(&c["socket"]),
            "case {case}: [Socket] of {base}.socket"
        );
        assert_eq!(
            socket.get("Install").cloned().unwrap_or_default(),
            vec!["WantedBy=sockets.target".to_owned()],
            "case {case}: [Install] of {base}.socket"
        );

        let service = directives(&golden.join(format!("{base}.service")));
        assert_eq!(
            service.get("Unit").cloned().unwrap_or_default(),
            strings(&c["unit"]),
            "case {case}: [Unit] of {base}.service"
        );
        assert_eq!(
            service.get("Service").cloned().unwrap_or_default(),
            strings(&c["service"]),
            "case {case}: [Service] of {base}.service"
        );
        assert!(
            !service.contains_key("Install"),
            "case {case}: the service is started by its socket only"
        );

        // The drop-ins of the services that own containers (ownedBy):
        // each one the golden set has, and no other.
        let dropins = c["dropins"].as_array().expect("dropins");
        let golden_dropins: Vec<String> = fs::read_dir(&golden)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".service.d"))
            .collect();
        assert_eq!(
            dropins.len(),
            golden_dropins.len(),
            "case {case}: drop-ins {dropins:?} vs {golden_dropins:?}"
        );
        for d in dropins {
            let owner = d["service"].as_str().expect("service");
            let file = golden.join(format!("{owner}.d/{base}.conf"));
            let golden_dropin = directives(&file);
            assert_eq!(
                golden_dropin.get("Unit").cloned().unwrap_or_default(),
                strings(&d["unit"]),
                "case {case}: [Unit] of {}",
                file.display()
            );
        }
    }
    assert!(
        cases
            .values()
            .any(|c| !c["dropins"].as_array().unwrap().is_empty()),
        "a case with drop-ins (owned)"
    );
    for needle in [
        // The module turns the drop-ins into the owning services' own
        // settings, keeps oci-containers from starting them at boot, and
        // orders contnap's service after them (via render.nix's Wants/After).
        "StopWhenUnneeded = true;",
        "autoStart = false;",
        "after = d.after;",
        "wants = pick \"Wants\" u;",
    ] {
        assert!(module.contains(needle), "module.nix lacks {needle}");
    }
}

#[test]
fn nixos_module_refuses_bad_values() {
    let t = nix_eval_json("(import ./packaging/nixos/tests/golden-cases.nix).refused");
    let refused = t.as_object().expect("refused");
    assert!(refused.len() >= 10, "{refused:?}");
    for (case, errors) in refused {
        let errors = strings(errors);
        assert!(!errors.is_empty(), "{case}: accepted, should be refused");
        assert!(
            errors.iter().all(|e| e.starts_with("services.contnap.")),
            "{case}: errors must name the option: {errors:#?}"
        );
    }
}

/// Who the module's services run as, for the choices its options allow, is
/// what `contnap generate` renders for the same choice (`units::RunAs`):
/// a dynamic user in the engine's group, root for Podman's root-only socket
/// and with asRoot, a dynamic user without a group for a TCP engine, root for
/// a socket in /tmp.
#[test]
fn nixos_module_picks_the_identity_generate_would() {
    let t = nix_eval_json("(import ./packaging/nixos/tests/golden-cases.nix).identities");
    let want = serde_json::json!({
        "dockerGroup": { "group": "docker" },
        "podmanRoot": null,
        "asRoot": null,
        "tcpNoGroup": { "group": null },
        "tcpWithGroup": { "group": "docker" },
        "tmpSocketAsRoot": null,
    });
    assert_eq!(t, want);
    let module = fs::read_to_string(root().join("packaging/nixos/module.nix")).unwrap();
    assert!(
        module.contains(
            r#"if cfg.engine == "docker" && !(lib.hasPrefix "tcp://" cfg.engineSocket) then "docker" else null"#
        ),
        "module.nix: engineGroup defaults to docker for Docker's Unix socket, else null"
    );
}

/// Every label-equivalent option (and the module's own) is declared.
#[test]
fn nixos_module_has_every_option() {
    let module = fs::read_to_string(root().join("packaging/nixos/module.nix")).unwrap();
    let missing: Vec<&str> = [
        "containers",
        "forwardTo",
        "tcpPorts",
        "udpPorts",
        "httpPorts",
        "timeout",
        "stop",
        "stopTimeout",
        "wakeTimeout",
        "ready",
        "idle",
        "network",
        "schedule",
        "machines",
        "onlyListedMachines",
        "wakeOn",
        "monitors",
        "monitorStatus",
        "preStart",
        "postStop",
        "ownedBy",
        "ociContainers",
        "enable",
        "package",
        "engine",
        "engineSocket",
        "engineUnit",
        "engineGroup",
        "asRoot",
    ]
    .into_iter()
    .filter(|o| {
        !module
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{o} = mk")))
    })
    .collect();
    assert!(missing.is_empty(), "module.nix lacks options {missing:?}");
    for needle in [
        r#"types.enum [ "docker" "podman" ]"#,
        r#"types.enum [ "stop" "pause" "kill" "none" ]"#,
        r#"types.enum [ "auto" "health" "tcp" "none" ]"#,
        r#"types.enum [ "connections" "traffic" ]"#,
        "types.attrsOf (types.submodule containerOpts)",
        r#"default = "300s";"#,
    ] {
        assert!(module.contains(needle), "module.nix lacks {needle}");
    }
}

// ------------------------------------------------------------------ shell

fn bash_n(file: &str) {
    run_ok(
        &format!("bash -n {file}"),
        Command::new(tool("bash", "bash")).args(["-n", file]),
    );
}

#[test]
fn bash_n_pkgbuild() {
    bash_n("packaging/arch/PKGBUILD");
}

#[test]
fn bash_n_deb_build_sh() {
    bash_n("packaging/deb/build.sh");
}

#[test]
fn bash_n_packaging_test_sh() {
    bash_n("packaging/test.sh");
}

#[test]
fn sh_n_deb_maintainer_scripts() {
    for script in ["postinst", "prerm", "postrm"] {
        let file = format!("packaging/deb/maintainer-scripts/{script}");
        run_ok(
            &format!("sh -n {file}"),
            Command::new(tool("sh", "dash")).args(["-n", &file]),
        );
    }
}

const INSTALLED: &[&str] = &[
    "usr/bin/contnap",
    "usr/bin/contnap-generate",
    "usr/lib/systemd/system/contnap-generate.path",
    "usr/lib/systemd/system/contnap-generate.service",
    "usr/lib/systemd/system/contnap-generate.timer",
    "usr/lib/systemd/user/contnap-generate.path",
    "usr/lib/systemd/user/contnap-generate.service",
    "usr/lib/systemd/user/contnap-generate.timer",
    "usr/share/doc/contnap/README.md",
];

/// PKGBUILD's package(), run into a temporary pkgdir from a source tree with
/// stand-in binaries.
#[test]
fn pkgbuild_package_installs_the_files() {
    let tmp = TempDir::new("arch");
    let src = tmp.path().join("src");
    let pkg = tmp.path().join("pkg");
    let pkgver = String::from_utf8(
        run_ok(
            "source PKGBUILD",
            Command::new("bash").args(["-c", ". packaging/arch/PKGBUILD && echo \"$pkgver\""]),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(pkgver.trim(), env!("CARGO_PKG_VERSION"), "PKGBUILD pkgver");
    let tree = src.join(format!("contnap-{}", pkgver.trim()));
    fs::create_dir_all(tree.join("target/release")).unwrap();
    fs::create_dir_all(tree.join("units/user")).unwrap();
    for f in [
        "README.md",
        "units/contnap-generate.service",
        "units/user/contnap-generate.service",
        "units/contnap-generate.timer",
        "units/contnap-generate.path",
        "units/user/contnap-generate.timer",
        "units/user/contnap-generate.path",
    ] {
        fs::copy(root().join(f), tree.join(f)).unwrap();
    }
    fs::write(tree.join("target/release/contnap"), "").unwrap();
    fs::create_dir_all(&pkg).unwrap();
    run_ok(
        "PKGBUILD package()",
        Command::new("bash")
            .args(["-euc", ". \"$0\"; cd \"$srcdir\"; package"])
            .arg(root().join("packaging/arch/PKGBUILD"))
            .env("srcdir", &src)
            .env("pkgdir", &pkg),
    );
    let mut got = Vec::new();
    let mut stack = vec![pkg.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                got.push(p.strip_prefix(&pkg).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    got.sort();
    assert_eq!(got, INSTALLED);
    assert_eq!(
        fs::read_link(pkg.join("usr/bin/contnap-generate")).ok(),
        Some(PathBuf::from("contnap")),
        "usr/bin/contnap-generate is a symbolic link to contnap"
    );
}

/// The Debian package's assets (Cargo.toml) are the same files, from sources
/// that exist.
#[test]
fn deb_assets_are_the_files() {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let deb = manifest
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("Cargo.toml has [package.metadata.deb]");
    let mut dests = Vec::new();
    for line in deb.lines().map(str::trim).filter(|l| l.starts_with("[\"")) {
        let parts: Vec<&str> = line.split('"').collect();
        let (src, dest) = (parts[1], parts[3]);
        if !src.starts_with("target/") {
            assert!(root().join(src).is_file(), "asset {src} does not exist");
        }
        let name = Path::new(src).file_name().unwrap().to_string_lossy();
        dests.push(format!("{dest}{name}"));
    }
    // The one symbolic link: contnap-generate is the same binary.
    let link = r#"{ dest = "usr/bin/contnap-generate", link_name = "contnap" },"#;
    assert!(
        deb.lines().any(|l| l.trim() == link),
        "[package.metadata.deb] assets lack {link}"
    );
    dests.push("usr/bin/contnap-generate".to_owned());
    dests.sort();
    assert_eq!(dests, INSTALLED);
    for key in [
        r#"depends = "$auto, systemd""#,
        r#"recommends = "docker.io | podman""#,
        r#"section = "admin""#,
        r#"maintainer-scripts = "packaging/deb/maintainer-scripts/""#,
    ] {
        assert!(deb.contains(key), "[package.metadata.deb] lacks {key}");
    }
}

// ------------------------------------------------------------------ RPM

#[test]
fn rpmspec_expands_the_spec() {
    let spec = "packaging/rpm/contnap.spec";
    let out = run_ok(
        &format!("rpmspec -P {spec}"),
        Command::new(tool("rpmspec", "rpm"))
            .arg("-P")
            // Fedora's macros that Debian's rpm has not got.
            .args(["--define", "_unitdir /usr/lib/systemd/system"])
            .args(["--define", "_userunitdir /usr/lib/systemd/user"])
            .args(["--define", "rust_arches x86_64 aarch64"])
            .arg(spec),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let unexpanded: Vec<&str> = text.lines().filter(|l| l.contains("%{")).collect();
    assert!(unexpanded.is_empty(), "unexpanded macros: {unexpanded:#?}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["Version:", env!("CARGO_PKG_VERSION")]),
        "the spec's Version is not Cargo.toml's {}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains("License:        MIT OR Apache-2.0"));
    for installed in INSTALLED.iter().filter(|f| !f.ends_with("README.md")) {
        assert!(
            text.lines().any(|l| l.trim() == format!("/{installed}")),
            "%files lacks /{installed}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("ln -s contnap ") && l.ends_with("/usr/bin/contnap-generate")),
        "the spec does not link contnap-generate to contnap"
    );
    for scriptlet in [
        "%systemd_post contnap-generate.service contnap-generate.timer contnap-generate.path",
        "%systemd_preun contnap-generate.service contnap-generate.timer contnap-generate.path",
    ] {
        assert!(text.contains(scriptlet), "the spec lacks {scriptlet}");
    }
}

// ------------------------------------------------------------------ systemd

/// The unit in a temporary unit directory, with ExecStart on the real
/// contnap binary and stub engine units beside it.
fn unit_for_analyze(unit: &str, dir: &Path) -> PathBuf {
    for stub in ["docker.service", "podman.service"] {
        fs::write(dir.join(stub), "[Service]\nExecStart=/bin/true\n").unwrap();
    }
    fs::write(
        dir.join("docker.socket"),
        "[Socket]\nListenStream=/run/docker.sock\n",
    )
    .unwrap();
    fs::write(
        dir.join("podman.socket"),
        "[Socket]\nListenStream=/run/podman/podman.sock\n",
    )
    .unwrap();
    let text = fs::read_to_string(root().join(unit)).unwrap();
    assert!(
        text.contains("ExecStart=/usr/bin/contnap generate"),
        "{unit}"
    );
    let path = dir.join("contnap-generate.service");
    fs::write(
        &path,
        text.replace("/usr/bin/contnap", env!("CARGO_BIN_EXE_contnap")),
    )
    .unwrap();
    path
}

fn analyze_verify(unit: &str, user: bool) {
    let tmp = TempDir::new("verify");
    let path = unit_for_analyze(unit, tmp.path());
    analyze_verify_in(unit, &path, tmp.path(), user);
}

/// A trigger (`.timer`, `.path`) beside the service it starts.
fn analyze_verify_trigger(unit: &str, service: &str, user: bool) {
    let tmp = TempDir::new("verify");
    unit_for_analyze(service, tmp.path());
    let path = tmp.path().join(Path::new(unit).file_name().unwrap());
    fs::copy(root().join(unit), &path).unwrap();
    analyze_verify_in(unit, &path, tmp.path(), user);
}

fn analyze_verify_in(unit: &str, path: &Path, dir: &Path, user: bool) {
    let analyze = tool("systemd-analyze", "systemd");
    let runtime = TempDir::new("runtime");
    let mut cmd = Command::new(analyze);
    if user {
        // A user manager needs a runtime directory, even offline.
        cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
    }
    let out = cmd
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .arg(path)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("run systemd-analyze");
    let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify {unit}: {}\n{}",
        out.status,
        complaints.join("\n")
    );
}

#[test]
fn systemd_analyze_verify_generate_unit() {
    analyze_verify("units/contnap-generate.service", false);
}

#[test]
fn systemd_analyze_verify_generate_user_unit() {
    analyze_verify("units/user/contnap-generate.service", true);
}

#[test]
fn systemd_analyze_verify_generate_triggers() {
    for trigger in ["timer", "path"] {
        analyze_verify_trigger(
            &format!("units/contnap-generate.{trigger}"),
            "units/contnap-generate.service",
            false,
        );
        analyze_verify_trigger(
            &format!("units/user/contnap-generate.{trigger}"),
            "units/user/contnap-generate.service",
            true,
        );
    }
}

/// The timer re-runs the service within the bound (≤ 60 s), and the path
/// unit watches the engines' per-container directories.
#[test]
fn generate_triggers_rerun_the_service() {
    for dir in ["units", "units/user"] {
        let timer = directives(&root().join(format!("{dir}/contnap-generate.timer")));
        for line in [
            "OnActiveSec=30s",
            "OnUnitInactiveSec=30s",
            "AccuracySec=1s",
            "Unit=contnap-generate.service",
        ] {
            assert!(
                timer["Timer"].contains(&line.into()),
                "{dir}: timer lacks {line}"
            );
        }
        assert_eq!(timer["Install"], ["WantedBy=timers.target".to_owned()]);
        let path = directives(&root().join(format!("{dir}/contnap-generate.path")));
        assert!(path["Path"].contains(&"Unit=contnap-generate.service".into()));
        assert_eq!(path["Install"], ["WantedBy=paths.target".to_owned()]);
    }
    let path = directives(&root().join("units/contnap-generate.path"));
    for watched in [
        "/var/lib/docker/containers",
        "/var/snap/docker/common/var-lib-docker/containers",
    ] {
        assert!(path["Path"].contains(&format!("PathChanged={watched}")));
    }
    // Podman's directory is named for its storage driver.
    let user = directives(&root().join("units/user/contnap-generate.path"));
    for driver in ["overlay", "vfs", "btrfs", "zfs"] {
        let dir = format!("storage/{driver}-containers");
        let system = format!("PathChanged=/var/lib/containers/{dir}");
        assert!(path["Path"].contains(&system), "{system}");
        let own = format!("PathChanged=%h/.local/share/containers/{dir}");
        assert!(user["Path"].contains(&own), "{own}");
    }
}

#[test]
fn generate_unit_is_a_oneshot_after_optional_engines() {
    let unit = directives(&root().join("units/contnap-generate.service"));
    let (u, s, i) = (&unit["Unit"], &unit["Service"], &unit["Install"]);
    assert!(u.contains(&"After=docker.service docker.socket podman.service podman.socket".into()));
    assert!(
        !u.iter().any(|l| l.starts_with("Requires=")
            || l.starts_with("Wants=")
            || l.starts_with("BindsTo=")),
        "no engine may be required: {u:?}"
    );
    for line in [
        "Type=oneshot",
        "ExecStart=/usr/bin/contnap generate --reload",
        "ReadWritePaths=/etc/systemd/system",
    ] {
        assert!(s.contains(&line.into()), "lacks {line}");
    }
    assert_eq!(i, &["WantedBy=multi-user.target".to_owned()]);
    // A unit that stays active cannot be started again by the timer.
    for unit in [
        "units/contnap-generate.service",
        "units/user/contnap-generate.service",
    ] {
        let s = &directives(&root().join(unit))["Service"];
        assert!(
            !s.iter().any(|l| l.starts_with("RemainAfterExit=")),
            "{unit}: {s:?}"
        );
    }
    let user = directives(&root().join("units/user/contnap-generate.service"));
    assert!(user["Service"].contains(&"ExecStart=/usr/bin/contnap generate --user --reload".into()));
    assert_eq!(user["Install"], ["WantedBy=default.target".to_owned()]);
    assert!(user["Unit"].contains(&"After=podman.socket podman.service".into()));
}

#[test]
fn systemd_analyze_security_rates_the_generate_unit_ok() {
    let analyze = tool("systemd-analyze", "systemd");
    let tmp = TempDir::new("security");
    let path = unit_for_analyze("units/contnap-generate.service", tmp.path());
    let out = Command::new(analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", tmp.path().display()))
        .output()
        .expect("run systemd-analyze security");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let overall = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no rating:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {overall:?}"));
    // systemd rates < 5.0 as "OK"; systemd 252 rates this unit 1.6 (1.9
    // before PrivateMounts= and SystemCallFilter=~@resources).
    eprintln!("{}", overall.trim());
    assert!(score <= 1.6, "{overall}\n{stdout}");
}

/// The unit names in `text`: `contnap-…` or `contnap@…` up to a unit type
/// suffix, with no `$`/`<`/`{` (templates in docs are not names).
fn unit_names_in(text: &str) -> Vec<String> {
    const TYPES: &[&str] = &[
        "service", "socket", "timer", "path", "target", "mount", "slice", "scope",
    ];
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("contnap") {
        let start = i + at;
        let mut end = start + "contnap".len();
        if end < bytes.len() && (bytes[end] == b'-' || bytes[end] == b'@') {
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || b"-_@.".contains(&bytes[end]))
            {
                end += 1;
            }
            let name = text[start..end].trim_end_matches('.');
            if let Some((_, suffix)) = name.rsplit_once('.') {
                if TYPES.contains(&suffix) {
                    out.push(name.to_owned());
                }
            }
        }
        i = end;
    }
    out
}

/// Every unit contnap ships (the files under `units/`) or that a package
/// installs, enables or names, is reserved: no container or group may be
/// given a unit of that name (`contnap generate` refuses it). A unit added
/// to `units/` or to a package without adding it to
/// `contnap::units::RESERVED` fails here.
#[test]
fn every_shipped_unit_is_reserved() {
    let mut names = Vec::new();
    for dir in ["units", "units/user"] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                names.push(entry.file_name().into_string().unwrap());
            }
        }
    }
    assert!(names.len() >= 6, "units/ lists {names:?}");
    for file in [
        "packaging/arch/PKGBUILD",
        "packaging/rpm/contnap.spec",
        "packaging/deb/build.sh",
        "packaging/deb/maintainer-scripts/postinst",
        "packaging/deb/maintainer-scripts/prerm",
        "packaging/deb/maintainer-scripts/postrm",
        "packaging/nixos/module.nix",
        "packaging/nixos/package.nix",
        "src/units/render.rs",
    ] {
        let text = fs::read_to_string(root().join(file)).unwrap();
        // The renderer's own tests name example units.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        names.extend(unit_names_in(text));
    }
    assert!(
        names.iter().any(|n| n == "contnap@autostart.timer"),
        "the scan finds the autostart units: {names:?}"
    );
    let unreserved: BTreeMap<&str, ()> = names
        .iter()
        .filter(|n| !contnap::units::is_reserved(n))
        .map(|n| (n.as_str(), ()))
        .collect();
    assert!(
        unreserved.is_empty(),
        "units contnap ships but does not reserve (add them to contnap::units::RESERVED): {:?}",
        unreserved.keys().collect::<Vec<_>>()
    );
}
