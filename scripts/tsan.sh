#!/usr/bin/env bash
# The threaded paths under ThreadSanitizer, in a build of their own (build-tsan/; not part
# of the suite: a second full build doubles CI time). See docs/checking.md.
#   scripts/tsan.sh            build, then the threaded tests and runs below
#   scripts/tsan.sh -R regex   build, then only the ctest tests matching (no binflow runs)
#
# clang, because OpenMP under TSan needs LLVM's libomp and its OMPT tool Archer, which
# tells TSan what OpenMP's barriers, reductions, locks and task waits order (libomp itself
# is not instrumented: without Archer every `parallel for` that writes a shared result
# reads as a race). Debian ships libarcher.so outside the loader's path, so it is named
# here; the run fails unless Archer says it is active.
# What the run covers: the multi-rank tests (the executor's compute thread beside rank 0's
# service thread, nested runs, thread budgets), the unit tests that open OpenMP teams or
# threads, and binflow's tools at 1 and 2 ranks with 2 threads per rank.
set -euo pipefail
source "$(dirname "$0")/env.sh"
build=$BINFLOW_ROOT/build-tsan
llvm=/usr/lib/llvm-19
archer=$llvm/lib/libarcher.so
die() { echo "tsan.sh: $*" >&2; exit 1; }
for f in "$llvm/bin/clang++" "$archer" "$llvm/lib/clang/19/lib/linux/libclang_rt.tsan-x86_64.a"; do
  [[ -e $f ]] || die "$f is missing (Debian: clang-19 libomp-19-dev libclang-rt-19-dev)"
done

CC=clang-19 CXX=clang++-19 cmake -S "$BINFLOW_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBINFLOW_SANITIZE=thread -DBINFLOW_BUILD_BENCH=OFF > /dev/null
grep -q '^OpenMP_CXX_FLAGS:STRING=-fopenmp=libomp$' "$build/CMakeCache.txt" ||
  die "CMake did not pick clang's libomp for OpenMP"
cmake --build "$build" -j "$NPROC"

# halt_on_error stays 0: every race is printed, and the process still exits with 66.
# ignore_noninstrumented_modules: no reports from inside libomp, Open MPI, HDF5 or
# libstdc++'s compiled part, whose accesses TSan cannot see (Archer's advice); races on
# binflow's own memory are still seen in binflow's instrumented code.
TSAN_OPTIONS="exitcode=66 halt_on_error=0 second_deadlock_stack=1 ignore_noninstrumented_modules=1"
TSAN_OPTIONS+=" suppressions=$BINFLOW_ROOT/scripts/tsan.supp"
TSAN_OPTIONS+=" external_symbolizer_path=$(command -v llvm-symbolizer || true)"
export TSAN_OPTIONS
export OMP_TOOL_LIBRARIES=$archer
export OMPI_MCA_rmaps_base_oversubscribe=1
tsan_exe=$build/bin/binflow

# Archer must really be loaded: otherwise OpenMP gets no happens-before at all.
probe=$(ARCHER_OPTIONS=verbose=1 "$build/bin/parallel_test" --gtest_filter='*ParallelFor*' 2>&1 ||
  true)
grep -q "Archer detected OpenMP application with TSan" <<<"$probe" ||
  die "Archer is not active; the probe printed:"$'\n'"$probe"
# (grep without -q: an early exit would fail the pipeline's writer under pipefail)
nm "$tsan_exe" | grep __tsan_init > /dev/null || die "$tsan_exe is not instrumented"
ldd "$tsan_exe" | grep 'libomp\.so' > /dev/null || die "$tsan_exe does not use libomp"

cd "$build"
if [[ $# -gt 0 ]]; then
  ctest --output-on-failure -j "$NPROC" "$@"
  exit
fi
failures=0  # every stage runs; each failed one counts
ctest --output-on-failure -j "$NPROC" -L mpi || failures=$((failures + 1))
ctest --output-on-failure -j "$NPROC" \
  -R '^(parallel_test|ordered_log_test|likelihood_test|fitter_pulls_test|dl3_simulate_test)\.' ||
  failures=$((failures + 1))

# binflow's tools at 1 and 2 ranks, 2 threads per rank (--oversubscribe: 4 threads on 2
# cores). A race makes the rank exit 66, and the report is printed.
work=$build/tsan_runs
rm -rf "$work" && mkdir -p "$work"
run() {
  local name=$1
  shift
  local start=$SECONDS
  if "$@" --outfile "$work/$name.h5" --nthreads 2 --oversubscribe yes > "$work/$name.log" 2>&1 &&
     ! grep -q "ThreadSanitizer" "$work/$name.log"; then
    echo "ok    $name ($((SECONDS - start)) s)"
  else
    echo "FAIL  $name: $*"
    cat "$work/$name.log"
    failures=$((failures + 1))
  fi
}
np() { echo "$MPIEXEC_EXECUTABLE" -n "$1" "$tsan_exe"; }
MPIEXEC_EXECUTABLE=$(sed -n 's/^MPIEXEC_EXECUTABLE:FILEPATH=//p' CMakeCache.txt)
obs=$work/flare.h5  # written by the first run
# Light-curve bins of >= 8192 events in the region of interest (4 blocks of 2048), so that
# the fits really run their OpenMP loops (likelihood.cpp, min_parallel_blocks).
run flare "$tsan_exe" simulate --duration 7200 --profile flare --width 900 --seed 5
run simulate_np2 $(np 2) simulate --duration 3600 --seed 6
run lightcurve_np1 "$tsan_exe" lightcurve --inobs "$obs" --tbins 3 --chatter 3
run lightcurve_np2 $(np 2) lightcurve --inobs "$obs" --tbins 4 --schedule dynamic --chatter 3
run lightcurve_free_np2 $(np 2) lightcurve --inobs "$obs" --tbins 4 --free_index --schedule cyclic
run synthetic_np1 "$tsan_exe" synthetic --bins 20 --cost_ms 1 --omp_work --log_lines 2 --chatter 3
run synthetic_np2 $(np 2) synthetic --bins 40 --cost_ms 1 --cost_dist lognormal --omp_work \
  --log_lines 2 --chatter 3
run pull_np2 $(np 2) pull --ntrials 8 --seed 3 --duration 1800
echo "tsan.sh: $failures failed (ctest stages and binflow runs)"
((failures == 0))
