"""Threaded BLAS inside bins (the ObsPy and CaImAn hang): build examples/detrend_tool.cpp out
of tree against the installed binflow and OpenBLAS (the pthread build), run it on 1, 2, 3 and
4 ranks, and count from /proc/<pid>/task/*/stat (utime + stime of every thread, not run
states) the threads of each rank that did work: never more than the rank's thread budget.

Controls, so that the count can fail: the same run on 4 ranks with binflow's cap defeated
(LD_PRELOAD of a no-op openblas_set_num_threads, so OpenBLAS keeps its start-up count of one
thread per CPU) must show more busy threads than the budget on some rank, and the 1-rank run
with a budget of 2 must show OpenBLAS's worker busy. The fit is checked against the injected
trends, and a bin's results are bit-identical between runs wherever it ran with the same
budget (threaded OpenBLAS changes the last bits with the thread count; see examples/README.md).
"""
import ctypes.util
import os
import subprocess
import sys
import time

import h5py
import numpy as np

from e2e_common import Context, build_step, descendants, kill9, read_attributes, read_group

ctx = Context()
if ctypes.util.find_library("openblas") is None:
    print("skip: no OpenBLAS found (libopenblas.so.0); install libopenblas-pthread-dev "
          "(scripts/setup.sh does)")
    sys.exit(77)

# Launch settings of the host that would change the budgets or OpenBLAS's own start-up count;
# OPENBLAS_NUM_THREADS=1 in particular would leave the control with nothing to show.
for name in list(ctx.env):
    if (name.startswith(("OMP_", "OPENBLAS_", "GOTO_", "MKL_", "BLIS_", "SLURM_", "SRUN_", "PBS_"))
            or name in ("NCPUS", "LD_PRELOAD", "OMPI_MCA_hwloc_base_binding_policy",
                        "OMPI_MCA_rmaps_base_mapping_policy")):
        del ctx.env[name]

build = os.path.dirname(os.path.dirname(ctx.binflow))
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
prefix = ctx.path("prefix")
example_build = ctx.path("example-build")

# A thread did work if its CPU time over the run is at least this share of its rank's busiest
# thread. Measured on 2 cores with other jobs running: an OpenBLAS worker kept idle by the
# cap 0-4 %, the worker of an uncapped OpenBLAS at 4 ranks 18-46 %, the worker of a 2-thread
# budget 50-85 %. 2026-12-02, fresh-clone CI: a capped worker of the last of 4 ranks on 2
# cores at 10.4 % once (0.07 of 0.67 s), and uncapped ones at 16-28 %: 12 % keeps both apart.
BUSY_SHARE = 0.12
# 96 batches: about 1 s of CPU per rank at 4 ranks, so that the start-up of OpenBLAS's
# workers (a few 10 ms of spinning) stays below BUSY_SHARE.
BATCHES = 96
RUN_LIMIT = 60.0  # s: a hang fails the run; the runs take a few seconds
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def thread_times(pid):
    """CPU seconds (utime + stime) of every thread of `pid`, by thread id."""
    times = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return times
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[int(tid)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    return times


def rank_of(pid, exe, plain):
    """The MPI rank of `pid` if it is a rank of the tool (exe, and under mpirun the rank in
    its environment), else None."""
    try:
        if os.path.realpath(f"/proc/{pid}/exe") != exe:
            return None
        if plain:
            return 0
        with open(f"/proc/{pid}/environ", "rb") as f:
            for entry in f.read().split(b"\0"):
                if entry.startswith(b"OMPI_COMM_WORLD_RANK="):
                    return int(entry.split(b"=", 1)[1])
    except (OSError, ValueError):
        pass
    return None


class Run:
    """One run of the tool, the CPU time of every thread of every rank sampled while it ran."""

    def __init__(self, label, args, ranks, env=None):
        self.label = label
        self.outfile = ctx.path(args[args.index("--outfile") + 1])
        full_env = dict(ctx.env, **(env or {}))
        exe = os.path.realpath(ctx.binflow)
        log = ctx.path(label.replace(" ", "_").replace("=", "-") + ".log")
        self.pid_of_rank = {}
        self.times = {}  # rank -> {tid: cpu seconds}, the largest (latest) value seen
        start = time.monotonic()
        with open(log, "w") as out:
            proc = subprocess.Popen(ctx.command(args, ranks), env=full_env, cwd=ctx.workdir,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self.timed_out = False
            while proc.poll() is None:
                if time.monotonic() - start > RUN_LIMIT:
                    self.timed_out = True
                    kill9(proc)
                    break
                if len(self.pid_of_rank) < (ranks or 1):
                    for pid in [proc.pid] if ranks is None else descendants(proc.pid):
                        rank = rank_of(pid, exe, ranks is None)
                        if rank is not None:
                            self.pid_of_rank.setdefault(rank, pid)
                for rank, pid in self.pid_of_rank.items():
                    self.times.setdefault(rank, {}).update(thread_times(pid))
                time.sleep(0.02)
        self.wall = time.monotonic() - start
        self.returncode = proc.returncode
        with open(log) as f:
            self.output = f.read()

    def ok(self):
        return ctx.check(not self.timed_out and self.returncode == 0,
                         f"{self.label}: exits 0 within {RUN_LIMIT:.0f} s (took {self.wall:.1f} s)",
                         self.output[-3000:])

    def budgets(self):
        """Thread budget of every rank, from /run/bins of the output."""
        with h5py.File(self.outfile, "r") as f:
            ranks, threads = f["run/bins/rank"][()], f["run/bins/threads"][()]
        return {int(r): int(t) for r, t in zip(ranks, threads)}

    def bin_budgets(self):
        """Thread budget each bin ran with, by bin index."""
        with h5py.File(self.outfile, "r") as f:
            bins, threads = f["run/bins/bin"][()], f["run/bins/threads"][()]
        return {int(b): int(t) for b, t in zip(bins, threads)}

    def busy(self, rank):
        """(busy threads, CPU seconds of every thread, the service thread's CPU or None).
        Rank 0's main thread in a run of several ranks is binflow's MPI service thread
        (framework/src/executor.cpp, RootLoop: it sleeps while idle; the bins run in a
        compute thread); it is not a compute thread and is reported apart."""
        times = dict(self.times.get(rank, {}))
        service = None
        if rank == 0 and len(self.pid_of_rank) > 1:
            service = times.pop(self.pid_of_rank[0], 0.0)
        busiest = max(times.values(), default=0.0)
        busy = [t for t in times.values() if t > 0 and t >= BUSY_SHARE * busiest]
        return len(busy), sorted(times.values(), reverse=True), service

    def report(self, budgets):
        lines = []
        for rank in sorted(self.pid_of_rank):
            count, cpu, service = self.busy(rank)
            extra = "" if service is None else f", service thread {service:.2f} s"
            lines.append(f"rank {rank}: budget {budgets.get(rank)}, {count} busy of {len(cpu)} "
                         f"threads, cpu {' '.join(f'{c:.2f}' for c in cpu)} s{extra}")
        print("      " + "\n      ".join(lines), flush=True)


def detrend(outfile, *extra):
    return ["detrend", "--batches", str(BATCHES), "--outfile", outfile, "--clobber", *extra]


def expected(attributes):
    """The fit's statistics for white noise of rms sigma, from the parameters alone."""
    n, order = int(attributes["samples"]), int(attributes["order"])
    rate, sigma = float(attributes["sampling_rate"]), float(attributes["noise_rms"])
    snr, peak = float(attributes["snr"]), float(attributes["wavelet_peak"])
    p = order + 1
    tau = 2.0 * np.arange(n) / (n - 1) - 1.0
    design = np.vander(tau, p, increasing=True)
    covariance = np.linalg.inv(design.T @ design)  # of the coefficients, in sigma^2
    duration = (n - 1) / rate
    # Energy of the arrival, sum over samples of (snr sigma ricker)^2 = (3/4) sqrt(pi / 2a).
    a = (np.pi * peak) ** 2
    arrival = (snr * sigma) ** 2 * 0.75 * np.sqrt(np.pi / (2 * a)) * rate
    return {
        "slope_error_rms": sigma * np.sqrt(covariance[1, 1]) * 2.0 / duration,
        "trend_error_rms": sigma * np.sqrt(p / n),
        "residual_rms": np.sqrt(sigma ** 2 * (n - p) / n + arrival / n),
        "correlation_rms": 1.0 / np.sqrt(n - p),
        "sample": 1.0 / rate,
    }


def check_fit(table, attributes):
    """Recovered trends match the injected ones to the noise-limited accuracy."""
    ctx.check(len(table["status"]) == BATCHES and all(s == "ok" for s in table["status"]),
              f"{BATCHES} batches, all ok", table["status"])
    want = expected(attributes)
    # Per batch the rms of 512 traces (1024 fitted coefficients): about 3 % (1 sigma).
    for column, per_batch, mean in (("slope_error_rms", 0.20, 0.04),
                                    ("trend_error_rms", 0.15, 0.03)):
        ratio = table[column] / want[column]
        ctx.check(np.all(np.abs(ratio - 1) < per_batch) and abs(ratio.mean() - 1) < mean,
                  f"{column} is the noise-limited error {want[column]:.4g} (every batch within "
                  f"{per_batch:.0%}, the mean within {mean:.0%})",
                  f"ratios {ratio.min():.3f}..{ratio.max():.3f}, mean {ratio.mean():.4f}")
    ratio = table["residual_rms"] / want["residual_rms"]
    ctx.check(np.all(np.abs(ratio - 1) < 0.01),
              f"residual_rms is noise plus arrival, {want['residual_rms']:.4f} (within 1 %; "
              f"the drift is {100}x the noise before detrending)",
              f"ratios {ratio.min():.4f}..{ratio.max():.4f}")
    ctx.check(np.all(table["arrival_error_rms"] < 2 * want["sample"]),
              "the arrival is picked within 2 samples after detrending",
              table["arrival_error_rms"].max())
    # Pairs whose arrivals overlap add a few %; an undetrended drift would give ~0.5.
    ratio = table["correlation_rms"] / want["correlation_rms"]
    ctx.check(np.all((ratio > 0.95) & (ratio < 1.15)),
              f"correlation_rms is the white-noise level 1/sqrt(n - p) = "
              f"{want['correlation_rms']:.4f} (within -5 %..+15 %)",
              f"ratios {ratio.min():.3f}..{ratio.max():.3f}")


def compare(label, table, bin_budgets, references, reference):
    """Bit-identical to the reference run of the same budget, bin by bin; within 1e-12 of
    `reference` (the 1-rank run) whatever the budget. Tables are in bin order."""
    floats = [c for c in table if table[c].dtype.kind == "f"]
    same_budget_differs = []
    for row, index in enumerate(table["bin"]):
        budget = bin_budgets[int(index)]
        if budget not in references:
            continue
        ref = references[budget]
        for c in table:
            x, y = table[c][row], ref[c][row]
            equal = (np.float64(x).view(np.uint64) == np.float64(y).view(np.uint64)
                     if c in floats else x == y)
            if not equal:
                same_budget_differs.append(f"bin {row} {c}: {x!r} vs {y!r} (budget {budget})")
    ctx.check(not same_budget_differs,
              f"{label}: bit-identical to the 1-rank run of the same budget, bin by bin",
              "\n".join(same_budget_differs[:10]))
    close = all(np.allclose(table[c], reference[c], rtol=1e-12, atol=0) for c in floats)
    bits = all(np.array_equal(table[c].view(np.uint64), reference[c].view(np.uint64))
               for c in floats)
    ctx.check(close, f"{label}: within 1e-12 of the 1-rank run "
                     f"({'bit-identical' if bits else 'last bits differ'})")


if (build_step(ctx, "cmake --install of the build tree", ["cmake", "--install", build, "--prefix", prefix])
        and build_step(ctx, "examples/ configures with find_package(binflow) and OpenBLAS's LAPACK",
                 ["cmake", "-S", os.path.join(repo, "examples"), "-B", example_build,
                  f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release",
                  "-DBLA_VENDOR=OpenBLAS"])
        and build_step(ctx, "binflow_detrend builds",
                 ["cmake", "--build", example_build, "--target", "binflow_detrend", "-j2"])):
    ctx.binflow = os.path.join(example_build, "binflow_detrend")
    libraries = subprocess.run(["ldd", ctx.binflow], capture_output=True, text=True).stdout
    ctx.check("libopenblas" in libraries, "binflow_detrend is linked to OpenBLAS", libraries)

    usage = ctx.run(["detrend", "--help"])
    ctx.check(usage.returncode == 0 and "--traces" in usage.stdout,
              "detrend --help lists --traces", usage.stdout + usage.stderr)

    runs = {}
    for ranks in (None, 2, 3, 4):
        label = "plain" if ranks is None else f"{ranks} ranks"
        run = Run(label, detrend(f"detrend-{ranks or 1}.h5"), ranks)
        if run.ok():
            runs[label] = run
    # The same bins on one rank with a budget of 1: the reference for bins run at budget 1,
    # and a rank whose OpenBLAS has a worker (unbound, one per CPU) that the cap keeps idle.
    run = Run("plain nthreads=1", detrend("detrend-nthreads1.h5", "--nthreads", "1"), None)
    if run.ok():
        runs["plain nthreads=1"] = run

    for label, run in runs.items():
        budgets = run.budgets()
        run.report(budgets)
        ctx.check(sorted(budgets) == sorted(run.pid_of_rank),
                  f"{label}: every rank ran bins and was sampled",
                  f"budgets {budgets}, sampled {sorted(run.pid_of_rank)}")
        over = {r: (run.busy(r)[0], budgets.get(r)) for r in run.pid_of_rank
                if budgets.get(r) is None or run.busy(r)[0] > budgets[r]}
        ctx.check(not over, f"{label}: busy threads per rank <= the rank's budget "
                            f"{sorted(set(budgets.values()))}", f"rank: (busy, budget) {over}")

    plain = runs.get("plain")
    if plain:
        budget = plain.budgets()[0]
        if budget >= 2:
            busy = plain.busy(0)[0]
            ctx.check(busy >= 2, f"plain (budget {budget}): OpenBLAS's worker is busy too "
                                 f"({busy} busy threads), so the count sees OpenBLAS's threads")
        else:
            print(f"skip [budget 2] one core in the affinity, no run has a budget of 2")

    # The control: the cap defeated, OpenBLAS runs one thread per CPU in every rank.
    shim = ctx.path("nocap.c")
    with open(shim, "w") as f:
        f.write("void openblas_set_num_threads(int threads) { (void)threads; }\n")
    if len(os.sched_getaffinity(0)) < 2:
        print("skip [control] one CPU: OpenBLAS starts no worker thread to defeat the cap for")
    elif build_step(ctx, "the no-op openblas_set_num_threads builds",
              ["cc", "-shared", "-fPIC", "-o", ctx.path("nocap.so"), shim]):
        control = Run("control 4 ranks uncapped", detrend("detrend-uncapped.h5"), 4,
                      env={"LD_PRELOAD": ctx.path("nocap.so")})
        if control.ok():
            budgets = control.budgets()
            control.report(budgets)
            over = [r for r in control.pid_of_rank if control.busy(r)[0] > budgets.get(r, 0)]
            ctx.check(bool(over),
                      f"control: with the cap defeated, ranks {over} run more busy threads than "
                      f"their budget (the check above can fail)")

    if plain:
        table = read_group(plain.outfile)
        check_fit(table, read_attributes(plain.outfile))
        references = {plain.budgets()[0]: table}
        if "plain nthreads=1" in runs:
            references.setdefault(1, read_group(runs["plain nthreads=1"].outfile))
        for label, run in runs.items():
            if label == "plain":
                continue
            compare(label, read_group(run.outfile), run.bin_budgets(), references, table)

ctx.finish()
