#!/usr/bin/env bash
# run.sh BUILD SECONDS [TARGET...]: runs each fuzz target built in BUILD
# (cmake -DWEFT_FUZZ=ON) for SECONDS, one after another, from its seed
# corpus (tests/fuzz/corpus/<target>) and what earlier runs found
# (BUILD/fuzz-work/<target>/corpus). Prints runs and executions per second
# of each; a crash or a violated invariant fails the run, its input left
# in BUILD/fuzz-work/<target>/artifacts and its log printed. FUZZ_SEED,
# when set, fixes libFuzzer's seed, so that a run repeats the inputs of
# another of the same length (CI uses it; longer runs explore anew).
set -uo pipefail
build=$1
seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -eq 0 ] &&
  targets=(marshal tcp_lines http_response http_options size)
here=$(cd "$(dirname "$0")" && pwd)
failed=0
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  flags=(-max_total_time="$seconds" -timeout=30 -max_len=4096
         -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  [ -n "${FUZZ_SEED:-}" ] && flags+=(-seed="$FUZZ_SEED")
  # curl keeps connections and caches between requests: an input that
  # ends with more blocks than it began is normal there, and checking
  # each for leaks would take most of the time. ASan still checks every
  # access; the whole suite runs under LeakSanitizer (make test-asan).
  case $t in http_*) flags+=(-detect_leaks=0) ;; esac
  "$build/tests/fuzz/fuzz_$t" "${flags[@]}" "$work/corpus" \
    "$here/corpus/$t" >"$work/log" 2>&1
  status=$?
  runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$work/log")
  rate=$(awk '/^stat::average_exec_per_sec/ {print $2}' "$work/log")
  if [ $status -eq 0 ]; then
    printf '%-14s ok      %10s runs %8s exec/s\n' "$t" "${runs:-?}" \
      "${rate:-?}"
  else
    printf '%-14s FAILED  %10s runs %8s exec/s (status %d)\n' "$t" \
      "${runs:-?}" "${rate:-?}" $status
    grep -a -v '^#[0-9]' "$work/log" | tail -60
    failed=1
  fi
done
exit $failed
