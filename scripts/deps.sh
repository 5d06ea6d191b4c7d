#!/usr/bin/env bash
# Installs the Debian packages a purpose needs, if missing:
#   deps.sh build      what building weft needs (make demo)
#   deps.sh test       and what its tests need: cmocka, busted, the other
#                      Luas (5.3, 5.1, LuaJIT), python3, openssl, nginx,
#                      redis, and Debian's pure-Lua client libraries the
#                      library tests run (unpacked into .deps/lua, below)
#   deps.sh embedded   the Cortex-M toolchain and qemu (about 800 MB), for
#                      the embedded tier's cross tests only
#   deps.sh luas       the headers of Lua 5.3, 5.1 and LuaJIT (make install
#                      builds the module for each)
set -euo pipefail
build=(build-essential cmake pkg-config liblua5.4-dev libuv1-dev
       libcurl4-openssl-dev libhttp-parser-dev)
test=(lua5.4 libcmocka-dev lua-busted python3 openssl nginx-light
      liblua5.3-dev lua5.3 liblua5.1-0-dev lua5.1 luajit libluajit-5.1-dev
      luarocks redis-server)
# Pure-Lua libraries whose Debian packages depend on nginx-extras (which
# would swap LuaJIT for OpenResty's): their files are unpacked from the
# package into .deps/lua, not installed.
unpacked=(lua-nginx-redis)
embedded=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)
luas=(liblua5.3-dev liblua5.1-0-dev libluajit-5.1-dev)
pkgs=()
for what in "${@:-build}"; do
  case "$what" in
  build) pkgs+=("${build[@]}") ;;
  test) pkgs+=("${build[@]}" "${test[@]}") ;;
  embedded) pkgs+=("${embedded[@]}") ;;
  luas) pkgs+=("${luas[@]}") ;;
  *) echo "deps.sh: unknown purpose '$what' (build, test, embedded, luas)" >&2
     exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  # nginx serves the HTTP/2 tests; any flavour will do.
  [ "$p" = nginx-light ] && command -v nginx >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  updated=1
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
fi
case " $* " in *" test "*) ;; *) exit 0 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
for p in "${unpacked[@]}"; do
  [ -f "$root/.deps/lua/.$p" ] && continue
  echo "deps: unpacking $p into .deps/lua"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq "$p" 2>/dev/null); then
    [ $updated -eq 0 ] && $SUDO apt-get update -qq && updated=1
    (cd "$tmp" && apt-get download -qq "$p")
  fi
  dpkg-deb -x "$tmp"/"$p"_*.deb "$tmp/root"
  mkdir -p "$root/.deps/lua"
  cp -R "$tmp/root/usr/share/lua/5.1/." "$root/.deps/lua/"
  touch "$root/.deps/lua/.$p"
  rm -rf "$tmp"
done
