#!/usr/bin/env bash
# The libFuzzer targets of fuzz/ (docs/checking.md, "Fuzzing"): configures a clang-19 build of
# its own with -DBINFLOW_FUZZ=ON (build-fuzz/, or $BINFLOW_FUZZ_BUILD), builds only the
# parsers the targets reach, runs the parsers' unit tests under that ASan+UBSan build, then
# fuzzes every target for SECONDS over its committed corpus (fuzz/corpus/<target>, which also
# holds the inputs of past findings, so each run replays them first).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 300 s, every target; the suite's
#                                              fuzz.short test runs 5 s)
# New corpus entries go to $build/fuzz-work/corpus/<target>, crashes to
# $build/fuzz-work/crashes/: copy a crash into fuzz/corpus/<target>/ once it is fixed.
# Targets run $NPROC at a time, one process each. Exit 77: clang-19 or libFuzzer missing.
set -euo pipefail
source "$(dirname "$0")/env.sh"
seconds=${1:-300}
shift || true
build=${BINFLOW_FUZZ_BUILD:-$BINFLOW_ROOT/build-fuzz}
work=$build/fuzz-work

if ! command -v clang++-19 > /dev/null; then
  echo "fuzz: skipped: clang++-19 is not installed (clang-19 in scripts/setup.sh)"
  exit 77
fi
if [[ ! -e $(clang++-19 -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a ]]; then
  echo "fuzz: skipped: clang-19's libFuzzer runtime is missing (libclang-rt-19-dev in scripts/setup.sh)"
  exit 77
fi

start=$SECONDS
cmake -S "$BINFLOW_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 -DBINFLOW_FUZZ=ON \
  -DBINFLOW_BUILD_TESTS=OFF -DBINFLOW_BUILD_BENCH=OFF > /dev/null
cmake --build "$build" -j "$NPROC" --target binflow_fuzz > "$build/fuzz-build.log" 2>&1 ||
  { tail -n 40 "$build/fuzz-build.log"; exit 1; }
echo "fuzz: built in $((SECONDS - start)) s"

export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=abort_on_error=0
for test in "$build"/bin/asan_*_test; do
  "$test" --gtest_brief=1 > "$build/$(basename "$test").log" 2>&1 ||
    { tail -n 40 "$build/$(basename "$test").log"; echo "fuzz: FAILED: $(basename "$test")"; exit 1; }
done
echo "fuzz: the parsers' unit tests pass under ASan+UBSan ($(ls "$build"/bin/asan_*_test | wc -l) programs)"

if [[ $# -eq 0 ]]; then
  set -- $(cd "$BINFLOW_ROOT/fuzz/corpus" && ls)
fi
mkdir -p "$work/crashes"
run() {
  local target=$1 options=""
  # HDF5 and cfitsio keep allocations until exit by design; the text parsers are checked
  # for leaks.
  [[ $target == fuzz_event_file || $target == fuzz_dl3_file ]] && options=detect_leaks=0
  mkdir -p "$work/corpus/$target"
  ASAN_OPTIONS=$ASAN_OPTIONS:$options "$build/bin/$target" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/crashes/$target-" \
    "$work/corpus/$target" "$BINFLOW_ROOT/fuzz/corpus/$target" > "$work/$target.log" 2>&1
}
for target in "$@"; do
  while (($(jobs -rp | wc -l) >= NPROC)); do wait -n || true; done
  { status=0; run "$target" || status=$?; echo "$status" > "$work/$target.status"; } &
done
wait
failed=()
for target in "$@"; do
  if [[ $(cat "$work/$target.status") != 0 ]]; then
    failed+=("$target")
    grep -E "FINDING|ERROR|runtime error|SUMMARY" "$work/$target.log" | head -n 5 || true
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
  coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$work/$target.log" | tail -n 1)
  echo "fuzz: $target: ${executions:-?} executions in ${seconds} s, ${coverage:-no stats}"
done
echo "fuzz: done in $((SECONDS - start)) s"
if ((${#failed[@]} > 0)); then
  echo "fuzz: FINDINGS in ${failed[*]}: inputs in $work/crashes/, logs in $work/"
  exit 1
fi
