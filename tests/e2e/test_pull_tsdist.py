#!/usr/bin/python3
"""`binflow pull` and `binflow tsdist` (issue 4): the command-line interface the checks use,
/results bit-identical for 1-4 ranks and every schedule, the summary attributes against the
table, a nested failure failing only its trial, bad input, one compute thread per rank with
3 ranks on 2 cores (sampled from /proc), and the statistical checks of SCIENCE.md section 6
on a few hundred trials with bounds widened for that count.

Statistical bounds for n trials. SCIENCE.md states them for >= 1000 trials; the statistical
error of each figure scales as 1/sqrt(n), so the same confidence at n trials needs the bound
widened by sqrt(1000 / n):
  pull mean:   |mean| <= 0.1 sqrt(1000 / n)        (0.1 is 3.2 sigma of the mean at n = 1000)
  pull width:  |width - 1| <= 0.1 sqrt(1000 / n)   (4.5 sigma of the width at n = 1000)
  TS fraction: |f(TS > 2.706) - 0.05| <= 0.015 sqrt(1000 / n)   (2.2 sigma at n = 1000)
  UL coverage: f(N0_ul >= N0) >= 0.95 - 0.02 sqrt(1000 / n)     (2.9 sigma at n = 1000)
The trials are seeded, so each figure is the same on every run and machine; bench/statistics.sh
runs the full 2000-trial versions.
"""
import math
import os
import time

import numpy as np

from e2e_common import Context, descendants, identical, read_attributes, read_group

ctx = Context()
BRIGHT_N0 = 3.5e-11


def run(tool, name, args, ranks=None, expect=0):
    out = ctx.path(name + ".h5")
    t0 = time.monotonic()
    r = ctx.run([tool, "--outfile", out, "--chatter", "1", *args], ranks=ranks)
    wall = time.monotonic() - t0
    ctx.check(r.returncode == expect, f"{name}: exit {expect}", f"exit {r.returncode}\n{r.stderr[-3000:]}")
    return out, wall, r


def scaled(bound, n):
    return bound * math.sqrt(1000.0 / n)


# --- The interface the checks use: nothing but ntrials and seed. ----------------------------
r = ctx.run(["pull", "--ntrials", "8", "--seed", "3"])
ctx.check(r.returncode == 0 and "pull_N0: mean" in r.stdout, "pull --ntrials 8 --seed 3 runs and summarises",
          r.stdout[-2000:] + r.stderr[-2000:])
r = ctx.run(["tsdist", "--ntrials", "8", "--seed", "3"])
ctx.check(r.returncode == 0 and "TS > 2.706" in r.stdout, "tsdist --ntrials 8 --seed 3 runs and summarises",
          r.stdout[-2000:] + r.stderr[-2000:])

out, _, _ = run("pull", "pull_fixed", ["--ntrials", "12", "--seed", "3"])
res = read_group(out)
ctx.check(len(res["bin"]) == 12, "pull: one row per trial")
ctx.check({"pull_N0", "pull_beta", "ts", "N0_ul", "ul_covers"} <= set(res) and "pull_gamma" not in res,
          "pull: columns pull_N0, pull_beta, ts, N0_ul, ul_covers; no pull_gamma with the index fixed",
          sorted(res))
ctx.check(np.all(res["status"] == "ok"), "pull: every trial ok", list(res["status"]))
# The default observation is one 30-minute run: about 3800 source + 3800 background events.
ctx.check(np.all((res["n_events"] > 7000) & (res["n_events"] < 8300)),
          "pull: 30-minute default observation (~7600 events in the region)", res["n_events"])
pull_n0 = (res["N0"] - BRIGHT_N0) / res["N0_err"]
ctx.check(np.array_equal(pull_n0, res["pull_N0"]), "pull_N0 = (N0 - true N0) / N0_err")
ctx.check(np.array_equal(res["ul_covers"], (res["N0_ul"] >= BRIGHT_N0).astype(res["ul_covers"].dtype)),
          "ul_covers = (N0_ul >= true N0)")
ctx.check(np.all(res["fit_threads"] == 1), "pull: every nested fit ran with one thread")

out, _, _ = run("tsdist", "tsdist_small", ["--ntrials", "12", "--seed", "3"])
res = read_group(out)
ctx.check(len(res["bin"]) == 12 and "ts" in res, "tsdist: one row per trial with ts")
ctx.check(np.all(res["ts"] >= 0.0) and np.all(res["N0"] >= 0.0), "tsdist: TS >= 0 and N0 >= 0")

# --duration sets the embedded observation's length; --inobs takes the response and GTIs of a
# file. A file simulated with the same default observation gives the same bits.
obs = ctx.path("obs3600.h5")
r = ctx.run(["simulate", "--duration", "3600", "--seed", "9", "--outfile", obs])
ctx.check(r.returncode == 0, "simulate a one-hour observation", r.stderr)
by_duration = read_group(run("pull", "pull_duration", ["--ntrials", "6", "--duration", "3600"])[0])
by_file = read_group(run("pull", "pull_inobs", ["--ntrials", "6", "--inobs", obs])[0])
ctx.check(np.all(by_duration["n_events"] > 14000), "--duration 3600: about twice the events",
          by_duration["n_events"])
same, why = identical(by_duration, by_file)
ctx.check(same, "--inobs of a default one-hour file = --duration 3600, bit for bit", why)
# tmin/tmax select what the nested fit takes of the simulated observation (the first of its
# two runs here); a range without livetime is bad input, checked before any trial.
first_run = read_group(run("pull", "pull_tmax", ["--ntrials", "6", "--inobs", obs, "--tmax", "1800"])[0])
ctx.check(np.all(first_run["status"] == "ok") and
          abs(first_run["n_events"].mean() / by_file["n_events"].mean() - 0.5) < 0.05,
          "--tmax 1800: the fit takes the first of the two runs (half the events)",
          (first_run["n_events"], by_file["n_events"]))
for where in (["--inobs", obs], []):
    r = ctx.run(["pull", "--ntrials", "2", *where, "--tmin", "1810", "--tmax", "1900",
                 "--outfile", ctx.path("gap.h5")])
    ctx.check(r.returncode == 2 and "no livetime" in r.stderr and not os.path.exists(ctx.path("gap.h5")),
              f"pull {' '.join(where) or '(embedded)'} with tmin/tmax in a gap: exit 2, no livetime",
              r.stderr[-500:])

# --- Summary attributes agree with the table. -------------------------------------------------
out, _, _ = run("pull", "pull_free", ["--ntrials", "30", "--free_index", "--seed", "4"])
res, attrs = read_group(out), read_attributes(out)
ctx.check("pull_gamma" in res and np.all(np.isfinite(res["pull_gamma"])), "free_index adds pull_gamma")
for col in ("pull_N0", "pull_beta", "pull_gamma"):
    v = res[col][res["status"] == "ok"]
    n = len(v)
    expect = {"mean": v.mean(), "width": v.std(ddof=1), "mean_err": v.std(ddof=1) / math.sqrt(n),
              "width_err": v.std(ddof=1) / math.sqrt(2 * (n - 1))}
    got = {k: float(attrs[f"{col}_{k}"]) for k in expect}
    ctx.check(all(math.isclose(got[k], expect[k], rel_tol=1e-9) for k in expect) and int(attrs[f"{col}_n"]) == n,
              f"{col}: attributes mean, width and their errors match the table", f"{got} vs {expect}")

# --- A nested failure fails only its trial. ---------------------------------------------------
# fail_trials hands the nested fit of those trials an invalid emin: the real fit tool refuses
# it (a UsageError inside the nested run), which must fail that trial and nothing else.
out, _, r = run("pull", "pull_failures", ["--ntrials", "8", "--fail_trials", "2,5"], ranks=2, expect=1)
res = read_group(out)
failed = [int(b) for b, s in zip(res["bin"], res["status"]) if s != "ok"]
ctx.check(failed == [2, 5], "nested fit failure: exactly trials 2 and 5 failed", list(res["status"]))
ctx.check(all("nested fit" in m and "emin" in m for m in res["message"][[2, 5]]),
          "the failed trials' messages name the nested tool and parameter", list(res["message"]))
ctx.check(read_attributes(out).get("trials_ok") == "6", "the summary counts the 6 good trials")

# --- Bad input: one line, exit 2, nothing written. ---------------------------------------------
for name, args in (("missing inobs", ["--inobs", ctx.path("missing.h5")]),
                   ("ntrials 0", ["--ntrials", "0"]),
                   ("emin above emax", ["--emin", "10", "--emax", "1"]),
                   ("fail_trials outside", ["--ntrials", "4", "--fail_trials", "7"])):
    for tool in ("pull", "tsdist"):
        if tool == "tsdist" and name.startswith("fail_trials"):
            continue
        bad = ctx.path("bad.h5")
        r = ctx.run([tool, "--outfile", bad, *args], ranks=2)
        lines = [l for l in r.stderr.splitlines() if l.startswith("binflow: error")]
        ctx.check(r.returncode == 2 and len(lines) == 1 and not os.path.exists(bad),
                  f"{tool} {name}: exit 2, one line, no output", f"exit {r.returncode}\n{r.stderr[-1500:]}")

# --- Determinism: bit-identical for 1-4 ranks and every schedule. -------------------------------
for tool, extra in (("pull", ["--free_index"]), ("tsdist", [])):
    args = ["--ntrials", "14", "--seed", "21", *extra]
    ref = read_group(run(tool, f"{tool}_ref", args)[0])
    for ranks in (2, 3, 4):
        for schedule in ("static", "cyclic", "dynamic"):
            out, _, _ = run(tool, f"{tool}_np{ranks}_{schedule}", [*args, "--schedule", schedule], ranks=ranks)
            same, why = identical(read_group(out), ref)
            ctx.check(same, f"{tool} at {ranks} ranks, {schedule}: /results bit-identical to 1 rank", why)


# --- 3 ranks on 2 cores: one compute thread per rank, sampled from /proc. ------------------------
def sample_ranks(proc, period=0.02):
    """Per rank process (pid): the most threads seen at once and the CPU ticks (utime +
    stime) of each thread by thread id, as last seen (a thread that ended keeps its last
    reading: rank 0's compute thread is joined before the output is written)."""
    most, ticks = {}, {}
    while proc.poll() is None:
        for pid in descendants(proc.pid):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "binflow":
                        continue
                tasks = os.listdir(f"/proc/{pid}/task")
                per_thread = ticks.setdefault(pid, {})
                for tid in tasks:
                    with open(f"/proc/{pid}/task/{tid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    per_thread[int(tid)] = int(fields[11]) + int(fields[12])
            except OSError:
                continue  # the rank or a thread ended meanwhile
            most[pid] = max(most.get(pid, 0), len(tasks))
        time.sleep(period)
    return most, ticks


out = ctx.path("pull_3ranks.h5")
# Enough trials that each rank's compute thread outworks rank 0's main thread (start-up and
# serving the other ranks, about 0.1 s) five times over: a trial costs about 5 ms of CPU
# (docs/benchmarks.md, "Monte Carlo statistics"; 240 trials sufficed at 14 ms).
proc = ctx.start(["pull", "--ntrials", "720", "--seed", "5", "--outfile", out, "--chatter", "1"], ranks=3)
most, ticks = sample_ranks(proc)
stdout, stderr = proc.communicate()
ctx.check(proc.returncode == 0, "pull on 3 ranks (2 cores): exit 0", stderr[-2000:])
ctx.check(len(most) == 3, "3 rank processes sampled", most)
# Baseline of an Open MPI 4.1 rank: its main thread plus the two threads MPI_Init starts
# (the PMIx client and OPAL event progress threads, asleep in epoll) = 3. Rank 0 of a
# dynamic schedule adds two: its bins run in a compute thread while the main thread serves
# the other ranks, and the progress line's thread sleeps until its interval (docs/framework.md,
# "Progress"). No rank may have more, and in each only one thread computes.
counts = sorted(most.values())
ctx.check(counts[-1] <= 5 and all(c <= 3 for c in counts[:-1]),
          "no rank has more than its 3 baseline threads (rank 0: plus the compute and progress "
          "threads)", most)
for pid, per_thread in ticks.items():
    busiest = max(per_thread.values())
    computing = [tid for tid, t in per_thread.items() if t > 0.2 * busiest]
    ctx.check(busiest >= 20 and len(computing) == 1,
              f"rank process {pid}: one thread did the work", per_thread)
res = read_group(out)
bins = read_group(out, "run/bins")
ctx.check(len(set(bins["rank"])) == 3, "all 3 ranks ran trials")
ctx.check(np.all(bins["threads"] == 1), "/run/bins: every trial ran with a budget of 1 thread")
ctx.check(np.all(res["fit_threads"] == 1), "every nested fit ran with 1 thread")

# --- Statistics (SCIENCE.md section 6) on a few hundred trials, 2 ranks. -------------------------
def pull_bounds(name, out, columns):
    res, attrs = read_group(out), read_attributes(out)
    for col in columns:
        n = int(attrs[f"{col}_n"])
        mean, width = float(attrs[f"{col}_mean"]), float(attrs[f"{col}_width"])
        mb, wb = scaled(0.1, n), scaled(0.1, n)
        ctx.check(n >= 0.99 * len(res["bin"]) and abs(mean) <= mb and abs(width - 1.0) <= wb,
                  f"{name} {col}: mean {mean:+.3f} +- {float(attrs[f'{col}_mean_err']):.3f} within {mb:.3f}, "
                  f"width {width:.3f} +- {float(attrs[f'{col}_width_err']):.3f} within 1 +- {wb:.3f} ({n} trials)")


def coverage_bound(name, out):
    res = read_group(out)
    ok = res["status"] == "ok"
    n = int(ok.sum())
    cov = float(read_attributes(out)["ul_coverage"])
    bound = 0.95 - scaled(0.02, n)
    ctx.check(n == len(res["bin"]) and cov >= bound,
              f"{name}: UL coverage {cov:.4f} >= {bound:.4f} ({n} trials)")


timings = {}
out, timings["pull"], _ = run("pull", "stat_pull", ["--ntrials", "400", "--seed", "101"], ranks=2)
pull_bounds("bright source, index fixed", out, ("pull_N0", "pull_beta"))
out, timings["pull free"], _ = run("pull", "stat_pull_free", ["--ntrials", "300", "--seed", "102", "--free_index"],
                                   ranks=2)
pull_bounds("bright source, index free", out, ("pull_N0", "pull_gamma", "pull_beta"))
# The index is refitted along the profile of the limit (SCIENCE.md section 3); held at its
# best value, the limits of the bright source covered only 0.855 +- 0.011 (1000 trials).
coverage_bound("bright source, index free", out)

out, timings["tsdist"], _ = run("tsdist", "stat_tsdist", ["--ntrials", "1000", "--seed", "103"], ranks=2)
res, attrs = read_group(out), read_attributes(out)
n = int(attrs["trials_ok"])
frac = float(attrs["ts_fraction_above_2.706"])
bound = scaled(0.015, n)
ctx.check(n == 1000 and abs(frac - 0.05) <= bound,
          f"tsdist: fraction of TS > 2.706 = {frac:.4f} +- {float(attrs['ts_fraction_above_2.706_err']):.4f}, "
          f"within 0.05 +- {bound:.4f} ({n} trials)")
ctx.check(math.isclose(float(attrs["ts_fraction_above_2.706_expected"]), 0.05, rel_tol=1e-3)
          and float(attrs["ts_fraction_above_25_expected"]) < 3e-7,
          "tsdist: half chi^2 expectations 0.05 and 2.9e-7 reported")
ctx.check(float(attrs["ts_fraction_above_25"]) == 0.0, "tsdist: no background trial reaches TS 25")
ctx.check(abs(np.mean(res["ts"] == 0.0) - 0.5) <= 3 * math.sqrt(0.25 / n),
          f"tsdist: half of the trials have TS = 0 (N0 on its bound): {np.mean(res['ts'] == 0.0):.3f}")

for percent in (5, 10):
    n0 = BRIGHT_N0 * percent / 100
    out, timings[f"UL {percent}%"], _ = run("pull", f"stat_ul{percent}",
                                            ["--ntrials", "400", "--seed", str(110 + percent), "--N0", repr(n0)],
                                            ranks=2)
    coverage_bound(f"{percent}% of the bright source", out)

trials = {"pull": 400, "pull free": 300, "tsdist": 1000, "UL 5%": 400, "UL 10%": 400}
print("wall per trial on 2 ranks (including MPI start-up): " +
      ", ".join(f"{k} {1e3 * timings[k] / trials[k]:.1f} ms" for k in trials), flush=True)

ctx.finish()
