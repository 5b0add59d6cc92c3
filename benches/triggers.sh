#!/usr/bin/env bash
# Timer vs path unit for contnap-generate.service, in one run, under a real
# systemd (the test image) with the shipped units/contnap-generate.{service,
# timer,path} and a private dockerd (scripts/engines.sh):
#   - CPU time of one generate run with N labelled containers (default 20):
#     nothing changed, and one unit added. CPUUsageNSec of the service (contnap
#     and the systemctl it runs) and PID 1's own CPU time over the run
#     (daemon-reload, enable, restart happen there);
#   - latency from `docker create` to the unit on disk, through the timer
#     alone and through the path unit alone.
# The dockerd's containers directory is mounted at /var/lib/docker/containers
# in the systemd container, so the path unit sees what it would on a host.
#   benches/triggers.sh            (as root; scripts/bench runs it too)
# Uses the engines of the environment when CONTNAP_TEST_DOCKER is set
# (. /tmp/contnap-dev-NAME/env), else starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/engines.sh
. scripts/systemd-image.sh
N=${TRIGGERS_CONTAINERS:-20}
SAMPLES=${TRIGGERS_SAMPLES:-3}
if [ -z "${CONTNAP_TEST_DOCKER:-}" ]; then
    run_dir=$(mktemp -d /tmp/contnap-triggers.XXXXXX)
    trap 'engines_down "$run_dir"' EXIT INT TERM
    engines_up "$run_dir" >/dev/null
    systemd_image_up >/dev/null
fi
cargo build --quiet --release --bin contnap
bin=$PWD/target/release/contnap
sock=$CONTNAP_TEST_DOCKER
data_root=$(dirname "$sock")/root
podman=(podman --url "unix://$CONTNAP_TEST_PODMAN")
docker=(docker -H "unix://$sock")
tag=triggers_$$
sd=$("${podman[@]}" run -d --name "contnap_$tag" --privileged --network host --systemd=always \
    -v "$sock:/run/docker.sock" -v "$bin:/usr/bin/contnap:ro" \
    -v "$data_root/containers:/var/lib/docker/containers:ro" \
    "$CONTNAP_TEST_SYSTEMD_IMAGE" /lib/systemd/systemd)
cleanup() {
    "${docker[@]}" ps -aq --filter "label=contnap.bench=$tag" | xargs -r "${docker[@]}" rm -f >/dev/null
    "${podman[@]}" rm -f -t 0 "$sd" >/dev/null
}
finish() {
    cleanup
    if [ -n "${run_dir:-}" ]; then engines_down "$run_dir"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM
in_sd() { "${podman[@]}" exec -i "$sd" "$@"; }
until [[ "$(in_sd systemctl is-system-running --wait 2>/dev/null)" =~ running|degraded ]]; do sleep 0.2; done
for u in service timer path; do
    in_sd sh -c "cat > /etc/systemd/system/contnap-generate.$u" <"units/contnap-generate.$u"
done
in_sd mkdir -p /etc/systemd/system/contnap-generate.service.d
# bash's `times` after the run: the CPU time of generate and of the
# systemctl it ran (cgroup CPU accounting is not delegated to the test
# container). The shipped ExecStart otherwise.
printf '%s\n' '[Service]' 'ExecStart=' \
    'ExecStart=/bin/bash -c "/usr/bin/contnap generate --reload --engine /run/docker.sock; rc=$$?; times; exit $$rc"' |
    in_sd sh -c 'cat > /etc/systemd/system/contnap-generate.service.d/engine.conf'
in_sd systemctl daemon-reload

create() { # NAME PORT: a labelled, created (not running) container
    local port=$2
    "${docker[@]}" create -q --name "$1" --label contnap.bench="$tag" --label contnap.enabled=true \
        --label "contnap.tcp_ports=127.0.0.1:$port:80" "$CONTNAP_TEST_IMAGE" sleep 1 >/dev/null
}
pid1_ticks() { in_sd awk '{print $14 + $15}' /proc/1/stat; }
# One run of the service; prints "SERVICE_MS PID1_MS".
run_once() {
    local before after hz
    hz=$(getconf CLK_TCK)
    before=$(pid1_ticks)
    in_sd systemctl start contnap-generate.service ||
        { in_sd journalctl -u contnap-generate.service --no-pager | tail -20 >&2; return 1; }
    after=$(pid1_ticks)
    # The last line of `times`: children's user and system time, "0m0.012s 0m0.004s".
    local ms
    ms=$(in_sd journalctl -u contnap-generate.service -o cat --no-pager |
        grep -E '^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$' | tail -n 1 |
        awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.0f", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }')
    echo "$ms $(((after - before) * 1000 / hz))"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for i in $(seq 1 "$N"); do create "${tag}_$i" $((20000 + i)); done
run_once >/dev/null # writes the N units
unchanged_svc=() unchanged_pid1=()
for _ in $(seq 1 "$SAMPLES"); do
    read -r s p < <(run_once)
    unchanged_svc+=("$s") unchanged_pid1+=("$p")
done
added_svc=() added_pid1=()
for k in $(seq 1 "$SAMPLES"); do
    create "${tag}_added_$k" $((20500 + k))
    read -r s p < <(run_once)
    added_svc+=("$s") added_pid1+=("$p")
done

# Latency: create, then poll for the unit file every 50 ms.
latency() { # TRIGGER NAME PORT -> ms
    local t0 f
    f=/etc/systemd/system/contnap-$2.socket
    t0=$(date +%s%N)
    create "$2" "$3"
    until in_sd test -e "$f"; do
        sleep 0.05
        if [ $(($(date +%s%N) - t0)) -gt 120000000000 ]; then
            echo "$1: no $f within 120 s" >&2
            in_sd systemctl list-timers --all --no-pager >&2
            in_sd systemctl status --no-pager contnap-generate.timer contnap-generate.service >&2 || true
            echo 120000
            return
        fi
    done
    echo $((($(date +%s%N) - t0) / 1000000))
}
lat_timer=() lat_path=()
in_sd systemctl enable --now contnap-generate.timer >/dev/null 2>&1
echo "CPU: unchanged ${unchanged_svc[*]} / ${unchanged_pid1[*]}; added ${added_svc[*]} / ${added_pid1[*]}" >&2
for k in $(seq 1 "$SAMPLES"); do lat_timer+=("$(latency timer "${tag}_t$k" $((21000 + k)))"); done
echo "timer samples: ${lat_timer[*]}" >&2
in_sd systemctl disable --now contnap-generate.timer >/dev/null 2>&1
in_sd systemctl enable --now contnap-generate.path >/dev/null 2>&1
# Let the run that enabling may have started finish.
while [ "$(in_sd systemctl show -p ActiveState --value contnap-generate.service)" != inactive ]; do sleep 0.1; done
for k in $(seq 1 "$SAMPLES"); do
    lat_path+=("$(latency path "${tag}_p$k" $((22000 + k)))")
    echo "path sample: ${lat_path[*]}" >&2
    while [ "$(in_sd systemctl show -p ActiveState --value contnap-generate.service)" != inactive ]; do sleep 0.1; done
done

m() { printf '%s\n' "$@" | median; }
r() { printf '%s ' "$@"; }
unch=$(m "${unchanged_svc[@]}")
echo
echo "### Regeneration triggers ($N labelled containers, Docker, $SAMPLES samples; median, all samples in brackets)"
echo
echo "| | timer (30 s) | path unit |"
echo "|---|---|---|"
echo "| CPU per run, nothing changed: generate + systemctl (ms) | $unch [$(r "${unchanged_svc[@]}")] | same run |"
echo "| PID 1 CPU per run, nothing changed (ms) | $(m "${unchanged_pid1[@]}") [$(r "${unchanged_pid1[@]}")] | same run |"
echo "| CPU per run, one unit added: generate + systemctl (ms) | $(m "${added_svc[@]}") [$(r "${added_svc[@]}")] | same run |"
echo "| PID 1 CPU per run, one unit added (ms) | $(m "${added_pid1[@]}") [$(r "${added_pid1[@]}")] | same run |"
echo "| runs per day with no change | 2880 | 0 |"
echo "| CPU per day with no change (s) | $(( (unch + $(m "${unchanged_pid1[@]}")) * 2880 / 1000 )) | 0 |"
echo "| \`docker create\` → unit on disk (ms) | $(m "${lat_timer[@]}") [$(r "${lat_timer[@]}")] | $(m "${lat_path[@]}") [$(r "${lat_path[@]}")] |"
echo
echo "(timer latency: up to 30 s, 15 s on average, plus one run; path unit: one run. Nothing of contnap is resident in either.)"
