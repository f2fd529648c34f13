#!/usr/bin/python3
"""`binflow simulate`: the event file is bit-identical for 1-4 ranks and 1 or 2 threads; the
counts in the analysis region agree with the model of SCIENCE.md (Simpson rule); a flare puts
its events near t_peak; a table profile and inirf work; bad input gives exit 2, one line and
no file."""
import glob
import hashlib
import os
import re

import h5py
import numpy as np

from e2e_common import Context, identical, read_group

ctx = Context()
CRAB = (83.6331, 22.0145)


def simulate(name, ranks=None, extra=(), expect=0):
    out = ctx.path(name + ".h5")
    r = ctx.run(["simulate", "--outfile", out, "--chatter", "2", *extra], ranks=ranks)
    ctx.check(r.returncode == expect, f"{name}: exit {expect}", r.stderr[-3000:])
    return out, r


def groups(path):
    return {g: read_group(path, g) for g in ("events", "gti", "irf")}


def angular_distance(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    x = np.cos(d2) * np.sin(r2 - r1)
    y = np.cos(d1) * np.sin(d2) - np.sin(d1) * np.cos(d2) * np.cos(r2 - r1)
    z = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r2 - r1)
    return np.degrees(np.arctan2(np.hypot(x, y), z))


def response(path):
    """SCIENCE.md section 1 interpolation of the file's /irf."""
    irf = read_group(path, "irf")
    u = np.log(irf["energy"])

    def loglog(values):
        def f(e):
            with np.errstate(divide="ignore"):
                lv = np.where(values > 0, np.log(np.maximum(values, 1e-300)), -np.inf)
            inside = (np.log(e) >= u[0]) & (np.log(e) <= u[-1])
            return np.where(inside, np.exp(np.interp(np.log(e), u, lv)), 0.0)
        return f

    def psf(e):
        return np.interp(np.log(e), u, irf["psf_sigma"])

    return loglog(irf["aeff"]), psf, loglog(irf["bkg_rate"])


def simpson_log(f, emin, emax, n=256):
    u = np.linspace(np.log(emin), np.log(emax), n + 1)
    e = np.exp(u)
    w = np.ones(n + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return np.sum(w * f(e) * e) * (u[1] - u[0]) / 3.0


def logged(stderr_or_log, what):
    m = re.search(what + r" (\d+) (?:events )?drawn \(([0-9.]+) expected\)", stderr_or_log)
    return (int(m.group(1)), float(m.group(2))) if m else (None, None)


# ---- bit-identical for any ranks and threads (the default 4-hour observation) ----
ref, r = simulate("reference", None, ["--seed", "42", "--nthreads", "1", "--logfile", ctx.path("reference.log")])
ref_groups = groups(ref)
n_ref = len(ref_groups["events"]["time"])
ctx.check(n_ref > 100000, f"4 hours give {n_ref} events")
t = ref_groups["events"]["time"]
ctx.check(bool(np.all(np.diff(t) >= 0)), "/events/time sorted")
gti = ref_groups["gti"]
ctx.check(len(gti["start"]) == 8 and gti["stop"][-1] == 14400.0 and gti["start"][1] == 1920.0,
          "default GTIs: runs of 1800 s with 120 s gaps, the last cut at 14400 s", gti)
inside = np.searchsorted(gti["stop"], t, side="right")
ctx.check(bool(np.all((inside < len(gti["start"])) & (gti["start"][np.minimum(inside, 7)] <= t))),
          "every event inside a GTI")
with h5py.File(ref, "r") as f:
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    chunks = f["events/time"].chunks
ctx.check(attrs.get("format") == "eventlist" and attrs.get("format_version") == 1
          and attrs.get("deadtime_fraction") == 0.05 and attrs.get("mjdref") == 51544.5
          and attrs.get("object") == "Crab", "root attributes of SCIENCE.md section 1", attrs)
ctx.check(chunks == (65536,), f"/events chunked by 65536 rows ({chunks})")
with open(ctx.path("reference.log")) as f:
    log_text = f.read()
ctx.check(f"wrote {n_ref} events" in log_text, "log names the number of events written", log_text)

for ranks, threads in ((1, 2), (2, 1), (2, 2), (3, 1), (4, 1)):
    name = f"np{ranks}_t{threads}"
    out, _ = simulate(name, ranks, ["--seed", "42", "--nthreads", str(threads)])
    got = groups(out)
    for g in ("events", "gti", "irf"):
        same, why = identical(got[g], ref_groups[g])
        ctx.check(same, f"{name}: /{g} bit-identical to 1 rank", why)
other, _ = simulate("seed43", 2, ["--seed", "43"])
ctx.check(not np.array_equal(read_group(other, "events")["time"], t), "another seed, other events")
ctx.check(not glob.glob(ctx.path("*.tmp.*")), "no temporary files left")

# ---- counts in the analysis region against the model (30 minutes, one run) ----
half, r = simulate("half_hour", 2, ["--duration", "1800", "--seed", "7"])
ev = read_group(half, "events")
aeff, psf, bkg = response(half)
livetime = 1800.0 * (1.0 - 0.05)
n0, gamma, theta_max = 3.5e-11, 2.5, 0.2
src = livetime * simpson_log(lambda e: n0 * e ** -gamma * aeff(e) *
                             (1.0 - np.exp(-theta_max ** 2 / (2.0 * psf(e) ** 2))), 0.1, 100.0)
bg = livetime * np.pi * theta_max ** 2 * simpson_log(bkg, 0.1, 100.0)
theta = angular_distance(ev["ra"], ev["dec"], *CRAB)
roi = (theta < theta_max) & (ev["energy"] >= 0.1) & (ev["energy"] <= 100.0)
n = int(roi.sum())
ctx.check(3300 < src < 4300 and 3300 < bg < 4300,
          f"model: {src:.1f} source + {bg:.1f} background in 0.2 deg, 0.1-100 TeV, 30 min (about 3800 each)")
ctx.check(abs(n - (src + bg)) < 5.0 * np.sqrt(src + bg),
          f"drawn {n} within 5 sigma of {src + bg:.1f}")
# Without the PSF cut, the logged whole-grid expectation is the same integral.
drawn, expected = logged(r.stdout + r.stderr, "source")
whole = livetime * simpson_log(lambda e: n0 * e ** -gamma * aeff(e), 0.03, 100.0, 4096)
ctx.check(expected is not None and abs(expected / whole - 1.0) < 1e-3,
          f"logged source expectation {expected} matches the model {whole:.1f}", r.stdout + r.stderr)
ctx.check(drawn is not None and abs(drawn - expected) < 5.0 * np.sqrt(expected),
          f"source events drawn ({drawn}) within 5 sigma of expected")
ctx.check(float(ev["energy"].min()) >= 0.03 and float(ev["energy"].max()) <= 100.0,
          "energies cover the IRF grid 0.03-100 TeV")
ctx.check(float(theta.max()) < 1.0, "no event far from the source")
bg_only, _ = simulate("background_only", None, ["--duration", "1800", "--N0", "0", "--seed", "7"])
theta_b = angular_distance(*(read_group(bg_only, "events")[k] for k in ("ra", "dec")), *CRAB)
ctx.check(float(theta_b.max()) < 0.3, "background only inside theta_sim = 0.3 deg")
# Uniform per solid angle: the fraction inside 0.15 deg is the cap-area ratio.
frac = float(np.mean(theta_b < 0.15))
want = (1 - np.cos(np.radians(0.15))) / (1 - np.cos(np.radians(0.3)))
ctx.check(abs(frac - want) < 5 * np.sqrt(want * (1 - want) / len(theta_b)),
          f"background uniform on the cap ({frac:.4f} inside 0.15 deg, expected {want:.4f})")

# ---- flare: more events near t_peak (default: the middle of the observation) ----
flare, _ = simulate("flare", 2, ["--duration", "7200", "--profile", "flare", "--amplitude", "10",
                                 "--width", "200", "--seed", "3"])
ft = read_group(flare, "events")["time"]
fe = read_group(flare, "events")
ftheta = angular_distance(fe["ra"], fe["dec"], *CRAB)
near = int(np.sum((np.abs(ft - 3600.0) < 300.0) & (ftheta < 0.1)))
far = int(np.sum((ft >= 300.0) & (ft < 900.0) & (ftheta < 0.1)))
ctx.check(near > 3 * far, f"flare: {near} events within 300 s of t_peak = 3600 vs {far} far from it")
explicit, _ = simulate("flare_explicit", None, ["--duration", "7200", "--profile", "flare",
                                                "--amplitude", "10", "--width", "200", "--seed", "3",
                                                "--t_peak", "3600"])
same, why = identical(read_group(explicit, "events"), read_group(flare, "events"))
ctx.check(same, "t_peak=middle is 3600 s for a 7200 s observation", why)

# ---- table profile: f = 0 before 900 s, so no source events then (beta = 0) ----
with open(ctx.path("profile.txt"), "w") as f:
    f.write("# time f\n0 0\n900 0\n960, 2\n")
table, _ = simulate("table", 2, ["--duration", "1800", "--profile", "table", "--profile_file",
                                 ctx.path("profile.txt"), "--beta", "0", "--seed", "5"])
tt = read_group(table, "events")["time"]
ctx.check(len(tt) > 1000 and float(tt.min()) > 900.0, f"table profile: {len(tt)} events, none before 900 s")

# ---- inirf: response, GTIs and attributes reused, duration ignored ----
reuse, _ = simulate("reuse", 2, ["--inirf", half, "--duration", "99999", "--seed", "7"])
for g in ("gti", "irf"):
    same, why = identical(read_group(reuse, g), read_group(half, g))
    ctx.check(same, f"inirf: /{g} taken from the input file", why)
same, why = identical(read_group(reuse, "events"), read_group(half, "events"))
ctx.check(same, "inirf with the same GTIs and seed gives the same events", why)

# ---- bad input: exit 2, one line, nothing written ----
bad_cases = [
    ("unknown profile", ["--profile", "wiggle"], "profile"),
    ("table without file", ["--profile", "table"], "profile_file"),
    ("missing profile file", ["--profile", "table", "--profile_file", ctx.path("absent.txt")], "absent.txt"),
    ("width 0", ["--profile", "flare", "--width", "0"], "width"),
    ("negative width", ["--profile", "flare", "--width", "-5"], "width"),
    ("bad t_peak", ["--profile", "flare", "--t_peak", "soon"], "t_peak"),
    ("missing inirf", ["--inirf", ctx.path("absent.h5")], "absent.h5"),
    ("inirf not HDF5", ["--inirf", ctx.path("profile.txt")], "not an HDF5 file"),
    ("no outfile", None, "outfile"),
]
with open(ctx.path("bad_profile.txt"), "w") as f:
    f.write("0 1\n10 -2\n")
bad_cases.append(("negative f", ["--profile", "table", "--profile_file", ctx.path("bad_profile.txt")],
                  "bad_profile.txt:2"))
for label, args, needle in bad_cases:
    for ranks in (None, 2):
        out = ctx.path("bad.h5")
        words = ["simulate", "--outfile", out, *args] if args is not None else ["simulate"]
        r = ctx.run(words, ranks=ranks)
        lines = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
        where = f"{label} ({ranks or 1} rank{'s' if ranks else ''})"
        ctx.check(r.returncode == 2, f"{where}: exit 2", r.stderr)
        ctx.check(len(lines) == 1 and needle in lines[0], f"{where}: one line naming {needle!r}", r.stderr)
        ctx.check(not os.path.exists(out) and not glob.glob(out + ".tmp.*"), f"{where}: nothing written")

digest = hashlib.sha256(open(ref, "rb").read()).hexdigest()
r = ctx.run(["simulate", "--outfile", ref, "--seed", "1"], ranks=2)
lines = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
ctx.check(r.returncode == 2 and len(lines) == 1 and "clobber" in lines[0],
          "existing outfile without clobber: exit 2, one line", r.stderr)
ctx.check(hashlib.sha256(open(ref, "rb").read()).hexdigest() == digest, "existing outfile untouched")
r = ctx.run(["simulate", "--outfile", ref, "--seed", "1", "--duration", "600", "--clobber"], ranks=2)
ctx.check(r.returncode == 0 and len(read_group(ref, "events")["time"]) < n_ref / 10,
          "clobber=yes overwrites", r.stderr)
ctx.finish()
