#!/usr/bin/python3
"""Gammapy's own light curve and flux points of a GADF DL3 data set (the reference binflow's
DL3 analyses are checked against), as JSON.

    /usr/bin/python3 tests/e2e/gammapy_reference.py --datastore DIR --out results.json
        [--tbins N] [--ebins M | --ebins E0 E1 ... En] [--emin 0.1] [--emax 100]
        [--theta_max 0.2] [--ra RA --dec DEC]
        [--part all|lightcurve|spectrum] [--tbin_first K] [--tbin_count M]

A 3-D (binned map) analysis restricted to what binflow analyses (SCIENCE.md 2, 3, 5, 7):
- ROI: the fit mask is the circle theta < theta_max (0.2 deg) around the source, energies
  [emin, emax] (0.1-100 TeV), on a map of 0.02 deg pixels and 10 energy bins per decade;
- model: a point source at the source position with a power law of index 2.5 (fixed) and
  amplitude N0 >= 0 (the amplitude's lower bound is set to 0: Gammapy's flux norm has none by
  default), plus each dataset's FoVBackgroundModel with its norm free (>= 0) and tilt fixed;
- no energy dispersion: the datasets are made without the files' edisp_2d and given an exact
  diagonal EDispKernelMap (true = reconstructed energy), which the flux-point estimator needs
  to slice a 3-D dataset in energy;
- light curve: `LightCurveEstimator`, `tbins` equal time bins between the first GTI start and
  the last GTI stop (binflow's tbinalg=LIN). Gammapy fits whole datasets, so each observation
  is cut at the bin edges (`Observations.select_time`), one dataset made per piece, and the
  pieces of a bin stacked into one dataset (one background norm per bin, as binflow's one
  beta per bin);
- spectrum: all runs stacked, a global fit with the index free, then `FluxPointsEstimator` in
  `ebins` log energy bins with that index fixed and N0 and the background norm fitted per bin
  (binflow spectrum, ctools csspec SLICE);
- both estimators with reoptimize=True (the background norm refitted for the best fit, the TS
  null hypothesis N0 = 0 and along the upper-limit profile, as SCIENCE.md 3), the minuit
  backend for fit and confidence (the scipy confidence backend, FluxPointsEstimator's default,
  can return the best fit as its limit without saying so), and n_sigma_ul = 1.6449 so that the
  upper limit is where 2 dlnL = 2.7055 (binflow's 95 % default), not Gammapy's 2 sigma.

With the fixture's fixture.json in DIR, each bin also gets its truth: the simulated model
integrated over the bin's time in the GTIs (norm_true: time-averaged flare profile, so that
pull = (norm - norm_true) / norm_err) and over the bin's energies (flux_true).

Parts, to use more than one core: each time bin's dataset and fit are independent of the
other bins' (the estimators fit copies of the models), so `--part lightcurve` computes only the
light curve, `--part spectrum` only the spectrum, and `--tbin_first K --tbin_count M` only the
light curve's bins K..K+M-1 of the `tbins` (each process still reads all observations). A run
that covers every bin and the spectrum writes the finished document; any other writes a part,
and `merge(parts)` makes the document of parts that cover everything once, with what is computed
across bins (pull summaries, the flare, ul_above_norm) and the same numbers as one process.
"""
import argparse
import json
import math
import os
import sys
import time
import warnings

T_BEGIN = time.time()

import numpy as np  # noqa: E402
import astropy.units as u  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402
from astropy.time import Time  # noqa: E402
from astropy.utils import iers  # noqa: E402

iers.conf.auto_download = False  # no network, no cache outside the data set
iers.conf.iers_degraded_accuracy = "warn"

import gammapy  # noqa: E402
from regions import CircleSkyRegion  # noqa: E402
from gammapy.data import DataStore, Observations  # noqa: E402
from gammapy.datasets import Datasets, MapDataset  # noqa: E402
from gammapy.estimators import FluxPointsEstimator, LightCurveEstimator  # noqa: E402
from gammapy.irf import EDispKernelMap  # noqa: E402
from gammapy.makers import MapDatasetMaker  # noqa: E402
from gammapy.maps import MapAxis, WcsGeom  # noqa: E402
from gammapy.modeling import Fit  # noqa: E402
from gammapy.modeling.models import (FoVBackgroundModel, Models, PointSpatialModel,  # noqa: E402
                                     PowerLawSpectralModel, SkyModel)

UL_DELTA = 2.705543  # chi^2(1 dof) quantile at 0.90: the one-sided 95 % limit (SCIENCE.md 3)
N0_REF, E0_REF, INDEX_REF = 3.5e-11, 1.0, 2.5
SOURCE = "crab"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datastore", required=True, help="directory with hdu-index/obs-index")
    p.add_argument("--out", required=True, help="JSON output")
    p.add_argument("--tbins", type=int, default=12, help="light-curve time bins (LIN)")
    p.add_argument("--ebins", type=float, nargs="+", default=[6],
                   help="number of log energy bins, or the energy edges in TeV")
    p.add_argument("--emin", type=float, default=0.1)
    p.add_argument("--emax", type=float, default=100.0)
    p.add_argument("--theta_max", type=float, default=0.2, help="ROI radius, deg")
    p.add_argument("--binsz", type=float, default=0.02, help="map pixel size, deg")
    p.add_argument("--per_decade", type=int, default=10, help="energy bins per decade")
    p.add_argument("--ra", type=float, default=None, help="source RA (default: fixture.json or Crab)")
    p.add_argument("--dec", type=float, default=None)
    p.add_argument("--part", choices=["all", "lightcurve", "spectrum"], default="all",
                   help="compute only the light curve or only the spectrum")
    p.add_argument("--tbin_first", type=int, default=0, help="first light-curve time bin computed")
    p.add_argument("--tbin_count", type=int, default=None,
                   help="light-curve time bins computed from tbin_first (default: to the last)")
    args = p.parse_args()
    if args.part == "spectrum":
        args.tbin_first, args.tbin_count = 0, 0
    elif args.tbin_count is None:
        args.tbin_count = args.tbins - args.tbin_first
    if not (0 <= args.tbin_first and 0 <= args.tbin_count and args.tbin_first + args.tbin_count <= args.tbins):
        p.error(f"time bins {args.tbin_first}..{args.tbin_first + args.tbin_count - 1} are not "
                f"among the {args.tbins}")
    if args.part == "lightcurve" and args.tbin_count == 0:
        p.error("--part lightcurve with no time bin")
    return args


def load_truth(directory):
    path = os.path.join(directory, "fixture.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def flare_integral(t0, t1, flare):
    """Integral of f(t) = 1 + A exp(-(t - tp)^2 / 2 w^2) over [t0, t1] (seconds)."""
    a, w, tp = flare["amplitude"], flare["width"], flare["t_peak"]
    s = math.sqrt(2.0) * w
    return (t1 - t0) + a * w * math.sqrt(math.pi / 2.0) * (math.erf((t1 - tp) / s) - math.erf((t0 - tp) / s))


def true_norm(t0, t1, gtis, flare):
    """Time average of the flare profile over [t0, t1) inside the GTIs (the livetime fraction
    is the same in every run, so this is also the exposure-weighted average)."""
    total, integral = 0.0, 0.0
    for g0, g1 in gtis:
        a, b = max(t0, g0), min(t1, g1)
        if b > a:
            total += b - a
            integral += flare_integral(a, b, flare)
    return integral / total if total > 0 else float("nan")


def pl_integral(e0, e1, n0, index, eref=1.0):
    g = 1.0 - index
    return n0 * eref / g * ((e1 / eref)**g - (e0 / eref)**g)


def make_fit():
    try:
        import iminuit  # noqa: F401
        return Fit(backend="minuit", optimize_opts={"print_level": 0},
                   confidence_opts={"backend": "minuit"}), "minuit"
    except ImportError:
        # scipy: the limits are checked below against the best fit (they may come back equal).
        return Fit(backend="scipy", confidence_opts={"backend": "scipy"}), "scipy"


class Reducer:
    """One MapDataset (counts, exposure, background, psf; diagonal edisp) per observation or
    observation piece, on the analysis geometry."""

    def __init__(self, source, emin, emax, theta_max, binsz, per_decade):
        energy = MapAxis.from_energy_bounds(emin, emax, nbin=per_decade, per_decade=True, unit="TeV",
                                            name="energy")
        self.energy = energy
        self.energy_true = MapAxis.from_energy_edges(energy.edges, name="energy_true")
        width = 2.0 * (theta_max + 0.1)
        self.geom = WcsGeom.create(skydir=source, width=width * u.deg, binsz=binsz, frame="icrs",
                                   proj="TAN", axes=[energy])
        self.mask_fit = self.geom.region_mask([CircleSkyRegion(center=source, radius=theta_max * u.deg)])
        self.maker = MapDatasetMaker(selection=["counts", "exposure", "background", "psf"])

    def mask_solid_angle(self):
        """Solid angle of the fit mask's pixels (one energy plane), deg^2: the ROI Gammapy fits
        in place of the circle's pi theta_max^2."""
        plane = self.mask_fit.data[0]
        return float(np.sum(self.geom.to_image().solid_angle().to_value("deg2")[plane]))

    def dataset(self, obs, name):
        empty = MapDataset.create(self.geom, energy_axis_true=self.energy_true, name=name)
        return self.maker.run(empty, obs)

    def finish(self, dataset):
        dataset.edisp = EDispKernelMap.from_diagonal_response(self.energy, self.energy_true)
        dataset.mask_fit = self.mask_fit
        return dataset

    def stack(self, datasets, name):
        stacked = Datasets(datasets).stack_reduce(name=name)
        return self.finish(stacked)


def source_model(source):
    spectral = PowerLawSpectralModel(index=INDEX_REF, amplitude=N0_REF * u.Unit("cm-2 s-1 TeV-1"),
                                     reference=E0_REF * u.TeV)
    spectral.index.frozen = True
    spectral.amplitude.min = 0.0  # N0 >= 0 (FluxEstimator's norm takes its bounds from here)
    spatial = PointSpatialModel.from_position(source)
    spatial.lon_0.frozen = True
    spatial.lat_0.frozen = True
    return SkyModel(spectral_model=spectral, spatial_model=spatial, name=SOURCE)


def background_model(dataset):
    bkg = FoVBackgroundModel(dataset_name=dataset.name)
    bkg.spectral_model.norm.min = 0.0  # beta >= 0
    bkg.spectral_model.tilt.frozen = True
    return bkg


def col(table, name, unit=None):
    if name not in table.colnames:
        return None
    c = table[name]
    q = c.quantity if c.unit is not None else c.data
    if unit is not None and c.unit is not None:
        q = q.to(unit)
    a = np.asarray(getattr(q, "value", q), dtype=float)
    if a.ndim > 1:
        a = a.reshape(a.shape[0], -1)
        a = np.nansum(a, axis=1) if name.startswith(("counts", "npred")) else a[:, 0]
    return a


def as_list(a):
    return [None if (x is None or not np.isfinite(x)) else float(x) for x in np.asarray(a, dtype=float)]


def pull_summary(pulls):
    p = np.asarray([x for x in pulls if x is not None and np.isfinite(x)])
    if len(p) < 2:
        return {"n": int(len(p)), "mean": None, "std": None}
    return {"n": int(len(p)), "mean": float(p.mean()), "std": float(p.std(ddof=1)),
            "mean_err": float(p.std(ddof=1) / math.sqrt(len(p)))}


def read_observations(datastore):
    """Every observation in memory, the time axis's reference (the first observation's) and
    the sorted GTIs in seconds on that axis."""
    store = DataStore.from_dir(datastore)
    observations = Observations([o.copy(in_memory=True) for o in store.get_observations()])
    time_ref = observations[0].gti.time_ref
    gtis = []
    for o in observations:
        for a, b in zip(o.gti.time_start, o.gti.time_stop):
            gtis.append(((a - time_ref).to_value("s"), (b - time_ref).to_value("s")))
    gtis.sort()
    return observations, time_ref, gtis


def light_curve(args, reducer, observations, time_ref, gtis, truth, fit, source):
    """This run's light-curve bins (tbin_first, tbin_count of the tbins): their per-bin columns
    and the time of reduction and estimator. The bins' edges are those of all tbins, so that a
    part's bins are the same as in one run of all."""
    t = time.time()
    tmin, tmax = gtis[0][0], gtis[-1][1]
    edges = np.linspace(tmin, tmax, args.tbins + 1)
    intervals = [Time([time_ref + a * u.s, time_ref + b * u.s]) for a, b in zip(edges[:-1], edges[1:])]
    mine = range(args.tbin_first, args.tbin_first + args.tbin_count)
    datasets = []
    for i in mine:
        pieces = observations.select_time([intervals[i]])
        parts = [reducer.dataset(o, f"bin{i}_obs{o.obs_id}") for o in pieces]
        if parts:
            datasets.append(reducer.stack(parts, f"bin{i}"))
    if not datasets:
        # The estimator refuses a light curve without a dataset: a part must hold one.
        raise SystemExit(f"light curve: no observation in time bins {mine.start}..{mine.stop - 1}")
    datasets = Datasets(datasets)
    datasets.models = Models([source_model(source)] + [background_model(d) for d in datasets])
    t_reduce = time.time() - t
    t = time.time()
    estimator = LightCurveEstimator(time_intervals=[intervals[i] for i in mine], source=SOURCE,
                                    energy_edges=[args.emin, args.emax] * u.TeV,
                                    reoptimize=True, selection_optional=["ul"],
                                    n_sigma_ul=math.sqrt(UL_DELTA), fit=fit)
    lc = estimator.run(datasets)
    t_lc = time.time() - t
    table = lc.to_table(sed_type="flux", format="lightcurve")
    tab_norm = lc.to_table(sed_type="likelihood", format="lightcurve")
    # The estimator's edges come back as MJD floats (about 1e-6 s off): report the exact
    # edges of the bins it kept (it drops bins that no dataset lies in).
    tstart = (Time(table["time_min"], format="mjd", scale=time_ref.scale) - time_ref).to_value("s")
    kept = [int(np.argmin(np.abs(edges[:-1] - x))) for x in tstart]
    tstart, tstop = edges[:-1][kept], edges[1:][kept]
    norm = col(tab_norm, "norm")
    norm_err = col(tab_norm, "norm_err")
    norm_ul = col(tab_norm, "norm_ul")
    ts = col(tab_norm, "ts")
    lcj = {
        "bin": kept, "time_start": as_list(tstart), "time_stop": as_list(tstop),
        "time_start_mjd": as_list(table["time_min"]), "time_stop_mjd": as_list(table["time_max"]),
        "norm": as_list(norm), "norm_err": as_list(norm_err), "norm_ul": as_list(norm_ul),
        "N0": as_list(norm * N0_REF), "N0_err": as_list(norm_err * N0_REF),
        "N0_ul": as_list(norm_ul * N0_REF),
        "flux": as_list(col(table, "flux", "cm-2 s-1")),
        "flux_err": as_list(col(table, "flux_err", "cm-2 s-1")),
        "flux_ul": as_list(col(table, "flux_ul", "cm-2 s-1")),
        "ts": as_list(ts), "sqrt_ts": as_list(col(tab_norm, "sqrt_ts")),
        "counts": as_list(col(tab_norm, "counts")), "npred": as_list(col(tab_norm, "npred")),
        "npred_excess": as_list(col(tab_norm, "npred_excess")),
        "success": [bool(x) for x in np.asarray(tab_norm["success"]).reshape(len(tab_norm), -1)[:, 0]],
    }
    if truth:
        nt = np.array([true_norm(a, b, gtis, truth["flare"]) for a, b in zip(tstart, tstop)])
        ref_flux = pl_integral(args.emin, args.emax, N0_REF, INDEX_REF)
        lcj.update({"norm_true": as_list(nt), "N0_true": as_list(nt * N0_REF),
                    "flux_true": as_list(nt * ref_flux), "pull": as_list((norm - nt) / norm_err)})
    print(f"light curve: {len(norm)} of the time bins {mine.start}..{mine.stop - 1} of {args.tbins}, "
          f"{len(datasets)} datasets [reduction {t_reduce:.1f} s, estimator {t_lc:.1f} s]", flush=True)
    for i in range(len(norm)):
        extra = f"  true {lcj['norm_true'][i]:.3f}  pull {lcj['pull'][i]:+.2f}" if truth else ""
        print(f"  bin {kept[i]:2d} [{tstart[i]:.0f}, {tstop[i]:.0f}) s: norm {norm[i]:.3f} +- {norm_err[i]:.3f}"
              f" ul {norm_ul[i]:.3f} ts {ts[i]:.1f} counts {lcj['counts'][i]:.0f}{extra}", flush=True)
    return lcj, {"lightcurve_reduction": t_reduce, "lightcurve_estimator": t_lc}


def spectrum(args, reducer, observations, gtis, truth, fit, source):
    """The global fit of all runs stacked and the flux points with its index: the spectrum's
    columns and their time."""
    t = time.time()
    parts = [reducer.dataset(o, f"obs{o.obs_id}") for o in observations]
    stacked = reducer.stack(parts, "stacked")
    spec_sets = Datasets([stacked])
    model = source_model(source)
    model.spectral_model.index.frozen = False
    spec_sets.models = Models([model, background_model(stacked)])
    global_fit = fit.run(spec_sets)
    index = model.spectral_model.index
    amplitude = model.spectral_model.amplitude
    gfit = {"index": float(index.value), "index_err": float(index.error),
            "N0": float(amplitude.value), "N0_err": float(amplitude.error),
            "background_norm": float(spec_sets.models[1].spectral_model.norm.value),
            "success": bool(global_fit.success)}
    index.frozen = True
    axis_edges = reducer.energy.edges.to_value("TeV")
    if len(args.ebins) == 1 and float(args.ebins[0]).is_integer():
        wanted = np.geomspace(args.emin, args.emax, int(args.ebins[0]) + 1)
    else:
        wanted = np.asarray(args.ebins, dtype=float)
    # Gammapy groups whole dataset bins: the edges used are the nearest dataset bin edges.
    e_edges = np.unique(axis_edges[[int(np.argmin(np.abs(np.log(axis_edges / e)))) for e in wanted]])
    fpe = FluxPointsEstimator(energy_edges=e_edges * u.TeV, source=SOURCE, reoptimize=True,
                              selection_optional=["ul"], n_sigma_ul=math.sqrt(UL_DELTA), fit=fit)
    fp = fpe.run(spec_sets)
    t_spec = time.time() - t
    st = fp.to_table(sed_type="dnde")
    sn = fp.to_table(sed_type="likelihood")
    e_min = col(st, "e_min", "TeV")
    e_max = col(st, "e_max", "TeV")
    e_ref = col(st, "e_ref", "TeV")
    snorm, snorm_err = col(sn, "norm"), col(sn, "norm_err")
    dnde, dnde_err = col(st, "dnde", "cm-2 s-1 TeV-1"), col(st, "dnde_err", "cm-2 s-1 TeV-1")
    spj = {"e_min": as_list(e_min), "e_max": as_list(e_max), "e_ref": as_list(e_ref),
           "norm": as_list(snorm), "norm_err": as_list(snorm_err), "norm_ul": as_list(col(sn, "norm_ul")),
           "dnde": as_list(dnde), "dnde_err": as_list(dnde_err),
           "dnde_ul": as_list(col(st, "dnde_ul", "cm-2 s-1 TeV-1")),
           "ts": as_list(col(sn, "ts")), "sqrt_ts": as_list(col(sn, "sqrt_ts")),
           "counts": as_list(col(sn, "counts")), "npred": as_list(col(sn, "npred")),
           "success": [bool(x) for x in np.asarray(sn["success"]).reshape(len(sn), -1)[:, 0]],
           "global_fit": gfit}
    if truth:
        mean_f = sum(flare_integral(a, b, truth["flare"]) for a, b in gtis) / sum(b - a for a, b in gtis)
        n0, g = truth["source"]["N0"], truth["source"]["index"]
        dnde_true = mean_f * n0 * e_ref**-g
        gfit.update({"N0_true": mean_f * n0, "index_true": g})
        spj.update({"mean_flare_factor": mean_f, "dnde_true": as_list(dnde_true),
                    "flux_true": as_list([mean_f * pl_integral(a, b, n0, g) for a, b in zip(e_min, e_max)]),
                    "norm_true": as_list(dnde_true / (amplitude.value * e_ref**-index.value)),
                    "pull": as_list((dnde - dnde_true) / dnde_err)})
    print(f"spectrum: global index {gfit['index']:.3f} +- {gfit['index_err']:.3f}, "
          f"N0 {gfit['N0']:.3e} +- {gfit['N0_err']:.1e}; {len(e_ref)} flux points [{t_spec:.1f} s]",
          flush=True)
    for i in range(len(e_ref)):
        extra = f"  true {spj['dnde_true'][i]:.3e}  pull {spj['pull'][i]:+.2f}" if truth else ""
        print(f"  [{e_min[i]:.3g}, {e_max[i]:.3g}] TeV: dnde {dnde[i]:.3e} +- {dnde_err[i]:.1e}"
              f" ts {spj['ts'][i]:.1f} counts {spj['counts'][i]:.0f}{extra}", flush=True)
    return spj, t_spec


def flare(lcj, profile):
    """The two bins nearest the flare's peak against the first and the last bin."""
    norm, norm_err = np.asarray(lcj["norm"], dtype=float), np.asarray(lcj["norm_err"], dtype=float)
    middle = 0.5 * (np.asarray(lcj["time_start"]) + np.asarray(lcj["time_stop"]))
    mid = np.argsort(np.abs(middle - profile["t_peak"]))[:2]
    out = np.array([0, len(norm) - 1])
    diff = norm[mid].mean() - norm[out].mean()
    err = 0.5 * math.sqrt(np.sum(norm_err[mid]**2) + np.sum(norm_err[out]**2))
    return {"middle_bins": [int(i) for i in mid], "outer_bins": [int(i) for i in out],
            "middle_norm": float(norm[mid].mean()), "outer_norm": float(norm[out].mean()),
            "significance": float(diff / err)}


def summarize(lcj, spj, truth):
    """What is computed across the bins of the light curve and the spectrum, once they are
    whole: the pulls' summaries, the flare and whether every upper limit is above its norm."""
    if truth:
        lcj["pull_summary"] = pull_summary(lcj["pull"])
        lcj["flare"] = flare(lcj, truth["flare"])
        spj["pull_summary"] = pull_summary(spj["pull"])
    # Upper limits must lie above the best fit (a confidence backend that fails quietly
    # returns the best fit itself).
    for name, part in (("light curve", lcj), ("spectrum", spj)):
        bad = [i for i, (n, ul) in enumerate(zip(part["norm"], part["norm_ul"]))
               if n is not None and (ul is None or not ul > n)]
        part["ul_above_norm"] = not bad
        if bad:
            print(f"WARNING: {name}: upper limit not above the best fit in bins {bad}", flush=True)


STAGES = ("read", "lightcurve_reduction", "lightcurve_estimator", "spectrum", "total")


def merge(parts):
    """The reference document of parts (this script's JSON, one run each) that together hold
    every light-curve bin and the spectrum once: the light curve's columns joined in bin order,
    then summarize(). Its timing is each stage's time summed over the parts, and each part's."""
    first = parts[0]
    for key in ("creator", "datastore", "settings"):
        if any(p[key] != first[key] for p in parts):
            raise ValueError(f"reference parts of different runs: their {key} differ")
    with_lc = sorted((p for p in parts if "lightcurve" in p), key=lambda p: p["part"]["tbins"][0])
    covered = [b for p in with_lc for b in range(*p["part"]["tbins"])]
    with_spectrum = [p for p in parts if "spectrum" in p]
    if covered != list(range(first["settings"]["tbins"])) or len(with_spectrum) != 1:
        raise ValueError(f"reference parts hold the time bins {covered} and {len(with_spectrum)} "
                         f"spectra, not every bin and one spectrum")
    lcj = {key: [x for p in with_lc for x in p["lightcurve"][key]] for key in with_lc[0]["lightcurve"]}
    spj = dict(with_spectrum[0]["spectrum"])
    summarize(lcj, spj, load_truth(first["datastore"]))
    timing = {stage: sum(p["timing"][stage] for p in parts) for stage in STAGES}
    timing["parts"] = [{"part": p["part"], **p["timing"]} for p in parts]
    return {"creator": first["creator"], "datastore": first["datastore"], "settings": first["settings"],
            "lightcurve": lcj, "spectrum": spj, "timing": timing}


def settings(args, ra, dec, reducer, backend, time_ref):
    return {"source_ra": ra, "source_dec": dec, "theta_max": args.theta_max,
            "emin": args.emin, "emax": args.emax, "binsz": args.binsz,
            "energy_bins_per_decade": args.per_decade,
            "mask_solid_angle_deg2": reducer.mask_solid_angle(), "index": INDEX_REF, "N0_ref": N0_REF, "E0": E0_REF,
            "tbins": args.tbins, "tbinalg": "LIN", "ul_delta_2lnL": UL_DELTA,
            "fit_backend": backend, "reoptimize": True, "edisp": "diagonal (none)",
            "time_axis": "seconds since the first observation's MJDREF",
            "mjdref": float(time_ref.mjd), "timesys": time_ref.scale}


def main():
    args = parse_args()
    truth = load_truth(args.datastore)
    ra = args.ra if args.ra is not None else (truth["source"]["ra"] if truth else 83.6331)
    dec = args.dec if args.dec is not None else (truth["source"]["dec"] if truth else 22.0145)
    source = SkyCoord(ra, dec, unit="deg", frame="icrs")
    fit, backend = make_fit()
    print(f"gammapy {gammapy.__version__}: reference analysis of {args.datastore} "
          f"(fit backend {backend})", flush=True)

    t = time.time()
    observations, time_ref, gtis = read_observations(args.datastore)
    timing = {"read": time.time() - t, "lightcurve_reduction": 0.0, "lightcurve_estimator": 0.0,
              "spectrum": 0.0}
    print(f"read {len(observations)} observations, {sum(len(o.events.table) for o in observations)} "
          f"events [{timing['read']:.1f} s]", flush=True)

    reducer = Reducer(source, args.emin, args.emax, args.theta_max, args.binsz, args.per_decade)
    part = {"creator": f"tests/e2e/gammapy_reference.py, gammapy {gammapy.__version__}",
            "datastore": os.path.abspath(args.datastore),
            "settings": settings(args, ra, dec, reducer, backend, time_ref),
            "part": {"tbins": [args.tbin_first, args.tbin_first + args.tbin_count],
                     "spectrum": args.part != "lightcurve"}}
    if args.tbin_count:
        part["lightcurve"], t_lc = light_curve(args, reducer, observations, time_ref, gtis, truth, fit, source)
        timing.update(t_lc)
    if part["part"]["spectrum"]:
        part["spectrum"], timing["spectrum"] = spectrum(args, reducer, observations, gtis, truth, fit, source)
    timing["total"] = time.time() - T_BEGIN
    part["timing"] = timing
    whole = args.tbin_count == args.tbins and part["part"]["spectrum"]
    with open(args.out, "w") as f:
        json.dump(merge([part]) if whole else part, f, indent=1)
    print(f"reference{'' if whole else ' part'}: {args.out} written; {time.time() - T_BEGIN:.1f} s "
          f"(imports included)", flush=True)
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*IERS.*")
    sys.exit(main())
