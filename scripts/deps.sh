#!/usr/bin/env bash
# Install the Debian packages zeolite builds and tests with (only the missing ones).
set -euo pipefail
# clang and libclang-rt-14-dev (the libFuzzer runtime, only a Recommends of clang) build
# the fuzz targets; libmicrohttpd serves the metrics; the tests parse them with
# python3-prometheus-client and check the unit with systemd-analyze (systemd), which
# finds the man page it names with man (man-db, which also checks the page renders
# without a warning); the package test runs cpack and dpkg-deb (build-essential has
# dpkg-dev, whose dpkg-shlibdeps finds the package's dependencies). postgresql (15 on
# Debian 12) runs the tests' throwaway cluster (test/pg/cluster.sh); libpq-dev is the
# PostgreSQL store's client library.
pkgs=(build-essential cmake pkg-config liblmdb-dev libuv1-dev libmsgpack-dev libssl-dev
      libcriterion-dev openssl python3-btrees python3-persistent clang libclang-rt-14-dev
      libmicrohttpd-dev python3-prometheus-client systemd man-db postgresql libpq-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
