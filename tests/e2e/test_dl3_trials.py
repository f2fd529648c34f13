#!/usr/bin/python3
"""`binflow pull` and `binflow tsdist` on GADF DL3 data (docs/trials.md): the small Gammapy
fixture's four wobble runs (tests/e2e/gammapy_dl3_fixture.py) as `inobs`.

1. statistics: pulls of N0 and beta (and gamma with free_index) over 200 trials with mean
   within 3 / sqrt(n) of 0 and width within 1 +- 4 / sqrt(2 n) (3 and 4 sigma of a standard
   normal sample); tsdist's fraction of TS > 2.706 within 0.05 +- 0.015 sqrt(1000 / n) and
   half of the trials at TS = 0 (half chi^2 with one dof, the check of test_pull_tsdist.py);
2. the trials are the model of the observations: mean n_events the expected counts of the log,
   an index directory, a list of files and an obs_id selection give the same bits, tmin/tmax
   of the first run the same events and fits as obs_id of it;
3. /results bit-identical for 1-4 ranks and the static and dynamic schedules;
4. kill -9 mid-run, then --resume: /results identical to the uninterrupted run;
5. fail_trials fails only those trials; bad DL3 input (a truncated file, an obs_id that is not
   there, the source outside every field of view, a time range without livetime): exit 2, one
   line naming it, nothing written.
Without an importable gammapy (the fixture is made with it) the test is skipped (exit 77)."""
import gzip
import json
import math
import os
import re
import subprocess
import sys
import time

from e2e_common import (Context, identical, kill9, read_attributes, read_group, skip_without_gammapy,
                        wait_for_progress)

ctx = Context()
try:
    import numpy as np
    import gammapy  # noqa: F401  (the fixture script imports it; fail here with the reason)
except ImportError as err:
    skip_without_gammapy(err)

here = os.path.dirname(os.path.abspath(__file__))
dl3 = ctx.path("dl3")
BRIGHT_N0 = 3.5e-11
start = time.monotonic()

t = time.monotonic()
r = subprocess.run([sys.executable, os.path.join(here, "gammapy_dl3_fixture.py"), "--outdir", dl3, "--small",
                    "--seed", "1"], cwd=ctx.workdir, capture_output=True, text=True, timeout=300)
ctx.check(r.returncode == 0, f"fixture: exit 0 ({time.monotonic() - t:.1f} s)", r.stderr[-3000:])
files = sorted(f for f in os.listdir(dl3) if f.startswith("obs_"))
ids = [int(f[len("obs_"):].split(".")[0]) for f in files]


def run(tool, name, args, ranks=2, expect=0):
    out = ctx.path(name + ".h5")
    t0 = time.monotonic()
    r = ctx.run([tool, "--outfile", out, "--chatter", "2", *args], ranks=ranks)
    wall = time.monotonic() - t0
    ctx.check(r.returncode == expect, f"{name}: exit {expect} ({wall:.1f} s)", f"exit {r.returncode}\n{r.stderr[-3000:]}")
    return out, wall, r


def expected_counts(stdout):
    m = re.search(r"per trial ([0-9.]+) source \+ ([0-9.]+) background events expected", stdout)
    return (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)


# ---- 1. statistics -------------------------------------------------------------------------
def pull_bounds(name, out, columns):
    res, attrs = read_group(out), read_attributes(out)
    for col in columns:
        n = int(attrs[f"{col}_n"])
        mean, width = float(attrs[f"{col}_mean"]), float(attrs[f"{col}_width"])
        mb, wb = 3 / math.sqrt(n), 4 / math.sqrt(2 * n)
        v = res[col][res["status"] == "ok"]
        ctx.check(n == len(res["bin"]) and abs(mean) <= mb and abs(width - 1.0) <= wb
                  and math.isclose(mean, v.mean(), rel_tol=1e-9, abs_tol=1e-12),
                  f"{name} {col}: mean {mean:+.3f} within {mb:.3f}, width {width:.3f} within 1 +- {wb:.3f} "
                  f"({n} trials)")


NTRIALS = 200
timings = {}
out, timings["pull"], r = run("pull", "stat_pull", ["--inobs", dl3, "--ntrials", str(NTRIALS), "--seed", "201"])
pull_bounds("DL3, index fixed", out, ("pull_N0", "pull_beta"))
res = read_group(out)
source, background = expected_counts(r.stdout)
mean_events = res["n_events"].mean()
# Poisson: the mean of n trials is within 4 sigma of the expectation.
ctx.check(abs(mean_events - source - background) < 4 * math.sqrt((source + background) / NTRIALS),
          f"mean n_events {mean_events:.1f} = expected {source:.1f} + {background:.1f} of the log "
          f"(within 4 sigma)")
ctx.check(np.all(res["status"] == "ok") and np.all(res["fit_threads"] == 1),
          "pull on DL3: every trial ok, fitted on one thread")
ctx.check(np.array_equal(res["pull_N0"], (res["N0"] - BRIGHT_N0) / res["N0_err"]),
          "pull_N0 = (N0 - true N0) / N0_err")
ctx.check("events drawn in the region" in r.stdout and "4 of 4 observations" in r.stdout,
          "the log says the events are drawn in the region only, of the 4 observations")
fixed_reference = res

out, timings["pull free"], _ = run("pull", "stat_pull_free", ["--inobs", dl3, "--ntrials", str(NTRIALS), "--seed",
                                                              "202", "--free_index"])
pull_bounds("DL3, index free", out, ("pull_N0", "pull_gamma", "pull_beta"))

NTS = 1000
ts_args = ["--inobs", dl3, "--ntrials", str(NTS), "--seed", "203"]
ts_out, timings["tsdist"], r = run("tsdist", "stat_tsdist", ts_args)
res, attrs = read_group(ts_out), read_attributes(ts_out)
n = int(attrs["trials_ok"])
frac = float(attrs["ts_fraction_above_2.706"])
bound = 0.015 * math.sqrt(1000 / n)
ctx.check(n == NTS and abs(frac - 0.05) <= bound,
          f"tsdist on DL3: fraction of TS > 2.706 = {frac:.4f} +- {float(attrs['ts_fraction_above_2.706_err']):.4f}, "
          f"within 0.05 +- {bound:.4f} ({n} trials)")
at_zero = np.mean(res["ts"] == 0.0)
ctx.check(abs(at_zero - 0.5) <= 3 * math.sqrt(0.25 / n) and float(attrs["ts_fraction_above_25"]) == 0.0,
          f"tsdist on DL3: {at_zero:.3f} of the trials at TS = 0 (half), none above 25")
ctx.check(expected_counts(r.stdout)[0] == 0.0, "tsdist: no source counts expected (background only)")

# ---- 2. the kinds of input and the selections ------------------------------------------------
listing = ctx.path("runs.txt")
with open(listing, "w") as f:
    f.write("# the middle two runs\n" + "\n".join(os.path.join(dl3, x) for x in files[1:3]) + "\n")
selection = ",".join(str(i) for i in ids[1:3])
small = ["--ntrials", "8", "--seed", "5", "--free_index"]
by_list = read_group(run("pull", "kind_list", ["--inobs", listing, *small], ranks=None)[0])
by_id = read_group(run("pull", "kind_obs_id", ["--inobs", dl3, "--obs_id", selection, *small], ranks=None)[0])
same, why = identical(by_list, by_id)
ctx.check(same, f"pull: a list of two files and obs_id={selection} of the index give identical /results", why)
one_file = read_group(run("pull", "kind_file", ["--inobs", os.path.join(dl3, files[0]), *small], ranks=None)[0])
first_id = read_group(run("pull", "kind_first_id", ["--inobs", dl3, "--obs_id", str(ids[0]), *small], ranks=None)[0])
same, why = identical(one_file, first_id)
ctx.check(same, "pull: one DL3 file and its obs_id of the index give identical /results", why)
ctx.check(abs(one_file["n_events"].mean() / fixed_reference["n_events"].mean() - 0.25) < 0.05,
          f"one of four runs: a quarter of the events ({one_file['n_events'].mean():.0f} of "
          f"{fixed_reference['n_events'].mean():.0f})")

# tmin/tmax around the first run: the other runs have no livetime (empty parts, drawn after
# the first run's events), so the events and the fits are those of obs_id of the first run.
with open(os.path.join(dl3, "fixture.json")) as f:
    first_run = json.load(f)["observations"][0]
t_first = (first_run["tstart"], first_run["tstop"])
window = ["--tmin", repr(t_first[0] - 10.0), "--tmax", repr(t_first[1] + 10.0)]
by_time, _, r = run("pull", "time_first", ["--inobs", dl3, *window, *small], ranks=None)
by_time = read_group(by_time)
ctx.check("1 of 4 observations" in r.stdout, "tmin/tmax around the first run: 1 of 4 observations has livetime")
close = all(np.allclose(by_time[c], first_id[c], rtol=1e-9, atol=0) for c in ("N0", "N0_err", "beta", "gamma"))
ctx.check(np.array_equal(by_time["n_events"], first_id["n_events"]) and close,
          "tmin/tmax around the first run: the events of obs_id of it, fits equal to 1e-9")

# A source 2.8 deg north of the fixture's: the southern run (3.3 deg off axis, beyond the
# 3 deg offset axis) adds no source counts and is named in the log; the others still fit it.
edge, _, r = run("pull", "edge_of_view", ["--inobs", dl3, "--ra", "83.6331", "--dec", "24.85", "--ntrials", "4"],
                 ranks=None)
ctx.check(np.all(read_group(edge)["status"] == "ok") and
          re.search(r"OBS_ID 1003: the source, 3\.3\d* deg from the pointing, is outside its field of view",
                    r.stdout) is not None,
          "a source outside one run's field of view: the log names the run, the trials fit",
          r.stdout[:1500])

# ---- 3. ranks and schedules ------------------------------------------------------------------
for tool, extra in (("pull", ["--free_index"]), ("tsdist", [])):
    args = ["--inobs", dl3, "--ntrials", "12", "--seed", "21", *extra]
    ref = read_group(run(tool, f"{tool}_np1", args, ranks=None)[0])
    configs = [(r, s) for r in (2, 3, 4) for s in ("static", "dynamic")] if tool == "pull" else [(3, "dynamic")]
    for ranks, schedule in configs:
        out, _, _ = run(tool, f"{tool}_np{ranks}_{schedule}", [*args, "--schedule", schedule], ranks=ranks)
        same, why = identical(read_group(out), ref)
        ctx.check(same, f"{tool} on DL3 at {ranks} ranks, {schedule}: /results bit-identical to 1 rank", why)


# ---- 4. kill -9 mid-run, then resume -----------------------------------------------------------
killed = ctx.path("tsdist_killed.h5")
proc = ctx.start(["tsdist", *ts_args, "--outfile", killed, "--chatter", "0"], ranks=2)
progressed = wait_for_progress(killed + ".ckpt", proc)
kill9(proc)
ctx.check(progressed and not os.path.exists(killed) and os.path.exists(killed + ".ckpt"),
          "tsdist on DL3 killed with -9 mid-run: checkpoint kept, no output")
out, _, _ = run("tsdist", "tsdist_killed", [*ts_args, "--resume"])
same, why = identical(read_group(out), read_group(ts_out))
resumed = read_group(out, "run/bins")["resumed"]
ctx.check(same and 0 < resumed.sum() < NTS,
          f"resume: /results identical to the uninterrupted run ({resumed.sum()} of {NTS} trials from the "
          "checkpoint)", why)

# ---- 5. failures and bad input -------------------------------------------------------------------
out, _, _ = run("pull", "fail_trials", ["--inobs", dl3, "--ntrials", "6", "--fail_trials", "1,4"], expect=1)
res = read_group(out)
failed = [int(b) for b, s in zip(res["bin"], res["status"]) if s != "ok"]
ctx.check(failed == [1, 4] and all("fail_trials" in m for m in res["message"][[1, 4]]),
          "fail_trials=1,4 on DL3: exactly those trials failed, saying why", list(res["message"]))

truncated = ctx.path("truncated.fits")
with open(os.path.join(dl3, files[0]), "rb") as src:
    raw = gzip.decompress(src.read())
with open(truncated, "wb") as f:
    f.write(raw[: len(raw) // 3])
gap = ["--tmin", repr(t_first[1] + 10.0), "--tmax", repr(t_first[1] + 100.0)]  # between two runs
bad = {
    "a truncated DL3 file": (["--inobs", truncated], "truncated.fits"),
    "an obs_id that is not there": (["--inobs", dl3, "--obs_id", "999"], "999"),
    "the source outside every field of view": (["--inobs", dl3, "--ra", "90", "--dec", "22"], "field of view"),
    "a time range without livetime": (["--inobs", dl3, *gap], "no livetime"),
}
for what, (args, named) in bad.items():
    for tool, ranks in (("pull", 2), ("tsdist", None)):
        out = ctx.path("bad.h5")
        r = ctx.run([tool, "--ntrials", "4", "--outfile", out, *args], ranks=ranks)
        lines = [line for line in r.stderr.splitlines() if line.startswith("binflow")]
        ctx.check(r.returncode == 2 and len(lines) == 1 and named in lines[0] and not os.path.exists(out),
                  f"{tool} on {what}: exit 2, one line naming it, nothing written",
                  (r.returncode, r.stderr[-800:]))

print("wall per trial on 2 ranks (MPI start-up and the DL3 open included): " +
      ", ".join(f"{k} {1e3 * timings[k] / (NTS if k == 'tsdist' else NTRIALS):.1f} ms" for k in timings) +
      f"; whole test {time.monotonic() - start:.0f} s", flush=True)
ctx.finish()
