#!/usr/bin/python3
"""The job scripts and `binflow submit` without a batch system: every script in jobscripts/
is valid bash, opens with its geometry and has directives its scheduler accepts (checked
against each scheduler's documented options: PBS and LSF cannot be installed here);
`binflow submit --dry_run` writes the right directives for Slurm, PBS and LSF, refuses a
geometry the nodes cannot hold (exit 2, one line) and bad values; submission goes through
stand-in qsub/bsub programs that record what they got; jobscripts/local/run.sh runs,
refuses oversubscription, and checkpoints on SIGTERM like a batch job."""
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

from e2e_common import Context, identical, read_group

ctx = Context()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
jobscripts = os.path.join(root, "jobscripts")
scripts = sorted(p for p in glob.glob(os.path.join(jobscripts, "**", "*"), recursive=True)
                 if os.path.isfile(p) and not p.endswith(".txt"))
ctx.check(len(scripts) >= 13, f"{len(scripts)} job scripts found", scripts)


def bash_n(path):
    r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    return r.returncode == 0, r.stderr


# --- every script: bash syntax, the geometry comment, the conventions -------------------
for path in scripts:
    name = os.path.relpath(path, jobscripts)
    ok, err = bash_n(path)
    ctx.check(ok, f"{name}: bash -n", err)
    text = open(path).read()
    if name.endswith("site-profile.sh"):
        continue
    opening = "".join(text.splitlines(True)[1:5])
    ctx.check(text.startswith("#!/bin/bash\n") and re.search(r"\bx\b.*thread", opening, re.S)
              and "rank" in opening,
              f"{name}: opens with a comment on its ranks x threads geometry", opening)
    ctx.check("OMP_PLACES=cores" in text and "OMP_PROC_BIND=close" in text,
              f"{name}: explicit OpenMP binding")
    ctx.check("kill -USR1" in text, f"{name}: passes the checkpoint signal on as SIGUSR1")
    if name.startswith("slurm/"):
        ctx.check("SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK" in text and "--cpu-bind=cores" in text
                  and "--signal=B:TERM@" in text and "scontrol requeue" in text
                  and "site-profile.sh" in text and "resume=yes" in text,
                  f"{name}: SRUN_CPUS_PER_TASK, --cpu-bind=cores, --signal=B:TERM@, requeue, "
                  "resume, site profile")


# --- directives, parsed as each scheduler reads them ---------------------------------------
SLURM_OPTIONS = {
    "job-name": r"\S+", "nodes": r"\d+", "ntasks-per-node": r"\d+", "cpus-per-task": r"\d+",
    "time": r"(\d+-)?\d+:\d\d:\d\d|\d+", "signal": r"B:(TERM|USR1)@\d+", "requeue": None,
    "open-mode": r"append|truncate", "output": r"\S+", "array": r"\d+(-\d+)?(%\d+)?",
    "mem-per-cpu": r"\d+[KMGT]?", "partition": r"\S+", "account": r"\S+", "chdir": r"/\S*",
}


def directives(text, prefix):
    """The directive lines before the first command, as shlex words."""
    out = []
    for line in text.splitlines()[1:]:
        if line.startswith(prefix + " "):
            out.append(shlex.split(line[len(prefix) + 1:]))
        elif line.strip() and not line.startswith("#"):
            break
    return out


def parse_slurm(text):
    opts, bad = {}, []
    for words in directives(text, "#SBATCH"):
        for w in words:
            m = re.fullmatch(r"--([a-z-]+)(?:=(.*))?", w)
            pattern = SLURM_OPTIONS.get(m.group(1), "?") if m else "?"
            if not m or pattern == "?" or (pattern and not re.fullmatch(pattern, m.group(2) or "")):
                bad.append(w)
            else:
                opts[m.group(1)] = m.group(2)
    return opts, bad


PBS_RESOURCES = {"select": r"\d+(:\w+=\w+)+", "place": r"(scatter|pack|free)(:excl)?",
                 "walltime": r"\d+:\d\d:\d\d", "nodes": r"\d+:ppn=\d+"}


def parse_pbs(text):
    opts, bad = {}, []
    for words in directives(text, "#PBS"):
        flag, value = words[0], words[1] if len(words) > 1 else None
        if flag == "-l":
            key, _, v = value.partition("=")
            if key not in PBS_RESOURCES or not re.fullmatch(PBS_RESOURCES[key], v):
                bad.append(value)
            opts[key] = v
        elif flag in ("-N", "-q", "-A", "-o") and value:
            opts[flag] = value
        elif flag == "-j" and value in ("oe", "eo"):
            opts[flag] = value
        elif flag == "-r" and value in ("y", "n"):
            opts[flag] = value
        else:
            bad.append(" ".join(words))
    return opts, bad


LSF_OPTIONS = {"-J": r"\S+", "-n": r"\d+", "-R": r".+", "-W": r"(\d+:)?\d+", "-q": r"\S+",
               "-P": r"\S+", "-o": r"\S+", "-cwd": r"\S+", "-wa": r"USR1|TERM|URG",
               "-wt": r"(\d+:)?\d+", "-Q": r"[\d ]+"}


def parse_lsf(text):
    opts, bad = {}, []
    for words in directives(text, "#BSUB"):
        flag, value = words[0], " ".join(words[1:])
        if flag not in LSF_OPTIONS or not re.fullmatch(LSF_OPTIONS[flag], value):
            bad.append(" ".join(words))
        opts[flag] = value
    r = opts.get("-R", "")
    if r and not re.fullmatch(r"(rusage\[mem=\d+MB\] )?span\[ptile=\d+\] affinity\[core\(\d+\)(:distribute=pack)?\]", r):
        bad.append(r)
    return opts, bad


def body_geometry(text):
    m = re.search(r"NODES=(\d+) RANKS_PER_NODE=(\d+) THREADS_PER_RANK=(\d+)", text)
    return tuple(int(x) for x in m.groups()) if m else None


def opening_geometry(text):
    """(nodes, ranks per node, threads per rank) as the opening comment states them."""
    head = " ".join(l.lstrip("# ") for l in text.splitlines()[1:5])
    m = re.search(r"(\d+) nodes? x (\d+) (?:MPI )?ranks(?: per node)? x (\d+) threads? per rank", head)
    if m:
        return tuple(int(x) for x in m.groups())
    m = re.search(r"(\d+) chunks? \(nodes?\) x (\d+) MPI ranks x (\d+) threads? per rank", head)
    if m:
        return tuple(int(x) for x in m.groups())
    return None


for path in scripts:
    name = os.path.relpath(path, jobscripts)
    text = open(path).read()
    if name.startswith("slurm/") and name.endswith(".sbatch"):
        opts, bad = parse_slurm(text)
        ctx.check(not bad, f"{name}: every #SBATCH directive is a valid sbatch option", bad)
        asked = (int(opts["nodes"]), int(opts["ntasks-per-node"]), int(opts["cpus-per-task"]))
        if "array" not in name:
            ctx.check(opening_geometry(text) == asked,
                      f"{name}: directives {asked} match the opening comment", opening_geometry(text))
        cores = re.search(r"(\d+) cores", " ".join(text.splitlines()[1:5]))
        ctx.check(cores and asked[1] * asked[2] <= int(cores.group(1)),
                  f"{name}: ranks per node x threads per rank fits the stated cores per node")
    elif name.startswith("pbs/"):
        opts, bad = parse_pbs(text)
        ctx.check(not bad, f"{name}: every #PBS directive is valid PBS Pro/Torque syntax", bad)
        nodes, rpn, tpr = body_geometry(text)
        if "select" in opts:
            sel = dict(kv.split("=") for kv in opts["select"].split(":")[1:])
            ok = (int(opts["select"].split(":")[0]) == nodes and int(sel["mpiprocs"]) == rpn
                  and int(sel["ompthreads"]) == tpr and int(sel["ncpus"]) == rpn * tpr)
            ctx.check(ok, f"{name}: select={opts['select']} is {nodes} nodes x {rpn} ranks x {tpr} "
                      "threads, ncpus = mpiprocs x ompthreads")
        else:
            n, ppn = re.fullmatch(r"(\d+):ppn=(\d+)", opts["nodes"]).groups()
            ctx.check(int(n) == nodes and int(ppn) == rpn * tpr,
                      f"{name}: Torque nodes={opts['nodes']} is {nodes} nodes x {rpn} x {tpr}")
        ctx.check(opening_geometry(text) == (nodes, rpn, tpr), f"{name}: opening comment matches",
                  opening_geometry(text))
    elif name.startswith("lsf/"):
        opts, bad = parse_lsf(text)
        ctx.check(not bad, f"{name}: every #BSUB directive is valid bsub syntax", bad)
        nodes, rpn, tpr = body_geometry(text)
        ptile = int(re.search(r"ptile=(\d+)", opts["-R"]).group(1))
        core = int(re.search(r"core\((\d+)\)", opts["-R"]).group(1))
        ctx.check(int(opts["-n"]) == nodes * rpn and ptile == rpn and core == tpr
                  and opts.get("-Q") == "75" and opts.get("-wa") == "USR1",
                  f"{name}: -n {opts['-n']}, span[ptile={ptile}], affinity[core({core})] match "
                  f"{nodes} nodes x {rpn} ranks x {tpr} threads; -Q 75, -wa USR1")


# --- binflow submit --dry_run ---------------------------------------------------------------
common = ["--nodes", "2", "--ranks_per_node", "4", "--threads_per_rank", "2", "--cores_per_node",
          "8", "--time", "02:00:00", "--mem_per_cpu", "2G", "--partition", "short",
          "--account", "astro"]
tool = ["lightcurve", "--inobs", "obs.h5", "--tbins", "48", "--outfile", "lc crab's.h5"]


def dry(scheduler, extra=(), command=tool):
    """A dry run with `common`, whose values `extra` replaces."""
    given = dict(zip(common[::2], common[1::2]))
    given.update(dict(zip(extra[::2], extra[1::2])))
    args = [w for pair in given.items() for w in pair]
    return ctx.run(["submit", "--dry_run", "--scheduler", scheduler, *args, "--", *command])


outputs = {}
for scheduler in ("slurm", "pbs", "lsf"):
    r = dry(scheduler)
    ok = ctx.check(r.returncode == 0 and r.stdout.startswith("#!/bin/bash"),
                   f"submit --dry_run --scheduler {scheduler} prints a script", r.stderr)
    outputs[scheduler] = r.stdout
    path = ctx.path(f"dry.{scheduler}")
    with open(path, "w") as f:
        f.write(r.stdout)
    good, err = bash_n(path)
    ctx.check(good, f"{scheduler}: the generated script passes bash -n", err)
    # The command line survives quoting: bash reads back exactly the words given.
    words = subprocess.run(["bash", "-c", f"eval \"$(grep '^cmd=' {shlex.quote(path)})\"; "
                            "printf '%s\\n' \"${cmd[@]:1}\""], capture_output=True, text=True).stdout
    ctx.check(words.splitlines() == tool, f"{scheduler}: the job's command line is the one given",
              words)
    ctx.check("OMP_NUM_THREADS=2 OMP_PLACES=cores OMP_PROC_BIND=close" in r.stdout,
              f"{scheduler}: OMP_NUM_THREADS=2 with explicit binding")
    ctx.check(f"cd {ctx.workdir}" in r.stdout or f"cd '{ctx.workdir}'" in r.stdout,
              f"{scheduler}: the job runs in the directory submit ran in")
    ctx.check(opening_geometry(r.stdout) == (2, 4, 2), f"{scheduler}: opening comment states 2 x 4 x 2",
              r.stdout[:600])

slurm, bad = parse_slurm(outputs["slurm"])
ctx.check(not bad and slurm.get("nodes") == "2" and slurm.get("ntasks-per-node") == "4"
          and slurm.get("cpus-per-task") == "2" and slurm.get("time") == "02:00:00"
          and slurm.get("mem-per-cpu") == "2048M" and slurm.get("partition") == "short"
          and slurm.get("account") == "astro" and slurm.get("signal") == "B:TERM@600"
          and "requeue" in slurm and slurm.get("chdir") == ctx.workdir,
          "slurm: --nodes=2 --ntasks-per-node=4 --cpus-per-task=2 --time --mem-per-cpu=2048M "
          "--partition --account --signal=B:TERM@600 --requeue --chdir", (slurm, bad))
ctx.check("export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK" in outputs["slurm"]
          and 'srun --mpi="${BINFLOW_SRUN_MPI:-pmix}" --cpu-bind=cores' in outputs["slurm"]
          and 'scontrol requeue "$SLURM_JOB_ID"' in outputs["slurm"],
          "slurm: SRUN_CPUS_PER_TASK exported, srun --mpi=pmix --cpu-bind=cores, self-requeue")

pbs, bad = parse_pbs(outputs["pbs"])
ctx.check(not bad and pbs.get("select") == "2:ncpus=8:mpiprocs=4:ompthreads=2:mem=16384mb"
          and pbs.get("walltime") == "02:00:00" and pbs.get("-q") == "short"
          and pbs.get("-A") == "astro" and pbs.get("-r") == "y",
          "pbs: select=2:ncpus=8:mpiprocs=4:ompthreads=2 (mem per chunk), walltime, queue, "
          "account, rerunnable", (pbs, bad))
ctx.check("-n 8 --hostfile \"$PBS_NODEFILE\" --map-by ppr:4:node:PE=2 --bind-to core" in outputs["pbs"]
          and "( sleep 6600 && kill -USR1 $$ ) &" in outputs["pbs"]
          and "qsub -v BINFLOW_RESTART_COUNT" in outputs["pbs"],
          "pbs: mpirun 8 ranks, 4 per node on 2 cores each; a timer 600 s before the wall "
          "time; resubmission on 75")

lsf, bad = parse_lsf(outputs["lsf"])
ctx.check(not bad and lsf.get("-n") == "8"
          and lsf.get("-R") == "rusage[mem=4096MB] span[ptile=4] affinity[core(2):distribute=pack]"
          and lsf.get("-W") == "2:00" and lsf.get("-q") == "short" and lsf.get("-P") == "astro"
          and lsf.get("-wa") == "USR1" and lsf.get("-wt") == "10" and lsf.get("-Q") == "75",
          "lsf: -n 8, span[ptile=4], affinity[core(2)], rusage per task, -W 2:00, -wa USR1 "
          "-wt 10, -Q 75", (lsf, bad))

# Days, minutes, the automatic lead time, and a tool with nothing to resume.
r = dry("slurm", ["--time", "1-12:00:00"])
ctx.check("#SBATCH --time=1-12:00:00" in r.stdout and "B:TERM@600" in r.stdout, "slurm: D-HH:MM:SS")
r = dry("pbs", ["--time", "1-12:00:00"])
ctx.check("walltime=36:00:00" in r.stdout, "pbs: 1-12:00:00 is walltime=36:00:00")
r = dry("lsf", ["--time", "90"])
ctx.check("#BSUB -W 1:30" in r.stdout and "#BSUB -wt 9" in r.stdout,
          "lsf: 90 minutes is -W 1:30, warning 9 minutes before")
r = dry("slurm", command=["info"])
ctx.check(r.returncode == 0 and "--signal" not in r.stdout and "--requeue" not in r.stdout
          and "resume=yes" not in r.stdout,
          "a tool without an outfile gets no signal, requeue or resume", r.stdout + r.stderr)

# --- refusals: one line, exit 2 -----------------------------------------------------------


def refused(args, what, needle):
    r = ctx.run(["submit", "--dry_run", *args])
    lines = r.stderr.strip().splitlines()
    ctx.check(r.returncode == 2 and len(lines) == 1 and needle in r.stderr and r.stdout == "",
              f"refused: {what} (exit 2, one line naming {needle})",
              f"exit {r.returncode}\n{r.stdout}{r.stderr}")


for scheduler in ("slurm", "pbs", "lsf"):
    refused(["--scheduler", scheduler, "--cores_per_node", "8", "--ranks_per_node", "4",
             "--threads_per_rank", "4", "--", "info"],
            f"{scheduler}: 4 ranks x 4 threads on 8-core nodes", "cores_per_node")
info = json.loads(ctx.run(["info", "--json"]).stdout)
here = info["nodes"][0]["cores_available"]
refused(["--scheduler", "pbs", "--ranks_per_node", str(here + 1), "--", "info"],
        f"{here + 1} ranks on this {here}-core machine when cores_per_node is not given", "this machine")
refused(["--time", "2h", "--", "info"], "time 2h", "time")
refused(["--time", "00:61:00", "--", "info"], "time 00:61:00", "time")
refused(["--mem_per_cpu", "lots", "--", "info"], "mem_per_cpu lots", "mem_per_cpu")
refused(["--nodes", "1"], "no command after --", "--")
refused(["--", "nosuchtool"], "an unknown tool", "nosuchtool")
refused(["--", "lightcurve", "--inobs", "obs.h5", "--tbins", "many"], "a bad tool parameter", "tbins")
refused(["--", "lightcurve", "--inobs", "obs.h5", "--outfile", "lc.h5", "resume=yes"],
        "resume in the command (the script adds it)", "resume")
refused(["--time", "00:05:00", "--signal_lead", "300", "--", "info"], "signal_lead >= time", "signal_lead")
refused(["--scheduler", "pbs", "--launcher", "srun", "--", "info"], "srun under PBS", "launcher")
refused(["--", "submit", "--", "info"], "submit inside a job", "submit")

# --- submission through stand-in schedulers ----------------------------------------------------
fake = ctx.path("fakebin")
os.makedirs(fake)
with open(os.path.join(fake, "qsub"), "w") as f:
    f.write("#!/bin/sh\necho \"$@\" > qsub.args\nenv > qsub.env\necho 4242.pbs-server\n")
with open(os.path.join(fake, "bsub"), "w") as f:
    f.write("#!/bin/sh\necho \"$@\" > bsub.args\ncat > bsub.stdin\n"
            "echo 'Job <5757> is submitted to queue <normal>.'\n")
for name in ("qsub", "bsub"):
    os.chmod(os.path.join(fake, name), 0o755)
path_env = {"PATH": fake + os.pathsep + ctx.env.get("PATH", "/usr/bin:/bin")}
r = ctx.run(["submit", "--scheduler", "pbs", *common, "--", *tool], env=path_env)
lines = r.stdout.strip().splitlines()
script = ctx.path("binflow-lightcurve.pbs")
ctx.check(r.returncode == 0 and lines and lines[-1] == "4242.pbs-server"
          and open(ctx.path("qsub.args")).read().strip() == script and os.path.exists(script),
          "pbs: the script is written, qsub gets it, and the last line is the job id",
          r.stdout + r.stderr)
leaked = [l for l in open(ctx.path("qsub.env")).read().splitlines()
          if re.match(r"(PMIX_|OMPI_MCA_ess|OMPI_COMMAND|OMP_NUM_THREADS=)", l)]
ctx.check(not leaked, "the job's environment carries no MPI singleton state or thread budget "
          "of the submitting process", leaked)
r = ctx.run(["submit", "--scheduler", "lsf", *common, "--script", "lc.lsf", "--", *tool], env=path_env)
lines = r.stdout.strip().splitlines()
ctx.check(r.returncode == 0 and lines and lines[-1] == "5757"
          and open(ctx.path("bsub.stdin")).read() == open(ctx.path("lc.lsf")).read(),
          "lsf: bsub reads the script on standard input; the last line is the job id 5757",
          r.stdout + r.stderr)
if shutil.which("bsub") is None:
    r = ctx.run(["submit", "--scheduler", "lsf", *common, "--", *tool])
    ctx.check(r.returncode == 2 and "bsub is not on the PATH" in r.stderr,
              "without bsub: exit 2 saying so", r.stderr)

# --- jobscripts/local/run.sh ------------------------------------------------------------------
run_sh = os.path.join(jobscripts, "local", "run.sh")
env = dict(ctx.env, BINFLOW=ctx.binflow)


def local(args, **kw):
    return subprocess.run([run_sh, *args], env=env, cwd=ctx.workdir, capture_output=True,
                          text=True, timeout=300, **kw)


synthetic = ["synthetic", "--bins", "300", "--cost_ms", "10", "--seed", "4"]
r = ctx.run(synthetic + ["--outfile", "ref.h5", "--chatter", "0"], ranks=2)
reference = read_group(ctx.path("ref.h5"))
r = local(["-n", "2", "--", *synthetic, "--outfile", "local.h5"])
ctx.check(r.returncode == 0 and "2 ranks x 1 threads" in r.stdout, "local/run.sh -n 2 runs",
          r.stdout[-1500:] + r.stderr)
if os.path.exists(ctx.path("local.h5")):
    same, why = identical(read_group(ctx.path("local.h5")), reference)
    ctx.check(same, "local/run.sh: /results identical to mpirun -n 2", why)
if here >= 2:
    r = local(["-n", "1", "-t", "2", "--", "info"])
    ctx.check(r.returncode == 0 and "1 rank x 2 threads = 2 cores used" in r.stdout,
              "local/run.sh -n 1 -t 2: one rank bound to 2 cores runs 2 threads "
              "(OMP_PROC_BIND/OMP_PLACES set)", r.stdout + r.stderr)
r = local(["-t", str(here + 1), "--", "info"])
ctx.check(r.returncode == 2 and "more than" in r.stderr, "local/run.sh refuses more threads than cores",
          r.stdout + r.stderr)

# SIGTERM to the launcher script: checkpoint, exit 75, resume gives the same results.
out = ctx.path("local_int.h5")
long = ["synthetic", "--bins", "400", "--cost_ms", "20", "--seed", "4"]
proc = subprocess.Popen([run_sh, "-n", "2", "--", *long, "--outfile", out], env=env,
                        cwd=ctx.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
start = time.time()
while time.time() - start < 60 and not (os.path.exists(out + ".ckpt")
                                          and os.path.getsize(out + ".ckpt") > 10000):
    time.sleep(0.05)
proc.send_signal(signal.SIGTERM)
stdout, stderr = proc.communicate(timeout=60)
ctx.check(proc.returncode == 75 and os.path.exists(out + ".ckpt") and not os.path.exists(out),
          "local/run.sh: SIGTERM checkpoints, exit status 75", f"{proc.returncode}\n{stderr[-1500:]}")
r = local(["-n", "2", "--", *long, "--outfile", out, "resume=yes"])
ctx.check(r.returncode == 0 and re.search(r"\[run\] resumed [1-9]\d* of 400 bins", r.stdout),
          "local/run.sh: resume=yes finishes the run", r.stdout[-1500:] + r.stderr)
r2 = ctx.run(long + ["--outfile", "local_ref.h5", "--chatter", "0"], ranks=2)
if os.path.exists(out):
    same, why = identical(read_group(out), read_group(ctx.path("local_ref.h5")))
    ctx.check(same, "local/run.sh: interrupted and resumed /results identical to an uninterrupted run", why)

# The thread budget under the binding variables every script sets.
r = ctx.run(["info", "--json"], env={"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"})
bound = json.loads(r.stdout)
ctx.check(bound["ranks"][0]["threads"] == here,
          f"OMP_PROC_BIND=close OMP_PLACES=cores: a lone rank still gets all {here} cores",
          r.stdout)
ctx.finish()
