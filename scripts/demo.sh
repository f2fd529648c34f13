#!/usr/bin/env bash
# The main job of the README: install missing packages, build, and run the demo on
# all cores of this machine (one MPI rank per core), printing the table and leaving
# the output in out/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$BINFLOW_ROOT/scripts/setup.sh"
cmake -S "$BINFLOW_ROOT" -B "$BINFLOW_BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BINFLOW_BUILD" -j "$NPROC" --target binflow
mkdir -p "$BINFLOW_ROOT/out"
cd "$BINFLOW_ROOT/out"
mpirun -n "$NPROC" "$BINFLOW_BUILD/bin/binflow" synthetic \
  --bins 200 --cost_ms 20 --cost_dist lognormal --log_lines 1 \
  --outfile synthetic.h5 --logfile synthetic.log --clobber
echo "output: $BINFLOW_ROOT/out/synthetic.h5 (HDF5), $BINFLOW_ROOT/out/synthetic.log (ordered log)"
