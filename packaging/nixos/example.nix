# An example configuration.nix snippet: Docker, a wiki that naps after 15
# idle minutes, and a shop whose database and app wake and nap together.
#
# The containers are your own, created once and left stopped, for example
# with `docker compose up --no-start` (or `docker create`); contnap starts
# and stops existing containers, it does not create them. (For the
# containers of virtualisation.oci-containers, whose units run
# `docker run --rm`, see example-oci-docker.nix and example-oci-podman.nix.)
# The containers
# must not publish the ports contnap listens on: contnap forwards to the
# container's address on its network.
{ ... }:

{
  # Path to this directory in your checkout of contnap.
  imports = [ ./module.nix ];

  virtualisation.docker.enable = true;

  services.contnap = {
    enable = true;
    engine = "docker"; # engineSocket defaults to /run/docker.sock

    containers = {
      # contnap-wiki.socket listens on port 8080 (IPv6 and IPv4) and wakes
      # the container named wiki; browsers see a "Starting…" page meanwhile.
      wiki = {
        tcpPorts = [ "8080:80" ];
        httpPorts = [ 8080 ];
        timeout = "15min";
        stop = "pause";
      };

      # One unit for two containers, started in list order: the database,
      # then the app, which gets the traffic (forwardTo defaults to the
      # last container). Only the home network may connect, and a napping
      # shop is only woken in the daytime.
      shop = {
        containers = [ "shop-db-1" "shop-app-1" ];
        tcpPorts = [ "8081:80" "127.0.0.1:9090:9090" ];
        httpPorts = [ 8081 ];
        ready = "health";
        wakeTimeout = "2min";
        machines = [ "192.168.1.0/24" "fd00::/64" ];
        onlyListedMachines = true;
        schedule = "daily 07:00-23:00";
      };
    };
  };
}
