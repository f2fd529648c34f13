#!/usr/bin/python3
"""Progress on rank 0: on a terminal (a tmux pane) a live bar whose count of completed bins
advances and that is gone when the run ends, leaving the log's summary; in batch mode a line
every `progress` seconds on stderr, each a whole line; none with progress=0 or chatter=0. The
log file is the same with or without either (apart from the [run] lines, which state timings)."""
import os
import re
import shlex
import shutil
import subprocess
import time

from e2e_common import Context

ctx = Context()
BINS = 30
# 30 bins of 0.1 s: 3 s on one rank, long enough for several redraws (every 0.2 s) and for
# 5 lines at progress=0.5; short, because the suite's time is tight.
job = ["synthetic", f"bins={BINS}", "cost_ms=100"]
BAR = re.compile(r"\[[#-]+\]\s+(\d+)/" + str(BINS) + r" bins")
LINE = re.compile(r"^binflow: progress synthetic:bins (\d+)/" + str(BINS) +
                  r" bins \((\d+)%\), (\d+) failed, [0-9.]+ s elapsed, ETA (\S+ s|\?)$")


def log_lines(name):
    """The log file without the lines that state timings, ranks or threads."""
    with open(ctx.path(name)) as f:
        return [line for line in f.read().splitlines() if "[run] " not in line]


def increasing(counts):
    return all(a < b for a, b in zip(counts, counts[1:]))


# ---- batch mode, and the reference log of a run without progress ----
reference = ctx.start(job + ["progress=0", "logfile=plain.log"], stdout=subprocess.PIPE)
quiet = ctx.start(job + ["chatter=0", "progress=0.5", "logfile=quiet.log"])
quiet_out, quiet_err = quiet.communicate(timeout=60)
ctx.check(quiet.returncode == 0 and "progress" not in quiet_err + quiet_out,
          "chatter=0: no progress line", quiet_err)
ref_out, ref_err = reference.communicate(timeout=60)
ctx.check(reference.returncode == 0 and "binflow: progress" not in ref_err,
          "progress=0 without a terminal: no progress line", ref_err)
plain = log_lines("plain.log")

r = ctx.run(job + ["progress=0.5", "logfile=batch.log"])
ctx.check(r.returncode == 0, "batch run with progress=0.5", r.stderr)
lines = [line for line in r.stderr.splitlines() if "progress" in line]
parsed = [LINE.match(line) for line in lines]
ctx.check(len(lines) >= 3 and all(parsed), "at least 3 progress lines, each a whole line",
          r.stderr)
done = [int(m.group(1)) for m in parsed if m]
# Non-decreasing: a loaded machine may finish no bin in one interval; over 3 s they grow.
ctx.check(len(done) >= 3 and done == sorted(done) and done[0] < done[-1] and
          all(0 <= d <= BINS for d in done), f"their completed bins advance ({done})", done)
ctx.check(all(int(m.group(2)) == int(m.group(1)) * 100 // BINS for m in parsed if m),
          "their percent is of completed bins", lines)
ctx.check("progress" not in r.stdout and "progress" not in ref_out,
          "stdout has no progress text", r.stdout[-2000:])
batch_log = log_lines("batch.log")
ctx.check(batch_log == plain and not any("progress" in line for line in batch_log),
          "the log file is the one of a run without progress", "\n".join(batch_log[-20:]))

# ---- a terminal: a tmux pane of 120 x 30 ----
socket = f"binflow_test_progress_{os.getpid()}"


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", socket, *args], env=ctx.env, capture_output=True,
                          text=True, check=check, timeout=30)


def watch_on_terminal(name, command, pattern):
    """Runs `command` in a fresh tmux pane; the counts of completed bins that `pattern` finds
    on the screen while it runs (each change once) and the final screen."""
    shell = f"cd {shlex.quote(ctx.workdir)} && {shlex.join(command)}; echo EXIT=$?; sleep 60"
    tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "30", shell)
    counts, screen, start = [], "", time.time()
    while time.time() - start < 60:
        screen = tmux("capture-pane", "-p", "-t", name).stdout
        if "EXIT=" in screen:
            break
        # The bar is one line redrawn; progress lines stay on the screen as it scrolls.
        seen = [int(m.group(1)) for m in map(pattern.search, screen.splitlines()) if m]
        if pattern is BAR:
            counts += [n for n in seen[-1:] if not counts or counts[-1] != n]
        else:
            counts += [n for n in seen if n not in counts]
        time.sleep(0.05)
    tmux("kill-session", "-t", name, check=False)
    return counts, screen


def final_screen_ends_with_summary(label, screen):
    # Without progress lines: mpirun forwards stderr apart from stdout, so a line written
    # just before the summary may be shown just after it.
    last = [line for line in screen.splitlines() if line.strip() and not LINE.match(line)]
    ctx.check(len(last) >= 2 and "parallel efficiency" in last[-2] and last[-1] == "EXIT=0",
              f"{label}: the final screen ends with the log's summary and exit 0", screen)


if not shutil.which("tmux"):
    ctx.check(False, "tmux is installed (scripts/setup.sh installs it)")
    ctx.finish()
try:
    counts, screen = watch_on_terminal("one", ctx.command(job + ["logfile=tty.log"]), BAR)
    ctx.check(len(set(counts)) >= 2 and increasing(counts),
              f"terminal: the bar's completed bins advance ({len(counts)} counts seen)", counts)
    final_screen_ends_with_summary("terminal", screen)
    ctx.check(not BAR.search(screen), "terminal: no bar is left on the screen", screen)
    ctx.check(log_lines("tty.log") == plain,
              "terminal: the log file is the one of a run without a terminal",
              "\n".join(log_lines("tty.log")[-20:]))

    # Open MPI hands a rank's stderr to mpirun through a pipe (stdout through a pty), so rank 0
    # sees no terminal and prints lines, which mpirun copies to its own terminal.
    counts, screen = watch_on_terminal(
        "two", ctx.command(job + ["logfile=mpi.log", "progress=0.3"], ranks=2), LINE)
    ctx.check(len(counts) >= 2 and increasing(counts),
              f"mpirun -n 2 on a terminal: progress lines with advancing completed bins "
              f"({counts})", screen)
    final_screen_ends_with_summary("mpirun -n 2 on a terminal", screen)
    ctx.check(all(LINE.fullmatch(line.rstrip()) for line in screen.splitlines()
                  if "progress" in line),
              "mpirun -n 2 on a terminal: each progress line is a whole line", screen)
    ctx.check(log_lines("mpi.log") == plain,
              "mpirun -n 2: the log file is the one of a 1-rank run without progress",
              "\n".join(log_lines("mpi.log")[-20:]))
finally:
    tmux("kill-server", check=False)

ctx.finish()
