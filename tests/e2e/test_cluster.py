#!/usr/bin/python3
"""binflow across three nodes on one machine (scripts/cluster-local.sh: one namespace holder
per node with its own hostname, network and cpuset; a bridge on a private /24; the file
system shared). One cluster serves every check; it is torn down at the end whatever happens.
1. `binflow info --json` at 4 ranks under mpirun reports three hosts and per-node budgets
   from each node's cpuset, and the run logs' per-node geometry lines agree; with
   `--mca btl self,vader` only, ranks on two nodes cannot start (the nodes share no memory);
2. synthetic, simulate (the event file written from three nodes), lightcurve and pull give
   /results (the events) bit-identical to one rank, and the same log but for `[run]` lines,
   under mpirun across the nodes and under `srun -N 3 --mpi=pmix`;
3. kill -9 of every rank on one node: the job ends within seconds naming the lost rank, and
   a resume on the two other nodes ends with the uninterrupted results and log;
4. `binflow submit --nodes 2|3` with the srun and the mpirun launcher run and match; a
   three-node job signalled mid-run checkpoints, requeues and resumes to identical results;
   a geometry a node cannot hold is refused by submit in one line.
Exit 77 (skip) only where the machine refuses namespaces."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

from e2e_common import Context, gone, identical, log_without_run_lines, read_group

ctx = Context()
t_begin = time.time()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
cluster_script = os.path.join(root, "scripts", "cluster-local.sh")
# A cluster of the test's own (directory, /24, ports) beside a developer's and beside the
# single-node Slurm of test_slurm.py.
cdir = f"/tmp/binflow-cluster-e2e-{os.getuid()}"
env = dict(ctx.env)
for key in [k for k in env if k.startswith("SLURM_")]:
    del env[key]  # a test started inside a Slurm job must not inherit that job's settings
env.update({"BINFLOW_CLUSTER_DIR": cdir, "BINFLOW_CLUSTER_NET": "10.213.9",
            "BINFLOW_CLUSTER_PORT": "16897", "BINFLOW": ctx.binflow})
timings = {}
GEOMETRY = re.compile(r"\[run\] node (\S+): (\d+) ranks x threads = (\d+) cores used / (\d+) available")


def phase(name, start):
    timings[name] = time.time() - start
    print(f"      [{name}: {timings[name]:.1f} s]", flush=True)


def cluster(*args, timeout=120):
    return subprocess.run([cluster_script, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def in_node(node, argv, cwd=None, extra_env=None, timeout=120, popen=False):
    """argv inside `node` (its namespaces and cpuset), in `cwd` (default the work dir);
    `extra_env` adds variables to the environment (None: removes one)."""
    full = dict(env)
    for key, value in (extra_env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    command = [cluster_script, "run", node, "--", *argv]
    if popen:
        return subprocess.Popen(command, env=full, cwd=cwd or ctx.workdir, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    return subprocess.run(command, env=full, cwd=cwd or ctx.workdir, capture_output=True,
                          text=True, timeout=timeout)


def mpirun(args, hosts=None, ranks=4, mca=(), **kw):
    placement = ["--host", hosts] if hosts else ["--hostfile", os.path.join(cdir, "hostfile")]
    return in_node("node1", ["mpirun", "-n", str(ranks), *placement, *mca, ctx.binflow, *args], **kw)


def cpu_count(cpuset):
    n = 0
    for part in cpuset.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def node_cpus():
    """{node: number of CPUs of its cpuset} as the cluster script made them."""
    out = {}
    for path in sorted(glob.glob(os.path.join(cdir, "nodes", "*.cpus"))):
        with open(path) as f:
            out[os.path.basename(path)[:-5]] = cpu_count(f.read().strip())
    return out


def subdir(name):
    path = ctx.path(name)
    os.makedirs(path, exist_ok=True)
    return path


def comparable_log(path):
    return log_without_run_lines(path) if os.path.exists(path) else ["(no log)"]


def geometry_lines(log):
    return {n: (int(r), int(u), int(a)) for n, r, u, a in GEOMETRY.findall(log)}


# --- the tools and their one-rank references ----------------------------------------------
ONE = subdir("one")
OBS = os.path.join(ONE, "simulate.h5")
TOOLS = {
    "synthetic": ["synthetic", "--bins", "200", "--cost_ms", "1", "--log_lines", "1", "--seed", "5"],
    "simulate": ["simulate", "--duration", "3600", "--seed", "8"],
    "lightcurve": ["lightcurve", "--inobs", OBS, "--tbins", "12"],
    "pull": ["pull", "--inobs", OBS, "--ntrials", "6", "--seed", "1"],
}
GROUPS = {"simulate": ("events", "gti", "irf")}
# Node loss and requeue: long enough to be stopped mid-run (600 bins of 8 ms of busy work).
LONG = ["synthetic", "--bins", "600", "--cost_ms", "8", "--log_lines", "1", "--seed", "12"]


def tool_args(key, outfile):
    stem = outfile[:-3]
    return TOOLS[key] + ["--outfile", outfile, "--logfile", stem + ".log", "--chatter", "2"]


def outputs(directory, key, outfile):
    path = os.path.join(directory, outfile)
    if not os.path.exists(path):
        return None
    return {g: read_group(path, g) for g in GROUPS.get(key, ("results",))}


def same_outputs(got, want):
    if got is None:
        return False, "no output"
    for group in want:
        same, why = identical(got[group], want[group])
        if not same:
            return False, f"/{group}: {why}"
    return True, ""


def references():
    t = time.time()
    refs = {}
    for key in ("simulate", "synthetic", "lightcurve", "pull"):  # simulate first: the others read it
        r = subprocess.run([ctx.binflow, *tool_args(key, f"{key}.h5")], env=env, cwd=ONE,
                           capture_output=True, text=True, timeout=120)
        refs[key] = (outputs(ONE, key, f"{key}.h5"), comparable_log(os.path.join(ONE, f"{key}.log")))
        # A log of a few lines would make "the same log" an empty promise.
        ctx.check(r.returncode == 0 and refs[key][0] is not None and len(refs[key][1]) > 3,
                  f"one-rank reference: binflow {key} ({len(refs[key][1])} log lines besides [run])",
                  r.stderr[-2000:])
    r = subprocess.run([ctx.binflow, *LONG, "--outfile", "long.h5", "--logfile", "long.log"],
                       env=env, cwd=ONE, capture_output=True, text=True, timeout=120)
    ctx.check(r.returncode == 0, "one-rank reference: the long synthetic run", r.stderr[-2000:])
    refs["long"] = (read_group(os.path.join(ONE, "long.h5")), comparable_log(os.path.join(ONE, "long.log")))
    phase("one-rank references", t)
    return refs


def compare_tool(label, key, directory, refs, outfile):
    got = outputs(directory, key, outfile)
    same, why = same_outputs(got, refs[key][0])
    what = "the event file" if key == "simulate" else "/results"
    ctx.check(same, f"{label} {key}: {what} bit-identical to one rank", why)
    log = comparable_log(os.path.join(directory, outfile[:-3] + ".log"))
    ctx.check(log == refs[key][1], f"{label} {key}: the log reads as one rank's but for [run] lines",
              "\n".join(l.rstrip() for l in log[:6]))


# --- 1. placement -------------------------------------------------------------------------
def placement():
    t = time.time()
    cpus = node_cpus()
    r = mpirun(["info", "--json"])
    if not ctx.check(r.returncode == 0, "mpirun -n 4 over 3 nodes: binflow info --json", r.stderr[-3000:]):
        return None
    info = json.loads(r.stdout)
    hosts = [rank["host"] for rank in info["ranks"]]
    ctx.check(sorted(set(hosts)) == sorted(cpus) and os.uname().nodename not in hosts,
              f"the 4 ranks run on three distinct hosts {sorted(set(hosts))}, not on this "
              f"machine ({os.uname().nodename})", hosts)
    budgets = {n["host"]: (n["ranks"], n["threads"], n["cores_available"]) for n in info["nodes"]}
    ctx.check({h: b[2] for h, b in budgets.items()} == cpus and
              all(b[1] <= b[2] for b in budgets.values()),
              f"per-node budgets from each node's cpuset: {budgets} (ranks, threads, cores) "
              f"against cpusets of {cpus} CPUs", r.stdout)
    ctx.check(all(cpu_count(rank["cpuset"]) <= cpus[rank["host"]] for rank in info["ranks"]),
              "every rank's cpuset lies within its node's", r.stdout)

    # One rank on node2 and one on node3 is enough, and aborts sooner than four.
    r = mpirun(["info"], hosts="node2,node3", ranks=2, mca=["--mca", "btl", "self,vader"],
               timeout=60)
    ctx.check(r.returncode != 0 and "unable to reach each other" in r.stderr
              and re.search(r"is on host: node2", r.stderr) and re.search(r"is on host: node3", r.stderr),
              "with --mca btl self,vader only, ranks on node2 and node3 cannot start: the nodes "
              f"share no memory (exit {r.returncode})", r.stderr[-2000:])
    phase("placement", t)
    return budgets


# --- 2. the tools under mpirun and srun ----------------------------------------------------
def tools(label, launch, refs, budgets):
    t = time.time()
    directory = subdir(label)
    for key in ("synthetic", "simulate", "lightcurve", "pull"):
        r = launch(tool_args(key, f"{key}.h5"), directory)
        if not ctx.check(r.returncode == 0, f"{label} {key}: exit 0", r.stderr[-3000:]):
            continue
        compare_tool(label, key, directory, refs, f"{key}.h5")
        if key == "synthetic":
            with open(os.path.join(directory, f"{key}.log")) as f:
                logged = geometry_lines(f.read())
            ctx.check(logged == {h: (b[0], b[1], b[2]) for h, b in budgets.items()},
                      f"{label}: the log's per-node ranks x threads = cores used / available "
                      f"agree with binflow info ({logged})")
    phase(f"{label}: four tools", t)


# --- 3. node loss -------------------------------------------------------------------------
def ranks_on(node):
    """pids of binflow processes in `node`'s cpuset cgroup."""
    with open(os.path.join(cdir, "cgroup")) as f:
        cgroup = f.read().strip()
    pids = []
    with open(os.path.join(cgroup, node, "cgroup.procs")) as f:
        for pid in f.read().split():
            try:
                if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(ctx.binflow):
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


def node_loss(refs):
    t = time.time()
    directory = subdir("node_loss")
    args = LONG + ["--outfile", "long.h5", "--logfile", "long.log"]
    placement_args = ["mpirun", "-n", "4", "--hostfile", os.path.join(cdir, "hostfile"), ctx.binflow]
    proc = in_node("node1", placement_args + args, cwd=directory, popen=True)
    ckpt = os.path.join(directory, "long.h5.ckpt")
    start = time.time()
    while time.time() - start < 60 and proc.poll() is None:
        if os.path.exists(ckpt) and os.path.getsize(ckpt) > 8000 and ranks_on("node3"):
            break
        time.sleep(0.02)
    victims = ranks_on("node3")
    if not ctx.check(proc.poll() is None and victims, f"node loss: the run is under way with "
                     f"rank(s) {victims} on node3"):
        proc.kill()
        proc.communicate()
        return
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    killed = time.time()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    seconds = time.time() - killed
    line = next((l for l in err.splitlines() if re.search(r"rank 3 .*(exited on signal 9|killed)", l)), "")
    ctx.check(proc.returncode not in (0, None) and seconds < 10,
              f"node loss: the job ends (exit {proc.returncode}) {seconds:.1f} s after kill -9 of "
              "every rank on node3", err[-2000:])
    ctx.check(bool(line), f"node loss: a line names the lost rank 3: {line.strip()}", err[-2000:])
    r = mpirun(args + ["resume=yes"], hosts="node1:2,node2:1", ranks=3, cwd=directory)
    ctx.check(r.returncode == 0, "node loss: resume on node1 and node2 (3 ranks) exits 0", r.stderr[-2000:])
    path = os.path.join(directory, "long.h5")
    if os.path.exists(path):
        same, why = identical(read_group(path), refs["long"][0])
        ctx.check(same, "node loss: resumed /results bit-identical to the uninterrupted run", why)
        resumed = int(read_group(path, "run/bins")["resumed"].sum())
        ctx.check(0 < resumed < 600, f"node loss: {resumed} of 600 bins came from the checkpoint")
        ctx.check(comparable_log(os.path.join(directory, "long.log")) == refs["long"][1],
                  "node loss: the resumed log reads as the uninterrupted one")
    phase("node loss", t)


# --- 4. Slurm -------------------------------------------------------------------------------
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
         "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}
# The Slurm part launches through Slurm only: no rsh agent in the jobs' environment.
SLURM_ENV = {"OMPI_MCA_plm_rsh_agent": None}


def slurm(argv, **kw):
    return in_node("node1", argv, extra_env=SLURM_ENV, **kw)


def job_state(job):
    r = slurm(["scontrol", "show", "job", "-o", job])
    return dict(re.findall(r"(\w+)=(\S*)", r.stdout))


def wait_jobs(jobs, limit=150.0):
    start = time.time()
    states = {}
    while time.time() - start < limit:
        states = {job: job_state(job) for job in jobs}
        if all(s.get("JobState") in FINAL for s in states.values()):
            break
        time.sleep(0.3)
    return states


def srun_tools(refs, budgets):
    def launch(args, directory):
        return slurm(["srun", "-N", "3", "-n", "4", "--mpi=pmix", ctx.binflow, *args], cwd=directory)
    tools("srun -N 3", launch, refs, budgets)


def submit(directory, args, what):
    r = slurm([ctx.binflow, "submit", "--scheduler", "slurm", *args], cwd=directory)
    lines = r.stdout.strip().splitlines()
    job = lines[-1] if lines else ""
    ctx.check(r.returncode == 0 and job.isdigit(), f"{what}: binflow submit exits 0 with a job id "
              f"({job})", r.stdout + r.stderr)
    return job if job.isdigit() else None


def submitted(refs, cpus):
    t = time.time()
    jobs = {}
    for launcher in ("srun", "mpirun"):
        for nodes in (2, 3):
            label = f"submit --nodes {nodes} --launcher {launcher}"
            directory = subdir(f"submit_{launcher}_{nodes}")
            job = submit(directory, ["--nodes", str(nodes), "--ranks_per_node", "1",
                                     "--threads_per_rank", "1", "--time", "00:05:00",
                                     "--launcher", launcher, "--job_name", "lc", "--",
                                     *tool_args("lightcurve", "lightcurve.h5")], label)
            if job:
                jobs[job] = (label, directory, nodes)
    for job, state in wait_jobs(list(jobs)).items():
        label, directory, nodes = jobs[job]
        out = glob.glob(os.path.join(directory, "lc-*.out"))
        text = open(out[0]).read() if out else ""
        ctx.check(state.get("JobState") == "COMPLETED" and state.get("ExitCode") == "0:0",
                  f"{label}: job {job} completes on {state.get('NodeList')}", f"{state}\n{text[-3000:]}")
        compare_tool(label, "lightcurve", directory, refs, "lightcurve.h5")
        logged = geometry_lines(text)
        ctx.check(len(logged) == nodes and all(r == 1 and u == 1 and a <= cpus[n]
                                               for n, (r, u, a) in logged.items()),
                  f"{label}: {nodes} nodes, each 1 rank x 1 thread within its cpuset ({logged})",
                  text[-2000:])
    phase("submit --nodes 2|3, srun|mpirun", t)


def refused():
    before = slurm(["squeue", "-h", "-o", "%i"]).stdout
    r = slurm([ctx.binflow, "submit", "--scheduler", "slurm", "--nodes", "3", "--ranks_per_node",
               "1", "--threads_per_rank", "2", "--", *tool_args("lightcurve", "never.h5")])
    ctx.check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "sinfo" in r.stderr
              and r.stdout == "",
              "submit refuses 1 rank x 2 threads where the smallest node has 1 core (exit 2, one line: "
              f"{r.stderr.strip()})", f"exit {r.returncode}\n{r.stdout}{r.stderr}")
    ctx.check(slurm(["squeue", "-h", "-o", "%i"]).stdout == before, "and submits nothing")


def requeued(refs):
    t = time.time()
    directory = subdir("requeue")
    job = submit(directory, ["--nodes", "3", "--ranks_per_node", "1", "--threads_per_rank", "1",
                             "--time", "00:05:00", "--", *LONG, "--outfile", "long.h5",
                             "--logfile", "long.log"], "three-node job to requeue")
    if not job:
        return
    ckpt = os.path.join(directory, "long.h5.ckpt")
    start = time.time()
    while time.time() - start < 60:
        if os.path.exists(ckpt) and os.path.getsize(ckpt) > 8000:
            break
        time.sleep(0.05)
    r = slurm(["scancel", "--batch", "--signal=TERM", job])
    ctx.check(r.returncode == 0, f"scancel --batch --signal=TERM {job} mid-run", r.stderr)
    state = wait_jobs([job], limit=120)[job]
    out = glob.glob(os.path.join(directory, "binflow-synthetic-*.out"))
    text = open(out[0]).read() if out else ""
    restarts = int(state.get("Restarts", "0") or 0)
    ctx.check(state.get("JobState") == "COMPLETED" and restarts >= 1 and "exit status 75" in text
              and f"requeueing job {job}" in text and re.search(r"\[run\] resumed \d+ of 600", text),
              f"three-node job: checkpointed (75), requeued ({restarts}), resumed and completed",
              f"{state}\n{text[-3000:]}")
    ctx.check(len(geometry_lines(text)) == 3, "three-node job: the log names three nodes",
              text[-2000:])
    path = os.path.join(directory, "long.h5")
    if ctx.check(os.path.exists(path), "three-node job: final output written"):
        same, why = identical(read_group(path), refs["long"][0])
        ctx.check(same, "three-node job: /results bit-identical to the uninterrupted run", why)
        ctx.check(comparable_log(os.path.join(directory, "long.log")) == refs["long"][1],
                  "three-node job: the log reads as the uninterrupted one")
    phase("requeue of a three-node job", t)


def torn_down(holders, cgroup):
    ctx.check(not os.path.exists(cdir) and not (cgroup and os.path.exists(cgroup)),
              f"tear-down removes {cdir} and the nodes' cpusets ({cgroup})")
    ctx.check(all(gone(p) for p in holders), f"tear-down stops every namespace holder ({holders})")


cluster("down")  # a cluster left by a run that was killed would otherwise be reused
up = cluster("up")
print(up.stdout.strip(), flush=True)
if up.returncode == 77:
    print(up.stderr.strip())
    sys.exit(77)
holders, cgroup = [], None
try:
    if ctx.check(up.returncode == 0, "the three-node cluster comes up (scripts/cluster-local.sh up)",
                 up.stderr):
        phase("cluster up", t_begin)
        exports = cluster("env").stdout
        env.update(re.findall(r"(\w+)=(\S+)", exports))
        for path in glob.glob(os.path.join(cdir, "nodes", "*.pid")) + [os.path.join(cdir, "switch.pid")]:
            holders.append(int(open(path).read()))
        cgroup = open(os.path.join(cdir, "cgroup")).read().strip()
        refs = references()
        budgets = placement()
        if budgets:
            tools("mpirun", lambda args, d: mpirun(args, cwd=d), refs, budgets)
            node_loss(refs)
            t = time.time()
            r = cluster("slurm-start")
            print(r.stdout.strip(), flush=True)
            if ctx.check(r.returncode == 0, "Slurm on the cluster: slurmctld in node1, a slurmd per node",
                         r.stdout + r.stderr):
                phase("Slurm up", t)
                srun_tools(refs, budgets)
                refused()
                submitted(refs, node_cpus())
                requeued(refs)
finally:
    t = time.time()
    r = cluster("down")
    print(r.stdout.strip(), flush=True)
    ctx.check(r.returncode == 0, "the cluster comes down (scripts/cluster-local.sh down)", r.stderr)
    torn_down(holders, cgroup)
    phase("cluster down", t)
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f"; total {time.time() - t_begin:.1f} s", flush=True)
ctx.finish()
