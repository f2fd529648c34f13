#!/usr/bin/python3
"""`binflow lightcurve` on simulated files: results bit-identical for 1-4 ranks, every
schedule and 1 or 2 threads; the flare is seen; bad input gives one line, exit 2 and no
output."""
import os
import shutil

import h5py
import numpy as np

from e2e_common import Context, identical, read_attributes, read_group

ctx = Context()

# Two hours with a flare of amplitude 3 in the middle.
obs = ctx.path("flare.h5")
r = ctx.run(["simulate", "--duration", "7200", "--profile", "flare", "--amplitude", "3",
             "--width", "600", "--seed", "5", "--outfile", obs])
ctx.check(r.returncode == 0, "simulate a 2-hour flare", r.stderr)

common = ["lightcurve", "--inobs", obs, "--tbins", "24", "--chatter", "1"]


def lightcurve(name, ranks=None, extra=()):
    out = ctx.path(name + ".h5")
    r = ctx.run(common + ["--outfile", out, *extra], ranks=ranks)
    ctx.check(r.returncode == 0, f"{name}: exit 0", r.stderr[-3000:])
    return out


ref = read_group(lightcurve("reference"))
ctx.check(len(ref["bin"]) == 24, "24 time bins")
ctx.check(all(s == "ok" for s in ref["status"]), "every bin fitted", list(ref["status"]))
n0 = ref["N0"]
ctx.check(n0[10:14].mean() > 2.0 * n0[:3].mean(), "the flare in the middle is seen",
          f"middle {n0[10:14].mean():.3e}, start {n0[:3].mean():.3e}")
ctx.check(np.all(ref["N0_ul"] > ref["N0"]), "upper limits above the fitted N0")
ctx.check(np.all(ref["ts"] >= 0.0), "TS >= 0")
ctx.check(np.all(np.diff(ref["time_start"]) > 0) and np.allclose(ref["time_stop"][:-1], ref["time_start"][1:]),
          "bins contiguous and ordered")
attrs = read_attributes(ctx.path("reference.h5"))
ctx.check(attrs.get("tool") == "lightcurve" and attrs.get("inobs") == obs, "provenance names tool and input")

for ranks in (1, 2, 3, 4):
    for schedule in ("static", "cyclic", "dynamic"):
        for threads in ((1, 2) if ranks == 1 else (1,)):
            name = f"np{ranks}_{schedule}_t{threads}"
            out = lightcurve(name, ranks, ["--schedule", schedule, "--nthreads", str(threads)])
            same, why = identical(read_group(out), ref)
            ctx.check(same, f"{name}: /results bit-identical to the reference", why)

# Bins at once (MapOptions::concurrent_bins): with 2 threads and at least 256 bins per rank a
# rank runs two bins at once, one thread each. Results and the ordered log are those of one
# bin at a time, on 1 rank and on 2 (with --oversubscribe on this 2-core machine), for every
# schedule.
def many_bins(name, ranks, threads, schedule="dynamic"):
    out, log = ctx.path(name + ".h5"), ctx.path(name + ".log")
    r = ctx.run(["lightcurve", "--inobs", obs, "--tbins", "600", "--chatter", "2",
                 "--outfile", out, "--logfile", log, "--nthreads", str(threads),
                 "--schedule", schedule, "--oversubscribe", "yes"], ranks=ranks)
    ctx.check(r.returncode == 0, f"{name}: exit 0", r.stderr[-3000:])
    with open(log) as f:
        text = f.read()
    body = [l.split("] ", 1)[-1] for l in text.splitlines() if "[run]" not in l and "wrote" not in l]
    return read_group(out), body, text


many_ref, many_log, _ = many_bins("many_t1", None, 1)
for ranks in (None, 2):
    for schedule in (("static", "dynamic") if ranks else ("dynamic",)):
        name = f"many_np{ranks or 1}_{schedule}_t2"
        got, body, text = many_bins(name, ranks, 2, schedule)
        ctx.check("2 bins at once on each rank" in text, f"{name}: two bins at once per rank",
                  [l for l in text.splitlines() if "[run]" in l])
        same, why = identical(got, many_ref)
        ctx.check(same, f"{name}: /results bit-identical to one bin at a time", why)
        ctx.check(body == many_log, f"{name}: the log is that of one bin at a time",
                  next((f"{a!r} != {b!r}" for a, b in zip(body, many_log) if a != b), len(body)))

# Time parameters as seconds, MJD and ISO 8601 dates (mjdref 51544.5 = 2000-01-01T12:00:00):
# the same selection, bit for bit.
seconds = read_group(lightcurve("t_seconds", None, ["--tmin", "1800", "--tmax", "5400"]))
mjd = read_group(lightcurve("t_mjd", None, ["--tmin", "MJD 51544.520833333333", "--tmax", "MJD 51544.5625"]))
iso = read_group(lightcurve("t_iso", None, ["tmin=2000-01-01T12:30:00", "tmax=2000-01-01T13:30:00"]))
ctx.check(np.allclose(mjd["time_start"], seconds["time_start"], rtol=0, atol=1e-5)
          and np.allclose(iso["time_start"], seconds["time_start"], rtol=0, atol=1e-5),
          "tmin/tmax as MJD and as ISO dates select the same bins as seconds (to 10 us)")
ctx.check(np.allclose(iso["N0"], seconds["N0"], rtol=1e-9) and np.array_equal(iso["n_events"], seconds["n_events"]),
          "the same events and fits for an ISO-dated selection")

# Free index and the other binnings run too.
out = lightcurve("free", None, ["--free_index"])
res = read_group(out)
ctx.check(np.all(np.isfinite(res["gamma_err"][res["status"] == "ok"])), "free index: gamma errors finite")
out = lightcurve("gti", 2, ["--tbinalg", "GTI"])
ctx.check(len(read_group(out)["bin"]) == 4, "tbinalg=GTI: one bin per GTI (4 runs in 2 hours)")
with open(ctx.path("bins.txt"), "w") as f:
    f.write("# start stop\n0 1000\n1000 1800\n1920 3000\n")
out = lightcurve("file", 2, ["--tbinalg", "FILE", "--tbinfile", ctx.path("bins.txt")])
ctx.check(len(read_group(out)["bin"]) == 3, "tbinalg=FILE: bins from the file")

# --- bad input ----------------------------------------------------------------------
def corrupt(name, edit):
    path = ctx.path(name)
    shutil.copy(obs, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def swap_times(f):
    t = f["events/time"][()]
    t[100] = t[101] + 10.0  # later than the event after it
    f["events/time"][...] = t


def nan_energy(f):
    e = f["events/energy"][()]
    e[50] = np.nan
    f["events/energy"][...] = e


def overlap_gtis(f):
    s = f["gti/start"][()]
    s[1] = f["gti/stop"][0] - 10.0
    f["gti/start"][...] = s


with open(ctx.path("not_hdf5.h5"), "w") as f:
    f.write("plain text\n")
with open(ctx.path("bad_bins.txt"), "w") as f:
    f.write("0 100\n100 oops\n")
bad = {
    "missing file": (["--inobs", ctx.path("nope.h5")], "nope.h5"),
    "not HDF5": (["--inobs", ctx.path("not_hdf5.h5")], "not_hdf5.h5"),
    "wrong format (a result file)": (["--inobs", ctx.path("reference.h5")], "reference.h5"),
    "unsorted times": (["--inobs", corrupt("unsorted.h5", swap_times)], "/events/time"),
    "NaN energy": (["--inobs", corrupt("nan.h5", nan_energy)], "/events/energy"),
    "overlapping GTIs": (["--inobs", corrupt("overlap.h5", overlap_gtis)], "GTI"),
    "tmin >= tmax": (["--inobs", obs, "--tmin", "500", "--tmax", "100"], "tmin"),
    "bin file does not parse": (["--inobs", obs, "--tbinalg", "FILE", "--tbinfile", ctx.path("bad_bins.txt")],
                                "bad_bins.txt:2"),
    "emin above emax": (["--inobs", obs, "--emin", "10", "--emax", "1"], "emin"),
}
for what, (words, needle) in bad.items():
    for ranks in (None, 3):
        out = ctx.path("bad.h5")
        r = ctx.run(["lightcurve", "--tbins", "12", *words, "--outfile", out], ranks=ranks)
        ours = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
        label = f"{what} ({'plain' if ranks is None else 'mpirun -n 3'})"
        ctx.check(r.returncode == 2, f"{label}: exit status 2", r.stderr[-2000:])
        ctx.check(len(ours) == 1 and needle in ours[0], f"{label}: one line naming {needle!r}", r.stderr[-2000:])
        ctx.check(not os.path.exists(out) and not os.path.exists(out + ".ckpt"), f"{label}: nothing written")
ctx.finish()
