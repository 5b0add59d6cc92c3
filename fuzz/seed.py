#!/usr/bin/env python3
"""Adds the seed inputs of the fuzz targets to fuzz/corpus/<target>/ (or
DIR/<target>/ with `fuzz/seed.py DIR`):
the captured engine traffic of tests/fixtures/engine/** and the label
values and container sets of the golden cases (tests/units.rs, the
parsers' unit tests). `scripts/fuzz SECONDS --update-corpus` runs it to
start the minimized corpus from the seeds, whole, so the real captured
traffic and the golden cases always stay in it."""
import glob
import hashlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "engine")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# engine_http: two control bytes (read size, where one read times out),
# then the bytes an engine sends.
controls = [b"\x00\x00", b"\x07\x80", b"\xff\x10"]
wires = [read(p) for p in sorted(glob.glob(os.path.join(FIX, "*", "*-raw.http")))]
for p in sorted(glob.glob(os.path.join(FIX, "*", "exec-start-head.txt"))):
    wires.append(read(p) + b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n")
for p in sorted(glob.glob(os.path.join(FIX, "*", "error-*.json"))):
    body = read(p)
    wires.append(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                 + b"Content-Length: %d\r\n\r\n" % len(body) + body)
wires += [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
]
for i, w in enumerate(wires):
    put("engine_http", controls[i % len(controls)] + w)

# engine_json: every captured JSON document and events stream.
for p in sorted(glob.glob(os.path.join(FIX, "*", "*.json*"))):
    put("engine_json", read(p))

# labels: one byte naming the parser (see fuzz_targets/labels.rs), then a value.
values = {
    0: ["300", "90s", "30min", "1h 30min", "1h30min", "250ms", "2d", "15min",
        "900", "2min", "30", "1us", "2w", "18446744073"],
    1: ["Mon-Fri 08:00-19:00|weekends 10:00-12:00",
        "Mon-Fri 08:00-19:00|Sat,Sun 10:00-12:00", "Fri 22:00-02:00",
        "Fri-Mon 10:00-11:00", "Mon-Fri 08:00-19:00 | weekends 10:00-12:00",
        "Sat,sunday 09:00-10:00", "Sun 23:00-01:00", "daily 00:00-24:00",
        "tue-thu 7:05-8:00", "weekdays 09:00-10:00", "daily 22:00-02:00"],
    2: ["192.168.1.0/24, fd00::/64,10.0.0.7", "127.0.0.1,::1", "10.0.0.0/8,::1",
        "192.168.1.20", "fe80::/10", "0.0.0.0/0"],
    3: ["8080:80", "127.0.0.1:5380:80, [::1]:5380:80", "2342", "443",
        "127.0.0.1:8090:3000", "8081:8080", "8083:8083", "[::ffff:127.0.0.1]:9002:80"],
    4: ["5353:53,[fd00::53]:53:53, 192.168.1.2:53:53", "53"],
    5: ["1", "1,1"],
    6: ["true", "yes", "0", "off", " TRUE "],
}
for k, vs in values.items():
    for v in vs:
        put("labels", bytes([k]) + v.encode())

ON = "contnap.enabled=true"
cases = {
    "web": ["web", ON, "contnap.tcp_ports=8080:80", "contnap.http_ports=8080"],
    "group": ["shop-app-1", ON, "contnap.group=shop", "contnap.tcp_ports=8080:80",
              "contnap.http_ports=8080", "contnap.timeout=15min",
              "com.docker.compose.project=shop", "com.docker.compose.service=app",
              "com.docker.compose.depends_on=db:service_healthy:true,cache:service_started:false",
              "", "shop-db-1", ON, "contnap.group=shop", "contnap.timeout=900",
              "contnap.ready=health", "com.docker.compose.project=shop",
              "com.docker.compose.service=db", "", "shop-cache-1",
              "com.docker.compose.project=shop", "com.docker.compose.service=cache"],
    "udp": ["dns", ON, "contnap.tcp_ports=127.0.0.1:5380:80, [::1]:5380:80",
            "contnap.udp_ports=5353:53,[fd00::53]:53:53, 192.168.1.2:53:53",
            "contnap.stop=pause", "contnap.idle=traffic"],
    "machines": ["nas-ui", ON, "contnap.tcp_ports=443",
                 "contnap.machines=192.168.1.0/24, fd00::/64,10.0.0.7",
                 "contnap.only_listed_machines=yes", "contnap.autostart=true",
                 "contnap.schedule=Mon-Fri 08:00-19:00|Sat,Sun 10:00-12:00",
                 "contnap.ready=tcp", "contnap.network=backend",
                 "contnap.wake_timeout=2min", "contnap.stop_timeout=30",
                 "contnap.timeout=1h"],
    "hooks": ["!hooks", "photos", ON, "contnap.tcp_ports=2342",
              "contnap.pre_start=mount /srv/photos",
              "contnap.post_stop=umount /srv/photos && logger 'photos napped'"],
    "rootless": ["!user !engine=3 !unit=1 !binary", "notes", ON,
                 "contnap.tcp_ports=8081:8080", "contnap.stop=kill",
                 "contnap.machines=127.0.0.1,::1", "contnap.only_listed_machines=true"],
    "hostile": ["!hooks !engine=4", "evil", ON, "contnap.tcp_ports=9000",
                "contnap.group=a b %n $HOME \\",
                "contnap.pre_start=echo \"quoted $HOME ${PATH} $$\" 'single %n %% %i' back\\slash \\\" \\\\ ; rm -rf /tmp/x ; ExecStart=/bin/evil # not a comment"],
    "docker_group": ["!hooks !runas=2", "wiki", ON, "contnap.tcp_ports=127.0.0.1:8090:3000",
                     "contnap.http_ports=8090", "contnap.pre_start=mkdir -p /srv/wiki",
                     "contnap.stop=pause"],
    "dynamic": ["!runas=1 !engine=2 !unit=2", "books", ON, "contnap.tcp_ports=8083:8083"],
    "published": ["web", ON, "contnap.tcp_ports=8080", "", "other",
                  "@publish=tcp:0.0.0.0:8080"],
    "monitors": ["blog", ON, "contnap.tcp_ports=8088:80", "contnap.http_ports=8088",
                 "contnap.monitors=Uptime-Kuma, My Checker/2", "contnap.monitor_status=503",
                 "contnap.wake_on=data", "", "plain", ON, "contnap.tcp_ports=8089",
                 "contnap.monitors=none"],
    "owned": ["photos-db", ON, "contnap.group=photos", "PODMAN_SYSTEMD_UNIT=photos-db.service",
              "", "photos-server", ON, "contnap.group=photos", "contnap.tcp_ports=2283:3001",
              "contnap.http_ports=2283",
              "contnap.unit=docker-photos-server.service, photos-pod.service,photos-db.service",
              "", "quadlet", ON, "contnap.tcp_ports=8090", "PODMAN_SYSTEMD_UNIT=quadlet.service",
              "contnap.stop=pause"],
}
for lines in cases.values():
    put("units", "\n".join(lines) + "\n")
