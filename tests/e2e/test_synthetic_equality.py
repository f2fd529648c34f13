#!/usr/bin/python3
"""Results and logs of `binflow synthetic` are the same for 1, 2, 3 and 4 ranks, every
schedule and any thread count; only lines marked [run] may differ."""
import os
import re

from e2e_common import Context, identical, log_without_run_lines, read_attributes, read_group

ctx = Context()
common = ["synthetic", "--bins", "45", "--cost_ms", "0.3", "--cost_dist", "lognormal", "--log_lines", "2",
          "--draws", "3000", "--chatter", "3", "--seed", "42"]


def run(name, ranks, extra=()):
    out, log = ctx.path(name + ".h5"), ctx.path(name + ".log")
    result = ctx.run(common + ["--outfile", out, "--logfile", log, *extra], ranks=ranks)
    ctx.check(result.returncode == 0, f"{name}: exit 0", result.stderr[-2000:])
    return out, log


reference, reference_log = run("reference", 1)
ref_results = read_group(reference)
def comparable_log(path):
    # The output file name is the one thing the runs here differ in on purpose.
    return [line for line in log_without_run_lines(path) if not line.startswith("wrote ")]


ref_log = comparable_log(reference_log)
ctx.check(len(ref_results["bin"]) == 45, "reference has 45 rows")
ctx.check(list(ref_results["bin"]) == list(range(45)), "rows in bin order")
ctx.check(all(s == "ok" for s in ref_results["status"]), "every bin ok")
with open(reference_log) as f:
    text = f.read()
headers = [m.group(1) for m in re.finditer(r"^bin (\d+)$", text, re.M)]
ctx.check(headers == [str(i) for i in range(45)], "log blocks open with 'bin N' in bin order")
ctx.check(any(line.strip().startswith("[run]") for line in text.splitlines()),
          "chatter 3 writes [run] timing lines")

for ranks in (1, 2, 3, 4):
    for schedule in ("static", "cyclic", "dynamic"):
        name = f"np{ranks}_{schedule}"
        out, log = run(name, ranks, ["--schedule", schedule])
        same, why = identical(read_group(out), ref_results)
        ctx.check(same, f"{name}: /results bit-identical to 1 rank", why)
        ctx.check(comparable_log(log) == ref_log, f"{name}: log identical apart from [run] lines")
        bins = read_group(out, "run/bins")
        ctx.check(sorted(set(bins["rank"])) == list(range(ranks)) or ranks > 1 and schedule == "dynamic",
                  f"{name}: /run/bins records the ranks that ran bins")
        attrs = read_attributes(out)
        ctx.check(attrs.get("ranks") == ranks and attrs.get("tool") == "synthetic",
                  f"{name}: provenance names tool and ranks", attrs)

# OpenMP work inside bins: the sum is taken in fixed blocks, so thread counts agree.
for threads in (1, 2):
    out, _ = run(f"omp{threads}", 1, ["--omp_work", "--nthreads", str(threads)])
    ref = read_group(ctx.path("omp1.h5"))
    same, why = identical(read_group(out), ref)
    ctx.check(same, f"omp_work with nthreads={threads}: identical to nthreads=1", why)
out, _ = run("omp_np2", 2, ["--omp_work"])
same, why = identical(read_group(out), read_group(ctx.path("omp1.h5")))
ctx.check(same, "omp_work at 2 ranks: identical", why)

# Provenance and run statistics.
attrs = read_attributes(reference)
for key in ("tool", "version", "command_line", "ranks", "threads_per_rank", "start_time",
            "end_time", "bins", "cost_ms", "seed"):
    ctx.check(key in attrs, f"/results attribute {key}")
ranks_table = read_group(reference, "run/ranks")
for key in ("busy", "idle", "bins", "efficiency"):
    ctx.check(key in ranks_table, f"/run/ranks/{key}")
bins_table = read_group(reference, "run/bins")
for key in ("rank", "start", "end", "wall", "cpu"):
    ctx.check(key in bins_table and len(bins_table[key]) == 45, f"/run/bins/{key} has 45 rows")
ctx.check(not os.path.exists(reference + ".ckpt"), "checkpoint removed after a complete run")
ctx.finish()
