#!/usr/bin/python3
"""How far rank 0 carries: its main thread's CPU time per result it receives and per
scheduling message it answers under the dynamic schedule, and the rank count at which it
would be busy all the time for bins of 1, 10 and 100 ms (docs/cluster.md, "Scale beyond
these three nodes").

Rank 0's main thread (the process's first thread; its bins run in a thread of their own)
does all of rank 0's MPI: it answers chunk requests and accepts the results and log blocks
that ride on them. Its on-CPU time is read from /proc/PID/task/PID/schedstat (ns) every
10 ms while `binflow synthetic` runs, and the rate in steady state (bins only, no start-up
or final write) is set against the rates of results and chunks that the
run's /run/bins records for the other ranks. Three workloads per rank count:
  100 ms  a few messages a second: what is left is the polling of an idle main thread;
  0 ms    chunks of thousands of bins: nearly all is per-result work, counted over the whole
          run at 15 000 and 150 000 bins (the difference cancels start-up and fixed costs);
  10 ms   a chunk is one bin (the dispatcher's ~10 ms target): one request per result.
    /usr/bin/python3 bench/rank0_capacity.py --binflow build/bin/binflow [--ranks 2,3,4,6] [--repeat 3]
        [--mpirun 'scripts/cluster-local.sh run node1 mpirun --hostfile DIR/hostfile']
On two cores the ranks share the cores; CPU time, not wall time, is what is compared."""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

from bench_common import mpi_environment

CHUNK_TARGET_S = 10e-3  # framework/src/executor.cpp, chunk_target_seconds
REPORT_S = 0.05  # framework/src/executor.cpp, report_interval_seconds


def rank0_pid(mpirun_pid, binflow):
    """The binflow process with OMPI_COMM_WORLD_RANK=0 below mpirun, or None."""
    todo, seen = [mpirun_pid], []
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except OSError:
                pass
    while todo:
        for child in children.get(todo.pop(), []):
            seen.append(child)
            todo.append(child)
    for pid in seen:
        try:
            if os.readlink(f"/proc/{pid}/exe") != os.path.realpath(binflow):
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"OMPI_COMM_WORLD_RANK=0\0" in f.read():
                    return pid
        except OSError:
            pass
    return None


def main_thread_ns(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return None


MPIRUN = ["mpirun"]


def run(binflow, ranks, args, workdir):
    """Runs synthetic under mpirun while sampling rank 0's main thread. Returns the
    samples [(monotonic s, on-CPU ns)] and the output's /run/bins."""
    out = os.path.join(workdir, "out.h5")
    command = [*MPIRUN, "-n", str(ranks), "--bind-to", "none", binflow, "synthetic", *args,
               "--schedule", "dynamic",
               "--nthreads", "1", "--outfile", out, "--clobber", "--chatter", "1"]
    proc = subprocess.Popen(command, env=mpi_environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    pid, samples = None, []
    while proc.poll() is None:
        pid = pid or rank0_pid(proc.pid, binflow)
        ns = main_thread_ns(pid) if pid else None
        if ns is not None:
            samples.append((time.monotonic(), ns))
        time.sleep(0.01)
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)}: exit {proc.returncode}: {err[-2000:]}")
    with h5py.File(out, "r") as f:
        bins = {k: f["run/bins"][k][()] for k in ("bin", "rank", "start", "end")}
    return samples, bins


def chunk_count(bins):
    """Chunks the ranks > 0 ran: runs of consecutive plan indices on one rank, in the order
    it ran them (two chunks in a row that happen to be adjacent count as one)."""
    chunks = 0
    for r in np.unique(bins["rank"][bins["rank"] != 0]):
        mine = bins["rank"] == r
        order = bins["bin"][mine][np.argsort(bins["start"][mine])]
        chunks += 1 + int(np.count_nonzero(np.diff(order) != 1))
    return chunks


def steady_rates(samples, bins):
    """(main-thread CPU fraction, results/s, chunks/s from ranks > 0) in steady state: from
    80 % to 20 % of the bins' span before the process ended. Start-up (MPI over TCP takes
    about a second) comes before the bins; what follows them (the final write of a few
    hundred rows, MPI_Finalize) is short against a fifth of the span."""
    t = np.array([s[0] for s in samples])
    ns = np.array([s[1] for s in samples], dtype=float)
    span = bins["end"].max() - bins["start"].min()
    a = np.searchsorted(t, t[-1] - 0.8 * span)
    b = np.searchsorted(t, t[-1] - 0.2 * span)
    if span < 0.5 * (t[-1] - t[0]):
        print(f"      warning: bins ran {span:.2f} s of the process's {t[-1] - t[0]:.2f} s")
    cpu = (ns[b] - ns[a]) * 1e-9 / (t[b] - t[a])
    return cpu, np.count_nonzero(bins["rank"] != 0) / span, chunk_count(bins) / span


def life(samples, bins):
    """(main-thread CPU s over the whole run, seconds, results from ranks > 0)."""
    return ((samples[-1][1] - samples[0][1]) * 1e-9, samples[-1][0] - samples[0][0],
            int(np.count_nonzero(bins["rank"] != 0)))


def measure(binflow, ranks, workdir, repeat):
    """(us per result, us per chunk message, idle CPU fraction) at `ranks` ranks; the idle
    and 10 ms runs `repeat` times each, in turn, their medians taken (the idle polling
    varies by a few tenths of a percent of a core from run to run)."""
    common = ["--draws", "16", "--log_lines", "1"]
    # Per result: cheap bins, the whole run (rank 0 accepts most results after the bins ran,
    # and writes them at the end), 10x the bins against 1x: fixed costs cancel.
    small = life(*run(binflow, ranks, ["--bins", "15000", "--cost_ms", "0", *common], workdir))
    large = life(*run(binflow, ranks, ["--bins", "150000", "--cost_ms", "0", *common], workdir))
    idle, busy = [], []
    for _ in range(repeat):
        # Idle: 100 ms bins, a few messages a second; what is left is polling while waiting.
        idle.append(steady_rates(*run(binflow, ranks, ["--bins", str(24 * ranks), "--cost_ms",
                                                       "100", *common], workdir))[0])
        # Per message: 10 ms bins, one request per bin, in steady state.
        busy.append(steady_rates(*run(binflow, ranks, ["--bins", str(200 * ranks + 300),
                                                       "--cost_ms", "10", *common], workdir)))
    idle_cpu = statistics.median(idle)
    c_result = (large[0] - small[0] - idle_cpu * (large[1] - small[1])) / (large[2] - small[2])
    c_message = statistics.median((cpu - idle_cpu - res * c_result) / msg for cpu, res, msg in busy)
    cpu = statistics.median(b[0] for b in busy)
    msg = statistics.median(b[2] for b in busy)
    print(f"{ranks:>5} {100 * idle_cpu:>9.2f} % {1e6 * c_result:>13.2f} "
          f"{100 * cpu:>12.2f} % {msg:>9.0f} {1e6 * c_message:>12.1f}", flush=True)
    return c_result, c_message, idle_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binflow", required=True)
    parser.add_argument("--ranks", default="2,3,4,6")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mpirun", default="mpirun",
                        help="the launcher, e.g. 'scripts/cluster-local.sh run node1 mpirun "
                        "--hostfile DIR/hostfile' for the three-node test cluster (rank 0 on "
                        "node1, the others over TCP)")
    a = parser.parse_args()
    MPIRUN[:] = shlex.split(a.mpirun)
    binflow = os.path.abspath(a.binflow)
    print(f"{'ranks':>5} {'idle CPU':>11} {'us/result':>13} {'10 ms: CPU':>14} {'chunks/s':>9} "
          f"{'us/message':>12}")
    found = []
    with tempfile.TemporaryDirectory() as workdir:
        for ranks in [int(x) for x in a.ranks.split(",")]:
            found.append(measure(binflow, ranks, workdir, a.repeat))
    c_result = statistics.median(f[0] for f in found)
    c_message = statistics.median(f[1] for f in found)
    # Subtracting the idle polling can leave a small or negative rest: noise, not a cost.
    least = min((f[1] for f in found if f[1] > 0), default=c_message)
    print(f"\nmedian: {1e6 * c_result:.2f} us per received result, {1e6 * c_message:.1f} us per "
          f"scheduling message (request answered with a chunk; least {1e6 * least:.1f} us)")
    # Most of a message's cost is the polling that follows it (the main thread sleeps 10 us,
    # then 20, ... 500 us between polls once idle); a saturated rank 0 never sleeps, so the
    # least measured cost is nearer to its cost there, the median the cautious figure.
    print("ranks that keep rank 0's main thread busy all the time (median message cost; least):")
    for bin_ms in (1, 10, 100):
        b = bin_ms * 1e-3
        k = max(1, int(np.ceil(CHUNK_TARGET_S / b)))
        # dynamic: a request per chunk of k bins; static: a report per REPORT_S (a batch of
        # the bins done by then), or per bin when bins take longer.
        dynamic = [c_result + c / k for c in (c_message, least)]
        static = [c_result + c * min(1.0, b / REPORT_S) for c in (c_message, least)]
        print(f"  {bin_ms:>3} ms bins: dynamic ({k:>2} per chunk) {1 / dynamic[0]:>9,.0f} bins/s, "
              f"{b / dynamic[0]:>7,.0f} ranks ({b / dynamic[1]:,.0f}); static "
              f"{b / static[0]:>7,.0f} ranks ({b / static[1]:,.0f}); results alone "
              f"{b / c_result:,.0f}")


if __name__ == "__main__":
    main()
