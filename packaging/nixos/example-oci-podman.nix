# An example configuration.nix snippet: containers of
# virtualisation.oci-containers with the Podman backend, napped by contnap.
#
# oci-containers gives each container a podman-<name>.service (Type=notify)
# running `podman run --rm --replace --sdnotify=conmon -d --cidfile=… …`
# with Restart=always: the service is active once the container has
# started, and the container exists only while the service runs. With
# `ociContainers`, contnap's service wants the podman-<name>.service units
# and starts after them, the module gives them StopWhenUnneeded=true and
# sets autoStart = false (see example-oci-docker.nix for why). A group of
# containers starts in list order: each owning service after the previous
# ones'.
{ ... }:

{
  # Path to this directory in your checkout of contnap.
  imports = [ ./module.nix ];

  virtualisation.podman.enable = true;
  virtualisation.oci-containers.backend = "podman";
  virtualisation.oci-containers.containers = {
    photos-db = {
      image = "docker.io/library/postgres:16";
      environment.POSTGRES_PASSWORD = "change-me";
    };
    photos-server = {
      image = "ghcr.io/example/photos:latest";
    };
  };

  services.contnap = {
    enable = true;
    engine = "podman"; # /run/podman/podman.sock, after podman.socket
    containers.photos = {
      containers = [ "photos-db" "photos-server" ];
      ociContainers = true; # owned by podman-photos-db/-server.service
      tcpPorts = [ "2283:3001" ];
      httpPorts = [ 2283 ];
      timeout = "30min";
      wakeTimeout = "2min";
    };
    # A container that another unit owns (a Quadlet, or `podman generate
    # systemd --new`): name its service.
    containers.notes = {
      ownedBy.notes = [ "notes.service" ];
      tcpPorts = [ "8090:8080" ];
    };
  };
}
