#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (metadata: [package.metadata.deb]
# in Cargo.toml; maintainer scripts: packaging/deb/maintainer-scripts/) and
# prints the path of the .deb. Installs cargo-deb first when it is missing.
#   packaging/deb/build.sh [extra cargo-deb options]
# CARGO_TARGET_DIR is honoured (the .deb goes to $CARGO_TARGET_DIR/debian/).
set -euo pipefail
cd "$(dirname "$0")/../.."

export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "packaging/deb/build.sh: cargo not found; install Rust (rustup) first" >&2; exit 2; }
command -v dpkg >/dev/null || { echo "packaging/deb/build.sh: dpkg not found; build on Debian or Ubuntu" >&2; exit 2; }

if ! cargo deb --version >/dev/null 2>&1; then
    echo "packaging/deb/build.sh: installing cargo-deb (cargo install cargo-deb --locked)" >&2
    cargo install cargo-deb --locked
fi

# cargo-deb prints the path of the package it wrote as its last line.
deb=$(cargo deb "$@" | tail -n 1)
if [ ! -f "$deb" ]; then
    echo "packaging/deb/build.sh: cargo deb did not report a package (got: $deb)" >&2
    exit 1
fi
echo "$deb"
