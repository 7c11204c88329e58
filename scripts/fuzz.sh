#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, in build-sanitize/ with ASan + UBSan) and runs each for a
# bounded time on the seeds from scripts/fuzz-seeds.py, then prints executions, coverage and
# findings per target. A crashing input is kept in build-sanitize/fuzz-findings/<target>/ and fails
# the script; turn each into a regression test.
# Usage: scripts/fuzz.sh [seconds per target, default 120] [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_torch_zip fuzz_unpickler fuzz_idx \
                                      fuzz_cifar fuzz_image fuzz_json_config)
scripts/sanitize-build.sh "${targets[@]}"
work=build-sanitize/fuzz-work
rm -rf "$work/seeds"
/usr/bin/python3 scripts/fuzz-seeds.py "$work/seeds"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/scripts/sanitizers/ubsan.supp:${UBSAN_OPTIONS:-}"
status=0
summary=()
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  findings="build-sanitize/fuzz-findings/$target"
  mkdir -p "$corpus" "$findings"
  log="$work/$target.log"
  start=$(date +%s)
  if nice -n 10 "build-sanitize/fuzz/$target" "$corpus" "$work/seeds/$target" \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1; then
    result="no crash"
  else
    result="CRASH: see $log and $findings/"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  summary+=("$(printf '%-18s %6ss %12s runs %7s edges  %s' "$target" "$(( $(date +%s) - start ))" "$runs" "$cov" "$result")")
done
printf '%s\n' "${summary[@]}"
exit $status
