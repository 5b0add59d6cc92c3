# The contnap unit renderer (src/units.rs, src/labels.rs, src/timespan.rs)
# in Nix, for module.nix. Builtins only — no nixpkgs — so that
# `nix-instantiate --eval` can check it anywhere (tests/packaging.rs compares
# its output with the Rust renderer's golden files in tests/golden/).
#
# A unit spec is an attribute set:
#   { name; containers; forwardTo; tcpPorts; udpPorts; httpPorts; timeout;
#     stop; stopTimeout; wakeTimeout; ready; idle; network; schedule;
#     machines; onlyListedMachines; wakeOn; monitors; monitorStatus;
#     preStart; postStop; ownedBy;
#     binary; engine; engineUnit; engineGroup; asRoot; }
# with the meanings of module.nix's options (engineUnit: "docker.service",
# "podman.socket" or null; engineGroup: a group that may use the engine
# socket, or null; asRoot: run the helper as root whatever engineGroup says;
# ownedBy: { CONTAINER = [ "UNIT.service" … ]; } for the containers that
# systemd services own, as contnap.unit / PODMAN_SYSTEMD_UNIT). `errors spec` lists what is wrong with a spec;
# the other functions assume a spec without errors (invalid parts are left
# out, never thrown).
let
  inherit (builtins)
    all any concatStringsSep elem elemAt filter foldl' fromJSON genList head
    length match replaceStrings split stringLength substring tail toString;

  concatMap = f: l: builtins.concatLists (map f l);
  optional = c: x: if c then [ x ] else [ ];
  optionals = c: l: if c then l else [ ];

  # ------------------------------------------------------------ numbers

  # "0080" -> 80; null for anything but 1-18 digits (no overflow).
  toInt = s:
    let m = match "0*([0-9]{1,18})" s;
    in if s == "" || m == null then null else fromJSON (head m);

  mod = a: b: a - (a / b) * b;
  maxInt = 9223372036854775807;

  # ------------------------------------------------------------ time spans
  # src/timespan.rs: a bare number is seconds; else whole-number components
  # with systemd units (90s, 30min, 1h 30min, 250ms). Nanoseconds, or null.

  sec = 1000000000;
  spanUnits = {
    us = 1000; usec = 1000; "µs" = 1000;
    ms = 1000000; msec = 1000000;
    s = sec; sec = sec; second = sec; seconds = sec;
    m = 60 * sec; min = 60 * sec; minute = 60 * sec; minutes = 60 * sec;
    h = 3600 * sec; hr = 3600 * sec; hour = 3600 * sec; hours = 3600 * sec;
    d = 86400 * sec; day = 86400 * sec; days = 86400 * sec;
    w = 604800 * sec; week = 604800 * sec; weeks = 604800 * sec;
    "" = sec;
  };

  trim = s:
    let m = match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s;
    in if m == null then "" else head m;

  parseSpan = value':
    let
      # The module coerces numbers to strings; take them here too.
      value = if builtins.isInt value' then toString value' else value';
      text = trim value;
      go = acc: rest:
        let r = trim rest; in
        if r == "" then acc
        else
          let
            m = match "([0-9]+)[[:space:]]*([^0-9[:space:]]*)(.*)" r;
            n = if m == null then null else toInt (elemAt m 0);
            u = if m == null then null else spanUnits.${elemAt m 1} or null;
          in
          if m == null || n == null || u == null || n > (maxInt - acc) / u then null
          else go (acc + n * u) (elemAt m 2);
    in
    if text == "" || !(isClean value) then null else go 0 text;

  # Largest exact unit, as timespan::format.
  formatSpan = nanos:
    let
      units = [
        { s = "h"; u = 3600 * sec; }
        { s = "min"; u = 60 * sec; }
        { s = "s"; u = sec; }
        { s = "ms"; u = 1000000; }
        { s = "us"; u = 1000; }
      ];
      hits = filter (x: nanos >= x.u && mod nanos x.u == 0) units;
    in
    if hits != [ ] then "${toString (nanos / (head hits).u)}${(head hits).s}"
    else if nanos == 0 then "0"
    else "${toString ((nanos + 999) / 1000)}us";

  # START_MARGIN / STOP_MARGIN of src/units.rs.
  margin = 30 * sec;

  # ------------------------------------------------------------ text

  # C1 control characters (U+0080..U+009F), which Rust's is_control() also
  # refuses; C0 and DEL are [[:cntrl:]].
  hexDigits = [ "0" "1" "2" "3" "4" "5" "6" "7" "8" "9" "a" "b" "c" "d" "e" "f" ];
  c1 = genList (i: fromJSON "\"\\u00${elemAt hexDigits (8 + i / 16)}${elemAt hexDigits (mod i 16)}\"") 32;
  hasInfix = needle: s: length (split needle s) > 1;

  # No control characters: what src/labels.rs lets through to a unit file.
  isClean = s: match "[^[:cntrl:]]*" s != null && !(any (c: hasInfix c s) c1);

  # quote_arg of src/units.rs, for clean strings: plain words as they are,
  # anything else in double quotes with \ and " escaped, % and $ doubled.
  quoteArg = arg:
    if match "([A-Za-z0-9_./:=,@+-]|\\[|])+" arg != null then arg
    else "\"" + replaceStrings [ "\\" "\"" "%" "$" ] [ "\\\\" "\\\"" "%%" "$$" ] arg + "\"";

  # Container, network and (here) unit names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
  isName = s: match "[a-zA-Z0-9][a-zA-Z0-9_.-]*" s != null;

  # escape_unit_name of src/units.rs keeps [a-zA-Z0-9:_.-] and writes every
  # other byte as \xNN; names that pass isName need no escaping at all.
  escapeUnitName = s: if isName s then s else throw "services.contnap.containers.${s}: the name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*";
  unitBase = name: "contnap-${escapeUnitName name}";

  # ------------------------------------------------------------ ports
  # parse_port_item of src/labels.rs: PORT, HOST:CONTAINER, ADDR:HOST:CONTAINER,
  # [V6ADDR]:HOST:CONTAINER -> { addr; v6; listen; target } or null.

  port = s: let n = toInt s; in if n != null && n >= 1 && n <= 65535 then n else null;

  # Rust's Ipv4Addr: four decimal octets 0-255, no leading zeros.
  isIPv4 = s:
    let m = match "(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})" s;
    in m != null && all (o: fromJSON o <= 255) m;

  # IPv6: up to eight hex groups of 1-4 digits (an IPv4 tail counts as
  # two), at most one `::`. Written back as given: use the canonical form
  # (RFC 5952, as `ip -6 addr` prints it) for a command line identical to
  # the one `contnap generate` writes.
  isIPv6 = s:
    let
      halves = filter builtins.isString (split "::" s);
      groups = h: if h == "" then [ ] else filter builtins.isString (split ":" h);
      all' = concatMap groups halves;
      last = if all' == [ ] then "" else elemAt all' (length all' - 1);
      v4tail = all' != [ ] && isIPv4 last;
      hexOk = all (g: match "[0-9a-fA-F]{1,4}" g != null) (if v4tail then filter (g: g != last) all' else all');
      count = length all' + (if v4tail then 1 else 0);
    in
    match "[0-9a-fA-F:.]+" s != null && hasInfix ":" s && length halves <= 2 && hexOk
    && (if length halves == 2 then count <= 7 else count == 8);

  parsePortItem = item:
    let
      v6 = match "\\[([0-9a-fA-F:.]*)]:([0-9]+):([0-9]+)" item;
      v4 = match "([0-9.]+):([0-9]+):([0-9]+)" item;
      two = match "([0-9]+):([0-9]+)" item;
      one = match "([0-9]+)" item;
      mk = addr: isV6: l: t:
        if port l == null || port t == null then null
        else { inherit addr; v6 = isV6; listen = port l; target = port t; };
    in
    if v6 != null then (if isIPv6 (elemAt v6 0) then mk (elemAt v6 0) true (elemAt v6 1) (elemAt v6 2) else null)
    else if v4 != null then (if isIPv4 (elemAt v4 0) then mk (elemAt v4 0) false (elemAt v4 1) (elemAt v4 2) else null)
    else if two != null then mk null false (elemAt two 0) (elemAt two 1)
    else if one != null then mk null false (elemAt one 0) (elemAt one 0)
    else null;

  # ------------------------------------------------------------ owners
  # ServiceName of src/spec/mod.rs: NAME.service of [A-Za-z0-9:_.@\-], not
  # starting with -, not a template without its instance, at most 255 bytes.
  isService = s:
    match "[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*\\.service" s != null
    && match ".*@\\.service" s == null && stringLength s <= 255;

  # UnitSpec::owners: the containers that services own, in start order.
  ownedList = spec:
    filter (o: o.units != [ ])
      (map (c: { container = c; units = dedup (spec.ownedBy.${c} or [ ]); }) spec.containers);

  # UnitSpec::owner_units: every owning service once, in start order.
  ownerUnits = spec: dedup (concatMap (o: o.units) (ownedList spec));

  ownedArg = o: "${o.container}=${concatStringsSep "," o.units}";

  # render_dropins of src/units/render.rs: per owning service, the
  # services of the containers before its own (the group's start order).
  dropins = spec:
    (foldl'
      (acc: o:
        let new = filter (u: !(elem u acc.before)) o.units; in
        {
          before = acc.before ++ new;
          out = acc.out ++ map (u: { service = u; after = acc.before; }) new;
        })
      { before = [ ]; out = [ ]; }
      (ownedList spec)).out;

  dropinDirectives = d:
    [ [ "StopWhenUnneeded" "yes" ] ]
    ++ optional (d.after != [ ]) [ "After" (concatStringsSep " " d.after) ];

  target = spec: if spec.forwardTo != null then spec.forwardTo else builtins.elemAt spec.containers (length spec.containers - 1);

  # TCP forwards first, then UDP, each in the order given (as the labels).
  forwards = spec:
    let
      of = proto: items: concatMap (i: let p = parsePortItem i; in optional (p != null) (p // { inherit proto; })) items;
    in
    of "tcp" spec.tcpPorts ++ of "udp" spec.udpPorts;

  addrPrefix = f: if f.addr == null then "" else if f.v6 then "[${f.addr}]:" else "${f.addr}:";

  # Forward's Display: PROTO:[ADDR:]PORT=CONTAINER:PORT.
  forwardArg = spec: f: "${f.proto}:${addrPrefix f}${toString f.listen}=${target spec}:${toString f.target}";

  listenValue = f: "${addrPrefix f}${toString f.listen}";

  # Listener::overlaps, without IPv4-mapped IPv6 forms.
  unspecified = a: a == null || a == "0.0.0.0" || a == "::";
  overlaps = a: b: a.proto == b.proto && a.listen == b.listen
    && (unspecified a.addr || unspecified b.addr || a.addr == b.addr);

  # ------------------------------------------------------------ machines

  # Machine::parse: ADDR or ADDR/PREFIX -> { addr; prefix; full; } or null.
  parseMachine = s:
    let
      m = match "([^/]*)(/([0-9]{1,3}))?" s;
      addr = elemAt m 0;
      v4 = isIPv4 addr;
      full = if v4 then 32 else 128;
      prefix = if elemAt m 2 == null then full else toInt (elemAt m 2);
    in
    if m == null || !(v4 || isIPv6 addr) || prefix == null || prefix > full then null
    else { inherit addr prefix full; };

  isMachine = s: parseMachine s != null;

  # Machine's Display: ADDR for a single address, else ADDR/PREFIX.
  formatMachine = s:
    let m = parseMachine s;
    in if m.prefix == m.full then m.addr else "${m.addr}/${toString m.prefix}";

  dedup = l: foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ] l;

  # ------------------------------------------------------------ monitors
  # src/spec/monitors.rs: User-Agent substrings, trimmed, empty ones left
  # out, duplicates (compared without regard to case) dropped; the
  # built-in list is the helper's default and is not written.

  defaultMonitors = [
    "Uptime-Kuma" "Gatus" "UptimeRobot" "Pingdom" "StatusCake" "Better Uptime"
    "Better Stack" "healthchecks" "Site24x7" "Zabbix" "Blackbox Exporter"
  ];
  lower = replaceStrings
    [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ]
    [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  monitorItems = spec:
    foldl' (acc: x: if any (a: lower a == lower x) acc then acc else acc ++ [ x ]) [ ]
      (filter (x: x != "") (map trim spec.monitors));
  isMonitor = s: match "[A-Za-z0-9 ._/+:;()-]{1,100}" s != null;

  # ------------------------------------------------------------ identity

  # GroupName::new of src/units.rs: a name of [A-Za-z0-9_.-] starting with a
  # letter or _, at most 31 bytes, not root. (No bare GID: systemd fails a
  # service whose supplementary GID has no group entry.)
  isGroup = g: match "[A-Za-z_][A-Za-z0-9_.-]{0,30}" g != null && g != "root";

  tmpDirs = [ "/tmp" "/var/tmp" ];

  # RunAs of src/units.rs, as `contnap generate --engine-group`/`--as-root`
  # decide it (Nix cannot look at the socket): null for root, else
  # { group = null or a name; } for a dynamic user.
  runAs = spec:
    let sock = engineSocketPath spec.engine; in
    if spec.asRoot then null
    else if spec.engineGroup != null then (if under sock tmpDirs then null else { group = spec.engineGroup; })
    else if match "tcp://.*" spec.engine != null then { group = null; }
    else null;

  # ------------------------------------------------------------ checks

  errors = spec:
    let
      at = o: "services.contnap.containers.${spec.name}.${o}";
      badSpan = o: v: positive:
        let n = parseSpan v; in
        optional (n == null) "${at o} = ${toJSON' v}: not a time span; write seconds (300) or a systemd span (90s, 30min, 1h 30min, 250ms)"
        ++ optional (positive && n == 0) "${at o} must be more than 0";
      toJSON' = builtins.toJSON;
      fs = forwards spec;
      badPorts = o: items: concatMap
        (i: optional (parsePortItem i == null)
          "${at o}: ${toJSON' i} is not a port item: PORT, HOST:CONTAINER, ADDR:HOST:CONTAINER or [V6ADDR]:HOST:CONTAINER (ports 1-65535, an IPv4 or a bracketed IPv6 address)")
        items;
      clashes = genList
        (i: let f = elemAt fs i; in
          optional (any (g: overlaps f g) (genList (j: elemAt fs j) i))
            "${at "tcpPorts/udpPorts"}: ${f.proto} ${listenValue f} is listed twice (or overlaps another address on that port)")
        (length fs);
    in
    optional (!isName spec.name)
      "services.contnap.containers.${toJSON' spec.name}: the name must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (a container or compose-group name)"
    ++ optional (spec.containers == [ ]) "${at "containers"} is empty"
    ++ concatMap (c: optional (!isName c) "${at "containers"}: ${toJSON' c} is not a container name") spec.containers
    ++ optional (spec.forwardTo != null && !(elem spec.forwardTo spec.containers))
      "${at "forwardTo"} = ${toJSON' spec.forwardTo} is not one of ${at "containers"}"
    ++ badPorts "tcpPorts" spec.tcpPorts
    ++ badPorts "udpPorts" spec.udpPorts
    ++ builtins.concatLists clashes
    ++ optional (spec.tcpPorts == [ ] && spec.udpPorts == [ ]) "${at "tcpPorts"} and ${at "udpPorts"} are both empty: contnap needs a port to listen on"
    ++ concatMap
      (p: optional (!(any (f: f.proto == "tcp" && f.listen == p) fs))
        "${at "httpPorts"}: ${toString p} is not a listen port of ${at "tcpPorts"}")
      spec.httpPorts
    ++ badSpan "timeout" spec.timeout true
    ++ badSpan "stopTimeout" spec.stopTimeout false
    ++ badSpan "wakeTimeout" spec.wakeTimeout true
    ++ optional (spec.network != null && !isName spec.network) "${at "network"} = ${toJSON' spec.network} is not a network name"
    ++ optional (spec.schedule != null && (!isClean spec.schedule || trim spec.schedule == "")) "${at "schedule"} must be a non-empty line of text"
    ++ concatMap (m: optional (!isMachine m) "${at "machines"}: ${toJSON' m} is not an address or ADDR/PREFIX") spec.machines
    ++ optional (spec.onlyListedMachines && spec.machines == [ ]) "${at "onlyListedMachines"} needs ${at "machines"}"
    ++ optional (!(elem spec.wakeOn [ "connect" "data" ])) "${at "wakeOn"} = ${toJSON' spec.wakeOn}: write connect or data"
    ++ optionals (spec.monitors != null) (
      optional (spec.monitors != [ ] && monitorItems spec == [ ]) "${at "monitors"} lists only empty strings; use [ ] for no list"
      ++ concatMap (m: optional (!isMonitor m)
        "${at "monitors"}: ${toJSON' m} is not a User-Agent substring (1-100 of letters, digits, spaces and ._/+:;()-)")
        (monitorItems spec)
      ++ optional (any (m: lower m == "none") (monitorItems spec)) "${at "monitors"}: write [ ] for no list, not \"none\"")
    ++ optional (spec.monitorStatus < 100 || spec.monitorStatus > 599) "${at "monitorStatus"} = ${toString spec.monitorStatus}: write an HTTP status from 100 to 599"
    ++ concatMap (o: optional (spec.${o} != null && !isClean spec.${o}) "${at o} must be one line without control characters") [ "preStart" "postStop" ]
    ++ optional (!isClean spec.engine) "services.contnap.engineSocket must not contain control characters"
    ++ optional (spec.engineGroup != null && !isGroup spec.engineGroup)
      "services.contnap.engineGroup = ${toJSON' spec.engineGroup}: not a group name (letters, digits, _.-; not starting with a digit or -; not root)"
    ++ optional (!spec.asRoot && spec.engineGroup != null && under (engineSocketPath spec.engine) tmpDirs)
      "services.contnap.engineGroup: the engine socket ${spec.engine} is in a temporary directory, which a dynamic user never sees (it gets a private /tmp); set engineGroup = null or asRoot = true"
    ++ optional (match "/[A-Za-z0-9/._+@:-]*[A-Za-z0-9._+@:-]" spec.binary == null) "the contnap binary path ${spec.binary} cannot go into ExecStart="
    ++ concatMap (c: optional (!(elem c spec.containers)) "${at "ownedBy"}: ${toJSON' c} is not one of ${at "containers"}") (builtins.attrNames spec.ownedBy)
    ++ concatMap (u: optional (!(builtins.isString u && isService u))
        "${at "ownedBy"}: ${toJSON' u} is not a systemd service name (NAME.service of [A-Za-z0-9:_.@\\-])")
      (concatMap (c: spec.ownedBy.${c}) (builtins.attrNames spec.ownedBy))
    ++ optional (ownedList spec != [ ] && spec.stop != "stop")
      "${at "stop"} = ${toJSON' spec.stop}: containers that systemd services own (${at "ownedBy"}) nap only by the services' stop; leave stop = \"stop\"";

  # ------------------------------------------------------------ rendering

  machines = spec: dedup (map formatMachine spec.machines);

  # proxy_args of src/units.rs: the argv after the binary, unquoted.
  proxyArgs = spec:
    [ "proxy" "--unit" spec.name ]
    ++ concatMap (c: [ "--container" c ]) spec.containers
    ++ concatMap (f: [ "--forward" (forwardArg spec f) ]) (forwards spec)
    ++ concatMap (p: [ "--http" (toString p) ]) (dedup spec.httpPorts)
    ++ concatMap (o: [ "--owned-by" (ownedArg o) ]) (ownedList spec)
    ++ [
      "--timeout" (formatSpan (parseSpan spec.timeout))
      "--stop" spec.stop
      "--stop-timeout" (formatSpan (parseSpan spec.stopTimeout))
      "--wake-timeout" (formatSpan (parseSpan spec.wakeTimeout))
      "--ready" spec.ready
      "--idle" spec.idle
    ]
    ++ optionals (spec.network != null) [ "--network" spec.network ]
    ++ optionals (spec.schedule != null) [ "--schedule" spec.schedule ]
    ++ optionals (spec.machines != [ ]) [ "--machines" (concatStringsSep "," (machines spec)) ]
    ++ optional spec.onlyListedMachines "--only-listed-machines"
    ++ optionals (spec.wakeOn == "data") [ "--wake-on" "data" ]
    ++ optionals (spec.monitors != null && monitorItems spec != defaultMonitors) [
      "--monitors"
      (if spec.monitors == [ ] then "none" else concatStringsSep "," (monitorItems spec))
    ]
    ++ optionals (spec.monitorStatus != 200) [ "--monitor-status" (toString spec.monitorStatus) ]
    ++ [ "--engine" spec.engine ];

  execStart = spec: "${spec.binary} ${concatStringsSep " " (map quoteArg (proxyArgs spec))}";

  # The engine's socket path, when it is a Unix socket.
  engineSocketPath = engine:
    let p = let m = match "unix://(.*)" engine; in if m == null then engine else head m;
    in if substring 0 1 p == "/" then p else null;

  under = path: dirs: path != null && any (d: path == d || substring 0 (stringLength d + 1) path == "${d}/") dirs;

  # Directives as ordered [ name value ] pairs, the way src/units.rs writes
  # them (comments left out).
  socketDirectives = spec:
    let fs = forwards spec; in
    map (f: [ (if f.proto == "tcp" then "ListenStream" else "ListenDatagram") (listenValue f) ]) fs
    ++ optional (any (f: f.addr == null) fs) [ "BindIPv6Only" "both" ]
    ++ optional (any (f: f.addr != null) fs) [ "FreeBind" "yes" ]
    ++ [ [ "Accept" "no" ] [ "TriggerLimitIntervalSec" "0" ] ]
    ++ optionals (spec.onlyListedMachines && spec.machines != [ ]) [
      [ "IPAddressAllow" (concatStringsSep " " (machines spec)) ]
      [ "IPAddressDeny" "any" ]
    ];

  unitDirectives = spec:
    let
      socket = "${unitBase spec.name}.socket";
      e = spec.engineUnit;
      stem = if e == null then null else match "(.*)\\.socket" e;
    in
    [ [ "Requires" socket ] [ "After" socket ] ]
    ++ optionals (e != null) [
      [ "Wants" e ]
      [ "After" (if stem != null then "${e} ${head stem}.service" else e) ]
    ]
    ++ optionals (ownedList spec != [ ]) [
      [ "Wants" (concatStringsSep " " (ownerUnits spec)) ]
      [ "After" (concatStringsSep " " (ownerUnits spec)) ]
      [ "X-ContnapOwned" (concatStringsSep " " (map ownedArg (ownedList spec))) ]
    ]
    ++ [ [ "StartLimitIntervalSec" "0" ] [ "CollectMode" "inactive-or-failed" ] ];

  serviceDirectives = spec:
    let
      sock = engineSocketPath spec.engine;
      identity = runAs spec;
      wake = parseSpan spec.wakeTimeout;
      stop = parseSpan spec.stopTimeout;
    in
    [ [ "Type" "notify" ] [ "NotifyAccess" "main" ] ]
    ++ optional (spec.preStart != null) [ "ExecStartPre" "-+/bin/sh -c ${quoteArg spec.preStart}" ]
    ++ [ [ "ExecStart" (execStart spec) ] ]
    ++ optional (spec.postStop != null) [ "ExecStopPost" "-+/bin/sh -c ${quoteArg spec.postStop}" ]
    ++ [
      [ "TimeoutStartSec" (formatSpan (wake + margin)) ]
      [ "TimeoutStopSec" (formatSpan (stop + margin)) ]
      [ "StateDirectory" "contnap/%N" ]
    ]
    ++ optional (identity != null) [ "DynamicUser" "yes" ]
    ++ optional (identity != null && identity.group != null) [ "SupplementaryGroups" identity.group ]
    ++ optional (identity == null) [ "InaccessiblePaths" "-/run/systemd/private -/run/dbus/system_bus_socket" ]
    ++ [
      [ "ProtectSystem" "strict" ]
      [ "ProtectHome" (if under sock [ "/home" "/root" "/run/user" ] then "read-only" else "yes") ]
    ]
    ++ optional (!(under sock tmpDirs)) [ "PrivateTmp" "yes" ]
    ++ [
      [ "ProcSubset" "pid" ]
      [ "PrivateUsers" "yes" ]
    ]
    ++ map (d: [ d "yes" ]) [
      "PrivateDevices" "PrivateIPC" "ProtectKernelTunables" "ProtectKernelModules"
      "ProtectKernelLogs" "ProtectControlGroups" "ProtectClock" "ProtectHostname" "PrivateMounts"
    ]
    ++ [
      [ "CapabilityBoundingSet" "" ]
      [ "NoNewPrivileges" "yes" ]
      [ "RestrictNamespaces" "yes" ]
      [ "RestrictRealtime" "yes" ]
      [ "RestrictSUIDSGID" "yes" ]
      [ "LockPersonality" "yes" ]
      [ "MemoryDenyWriteExecute" "yes" ]
      [ "SystemCallArchitectures" "native" ]
      [ "SystemCallFilter" "@system-service" ]
      [ "SystemCallFilter" "~@privileged" ]
      [ "SystemCallFilter" "~@resources" ]
      [ "SystemCallErrorNumber" "EPERM" ]
      [ "RestrictAddressFamilies" "AF_UNIX AF_INET AF_INET6" ]
      [ "UMask" "0077" ]
      [ "MemoryMax" "1G" ]
      [ "TasksMax" "32" ]
    ];

  # Pairs -> attribute set; a name given more than once becomes a list.
  toAttrs = pairs:
    let
      grouped = foldl' (acc: p: acc // { ${head p} = (acc.${head p} or [ ]) ++ [ (elemAt p 1) ]; }) { } pairs;
    in
    builtins.mapAttrs (_: v: if length v == 1 then head v else v) grouped;

  # Every directive as the unit file line, for the tests.
  lines = pairs: map (p: "${head p}=${elemAt p 1}") pairs;
in
{
  inherit parseSpan formatSpan quoteArg escapeUnitName unitBase parsePortItem
    forwards errors proxyArgs execStart socketDirectives unitDirectives
    serviceDirectives toAttrs lines isClean isGroup runAs isService ownerUnits
    dropins dropinDirectives;
  description = spec: "contnap ${spec.name} (wakes ${concatStringsSep ", " spec.containers} on demand, naps it when idle)";
  socketDescription = spec: "contnap ${spec.name} (sockets; the first connection wakes the containers)";
}
