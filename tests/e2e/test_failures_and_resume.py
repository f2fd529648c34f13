#!/usr/bin/python3
"""Failing bins do not stop the others; kill -9 and SIGTERM mid-run followed by
--resume give exactly the results of an uninterrupted run."""
import os
import signal
import subprocess

from e2e_common import (Context, descendants, identical, kill9, log_without_run_lines, read_group,
                        wait_for_progress)

ctx = Context()

# --- a failing bin ---------------------------------------------------------------
for ranks in (1, 3):
    out = ctx.path(f"fail{ranks}.h5")
    r = ctx.run(["synthetic", "--bins", "30", "--cost_ms", "0", "--fail_bins", "3,17",
                 "--outfile", out], ranks=ranks)
    ctx.check(r.returncode == 1, f"{ranks} ranks: failed bins give exit status 1", r.stderr)
    res = read_group(out)
    failed = [int(b) for b, s in zip(res["bin"], res["status"]) if s == "failed"]
    ctx.check(failed == [3, 17], f"{ranks} ranks: exactly bins 3 and 17 failed", failed)
    ctx.check(len(res["bin"]) == 30, f"{ranks} ranks: the other 28 bins completed")
    ctx.check("fails on purpose" in res["message"][3], "the message of the failed bin is kept")

r = ctx.run(["synthetic", "--bins", "200", "--cost_ms", "1", "--fail_bins", "1,2,3,4,5",
             "--max_failures", "2", "--outfile", ctx.path("maxfail.h5")], ranks=2)
ctx.check(r.returncode == 1, "max_failures: exit status 1")
res = read_group(ctx.path("maxfail.h5"))
ctx.check(len(res["bin"]) < 200, f"max_failures stops early ({len(res['bin'])} of 200 bins)")

# --- an exception outside any bin on one rank stops the whole job, no hang -----------
for ranks, victim in ((1, 0), (3, 2), (3, 0)):
    r = ctx.run(["synthetic", "--bins", "50", "--cost_ms", "1", "--abort_rank", str(victim),
                 "--outfile", ctx.path(f"abort{ranks}{victim}.h5")], ranks=ranks, timeout=60)
    ours = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
    ctx.check(r.returncode != 0, f"abort on rank {victim} of {ranks}: non-zero exit ({r.returncode})")
    ctx.check(len(ours) == 1 and "abort_rank" in ours[0],
              f"abort on rank {victim} of {ranks}: one line saying why", r.stderr)
    ctx.check(not os.path.exists(ctx.path(f"abort{ranks}{victim}.h5")), "no output written")

# --- interruption and resume ----------------------------------------------------
args = ["synthetic", "--bins", "240", "--cost_ms", "8", "--cost_dist", "uniform",
        "--log_lines", "1", "--seed", "9"]
reference = ctx.path("reference.h5")
r = ctx.run(args + ["--outfile", reference, "--logfile", ctx.path("reference.log")], ranks=2)
ctx.check(r.returncode == 0, "uninterrupted reference run", r.stderr)
ref = read_group(reference)


def comparable_log(path):
    return [line for line in log_without_run_lines(path) if not line.startswith("wrote ")]


def interrupted_then_resumed(name, ranks, stop):
    out = ctx.path(name + ".h5")
    proc = ctx.start(args + ["--outfile", out], ranks=ranks)
    progressed = wait_for_progress(out + ".ckpt", proc)
    ctx.check(progressed, f"{name}: checkpoint grows while the run goes on")
    code = stop(proc)
    ctx.check(not os.path.exists(out), f"{name}: no output under the final name after the stop")
    ctx.check(os.path.exists(out + ".ckpt"), f"{name}: checkpoint kept")
    r = ctx.run(args + ["--outfile", out, "--resume", "--logfile", ctx.path(name + ".log")], ranks=ranks)
    ctx.check(r.returncode == 0, f"{name}: resume exits 0", r.stderr[-2000:])
    same, why = identical(read_group(out), ref)
    ctx.check(same, f"{name}: resumed results identical to the uninterrupted run", why)
    resumed = read_group(out, "run/bins")["resumed"]
    ctx.check(0 < resumed.sum() < 240, f"{name}: {resumed.sum()} bins came from the checkpoint")
    ctx.check(comparable_log(ctx.path(name + ".log")) == comparable_log(ctx.path("reference.log")),
              f"{name}: the resumed run's log reads like the uninterrupted one")
    ctx.check(not os.path.exists(out + ".ckpt"), f"{name}: checkpoint removed at the end")
    return code


def is_binflow(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe") == ctx.binflow
    except OSError:
        return False


def sigterm_ranks(proc):
    # What Slurm does at the time limit: every task gets SIGTERM.
    ranks = [p for p in [proc.pid] + descendants(proc.pid) if is_binflow(p)]
    for pid in ranks:
        os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode


for ranks in (1, 2, 3):
    interrupted_then_resumed(f"kill9_np{ranks}", ranks, kill9)
    code = interrupted_then_resumed(f"sigterm_np{ranks}", ranks, sigterm_ranks)
    ctx.check(code == 75, f"sigterm_np{ranks}: exit status 75 (checkpointed, requeue)", code)

# Resuming a finished output is a no-op; a different configuration is refused.
r = ctx.run(args + ["--outfile", reference, "--resume"])
ctx.check(r.returncode == 0 and "nothing to resume" in r.stdout, "resume of a complete file is a no-op")
proc = ctx.start(args + ["--outfile", ctx.path("other.h5")])
wait_for_progress(ctx.path("other.h5.ckpt"), proc)
kill9(proc)
r = ctx.run(["synthetic", "--bins", "240", "--cost_ms", "8", "--seed", "10",
             "--outfile", ctx.path("other.h5"), "--resume"])
ctx.check(r.returncode == 2 and "different configuration" in r.stderr,
          "resume with other parameters is refused", r.stderr)
ctx.finish()
