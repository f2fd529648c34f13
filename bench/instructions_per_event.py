#!/usr/bin/python3
"""Instructions per event (issue 12), counted by valgrind's callgrind, which is stable on a
busy machine where wall time is not:

1. lightcurve: 250 bins over the first 10.7 h (38520 s) of a 100-hour simulated file, one
   rank, one thread; instructions of the whole process divided by the file's events in that
   range, and the same without the start-up (a run over the first second of the file);
2. with --all: fit over the whole file (per event of the file) and simulate (per simulated
   event).

Usage: bench/instructions_per_event.py --binflow build/bin/binflow [--all] [--workdir DIR]
"""
import argparse
import os
import re
import subprocess
import tempfile

import h5py
import numpy as np

from bench_common import mpi_environment


def instructions(binflow, args, workdir):
    """Instructions (callgrind's Ir) of one binflow run."""
    out = os.path.join(workdir, "callgrind.out")
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binflow,
                        *args, "nthreads=1", "chatter=0"],
                       env=mpi_environment(), cwd=workdir, capture_output=True, text=True,
                       check=True)
    os.remove(out)
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binflow", required=True)
    parser.add_argument("--all", action="store_true", help="also fit and simulate")
    parser.add_argument("--workdir", help="keep the 100-hour file here (default: a temporary directory)")
    args = parser.parse_args()
    binflow = os.path.abspath(args.binflow)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        events = os.path.join(workdir, "ev100h.h5")
        if not os.path.exists(events):
            subprocess.run([binflow, "simulate", "duration=360000", f"outfile={events}", "chatter=0"],
                           env=mpi_environment(), check=True)
        with h5py.File(events, "r") as f:
            time = f["events/time"][()]
        in_range = int(np.searchsorted(time, 38520.0))
        print(f"file: {len(time)} events over 100 h; {in_range} in the first 38520 s")

        startup = instructions(binflow, ["lightcurve", f"inobs={events}", "tmin=0", "tmax=1",
                                         "tbins=1"], workdir)
        total = instructions(binflow, ["lightcurve", f"inobs={events}", "tmin=0", "tmax=38520",
                                       "tbins=250"], workdir)
        print(f"lightcurve 250 bins / 10.7 h, 1 thread: {total / 1e6:.1f} M instructions, "
              f"{total / in_range:.0f} per event of the range "
              f"({(total - startup) / in_range:.0f} without the start-up of {startup / 1e6:.1f} M)")
        if args.all:
            fit = instructions(binflow, ["fit", f"inobs={events}"], workdir)
            print(f"fit over the whole file, 1 thread: {fit / 1e6:.0f} M instructions, "
                  f"{fit / len(time):.0f} per event of the file")
            sim_out = os.path.join(workdir, "sim10h.h5")
            sim = instructions(binflow, ["simulate", "duration=36000", f"outfile={sim_out}",
                                         "clobber=yes"], workdir)
            with h5py.File(sim_out, "r") as f:
                simulated = f["events/time"].shape[0]
            print(f"simulate 10 h, 1 thread: {sim / 1e6:.0f} M instructions, "
                  f"{sim / simulated:.0f} per simulated event ({simulated} events)")


if __name__ == "__main__":
    main()
