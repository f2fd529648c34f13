#!/usr/bin/env bash
# Runs every benchmark and prints its figures. Build first (scripts/test.sh or
# cmake --build build). Usage: bench/run_all.sh [build-dir]
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
build=${1:-$BINFLOW_BUILD}
export OMPI_MCA_rmaps_base_oversubscribe=1
echo "== executor overhead (2 ranks)"
mpirun -n 2 "$build/bin/bench_executor_overhead" 200000 5
echo "== load balance (2 ranks)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/load_balance.py" --binflow "$build/bin/binflow" --ranks 2
echo "== rank 0's cost per result and per scheduling message; rank-count limits (about 3 minutes)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/rank0_capacity.py" --binflow "$build/bin/binflow"
echo "== the live dashboard's cost to a run (2 ranks; about 1 minute)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/dashboard_overhead.py" --binflow "$build/bin/binflow"
echo "== likelihood fit throughput, in process (1 core)"
"$build/bin/bench_fit_throughput"
echo "== light curves: throughput end to end, memory per rank"
/usr/bin/python3 "$BINFLOW_ROOT/bench/lightcurve_scaling.py" --binflow "$build/bin/binflow"
echo "== statistics of pull and tsdist (2000 trials each; takes a few minutes)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/pull_statistics.py" --binflow "$build/bin/binflow" --ranks 2
echo "== instructions per event (callgrind; about 3 minutes with --all)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/instructions_per_event.py" --binflow "$build/bin/binflow" --all
echo "== binflow against Gammapy 1.0 on the same DL3 files (about 80 s)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/dl3_vs_gammapy.py" --binflow "$build/bin/binflow"
echo "== binflow against a vectorised numpy light curve (100-hour file, 2500 bins; about 1 minute after the simulation)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/numpy_lightcurve.py" --binflow "$build/bin/binflow"
echo "== parallel efficiency over ranks and threads (100-hour file; about 1 minute after the simulation)"
/usr/bin/python3 "$BINFLOW_ROOT/bench/scaling.py" --binflow "$build/bin/binflow"
