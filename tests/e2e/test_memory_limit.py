#!/usr/bin/python3
"""memory_limit: a bin whose events would not fit in a rank's bound fails before it allocates,
naming its events and the limit, and the other bins go on with the results they have without
a bound; auto takes Slurm's memory per task; a nested run (pull's simulate) inherits the bound;
/run/ranks records each rank's peak resident memory."""
import os

import h5py

from e2e_common import Context, identical, read_group

ctx = Context()
MB = 1_000_000

# 2.3 M events in one hour (a 100x Crab): bins 0 and 1 hold 23 k events each, bin 2 reads
# 1.1 M events (54 MB) in its first GTI piece.
r = ctx.run(["simulate", "duration=3600", "N0=3e-9", "outfile=bright.h5", "chatter=1"])
ctx.check(r.returncode == 0, "simulate the bright hour", r.stderr)
with open(ctx.path("bins.txt"), "w") as f:
    f.write("0 60\n60 120\n120 3600\n")
lightcurve = ["lightcurve", "inobs=bright.h5", "tbinalg=FILE", "tbinfile=bins.txt"]


def peak_rss_bytes(path):
    with h5py.File(path, "r") as f:
        return 1024 * f["run/ranks/peak_rss"][()]


for ranks in (1, 2):
    label = f"{ranks} rank{'s' if ranks > 1 else ''}"
    free = f"free{ranks}.h5"
    r = ctx.run(lightcurve + [f"outfile={free}", "memory_limit=none"], ranks=ranks)
    ctx.check(r.returncode == 0, f"{label}: without a bound every bin fits", r.stderr)
    peaks = peak_rss_bytes(ctx.path(free))
    ctx.check(len(peaks) == ranks and all(p > 10 * MB for p in peaks),
              f"{label}: /run/ranks/peak_rss has each rank's peak", peaks)
    # 20 MB above the largest rank's peak of an unbounded run without bin 2: bins 0 and 1
    # (1 MB each) fit, bin 2's 54 MB read does not.
    r = ctx.run(["lightcurve", "inobs=bright.h5", "tbinalg=LIN", "tbins=2", "tmax=120",
                 f"outfile=small{ranks}.h5", "memory_limit=none"], ranks=ranks)
    ctx.check(r.returncode == 0, f"{label}: the two small bins alone", r.stderr)
    base = int(max(peak_rss_bytes(ctx.path(f"small{ranks}.h5"))))
    limit = f"{(base + 20 * MB) // MB}MB"
    bounded = f"bounded{ranks}.h5"
    r = ctx.run(lightcurve + [f"outfile={bounded}", f"memory_limit={limit}", f"logfile=bounded{ranks}.log"],
                ranks=ranks)
    ctx.check(r.returncode == 1, f"{label}: memory_limit={limit}: one bin failed, exit 1",
              f"{r.returncode}\n{r.stderr}")
    res = read_group(ctx.path(bounded))
    ref = read_group(ctx.path(free))
    ctx.check(list(res["status"]) == ["ok", "ok", "failed"], f"{label}: bin 2 failed, 0 and 1 ok",
              res["status"])
    message = res["message"][2]
    ctx.check(message.startswith("reading 1") and "events of [120, 1800) s needs" in message
              and f"memory_limit={limit}" in message,
              f"{label}: the message names the bin's events and the limit", message)
    same, why = identical({k: v[:2] for k, v in res.items() if k not in ("status", "message")},
                          {k: v[:2] for k, v in ref.items() if k not in ("status", "message")})
    ctx.check(same, f"{label}: bins 0 and 1 equal the unbounded run's bits", why)
    peaks = peak_rss_bytes(ctx.path(bounded))
    ctx.check(max(peaks) < base + 20 * MB, f"{label}: no rank went past the bound", (peaks, limit))
    with open(ctx.path(f"bounded{ranks}.log")) as f:
        log = f.read()
    ctx.check(f"[run] memory_limit {(base + 20 * MB) // MB:.1f} MB per rank (memory_limit={limit})"
              in log, f"{label}: the run log states the bound", log[:3000])
    ctx.check("bin 2 failed: reading" in log, f"{label}: the log names the failed bin", log[-2000:])

# auto: Slurm's --mem-per-cpu (MiB) is the bound without memory_limit on the command line.
base = int(max(peak_rss_bytes(ctx.path("small1.h5"))))
mib = (base + 20 * MB) // (1024 * 1024)
r = ctx.run(lightcurve + ["outfile=auto.h5", "logfile=auto.log"], env={"SLURM_MEM_PER_CPU": str(mib)})
ctx.check(r.returncode == 1, "SLURM_MEM_PER_CPU sets the bound (bin 2 fails)", r.stderr)
with open(ctx.path("auto.log")) as f:
    log = f.read()
ctx.check("(SLURM_MEM_PER_CPU x 1 CPUs per task)" in log, "the log says where the bound came from",
          log[:2000])
r = ctx.run(lightcurve + ["outfile=auto_none.h5", "memory_limit=none"],
            env={"SLURM_MEM_PER_CPU": str(mib)})
ctx.check(r.returncode == 0, "memory_limit=none overrides the scheduler's", r.stderr)

# A nested run inherits the bound: each pull trial simulates its events in memory. 30-minute
# trials (49 k events, 3 MB) fit 20 MB above their own peak; 10-hour ones (1 M events, 62 MB
# for the slices and their concatenation) do not.
r = ctx.run(["pull", "ntrials=3", "outfile=pull_free.h5", "memory_limit=none"])
ctx.check(r.returncode == 0, "pull without a bound", r.stderr)
limit = f"{(int(peak_rss_bytes(ctx.path('pull_free.h5'))[0]) + 20 * MB) // MB}MB"
r = ctx.run(["pull", "ntrials=3", "outfile=pull_fits.h5", f"memory_limit={limit}"])
ctx.check(r.returncode == 0, f"pull: 30-minute trials fit memory_limit={limit}", r.stderr)
r = ctx.run(["pull", "ntrials=3", "duration=36000", "outfile=pull_bounded.h5",
             f"memory_limit={limit}"])
res = read_group(ctx.path("pull_bounded.h5"))
ctx.check(r.returncode == 1 and all(s == "failed" for s in res["status"]),
          f"pull: 10-hour trials' nested simulate is over memory_limit={limit}",
          (r.returncode, res["status"], r.stderr[-2000:]))
ctx.check(all(m.startswith("simulating ") and f"memory_limit={limit}" in m for m in res["message"]),
          "pull: the trials say the nested simulate did not fit", res["message"])

# Bad values are bad input: one line, exit 2, nothing written.
for bad in ("lots", "0", "-1GB"):
    r = ctx.run(lightcurve + ["outfile=bad.h5", f"memory_limit={bad}"])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    ctx.check(r.returncode == 2 and len(lines) == 1 and f"memory_limit={bad}" in lines[0],
              f"memory_limit={bad}: exit 2 with one line naming it", r.stderr)
r = ctx.run(lightcurve + ["outfile=bad.h5"], env={"SLURM_MEM_PER_CPU": "much"})
ctx.check(r.returncode == 2 and "SLURM_MEM_PER_CPU=much" in r.stderr,
          "a malformed SLURM_MEM_PER_CPU is bad input naming it", r.stderr)
ctx.check(not any(n.startswith("bad.h5") for n in os.listdir(ctx.workdir)),
          "bad memory_limit: nothing written")

ctx.finish()
