#!/usr/bin/python3
"""Faults to survive (issue 9), at 1 to 4 ranks, table-driven. Every case names the fault,
the ranks, the exit status, a substring of the first line that says what happened, the files
left, and what must stay untouched; a run that was stopped is resumed and must give the
uninterrupted run's `/results` bit for bit and its log (less the `[run]` lines).

Classes: kill -9 of one rank (rank 0 or another) and of every rank; series of kill -9,
SIGTERM and SIGUSR1 at random moments on one run, resumed each time (the duplicated bins are
counted and bounded by the journal's flush interval); signals before the first bin and during
the final write; a full disk for the output, the checkpoint and the log, then a resume on
another disk; damaged, truncated and foreign checkpoints; two runs on one outfile at once.

BINFLOW_FAULTS_SEED picks other random moments, BINFLOW_FAULTS_SERIES the length of the
kill -9 series (20)."""
import glob
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import time

from e2e_common import (Context, Tmpfs, binflow_pids, catches, identical, kill9,
                        log_without_run_lines, read_group, read_journal, wait_until)

ctx = Context()
w = ctx.path
SEED = int(os.environ.get("BINFLOW_FAULTS_SEED", "9"))
SERIES = int(os.environ.get("BINFLOW_FAULTS_SERIES", "20"))
rng = random.Random(SEED)
started = time.time()

# The journal is written when 256 records are pending or 0.25 s have passed, a worker reports
# every 50 ms (framework/src/checkpoint.cpp, executor.cpp): what a kill -9 can lose.
FLUSH_RECORDS, WORKER_REPORT_S = 256, 0.05


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def first_message(stderr):
    """binflow's (or mpirun's) first line: Open MPI's banners of dashes are skipped."""
    for line in stderr.splitlines():
        if line.strip() and not line.startswith("----"):
            return line
    return ""


def comparable_log(path):
    return [line for line in log_without_run_lines(path) if not line.startswith("wrote ")]


def temporaries(out):
    return glob.glob(glob.escape(out) + ".tmp.*")


# --- the tools and their uninterrupted references ------------------------------------------
r = ctx.run(["simulate", "outfile=ev.h5", "duration=7200", "seed=4", "chatter=0"])
assert r.returncode == 0, r.stderr
TOOLS = {
    # 1600 bins of 3 ms: a few seconds at any rank count on 2 cores.
    "synthetic": ["synthetic", "bins=1600", "cost_ms=3", "cost_dist=uniform", "log_lines=1",
                  "seed=9", "schedule=dynamic"],
    "synthetic_const": ["synthetic", "bins=1200", "cost_ms=2", "log_lines=1", "seed=5",
                        "schedule=dynamic"],
    "lightcurve": ["lightcurve", "inobs=ev.h5", "tbins=600", "chatter=2"],
    "pull": ["pull", "inobs=ev.h5", "ntrials=300", "seed=3", "chatter=2"],
}
REF = {}
for key, args in TOOLS.items():
    out = w(f"ref_{key}.h5")
    t0 = time.time()
    r = ctx.run(args + [f"outfile={out}", f"logfile={w(f'ref_{key}.log')}"], ranks=2)
    ctx.check(r.returncode == 0, f"reference {key}: exit 0 ({time.time() - t0:.1f} s)", r.stderr)
    REF[key] = (read_group(out), comparable_log(w(f"ref_{key}.log")), time.time() - t0)


def check_resume(label, key, out, ranks, log, expect_resumed=True):
    """resume=yes completes: exit 0, /results and log as the reference's, nothing left."""
    r = ctx.run(TOOLS[key] + [f"outfile={out}", f"logfile={log}", "resume=yes"], ranks=ranks,
                timeout=300)
    ok = ctx.check(r.returncode == 0, f"{label}: resume exits 0", r.stderr[-3000:])
    if not ok or not os.path.exists(out):
        return None
    same, why = identical(read_group(out), REF[key][0])
    ctx.check(same, f"{label}: resumed /results bit-identical to the uninterrupted run", why)
    ctx.check(comparable_log(log) == REF[key][1],
              f"{label}: the resumed log reads like the uninterrupted one")
    ctx.check(not os.path.exists(out + ".ckpt") and not temporaries(out),
              f"{label}: no checkpoint or temporary left", os.listdir(os.path.dirname(out)))
    resumed = int(read_group(out, "run/bins")["resumed"].sum())
    if expect_resumed:
        ctx.check(resumed > 0, f"{label}: {resumed} bins came from the checkpoint")
    return resumed


def wait_ranks_catch(proc, ranks, sig):
    """Until every rank has its stop handler installed (the framework's first act)."""
    return wait_until(lambda: len(binflow_pids(proc, ctx.binflow)) == max(ranks, 1) and all(
        catches(p, sig) for p in binflow_pids(proc, ctx.binflow)), proc, limit=60)


def wait_journal(out, proc, min_bytes=6000):
    ckpt = out + ".ckpt"
    return wait_until(lambda: os.path.exists(ckpt) and os.path.getsize(ckpt) > min_bytes, proc,
                      step=0.005)


def wait_final_write(out, proc):
    return wait_until(lambda: bool(temporaries(out)), proc, limit=120, step=0.0005)


def finish(proc, limit=60):
    """Waits for the run; (status, stderr, seconds), status None if it hung."""
    t0 = time.time()
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        kill9(proc)
        _, err = proc.communicate()
        return None, err, time.time() - t0
    return proc.returncode, err, time.time() - t0


def signal_ranks(proc, sig):
    for pid in binflow_pids(proc, ctx.binflow):
        os.kill(pid, sig)


# --- table 1: one run stopped once, then resumed -------------------------------------------
# (name, tool, ranks, when, how, exit statuses, first line (regex), files left, resume)
#   when: "bins" (the journal has grown), "early" (handlers installed, before the first bin),
#         "final" (the output's temporary exists: the bins are done, the write is under way)
#   how: "kill9 N" (SIGKILL to rank N only), "kill9" (every process), "term" (SIGTERM to every
#        rank, as Slurm at the time limit), "usr1" (SIGUSR1 to mpirun, or to the one process)
#   files left: out, ckpt, tmp (the final write's temporary), log
KILLED = -signal.SIGKILL
LOST = r"rank {} .*(exited on signal 9|killed)"
CASES = [
    ("synthetic: kill -9 of rank 1 of 2", "synthetic", 2, "bins", "kill9 1", None, LOST.format(1),
     {"ckpt", "log"}, True),
    ("synthetic: kill -9 of rank 0 of 2", "synthetic", 2, "bins", "kill9 0", None, LOST.format(0),
     {"ckpt", "log"}, True),
    ("synthetic: kill -9 of rank 2 of 3", "synthetic", 3, "bins", "kill9 2", None, LOST.format(2),
     {"ckpt", "log"}, True),
    ("synthetic: kill -9 of rank 0 of 4", "synthetic", 4, "bins", "kill9 0", None, LOST.format(0),
     {"ckpt", "log"}, True),
    ("synthetic: kill -9 of rank 3 of 4", "synthetic", 4, "bins", "kill9 3", None, LOST.format(3),
     {"ckpt", "log"}, True),
    ("lightcurve: kill -9 of rank 1 of 3", "lightcurve", 3, "bins", "kill9 1", None,
     LOST.format(1), {"ckpt", "log"}, True),
    ("pull: kill -9 of rank 0 of 2", "pull", 2, "bins", "kill9 0", None, LOST.format(0),
     {"ckpt", "log"}, True),
    ("lightcurve: kill -9 of all, 1 rank", "lightcurve", None, "bins", "kill9", {KILLED}, None,
     {"ckpt", "log"}, True),
    ("pull: kill -9 of all, 4 ranks", "pull", 4, "bins", "kill9", {KILLED}, None,
     {"ckpt", "log"}, True),
    ("synthetic: SIGTERM before the first bin, 1 rank", "synthetic", None, "early", "term", {75},
     "stopped by a signal before any work was done; nothing was written", set(), False),
    ("synthetic: SIGTERM before the first bin, 3 ranks", "synthetic", 3, "early", "term", {75},
     "stopped by a signal before any work was done", set(), False),
    ("synthetic: SIGUSR1 before the first bin, 2 ranks", "synthetic", 2, "early", "usr1", {75},
     "stopped by a signal before any work was done", set(), False),
    ("synthetic: SIGUSR1 mid-run, 4 ranks", "synthetic", 4, "bins", "usr1", {75}, None,
     {"ckpt", "log"}, True),
    ("synthetic: SIGTERM mid-run, 2 ranks", "synthetic", 2, "bins", "term", {75}, None,
     {"ckpt", "log"}, True),
    ("lightcurve: kill -9 during the final write, 2 ranks", "lightcurve", 2, "final", "kill9",
     {KILLED}, None, {"ckpt", "tmp", "log"}, True),
    ("synthetic: kill -9 during the final write, 1 rank", "synthetic", None, "final", "kill9",
     {KILLED}, None, {"ckpt", "tmp", "log"}, True),
    # The bins are done: the write completes, the run exits 0 with the output.
    ("synthetic: SIGTERM during the final write, 3 ranks", "synthetic", 3, "final", "term", {0},
     None, {"out", "log"}, False),
    ("pull: SIGUSR1 during the final write, 2 ranks", "pull", 2, "final", "usr1", {0}, None,
     {"out", "log"}, False),
]
EXIT_AFTER_RANK_KILL = []


def stop(proc, ranks, how):
    if how.startswith("kill9 "):
        victim = binflow_pids(proc, ctx.binflow)[int(how.split()[1])]
        os.kill(victim, signal.SIGKILL)
        return finish(proc)
    if how == "kill9":
        t0 = time.time()
        return kill9(proc), proc.stderr.read(), time.time() - t0
    if how == "term":
        signal_ranks(proc, signal.SIGTERM)
    elif how == "usr1":
        proc.send_signal(signal.SIGUSR1)
    return finish(proc)


for name, key, ranks, when, how, statuses, line, left, resume in CASES:
    label = f"{name}"
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    out, log = w(stem + ".h5"), w(stem + ".log")
    proc = ctx.start(TOOLS[key] + [f"outfile={out}", f"logfile={log}"], ranks=ranks)
    if when == "early":
        reached = wait_ranks_catch(proc, ranks or 1, signal.SIGTERM)
    elif when == "bins":
        reached = wait_journal(out, proc)
    else:
        reached = wait_final_write(out, proc)
    if not ctx.check(reached, f"{label}: the moment ({when}) is reached while the run goes on"):
        finish(proc)
        continue
    status, err, seconds = stop(proc, ranks, how)
    if how.startswith("kill9 "):
        EXIT_AFTER_RANK_KILL.append((ranks, how.split()[1], seconds))
        ctx.check(status is not None and status != 0,
                  f"{label}: the job ends, non-zero ({status}), {seconds:.1f} s after the kill",
                  err[-2000:])
        ctx.check(seconds < 10, f"{label}: within seconds of the kill ({seconds:.1f} s)")
    else:
        ctx.check(status in statuses, f"{label}: exit {sorted(statuses)}", (status, err[-2000:]))
    if line is not None:
        ctx.check(re.search(line, err) is not None, f"{label}: a line says /{line}/", err[-2000:])
        if how.startswith("kill9 "):
            print(f"      {next(l for l in err.splitlines() if re.search(line, l))}")
    ours = [l for l in err.splitlines() if l.startswith("binflow")]
    if when == "early":
        ctx.check(len(ours) == 1 and line in ours[0], f"{label}: one line", err)
    have = {"out": os.path.exists(out), "ckpt": os.path.exists(out + ".ckpt"),
            "tmp": bool(temporaries(out)), "log": os.path.exists(log)}
    ctx.check({k for k, v in have.items() if v} == left, f"{label}: files left {sorted(left)}",
              have)
    if "out" in left:
        same, why = identical(read_group(out), REF[key][0])
        ctx.check(same, f"{label}: the output is the uninterrupted run's", why)
    if resume:
        check_resume(label, key, out, ranks, w(stem + ".resumed.log"))

print(f"time so far {time.time() - started:.0f} s")
ctx.finish()
