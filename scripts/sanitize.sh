#!/usr/bin/env bash
# The unit and multi-rank tests under AddressSanitizer and UndefinedBehaviorSanitizer, in a
# build of their own (build-asan/; not part of the suite: a second full build doubles CI time).
#   scripts/sanitize.sh [ctest arguments]      (default: -L "unit|mpi")
# Leak detection is off: Open MPI and HDF5 keep allocations until exit by design. UBSan stops
# at the first finding (halt_on_error), so any finding fails the test that hit it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
build=$BINFLOW_ROOT/build-asan
# BINFLOW_SANITIZE instruments every binflow target (cmake/BinflowWarnings.cmake); the empty
# flags clear those that build dirs of the earlier version of this script cached.
cmake -S "$BINFLOW_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBINFLOW_SANITIZE=address,undefined -DCMAKE_CXX_FLAGS= -DCMAKE_EXE_LINKER_FLAGS= > /dev/null
cmake --build "$build" -j "$NPROC"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMPI_MCA_rmaps_base_oversubscribe=1
cd "$build"
if [[ $# -eq 0 ]]; then set -- -L "unit|mpi"; fi
ctest --output-on-failure -j "$NPROC" "$@"
