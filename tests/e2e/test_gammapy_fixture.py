#!/usr/bin/python3
"""The Gammapy DL3 fixture and reference (tests/e2e/gammapy_dl3_fixture.py,
tests/e2e/gammapy_reference.py), run with Debian's Gammapy 1.0:
1. the fixture (--small) writes 4 wobble runs that Gammapy's DataStore.from_dir reads back:
   pointings 0.5 deg from the source in four directions, one 1800 s GTI each with LIVETIME =
   0.95 ONTIME, events in time order inside their GTI, an hdu-index listing aeff_2d,
   psf_3gauss and bkg_2d (and edisp_2d) HDUs that exist, and counts in the ROI of the first
   run equal to what its IRFs predict;
2. the reference light curve shows the flare (the two bins around the peak far above the
   first and last) and recovers the truth (pulls of norm over the bins: mean and width as for
   a standard normal sample of that size); the flux points and the global fit recover the
   simulated spectrum; upper limits lie above the best fits.
Without an importable gammapy the test is skipped (exit 77) with the reason."""
import json
import math
import os
import subprocess
import sys
import time

from e2e_common import Context, skip_without_gammapy

ctx = Context()
try:
    import numpy as np
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.utils import iers
    iers.conf.auto_download = False
    import gammapy
    from gammapy.data import DataStore
except ImportError as err:
    skip_without_gammapy(err)

here = os.path.dirname(os.path.abspath(__file__))
fixture = os.path.join(here, "gammapy_dl3_fixture.py")
reference = os.path.join(here, "gammapy_reference.py")
dl3 = ctx.path("dl3")
print(f"gammapy {gammapy.__version__} at {os.path.dirname(gammapy.__file__)}")


def run(script, args, timeout=600):
    t = time.time()
    r = subprocess.run([sys.executable, script, *args], cwd=ctx.workdir, capture_output=True,
                       text=True, timeout=timeout)
    return r, time.time() - t


# ---- 1. the fixture ----------------------------------------------------------------------
r, t_fixture = run(fixture, ["--outdir", dl3, "--small", "--seed", "1"])
ctx.check(r.returncode == 0, f"fixture --small: exit 0 ({t_fixture:.1f} s)", r.stderr[-3000:])
print(r.stdout, end="")
lines = [ln for ln in r.stdout.splitlines() if ln.startswith("obs ")]
ctx.check(len(lines) == 4, "fixture: one summary line per observation", r.stdout)
with open(os.path.join(dl3, "fixture.json")) as f:
    truth = json.load(f)
src = truth["source"]
source = SkyCoord(src["ra"], src["dec"], unit="deg", frame="icrs")

store = DataStore.from_dir(dl3)
obs_ids = sorted(int(x) for x in store.obs_table["OBS_ID"])
ctx.check(len(obs_ids) == 4, "DataStore.from_dir: 4 observations", obs_ids)
observations = store.get_observations()
ctx.check(len(observations) == 4, "get_observations (full-enclosure): all 4 complete", len(observations))

angles, gtis = [], []
for obs in observations:
    sep = obs.pointing_radec.separation(source).deg
    ctx.check(abs(sep - 0.5) < 1e-6, f"obs {obs.obs_id}: pointing 0.5 deg from the source", sep)
    angles.append(source.position_angle(obs.pointing_radec).deg % 360.0)
    n = len(obs.events.table)
    ctx.check(n > 1000, f"obs {obs.obs_id}: events ({n})")
    gti = obs.gti
    ctx.check(len(gti.table) == 1, f"obs {obs.obs_id}: one GTI", len(gti.table))
    duration = gti.time_sum.to_value("s")
    ctx.check(abs(duration - 1800.0) < 1e-3, f"obs {obs.obs_id}: GTI of 1800 s", duration)
    live = obs.observation_live_time_duration.to_value("s")
    ctx.check(abs(live - 0.95 * duration) < 1e-3, f"obs {obs.obs_id}: livetime 0.95 x ontime", live)
    t0 = (gti.time_start[0] - gti.time_ref).to_value("s")
    t1 = (gti.time_stop[0] - gti.time_ref).to_value("s")
    gtis.append((t0, t1))
    times = np.asarray(obs.events.table["TIME"], dtype=float)
    ctx.check(bool(np.all(np.diff(times) >= 0)), f"obs {obs.obs_id}: events in time order")
    ctx.check(times.min() >= t0 - 1e-3 and times.max() < t1 + 1e-3,
              f"obs {obs.obs_id}: events inside the GTI", (times.min() - t0, times.max() - t1))
    energy = np.asarray(obs.events.table["ENERGY"], dtype=float)
    ctx.check(energy.min() >= 0.1 * (1 - 1e-9) and energy.max() <= 100.0 * (1 + 1e-9),
              f"obs {obs.obs_id}: energies in [0.1, 100] TeV", (energy.min(), energy.max()))
    kinds = (type(obs.aeff).__name__, type(obs.psf).__name__, type(obs.bkg).__name__)
    ctx.check(kinds == ("EffectiveAreaTable2D", "EnergyDependentMultiGaussPSF", "Background2D"),
              f"obs {obs.obs_id}: IRFs load as aeff_2d, psf_3gauss, bkg_2d", kinds)
expected = [0.0, 90.0, 180.0, 270.0]
ctx.check(all(min(abs(a - e), 360 - abs(a - e)) < 0.01 for a, e in zip(angles, expected)),
          "wobble directions N, E, S, W", [round(a, 3) for a in angles])
gtis.sort()
ctx.check(all(a[1] <= b[0] for a, b in zip(gtis[:-1], gtis[1:])), "GTIs of the runs do not overlap", gtis)

hdu = store.hdu_table
for obs_id in obs_ids:
    rows = hdu[hdu["OBS_ID"] == obs_id]
    classes = {str(c).strip() for c in rows["HDU_CLASS"]}
    ctx.check({"events", "gti", "aeff_2d", "psf_3gauss", "bkg_2d", "edisp_2d"} <= classes and "bkg_3d" not in classes,
              f"hdu-index, obs {obs_id}: events, gti, aeff_2d, psf_3gauss, bkg_2d, edisp_2d", sorted(classes))
    for row in rows:
        path = os.path.join(dl3, str(row["FILE_DIR"]).strip(), str(row["FILE_NAME"]).strip())
        with fits.open(path) as hdul:
            ok = str(row["HDU_NAME"]).strip() in hdul
            if ok and row["HDU_CLASS"] not in ("events", "gti"):
                ok = str(hdul[str(row["HDU_NAME"]).strip()].header.get("HDUCLAS4", "")).lower() == row["HDU_CLASS"]
        ctx.check(ok, f"hdu-index, obs {obs_id}: {row['HDU_CLASS']} is HDU '{row['HDU_NAME']}' of its file")

# Counts in the ROI of the first run (flare negligible there) against its IRFs read back.
obs = observations[0]
theta_max = 0.2
ev = obs.events.table
sep = SkyCoord(ev["RA"], ev["DEC"], unit="deg").separation(source).deg
n_roi = int(np.sum(sep < theta_max))
offset = obs.pointing_radec.separation(source)
e = np.geomspace(0.1, 100.0, 2001) * u.TeV
flare = truth["flare"]
mean_f = 1.0 + flare["amplitude"] * flare["width"] * math.sqrt(math.pi / 2) / 1800.0 * (
    math.erf((gtis[0][1] - flare["t_peak"]) / (math.sqrt(2) * flare["width"]))
    - math.erf((gtis[0][0] - flare["t_peak"]) / (math.sqrt(2) * flare["width"])))
dnde = src["N0"] * (e.to_value("TeV") / src["E0"])**-src["index"] * u.Unit("cm-2 s-1 TeV-1")
aeff = obs.aeff.evaluate(energy_true=e, offset=offset)
containment = obs.psf.containment(rad=theta_max * u.deg, energy_true=e, offset=offset)
n_src = (np.trapz((dnde * aeff * containment).to_value("s-1 TeV-1"), e.to_value("TeV"))
         * mean_f * obs.observation_live_time_duration.to_value("s"))
bkg = obs.bkg.evaluate(energy=e, offset=offset).to_value("s-1 TeV-1 deg-2")
n_bkg = np.trapz(bkg, e.to_value("TeV")) * math.pi * theta_max**2 * obs.observation_time_duration.to_value("s")
pred = n_src + n_bkg
z = (n_roi - pred) / math.sqrt(pred + (0.01 * pred)**2)  # Poisson and 1 % for the binned sampler
ctx.check(abs(z) < 4.0, f"obs {obs.obs_id}: {n_roi} events within {theta_max} deg, the IRFs predict "
          f"{pred:.0f} ({n_src:.0f} source + {n_bkg:.0f} background), z = {z:+.2f}")

# ---- 2. the reference ----------------------------------------------------------------------
out = ctx.path("reference.json")
r, t_reference = run(reference, ["--datastore", dl3, "--out", out, "--tbins", "12", "--ebins", "6"])
ctx.check(r.returncode == 0, f"reference: exit 0 ({t_reference:.1f} s)", r.stderr[-3000:])
print(r.stdout, end="")
with open(out) as f:
    res = json.load(f)
lc, sp = res["lightcurve"], res["spectrum"]
norm = np.array(lc["norm"], dtype=float)
err = np.array(lc["norm_err"], dtype=float)
ctx.check(len(norm) == 12 and all(lc["success"]), "light curve: 12 bins, every fit successful", lc["success"])
starts, stops = np.array(lc["time_start"]), np.array(lc["time_stop"])
ctx.check(abs(starts[0] - gtis[0][0]) < 1e-3 and abs(stops[-1] - gtis[-1][1]) < 1e-3
          and np.allclose(stops[:-1], starts[1:], atol=1e-3),
          "light curve: contiguous bins from the first GTI start to the last GTI stop")
ctx.check(np.all(np.isfinite(err)) and np.all(err > 0), "light curve: finite errors")
ctx.check(lc["ul_above_norm"], "light curve: every upper limit above its best fit")
ctx.check(all(x >= 0 for x in lc["ts"]), "light curve: TS >= 0")
fl = lc["flare"]
ctx.check(int(np.argmax(norm)) in fl["middle_bins"], "light curve: the brightest bin is at the flare peak",
          (int(np.argmax(norm)), fl["middle_bins"]))
ctx.check(fl["middle_norm"] > 2.0 * fl["outer_norm"] and fl["significance"] > 5.0,
          f"light curve: the flare is seen (middle {fl['middle_norm']:.2f} vs outer {fl['outer_norm']:.2f}, "
          f"{fl['significance']:.1f} sigma)")
pulls = np.array(lc["pull"], dtype=float)
ps = lc["pull_summary"]
n = ps["n"]
ctx.check(n == 12 and abs(ps["mean"]) < 3.0 / math.sqrt(n) and 0.5 < ps["std"] < 1.6
          and np.all(np.abs(pulls) < 4.0),
          f"light curve recovers the truth: pulls mean {ps['mean']:+.2f} (|.| < {3 / math.sqrt(n):.2f}), "
          f"std {ps['std']:.2f} (0.5-1.6), max |pull| {np.max(np.abs(pulls)):.2f}", lc["pull"])

gfit = sp["global_fit"]
n0_true = sp["mean_flare_factor"] * src["N0"]
ctx.check(gfit["success"] and abs(gfit["index"] - src["index"]) < 3 * gfit["index_err"] and gfit["index_err"] < 0.05,
          f"spectrum: global index {gfit['index']:.3f} +- {gfit['index_err']:.3f} (true {src['index']})")
ctx.check(abs(gfit["N0"] - n0_true) < 3 * gfit["N0_err"] + 0.02 * n0_true,
          f"spectrum: global N0 {gfit['N0']:.3e} +- {gfit['N0_err']:.1e} (true, time-averaged, {n0_true:.3e})")
sp_pulls = np.array(sp["pull"], dtype=float)
sp_ts = np.array(sp["ts"], dtype=float)
ctx.check(len(sp_pulls) == 6 and np.all(np.abs(sp_pulls[sp_ts > 25]) < 4.0) and np.sum(sp_ts > 25) >= 4,
          "spectrum: 6 flux points, those with TS > 25 within 4 sigma of the truth", sp["pull"])
ctx.check(sp["ul_above_norm"], "spectrum: every upper limit above its best fit")

print(f"[timing] fixture --small {t_fixture:.1f} s, reference {t_reference:.1f} s "
      f"(estimators: light curve {res['timing']['lightcurve_estimator']:.1f} s, "
      f"spectrum {res['timing']['spectrum']:.1f} s)")
ctx.finish()
