#!/usr/bin/python3
"""Instructions per event (issue 12), counted by valgrind's callgrind, which is stable on a
busy machine where wall time is not:

1. lightcurve: 250 bins over the first 10.7 h (38520 s) of a 100-hour simulated file, one
   rank, one thread; instructions of the whole process divided by the file's events in that
   range, and the same without the start-up (a run over the first second of the file);
2. with --all: fit over the whole file (per event of the file) and simulate (per simulated
   event);
3. a pull trial (nested simulate + fit on the default 30-minute observation, 1 rank, 1
   thread): instructions per trial, (ntrials=21 - ntrials=1) / 20 so that the start-up
   cancels, and CPU ms per trial, the median over --pull-runs runs of --pull-trials trials
   of the trials' CPU in /run/bins/cpu (start-up excluded). With --baseline BINARY the same
   figures of that binary (e.g. a build of main), measured in the same run, runs interleaved.

Usage: bench/instructions_per_event.py --binflow build/bin/binflow [--all] [--workdir DIR]
           [--pull-only] [--baseline BINARY] [--pull-runs 5] [--pull-trials 200]
"""
import argparse
import os
import re
import statistics
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


def pull_cpu_per_trial(binflow, trials, seed, workdir):
    """CPU seconds per trial of one pull run: the trials' own CPU (/run/bins/cpu)."""
    out = os.path.join(workdir, "pull_cpu.h5")
    subprocess.run([binflow, "pull", f"ntrials={trials}", f"seed={seed}", "nthreads=1", "chatter=0",
                    f"outfile={out}", "clobber=yes"], env=mpi_environment(), cwd=workdir, check=True,
                   capture_output=True)
    with h5py.File(out, "r") as f:
        cpu = f["run/bins/cpu"][()]
    os.remove(out)
    return float(np.sum(cpu)) / trials


def pull_figures(binaries, runs, trials, workdir):
    """Per binary: instructions per trial and the median CPU ms per trial."""
    per_trial = {}
    for name, binflow in binaries.items():
        one = instructions(binflow, ["pull", "ntrials=1", "outfile=pull1.h5", "clobber=yes"], workdir)
        many = instructions(binflow, ["pull", "ntrials=21", "outfile=pull21.h5", "clobber=yes"], workdir)
        per_trial[name] = (many - one) / 20
    cpu = {name: [] for name in binaries}
    for run in range(runs):  # interleaved, so that both see the same load
        for name, binflow in binaries.items():
            cpu[name].append(pull_cpu_per_trial(binflow, trials, 1000 + run, workdir))
    for name in binaries:
        c = sorted(cpu[name])
        print(f"pull trial ({name}): {per_trial[name] / 1e6:.1f} M instructions per trial "
              f"(callgrind, ntrials 21 - 1), CPU {1e3 * statistics.median(c):.2f} ms per trial "
              f"(median of {runs} runs of {trials} trials, 1 rank, 1 thread; range "
              f"{1e3 * c[0]:.2f}-{1e3 * c[-1]:.2f})")
    if len(binaries) == 2:
        this, base = (per_trial[n] for n in binaries)
        cpu_this, cpu_base = (statistics.median(cpu[n]) for n in binaries)
        print(f"pull trial, this / baseline: instructions {this / base:.3f}, CPU "
              f"{cpu_this / cpu_base:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binflow", required=True)
    parser.add_argument("--all", action="store_true", help="also fit and simulate")
    parser.add_argument("--workdir", help="keep the 100-hour file here (default: a temporary directory)")
    parser.add_argument("--pull-only", action="store_true", help="only the pull trial figures")
    parser.add_argument("--baseline", help="another binflow binary whose pull trial figures to print alongside")
    parser.add_argument("--pull-runs", type=int, default=5, help="pull runs for the CPU median")
    parser.add_argument("--pull-trials", type=int, default=200, help="trials per pull run")
    args = parser.parse_args()
    binflow = os.path.abspath(args.binflow)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        binaries = {"this build": binflow}
        if args.baseline:
            binaries["baseline"] = os.path.abspath(args.baseline)
        pull_figures(binaries, args.pull_runs, args.pull_trials, workdir)
        if args.pull_only:
            return
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
