#!/usr/bin/python3
"""binflow's tools on GADF DL3 data made by Gammapy's own API, against Gammapy 1.0
(SCIENCE.md section 7; the fixture and reference scripts are tests/e2e/gammapy_*.py):

1. agreement: on the fixture's four wobble runs, binflow's light curve (12 bins) and flux
   points (6 bins) agree with Gammapy's LightCurveEstimator / FluxPointsEstimator per bin
   (the reference runs as two concurrent processes, its parts merged into one document):
   (N0_binflow - N0_gammapy) / err with mean within 0.1 and spread below 0.3, errors within 3 %,
   TS within 2 % on average (bins with TS > 25), upper limits within 3 %; and both recover the simulated
   truth (pulls over the bins);
2. Gammapy reads binflow's FITS light curve of DL3 input back to the numbers of its HDF5 output;
3. the kinds of input: the index directory, one file, a list of files and an obs_id selection
   of the index give the same /results for the same observations; times as MJD and ISO dates;
4. the guarantees: /results bit-identical for 1-4 ranks and every schedule
   (light curve and spectrum, whose global fit is a nested run with one thread); phasecurve and
   fit run on DL3;
5. bad DL3 input: one line naming what is wrong, exit 2, nothing written.
Without an importable gammapy the test is skipped (exit 77) with the reason."""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from e2e_common import Context, identical, read_group, skip_without_gammapy

ctx = Context()
try:
    import numpy as np
    from astropy.utils import iers
    iers.conf.auto_download = False
    from gammapy.estimators import FluxPoints
    from gammapy.modeling.models import PowerLawSpectralModel
    import gammapy_reference
except ImportError as err:
    skip_without_gammapy(err)

here = os.path.dirname(os.path.abspath(__file__))
dl3 = ctx.path("dl3")
TBINS, EBINS = 12, 6
# Finer than the reference's defaults so that Gammapy's binning approximations stay well below
# the statistical errors (docs/science.md, "Agreement with Gammapy"): pixels of 0.01 deg (the
# fit mask of pixel centres differs from the exact circle at the edge) and 20 energy bins per
# decade (Gammapy multiplies each true-energy bin's flux by the response at its centre).
BINSZ, PER_DECADE = 0.01, 20


def python(script, args, timeout=900):
    t = time.time()
    r = subprocess.run([sys.executable, os.path.join(here, script), *args], cwd=ctx.workdir,
                       capture_output=True, text=True, timeout=timeout)
    return r, time.time() - t


r, t_fix = python("gammapy_dl3_fixture.py", ["--outdir", dl3, "--small", "--seed", "1"])
ctx.check(r.returncode == 0, f"fixture: exit 0 ({t_fix:.1f} s)", r.stderr[-3000:])
REFERENCE = ["--datastore", dl3, "--tbins", str(TBINS), "--ebins", str(EBINS), "--binsz", str(BINSZ),
             "--per_decade", str(PER_DECADE)]
# The reference's parts, run at once on the machine's two cores (its time bins and spectrum are
# independent; gammapy_reference.py). Measured alone on a quiet machine: the 12 bins 150 s
# (12-13 s each), the spectrum 69 s, each process's imports and reading 5-6 s; so 9 bins
# (~115 s) against 3 bins and the spectrum (~115 s), the best balance whole bins allow.
REFERENCE_PARTS = {"light curve bins 0-8": ["--part", "lightcurve", "--tbin_first", "0", "--tbin_count", "9"],
                   "light curve bins 9-11 and spectrum": ["--part", "all", "--tbin_first", "9"]}


def reference(parts):
    """Gammapy's reference document: its parts as concurrent processes, their JSON merged by
    gammapy_reference.merge into the one document a single process writes."""
    def run(item):
        i, args = item
        out = ctx.path(f"reference_part{i}.json")
        return out, python("gammapy_reference.py", [*REFERENCE, *args, "--out", out])

    t = time.time()
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        runs = list(pool.map(run, enumerate(parts.values())))
    for name, (_, (r, seconds)) in zip(parts, runs):
        ctx.check(r.returncode == 0, f"Gammapy reference, {name}: exit 0 ({seconds:.1f} s)", r.stderr[-3000:])
    if any(r.returncode != 0 for _, (r, _seconds) in runs):
        ctx.finish()  # nothing below can be checked without the reference
    documents = []
    for out, _ in runs:
        with open(out) as f:
            documents.append(json.load(f))
    merged = gammapy_reference.merge(documents)
    with open(ctx.path("reference.json"), "w") as f:
        json.dump(merged, f, indent=1)
    return merged, time.time() - t


ref, t_ref = reference(REFERENCE_PARTS)
glc, gsp = ref["lightcurve"], ref["spectrum"]


def binflow(args, ranks=None, name=None):
    t = time.time()
    r = ctx.run(args, ranks=ranks)
    ctx.check(r.returncode == 0, f"{name or args[0]}: exit 0 ({time.time() - t:.2f} s)",
              r.stderr[-2000:])
    return r


def agreement(what, ours, err, theirs, their_err, ts, their_ts, ul, their_ul):
    """Per-bin agreement of two estimates of the same quantity on the same events."""
    ours, err, theirs, their_err = map(np.asarray, (ours, err, theirs, their_err))
    d = (ours - theirs) / their_err
    ctx.check(abs(d.mean()) < 0.1 and d.std(ddof=1) < 0.3,
              f"{what}: (binflow - Gammapy) / err over {len(d)} bins: mean {d.mean():+.3f} (|.| < 0.1), "
              f"spread {d.std(ddof=1):.3f} (< 0.3)", np.round(d, 3).tolist())
    ratio = err / their_err
    ctx.check(np.all(np.abs(ratio - 1) < 0.03),
              f"{what}: errors within 3 % (ratio {ratio.mean():.4f}, {ratio.min():.4f}..{ratio.max():.4f})",
              np.round(ratio, 4).tolist())
    # TS: sqrt(TS) moves with N0 / err, so the per-bin spread of the two is that of the pulls
    # above (the events near the ROI edge differ); its mean ratio is the systematic part.
    bright = np.asarray(their_ts) > 25
    ts_ratio = np.asarray(ts)[bright] / np.asarray(their_ts)[bright]
    d_sig = np.sqrt(np.asarray(ts)[bright]) - np.sqrt(np.asarray(their_ts)[bright])
    ctx.check(bright.sum() >= 4 and abs(ts_ratio.mean() - 1) < 0.02 and np.all(np.abs(d_sig) < 0.6),
              f"{what}: TS where TS > 25 ({bright.sum()} bins): mean ratio {ts_ratio.mean():.4f} (within 2 %), "
              f"sqrt(TS) differences within 0.6 (max {np.max(np.abs(d_sig)):.3f})",
              np.round(ts_ratio, 4).tolist())
    ul_ratio = np.asarray(ul) / np.asarray(their_ul)
    ctx.check(np.all(np.abs(ul_ratio - 1) < 0.03),
              f"{what}: upper limits within 3 % (ratio {ul_ratio.mean():.4f})", np.round(ul_ratio, 4).tolist())


def truth_pulls(what, pulls):
    pulls = np.asarray(pulls, dtype=float)
    n = len(pulls)
    ctx.check(abs(pulls.mean()) < 3 / np.sqrt(n) and 0.5 < pulls.std(ddof=1) < 1.6,
              f"{what}: pulls against the simulated truth mean {pulls.mean():+.2f} "
              f"(|.| < {3 / np.sqrt(n):.2f}), width {pulls.std(ddof=1):.2f} (0.5-1.6)", np.round(pulls, 2).tolist())


# ---- 1. agreement with Gammapy -----------------------------------------------------------
common = ["emin=0.1", "emax=100", "theta_max=0.2", "chatter=0"]
LC = ["lightcurve", "inobs=" + dl3, f"tbins={TBINS}", *common]
binflow(LC + ["outfile=" + ctx.path("lc.h5")])
lc = read_group(ctx.path("lc.h5"))
ctx.check(np.allclose(lc["time_start"], glc["time_start"], atol=1e-6) and
          np.allclose(lc["time_stop"], glc["time_stop"], atol=1e-6),
          "light curve: the same time bins as Gammapy's (first GTI start to last GTI stop)")
agreement("light curve N0", lc["N0"], lc["N0_err"], glc["N0"], glc["N0_err"], lc["ts"], glc["ts"],
          lc["N0_ul"], glc["N0_ul"])
counts = np.asarray(glc["counts"])
print(f"counts binflow - Gammapy per bin: {(lc['n_events'] - counts).astype(int).tolist()} "
      f"(Gammapy's mask {ref['settings']['mask_solid_angle_deg2']:.6f} deg2, "
      f"circle {np.pi * 0.04:.6f} deg2)")
truth_pulls("binflow light curve", (lc["N0"] - np.asarray(glc["N0_true"])) / lc["N0_err"])
truth_pulls("Gammapy light curve", glc["pull"])

SP = ["spectrum", "inobs=" + dl3, f"enumbins={EBINS}", *common]
binflow(SP + ["outfile=" + ctx.path("sp.h5")])
sp = read_group(ctx.path("sp.h5"))
with __import__("h5py").File(ctx.path("sp.h5")) as f:
    gamma = float(f["results"].attrs["gamma"])
gfit = gsp["global_fit"]
ctx.check(abs(gamma - gfit["index"]) < 0.5 * gfit["index_err"],
          f"spectrum: global index {gamma:.4f} vs Gammapy {gfit['index']:.4f} +- {gfit['index_err']:.4f}")
agreement("flux points dN/dE", sp["dnde"], sp["dnde_err"], gsp["dnde"], gsp["dnde_err"], sp["ts"],
          gsp["ts"], sp["dnde_ul"], gsp["dnde_ul"])

# ---- 2. Gammapy reads the FITS light curve of DL3 input ----------------------------------
binflow(LC + ["outfile=" + ctx.path("lc.fits")], name="lightcurve to FITS")
fp = FluxPoints.read(ctx.path("lc.fits"), format="lightcurve",
                     reference_model=PowerLawSpectralModel(index=2.5))
t_axis = fp.geom.axes["time"]
ctx.check(np.allclose(t_axis.time_min.tt.mjd, lc["mjd_start"], rtol=0, atol=1e-9),
          "FITS: Gammapy's time bins are the HDF5 output's mjd_start")
ctx.check(np.array_equal(fp.flux.quantity.to_value("cm-2 s-1").ravel(), lc["flux"]) and
          np.array_equal(fp.ts.data.ravel(), lc["ts"]),
          "FITS: Gammapy reads the HDF5 output's flux and ts, to the bit")

# ---- 3. the kinds of input ---------------------------------------------------------------
files = sorted(f for f in os.listdir(dl3) if f.startswith("obs_"))
listing = ctx.path("runs.txt")
with open(listing, "w") as f:
    f.write("# two of the four runs\n" + "\n".join(os.path.join(dl3, x) for x in files[1:3]) + "\n")
ids = ",".join(x[len("obs_"):].split(".")[0] for x in files[1:3])
kinds = {"list": ["inobs=" + listing], "obs_id": ["inobs=" + dl3, "obs_id=" + ids]}
out = {}
for kind, args in kinds.items():
    binflow(["lightcurve", *args, "tbins=6", *common, "outfile=" + ctx.path(f"kind_{kind}.h5")],
            name=f"lightcurve from a {kind}")
    out[kind] = read_group(ctx.path(f"kind_{kind}.h5"))
same, why = identical(out["list"], out["obs_id"])
ctx.check(same, f"a list of two files and obs_id={ids} of the index: identical /results", why)
binflow(["fit", "inobs=" + os.path.join(dl3, files[0]), *common, "outfile=" + ctx.path("one.h5")],
        name="fit of one DL3 file")
one = read_group(ctx.path("one.h5"))
binflow(["fit", "inobs=" + dl3, "obs_id=" + files[0][4:8], *common, "outfile=" + ctx.path("one_id.h5")],
        name="fit of its obs_id")
same, why = identical(one, read_group(ctx.path("one_id.h5")))
ctx.check(same and one["status"][0] == "ok", "one DL3 file and its obs_id of the index: identical fit", why)

# Time parameters in MJD and ISO 8601 resolve on the data set's axis (MJDREF, TIMESYS TT).
mjd0, mjd1 = lc["mjd_start"][3], lc["mjd_stop"][5]
seconds = ["tmin=" + repr(lc["time_start"][3]), "tmax=" + repr(lc["time_stop"][5])]
dates = ["tmin=MJD " + repr(mjd0), "tmax=" + __import__("astropy.time").time.Time(mjd1, format="mjd", scale="tt").isot]
for name, args in (("seconds", seconds), ("dates", dates)):
    binflow(["fit", "inobs=" + dl3, *args, *common, "outfile=" + ctx.path(f"fit_{name}.h5")],
            name=f"fit with times as {name}")
a, b = read_group(ctx.path("fit_seconds.h5")), read_group(ctx.path("fit_dates.h5"))
ctx.check(abs(a["time_start"][0] - b["time_start"][0]) < 1e-4 and abs(a["time_stop"][0] - b["time_stop"][0]) < 2e-3
          and a["n_events"][0] == b["n_events"][0] == lc["n_events"][3:6].sum(),
          "tmin as 'MJD x' and tmax as an ISO date select the same events as seconds on the axis",
          (a["time_start"][0] - b["time_start"][0], a["time_stop"][0] - b["time_stop"][0], a["n_events"], b["n_events"]))

# ---- 4. ranks, schedules, nested runs ----------------------------------------------------
for name, args in (("lc", LC), ("sp", SP)):
    reference = lc if name == "lc" else sp
    for ranks in (1, 2, 3, 4):
        for schedule in ("static", "cyclic", "dynamic"):
            path = ctx.path(f"{name}_{ranks}_{schedule}.h5")
            r = ctx.run(args + ["schedule=" + schedule, "outfile=" + path], ranks=ranks)
            same, why = identical(read_group(path), reference) if r.returncode == 0 else (False, r.stderr)
            ctx.check(same, f"{name} on DL3, {ranks} ranks, {schedule}: /results identical to 1 rank", why)
binflow(["phasecurve", "inobs=" + dl3, "phbins=4", "t_ref=0", "f0=0.0297", *common,
         "outfile=" + ctx.path("phase.h5")])
phase = read_group(ctx.path("phase.h5"))
ctx.check(np.all(phase["status"] == "ok") and abs(phase["n_events"].sum() - lc["n_events"].sum()) == 0,
          "phasecurve on DL3: 4 bins fitted, holding every event of the light curve",
          (phase["status"], phase["n_events"].sum(), lc["n_events"].sum()))

# ---- 5. bad DL3 input ----------------------------------------------------------------------
existing = ctx.path("existing.h5")
with open(existing, "w") as f:
    f.write("keep me")
truncated = ctx.path("truncated.fits")
with open(os.path.join(dl3, files[0]), "rb") as src:
    import gzip
    raw = gzip.decompress(src.read())
with open(truncated, "wb") as f:
    f.write(raw[: len(raw) // 3])
bad = {
    "an obs_id that is not there": (["inobs=" + dl3, "obs_id=999"], "999"),
    "an obs_id that is not a number": (["inobs=" + dl3, "obs_id=12a"], "obs_id"),
    "an obs_id with an HDF5 event file": (["inobs=" + ctx.path("lc.h5"), "obs_id=1001"], "obs_id"),
    "a truncated DL3 file": (["inobs=" + truncated], "truncated.fits"),
    "a list naming a missing file": (["inobs=" + ctx.path("missing_list.txt")], "missing_list.txt"),
}
with open(ctx.path("missing_list.txt"), "w") as f:
    f.write(ctx.path("nowhere.fits") + "\n")
for what, (args, named) in bad.items():
    r = ctx.run(["lightcurve", *args, "tbins=4", "outfile=" + existing, "clobber=yes"])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    with open(existing) as f:
        kept = f.read() == "keep me"
    ctx.check(r.returncode == 2 and len(lines) == 1 and named in lines[0] and kept,
              f"{what}: exit 2, one line naming it, the existing output untouched",
              (r.returncode, r.stderr[-500:]))

parts = ", ".join(f"{name} {part['total']:.1f} s" for name, part in zip(REFERENCE_PARTS, ref["timing"]["parts"]))
print(f"[timing] fixture {t_fix:.1f} s, Gammapy reference {t_ref:.1f} s in {len(REFERENCE_PARTS)} concurrent "
      f"parts ({parts}; over the parts: light curve {ref['timing']['lightcurve_estimator']:.1f} s, "
      f"spectrum {ref['timing']['spectrum']:.1f} s)")
ctx.finish()
