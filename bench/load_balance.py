#!/usr/bin/python3
"""Load balance with lognormal bin costs (sigma 1, 400 bins, 2 ranks by default).

For every schedule, runs `binflow synthetic` several times and reports the median of
makespan / ideal, where ideal = max(total bin time / ranks, longest bin), both taken
from the run's own /run/bins table. Usage:
    bench/load_balance.py --binflow build/bin/binflow [--ranks 2] [--bins 400]
        [--cost_ms 5] [--repetitions 5]
"""
import argparse
import os
import statistics
import subprocess
import tempfile

import h5py

from bench_common import mpi_environment


def run_once(args, schedule, workdir, rep):
    out = os.path.join(workdir, f"{schedule}_{rep}.h5")
    cmd = [args.mpiexec, "-n", str(args.ranks), args.binflow, "synthetic", "--bins", str(args.bins),
           "--cost_ms", str(args.cost_ms), "--cost_dist", "lognormal", "--cost_sigma", "1",
           "--draws", "0", "--log_lines", "0", "--chatter", "1", "--schedule", schedule,
           "--seed", str(args.seed), "--outfile", out]
    subprocess.run(cmd, check=True, env=mpi_environment(), stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        makespan = float(f["run"].attrs["wall"])
        walls = f["run/bins/wall"][()]
    ideal = max(walls.sum() / args.ranks, walls.max())
    return makespan, ideal



def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binflow", required=True)
    p.add_argument("--mpiexec", default="mpirun")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--bins", type=int, default=400)
    p.add_argument("--cost_ms", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repetitions", type=int, default=5)
    args = p.parse_args()
    print(f"load balance: {args.bins} bins, lognormal costs (mean {args.cost_ms} ms, sigma 1), "
          f"{args.ranks} ranks, median of {args.repetitions}")
    with tempfile.TemporaryDirectory() as workdir:
        for schedule in ("static", "cyclic", "dynamic"):
            runs = [run_once(args, schedule, workdir, rep) for rep in range(args.repetitions)]
            ratios = [m / i for m, i in runs]
            k = ratios.index(statistics.median(ratios)) if args.repetitions % 2 else 0
            makespan, ideal = runs[k]
            print(f"  {schedule:<8} makespan {makespan:7.3f} s, ideal {ideal:7.3f} s, "
                  f"makespan/ideal median {statistics.median(ratios):.3f} "
                  f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
