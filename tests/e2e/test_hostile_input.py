"""Hostile input (issue 9, "nothing lost, nothing hung"): every case is refused before
anything is touched. Per case: the command, the exit status, a substring of the first line
of stderr, the files that must stay byte-identical, and no new file in the work directory.
A FIFO as an input must be refused at once (a timeout of a few seconds catches a hang)."""
import hashlib
import os
import subprocess

import e2e_common

ctx = e2e_common.Context()
w = ctx.path


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def listing():
    return sorted(os.listdir(ctx.workdir))


# Fixtures: an event file, a bin file, an old log, a truncated copy, a FIFO, a directory,
# a symlink loop.
r = ctx.run(["simulate", "outfile=ev.h5", "duration=1800", "chatter=0"])
assert r.returncode == 0, r.stderr
with open(w("ev.h5"), "rb") as f:
    head = f.read(3000)
with open(w("truncated.h5"), "wb") as f:
    f.write(head)
with open(w("bins.txt"), "w") as f:
    f.write("0 900\n900 1800\n")
with open(w("ebins.txt"), "w") as f:
    f.write("0.1 1\n1 10\n")
with open(w("phbins.txt"), "w") as f:
    f.write("0 0.5\n0.5 1\n")
with open(w("profile.txt"), "w") as f:
    f.write("0 1\n1800 2\n")
with open(w("old.log"), "w") as f:
    f.write("log of an earlier run\n")
with open(w("old.h5.ckpt"), "wb") as f:  # the journal of an interrupted run
    f.write(b"journal of an earlier run")
os.mkfifo(w("fifo"))
os.mkdir(w("adir"))
os.symlink("loop_b", w("loop_a"))
os.symlink("loop_a", w("loop_b"))
long_name = "x" * 296 + ".h5"
# Values outside SCIENCE.md's domains, one per copy of the event file.
import shutil  # noqa: E402

import h5py  # noqa: E402

# A header claiming a dataset of 2^36 doubles (512 GiB) in a 2 MB file.
shutil.copy(w("ev.h5"), w("huge_claim.h5"))
with h5py.File(w("huge_claim.h5"), "r+") as f:
    del f["gti/start"]
    f.create_dataset("gti/start", shape=(2**36,), dtype="f8", chunks=(1024,))
for name, dataset, row, value in (("dec95.h5", "events/dec", 17, 95.0),
                                  ("negative_energy.h5", "events/energy", 3, -1.0)):
    shutil.copy(w("ev.h5"), w(name))
    with h5py.File(w(name), "r+") as f:
        f[dataset][row] = value

EV = "inobs=ev.h5"
# (name, args, status, stderr substring, files left byte-identical)
CASES = [
    ("lightcurve bad inobs, existing logfile untouched",
     ["lightcurve", "inobs=missing.h5", "logfile=old.log"], 2, "missing.h5", ["old.log"]),
    ("lightcurve bad inobs with clobber keeps an interrupted run's checkpoint",
     ["lightcurve", "inobs=missing.h5", "outfile=old.h5", "clobber=yes"], 2, "missing.h5",
     ["old.h5.ckpt"]),
    ("lightcurve logfile == inobs refused",
     ["lightcurve", EV, "logfile=ev.h5"], 2, "logfile: 'ev.h5' is the same file as inobs",
     ["ev.h5"]),
    ("lightcurve logfile == inobs by another name",
     ["lightcurve", EV, "logfile=./adir/../ev.h5"], 2, "is the same file as inobs", ["ev.h5"]),
    ("lightcurve outfile == inobs refused (even with clobber)",
     ["lightcurve", EV, "outfile=ev.h5", "clobber=yes"], 2,
     "outfile: 'ev.h5' is the same file as inobs", ["ev.h5"]),
    ("lightcurve logfile == outfile refused",
     ["lightcurve", EV, "outfile=new.h5", "logfile=./new.h5"], 2,
     "is the same file as outfile", ["ev.h5"]),
    ("lightcurve logfile == the checkpoint refused",
     ["lightcurve", EV, "outfile=new.h5", "logfile=new.h5.ckpt"], 2,
     "is the same file as the checkpoint", []),
    ("lightcurve outfile == tbinfile refused",
     ["lightcurve", EV, "tbinalg=FILE", "tbinfile=bins.txt", "outfile=bins.txt", "clobber=yes"],
     2, "is the same file as tbinfile", ["bins.txt", "ev.h5"]),
    ("lightcurve FIFO as inobs refused at once",
     ["lightcurve", "inobs=fifo", "logfile=old.log"], 2, "inobs: 'fifo' is a FIFO", ["old.log"]),
    ("lightcurve directory as tbinfile refused",
     ["lightcurve", EV, "tbinalg=FILE", "tbinfile=adir"], 2,
     "tbinfile: 'adir' is a directory", []),
    ("lightcurve truncated HDF5 is bad input",
     ["lightcurve", "inobs=truncated.h5", "logfile=old.log"], 2, "truncated.h5",
     ["truncated.h5", "old.log"]),
    ("lightcurve 300-character file name",
     ["lightcurve", "inobs=" + long_name], 2, "File name too long", []),
    ("lightcurve 300-character outfile name",
     ["lightcurve", EV, "outfile=" + long_name], 2, "File name too long", []),
    ("lightcurve symlink loop",
     ["lightcurve", "inobs=loop_a"], 2, "symbolic links", []),
    ("lightcurve declination 95 deg in an event row",
     ["lightcurve", "inobs=dec95.h5", "tbins=2", "outfile=dec_out.h5"], 2,
     "/events/dec is 95 at row 17", ["dec95.h5"]),
    ("lightcurve dataset claiming 512 GiB",
     ["lightcurve", "inobs=huge_claim.h5", "outfile=old.h5", "clobber=yes"], 2,
     "/gti/start: claims 68719476736 elements", ["huge_claim.h5", "old.h5.ckpt"]),
    ("fit negative energy in an event row", ["fit", "inobs=negative_energy.h5"], 2,
     "/events/energy is -1 at row 3", ["negative_energy.h5"]),
    ("spectrum outfile == ebinfile",
     ["spectrum", EV, "ebinalg=FILE", "ebinfile=ebins.txt", "outfile=ebins.txt", "clobber=yes"],
     2, "same file as ebinfile", ["ebins.txt"]),
]

# The matrix: every tool and every input file it reads, against each class of hostile path.
# (tool, parameter, the other arguments that make the tool read it, a good file for it)
EVENT_INPUTS = [
    ("lightcurve", "inobs", ["tbins=2"], "ev.h5"),
    ("fit", "inobs", [], "ev.h5"),
    ("spectrum", "inobs", ["enumbins=2"], "ev.h5"),
    ("phasecurve", "inobs", ["f0=1", "phbinfile=phbins.txt"], "ev.h5"),
    ("pull", "inobs", ["ntrials=2"], "ev.h5"),
    ("tsdist", "inobs", ["ntrials=2"], "ev.h5"),
    ("simulate", "inirf", ["outfile=sim.h5"], "ev.h5"),
]
TEXT_INPUTS = [
    ("lightcurve", "tbinfile", [EV, "tbinalg=FILE"], "bins.txt"),
    ("spectrum", "ebinfile", [EV, "ebinalg=FILE"], "ebins.txt"),
    ("phasecurve", "phbinfile", [EV, "f0=1"], "phbins.txt"),
    ("simulate", "profile_file", ["profile=table", "outfile=sim.h5"], "profile.txt"),
]
with open(w("garbage.txt"), "w") as f:
    f.write("a b c\n")
with open(w("list_fifo.txt"), "w") as f:  # a DL3 list naming the FIFO
    f.write(w("fifo") + "\n")
with open(w("list_missing.txt"), "w") as f:
    f.write(w("nowhere.fits") + "\n")


for tool, param, extra, good in EVENT_INPUTS + TEXT_INPUTS:
    text = good.endswith(".txt")
    base = [tool] + extra
    pairs = [
        ("missing, existing logfile untouched", [f"{param}=missing.dat", "logfile=old.log"],
         "missing.dat", ["old.log"]),
        ("FIFO refused at once", [f"{param}=fifo", "logfile=old.log"],
         f"{param}: 'fifo' is a FIFO", ["old.log"]),
        ("symlink loop", [f"{param}=loop_a"], "symbolic links", []),
        ("logfile == the input", [f"{param}={good}", f"logfile={good}"],
         f"logfile: '{good}' is the same file as {param}", [good]),
        ("outfile == the input, even with clobber",
         [f"{param}={good}", f"outfile=./{good}", "clobber=yes"],
         "is the same file as " + param, [good]),
    ]
    if text:
        pairs += [("a directory", [f"{param}=adir"], f"{param}: 'adir' is a directory", []),
                  ("malformed line", [f"{param}=garbage.txt", "logfile=old.log"],
                   "garbage.txt:1: expected two numbers", ["old.log"])]
    else:
        pairs += [("truncated HDF5", [f"{param}=truncated.h5", "logfile=old.log"],
                   "truncated.h5", ["truncated.h5", "old.log"])]
        if param == "inobs":
            pairs += [("a DL3 list naming a FIFO", ["inobs=list_fifo.txt"],
                       "list_fifo.txt:1: " + w("fifo") + ": is a FIFO", []),
                      ("a DL3 list naming a missing file", ["inobs=list_missing.txt"],
                       "list_missing.txt:1: ", []),
                      ("an empty directory as DL3 index", ["inobs=adir"], "adir", [])]
    for what, args, expected, keep in pairs:
        if tool == "simulate" and any(a.startswith("outfile=") for a in args):
            base_args = [a for a in base if not a.startswith("outfile=")]
        else:
            base_args = base
        CASES.append((f"{tool} {param}: {what}", base_args + args, 2, expected, keep))

# A few under two ranks: rank 0 decides, both ranks agree, nobody hangs.
MPI_CASES = {"lightcurve FIFO as inobs refused at once", "lightcurve logfile == inobs refused",
             "lightcurve truncated HDF5 is bad input", "pull inobs: FIFO refused at once",
             "tsdist inobs: a DL3 list naming a FIFO"}

fixtures = ["ev.h5", "huge_claim.h5", "dec95.h5", "negative_energy.h5", "truncated.h5", "bins.txt",
            "ebins.txt", "phbins.txt", "profile.txt", "old.log", "old.h5.ckpt", "garbage.txt",
            "list_fifo.txt", "list_missing.txt"]


def run_case(name, args, status, expected, keep, ranks):
    label = f"{name}{' (2 ranks)' if ranks else ''}"
    before = {f: digest(w(f)) for f in fixtures}
    files_before = listing()
    try:
        r = ctx.run(args, ranks=ranks, timeout=20 if ranks else 5)
    except subprocess.TimeoutExpired:
        ctx.check(False, f"{label}: ends at once", "timed out")
        return
    first = r.stderr.splitlines()[0] if r.stderr else ""
    ctx.check(r.returncode == status, f"{label}: exit {status}",
              f"exit {r.returncode}; stderr: {r.stderr}")
    ctx.check(expected in first, f"{label}: first stderr line names it", repr(first))
    for f in keep:
        ctx.check(digest(w(f)) == before[f], f"{label}: {f} left byte-identical")
    after = listing()
    ctx.check(after == files_before, f"{label}: no new file",
              f"new: {sorted(set(after) - set(files_before))}")


for name, args, status, expected, keep in CASES:
    run_case(name, args, status, expected, keep, None)
    if name in MPI_CASES:
        run_case(name, args, status, expected, keep, 2)

# The good path still writes its log: the log file opens once the inputs are checked.
r = ctx.run(["lightcurve", EV, "tbins=2", "logfile=old.log", "chatter=2"])
ctx.check(r.returncode == 0, "lightcurve good run: exit 0", r.stderr)
with open(w("old.log")) as f:
    text = f.read()
ctx.check(text.startswith("binflow lightcurve") and "bin 1" in text,
          "lightcurve good run: the log holds the whole run, header included", text[:200])

# A checkpoint is bound to the content of its inputs: replace the input between an interrupted
# run and resume=yes, and the resume is refused, naming what changed; the checkpoint is kept.
import signal  # noqa: E402
import time  # noqa: E402

r = ctx.run(["simulate", "outfile=swap.h5", "duration=1800", "seed=5", "chatter=0"])
assert r.returncode == 0, r.stderr
trials = ["pull", "inobs=swap.h5", "ntrials=100000", "seed=3", "outfile=swapped.h5", "chatter=0"]
proc = ctx.start(trials)
ckpt = w("swapped.h5.ckpt")
e2e_common.wait_for_progress(ckpt, proc, min_bytes=2000, limit=30)
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=30)
ctx.check(proc.returncode == 75 and os.path.exists(ckpt), "pull interrupted by SIGTERM: exit 75, checkpoint kept",
          proc.returncode)
r = ctx.run(["simulate", "outfile=swap.h5", "duration=1800", "seed=6", "chatter=0", "clobber=yes"])
assert r.returncode == 0, r.stderr
kept = digest(ckpt)
r = ctx.run(trials + ["resume=yes"])
first = r.stderr.splitlines()[0] if r.stderr else ""
ctx.check(r.returncode == 2 and "content of inobs" in first and "swapped.h5.ckpt" in first,
          "resume after the input was replaced: exit 2, the line says the input's content changed", first)
ctx.check(digest(ckpt) == kept and not os.path.exists(w("swapped.h5")),
          "resume after the input was replaced: checkpoint untouched, no output")

# A stop signal before the work starts (here during MPI's start-up and the input checks) ends
# the run at once with the documented status 75 and one line; nothing is written.
for sig in (signal.SIGTERM, signal.SIGINT):
    files_before = listing()
    proc = ctx.start(["lightcurve", EV, "tbins=4", "outfile=early.h5", "logfile=early.log"])
    time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    ctx.check(proc.returncode == 75 and "before any work" in err and listing() == files_before,
              f"{sig.name} before the first bin: exit 75, one line, nothing written",
              (proc.returncode, err, sorted(set(listing()) - set(files_before))))

# Write errors: a full disk for the log, the checkpoint, the console. Each is one line and exit
# 3; what was finished stays (the results when only the log failed); a journal that holds no
# bin is removed. The full disk is a 64 KiB tmpfs (root; skipped with the reason otherwise).
full = w("full")
os.mkdir(full)
mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full],
                         capture_output=True, text=True)
if mounted.returncode != 0:
    print(f"skip the full-disk cases: cannot mount a tmpfs ({mounted.stderr.strip()})")
else:
    try:
        with open(os.path.join(full, "pad"), "wb") as f:
            f.write(b"\0" * (60 * 1024))
        r = ctx.run(["lightcurve", EV, "tbins=200", "chatter=2", "logfile=full/lc.log",
                     "outfile=lc_full_log.h5"])
        ctx.check(r.returncode == 3 and "lc.log: cannot write the log file (No space left on device)"
                  in r.stderr and os.path.exists(w("lc_full_log.h5")),
                  "log on a full disk: exit 3, one line, the results written", (r.returncode, r.stderr))
        r = ctx.run(["lightcurve", EV, "tbins=200", "chatter=0", "outfile=full/lc.h5"])
        ctx.check(r.returncode == 3 and "cannot write the checkpoint" in r.stderr and
                  sorted(os.listdir(full)) == ["lc.log", "pad"],
                  "checkpoint on a full disk: exit 3, one line, no stale journal left",
                  (r.returncode, r.stderr, os.listdir(full)))
        with open("/dev/full", "w") as devfull:
            r = subprocess.run(ctx.command(["fit", EV, "chatter=2"]), env=ctx.env, cwd=ctx.workdir,
                               stdout=devfull, stderr=subprocess.PIPE, text=True, timeout=60)
        ctx.check(r.returncode == 3 and "standard output: cannot write" in r.stderr,
                  "console on /dev/full: exit 3, one line", (r.returncode, r.stderr))
    finally:
        subprocess.run(["umount", full], check=False)

# A binning whose results cannot fit in memory (10^8 bins of about 1 KB of cells each on rank
# 0) is refused before any bin runs, not left to the out-of-memory killer.
with open("/proc/meminfo") as f:
    memory_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
if memory_kib * 1024 < 50e9:
    r = ctx.run(["lightcurve", EV, "tbins=100000000", "outfile=too_many.h5", "chatter=0"], timeout=120)
    ctx.check(r.returncode == 2 and "100000000 bins are too many" in r.stderr and
              not any(x.startswith("too_many") for x in listing()),
              "10^8 light-curve bins: exit 2 before any bin, one line, nothing written",
              (r.returncode, r.stderr))
else:
    print(f"skip the 10^8-bin case: {memory_kib / 2**20:.0f} GiB of memory would hold its results")

# Temporaries left by runs killed during their final write are removed by the run that
# completes the output; other files are not touched.
for name in ("fresh.h5.tmp.99999", "fresh.h5.tmp.12.gz", "fresh.h5.tmp.notes"):
    with open(w(name), "w") as f:
        f.write("left behind")
r = ctx.run(["fit", EV, "outfile=fresh.h5", "chatter=0"])
ctx.check(r.returncode == 0 and not os.path.exists(w("fresh.h5.tmp.99999")) and
          not os.path.exists(w("fresh.h5.tmp.12.gz")) and os.path.exists(w("fresh.h5.tmp.notes")),
          "the run that writes an output removes the temporaries killed runs left for it",
          sorted(x for x in listing() if x.startswith("fresh")))

# resume=yes on a complete output: nothing to do for the run that wrote it, bad input for
# another configuration (other parameters, another tool).
r = ctx.run(["fit", EV, "outfile=done.h5", "chatter=0"])
assert r.returncode == 0, r.stderr
done = digest(w("done.h5"))
for args, status, what in ((["fit", EV], 0, "the same run"),
                           (["fit", EV, "emin=0.2"], 2, "other parameters"),
                           (["lightcurve", EV, "tbins=2"], 2, "another tool")):
    r = ctx.run(args + ["outfile=done.h5", "resume=yes", "chatter=0"])
    ctx.check(r.returncode == status and digest(w("done.h5")) == done,
              f"resume=yes on a complete output by {what}: exit {status}, output untouched",
              (r.returncode, r.stdout, r.stderr))

ctx.finish()
