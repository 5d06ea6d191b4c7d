#!/usr/bin/env bash
# Installs the Debian packages weft needs to build and test, if missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libuv1-dev
      libcmocka-dev lua-busted libcurl4-openssl-dev libhttp-parser-dev
      python3 openssl
      nginx-light gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)
missing=()
for p in "${pkgs[@]}"; do
  # nginx serves the HTTP/2 tests; any flavour will do.
  [ "$p" = nginx-light ] && command -v nginx >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
