#!/usr/bin/python3
"""binflow under a live single-node Slurm (scripts/slurm-local.sh starts it, and stops it at
the end whatever happens):
1. `binflow submit` of a light curve on 2 ranks: the job's /results are bit-identical to a
   direct `mpirun -n 2` run, and it ran in the directory submit ran in;
2. the job scripts of jobscripts/slurm/ (light curve at 1 rank x 2 threads, the array job)
   give the same light curve; the spectrum and pull scripts match direct runs;
3. a job interrupted by `scancel --batch --signal=TERM`, and one interrupted by its own time
   limit (--signal=B:TERM@lead), checkpoint (exit 75), requeue themselves, resume and end
   with the results of an uninterrupted run;
4. the geometry each job logs (ranks x threads = cores used / available) is what was asked
   for and never exceeds the node's cores; submit refuses a geometry the node cannot hold.
If Slurm cannot run on this machine the test says why and fails."""
import os
import re
import subprocess
import sys
import time

from e2e_common import Context, identical, read_group

ctx = Context()
t_begin = time.time()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
slurm_local = os.path.join(root, "scripts", "slurm-local.sh")
jobscripts = os.path.join(root, "jobscripts", "slurm")

# A cluster of the test's own, beside any a developer runs with slurm-local.sh's defaults.
slurm_dir = f"/tmp/binflow-slurm-e2e-{os.getuid()}"
env = dict(ctx.env)
env.update({"BINFLOW_SLURM_DIR": slurm_dir, "BINFLOW_SLURM_PORT": "16837",
            "SLURM_CONF": os.path.join(slurm_dir, "etc", "slurm.conf"),
            "BINFLOW": ctx.binflow})
for key in [k for k in env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
    del env[key]  # a test started inside a Slurm job must not inherit that job's settings
ctx.env = env
timings = {}


def sh(args, timeout=60, **kw):
    return subprocess.run(args, env=env, cwd=ctx.workdir, capture_output=True, text=True,
                          timeout=timeout, **kw)


def job_fields(job):
    """Every `scontrol show job -o` line of a job (array elements too) as a dict."""
    r = sh(["scontrol", "show", "job", "-o", str(job)])
    out = []
    for line in r.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields:
            out.append(fields)
    return out


FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
         "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}


def wait_job(job, limit=150.0):
    start = time.time()
    while time.time() - start < limit:
        fields = job_fields(job)
        if fields and all(f.get("JobState") in FINAL for f in fields):
            return fields
        time.sleep(0.25)
    sh(["scancel", str(job)])
    return job_fields(job)


def job_log(job, name):
    path = ctx.path(f"{name}-{job}.out")
    return open(path).read() if os.path.exists(path) else ""


GEOMETRY = re.compile(r"\[run\] node (\S+): (\d+) ranks x threads = (\d+) cores used / (\d+) available")
THREADS = re.compile(r"\[run\] (\d+) ranks, schedule \w+, (\d+) threads on rank 0")


def check_geometry(log, what, ranks, threads, node_cores):
    nodes = GEOMETRY.findall(log)
    heads = THREADS.findall(log)
    ok = bool(nodes) and bool(heads)
    for _, r, used, available in nodes:
        ok = ok and int(r) == ranks and int(used) == ranks * threads
        ok = ok and int(used) <= int(available) <= node_cores
    for r, t in heads:
        ok = ok and int(r) == ranks and int(t) == threads
    ctx.check(ok, f"{what}: the job logs {ranks} ranks x {threads} threads = {ranks * threads} "
              f"cores used, within the node's {node_cores}", "\n".join(
                  l for l in log.splitlines() if "[run]" in l)[:3000])


def submit(args, what):
    r = ctx.run(["submit", *args])
    lines = r.stdout.strip().splitlines()
    job = lines[-1] if lines else ""
    ctx.check(r.returncode == 0 and job.isdigit(),
              f"{what}: binflow submit exits 0 and its last line is the job id ({job})",
              r.stdout + r.stderr)
    return job if job.isdigit() else None


def slurm_up():
    if not os.path.exists("/usr/sbin/slurmctld") or not os.path.exists("/usr/sbin/munged"):
        ctx.check(False, "Slurm is installed (slurmctld, slurmd, munged)",
                  "the Debian packages slurm-wlm and munge are missing: scripts/setup.sh "
                  "installs them")
        return False
    r = subprocess.run([slurm_local, "start"], env=env, capture_output=True, text=True,
                       timeout=180)
    print(r.stdout.strip(), flush=True)
    if not ctx.check(r.returncode == 0, "a single-node Slurm starts on this machine "
                     "(scripts/slurm-local.sh start)", r.stdout + r.stderr):
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            path = os.path.join(slurm_dir, "log", name)
            if os.path.exists(path):
                print(f"--- {path} (end)\n" + "".join(open(path).readlines()[-15:]))
        return False
    return True


def node_cores():
    """Physical cores of the Slurm node (sockets x cores per socket)."""
    r = sh(["sinfo", "-h", "-N", "-o", "%z %t"])
    m = re.match(r"(\d+):(\d+):(\d+)\s+(\S+)", r.stdout.strip())
    ctx.check(bool(m) and m.group(4).startswith("idle"), "sinfo shows the node idle", r.stdout)
    return int(m.group(1)) * int(m.group(2)) if m else 0


def light_curves(cores):
    t = time.time()
    r = ctx.run(["simulate", "--duration", "7200", "--seed", "3", "--outfile", "obs.h5",
                 "--chatter", "0"])
    ctx.check(r.returncode == 0, "simulate obs.h5", r.stderr)
    lc = ["lightcurve", "--inobs", "obs.h5", "--tbins", "24"]
    r = ctx.run(lc + ["--outfile", "lc_direct.h5", "--chatter", "0"], ranks=2)
    ctx.check(r.returncode == 0, "direct mpirun -n 2 light curve", r.stderr)
    direct = read_group(ctx.path("lc_direct.h5"))

    # srun --mpi=pmix (the default), then mpirun inside the allocation (the fallback).
    for launcher in ("srun", "mpirun"):
        name = f"lc-{launcher}"
        job = submit(["--scheduler", "slurm", "--nodes", "1", "--ranks_per_node", "2",
                      "--threads_per_rank", "1", "--time", "00:05:00", "--launcher", launcher,
                      "--job_name", name, "--", *lc, "--outfile", f"{name}.h5"],
                     f"light curve ({launcher})")
        if not job:
            continue
        fields = wait_job(job)
        state = fields[0] if fields else {}
        log = job_log(job, name)
        ctx.check(state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0",
                  f"{name}: job {job} completes with exit code 0", f"{state}\n{log[-3000:]}")
        ctx.check(state.get("WorkDir") == ctx.workdir,
                  f"{name}: the job ran in the directory binflow submit ran in", state.get("WorkDir"))
        if ctx.check(os.path.exists(ctx.path(f"{name}.h5")), f"{name}: the job wrote {name}.h5",
                     log[-3000:]):
            same, why = identical(read_group(ctx.path(f"{name}.h5")), direct)
            ctx.check(same, f"{name}: Slurm job (2 ranks started by {launcher}) /results "
                      "bit-identical to a direct mpirun -n 2", why)
        check_geometry(log, name, 2, 1, cores)
    timings["submit light curves"] = time.time() - t

    # More than the node holds: refused before anything is submitted, in one line.
    before = sh(["squeue", "-h", "-o", "%i"]).stdout
    r = ctx.run(["submit", "--ranks_per_node", "2", "--threads_per_rank", str(cores), "--",
                 *lc, "--outfile", "never.h5"])
    ctx.check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
              and "sinfo" in r.stderr and r.stdout == "",
              f"submit refuses 2 ranks x {cores} threads on a {cores}-core node (exit 2, one line)",
              f"exit {r.returncode}\n{r.stdout}{r.stderr}")
    ctx.check(sh(["squeue", "-h", "-o", "%i"]).stdout == before, "and submits nothing")

    # The job scripts of the repository, with their geometry changed on sbatch's line.
    t = time.time()
    threads = min(2, cores)
    r = sh(["sbatch", "--parsable", "--nodes=1", "--ntasks-per-node=1",
            f"--cpus-per-task={threads}", "--time=5",
            "--export=ALL,INOBS=obs.h5,TBINS=24,OUTFILE=lc_script.h5",
            os.path.join(jobscripts, "lightcurve.sbatch")])
    script_job = r.stdout.strip().split(";")[0]
    ctx.check(r.returncode == 0 and script_job.isdigit(), "sbatch jobscripts/slurm/lightcurve.sbatch", r.stderr)
    with open(ctx.path("sources.txt"), "w") as f:
        f.write("# name  events\nsrcA  obs.h5\n\nsrcB  obs.h5\n")
    r = sh(["sbatch", "--parsable", "--array=0-1", "--ntasks-per-node=1", "--cpus-per-task=1",
            "--time=5", "--export=ALL,TBINS=24", os.path.join(jobscripts, "lightcurve-array.sbatch")])
    array_job = r.stdout.strip().split(";")[0]
    ctx.check(r.returncode == 0 and array_job.isdigit(), "sbatch jobscripts/slurm/lightcurve-array.sbatch", r.stderr)
    if script_job.isdigit():
        fields = wait_job(script_job)
        log = job_log(script_job, "binflow-lightcurve")
        ctx.check(fields and fields[0].get("JobState") == "COMPLETED",
                  "lightcurve.sbatch completes", log[-3000:])
        if os.path.exists(ctx.path("lc_script.h5")):
            same, why = identical(read_group(ctx.path("lc_script.h5")), direct)
            ctx.check(same, f"lightcurve.sbatch (1 rank x {threads} threads) /results identical", why)
        else:
            ctx.check(False, "lightcurve.sbatch wrote lc_script.h5", log[-3000:])
        check_geometry(log, "lightcurve.sbatch", 1, threads, cores)
    if array_job.isdigit():
        fields = wait_job(array_job)
        ctx.check(len(fields) == 2 and all(f.get("JobState") == "COMPLETED" for f in fields),
                  "both elements of the array job complete", fields)
        for name in ("srcA", "srcB"):
            path = ctx.path(f"lc_{name}.h5")
            same, why = identical(read_group(path), direct) if os.path.exists(path) else (False, "missing")
            ctx.check(same, f"array element {name}: lc_{name}.h5 identical to the direct light curve", why)

    # spectrum.sbatch and pull.sbatch, when those tools are in this build, at 2 ranks x 1 thread.
    tools = ctx.run(["--help"]).stdout
    for script, tool, args, exports in (
            ("spectrum.sbatch", "spectrum",
             ["--inobs", "obs.h5", "--ebinalg", "LOG", "--enumbins", "12", "--emin", "0.1",
              "--emax", "100"], "INOBS=obs.h5,OUTFILE=spectrum_script.h5"),
            ("pull.sbatch", "pull", ["--ntrials", "20", "--seed", "1"],
             "NTRIALS=20,SEED=1,OUTFILE=pull_script.h5")):
        if not re.search(rf"^\s+{tool}\s", tools, re.M):
            print(f"note  {script} not run: this build has no `binflow {tool}`", flush=True)
            continue
        out = exports.split("OUTFILE=")[1]
        r = ctx.run([tool, *args, "--outfile", f"direct_{out}", "--chatter", "0"], ranks=2)
        ctx.check(r.returncode == 0, f"direct mpirun -n 2 binflow {tool}", r.stderr)
        r = sh(["sbatch", "--parsable", "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1",
                "--time=5", f"--export=ALL,{exports}", os.path.join(jobscripts, script)])
        job = r.stdout.strip().split(";")[0]
        if not ctx.check(r.returncode == 0 and job.isdigit(), f"sbatch jobscripts/slurm/{script}", r.stderr):
            continue
        fields = wait_job(job)
        log = job_log(job, f"binflow-{tool}")
        ctx.check(fields and fields[0].get("JobState") == "COMPLETED", f"{script} completes", log[-3000:])
        if os.path.exists(ctx.path(out)) and os.path.exists(ctx.path(f"direct_{out}")):
            same, why = identical(read_group(ctx.path(out)), read_group(ctx.path(f"direct_{out}")))
            ctx.check(same, f"{script} (2 ranks x 1 thread) /results identical to a direct run", why)
        else:
            ctx.check(False, f"{script} wrote {out}", log[-3000:])
        check_geometry(log, script, 2, 1, cores)
    timings["job scripts"] = time.time() - t


def interrupted(cores, what, synthetic, submit_args, stop):
    """Submits a synthetic run, interrupts it with `stop(job)`, and checks it requeued,
    resumed and returned the reference results. Returns (job log, results)."""
    job = submit([*submit_args, "--ranks_per_node", "2", "--", *synthetic,
                  "--outfile", f"{what}.h5"], what)
    if not job:
        return "", None
    stop(job)
    fields = wait_job(job, limit=240)
    state = fields[0] if fields else {}
    log = job_log(job, "binflow-synthetic")
    restarts = int(state.get("Restarts", "0") or 0)
    ctx.check(state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0",
              f"{what}: job {job} completes after {restarts} requeue(s)", f"{state}\n{log[-3000:]}")
    resumed = [int(n) for n in re.findall(r"\[run\] resumed (\d+) of \d+ bins", log)]
    ctx.check(restarts >= 1 and "checkpoint signal" in log and "exit status 75" in log
              and f"requeueing job {job}" in log,
              f"{what}: the signal reached binflow, which checkpointed (exit 75), and the job "
              f"requeued itself ({restarts} times)", log[-3000:])
    ctx.check(len(resumed) == restarts and all(n > 0 for n in resumed) and resumed == sorted(resumed)
              and "resume=yes" in log,
              f"{what}: every restart resumed from the checkpoint (bins resumed: {resumed})",
              log[-3000:])
    check_geometry(log, what, 2, 1, cores)
    out = ctx.path(f"{what}.h5")
    if not ctx.check(os.path.exists(out) and not os.path.exists(out + ".ckpt"),
                     f"{what}: final output written, checkpoint removed"):
        return log, None
    bins = read_group(out, "run/bins")
    ctx.check(resumed and int(bins["resumed"].sum()) == resumed[-1],
              f"{what}: /run/bins/resumed counts the {resumed[-1] if resumed else 0} bins of the last resume")
    return log, read_group(out)


def requeue_tests(cores):
    # --- scancel --signal=TERM --batch: the path of --signal=B:TERM@lead, on demand ---
    t = time.time()
    synthetic = ["synthetic", "--bins", "600", "--cost_ms", "25", "--seed", "5"]
    r = ctx.run(synthetic + ["--outfile", "syn_reference.h5", "--chatter", "0"], ranks=2)
    ctx.check(r.returncode == 0, "uninterrupted reference run (mpirun -n 2)", r.stderr)
    reference = read_group(ctx.path("syn_reference.h5"))

    def scancel_mid_run(job):
        ckpt = ctx.path("syn_scancel.h5.ckpt")
        start = time.time()
        while time.time() - start < 60:  # until the journal holds a good part of the bins
            if os.path.exists(ckpt) and os.path.getsize(ckpt) > 20000:
                break
            time.sleep(0.05)
        r = sh(["scancel", "--batch", "--signal=TERM", job])
        ctx.check(r.returncode == 0, f"scancel --batch --signal=TERM {job} mid-run", r.stderr)

    _, results = interrupted(cores, "syn_scancel", synthetic, ["--time", "00:05:00"], scancel_mid_run)
    if results is not None:
        same, why = identical(results, reference)
        ctx.check(same, "syn_scancel: final /results bit-identical to the uninterrupted run", why)
    timings["scancel, requeue, resume"] = time.time() - t

    # --- the time limit itself: 1 minute, SIGTERM to the batch shell 55 s before it ---
    # slurmctld checks time limits every 30 s, so the signal comes 5-35 s after each start;
    # 40 s of work (1600 bins x 50 ms on 2 ranks) is always interrupted at least once.
    t = time.time()
    synthetic = ["synthetic", "--bins", "1600", "--cost_ms", "50", "--seed", "6"]
    _, results = interrupted(cores, "syn_timelimit", synthetic,
                             ["--time", "1", "--signal_lead", "55"], lambda job: None)
    if results is not None:
        # The reference without the busy work: every column but `cost` is independent of it.
        r = ctx.run(["synthetic", "--bins", "1600", "--cost_ms", "0", "--seed", "6",
                     "--outfile", "syn_timelimit_reference.h5", "--chatter", "0"], ranks=2)
        reference = read_group(ctx.path("syn_timelimit_reference.h5"))
        costs = results.pop("cost")
        reference.pop("cost")
        same, why = identical(results, reference)
        ctx.check(same and bool((costs == 50.0).all()),
                  "syn_timelimit: final /results identical to an uninterrupted run", why)
    timings["time limit, requeue, resume"] = time.time() - t


try:
    if slurm_up():
        timings["start Slurm"] = time.time() - t_begin
        cores = node_cores()
        if ctx.check(cores >= 2, f"the node has at least 2 cores for a 2-rank job ({cores})"):
            light_curves(cores)
            requeue_tests(cores)
finally:
    t = time.time()
    r = subprocess.run([slurm_local, "stop"], env=env, capture_output=True, text=True, timeout=120)
    print(r.stdout.strip(), flush=True)
    ctx.check(r.returncode == 0, "the local Slurm stops (scripts/slurm-local.sh stop)", r.stderr)
    timings["stop Slurm"] = time.time() - t
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f"; total {time.time() - t_begin:.1f} s", flush=True)
ctx.finish()
