#!/usr/bin/env bash
# Runs every science tool on small fixed inputs and prints one digest line per output: the
# SHA-256 of every /results dataset and of the /results attributes that do not state times,
# ranks or the command line. Two builds whose digests agree write bit-identical /results
# (how a refactoring is checked to change no result):
#   scripts/results_digest.sh build/bin/binflow > after.txt; diff before.txt after.txt
set -euo pipefail
source "$(dirname "$0")/env.sh"
binflow=$(realpath "${1:-$BINFLOW_BUILD/bin/binflow}")
# BINFLOW_DIGEST_KEEP=DIR keeps the outputs in DIR, to compare them one by one.
if [[ -n ${BINFLOW_DIGEST_KEEP:-} ]]; then
  work=$BINFLOW_DIGEST_KEEP
  mkdir -p "$work"
  rm -f "$work"/*.h5
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
cd "$work"
export OMPI_MCA_rmaps_base_oversubscribe=1
run() { "$binflow" "$@" chatter=0 >/dev/null; }
mpi() { mpirun -n 2 "$binflow" "$@" chatter=0 >/dev/null; }

mpi simulate duration=7200 seed=3 profile=flare outfile=obs.h5
mpi simulate duration=3600 seed=4 profile=pulsar outfile=psr.h5
mpi lightcurve inobs=obs.h5 tbins=24 free_index=yes outfile=lc.h5
run lightcurve inobs=obs.h5 tbinalg=GTI confidence=0.99 outfile=lc_gti.h5
run fit inobs=obs.h5 free_index=yes outfile=fit.h5
mpi spectrum inobs=obs.h5 enumbins=8 outfile=spec.h5
mpi phasecurve inobs=psr.h5 phbins=8 t_ref=0 f0=0.0297 outfile=phase.h5
mpi pull ntrials=12 seed=1 free_index=yes outfile=pull.h5
mpi pull ntrials=6 seed=2 inobs=obs.h5 outfile=pull_obs.h5
mpi tsdist ntrials=12 seed=2 outfile=tsdist.h5
mpi synthetic bins=50 cost_ms=0 outfile=synthetic.h5

/usr/bin/python3 - *.h5 <<'EOF'
import hashlib, sys
import h5py, numpy as np
# Attributes that state when, where or how a run was launched, not what it computed: the
# provenance records and the launch_only() parameters.
launch = {"start_time", "end_time", "command_line", "ranks", "threads_per_rank", "version",
          "nthreads", "oversubscribe", "chatter", "logfile", "outfile", "clobber", "schedule",
          "resume", "max_failures", "format", "schedule_used"}
for path in sorted(sys.argv[1:]):
    digest = hashlib.sha256()
    with h5py.File(path, "r") as f:
        group = f["results"] if "results" in f else f
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                digest.update(name.encode())
                data = obj[()]
                if isinstance(data, np.ndarray) and data.dtype.kind == "O":  # strings
                    digest.update("\0".join(map(str, data.tolist())).encode())
                else:
                    digest.update(np.ascontiguousarray(data).tobytes())
        group.visititems(visit)
        for key in sorted(group.attrs):
            if key not in launch:
                digest.update(f"{key}={group.attrs[key]!r}".encode())
    print(path, digest.hexdigest())
EOF
