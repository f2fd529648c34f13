#!/bin/bash
# binflow on one workstation with mpirun: RANKS ranks x THREADS threads per rank, each
# rank bound to THREADS cores of its own (--map-by ppr:RANKS:node:PE=THREADS), binflow's
# thread budget running THREADS OpenMP threads on them (OMP_PLACES=cores,
# OMP_PROC_BIND=close). RANKS x THREADS must not exceed the physical cores: the script
# refuses more (mpirun would too) rather than oversubscribe. Without -n, RANKS = cores /
# THREADS. Ctrl-C or SIGTERM checkpoints: binflow finishes its bins in flight, flushes
# OUTFILE.ckpt and exits 75; run the same command with resume=yes to finish.
#
#   jobscripts/local/run.sh -- lightcurve --inobs obs.h5 --tbins 48 --outfile lc.h5
#   jobscripts/local/run.sh -n 2 -t 4 -- spectrum --inobs obs.h5 --outfile spec.h5
# BINFLOW (default: binflow on the PATH, else build/bin/binflow of this repository) and
# MPIRUN (default mpirun, Open MPI) name the programs.
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
if ((ranks * threads > cores)); then
  echo "run.sh: $ranks ranks x $threads threads = $((ranks * threads)) cores, more than the $cores here" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binflow=${BINFLOW:-$(command -v binflow || echo "$here/../../build/bin/binflow")}
export OMP_NUM_THREADS=$threads OMP_PLACES=cores OMP_PROC_BIND=close
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

echo "run.sh: $ranks ranks x $threads threads on $cores cores: $binflow $*"
"${MPIRUN:-mpirun}" -n "$ranks" --map-by "ppr:$ranks:node:PE=$threads" --bind-to core \
  -x OMP_NUM_THREADS -x OMP_PLACES -x OMP_PROC_BIND "$binflow" "$@" &
launcher=$!
# SIGUSR1 reaches every rank through mpirun (exit 75); mpirun answers SIGTERM with exit 1.
trap 'kill -USR1 "$launcher" 2>/dev/null' INT TERM USR1
while kill -0 "$launcher" 2>/dev/null; do wait "$launcher"; done
status=0
wait "$launcher" || status=$?
if ((status == 75)); then
  echo "run.sh: interrupted; the checkpoint is flushed: run the same command with resume=yes" >&2
fi
exit "$status"
