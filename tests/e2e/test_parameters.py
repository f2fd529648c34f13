#!/usr/bin/python3
"""Parameter parsing: the three syntaxes, config files, --help, and one clear line with
exit status 2 for every kind of bad input, with nothing written."""
import os

from e2e_common import Context, read_attributes

ctx = Context()

r = ctx.run(["--help"])
ctx.check(r.returncode == 0 and "synthetic" in r.stdout and "info" in r.stdout,
          "binflow --help lists the tools", r.stdout)
r = ctx.run(["synthetic", "--help"])
for needle in ("--bins INT", "default 100", "--cost_ms FLOAT", "range [0,", "--cost_dist CHOICE",
               "const|uniform|lognormal", "--nthreads", "--schedule", "--max_failures", "--resume",
               "--clobber", "--seed", "--logfile", "--chatter", "--outfile"):
    ctx.check(needle in r.stdout, f"synthetic --help shows {needle!r}")

# Three syntaxes and a config file give the same parameters.
with open(ctx.path("run.toml"), "w") as f:
    f.write("# synthetic run\nbins = 7\ncost_ms = 0.5\ncost_dist = \"uniform\"\nomp_work = true\n")
variants = {
    "dashes": ["--bins", "7", "--cost_ms", "0.5", "--cost_dist", "uniform", "--omp_work"],
    "equals": ["--bins=7", "--cost_ms=0.5", "--cost_dist=uniform", "--omp_work=yes"],
    "ctools": ["bins=7", "cost_ms=0.5", "cost_dist=UNIFORM", "omp_work=yes"],
    "config": ["--config", ctx.path("run.toml")],
}
for name, words in variants.items():
    out = ctx.path(f"syntax_{name}.h5")
    r = ctx.run(["synthetic", *words, "outfile=" + out])
    ctx.check(r.returncode == 0, f"{name} syntax runs", r.stderr)
    if r.returncode == 0:
        a = read_attributes(out)
        ctx.check((a["bins"], a["cost_ms"], a["cost_dist"], a["omp_work"]) == ("7", "0.5", "uniform", "yes"),
                  f"{name} syntax sets the parameters", a)

bad = {
    "unknown parameter": (["--bogus", "3"], "bogus"),
    "not a number": (["--bins", "many"], "bins"),
    "out of range": (["--bins", "0"], "bins"),
    "negative cost": (["--cost_ms", "-1"], "cost_ms"),
    "bad choice": (["--cost_dist", "gamma"], "cost_dist"),
    "bad schedule": (["--schedule", "guided"], "schedule"),
    "bad list": (["--fail_bins", "1,x"], "fail_bins"),
    "fail bin out of range": (["--bins", "5", "--fail_bins", "9"], "fail_bins"),
    "stray word": (["oops"], "oops"),
    "missing config": (["--config", "nope.toml"], "nope.toml"),
    "resume without outfile": (["--resume"], "outfile"),
    "missing directory": (["--outfile", "no/such/dir/out.h5"], "no/such/dir"),
}
for what, (words, needle) in bad.items():
    for ranks in (None, 2):
        r = ctx.run(["synthetic", "--bins", "5", *words] if words[0] != "--bins" else ["synthetic", *words],
                    ranks=ranks)
        # Under mpirun, Open MPI adds its own banner about the non-zero exit: count ours.
        lines = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
        label = f"{what} ({'plain' if ranks is None else 'mpirun -n 2'})"
        ctx.check(r.returncode == 2, f"{label}: exit status 2", r.stderr)
        ctx.check(len(lines) == 1 and needle in lines[0] and lines[0].startswith("binflow: error"),
                  f"{label}: one line naming {needle!r}", r.stderr)

# An existing output is not overwritten without clobber.
out = ctx.path("keep.h5")
with open(out, "w") as f:
    f.write("precious")
r = ctx.run(["synthetic", "--bins", "3", "--outfile", out])
ctx.check(r.returncode == 2 and "clobber" in r.stderr, "existing outfile refused without clobber", r.stderr)
ctx.check(open(out).read() == "precious", "existing outfile untouched")
r = ctx.run(["synthetic", "--bins", "3", "--outfile", out, "clobber=yes"])
ctx.check(r.returncode == 0, "clobber=yes overwrites", r.stderr)
ctx.check(not [n for n in os.listdir(ctx.workdir) if ".tmp." in n], "no temporary files left behind")
ctx.finish()
