#!/usr/bin/env bash
# Installs the Debian packages the benchmarks need (the peers, LuaJIT's
# headers for weft's LuaJIT build, nginx for W7, hyperfine for W0, gnuplot
# for the chart, wrk for nginx's own capacity), if missing. Called by
# `make bench` and `make bench-quick`.
set -euo pipefail
pkgs=(lua5.4 luajit libluajit-5.1-dev lua-luv lua-cqueues nodejs python3
      python3-uvloop nginx-light hyperfine gnuplot-nox wrk)
missing=()
for p in "${pkgs[@]}"; do
  # Any nginx flavour will do.
  [ "$p" = nginx-light ] && command -v nginx >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "bench-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
