"""Shared helpers of the end-to-end tests: run binflow (plain or under mpirun), read
HDF5 outputs, compare them, and report checks. Standard library plus h5py/numpy from
Debian (python3-h5py, python3-numpy)."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np


class Checks:
    """Named checks printed as they run; finish() exits 1 if any failed."""

    def __init__(self):
        self.failures = 0

    def check(self, condition, what, detail=""):
        print(("ok    " if condition else "FAIL  ") + what, flush=True)
        if not condition:
            self.failures += 1
            if detail:
                print("      " + str(detail).replace("\n", "\n      "), flush=True)
        return condition

    def finish(self):
        print(f"{self.failures} failed" if self.failures else "all checks passed", flush=True)
        sys.exit(1 if self.failures else 0)


class Context(Checks):
    def __init__(self):
        super().__init__()
        parser = argparse.ArgumentParser()
        parser.add_argument("--binflow", required=True)
        parser.add_argument("--mpiexec", default="mpirun")
        parser.add_argument("--workdir", required=True)
        args = parser.parse_args()
        self.binflow = os.path.abspath(args.binflow)
        self.mpiexec = args.mpiexec
        self.workdir = os.path.abspath(args.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir)
        self.env = dict(os.environ)
        if os.geteuid() == 0:
            self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
            self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        # More ranks than cores on a 2-core CI machine.
        self.env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")

    def path(self, name):
        return os.path.join(self.workdir, name)

    def command(self, args, ranks=None, mpi_flags=()):
        if ranks is None:
            return [self.binflow] + list(args)
        return [self.mpiexec, "-n", str(ranks), *mpi_flags, self.binflow] + list(args)

    def run(self, args, ranks=None, env=None, mpi_flags=(), timeout=300):
        full_env = dict(self.env)
        full_env.update(env or {})
        return subprocess.run(self.command(args, ranks, mpi_flags), env=full_env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, args, ranks=None, env=None, stdout=subprocess.PIPE):
        """The run in the background. Its stdout is a pipe nobody reads until the end unless
        `stdout` says otherwise (subprocess.DEVNULL, a file): a run printing more than the
        pipe holds (64 KiB: the result table of chatter=2) blocks there."""
        full_env = dict(self.env)
        full_env.update(env or {})
        return subprocess.Popen(self.command(args, ranks), env=full_env, cwd=self.workdir,
                                stdout=stdout, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

def build_step(ctx, what, command):
    """Runs a build or install command in the work directory; a check that it exits 0, with
    its output's tail on failure."""
    result = subprocess.run(command, env=ctx.env, cwd=ctx.workdir, capture_output=True,
                            text=True, timeout=300)
    return ctx.check(result.returncode == 0, what,
                     f"$ {' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def descendants(pid):
    """Every process below `pid` (mpirun puts each rank in a process group of its own,
    so killing mpirun's group does not reach the ranks)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def wait_for_progress(path, proc, min_bytes=4000, limit=60.0):
    """Whether `path` (a checkpoint, a log) grows beyond `min_bytes` while `proc` runs."""
    start = time.time()
    while time.time() - start < limit:
        if os.path.exists(path) and os.path.getsize(path) > min_bytes:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def gone(pid):
    """Whether `pid` has exited (no such process, or a zombie: its files and locks are
    released)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill9(proc):
    """SIGKILL to `proc` and every process below it (the ranks under mpirun); its status.
    `proc` is stopped first, so that it starts no rank after the list is taken, and the call
    returns when every one has exited (a dying rank 0 still holds the checkpoint's lock)."""
    try:
        os.kill(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    victims = [proc.pid] + descendants(proc.pid)
    for pid in reversed(victims):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and not all(gone(pid) for pid in victims):
        time.sleep(0.005)
    return proc.returncode


def skip_without_gammapy(err):
    """Exit 77 (ctest's skip) saying why, when Gammapy or its stack cannot be imported."""
    print(f"skip: gammapy is not importable with {sys.executable} ({err}); "
          "install Debian's python3-gammapy (scripts/setup.sh does)")
    sys.exit(77)


def read_group(path, group="results"):
    """Every dataset of a group as a numpy array (strings decoded)."""
    out = {}
    with h5py.File(path, "r") as f:
        for name, ds in f[group].items():
            data = ds[()]
            if data.dtype.kind == "O":
                data = np.array([x.decode() if isinstance(x, bytes) else x for x in data])
            out[name] = data
    return out


def read_attributes(path, group="results"):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f[group].attrs.items()}


def identical(a, b):
    """Bit-identical datasets (NaN equal to NaN at the same place)."""
    if a.keys() != b.keys():
        return False, f"columns differ: {sorted(a)} vs {sorted(b)}"
    for name in a:
        x, y = a[name], b[name]
        if x.shape != y.shape:
            return False, f"{name}: shapes {x.shape} vs {y.shape}"
        if x.dtype.kind == "f":
            same = np.array_equal(x.view(np.uint64), y.view(np.uint64))
        else:
            same = np.array_equal(x, y)
        if not same:
            return False, f"{name} differs"
    return True, ""


def log_without_run_lines(path):
    """The log lines that must not depend on ranks, threads or timings."""
    with open(path) as f:
        return [line for line in f if not line.strip().startswith("[run]")]


def binflow_pids(proc, binflow):
    """The binflow processes of a run started by Context.start: the process itself, or the
    ranks below mpirun, in rank order (the OMPI_COMM_WORLD_RANK of their environment)."""
    found = []
    for pid in [proc.pid] + descendants(proc.pid):
        try:
            if os.readlink(f"/proc/{pid}/exe") != os.path.realpath(binflow):
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        found.append((int(env.get(b"OMPI_COMM_WORLD_RANK", b"0")), pid))
    # A singleton's MPI start-up forks the daemon it then executes (orted): that child is
    # binflow for a moment, but no rank.
    pids = {pid for _, pid in found}
    return [pid for _, pid in sorted(found) if parent(pid) not in pids]


def parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def catches(pid, sig):
    """Whether process `pid` has a handler installed for `sig` (SigCgt in /proc/pid/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def wait_until(condition, proc, limit=60.0, step=0.002):
    """Whether `condition()` becomes true while `proc` runs (polled every `step` s)."""
    start = time.time()
    while time.time() - start < limit:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(step)
    return False


def read_journal(path):
    """A checkpoint journal as binflow reads it on resume: (fingerprint or None if the header
    is not a journal's, [(map, position)] of the records before the first torn or damaged
    one, bytes those records end at, the file's size)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = b"binflow-checkpoint 1\n"
    if not data.startswith(magic) or len(data) < len(magic) + 8:
        return None, [], 0, len(data)
    n = int.from_bytes(data[len(magic):len(magic) + 8], "little")
    offset = len(magic) + 8 + n
    if offset > len(data):
        return None, [], 0, len(data)
    fingerprint = data[len(magic) + 8:offset].decode()
    records = []
    while len(data) - offset >= 16:
        length = int.from_bytes(data[offset:offset + 8], "little")
        stored = int.from_bytes(data[offset + 8:offset + 16], "little")
        body = offset + 16
        if length > len(data) - body:
            break
        payload = data[body:body + length]
        h = 0xcbf29ce484222325
        for c in payload:
            h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        if h != stored:
            break
        m = int.from_bytes(payload[:8], "little")
        name = payload[8:8 + m].decode()
        position = int.from_bytes(payload[8 + m:16 + m], "little", signed=True)
        records.append((name, position))
        offset = body + length
    return fingerprint, records, offset, len(data)


class Tmpfs:
    """A tmpfs of `size` mounted on `path` for the block (root only: mounted is False with
    the reason otherwise); unmounted at the end whatever happened."""

    def __init__(self, path, size="64k"):
        self.path, self.size, self.mounted, self.reason = path, size, False, ""

    def __enter__(self):
        os.makedirs(self.path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", self.path],
                           capture_output=True, text=True)
        self.mounted, self.reason = r.returncode == 0, r.stderr.strip()
        return self

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], check=False)
        return False

    def fill(self, leave_bytes, name="pad"):
        """Pads the file system until about `leave_bytes` are free."""
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize
        with open(os.path.join(self.path, name), "wb") as f:
            f.write(b"\0" * max(0, free - leave_bytes))


class CreationWatch:
    """inotify on a directory: wait() returns as soon as a file whose name starts with a
    prefix is created there (polling the directory misses a write of a few milliseconds)."""

    IN_CREATE = 0x100

    def __init__(self, directory):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, directory.encode(),
                                                      self.IN_CREATE) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def wait(self, prefix, proc, limit=120.0):
        import select
        start = time.time()
        while time.time() - start < limit:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                data = os.read(self.fd, 1 << 16)
                offset = 0
                while offset + 16 <= len(data):
                    length = int.from_bytes(data[offset + 12:offset + 16], "little")
                    name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
                    offset += 16 + length
                    if name.startswith(prefix):
                        return name
            elif proc.poll() is not None:
                return None
        return None

    def close(self):
        os.close(self.fd)
