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

from e2e_common import (Context, CreationWatch, Tmpfs, binflow_pids, catches, identical, kill9,
                        log_without_run_lines, read_group, read_journal, wait_until)

ctx = Context()
w = ctx.path
SEED = int(os.environ.get("BINFLOW_FAULTS_SEED", "9"))
SERIES = int(os.environ.get("BINFLOW_FAULTS_SERIES", "20"))
ONLY = re.compile(os.environ.get("BINFLOW_FAULTS_ONLY", ""))  # cases whose name matches
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
    "synthetic": ["synthetic", "bins=800", "cost_ms=2", "cost_dist=uniform", "log_lines=1",
                  "seed=9", "schedule=dynamic"],
    "synthetic_const": ["synthetic", "bins=4000", "cost_ms=2", "log_lines=1", "seed=5",
                        "schedule=dynamic"],
    "synthetic_small": ["synthetic", "bins=400", "cost_ms=3", "log_lines=1", "seed=2"],
    "lightcurve": ["lightcurve", "inobs=ev.h5", "tbins=12000", "chatter=2"],
    "pull": ["pull", "inobs=ev.h5", "ntrials=240", "seed=3", "chatter=2"],
}
REF = {}
for key, args in TOOLS.items():
    out = w(f"ref_{key}.h5")
    t0 = time.time()
    r = ctx.run(args + [f"outfile={out}", f"logfile={w(f'ref_{key}.log')}"], ranks=2)
    ctx.check(r.returncode == 0, f"reference {key}: exit 0 ({time.time() - t0:.1f} s)", r.stderr)
    REF[key] = (read_group(out), comparable_log(w(f"ref_{key}.log")), time.time() - t0)


def start(args, ranks=None):
    return ctx.start(args, ranks=ranks, stdout=subprocess.DEVNULL)


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
    ("lightcurve: kill -9 during the final write, 2 ranks", "lightcurve", 2, "final", "kill9",
     {KILLED}, None, {"ckpt", "tmp", "log"}, True),
    ("lightcurve: kill -9 during the final write, 1 rank", "lightcurve", None, "final", "kill9",
     {KILLED}, None, {"ckpt", "tmp", "log"}, True),
    # The bins are done: the write completes, the run exits 0 with the output.
    ("synthetic: SIGTERM during the final write, 3 ranks", "synthetic", 3, "final", "term", {0},
     None, {"out", "log"}, False),
    ("pull: SIGUSR1 during the final write, 2 ranks", "pull", 2, "final", "usr1", {0}, None,
     {"out", "log"}, False),
]
EXIT_AFTER_RANK_KILL = []


def at_final_write(out, proc, watch, ranks):
    """Waits for the output's temporary (inotify) and stops rank 0 there (SIGSTOP); its pid if
    it is still writing (the temporary there, the output not yet renamed), None if missed."""
    if not wait_until(lambda: len(binflow_pids(proc, ctx.binflow)) == max(ranks or 1, 1), proc):
        return None
    root = binflow_pids(proc, ctx.binflow)[0]
    if watch.wait(os.path.basename(out) + ".tmp.", proc) is None:
        return None
    os.kill(root, signal.SIGSTOP)
    if temporaries(out) and not os.path.exists(out):
        return root
    os.kill(root, signal.SIGCONT)
    return None


def pending(pid, sig):
    """Whether `sig` waits for the stopped process `pid` (ShdPnd or SigPnd)."""
    with open(f"/proc/{pid}/status") as f:
        masks = [int(l.split()[1], 16) for l in f if l.startswith(("ShdPnd:", "SigPnd:"))]
    return any(m >> (sig - 1) & 1 for m in masks)


def stop(proc, how, stopped_root=None):
    if how.startswith("kill9 "):
        victim = binflow_pids(proc, ctx.binflow)[int(how.split()[1])]
        os.kill(victim, signal.SIGKILL)
        return finish(proc)
    if how == "kill9":
        t0 = time.time()
        return kill9(proc), proc.stderr.read(), time.time() - t0
    sig = signal.SIGTERM if how == "term" else signal.SIGUSR1
    if how == "term":
        signal_ranks(proc, sig)
    else:
        proc.send_signal(sig)  # mpirun forwards it to the ranks
    if stopped_root is not None:
        wait_until(lambda: pending(stopped_root, sig), proc, limit=10)
        os.kill(stopped_root, signal.SIGCONT)
    return finish(proc)


def run_case(name, key, ranks, when, how, statuses, line, left, resume):
    label = f"{name}"
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    out, log = w(stem + ".h5"), w(stem + ".log")
    watch = CreationWatch(os.path.dirname(out))
    proc = start(TOOLS[key] + [f"outfile={out}", f"logfile={log}"], ranks=ranks)
    root = None
    if when == "early":
        reached = wait_ranks_catch(proc, ranks or 1, signal.SIGTERM)
    elif when == "bins":
        reached = wait_journal(out, proc)
    else:
        root = at_final_write(out, proc, watch, ranks)
        reached = root is not None
        if not reached:  # missed by a few ms: the caller tries again
            finish(proc)
            watch.close()
            return False
    if not ctx.check(reached, f"{label}: the moment ({when}) is reached while the run goes on"):
        finish(proc)
        watch.close()
        return True
    status, err, seconds = stop(proc, how, root)
    watch.close()
    if how.startswith("kill9 "):
        EXIT_AFTER_RANK_KILL.append((ranks, int(how.split()[1]), seconds))
        ctx.check(status is not None and status != 0,
                  f"{label}: the job ends, non-zero ({status}), {seconds:.1f} s after the kill",
                  err[-2000:])
        ctx.check(seconds < 10, f"{label}: within seconds of the kill ({seconds:.1f} s)")
    else:
        ctx.check(status in statuses, f"{label}: exit {sorted(statuses)}", (status, err[-2000:]))
    if line is not None:
        ctx.check(re.search(line, err) is not None, f"{label}: a line says /{line}/", err[-2000:])
        if how.startswith("kill9 "):
            print(f"      {next((l for l in err.splitlines() if re.search(line, l)), '')}")
    ours = [l for l in err.splitlines() if l.startswith("binflow")]
    if when == "early":
        ctx.check(len(ours) == 1 and line in ours[0], f"{label}: one line", err)
    have = {"out": os.path.exists(out), "ckpt": os.path.exists(out + ".ckpt"),
            "tmp": bool(temporaries(out)), "log": os.path.exists(log)}
    ctx.check({k for k, v in have.items() if v} == left, f"{label}: files left {sorted(left)}",
              have)
    if "out" in left and have["out"]:
        same, why = identical(read_group(out), REF[key][0])
        ctx.check(same, f"{label}: the output is the uninterrupted run's", why)
    if resume:
        check_resume(label, key, out, ranks, w(stem + ".resumed.log"))
    return True


for case in CASES:
    if not ONLY.search(case[0]):
        continue
    t0 = time.time()
    for attempt in range(4):
        if run_case(*case):
            break
        print(f"      {case[0]}: the final write was over before the stop; again")
    else:
        ctx.check(False, f"{case[0]}: the final write is hit in 4 tries")
    print(f"      ({time.time() - t0:.1f} s)")

print(f"table 1 done at {time.time() - started:.0f} s")

# --- table 2: one run stopped again and again at random moments, resumed each time ---------
# (tool, ranks, stops, how). The moments are drawn from SEED: an early one (a random delay
# after the start, before or during MPI's start-up), or after a random share of the journal
# still to come; a kill -9 series ends with a kill during the final write.
SERIES_CASES = [
    ("synthetic_const", 2, SERIES, "kill9"),
    ("lightcurve", 3, 3, "kill9"),
    ("pull", 2, 2, "kill9"),
    ("synthetic", 1, 3, "term"),
    ("synthetic", 3, 3, "usr1"),
    ("synthetic", 4, 2, "term"),
]
BIN_LINE = re.compile(r"line 0 of bin (\d+):")
DUPLICATES = []


def bound_per_stop(ranks, cost_s):
    """Bins a kill can lose: up to 255 records pending on rank 0, and what every other rank
    completed since its last report (50 ms), plus the bin each rank has just finished."""
    return FLUSH_RECORDS - 1 + (ranks - 1) * (int(WORKER_REPORT_S / cost_s) + 1) + ranks


def run_series(key, ranks, stops, how):
    label = f"series {key}, {ranks} rank{'s' if ranks > 1 else ''}, {stops} x {how}"
    out = w(f"series_{key}_{ranks}_{how}.h5")
    ref_size = None
    journaled = set()
    lost = []
    kinds = []
    for i in range(stops):
        log = w(f"series_{key}_{ranks}_{how}.{i}.log")
        ckpt = out + ".ckpt"
        watch = CreationWatch(os.path.dirname(out))
        proc = start(TOOLS[key] + [f"outfile={out}", f"logfile={log}", "resume=yes"],
                         ranks=None if ranks == 1 else ranks)
        last = i == stops - 1
        root = None
        size = os.path.getsize(ckpt) if os.path.exists(ckpt) else 0
        if how == "kill9" and last:
            kind = "final write"
            root = at_final_write(out, proc, watch, None if ranks == 1 else ranks)
            if root is None:
                kind = "final write missed"
        elif rng.random() < 0.25:
            if how == "kill9":
                kind = "early"
                time.sleep(rng.uniform(0.0, 0.5))
            else:  # a signal before the handler is installed is the default action: wait for it
                kind = "early"
                wait_ranks_catch(proc, ranks, signal.SIGTERM)
                time.sleep(rng.uniform(0.0, 0.3))
        else:
            full = ref_size or 60000
            target = size + rng.uniform(0.1, 0.9) * max(0, full - size) / (stops - i)
            # The journal grows at its flushes: a kill at once would always find it fresh.
            extra = rng.uniform(0.0, 0.25)
            kind = f"journal at {int(target)} B + {extra:.2f} s"
            wait_until(lambda: os.path.exists(ckpt) and os.path.getsize(ckpt) >= target, proc,
                       limit=120, step=0.003)
            time.sleep(extra)
        kinds.append(kind)
        if proc.poll() is not None:
            status, err, _ = finish(proc)
        else:
            status, err, _ = stop(proc, how, root)
        watch.close()
        if (how == "usr1" and ranks > 1 and status == -signal.SIGUSR1 and os.path.exists(out)
                and not os.path.exists(ckpt)):
            # Open MPI 4.1's mpirun dies of a SIGUSR1 that reaches it after its job ended (its
            # handler is gone in its tear-down); the job had finished: checked as status 0.
            print(f"      {label}: stop {i + 1}: mpirun ended by the SIGUSR1 after its job finished")
            status = 0
        allowed = {KILLED, 0} if how == "kill9" else {75, 0}
        if not ctx.check(status in allowed, f"{label}: stop {i + 1} ({kind}): exit {status}",
                         err[-2000:]):
            return
        if status == 0:  # the run was over before the stop: it is the final one
            kinds[-1] += " (finished first)"
            same, why = identical(read_group(out), REF[key][0])
            # The kill before was after the journal's removal: nothing was left to resume.
            ctx.check(same and (not os.path.exists(log) or comparable_log(log) == REF[key][1]),
                      f"{label}: the run that finished gives the uninterrupted /results and log",
                      why)
            break
        if os.path.exists(ckpt):
            fingerprint, records, _, total = read_journal(ckpt)
            now = {p for _, p in records}
            ctx.check(journaled <= now, f"{label}: stop {i + 1}: the journal kept every earlier bin")
            if records:
                ref_size = max(ref_size or 0, int(total / len(records) * len(REF[key][0]["bin"])))
            logged = set()
            if key.startswith("synthetic") and os.path.exists(log):  # its log_lines
                with open(log, errors="replace") as f:
                    logged = {int(m.group(1)) for m in BIN_LINE.finditer(f.read())}
            lost.append(len(logged - now))
            journaled = now
        else:
            lost.append(0)
    resumed = None
    if status != 0:
        resumed = check_resume(f"{label}: final resume", key, out, None if ranks == 1 else ranks,
                               w(f"series_{key}_{ranks}_{how}.resumed.log"), expect_resumed=False)
    cost = 0.002 if key == "synthetic_const" else None
    DUPLICATES.append((label, kinds, lost, resumed))
    print(f"      {label}: moments {kinds}")
    print(f"      bins computed again after each stop (at least: logged but not journaled): {lost}")
    if cost is not None:
        bound = bound_per_stop(ranks, cost)
        ctx.check(max(lost, default=0) <= bound,
                  f"{label}: at most {bound} bins computed again per kill (measured at most "
                  f"{max(lost, default=0)}, {sum(lost)} in all)")
    if how == "kill9" and ranks == 2 and key == "synthetic_const":
        ctx.check(kinds[-1] == "final write", f"{label}: the last kill hit the final write",
                  kinds[-1])


for case in SERIES_CASES:
    t0 = time.time()
    run_series(*case)
    print(f"      ({time.time() - t0:.1f} s)")
print(f"table 2 done at {time.time() - started:.0f} s")

# --- table 3: a full disk for the output, the checkpoint, the log; then another disk --------
# (name, where the tmpfs holds: out (output and checkpoint) or log, free bytes, tool args,
#  first line, files left on the full disk)
#  The checkpoint's disk leaves room for its first writes (up to 256 records): a journal
#  that holds no bin is removed, and this one is to be moved and resumed.
DISK_CASES = [
    ("output on a full disk", "out", "64k", 30000, ["synthetic", "bins=20", "seed=1"],
     "H5Fclose failed", {"s.h5.ckpt", "pad"}),
    ("checkpoint on a full disk", "out", "512k", 150000,
     ["synthetic", "bins=2000", "log_lines=2", "seed=1"], "cannot write the checkpoint",
     {"s.h5.ckpt", "pad"}),
    ("log on a full disk", "log", "64k", 8000, ["synthetic", "bins=2000", "log_lines=2", "seed=1"],
     "cannot write the log file (No space left on device)", {"s.log", "pad"}),
]
for name, where, size, free, args, message, left in DISK_CASES:
    ref_out = w(f"disk_ref_{len(args)}_{args[1]}.h5")
    if not os.path.exists(ref_out):
        r = ctx.run(args + [f"outfile={ref_out}", f"logfile={ref_out}.log"], ranks=2)
        assert r.returncode == 0, r.stderr
    mount = w("full_" + where)
    with Tmpfs(mount, size) as fs:
        if not fs.mounted:
            print(f"skip '{name}': cannot mount a tmpfs ({fs.reason})")
            continue
        fs.fill(free)
        out = os.path.join(mount if where == "out" else w("."), "s.h5")
        log = os.path.join(mount if where == "log" else w("."), "s.log")
        r = ctx.run(args + [f"outfile={out}", f"logfile={log}"], ranks=2)
        ours = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
        ctx.check(r.returncode == 3, f"{name}: exit 3", (r.returncode, r.stderr[-2000:]))
        ctx.check(len(ours) == 1 and message in ours[0] and "No space left on device" in ours[0],
                  f"{name}: one line: {ours[0] if ours else ''}", r.stderr[-2000:])
        ctx.check(set(os.listdir(mount)) == left, f"{name}: left on the full disk {sorted(left)}",
                  os.listdir(mount))
        if where == "log":
            same, why = identical(read_group(out), read_group(ref_out))
            ctx.check(same and not os.path.exists(out + ".ckpt"),
                      f"{name}: the results are written all the same, no checkpoint left", why)
            r = ctx.run(args + [f"outfile={out}", "resume=yes"], ranks=2)
            ctx.check(r.returncode == 0 and "nothing to resume" in r.stdout,
                      f"{name}: resume=yes has nothing to do", (r.returncode, r.stderr))
            os.remove(out)
            continue
        # Another disk: the journal moves, the resume there finishes the run.
        bigger = w(f"bigger_{where}_{args[1]}")
        os.makedirs(bigger, exist_ok=True)
        shutil.copy2(os.path.join(mount, "s.h5.ckpt"), bigger)
    moved = os.path.join(bigger, "s.h5")
    r = ctx.run(args + [f"outfile={moved}", "resume=yes", f"logfile={moved}.log"], ranks=3)
    ctx.check(r.returncode == 0, f"{name}: resume=yes on another disk exits 0", r.stderr[-2000:])
    if r.returncode == 0:
        same, why = identical(read_group(moved), read_group(ref_out))
        ctx.check(same, f"{name}: resumed on another disk, /results identical", why)
        ctx.check(comparable_log(moved + ".log") == comparable_log(ref_out + ".log"),
                  f"{name}: and the same log")
        resumed = int(read_group(moved, "run/bins")["resumed"].sum())
        ctx.check(resumed > 0, f"{name}: {resumed} bins came from the moved checkpoint")
print(f"table 3 done at {time.time() - started:.0f} s")

# --- table 4: damaged, truncated and foreign checkpoints ------------------------------------
key = "synthetic_small"
base = w("journal.h5")
proc = start(TOOLS[key] + [f"outfile={base}"])
ctx.check(wait_journal(base, proc, 20000), "a journal to damage: the run goes on")
kill9(proc)
fingerprint, records, end, size = read_journal(base + ".ckpt")
ctx.check(fingerprint is not None and len(records) > 20, f"the journal holds {len(records)} bins")
journal = open(base + ".ckpt", "rb").read()
header_end = len(b"binflow-checkpoint 1\n") + 8 + len(fingerprint.encode())
middle = header_end + (end - header_end) // 2
r = ctx.run(["synthetic", "bins=10", f"outfile={w('other.h5')}"])
with open(w("random.bin"), "wb") as f:
    f.write(random.Random(1).randbytes(5000))
foreign_journal = w("foreign.h5")
proc = start(TOOLS[key][:-1] + ["seed=3", f"outfile={foreign_journal}"])
wait_journal(foreign_journal, proc, 2000)
kill9(proc)


def flipped(data, at):
    return data[:at] + bytes(b ^ 0xFF for b in data[at:at + 4]) + data[at + 4:]


NOT_OURS = "not a binflow checkpoint (clobber=yes replaces it"
# (name, journal bytes, extra args, status, first line (substring), journal untouched)
CKPT_CASES = [
    ("bytes flipped in the middle", flipped(journal, middle), ["resume=yes"], 0,
     "fails its checksum (a damaged file)", False),
    ("cut in the middle of a record", journal[:middle], ["resume=yes"], 0, None, False),
    ("cut after the last whole record", journal[:end], ["resume=yes"], 0, None, False),
    ("cut in the header", journal[:header_end - 5], ["resume=yes"], 2, NOT_OURS, True),
    ("empty (a run killed while starting)", b"", ["resume=yes"], 0, None, False),
    ("another seed's journal", open(foreign_journal + ".ckpt", "rb").read(), ["resume=yes"], 2,
     "written by a different configuration (checkpoint has 'seed=3', this run 'seed=2')", True),
    ("random bytes", open(w("random.bin"), "rb").read(), ["resume=yes"], 2, NOT_OURS, True),
    ("an HDF5 file renamed .ckpt", open(w("other.h5"), "rb").read(), ["resume=yes"], 2,
     NOT_OURS, True),
    ("a journal, without resume=yes", journal, [], 2,
     "holds the checkpoint of an interrupted run (resume=yes continues it", True),
]
for name, data, extra, status, line, untouched in CKPT_CASES:
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    out = w(f"ckpt_{stem}.h5")
    with open(out + ".ckpt", "wb") as f:
        f.write(data)
    before = digest(out + ".ckpt")
    mtime = os.stat(out + ".ckpt").st_mtime_ns
    r = ctx.run(TOOLS[key] + [f"outfile={out}", f"logfile={out}.log"] + extra, ranks=2)
    first = first_message(r.stderr)
    ctx.check(r.returncode == status, f"checkpoint {name}: exit {status}",
              (r.returncode, r.stderr[-2000:]))
    if line is None:
        ctx.check(not r.stderr.strip(), f"checkpoint {name}: silent", r.stderr)
    else:
        ctx.check(line in first, f"checkpoint {name}: the first line says '{line}'", first)
    if untouched:
        ctx.check(os.path.exists(out + ".ckpt") and digest(out + ".ckpt") == before and
                  os.stat(out + ".ckpt").st_mtime_ns == mtime and not os.path.exists(out) and
                  not os.path.exists(out + ".log"),
                  f"checkpoint {name}: the file is left untouched, nothing written")
    elif status == 0:
        same, why = identical(read_group(out), REF[key][0])
        ctx.check(same and comparable_log(out + ".log") == REF[key][1] and
                  not os.path.exists(out + ".ckpt"),
                  f"checkpoint {name}: the resume gives the uninterrupted /results and log", why)
print(f"table 4 done at {time.time() - started:.0f} s")

# --- table 5: two runs on one outfile at once -----------------------------------------------
# The first run is held (SIGSTOP) while the second ones try: a stopped process keeps its lock,
# and its journal must not change by a byte.
key = "synthetic"
out, log = w("busy.h5"), w("busy.log")
first_run = start(TOOLS[key] + [f"outfile={out}", f"logfile={log}"], ranks=2)
ctx.check(wait_journal(out, first_run, 2000), "two runs: the first one is under way")
first_pids = binflow_pids(first_run, ctx.binflow)
holder = first_pids[0]
for pid in [first_run.pid] + first_pids:
    os.kill(pid, signal.SIGSTOP)
time.sleep(0.3)  # its last write, if one was under way, is over
journal_digest = digest(out + ".ckpt")
log_size = os.path.getsize(log) if os.path.exists(log) else None
# (name, args of the second run, ranks)
for name, extra, ranks in (("plain", [], None), ("resume=yes", ["resume=yes"], 2),
                           ("clobber=yes", ["clobber=yes"], 3),
                           ("resume=yes clobber=yes", ["resume=yes", "clobber=yes"], None)):
    r = ctx.run(TOOLS[key] + [f"outfile={out}", f"logfile={log}"] + extra, ranks=ranks)
    ours = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
    ctx.check(r.returncode == 2 and len(ours) == 1 and
              f"another run is in progress on {out} (pid {holder} on host" in ours[0] and
              "interrupted" not in ours[0],
              f"a second run ({name}) while one runs: exit 2, one line saying a run is in progress",
              (r.returncode, r.stderr[-1000:]))
    ctx.check(digest(out + ".ckpt") == journal_digest and not os.path.exists(out) and
              (os.path.getsize(log) if os.path.exists(log) else None) == log_size,
              f"a second run ({name}): the first one's journal and log untouched, no output")
if ours:
    print(f"      {ours[0]}")
for pid in first_pids + [first_run.pid]:
    os.kill(pid, signal.SIGCONT)
status, err, _ = finish(first_run, 300)
ctx.check(status == 0, "two runs: the first one completes", err[-2000:])
same, why = identical(read_group(out), REF[key][0])
ctx.check(same and comparable_log(log) == REF[key][1],
          "two runs: the first one's results and log are those of a run alone", why)

# Started at the same instant: exactly one runs, the other is refused; never both, never a
# message about an interrupted run. Under load one launcher may start so late that the other
# run is over: then the late one (resume=yes) finds nothing to resume, which is right too, but
# most of the pairs must overlap.
key = "synthetic"
overlapped = 0
for i in range(5):
    out = w(f"race{i}.h5")
    procs = [ctx.start(TOOLS[key] + [f"outfile={out}", "chatter=1"] + (["resume=yes"] if j else []),
                       ranks=None if i % 2 else 2) for j in range(2)]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    statuses = sorted(code for _, code in results)
    texts = [o + e for (o, e), _ in results]
    raced = statuses == [0, 2] and any("another run is in progress" in t for t in texts)
    late = ((statuses == [0, 0] and "nothing to resume" in texts[1]) or
            (statuses == [0, 2] and results[0][1] == 2 and "exists (clobber=yes" in texts[0]))
    overlapped += raced
    ctx.check(raced or late, f"two runs started together ({i + 1}): one runs, the other is "
              f"refused as in progress{'' if raced else ' (or came after it: nothing to resume, or the output exists)'}",
              [(code, t[-500:]) for t, (_, code) in zip(texts, results)])
    same, why = identical(read_group(out), REF[key][0]) if os.path.exists(out) else (False, "")
    ctx.check(same and not os.path.exists(out + ".ckpt"),
              f"two runs started together ({i + 1}): the output is a run's alone", why)
ctx.check(overlapped >= 3, f"two runs started together: {overlapped} of 5 pairs overlapped")

print(f"table 5 done at {time.time() - started:.0f} s")
print("summary")
for ranks, victim, seconds in EXIT_AFTER_RANK_KILL:
    print(f"  kill -9 of rank {victim} of {ranks}: the job ended {seconds:.2f} s after")
for label, kinds, lost, resumed in DUPLICATES:
    print(f"  {label}: bins computed again {sum(lost)} (per stop {lost}); the final resume "
          f"took {resumed} from the journal")
print(f"  total {time.time() - started:.0f} s")
ctx.finish()
