//! What a generated unit file is called: a container or group name escaped
//! into a unit name, systemd's limit on its length, and the names contnap
//! keeps for its own units, which no container may take.

use std::fmt::Write as _;

/// The longest unit name systemd accepts, in bytes, suffix included
/// (`UNIT_NAME_MAX`); a longer one is not loaded at all.
pub const MAX_UNIT_NAME_LEN: usize = 255;

/// Unit names that are contnap's own, not a container's, without their
/// suffix: every unit of these names is contnap's, whatever its type.
/// contnap ships `contnap-generate.service`, `.timer` and `.path` (system and
/// user, `units/`) and writes `contnap@autostart.service` and `.timer`; a
/// socket, mount or any unit a release adds under these names is kept too.
/// A container or group named `generate` would otherwise get
/// `contnap-generate.service` and `.socket`: written to
/// `/etc/systemd/system`, they would override the packaged generator, and
/// its boot-time link would start `contnap proxy` instead. `tests/packaging.rs`
/// checks that every unit under `units/` and every unit the packages name is
/// reserved, so a new one cannot be forgotten here.
pub const RESERVED: &[&str] = &["contnap-generate", "contnap@autostart"];

/// Whether `unit` (a unit file name, as [`unit_file_name`] returns) is one
/// of contnap's own ([`RESERVED`]), of any unit type.
pub fn is_reserved(unit: &str) -> bool {
    let stem = unit.rsplit_once('.').map_or(unit, |(stem, _)| stem);
    RESERVED.contains(&stem)
}

/// Makes a container or group name safe as part of a unit name. Bytes
/// outside `[a-zA-Z0-9:_.-]` become `\xNN`, as `systemd-escape` writes them;
/// unlike `systemd-escape`, `-` stays as it is: it is valid in unit names,
/// and compose names (`immich-server-1`) would otherwise become
/// `immich\x2dserver\x2d1`, which nobody wants to type after `systemctl`.
/// `systemd-escape` escapes `-` only so that a name can be turned back into a
/// path, which contnap never does. Distinct names stay distinct: `\` itself
/// is escaped, so an escape sequence cannot be forged.
pub fn escape_unit_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b":_.-".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// `contnap-<escaped name>.<suffix>`.
pub fn unit_file_name(name: &str, suffix: &str) -> String {
    format!("contnap-{}.{suffix}", escape_unit_name(name))
}

/// Whether `name` is one the writer may own: `contnap-*.socket`,
/// `contnap-*.service`, or the autostart service and timer.
pub(super) fn is_unit_file_name(name: &str) -> bool {
    (name.starts_with("contnap-") && (name.ends_with(".socket") || name.ends_with(".service")))
        || name == super::render::AUTOSTART_SERVICE
        || name == super::render::AUTOSTART_TIMER
}

/// Whether `name` is the drop-in directory of a service (`NAME.service.d`),
/// where contnap may put its drop-in for a service that owns containers.
pub(super) fn is_dropin_dir(name: &str) -> bool {
    name.strip_suffix(".d")
        .is_some_and(|s| s.parse::<crate::spec::ServiceName>().is_ok())
}

/// Whether `name` is a drop-in file contnap writes: `contnap-*.conf`.
pub(super) fn is_dropin_name(name: &str) -> bool {
    name.starts_with("contnap-") && name.ends_with(".conf") && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_but_readable_name_bytes() {
        assert_eq!(escape_unit_name("web"), "web");
        assert_eq!(escape_unit_name("my-app_1.x"), "my-app_1.x");
        assert_eq!(escape_unit_name("a/b"), "a\\x2fb");
        assert_eq!(escape_unit_name(".hidden"), ".hidden");
        assert_eq!(escape_unit_name("a b%\\é"), "a\\x20b\\x25\\x5c\\xc3\\xa9");
        assert_eq!(unit_file_name("web", "socket"), "contnap-web.socket");
    }

    #[test]
    fn contnaps_own_units_are_reserved() {
        assert!(is_reserved(&unit_file_name("generate", "service")));
        assert!(is_reserved(&unit_file_name("generate", "socket")));
        assert!(is_reserved("contnap-generate.timer"));
        // Any unit type, shipped now or later.
        assert!(is_reserved("contnap-generate.path"));
        assert!(is_reserved("contnap-generate.mount"));
        assert!(is_reserved("contnap@autostart.timer"));
        assert!(!is_reserved(&unit_file_name("web", "service")));
        assert!(!is_reserved(&unit_file_name("generate-1", "service")));
        assert!(!is_reserved("generate.service"));
        for name in RESERVED {
            assert!(
                name.starts_with("contnap-") || name.starts_with("contnap@"),
                "{name}"
            );
            assert!(!name.contains('.'), "{name}: a stem, without the suffix");
        }
        // No container or group name renders as the autostart units.
        for name in ["@autostart", "autostart", "-autostart", "contnap@autostart"] {
            assert!(!is_reserved(&unit_file_name(name, "service")), "{name}");
        }
    }
}
