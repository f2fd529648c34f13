#!/usr/bin/env bash
# The main job of the README: install missing packages, build, simulate a 4-hour
# observation of a flaring Crab-like source (flare of amplitude 3 in the middle) with the
# embedded instrument, and compute its 48-bin light curve on all cores of this machine
# (one MPI rank per core). Prints the table, writes its HTML report; leaves the files in out/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$BINFLOW_ROOT/scripts/setup.sh"
cmake -S "$BINFLOW_ROOT" -B "$BINFLOW_BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BINFLOW_BUILD" -j "$NPROC" --target binflow
mkdir -p "$BINFLOW_ROOT/out"
cd "$BINFLOW_ROOT/out"
binflow="$BINFLOW_BUILD/bin/binflow"
mpirun -n "$NPROC" "$binflow" simulate --duration 14400 --profile flare --amplitude 3 \
  --width 600 --seed 1 --outfile crab_flare.h5 --clobber
mpirun -n "$NPROC" "$binflow" lightcurve --inobs crab_flare.h5 --tbinalg LIN --tbins 48 \
  --outfile lightcurve.h5 --logfile lightcurve.log --clobber
"$binflow" report lightcurve.h5 --html report.html --clobber > /dev/null
cat <<TXT

out/crab_flare.h5   the simulated events (SCIENCE.md event-file format)
out/lightcurve.h5   the light curve: /results (one row per bin), /run (who ran what, when)
out/lightcurve.log  the ordered log of the light curve
out/report.html     the report: light curve, timeline of the ranks, memory, parameters
                    (one file, no network needed: open it in any browser)
TXT
echo "report: $BINFLOW_ROOT/out/report.html"
