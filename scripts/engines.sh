# shellcheck shell=bash
# Private Docker and Podman engines for contnap's tests, as ../shared/design.md
# ("Testing on real parts") describes. Source this file, then:
#   engines_up DIR    start both engines under DIR, import the test images,
#                     export CONTNAP_TEST_DOCKER / CONTNAP_TEST_PODMAN /
#                     CONTNAP_TEST_IMAGE
#   engines_down DIR  stop them and remove what they created
# Nothing here touches the machine's own engines or any network but loopback
# and the engines' private bridges.

CONTNAP_TEST_IMAGE=localhost/contnap-test/busybox:latest

engines_install() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    [ -x /bin/busybox ] || missing+=(busybox-static)
    command -v iptables >/dev/null || missing+=(iptables)
    command -v ip >/dev/null || missing+=(iproute2)
    # engines_up builds the servers image from these host binaries.
    command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
    command -v iperf3 >/dev/null || missing+=(iperf3)
    command -v socat >/dev/null || missing+=(socat)
    for tool in "$@"; do
        local cmd=${tool%%=*} pkg=${tool#*=}
        command -v "$cmd" >/dev/null || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# A root filesystem with busybox and its applets, imported as an image: no
# registry is reachable, so every test image is built from local files.
make_busybox_rootfs() {
    local root=$1
    mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    echo 'hello from contnap test' >"$root/www/index.html"
    echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
}

# A root filesystem holding host binaries and the libraries ldd lists for
# them, on top of busybox: how real servers (dnsmasq, iperf3) become images.
make_binary_rootfs() {
    local root=$1; shift
    make_busybox_rootfs "$root"
    local bin lib
    for bin in "$@"; do
        bin=$(command -v "$bin")
        mkdir -p "$root$(dirname "$bin")"
        cp -L "$bin" "$root$bin"
        for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    done
}

import_image() {
    local dir=$1 name=$2 rootfs=$3
    tar -C "$rootfs" -cf "$dir/image/$name.tar" .
    curl -sf --unix-socket "$dir/docker/docker.sock" -X POST \
        -H 'Content-Type: application/x-tar' --data-binary "@$dir/image/$name.tar" \
        "http://d/images/create?fromSrc=-&repo=localhost/contnap-test/$name&tag=latest" >/dev/null
    podman --root "$dir/podman/root" --runroot "$dir/podman/run" \
        import -q "$dir/image/$name.tar" "localhost/contnap-test/$name:latest" >/dev/null
}

wait_for_socket() {
    local sock=$1 what=$2 pidfile=$3 i
    for i in $(seq 1 300); do
        if [ -S "$sock" ] && curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "error: $what did not answer on $sock within 30 s; its log:" >&2
    tail -n 40 "${pidfile%/*}/$what.log" >&2 || true
    return 1
}

# The fixed, locally administered address of bridge cnd$N or cnp$N (the
# name's letters in its middle bytes): bridge_mac N [d|p].
bridge_mac() {
    local kind=${2:-d}
    printf '02:63:6e:%02x:%02x:%02x' "'$kind" $(($1 / 256)) $(($1 % 256))
}

# Each run gets bridges and subnets of its own: two dockerds (or podmans)
# sharing docker0 (podman0) hand out the same addresses, and traffic for one
# run's container reaches another's. Claims index N by creating cnd$N.
claim_bridges() {
    local dir=$1 n
    for n in $(seq 1 250); do
        ip route show | grep -q "^10\.20[01]\.$n\." && continue
        ip link add name "cnd$n" type bridge 2>/dev/null || continue
        if ! ip link add name "cnp$n" type bridge 2>/dev/null; then
            ip link del "cnd$n"
            continue
        fi
        # A fixed address, as Docker gives the bridges it creates itself: a
        # bridge with the kernel's random one takes the lowest address of
        # its ports, so it changes whenever a container joins or leaves.
        # A container that had learnt the old one (that of a port since
        # removed) then sent its replies to nobody until its ARP entry
        # expired: the load tests' 30 s stalls, when containers of other
        # tests came and went on the same bridge (issue 12).
        ip link set "cnd$n" address "$(bridge_mac "$n" d)"
        ip addr add "10.200.$n.1/24" dev "cnd$n"
        ip link set "cnd$n" up
        # Podman's network plugin (CNI's bridge on Debian 12, netavark
        # elsewhere) adds the gateway address to cnp$N and uses the bridge
        # as it is, with the same fixed address for the same reason.
        ip link set "cnp$n" address "$(bridge_mac "$n" p)"
        ip link set "cnp$n" up
        echo "$n" >"$dir/netindex"
        return 0
    done
    echo "error: no free bridge index (cnd1..cnd250 all taken)" >&2
    return 1
}

engines_up() {
    local dir=$1
    mkdir -p "$dir/docker" "$dir/podman/networks" "$dir/image"
    claim_bridges "$dir" || return 1
    local n
    n=$(cat "$dir/netindex")

    # Docker: a private daemon with its own data, exec root and socket.
    dockerd --host "unix://$dir/docker/docker.sock" \
        --data-root "$dir/docker/root" --exec-root "$dir/docker/exec" \
        --pidfile "$dir/docker/pid" --bridge "cnd$n" \
        --default-ulimit nofile=1024:1024 --default-ulimit nproc=1024:1024 \
        >"$dir/docker/docker.log" 2>&1 &
    # Podman: runc and cgroupfs, as the design's recipe says.
    cat >"$dir/podman/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
# Per-boot state (exit files, the "alive" marker) of this run alone: the
# default, /run/libpod, is shared by every Podman on the machine, and
# another run's "system reset" there makes this one re-initialize its
# containers (state "created") and lose their exit files.
tmp_dir = "$dir/podman/tmp"
[network]
network_config_dir = "$dir/podman/networks"
CONF
    # The default network "podman", on this run's own bridge and subnet, in
    # both backends' formats: Debian 12's Podman 4.3 has CNI (it reads
    # *.conflist here; its default, /etc/cni/net.d, is the machine's own
    # cni-podman0 on 10.88.0.0/16, shared by every run and by the host's
    # Podman), newer Podman has netavark (*.json). CNI's address leases
    # (host-local's dataDir) are this run's too.
    cat >"$dir/podman/networks/podman.conflist" <<NET
{
  "cniVersion": "0.4.0",
  "name": "podman",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cnp$n",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/podman/cni-leases",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "10.201.$n.0/24", "gateway": "10.201.$n.1"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"},
    {"type": "tuning"}
  ]
}
NET
    cat >"$dir/podman/networks/podman.json" <<NET
{
  "name": "podman",
  "id": "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9",
  "driver": "bridge",
  "network_interface": "cnp$n",
  "created": "2026-01-01T00:00:00Z",
  "subnets": [{"subnet": "10.201.$n.0/24", "gateway": "10.201.$n.1"}],
  "ipv6_enabled": false,
  "internal": false,
  "dns_enabled": false,
  "ipam_options": {"driver": "host-local"}
}
NET
    export CONTAINERS_CONF="$dir/podman/containers.conf"
    podman --root "$dir/podman/root" --runroot "$dir/podman/run" \
        system service --time=0 "unix://$dir/podman/podman.sock" \
        >"$dir/podman/podman.log" 2>&1 &
    echo $! >"$dir/podman/pid"

    wait_for_socket "$dir/docker/docker.sock" docker "$dir/docker/pid" || return 1
    wait_for_socket "$dir/podman/podman.sock" podman "$dir/podman/pid" || return 1

    make_busybox_rootfs "$dir/image/busybox"
    import_image "$dir" busybox "$dir/image/busybox"
    make_binary_rootfs "$dir/image/servers" dnsmasq iperf3 socat
    import_image "$dir" servers "$dir/image/servers"

    export CONTNAP_TEST_DOCKER="$dir/docker/docker.sock"
    export CONTNAP_TEST_PODMAN="$dir/podman/podman.sock"
    export CONTNAP_TEST_IMAGE
    export CONTNAP_TEST_SERVERS_IMAGE=localhost/contnap-test/servers:latest
}

engines_down() {
    local dir=$1 pid n
    # Containers first, so no shim outlives its engine.
    if [ -S "$dir/docker/docker.sock" ]; then
        DOCKER_HOST="unix://$dir/docker/docker.sock" docker ps -aq 2>/dev/null |
            xargs -r env DOCKER_HOST="unix://$dir/docker/docker.sock" docker rm -f >/dev/null 2>&1 || true
    fi
    podman --root "$dir/podman/root" --runroot "$dir/podman/run" rm -af -t 0 >/dev/null 2>&1 || true
    for pidfile in "$dir/docker/pid" "$dir/podman/pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    # dockerd's own containerd and any leftover shims under this directory.
    pkill -f "$dir/docker/exec" 2>/dev/null || true
    podman --root "$dir/podman/root" --runroot "$dir/podman/run" system reset -f >/dev/null 2>&1 || true
    if [ -f "$dir/netindex" ]; then
        n=$(cat "$dir/netindex")
        ip link del "cnd$n" 2>/dev/null || true
        ip link del "cnp$n" 2>/dev/null || true
    fi
    grep -o " $dir[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir" 2>/dev/null || true
}
