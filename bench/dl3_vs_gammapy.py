#!/usr/bin/python3
"""binflow against Gammapy 1.0 on the same GADF DL3 files (issue: formats).

The data: tests/e2e/gammapy_dl3_fixture.py (Gammapy's own API: four 30-minute wobble runs of a
flaring Crab; --small, as in the test suite, unless --full). The analyses: a 12-bin light curve
(0.1-100 TeV, theta < 0.2 deg, index fixed) and 6 flux points with a global fit, by
`binflow lightcurve` + `binflow spectrum` on one core and on all cores, and by
tests/e2e/gammapy_reference.py (LightCurveEstimator + FluxPointsEstimator on a 3-D dataset,
at the given pixel size and energy bins per decade). Whole process each (interpreter and
imports included for Gammapy, MPI start-up for binflow), median of --repetitions runs, all in
this one run; the ratio is Gammapy / binflow. Gammapy's own timing of its estimators (without
imports) is printed too.

Usage: bench/dl3_vs_gammapy.py --binflow build/bin/binflow [--repetitions 3] [--full]
                               [--binsz 0.02] [--per_decade 10]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py

from bench_common import mpi_environment

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(HERE, "..", "tests", "e2e")


def timed(cmd, env=None):
    start = time.time()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binflow", required=True)
    p.add_argument("--mpiexec", default="mpirun")
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--full", action="store_true", help="the full-size fixture (not --small)")
    p.add_argument("--binsz", type=float, default=0.02)
    p.add_argument("--per_decade", type=int, default=10)
    args = p.parse_args()
    env = mpi_environment()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        dl3 = os.path.join(tmp, "dl3")
        fixture = [sys.executable, os.path.join(E2E, "gammapy_dl3_fixture.py"), "--outdir", dl3]
        subprocess.run(fixture + ([] if args.full else ["--small"]), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        common = ["emin=0.1", "emax=100", "theta_max=0.2", "chatter=0", "clobber=yes"]

        def map_wall():
            """The tools' own time: the wall of their bin maps (/run wall), without process
            start-up and input opening."""
            total = 0.0
            for name in ("lc.h5", "sp.h5"):
                with h5py.File(os.path.join(tmp, name), "r") as f:
                    total += float(f["run"].attrs["wall"])
            return total

        def binflow(ranks):
            lc = [args.mpiexec, "-n", str(ranks), args.binflow, "lightcurve", "inobs=" + dl3,
                  "tbins=12", "outfile=" + os.path.join(tmp, "lc.h5"), *common]
            sp = [args.mpiexec, "-n", str(ranks), args.binflow, "spectrum", "inobs=" + dl3,
                  "enumbins=6", "outfile=" + os.path.join(tmp, "sp.h5"), *common]
            return timed(lc, env) + timed(sp, env)

        reference = [sys.executable, os.path.join(E2E, "gammapy_reference.py"), "--datastore", dl3,
                     "--out", os.path.join(tmp, "ref.json"), "--tbins", "12", "--ebins", "6",
                     "--binsz", str(args.binsz), "--per_decade", str(args.per_decade)]
        one, every, gammapy, estimators, maps = [], [], [], [], []
        for _ in range(args.repetitions):  # interleaved: the machine's load hits all alike
            one.append(binflow(1))
            maps.append(map_wall())
            every.append(binflow(cores))
            gammapy.append(timed(reference))
            with open(os.path.join(tmp, "ref.json")) as f:
                t = json.load(f)["timing"]
            estimators.append(t["lightcurve_estimator"] + t["spectrum"])
    size = "full" if args.full else "small"
    g = statistics.median(gammapy)
    print(f"DL3 fixture ({size}, 4 runs), light curve 12 bins + spectrum 6 bins, "
          f"median of {args.repetitions}, whole process:")
    print(f"  Gammapy 1.0 ({args.binsz} deg pixels, {args.per_decade} bins/decade): {g:8.2f} s "
          f"(estimators alone {statistics.median(estimators):.2f} s)")
    for name, times in ((f"binflow, 1 rank", one), (f"binflow, {cores} ranks", every)):
        b = statistics.median(times)
        print(f"  {name:<20}                      {b:8.2f} s   Gammapy / binflow {g / b:6.1f}")
    m = statistics.median(maps)
    e = statistics.median(estimators)
    print(f"  estimators alone: Gammapy {e:.2f} s, binflow's bin maps on 1 rank {m:.3f} s: "
          f"ratio {e / m:.0f}")


if __name__ == "__main__":
    main()
