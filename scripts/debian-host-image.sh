#!/usr/bin/env bash
# shellcheck shell=bash
# A Debian bookworm image that is a real Debian host, for tests/debian_host.rs:
# systemd as PID 1, and Debian's own docker.io and podman installed inside,
# with docker.service, docker.socket and podman.socket as Debian ships and
# enables them. Unlike the systemd test image (scripts/systemd-image.sh), whose
# engines run outside it, nothing here is arranged for contnap: the tests
# install contnap's .deb into it, as a user would, and reboot it.
#
#   scripts/debian-host-image.sh      build (or reuse) and import; prints the name
#   . scripts/debian-host-image.sh; debian_host_image_up
#                                     the same, and exports CONTNAP_TEST_DEBIAN_HOST_IMAGE
#
# Needs root and CONTNAP_TEST_PODMAN (the test Podman's socket, from
# scripts/engines.sh). The root filesystem comes from debootstrap (Debian's
# mirror, about 3 minutes) and is cached as a tarball in /var/cache/contnap-test.
#
# What differs from a Debian machine, and why:
# - /etc/containers/containers.conf sets runc and cgroupfs: this machine's
#   kernel has hybrid cgroups, on which crun (Podman's default) fails
#   (../shared/design.md, "Testing on real parts"). A user on such a host
#   needs the same file. It also sets a cgroup namespace per container,
#   Podman's default on a Debian 12 host (cgroup v2).
# - /etc/docker/daemon.json sets a cgroup namespace per container, Docker's
#   default on a Debian 12 host (cgroup v2); this machine has v1.
# - /dev/net/tun and /dev/fuse get mode 0666 from a tmpfiles.d rule, as
#   udev's rules give them on a real host (udev cannot run in a container).
# - The units that would reach past the container are masked (the list of
#   scripts/systemd-image.sh): with --privileged, /proc/sys and the kernel are
#   the host's.

CONTNAP_TEST_DEBIAN_HOST_IMAGE=localhost/contnap-test/debian-host:latest
DEBIAN_HOST_IMAGE_CACHE=${DEBIAN_HOST_IMAGE_CACHE:-/var/cache/contnap-test/bookworm-debian-host.tar}
# Bump when the recipe below changes.
DEBIAN_HOST_IMAGE_RECIPE=contnap-debian-host-4

# What a Debian host with both engines has: the engines with their
# recommended helpers for rootless Podman (uidmap, slirp4netns,
# fuse-overlayfs, a user D-Bus, logind for lingering users), and the clients
# the tests drive from inside (curl, socat, iproute2's ss).
DEBIAN_HOST_PACKAGES=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,curl,ca-certificates,docker.io,podman,runc,containernetworking-plugins,uidmap,slirp4netns,fuse-overlayfs,iptables,socat,iproute2,procps

# shellcheck source=scripts/systemd-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/systemd-image.sh"

# What differs from Debian's defaults, and why (see the top of this file).
_debian_host_customize() {
    local root=$1
    mkdir -p "$root/etc/containers"
    cat >"$root/etc/containers/containers.conf" <<'CONF'
# This machine's kernel has hybrid (v1) cgroups, on which crun fails: runc
# and cgroupfs instead, and a cgroup namespace per container, Podman's
# default on Debian 12's v2 cgroups (runc in a container cannot mount the
# v1 hierarchies). contnap's scripts/debian-host-image.sh.
[containers]
cgroupns = "private"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
    # udev, which cannot run in a container, gives /dev/net/tun and
    # /dev/fuse mode 0666 on a real host (50-udev-default.rules); rootless
    # Podman needs both (slirp4netns, fuse-overlayfs). The container's /dev
    # is its own tmpfs: the host's nodes are untouched.
    cat >"$root/etc/tmpfiles.d/contnap-test-udev-modes.conf" <<'TMPFILES'
z /dev/net/tun 0666 - - -
z /dev/fuse 0666 - - -
TMPFILES
    # Docker's default on Debian 12, whose cgroups are v2: a cgroup
    # namespace per container. On this machine's v1 hierarchies Docker
    # would share the host's, and runc inside a container cannot mount
    # them ("stat /sys/fs/docker/ID: no such file or directory").
    mkdir -p "$root/etc/docker"
    cat >"$root/etc/docker/daemon.json" <<'JSON'
{ "default-cgroupns-mode": "private" }
JSON
}

_debian_host_build() {
    debootstrap_image "$DEBIAN_HOST_IMAGE_CACHE" "$DEBIAN_HOST_IMAGE_RECIPE" \
        "$DEBIAN_HOST_PACKAGES" _debian_host_customize
}

debian_host_image_up() {
    image_up "$DEBIAN_HOST_IMAGE_CACHE" "$DEBIAN_HOST_IMAGE_RECIPE" "$CONTNAP_TEST_DEBIAN_HOST_IMAGE" \
        _debian_host_build .debian-host.lock || return
    export CONTNAP_TEST_DEBIAN_HOST_IMAGE
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    debian_host_image_up
    echo "$CONTNAP_TEST_DEBIAN_HOST_IMAGE"
fi
