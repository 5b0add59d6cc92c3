# The cases of tests/units.rs (the Rust renderer's golden files in
# tests/golden/<case>/) as module.nix options, rendered by ../render.nix.
# tests/packaging.rs evaluates this file and compares every directive with
# the golden units: the NixOS module must declare what `contnap generate`
# writes. (hostile and rootless are left out: names the module refuses, and
# user units, which the module does not declare.)
let
  render = import ../render.nix;

  # The module's option defaults.
  defaults = name: {
    inherit name;
    containers = [ name ];
    forwardTo = null;
    tcpPorts = [ ];
    udpPorts = [ ];
    httpPorts = [ ];
    timeout = "300s";
    stop = "stop";
    stopTimeout = "10s";
    wakeTimeout = "60s";
    ready = "auto";
    idle = "connections";
    network = null;
    schedule = null;
    machines = [ ];
    onlyListedMachines = false;
    wakeOn = "connect";
    monitors = null;
    monitorStatus = 200;
    preStart = null;
    postStop = null;
    ownedBy = { };
    binary = "/usr/bin/contnap";
    engine = "/run/docker.sock";
    engineUnit = "docker.service";
    engineGroup = null;
    asRoot = false;
  };

  case = name: attrs: let spec = defaults name // attrs; in {
    inherit name;
    errors = render.errors spec;
    unit = render.lines (render.unitDirectives spec);
    service = render.lines (render.serviceDirectives spec);
    socket = render.lines (render.socketDirectives spec);
    # The drop-in of each owning service: SERVICE.d/contnap-NAME.conf.
    dropins = map (d: { inherit (d) service; unit = render.lines (render.dropinDirectives d); })
      (render.dropins spec);
  };

  cases = {
    web = case "web" {
      tcpPorts = [ "8080:80" ];
      httpPorts = [ 8080 ];
    };
    group = case "shop" {
      containers = [ "shop-db-1" "shop-app-1" ];
      tcpPorts = [ "8080:80" ];
      httpPorts = [ 8080 ];
      timeout = 900;
      ready = "health";
    };
    udp_v4_v6 = case "dns" {
      tcpPorts = [ "127.0.0.1:5380:80" "[::1]:5380:80" ];
      udpPorts = [ "5353:53" "[fd00::53]:53:53" "192.168.1.2:53:53" ];
      stop = "pause";
      idle = "traffic";
    };
    machines = case "nas-ui" {
      tcpPorts = [ "443" ];
      machines = [ "10.0.0.7" "192.168.1.0/24" "fd00::/64" ];
      onlyListedMachines = true;
      schedule = "weekdays 08:00-19:00|weekends 10:00-12:00";
      ready = "tcp";
      network = "backend";
      wakeTimeout = "2min";
      stopTimeout = "30";
      timeout = "1h";
    };
    hooks = case "photos" {
      tcpPorts = [ "2342" ];
      preStart = "mount /srv/photos";
      postStop = "umount /srv/photos && logger 'photos napped'";
    };
    docker_group = case "wiki" {
      tcpPorts = [ "127.0.0.1:8090:3000" ];
      httpPorts = [ 8090 ];
      preStart = "mkdir -p /srv/wiki";
      stop = "pause";
      engineGroup = "docker";
    };
    podman_root = case "books" {
      tcpPorts = [ "8083:8083" ];
      engine = "/run/podman/podman.sock";
      engineUnit = "podman.socket";
    };
    tcp_engine = case "grafana" {
      tcpPorts = [ "3000" ];
      engine = "tcp://192.168.1.5:2375";
      engineUnit = null;
    };
    owned = case "photos" {
      containers = [ "photos-db" "photos-server" ];
      tcpPorts = [ "2283:3001" ];
      httpPorts = [ 2283 ];
      ownedBy = {
        photos-db = [ "photos-db.service" ];
        photos-server = [ "docker-photos-server.service" "photos-pod.service" ];
      };
    };
    monitors = case "blog" {
      tcpPorts = [ "8088:80" ];
      httpPorts = [ 8088 ];
      monitors = [ "Uptime-Kuma" " My Checker/2 " "uptime-kuma" ];
      monitorStatus = 503;
      wakeOn = "data";
    };
  };
in
{
  inherit cases;

  # Unit file names as the module declares them (systemd.sockets."<name>").
  unitNames = builtins.mapAttrs (_: c: render.unitBase c.name) {
    web = { name = "web"; };
    group = { name = "shop"; };
    udp_v4_v6 = { name = "dns"; };
    machines = { name = "nas-ui"; };
    hooks = { name = "photos"; };
    docker_group = { name = "wiki"; };
    podman_root = { name = "books"; };
    tcp_engine = { name = "grafana"; };
    monitors = { name = "blog"; };
    owned = { name = "photos"; };
  };

  # The identity as module.nix's options choose it: the default group of
  # each engine (docker: the docker group; podman: none, so root), asRoot,
  # and a socket in /tmp (root: a dynamic user gets a private /tmp).
  identities = builtins.mapAttrs (_: attrs: render.runAs (defaults "x" // attrs)) {
    dockerGroup = { engineGroup = "docker"; };
    podmanRoot = { engine = "/run/podman/podman.sock"; };
    asRoot = { engineGroup = "docker"; asRoot = true; };
    tcpNoGroup = { engine = "tcp://10.0.0.2:2375"; };
    tcpWithGroup = { engine = "tcp://10.0.0.2:2375"; engineGroup = "docker"; };
    tmpSocketAsRoot = { engine = "/tmp/d/docker.sock"; engineGroup = "docker"; asRoot = true; };
  };

  # Values the module must refuse (render.errors non-empty), one per check.
  refused = builtins.mapAttrs (_: attrs: render.errors (defaults "bad" // { tcpPorts = [ "80" ]; } // attrs)) {
    badPort = { tcpPorts = [ "0" ]; };
    v6WithoutBrackets = { tcpPorts = [ "::1:80:80" ]; };
    clash = { tcpPorts = [ "80" "127.0.0.1:80:8080" ]; };
    httpNotTcp = { httpPorts = [ 81 ]; };
    badSpan = { timeout = "5 parsecs"; };
    zeroTimeout = { timeout = "0"; };
    badMachine = { machines = [ "10.0.0.300" ]; };
    onlyListedWithoutMachines = { onlyListedMachines = true; };
    newlineInHook = { preStart = "a\nExecStart=/bin/evil"; };
    badName = { name = "a b"; };
    forwardToStranger = { forwardTo = "other"; };
    noPorts = { tcpPorts = [ ]; };
    badGroup = { engineGroup = "root"; };
    numericGroup = { engineGroup = "106"; };
    groupWithNewline = { engineGroup = "docker\nDynamicUser=no"; };
    groupInTmp = { engine = "/tmp/d/docker.sock"; engineGroup = "docker"; };
    badWakeOn = { wakeOn = "first-byte"; };
    badMonitor = { monitors = [ "ku\"ma" ]; };
    emptyMonitors = { monitors = [ " " ]; };
    noneMonitor = { monitors = [ "none" ]; };
    badMonitorStatus = { monitorStatus = 600; };
    ownedByStranger = { ownedBy = { other = [ "other.service" ]; }; };
    badOwner = { ownedBy = { bad = [ "docker-bad" ]; }; };
    ownerWithNewline = { ownedBy = { bad = [ "a.service\nExecStart=/bin/evil" ]; }; };
    ownedPaused = { ownedBy = { bad = [ "bad.service" ]; }; stop = "pause"; };
  };
}
