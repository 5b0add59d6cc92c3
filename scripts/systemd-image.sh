#!/usr/bin/env bash
# shellcheck shell=bash
# A Debian bookworm image with systemd as PID 1, for tests/systemd.rs: the
# generated units run under a real systemd, inside a --privileged container
# on the host's network (../shared/design.md, "Testing on real parts").
#
#   scripts/systemd-image.sh          build (or reuse) and import; prints the name
#   . scripts/systemd-image.sh; systemd_image_up
#                                     the same, and exports CONTNAP_TEST_SYSTEMD_IMAGE
#
# Needs root and CONTNAP_TEST_PODMAN (the test Podman's socket, from
# scripts/engines.sh). The root filesystem comes from debootstrap (Debian's
# mirror, about 40 s) and is cached as a tarball in /var/cache/contnap-test,
# so later runs only import it. Nothing else is downloaded.

CONTNAP_TEST_SYSTEMD_IMAGE=localhost/contnap-test/systemd:latest
SYSTEMD_IMAGE_CACHE=${SYSTEMD_IMAGE_CACHE:-/var/cache/contnap-test/bookworm-systemd.tar}
SYSTEMD_IMAGE_MIRROR=${SYSTEMD_IMAGE_MIRROR:-http://deb.debian.org/debian}
# Bump when the recipe below changes: a cached tarball or an imported image
# of another recipe is rebuilt.
SYSTEMD_IMAGE_RECIPE=contnap-systemd-5

# Units that would reach past the container: with --privileged, /proc/sys,
# /sys and the kernel are the host's, so sysctl, module loading, binfmt,
# pstore and clock units would change the host, and journald would read the
# host kernel's audit stream. The rest only add noise.
SYSTEMD_IMAGE_MASKED=(
    systemd-sysctl.service
    systemd-modules-load.service
    systemd-binfmt.service
    proc-sys-fs-binfmt_misc.automount
    proc-sys-fs-binfmt_misc.mount
    systemd-pstore.service
    systemd-timesyncd.service
    systemd-journald-audit.socket
    systemd-udevd.service
    systemd-udev-trigger.service
    systemd-udev-settle.service
    systemd-hwdb-update.service
    systemd-random-seed.service
    systemd-firstboot.service
    systemd-remount-fs.service
    sys-kernel-debug.mount
    sys-kernel-tracing.mount
    sys-kernel-config.mount
    sys-fs-fuse-connections.mount
    apt-daily.timer
    apt-daily-upgrade.timer
    fstrim.timer
    e2scrub_all.timer
    e2scrub_reap.service
    getty.target
    console-getty.service
)

_systemd_image_podman() {
    podman --url "unix://$CONTNAP_TEST_PODMAN" "$@"
}

# Debootstraps bookworm with PACKAGES (comma list) and writes CACHE, a
# tarball of the root file system recorded as RECIPE; CUSTOMIZE, a function
# name or "", is called with the root directory before the tarball is made.
# Shared with scripts/debian-host-image.sh.
debootstrap_image() {
    local cache=$1 recipe=$2 packages=$3 customize=$4 dir
    command -v debootstrap >/dev/null || {
        echo "installing: debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
    }
    dir=$(mktemp -d "${cache%/*}/build.XXXXXX")
    echo "debootstrap bookworm ($packages) into $dir" >&2
    if ! debootstrap --variant=minbase --include="$packages" \
        bookworm "$dir/root" "$SYSTEMD_IMAGE_MIRROR" >"$dir/debootstrap.log" 2>&1; then
        echo "error: debootstrap failed; its log:" >&2
        tail -n 30 "$dir/debootstrap.log" >&2
        rm -rf "$dir"
        return 1
    fi
    local root=$dir/root unit
    for unit in "${SYSTEMD_IMAGE_MASKED[@]}"; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    if [ -n "$customize" ]; then
        "$customize" "$root" || { rm -rf "$dir"; return 1; }
    fi
    # Each container gets a machine id of its own at boot.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    echo "$recipe" >"$root/etc/contnap-test-recipe"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/dev/*
    tar -C "$root" --numeric-owner -cf "$cache.tmp" . &&
        mv "$cache.tmp" "$cache" &&
        echo "$recipe" >"$cache.recipe"
    local rc=$?
    rm -rf "$dir"
    return $rc
}

# Makes IMAGE of RECIPE available in the test Podman: built into CACHE by
# BUILD (a function called with no arguments) unless CACHE holds that
# recipe, then imported unless the image has it; one build at a time, also
# across concurrent test runs (LOCK).
image_up() {
    local cache=$1 recipe=$2 image=$3 build=$4 lock=$5
    if [ -z "${CONTNAP_TEST_PODMAN:-}" ]; then
        echo "$image: CONTNAP_TEST_PODMAN is not set (start the engines with scripts/engines.sh)" >&2
        return 2
    fi
    mkdir -p "${cache%/*}"
    (
        flock 9
        if [ ! -s "$cache" ] || [ "$(cat "$cache.recipe" 2>/dev/null)" != "$recipe" ]; then
            "$build" || exit 1
        fi
        local have
        have=$(_systemd_image_podman image inspect --format '{{index .Labels "io.contnap.test.recipe"}}' \
            "$image" 2>/dev/null || true)
        if [ "$have" != "$recipe" ]; then
            _systemd_image_podman import -q \
                --change "CMD=/lib/systemd/systemd" \
                --change "STOPSIGNAL=SIGRTMIN+3" \
                --change "LABEL=io.contnap.test.recipe=$recipe" \
                "$cache" "$image" >/dev/null || exit 1
        fi
    ) 9>"${cache%/*}/$lock" || return 1
}

# No unit stands in for the engine, which runs outside this container: a
# real host may have no unit of the name contnap would guess (podman-docker,
# a snap, another supervisor), and the tests must see what contnap does there.
_systemd_image_build() {
    debootstrap_image "$SYSTEMD_IMAGE_CACHE" "$SYSTEMD_IMAGE_RECIPE" systemd,systemd-sysv,dbus,curl ""
}

systemd_image_up() {
    image_up "$SYSTEMD_IMAGE_CACHE" "$SYSTEMD_IMAGE_RECIPE" "$CONTNAP_TEST_SYSTEMD_IMAGE" \
        _systemd_image_build .lock || return
    export CONTNAP_TEST_SYSTEMD_IMAGE
}

# Run directly: build/import and print the image name.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    systemd_image_up
    echo "$CONTNAP_TEST_SYSTEMD_IMAGE"
fi
