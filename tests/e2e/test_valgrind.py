#!/usr/bin/python3
"""Valgrind memcheck over small 1-rank runs of `binflow lightcurve` (with its checkpoint
and ordered log) and `binflow synthetic` with 2 OpenMP threads: no memory error and no
leak of binflow's own, and the results are the same bits as without Valgrind. A memcheck
error makes Valgrind exit 99 and the test fail. Open MPI's own reports are suppressed by
Open MPI's suppression file and scripts/valgrind.supp (see there). docs/checking.md."""
import os
import re
import shutil
import subprocess
import time

from e2e_common import Context, identical, read_group

ctx = Context()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
openmpi_supp = "/usr/share/openmpi/openmpi-valgrind.supp"
valgrind = shutil.which("valgrind")
ctx.check(valgrind is not None, "valgrind is installed (scripts/setup.sh installs it)")
ctx.check(os.path.exists(openmpi_supp), f"Open MPI's suppressions at {openmpi_supp}")
if valgrind is None or not os.path.exists(openmpi_supp):
    ctx.finish()

memcheck_exit = 99


def memcheck(name, args, env=None):
    """`binflow args` under memcheck; its exit status, Valgrind's log and the wall time."""
    log = ctx.path(name + ".valgrind.log")
    command = [valgrind, "--tool=memcheck", f"--error-exitcode={memcheck_exit}",
               "--leak-check=full", "--num-callers=50", "--track-origins=yes", f"--log-file={log}",
               f"--suppressions={openmpi_supp}",
               f"--suppressions={os.path.join(root, 'scripts', 'valgrind.supp')}",
               ctx.binflow, *args]
    # Keeps Open MPI's components loaded at exit, so that the stacks of their leaks keep
    # the symbols that scripts/valgrind.supp matches.
    full_env = dict(ctx.env, OMPI_MCA_mca_base_component_disable_dlclose="1", **(env or {}))
    start = time.time()
    r = subprocess.run(command, env=full_env, cwd=ctx.workdir, capture_output=True, text=True,
                       timeout=480)
    seconds = time.time() - start
    with open(log) as f:
        text = f.read()
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
    errors = int(summary[-1]) if summary else -1
    print(f"      {name}: {seconds:.1f} s under memcheck, {errors} errors", flush=True)
    ctx.check(r.returncode == 0 and errors == 0,
              f"{name}: memcheck finds no error (exit {r.returncode}, {errors} errors)",
              text[-6000:] + "\n" + r.stderr[-2000:])
    return r


# A 30-minute observation (about 66000 events) with a flare, written without Valgrind.
obs = ctx.path("flare.h5")
r = ctx.run(["simulate", "--duration", "1800", "--profile", "flare", "--width", "300",
             "--seed", "5", "--outfile", obs])
ctx.check(r.returncode == 0, "simulate the input", r.stderr)

lightcurve = ["lightcurve", "--inobs", obs, "--tbins", "6", "--chatter", "3", "--nthreads", "1"]
reference = ctx.path("lightcurve_native.h5")
r = ctx.run(lightcurve + ["--outfile", reference])
ctx.check(r.returncode == 0, "lightcurve without Valgrind", r.stderr[-2000:])
out = ctx.path("lightcurve.h5")
memcheck("lightcurve", lightcurve + ["--outfile", out, "--logfile", ctx.path("lightcurve.log")])
if os.path.exists(out) and os.path.exists(reference):
    same, why = identical(read_group(out), read_group(reference))
    ctx.check(same, "lightcurve under memcheck: /results bit-identical to the native run", why)

# OpenMP inside bins (libgomp's team of 2) and the deterministic block sums.
synthetic = ["synthetic", "--bins", "8", "--cost_ms", "0", "--draws", "20000", "--omp_work", "yes",
             "--nthreads", "2", "--oversubscribe", "yes", "--log_lines", "2", "--seed", "7"]
reference = ctx.path("synthetic_native.h5")
r = ctx.run(synthetic + ["--outfile", reference])
ctx.check(r.returncode == 0, "synthetic without Valgrind", r.stderr[-2000:])
out = ctx.path("synthetic.h5")
memcheck("synthetic", synthetic + ["--outfile", out])
if os.path.exists(out) and os.path.exists(reference):
    same, why = identical(read_group(out), read_group(reference))
    ctx.check(same, "synthetic under memcheck: /results bit-identical to the native run", why)

ctx.finish()
