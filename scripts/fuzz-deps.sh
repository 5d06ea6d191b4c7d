#!/usr/bin/env bash
# Installs what the fuzz targets need (make fuzz), if missing: clang and
# its libFuzzer runtime, which Debian 12 ships in libclang-rt-14-dev (the
# package follows clang's major version). Not needed by make test.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
install() {
  echo "fuzz-deps: installing $*"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v clang >/dev/null || install clang
# Whether clang can link a fuzz target.
links() {
  local dir
  dir=$(mktemp -d)
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
        { (void)d; (void)n; return 0; }' >"$dir/t.c"
  clang -fsanitize=fuzzer "$dir/t.c" -o "$dir/t" >/dev/null 2>&1
  local ok=$?
  rm -rf "$dir"
  return $ok
}
links && exit 0
install "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
links || { echo "fuzz-deps: clang cannot link libFuzzer" >&2; exit 1; }
