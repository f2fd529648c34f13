#!/usr/bin/python3
"""Light-curve benchmarks (issue: science library and lightcurve):

1. fit throughput: ROI events fitted per second per core, TS and UL included, measured
   inside the run (sum of events / sum of per-bin CPU seconds from /run/bins), on the
   embedded 4-hour observation with 100 bins and a 40-hour one with 1000 bins;
2. peak resident memory per rank on a file of ~2.5e7 events (/run/bins/peak_rss), to show
   it follows the largest bin, not the file size.

Parallel efficiency over ranks and threads: bench/scaling.py.

Usage: bench/lightcurve_scaling.py --binflow build/bin/binflow [--repetitions 3] [--big_events 2.5e7]
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

import h5py
import numpy as np

from bench_common import mpi_environment



def run(args, cmd, ranks):
    full = [args.mpiexec, "-n", str(ranks), args.binflow] + cmd
    subprocess.run(full, check=True, env=mpi_environment(), stdout=subprocess.DEVNULL)


def simulate(args, path, duration, extra=()):
    start = time.time()
    run(args, ["simulate", "--duration", str(duration), "--outfile", path, "--clobber", *extra], 2)
    return time.time() - start


def lightcurve(args, inobs, out, bins, ranks, extra=()):
    run(args, ["lightcurve", "--inobs", inobs, "--tbins", str(bins), "--outfile", out,
               "--clobber", "--chatter", "1", "--nthreads", "1", *extra], ranks)
    with h5py.File(out, "r") as f:
        wall = float(f["run"].attrs["wall"])
        events = int(f["results/n_events"][()].sum())
        cpu = float(f["run/bins/cpu"][()].sum())
        rss = f["run/bins/peak_rss"][()]
        rank = f["run/bins/rank"][()]
    return wall, events, cpu, {int(r): int(rss[rank == r].max()) for r in np.unique(rank)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binflow", required=True)
    p.add_argument("--mpiexec", default="mpirun")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--big_events", type=float, default=2.5e7)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        short, long_ = os.path.join(work, "4h.h5"), os.path.join(work, "40h.h5")
        t4 = simulate(args, short, 4 * 3600)
        t40 = simulate(args, long_, 40 * 3600)
        print(f"simulate on 2 ranks: 4 h in {t4:.2f} s, 40 h in {t40:.2f} s")

        print("fit throughput (1 rank, 1 thread, TS and UL on; ROI events / CPU s of the bins):")
        for label, inobs, bins in (("4 h, 100 bins", short, 100), ("40 h, 1000 bins", long_, 1000)):
            for free in (False, True):
                rates = []
                for _ in range(args.repetitions):
                    _, events, cpu, _ = lightcurve(args, inobs, os.path.join(work, "lc.h5"), bins, 1,
                                                   ["--free_index"] if free else [])
                    rates.append(events / cpu)
                print(f"  {label:<16} index {'free ' if free else 'fixed'}: {statistics.median(rates):.3e} "
                      f"events/s/core ({events} ROI events)")

        # A file of ~big_events events: scale the duration from the 40-hour file's count.
        with h5py.File(long_, "r") as f:
            rate = f["events/time"].shape[0] / (40 * 3600.0)
        duration = args.big_events / rate
        big = os.path.join(work, "big.h5")
        tb = simulate(args, big, duration)
        with h5py.File(big, "r") as f:
            n = f["events/time"].shape[0]
        size = os.path.getsize(big) / 2**20
        print(f"big file: {n:.3e} events ({size:.0f} MiB), {duration / 3600:.0f} h, simulated in {tb:.1f} s")
        for bins in (100, 1000):
            _, events, _, rss = lightcurve(args, big, os.path.join(work, "lc.h5"), bins, 2)
            largest = n / bins * 32 / 2**20
            print(f"  {bins:>5} bins on 2 ranks: peak RSS per rank " +
                  ", ".join(f"rank {r} {v / 1024:.0f} MiB" for r, v in sorted(rss.items())) +
                  f" (a bin holds ~{largest:.1f} MiB of events; the file is {size:.0f} MiB)")


if __name__ == "__main__":
    main()
