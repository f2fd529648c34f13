#!/usr/bin/python3
"""The full statistical checks of SCIENCE.md section 6 with `binflow pull` and `binflow tsdist`
(2000 trials each by default), on the embedded instrument and the 30-minute default
observation; prints each figure against its bound and the time per trial.

- pulls of N0 and beta (and gamma with the index free) on the bright Crab-like source:
  mean within +-0.1, width within [0.9, 1.1];
- background-only trials: fraction of TS > 2.706 within 0.05 +- 0.015 (half chi^2, 1 dof);
- coverage of the 95% upper limit at 5% and 10% of the bright source: >= 93% (and, for
  information, at 1%, where the profile-likelihood limit over-covers next to N0 >= 0).

Time per trial: the executor's per-bin wall and CPU seconds (/run/bins, one trial = one nested
simulation + one nested fit on one thread) and the run's wall time / trials on `ranks` ranks.

Usage: bench/pull_statistics.py --binflow build/bin/binflow [--ntrials 2000] [--ranks N] [--seed 1]
Exit status 1 if a bound is missed.
"""
import argparse
import math
import os
import subprocess
import tempfile
import time

import h5py
import numpy as np

from bench_common import mpi_environment

BRIGHT_N0 = 3.5e-11


def run(args, tool, out, extra):
    cmd = [args.mpiexec, "-n", str(args.ranks), args.binflow, tool, "--ntrials", str(args.ntrials),
           "--outfile", out, "--clobber", "--chatter", "1", *extra]
    start = time.monotonic()
    subprocess.run(cmd, check=True, env=mpi_environment(), stdout=subprocess.DEVNULL)
    wall = time.monotonic() - start
    with h5py.File(out, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["results"].attrs.items()}
        results = {k: f["results"][k][()] for k in f["results"]}
        bins = {k: f["run/bins"][k][()] for k in f["run/bins"]}
    per_trial = f"{1e3 * np.mean(bins['wall']):.1f} ms wall, {1e3 * np.mean(bins['cpu']):.1f} ms CPU per trial " \
                f"on one thread; {1e3 * wall / args.ntrials:.2f} ms of run wall per trial on {args.ranks} ranks"
    return attrs, results, per_trial


def verdict(ok):
    return "pass" if ok else "FAIL"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binflow", required=True)
    parser.add_argument("--mpiexec", default="mpirun")
    parser.add_argument("--ntrials", type=int, default=2000)
    parser.add_argument("--ranks", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra, columns in (
                ("pull, bright source, index fixed", [], ("pull_N0", "pull_beta")),
                ("pull, bright source, index free", ["--free_index"], ("pull_N0", "pull_gamma", "pull_beta"))):
            attrs, _, per_trial = run(args, "pull", os.path.join(tmp, "pull.h5"), ["--seed", str(args.seed), *extra])
            print(f"== {label} ({attrs['trials_ok']} of {args.ntrials} trials ok; {per_trial})")
            for col in columns:
                mean, width = float(attrs[f"{col}_mean"]), float(attrs[f"{col}_width"])
                ok = abs(mean) <= 0.1 and 0.9 <= width <= 1.1
                failures += not ok
                print(f"   {col:<10} mean {mean:+.4f} +- {float(attrs[f'{col}_mean_err']):.4f}   "
                      f"width {width:.4f} +- {float(attrs[f'{col}_width_err']):.4f}   "
                      f"(bounds |mean| <= 0.1, width in [0.9, 1.1]): {verdict(ok)}")
            print(f"   UL coverage (information) {float(attrs['ul_coverage']):.4f} "
                  f"+- {float(attrs['ul_coverage_err']):.4f}")

        attrs, res, per_trial = run(args, "tsdist", os.path.join(tmp, "tsdist.h5"), ["--seed", str(args.seed + 1)])
        print(f"== tsdist, background only ({attrs['trials_ok']} of {args.ntrials} trials ok; {per_trial})")
        f1, e1 = float(attrs["ts_fraction_above_2.706"]), float(attrs["ts_fraction_above_2.706_err"])
        ok = abs(f1 - 0.05) <= 0.015
        failures += not ok
        print(f"   TS > 2.706: {f1:.4f} +- {e1:.4f}, half chi^2 expects "
              f"{float(attrs['ts_fraction_above_2.706_expected']):.4f} (bound 0.05 +- 0.015): {verdict(ok)}")
        print(f"   TS > 25:    {float(attrs['ts_fraction_above_25']):.4f} +- "
              f"{float(attrs['ts_fraction_above_25_err']):.4f}, half chi^2 expects "
              f"{float(attrs['ts_fraction_above_25_expected']):.3g}")
        print(f"   TS = 0 (N0 on its bound): {np.mean(res['ts'] == 0.0):.4f} (expected 0.5); "
              f"mean TS {float(attrs['ts_mean']):.4f} +- {float(attrs['ts_mean_err']):.4f} (expected 0.5)")

        for percent, bound in ((5, 0.93), (10, 0.93), (1, None)):
            n0 = BRIGHT_N0 * percent / 100
            attrs, _, per_trial = run(args, "pull", os.path.join(tmp, f"ul{percent}.h5"),
                                      ["--seed", str(args.seed + 1 + percent), "--N0", repr(n0)])
            cov, err = float(attrs["ul_coverage"]), float(attrs["ul_coverage_err"])
            line = f"== 95% UL coverage at {percent}% of the bright source (N0 = {n0:.3g}): {cov:.4f} +- {err:.4f}"
            if bound is not None:
                ok = cov >= bound
                failures += not ok
                line += f" (bound >= {bound}): {verdict(ok)}"
            else:
                line += " (information: over-covers next to the N0 >= 0 bound)"
            print(f"{line}\n   {per_trial}")
    print("all bounds met" if failures == 0 else f"{failures} bounds missed")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
