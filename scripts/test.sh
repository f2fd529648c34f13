#!/usr/bin/env bash
# The test command of the README (and all that .ci/run does): install missing
# packages, build Release with warnings as errors, run the whole suite with ctest.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$BINFLOW_ROOT/scripts/setup.sh"
# Multi-rank tests run 3 and 4 ranks on machines with fewer cores.
export OMPI_MCA_rmaps_base_oversubscribe=1
cmake -S "$BINFLOW_ROOT" -B "$BINFLOW_BUILD" -DCMAKE_BUILD_TYPE=Release -DBINFLOW_WERROR=ON
cmake --build "$BINFLOW_BUILD" -j "$NPROC"
cd "$BINFLOW_BUILD"
ctest --output-on-failure -j "$NPROC" "$@"
