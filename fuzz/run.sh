#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 600), one after the other,
# and print executions and crashes per target. Needs cargo-fuzz
# (`cargo install cargo-fuzz`); on a stable-only machine RUSTC_BOOTSTRAP=1
# lets stable accept the sanitizer flags. A crash leaves its input in
# artifacts/<target>/; turn it into a regression test before fixing it.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# FUZZ_RUNS=N stops each target after N executions (libFuzzer's -runs) if
# that comes before SECONDS.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^mxscope-fuzz$')
fi
export RUSTC_BOOTSTRAP=1
mkdir -p logs
status=0
printf '%-16s %12s %8s %6s %s\n' target executions crashes slow log
for target in "${targets[@]}"; do
  log=logs/$target.log
  cargo fuzz run "$target" -- -max_total_time="$seconds" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # crash-, oom-, leak- and timeout- inputs fail the run; a slow-unit- input
  # (slowest so far, often just a loaded machine) is listed to re-time by hand.
  crashes=$(find "artifacts/$target" -type f ! -name 'slow-unit-*' 2>/dev/null | wc -l)
  slow=$(find "artifacts/$target" -type f -name 'slow-unit-*' 2>/dev/null | wc -l)
  printf '%-16s %12s %8s %6s %s\n' "$target" "${execs:-?}" "$crashes" "$slow" "$log"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then status=1; fi
done
exit $status
