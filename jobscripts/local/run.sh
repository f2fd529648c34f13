#!/bin/bash
# binflow on one workstation with mpirun: RANKS ranks x THREADS threads per rank, each
# rank bound to THREADS cores of its own (--map-by ppr:RANKS:node:PE=THREADS), binflow's
# thread budget running THREADS OpenMP threads on them (OMP_PLACES=cores,
# OMP_PROC_BIND=close). RANKS x THREADS must not exceed the physical cores: binflow refuses
# more rather than oversubscribe. Without -n, RANKS = cores / THREADS. Ctrl-C or SIGTERM
# checkpoints: binflow finishes its bins in flight, flushes OUTFILE.ckpt and exits 75; the
# same command again resumes where it stopped.
# This shell runs, in its own place, the job `binflow submit --scheduler local --dry_run`
# writes: the run / signal / checkpoint protocol of every binflow job script has one home,
# apps/tools/submit.cpp (docs/cluster.md).
#
#   jobscripts/local/run.sh -- lightcurve --inobs obs.h5 --tbins 48 --outfile lc.h5
#   jobscripts/local/run.sh -n 2 -t 4 -- spectrum --inobs obs.h5 --outfile spec.h5
# BINFLOW (default: binflow on the PATH, else build/bin/binflow of this repository) and
# BINFLOW_MPIRUN (or MPIRUN; default mpirun, Open MPI) name the programs.
set -uo pipefail

usage() {
  echo "usage: $0 [-n RANKS] [-t THREADS_PER_RANK] -- TOOL ARGS..." >&2
  exit 2
}
ranks=0
threads=1
while (($# > 0)); do
  case $1 in
    -n) ranks=${2:-}; shift 2 || usage ;;
    -t) threads=${2:-}; shift 2 || usage ;;
    --) shift; break ;;
    -h | --help) usage ;;
    *) break ;;
  esac
done
(($# > 0)) || usage
[[ $ranks =~ ^[0-9]+$ && $threads =~ ^[1-9][0-9]*$ ]] || usage

# Physical cores this shell may use (hyperthreads of one core count once, as binflow does).
allowed=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$$/status)
cores=$(lscpu -p=cpu,core,socket 2>/dev/null | grep -v '^#' |
  awk -F, -v allowed="$allowed" '
    BEGIN { n = split(allowed, ranges, ",")
            for (i = 1; i <= n; i++) { m = split(ranges[i], r, "-"); for (c = r[1]; c <= r[m]; c++) ok[c] = 1 } }
    ok[$1] { seen[$3 "," $2] = 1 }
    END { print length(seen) }')
((cores > 0)) || cores=$(nproc)
((ranks > 0)) || ranks=$((cores / threads > 0 ? cores / threads : 1))

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binflow=${BINFLOW:-$(command -v binflow || echo "$here/../../build/bin/binflow")}
export BINFLOW_MPIRUN=${BINFLOW_MPIRUN:-${MPIRUN:-mpirun}}
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

echo "run.sh: $ranks ranks x $threads threads on $cores cores: $binflow $*"
# binflow checks the geometry and the command line (exit 2 with the reason) and writes
# the job, which replaces this shell: signals sent to run.sh reach the job's trap.
job=$("$binflow" submit --scheduler local --dry_run --ranks_per_node "$ranks" \
  --threads_per_rank "$threads" -- "$@") || exit
exec bash -c "$job" "$0"
