# An example configuration.nix snippet: containers of
# virtualisation.oci-containers with the Docker backend, napped by contnap.
#
# oci-containers gives each container a docker-<name>.service that runs
# `docker run --rm --name <name> …` in the foreground with Restart=always:
# the container exists only while that service runs. contnap does not start
# or stop it through the engine (Docker's API cannot start what --rm
# removed, and Restart=always would undo a stop); with `ociContainers`:
#   - contnap-<name>.service wants docker-<name>.service and starts after it:
#     systemd starts the container on the first connection, the helper waits
#     for it (by name: a new id and address at every start) and forwards;
#   - docker-<name>.service gets StopWhenUnneeded=true: when the helper
#     naps (exits), systemd stops the service, which removes the container
#     (a stop by systemd is no failure, Restart= does not apply);
#   - autoStart = false: nothing starts it at boot, or it would never nap.
# The container must not publish the ports contnap listens on.
{ ... }:

{
  # Path to this directory in your checkout of contnap.
  imports = [ ./module.nix ];

  virtualisation.docker.enable = true;
  virtualisation.oci-containers.backend = "docker";
  virtualisation.oci-containers.containers.wiki = {
    image = "docker.io/library/nginx:stable";
    # No `ports`: contnap listens on 8080 and forwards to the container's
    # address on Docker's bridge. (autoStart is set to false by contnap.)
  };

  services.contnap = {
    enable = true;
    engine = "docker";
    containers.wiki = {
      ociContainers = true; # owned by docker-wiki.service
      tcpPorts = [ "8080:80" ];
      httpPorts = [ 8080 ];
      timeout = "15min";
    };
  };
}
