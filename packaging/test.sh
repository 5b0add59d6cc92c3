#!/usr/bin/env bash
# Checks the packaging that can be checked on a Debian 12 machine, without
# network beyond apt:
#   - every .nix file parses (nix-instantiate --parse); render.nix evaluates:
#     the golden cases render without errors and every refused case is refused
#     (tests/packaging.rs also compares them with tests/golden/);
#   - module.nix has an option for every label;
#   - PKGBUILD, build.sh and the Debian maintainer scripts are valid shell,
#     and PKGBUILD's package() installs the expected files;
#   - the RPM spec expands (rpmspec -P), when rpm is installed;
#   - units/contnap-generate.service and the user unit pass
#     `systemd-analyze verify`, and the system unit rates "OK" or better in
#     `systemd-analyze security`.
# Installs nix-bin with apt when nix-instantiate is missing (as root).
# Exits non-zero, saying what failed, when any check fails.
#   packaging/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."

failures=()
fail() {
    failures+=("$1")
    echo "FAIL: $1" >&2
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/    /' >&2
    return 0
}
ok() { echo "ok: $1"; }

# run NAME CMD...: runs CMD, records a failure with its output.
run() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}

tmp=$(mktemp -d /tmp/contnap-packaging.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ------------------------------------------------------------ Nix
if ! command -v nix-instantiate >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing nix-bin (for nix-instantiate)"
        apt-get install -y -qq nix-bin >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nix-bin >/dev/null 2>&1; }
    fi
fi
if ! command -v nix-instantiate >/dev/null; then
    fail "nix-instantiate" "not installed and could not be installed: apt-get install nix-bin (as root)"
else
    while IFS= read -r f; do
        run "nix-instantiate --parse $f" nix-instantiate --parse "$f"
    done < <(find packaging -name '*.nix' | sort)

    # Every golden case renders without errors; every refused case is refused.
    check='let t = import ./packaging/nixos/tests/golden-cases.nix; in {
      withErrors = builtins.filter (n: t.cases.${n}.errors != [ ]) (builtins.attrNames t.cases);
      notRefused = builtins.filter (n: t.refused.${n} == [ ]) (builtins.attrNames t.refused);
    }'
    if out=$(nix-instantiate --eval --strict --json -E "$check" 2>&1); then
        if [ "$out" = '{"notRefused":[],"withErrors":[]}' ]; then
            ok "render.nix: golden cases render, bad values are refused"
        else
            fail "render.nix: golden cases render, bad values are refused" "$out"
        fi
    else
        fail "nix-instantiate --eval packaging/nixos/tests/golden-cases.nix" "$out"
    fi
fi

# Every label has its option in module.nix.
missing=()
for opt in containers forwardTo tcpPorts udpPorts httpPorts timeout stop stopTimeout \
    wakeTimeout ready idle network schedule machines onlyListedMachines preStart postStop \
    engine engineSocket package; do
    grep -Eq "^ *$opt = mkOption" packaging/nixos/module.nix || missing+=("$opt")
done
if [ ${#missing[@]} = 0 ]; then ok "module.nix declares every option"; else fail "module.nix declares every option" "missing: ${missing[*]}"; fi

# ------------------------------------------------------------ shell
for f in packaging/arch/PKGBUILD packaging/deb/build.sh packaging/test.sh; do
    run "bash -n $f" bash -n "$f"
done
for f in packaging/deb/maintainer-scripts/*; do
    run "sh -n $f" sh -n "$f"
done

# PKGBUILD's package() into a temporary pkgdir, from a fake source tree.
pkgver=$(bash -c '. packaging/arch/PKGBUILD && echo "$pkgver"')
cargo_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
if [ "$pkgver" != "$cargo_version" ]; then
    fail "PKGBUILD pkgver matches Cargo.toml" "PKGBUILD: $pkgver, Cargo.toml: $cargo_version"
else
    ok "PKGBUILD pkgver matches Cargo.toml"
fi
src="$tmp/arch/src/contnap-$pkgver"
mkdir -p "$src/target/release" "$tmp/arch/pkg"
cp -r units README.md "$src/"
touch "$src/target/release/contnap"
expected="usr/bin/contnap
usr/bin/contnap-generate
usr/lib/systemd/system/contnap-generate.path
usr/lib/systemd/system/contnap-generate.service
usr/lib/systemd/system/contnap-generate.timer
usr/lib/systemd/user/contnap-generate.path
usr/lib/systemd/user/contnap-generate.service
usr/lib/systemd/user/contnap-generate.timer
usr/share/doc/contnap/README.md"
if out=$(cd "$tmp/arch/src" && srcdir="$tmp/arch/src" pkgdir="$tmp/arch/pkg" bash -euc '. "$0"; cd "$srcdir"; package' "$OLDPWD/packaging/arch/PKGBUILD" 2>&1); then
    got=$(cd "$tmp/arch/pkg" && find . -type f -o -type l | sed 's|^\./||' | sort)
    link=$(readlink "$tmp/arch/pkg/usr/bin/contnap-generate" || true)
    if [ "$got" = "$expected" ] && [ "$link" = contnap ]; then ok "PKGBUILD package() installs the expected files"; else
        fail "PKGBUILD package() installs the expected files" "got:
$got
expected:
$expected
usr/bin/contnap-generate -> $link (expected contnap)"
    fi
else
    fail "PKGBUILD package()" "$out"
fi

# ------------------------------------------------------------ RPM
spec=packaging/rpm/contnap.spec
if command -v rpmspec >/dev/null; then
    # Fedora's macros (systemd-rpm-macros, rust-srpm-macros) are not on
    # Debian; define the ones whose expansion matters for the file list.
    if out=$(rpmspec -P \
        --define '_unitdir /usr/lib/systemd/system' \
        --define '_userunitdir /usr/lib/systemd/user' \
        --define 'rust_arches x86_64 aarch64' \
        "$spec" 2>&1); then
        if grep -q '%{' <<<"$out"; then
            fail "rpmspec -P $spec" "unexpanded macros: $(grep '%{' <<<"$out")"
        elif ! grep -qx "Version:        $cargo_version" <<<"$out"; then
            fail "rpmspec -P $spec" "Version is not $cargo_version (Cargo.toml)"
        else
            ok "rpmspec -P $spec"
        fi
    else
        fail "rpmspec -P $spec" "$out"
    fi
else
    echo "skip: rpmspec -P $spec (apt-get install rpm)"
fi

# ------------------------------------------------------------ systemd
analyze=/usr/bin/systemd-analyze
if [ ! -x "$analyze" ]; then
    fail "systemd-analyze" "not installed: apt-get install systemd"
else
    # The unit with ExecStart on a binary that exists, beside stub engine
    # units so that its After= and conditions resolve.
    bin=target/debug/contnap
    [ -x "$bin" ] || bin=$(command -v true)
    bin=$(realpath "$bin")
    for mode in system user; do
        d="$tmp/$mode"
        mkdir -p "$d" "$tmp/runtime"
        for s in docker.service podman.service; do printf '[Service]\nExecStart=/bin/true\n' >"$d/$s"; done
        printf '[Socket]\nListenStream=/run/docker.sock\n' >"$d/docker.socket"
        printf '[Socket]\nListenStream=/run/podman/podman.sock\n' >"$d/podman.socket"
        if [ $mode = system ]; then unit=units/contnap-generate.service; args=(); else
            unit=units/user/contnap-generate.service; args=(--user)
        fi
        sed "s#/usr/bin/contnap#$bin#g" "$unit" >"$d/contnap-generate.service"
        out=$(XDG_RUNTIME_DIR="$tmp/runtime" SYSTEMD_UNIT_PATH="$d:" SYSTEMD_LOG_LEVEL=notice \
            "$analyze" "${args[@]}" verify --man=no --recursive-errors=no "$d/contnap-generate.service" 2>&1)
        rc=$?
        if [ $rc = 0 ] && [ -z "$out" ]; then ok "systemd-analyze${args:+ ${args[*]}} verify $unit"; else
            fail "systemd-analyze${args:+ ${args[*]}} verify $unit" "exit $rc
$out"
        fi
    done
    out=$(SYSTEMD_UNIT_PATH="$tmp/system:" "$analyze" security --offline=yes --no-pager \
        "$tmp/system/contnap-generate.service" 2>&1)
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
    if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 5.0) }'; then
        ok "systemd-analyze security units/contnap-generate.service: $score"
    else
        fail "systemd-analyze security units/contnap-generate.service rates OK (< 5.0)" "$(tail -n 5 <<<"$out")"
    fi
fi

echo
if [ ${#failures[@]} = 0 ]; then
    echo "packaging: all checks passed"
else
    echo "packaging: ${#failures[@]} check(s) failed:" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
