#!/usr/bin/python3
"""Parallel efficiency of the light curve and the fit (issue 12), medians with min-max:

1. the machine's own figure: two independent one-rank light curves at once against one alone
   (what two processes get from this machine at all: shared caches, memory, a hypervisor);
2. ranks: T(1 rank) / (2 T(2 ranks)) for the 40 h / 1000-bin and 100 h / 2500-bin light
   curves of a 100-hour file, default (dynamic) schedule, 1 thread per rank;
3. threads: T(1 rank x 1 thread) / (2 T(1 rank x 2 threads)) for the 100 h / 2500-bin light
   curve and for `fit` over the whole file (one bin).

T is the map's wall (/run attribute `wall`). Every measurement of one repetition runs back
to back, each binary (--baseline too) in turn, so that a busy machine's drifts hit all alike.

Usage: bench/scaling.py --binflow build/bin/binflow [--baseline OTHER] [--repetitions 7]
       [--workdir DIR]
"""
import argparse
import os
import statistics
import subprocess
import tempfile

import h5py

from bench_common import mpi_environment


def map_wall(path):
    with h5py.File(path, "r") as f:
        return float(f["run"].attrs["wall"])


def command(binflow, ranks, tool, events, out, threads, extra):
    run = [binflow, tool, f"inobs={events}", f"nthreads={threads}", "chatter=0",
           f"outfile={out}", "clobber=yes", *extra]
    return ["mpirun", "-n", str(ranks), *run] if ranks > 1 else run


def timed(binflow, ranks, tool, events, out, threads=1, extra=()):
    subprocess.run(command(binflow, ranks, tool, events, out, threads, extra), check=True,
                   env=mpi_environment(), stdout=subprocess.DEVNULL)
    return map_wall(out)


def two_at_once(binflow, events, work, extra):
    outs = [os.path.join(work, f"pair{k}.h5") for k in (0, 1)]
    runs = [subprocess.Popen(command(binflow, 1, "lightcurve", events, out, 1, extra),
                             env=mpi_environment(), stdout=subprocess.DEVNULL) for out in outs]
    for r in runs:
        if r.wait() != 0:
            raise SystemExit("a light curve of the pair failed")
    return statistics.mean(map_wall(out) for out in outs)


CASES = {
    "lc 40 h / 1000 bins": ("lightcurve", ["tmax=144000", "tbins=1000"]),
    "lc 100 h / 2500 bins": ("lightcurve", ["tbins=2500"]),
    "fit 100 h (one bin)": ("fit", []),
}


def measure(binflow, events, work):
    """One repetition of every measurement: {name: seconds}."""
    out = os.path.join(work, "out.h5")
    t = {}
    lc100 = CASES["lc 100 h / 2500 bins"][1]
    t["alone"] = timed(binflow, 1, "lightcurve", events, out, extra=lc100)
    t["pair"] = two_at_once(binflow, events, work, lc100)
    for name in ("lc 40 h / 1000 bins", "lc 100 h / 2500 bins"):
        tool, extra = CASES[name]
        t[(name, 1, 1)] = timed(binflow, 1, tool, events, out, 1, extra)
        t[(name, 2, 1)] = timed(binflow, 2, tool, events, out, 1, extra)
    for name in ("lc 100 h / 2500 bins", "fit 100 h (one bin)"):
        tool, extra = CASES[name]
        t.setdefault((name, 1, 1), timed(binflow, 1, tool, events, out, 1, extra))
        t[(name, 1, 2)] = timed(binflow, 1, tool, events, out, 2, extra)
    return t


def spread(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def report(label, runs):
    def column(key):
        return [r[key] for r in runs]

    print(f"{label}:")
    alone, pair = column("alone"), column("pair")
    print(f"  machine: one light curve alone {spread(alone)} s, two independent ones at once "
          f"{spread(pair)} s each: T(alone) / T(pair) = {statistics.median(alone) / statistics.median(pair):.3f}")
    for name in ("lc 40 h / 1000 bins", "lc 100 h / 2500 bins"):
        t1, t2 = column((name, 1, 1)), column((name, 2, 1))
        print(f"  ranks, {name}: T1 {spread(t1)} s, T2 {spread(t2)} s, "
              f"T1 / (2 T2) = {statistics.median(t1) / (2 * statistics.median(t2)):.3f}")
    for name in ("lc 100 h / 2500 bins", "fit 100 h (one bin)"):
        t1, t2 = column((name, 1, 1)), column((name, 1, 2))
        print(f"  threads, {name}: 1 thread {spread(t1)} s, 2 threads {spread(t2)} s, "
              f"T1 / (2 T2) = {statistics.median(t1) / (2 * statistics.median(t2)):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binflow", required=True)
    parser.add_argument("--baseline", help="another binflow binary, measured in the same run")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--workdir", help="keep the 100-hour file here (default: a temporary directory)")
    args = parser.parse_args()
    binaries = {"binflow": os.path.abspath(args.binflow)}
    if args.baseline:
        binaries["baseline"] = os.path.abspath(args.baseline)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or tmp
        os.makedirs(work, exist_ok=True)
        events = os.path.join(work, "ev100h.h5")
        if not os.path.exists(events):
            subprocess.run([binaries["binflow"], "simulate", "duration=360000", f"outfile={events}",
                            "chatter=0"], env=mpi_environment(), check=True)
        runs = {label: [] for label in binaries}
        for _ in range(args.repetitions):
            for label, binary in binaries.items():
                runs[label].append(measure(binary, events, work))
        for label in binaries:
            report(f"{label} ({binaries[label]}), {args.repetitions} repetitions", runs[label])


if __name__ == "__main__":
    main()
