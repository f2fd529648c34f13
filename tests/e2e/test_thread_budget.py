#!/usr/bin/env python3
"""End-to-end check of the thread budget: `binflow info --json` in each launch mode.

The guarantee under test (docs: DESIGN.md, "Thread budget"): in every launch mode the
threads of a node never exceed its cores unless the user asks for more, and every
launch variable or request above a rank's share is capped with a warning that says why.
Each check prints one line; the exit status is the number of failed checks (capped).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

# Launch variables of the host that would change what each mode expects.
SCRUBBED_PREFIXES = ("OMP_", "SLURM_", "SRUN_", "PBS_")
SCRUBBED_NAMES = {
    "NCPUS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    # The CI script may allow oversubscription or change binding for every test; the
    # modes here state their own.
    "OMPI_MCA_rmaps_base_oversubscribe", "OMPI_MCA_hwloc_base_binding_policy",
    "OMPI_MCA_rmaps_base_mapping_policy",
}


def physical_cores(cpus):
    """Cores (package, core id) behind a set of logical CPUs, from sysfs."""
    cores = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{base}/physical_package_id") as package, open(f"{base}/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return len(cores)


def parse_cpuset(text):
    """hwloc list format ("0-3,8") to a set of CPU numbers."""
    cpus = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


class Checks:
    def __init__(self, args):
        # The runs start in the work directory, so relative paths must not change meaning.
        self.binflow = os.path.abspath(args.binflow)
        self.mpiexec = shutil.which(args.mpiexec) or os.path.abspath(args.mpiexec)
        self.workdir = os.path.abspath(args.workdir)
        self.failures = 0
        self.affinity = sorted(os.sched_getaffinity(0))
        self.cores = physical_cores(self.affinity)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(SCRUBBED_PREFIXES) and k not in SCRUBBED_NAMES}
        if os.geteuid() == 0:
            self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
            self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

    def check(self, mode, condition, what):
        print(f"{'ok  ' if condition else 'FAIL'} [{mode}] {what}", flush=True)
        if not condition:
            self.failures += 1

    def run(self, mode, command, extra_env=None):
        """Runs `command`; returns (exit status, stdout, stderr) and keeps a log."""
        env = dict(self.env, **(extra_env or {}))
        proc = subprocess.run(command, cwd=self.workdir, env=env, capture_output=True,
                              text=True, timeout=300)
        log = os.path.join(self.workdir, mode.replace(" ", "_").replace("/", "_") + ".log")
        with open(log, "w") as out:
            out.write(f"$ {' '.join(command)}\nenv: {extra_env or {}}\nexit {proc.returncode}\n")
            out.write(f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
        return proc.returncode, proc.stdout, proc.stderr

    def info(self, mode, launcher=(), args=(), extra_env=None):
        """`binflow info --json` under `launcher`; the parsed document or None."""
        command = [*launcher, self.binflow, "info", "--json", *args]
        status, stdout, stderr = self.run(mode, command, extra_env)
        self.check(mode, status == 0, f"exit status 0 (got {status}: {stderr.strip()[-300:]})")
        try:
            doc = json.loads(stdout)
        except json.JSONDecodeError as err:
            self.check(mode, False, f"stdout is one JSON document ({err}): {stdout[:300]!r}")
            return None
        self.check(mode, {"ranks", "nodes", "warnings"} <= doc.keys(),
                   "document has ranks, nodes and warnings")
        return doc

    def mpirun(self, ranks, *flags):
        return [self.mpiexec, "-n", str(ranks), *flags]

    def warned(self, doc, word):
        return any(word in line for line in doc["warnings"])

    # ---------------------------------------------------------------------------------

    def singleton(self):
        mode = "singleton"
        doc = self.info(mode)
        if not doc:
            return
        (rank,) = doc["ranks"]
        self.check(mode, rank["threads"] == self.cores,
                   f"threads {rank['threads']} == cores in the affinity {self.cores}")
        self.check(mode, parse_cpuset(rank["cpuset"]) == set(self.affinity),
                   f"cpuset {rank['cpuset']} == affinity {self.affinity}")
        self.check(mode, rank["cpuset_cores"] == self.cores, "cpuset_cores == cores")
        self.check(mode, doc["warnings"] == [], f"no warnings ({doc['warnings']})")

    def mpirun_default_binding(self):
        mode = "mpirun -n 2"
        if self.cores < 2:
            print(f"skip [{mode}] needs 2 cores")
            return
        doc = self.info(mode, self.mpirun(2))
        if not doc:
            return
        threads = [r["threads"] for r in doc["ranks"]]
        self.check(mode, threads == [1, 1], f"each rank 1 thread ({threads})")
        sets = [parse_cpuset(r["cpuset"]) for r in doc["ranks"]]
        self.check(mode, len(sets) == 2 and not sets[0] & sets[1],
                   f"cpusets disjoint ({[r['cpuset'] for r in doc['ranks']]})")

    def mpirun_unbound(self):
        mode = "mpirun -n 2 --bind-to none"
        if self.cores < 2:
            print(f"skip [{mode}] needs 2 cores")
            return
        doc = self.info(mode, self.mpirun(2, "--bind-to", "none"))
        if not doc:
            return
        total = sum(r["threads"] for r in doc["ranks"])
        self.check(mode, total == self.cores, f"sum of threads {total} == cores {self.cores}")
        node = doc["nodes"][0]
        self.check(mode, node["threads"] == total and node["cores_available"] == self.cores,
                   f"node line {node}")

    def mpirun_oversubscribed(self):
        mode = "mpirun -n 4 --oversubscribe"
        doc = self.info(mode, self.mpirun(4, "--oversubscribe"))
        if not doc:
            return
        threads = [r["threads"] for r in doc["ranks"]]
        expected = 4 > self.cores
        self.check(mode, len(threads) == 4 and (not expected or threads == [1] * 4),
                   f"each rank 1 thread when ranks exceed cores ({threads})")
        self.check(mode, self.warned(doc, "oversubscribed") == expected,
                   f"oversubscription warning {'present' if expected else 'absent'} "
                   f"({doc['warnings']})")

    def omp_num_threads_above_cores(self):
        asked = max(8, self.cores + 1)
        mode = f"OMP_NUM_THREADS={asked}"
        doc = self.info(mode, extra_env={"OMP_NUM_THREADS": str(asked)})
        if not doc:
            return
        threads = doc["ranks"][0]["threads"]
        self.check(mode, threads == self.cores, f"threads {threads} == cores {self.cores}")
        self.check(mode, self.warned(doc, "OMP_NUM_THREADS"),
                   f"a warning names OMP_NUM_THREADS ({doc['warnings']})")

    def omp_num_threads_malformed(self):
        mode = "OMP_NUM_THREADS=abc"
        status, stdout, stderr = self.run(mode, [self.binflow, "info", "--json"],
                                          {"OMP_NUM_THREADS": "abc"})
        self.check(mode, status == 2, f"usage exit status 2 (got {status})")
        self.check(mode, "OMP_NUM_THREADS" in stdout + stderr, "the error names the variable")

    def taskset(self):
        cpu = self.affinity[0]
        mode = f"taskset -c {cpu}"
        taskset = shutil.which("taskset")
        if taskset is None:
            print(f"skip [{mode}] no taskset")
            return
        doc = self.info(mode, [taskset, "-c", str(cpu)])
        if not doc:
            return
        rank = doc["ranks"][0]
        self.check(mode, rank["threads"] == 1, f"threads {rank['threads']} == 1")
        self.check(mode, rank["cpuset"] == str(cpu), f"cpuset {rank['cpuset']!r} == {str(cpu)!r}")

    def slurm_cpus_per_task(self):
        mode = "SLURM_CPUS_PER_TASK=1"
        doc = self.info(mode, extra_env={"SLURM_CPUS_PER_TASK": "1"})
        if doc:
            threads = doc["ranks"][0]["threads"]
            self.check(mode, threads == 1, f"threads {threads} == 1")

    def nthreads(self):
        doc = self.info("--nthreads 1", args=["--nthreads", "1"])
        if doc:
            threads = doc["ranks"][0]["threads"]
            self.check("--nthreads 1", threads == 1, f"threads {threads} == 1")

        asked = self.cores + 1
        mode = f"--nthreads {asked}"
        doc = self.info(mode, args=["--nthreads", str(asked)])
        if doc:
            threads = doc["ranks"][0]["threads"]
            self.check(mode, threads == self.cores, f"threads {threads} capped at {self.cores}")
            self.check(mode, self.warned(doc, "nthreads"), f"a warning names nthreads ({doc['warnings']})")

        mode = f"--nthreads {asked} --oversubscribe"
        doc = self.info(mode, args=["--nthreads", str(asked), "--oversubscribe"])
        if doc:
            threads = doc["ranks"][0]["threads"]
            self.check(mode, threads == asked, f"threads {threads} == {asked}")
            self.check(mode, self.warned(doc, "oversubscribed"),
                       f"an oversubscription warning ({doc['warnings']})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binflow", required=True, help="path of the binflow executable")
    parser.add_argument("--mpiexec", required=True, help="path of mpiexec/mpirun")
    parser.add_argument("--workdir", required=True, help="directory for the logs of each run")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    checks = Checks(args)
    print(f"affinity {checks.affinity}, {checks.cores} cores", flush=True)
    for step in (checks.singleton, checks.mpirun_default_binding, checks.mpirun_unbound,
                 checks.mpirun_oversubscribed, checks.omp_num_threads_above_cores,
                 checks.omp_num_threads_malformed, checks.taskset, checks.slurm_cpus_per_task,
                 checks.nthreads):
        try:
            step()
        except (OSError, subprocess.TimeoutExpired, KeyError, IndexError, ValueError) as err:
            checks.check(step.__name__, False, f"raised {type(err).__name__}: {err}")
    print(f"{checks.failures} failed check(s); logs in {args.workdir}")
    return min(checks.failures, 100)


if __name__ == "__main__":
    sys.exit(main())
