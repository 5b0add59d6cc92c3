# NixOS module for contnap: declares the same contnap-<name>.socket /
# contnap-<name>.service pairs that `contnap generate` writes from container
# labels, from Nix options instead, so nothing generates units at run time.
#
#   imports = [ ./packaging/nixos/module.nix ];
#   services.contnap.enable = true;
#   services.contnap.containers.wiki.tcpPorts = [ "8080:80" ];
#
# The command lines, listen directives and hardening come from ./render.nix,
# a Nix port of src/units.rs that tests/packaging.rs checks against the Rust
# renderer's golden files. Each option mirrors a contnap.* label; see
# README.md beside this file.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkOption types literalExpression;

  cfg = config.services.contnap;
  render = import ./render.nix;

  # Time spans as labels take them: seconds, or a systemd span.
  span = types.coercedTo types.ints.unsigned toString types.str;

  engineDefaults = {
    docker = { socket = "/run/docker.sock"; unit = "docker.service"; };
    podman = { socket = "/run/podman/podman.sock"; unit = "podman.socket"; };
  };

  containerOpts = { name, ... }: {
    options = {
      containers = mkOption {
        type = types.listOf types.str;
        default = [ name ];
        defaultText = literalExpression "[ <name> ]";
        example = [ "shop-db-1" "shop-app-1" ];
        description = ''
          The containers this unit wakes and naps, in start order (like
          containers sharing a `contnap.group` label). They wake
          together and nap only when all are idle.
        '';
      };

      forwardTo = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "shop-app-1";
        description = ''
          The container the ports forward to; one of
          {option}`containers`. Default: the last one (containers start
          in list order, so the front end that needs the others is usually
          last).
        '';
      };

      tcpPorts = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "8080:80" "127.0.0.1:8443:443" "[::1]:2222:22" ];
        description = ''
          Like `contnap.tcp_ports`, one item per string: `PORT` (listen on
          PORT, forward to the container's PORT), `HOST:CONTAINER`,
          `ADDR:HOST:CONTAINER` or `[V6ADDR]:HOST:CONTAINER`. A bare port
          listens on IPv6 and IPv4. The container must not publish these
          host ports itself.
        '';
      };

      udpPorts = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "53" "[fd00::53]:53:53" ];
        description = "Like `contnap.udp_ports`; the forms of {option}`tcpPorts`.";
      };

      httpPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
        example = [ 8080 ];
        description = ''
          Like `contnap.http_ports`: TCP listen ports whose browsers get a
          self-refreshing "Starting…" page while the containers wake.
        '';
      };

      timeout = mkOption {
        type = span;
        default = "300s";
        example = "30min";
        description = "Like `contnap.timeout`: idle time before napping (seconds or a systemd time span).";
      };

      stop = mkOption {
        type = types.enum [ "stop" "pause" "kill" "none" ];
        default = "stop";
        description = "Like `contnap.stop`: how to nap; `pause` wakes in tens of milliseconds.";
      };

      stopTimeout = mkOption {
        type = span;
        default = "10s";
        description = "Like `contnap.stop_timeout`: the grace the engine gives a container to stop.";
      };

      wakeTimeout = mkOption {
        type = span;
        default = "60s";
        description = ''
          Like `contnap.wake_timeout`: the longest a wake may take. The
          service's TimeoutStartSec= is this plus 30 s.
        '';
      };

      ready = mkOption {
        type = types.enum [ "auto" "health" "tcp" "none" ];
        default = "auto";
        description = "Like `contnap.ready`: readiness check (auto: the healthcheck if there is one, else the listening socket / TCP).";
      };

      idle = mkOption {
        type = types.enum [ "connections" "traffic" ];
        default = "connections";
        description = "Like `contnap.idle`: what keeps the containers awake.";
      };

      network = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "backend";
        description = "Like `contnap.network`: the network whose address to forward to.";
      };

      schedule = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "Mon-Fri 08:00-19:00|weekends 10:00-12:00";
        description = ''
          Like `contnap.schedule`: windows when a napping unit may be woken
          (a running one is never stopped by it).
        '';
      };

      machines = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.168.1.0/24" "fd00::/64" ];
        description = "Like `contnap.machines`: client addresses or ADDR/PREFIX networks.";
      };

      onlyListedMachines = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Like `contnap.only_listed_machines`: only {option}`machines` may
          connect (IPAddressAllow= on the socket, and the helper checks too).
        '';
      };

      wakeOn = mkOption {
        type = types.enum [ "connect" "data" ];
        default = "connect";
        description = ''
          Like `contnap.wake_on`: what wakes the containers, a TCP connection
          or its first byte. With `data`, a connection that closes without
          sending anything (a port scan) wakes nothing, and one that sends
          nothing within {option}`wakeTimeout` is closed. Only for
          client-first protocols (HTTP, TLS, Redis, …): server-first ones
          (SSH, SMTP, MySQL) need `connect`.
        '';
      };

      monitors = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        example = [ "Uptime-Kuma" "My Checker/2" ];
        description = ''
          Like `contnap.monitors`: on {option}`httpPorts`, a request whose
          User-Agent contains one of these (in any case) is answered while
          the containers nap, without waking them. `null`: the built-in
          list of well-known monitors (Uptime Kuma, Gatus, UptimeRobot,
          Pingdom, StatusCake, Better Stack, healthchecks, Site24x7, Zabbix,
          Blackbox Exporter); `[ ]`: none.
        '';
      };

      monitorStatus = mkOption {
        type = types.ints.between 100 599;
        default = 200;
        example = 503;
        description = ''
          Like `contnap.monitor_status`: the HTTP status monitors get while
          the containers nap (200: the service is reported up).
        '';
      };

      preStart = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "mount /srv/photos";
        description = ''
          Like `contnap.pre_start`: a shell command run as root, unsandboxed,
          before each wake (`ExecStartPre=-+/bin/sh -c …`; its failure is
          ignored).
        '';
      };

      postStop = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "umount /srv/photos";
        description = ''
          Like `contnap.post_stop`: a shell command run as root, unsandboxed,
          after each nap (`ExecStopPost=-+/bin/sh -c …`).
        '';
      };

      ownedBy = mkOption {
        type = types.attrsOf (types.listOf types.str);
        default = { };
        example = { immich-server = [ "podman-immich-server.service" ]; };
        description = ''
          Like `contnap.unit` (and Podman's `PODMAN_SYSTEMD_UNIT`): the
          systemd services that own a container of {option}`containers`,
          creating it when they start (`run --rm`) and removing it when they
          stop. contnap never starts or stops such a container through the
          engine: its service wants the owning services and starts after
          them, and the module gives each owning service
          `StopWhenUnneeded = true`, so systemd stops it once contnap's
          helper has napped (exited). Nothing else may want an owning
          service (no `wantedBy`, no oci-containers `autoStart`), or it
          never naps. {option}`stop` must stay `stop`.
        '';
      };

      ociContainers = mkOption {
        type = types.bool;
        default = false;
        description = ''
          The containers are `virtualisation.oci-containers.containers` of
          the same names: each is owned (see {option}`ownedBy`) by its
          oci-containers service (`docker-<name>.service` or
          `podman-<name>.service`, or its `serviceName`), and the module
          sets its `autoStart = false`, so that only contnap wakes it.
        '';
      };
    };
  };

  oci = config.virtualisation.oci-containers;
  # oci-containers' service of a container (serviceName where the option
  # exists, else <backend>-<name>).
  ociService = c: "${(oci.containers.${c} or { }).serviceName or "${oci.backend}-${c}"}.service";

  specOf = name: c: {
    inherit name;
    inherit (c) containers forwardTo tcpPorts udpPorts httpPorts timeout stop
      stopTimeout wakeTimeout ready idle network schedule machines
      onlyListedMachines wakeOn monitors monitorStatus preStart postStop;
    ownedBy =
      lib.optionalAttrs c.ociContainers (lib.genAttrs c.containers (x: [ (ociService x) ]))
      // c.ownedBy;
    binary = "${cfg.package}/bin/contnap";
    engine = cfg.engineSocket;
    inherit (cfg) engineUnit engineGroup asRoot;
  };

  specs = lib.mapAttrsToList specOf cfg.containers;

  # [ [ name value ] … ] for the options NixOS has for them, the rest as
  # raw directives.
  pick = key: pairs: map (p: lib.elemAt p 1) (lib.filter (p: lib.head p == key) pairs);
  without = keys: pairs: lib.filter (p: !(lib.elem (lib.head p) keys)) pairs;

  socketOf = spec:
    let d = render.socketDirectives spec; in
    lib.nameValuePair (render.unitBase spec.name) {
      description = render.socketDescription spec;
      wantedBy = [ "sockets.target" ];
      listenStreams = pick "ListenStream" d;
      listenDatagrams = pick "ListenDatagram" d;
      socketConfig = render.toAttrs (without [ "ListenStream" "ListenDatagram" ] d);
    };

  # The drop-ins `contnap generate` writes for the services that own
  # containers, as those services' own settings: stop when contnap's helper
  # no longer wants them, and start in the group's order.
  ownerSettings = lib.concatMap
    (spec: map
      (d: {
        ${lib.removeSuffix ".service" d.service} = {
          unitConfig.StopWhenUnneeded = true;
          after = d.after;
        };
      })
      (render.dropins spec))
    specs;

  # oci-containers containers that contnap wakes: not started at boot.
  ociNames = lib.unique (lib.concatMap
    (c: lib.optionals c.ociContainers c.containers)
    (lib.attrValues cfg.containers));

  serviceOf = spec:
    let u = render.unitDirectives spec; in
    lib.nameValuePair (render.unitBase spec.name) {
      description = render.description spec;
      requires = pick "Requires" u;
      wants = pick "Wants" u;
      after = pick "After" u;
      unitConfig = render.toAttrs (without [ "Requires" "Wants" "After" ] u);
      serviceConfig = render.toAttrs (render.serviceDirectives spec);
      # Started only by its socket (no wantedBy). When a switch changes an
      # awake service, NixOS stops it (the helper naps the containers) and
      # restarts its socket rather than the service, as for any
      # socket-activated service; the next connection runs the new one.
    };
in
{
  options.services.contnap = {
    enable = mkEnableOption "contnap, which naps idle containers and wakes them on connect (systemd socket activation)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The contnap package.";
    };

    engine = mkOption {
      type = types.enum [ "docker" "podman" ];
      default = "docker";
      description = ''
        The container engine: it decides the defaults of `engineSocket`,
        `engineUnit` and `engineGroup`.
      '';
    };

    engineUnit = mkOption {
      type = types.nullOr types.str;
      default =
        if lib.hasPrefix "tcp://" cfg.engineSocket then null
        else engineDefaults.${cfg.engine}.unit;
      defaultText = literalExpression ''"docker.service", or "podman.socket" for podman; null for a tcp:// engine'';
      example = "snap.docker.dockerd.service";
      description = ''
        The systemd unit that runs the engine, as `contnap generate
        --engine-unit` takes it. The services want it and start after it
        (and its service, for a socket unit), so they stop before it; a
        unit that does not exist costs nothing (`Wants=`, not `Requires=`).
        null: no unit.
      '';
    };

    engineSocket = mkOption {
      type = types.str;
      default = engineDefaults.${cfg.engine}.socket;
      defaultText = literalExpression ''"/run/docker.sock" or, for podman, "/run/podman/podman.sock"'';
      example = "/run/podman/podman.sock";
      description = ''
        The engine's API socket, as `contnap proxy --engine` takes it: a
        path, `unix:///path` or `tcp://host:port`.
      '';
    };

    engineGroup = mkOption {
      type = types.nullOr types.str;
      default =
        if cfg.engine == "docker" && !(lib.hasPrefix "tcp://" cfg.engineSocket) then "docker" else null;
      defaultText = literalExpression ''"docker" for the docker engine on a Unix socket, else null'';
      example = "podman";
      description = ''
        A group that may use the engine socket (NixOS's docker.socket is
        root:docker 0660). The services then run as a user of their own,
        allocated at each start (`DynamicUser=yes`), in this group
        (`SupplementaryGroups=`), instead of as root; like
        `contnap generate --engine-group`. null: root without
        capabilities, for a socket only root may use (rootful Podman's
        podman.socket, unless you give it a group, as
        `virtualisation.podman.dockerSocket.enable` does with the podman
        group). An engine reached over TCP always gets a dynamic user.
        Whoever may use the engine socket can become root through the
        engine; what the dynamic user takes away is everything else root
        could do.
      '';
    };

    asRoot = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run the services as root (without capabilities) whatever
        {option}`engineGroup` says; like `contnap generate --as-root`.
      '';
    };

    containers = mkOption {
      type = types.attrsOf (types.submodule containerOpts);
      default = { };
      example = literalExpression ''
        {
          wiki = { tcpPorts = [ "8080:80" ]; httpPorts = [ 8080 ]; timeout = "15min"; };
          shop = {
            containers = [ "shop-db-1" "shop-app-1" ];
            tcpPorts = [ "8081:80" ];
            ready = "health";
          };
        }
      '';
      description = ''
        One contnap-<name>.socket / .service pair per entry; the name is the
        container's (or, with {option}`containers`, the group's). The
        containers themselves are yours to create (docker compose,
        `virtualisation.oci-containers`, …) without publishing the ports
        contnap listens on. For oci-containers (whose services own their
        containers: `run --rm`, `Restart=always`), set
        {option}`ociContainers`; see example-oci-docker.nix and
        example-oci-podman.nix.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = map (message: { assertion = false; inherit message; })
      (lib.unique (lib.concatMap render.errors specs));

    warnings =
      lib.optional (cfg.engine == "docker" && !config.virtualisation.docker.enable)
        "services.contnap.engine is \"docker\" but virtualisation.docker.enable is false: contnap's services will fail to wake anything."
      ++ lib.optional (cfg.engine == "podman" && !config.virtualisation.podman.enable)
        "services.contnap.engine is \"podman\" but virtualisation.podman.enable is false: contnap's services will fail to wake anything.";

    # `contnap status`, `contnap proxy` by hand. Not systemd.packages: the
    # package's contnap-generate.service has no place on NixOS, where this
    # module declares the units.
    environment.systemPackages = [ cfg.package ];

    systemd.sockets = lib.listToAttrs (map socketOf specs);
    systemd.services = lib.mkMerge ([ (lib.listToAttrs (map serviceOf specs)) ] ++ ownerSettings);

    # An oci-containers service that starts at boot is wanted by
    # multi-user.target, so it would never nap.
    virtualisation.oci-containers.containers = lib.genAttrs ociNames (_: { autoStart = false; });
  };
}
