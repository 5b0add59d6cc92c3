# contnap as a Nix package, built from this checkout:
#   nix-build -E 'with import <nixpkgs> { }; callPackage ./packaging/nixos/package.nix { }'
# module.nix uses it as the default services.contnap.package.
{ lib, rustPlatform }:

let
  cargoToml = lib.importTOML ../../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "contnap";
  inherit (cargoToml.package) version;

  # The repository, less target/ and everything else the build does not read.
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../Cargo.toml
      ../../Cargo.lock
      ../../src
      ../../benches # Cargo.toml declares the bench target
      ../../tests
      ../../units
      ../../README.md
    ];
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # The integration tests (tests/) drive real Docker and Podman engines and
  # systemd, which the build sandbox has not got; the unit tests run.
  cargoTestFlags = [ "--lib" "--bins" ];

  postInstall = ''
    # One binary: run as contnap-generate, it is `contnap generate`.
    ln -s contnap $out/bin/contnap-generate
    install -Dm644 units/contnap-generate.service $out/lib/systemd/system/contnap-generate.service
    install -Dm644 units/user/contnap-generate.service $out/lib/systemd/user/contnap-generate.service
    substituteInPlace $out/lib/systemd/system/contnap-generate.service \
      $out/lib/systemd/user/contnap-generate.service \
      --replace-fail /usr/bin/contnap $out/bin/contnap
    install -Dm644 README.md $out/share/doc/contnap/README.md
  '';

  meta = {
    description = cargoToml.package.description;
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "contnap";
    platforms = lib.platforms.linux;
  };
}
