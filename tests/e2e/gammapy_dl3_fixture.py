#!/usr/bin/python3
"""A GADF DL3 data set made with Gammapy's own API (no binflow code), for checking binflow's
DL3 reader and fits against Gammapy 1.0 (Debian python3-gammapy).

    /usr/bin/python3 tests/e2e/gammapy_dl3_fixture.py --outdir DIR [--seed N] [--small]

DIR receives, and nothing outside it is written:
- obs_<OBS_ID>.fits.gz, one per run: EVENTS, GTI (one interval), EFFECTIVE AREA (aeff_2d),
  ENERGY DISPERSION (edisp_2d, a narrow placeholder, see below), PSF_2D_GAUSS (psf_3gauss),
  BACKGROUND (bkg_2d), written by `Observation.write(..., include_irfs=True)`;
- hdu-index.fits.gz and obs-index.fits.gz, from `DataStore.from_events_files` (corrected:
  see `write_index`), so that `DataStore.from_dir(DIR)` reads the set;
- fixture.json: the simulated truth (source, spectrum, flare, runs, IRF formulas, seed), for
  gammapy_reference.py and later tests.

What is simulated (SCIENCE.md defaults where it has them):
- source: point source at the Crab (83.6331, 22.0145) deg, power law N0 = 3.5e-11
  cm^-2 s^-1 TeV^-1 at 1 TeV, index 2.5, times f(t) = 1 + 3 exp(-(t - t_peak)^2 / (2 w^2))
  (binflow's `flare` profile) with t_peak in the middle of the data set and w = 600 s. Gammapy
  has no "constant plus Gaussian" temporal model, so the source is two SkyModels with the same
  position and spectrum: `crab` (no temporal model, f = 1) and `crab_flare` (amplitude 3 N0 and
  a GaussianTemporalModel, whose peak value is 1); the sampler draws each one separately.
- four wobble runs of 1800 s, 120 s apart, pointing 0.5 deg north, east, south and west of the
  source; deadtime fraction 0.05 (LIVETIME = 1710 s, DEADC = 0.95); MJDREF 51544.5 TT, the
  first run starting 2021-12-10T00:30:00 TT.
- IRFs on true energy (or reconstructed, for the background) x offset, built analytically on
  Gammapy's IRF classes (energy nodes 0.05-200 TeV, 10 per decade; offset bins 0-3 deg of 0.25):
  * aeff_2d: 4e5 m^2 (1 - exp(-E / 0.1 TeV)) exp(-o^2 / (2 (1.5 deg)^2)) (the embedded
    instrument of SCIENCE.md on axis, falling off with offset o), stored in m^2;
  * psf_3gauss: sigma_1 = (0.03 + 0.07 exp(-log10(E / 0.1 TeV) / 1.028)) (1 + 0.2 o^2/deg^2) deg
    (the embedded instrument's sigma on axis), sigma_2 = 1.5 sigma_1, sigma_3 = 2 sigma_1,
    AMPL_2 = 0.3, AMPL_3 = 0.02, SCALE normalising the sum to 1 (in sr^-1). The tails are
    kept inside Gammapy's PSF-map radius (RAD_MAX = 0.66 deg): the sampler draws offsets, and
    the analysis builds its kernels, only within it, so a wider PSF would be truncated and
    renormalised (with sigma_3 = 4 sigma_1, AMPL_3 = 0.005: 1.6 % of the PSF at 0.1 TeV, +1 %
    source events within 0.2 deg), which a reader using the closed-form containment of the
    three Gaussians would not see; here the truncation is below 5e-4 at 0.1 TeV;
  * bkg_2d: 0.75 (E / TeV)^-2.7 (1 - exp(-E / 0.1 TeV)) exp(-o^2 / (2 (1.5 deg)^2))
    s^-1 TeV^-1 deg^-2 per second of ontime, stored in s^-1 MeV^-1 sr^-1 (the GADF units);
  * edisp_2d: a Gaussian in migra of width 0.01 (bias 0). binflow ignores energy dispersion
    (SCIENCE.md 7), so the events are drawn WITHOUT it (reconstructed = true energy exactly:
    the sampler's dataset has no edisp); the HDU is there because real DL3 files have one and
    Gammapy's DataStore wants one for "full-enclosure" observations.
- events: `MapDatasetEventSampler` on a `MapDataset` made by `MapDatasetMaker` (exposure,
  background, psf) from each run: a box centred on the source (1 deg wide with --small, 2.5 deg
  otherwise; pixels 0.01 deg), reconstructed energies 0.1-100 TeV in 20 bins per decade (the
  sampler places events uniformly in pixel and log-energy within a bin, so the bins are fine).
  Each run draws from its own random stream (seed, run index): deterministic for a seed.
  Events are sorted by TIME; besides TIME, RA, DEC, ENERGY they carry MC_ID (0 background,
  1 `crab`, 2 `crab_flare`), ENERGY_TRUE, RA_TRUE, DEC_TRUE, DETX, DETY and EVENT_ID.
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import time
import warnings

T_BEGIN = time.time()

import numpy as np  # noqa: E402
import scipy.special  # noqa: E402
import astropy.units as u  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.time import Time  # noqa: E402
from astropy.utils import iers  # noqa: E402

# No network and no cache: the sampler computes ALT_PNT/AZ_PNT for the header, which would
# otherwise make astropy download IERS tables into ~/.astropy. The dates are inside the
# bundled IERS-B table.
iers.conf.auto_download = False
iers.conf.iers_degraded_accuracy = "warn"

import gammapy  # noqa: E402
from gammapy.data import DataStore, Observation  # noqa: E402
from gammapy.datasets import MapDataset  # noqa: E402
from gammapy.datasets import MapDatasetEventSampler  # noqa: E402
from gammapy.irf import (Background2D, EffectiveAreaTable2D,  # noqa: E402
                         EnergyDependentMultiGaussPSF, EnergyDispersion2D)
from gammapy.makers import MapDatasetMaker  # noqa: E402
from gammapy.modeling import Parameter  # noqa: E402
from gammapy.maps import MapAxis, WcsGeom  # noqa: E402
from gammapy.modeling.models import (FoVBackgroundModel, GaussianTemporalModel,  # noqa: E402
                                     Models, PointSpatialModel, PowerLawSpectralModel,
                                     SkyModel)

# ---- the simulated truth -----------------------------------------------------------------
SOURCE_RA, SOURCE_DEC = 83.6331, 22.0145
N0 = 3.5e-11  # cm^-2 s^-1 TeV^-1 at E0
E0 = 1.0  # TeV
INDEX = 2.5
FLARE_AMPLITUDE = 3.0
FLARE_WIDTH = 600.0  # s
N_RUNS = 4
RUN_DURATION = 1800.0  # s
RUN_GAP = 120.0  # s
DEADTIME_FRACTION = 0.05
WOBBLE_OFFSET = 0.5  # deg
WOBBLE_ANGLES = [("N", 0.0), ("E", 90.0), ("S", 180.0), ("W", 270.0)]  # position angles
OBS_ID_FIRST = 1001
MJDREF = 51544.5  # TT
FIRST_START_ISO = "2021-12-10T00:30:00"  # TT
EMIN, EMAX = 0.1, 100.0  # TeV, the events' energy range

# ---- the instrument ------------------------------------------------------------------------
AEFF_ON_AXIS_M2 = 4e5
FOV_SIGMA = 1.5  # deg, offset fall-off of aeff and background
BKG_NORM = 0.75  # s^-1 TeV^-1 deg^-2 at 1 TeV, per second of ontime
BKG_INDEX = 2.7
PSF_AMPL_2, PSF_AMPL_3 = 0.3, 0.02
PSF_SIGMA_RATIOS = (1.0, 1.5, 2.0)
PSF_OFFSET_WIDENING = 0.2  # sigma x (1 + 0.2 o^2 / deg^2)
EDISP_SIGMA = 0.01


def aeff_m2(energy_tev, offset_deg):
    return (AEFF_ON_AXIS_M2 * (1.0 - np.exp(-energy_tev / 0.1))
            * np.exp(-offset_deg**2 / (2.0 * FOV_SIGMA**2)))


def psf_sigma1_deg(energy_tev, offset_deg):
    on_axis = 0.03 + 0.07 * np.exp(-np.log10(energy_tev / 0.1) / 1.028)
    return on_axis * (1.0 + PSF_OFFSET_WIDENING * offset_deg**2)


def bkg_rate(energy_tev, offset_deg):
    """s^-1 TeV^-1 deg^-2 per second of ontime."""
    return (BKG_NORM * energy_tev**-BKG_INDEX * (1.0 - np.exp(-energy_tev / 0.1))
            * np.exp(-offset_deg**2 / (2.0 * FOV_SIGMA**2)))


def make_irfs():
    energy_true = MapAxis.from_energy_bounds(0.05, 200.0, nbin=10, per_decade=True,
                                             unit="TeV", name="energy_true")
    energy_reco = MapAxis.from_energy_edges(energy_true.edges, name="energy")
    offset = MapAxis.from_bounds(0.0, 3.0, nbin=12, unit="deg", name="offset")
    meta = {"TELESCOP": "CTA", "INSTRUME": "Northern Array"}  # a known site for the sampler

    e = energy_true.center.to_value("TeV")[:, None]
    o = offset.center.to_value("deg")[None, :]
    aeff = EffectiveAreaTable2D(axes=[energy_true, offset], data=aeff_m2(e, o), unit="m2",
                                meta=dict(meta))

    sigma1 = psf_sigma1_deg(e, o)
    sigmas = [sigma1 * r for r in PSF_SIGMA_RATIOS]
    names = ["sigma_1", "sigma_2", "sigma_3", "scale", "ampl_2", "ampl_3"]
    data = np.empty(sigma1.shape, dtype={"names": names, "formats": [np.float32] * 6})
    for name, s in zip(names[:3], sigmas):
        data[name] = s
    data["ampl_2"] = PSF_AMPL_2
    data["ampl_3"] = PSF_AMPL_3
    # GADF: dP/dOmega = SCALE (g1 + AMPL_2 g2 + AMPL_3 g3), g_i = exp(-r^2 / 2 sigma_i^2);
    # normalised to 1 over the plane when SCALE = 1 / (2 pi sum A_i sigma_i^2), sigma in rad.
    # (Gammapy renormalises the sum itself, so only the ratios A_i sigma_i^2 matter to it.)
    rad = np.deg2rad(1.0)
    weight = (sigmas[0] * rad)**2 + PSF_AMPL_2 * (sigmas[1] * rad)**2 + PSF_AMPL_3 * (sigmas[2] * rad)**2
    data["scale"] = 1.0 / (2.0 * np.pi * weight)
    units = {"sigma_1": u.deg, "sigma_2": u.deg, "sigma_3": u.deg, "scale": u.Unit("sr-1"),
             "ampl_2": u.Unit(""), "ampl_3": u.Unit("")}
    psf = EnergyDependentMultiGaussPSF(axes=[energy_true, offset], data=data, unit=units,
                                       meta=dict(meta))

    er = energy_reco.center.to_value("TeV")[:, None]
    bkg_tev_deg2 = bkg_rate(er, o) * u.Unit("s-1 TeV-1 deg-2")
    bkg = Background2D(axes=[energy_reco, offset],
                       data=bkg_tev_deg2.to_value("s-1 MeV-1 sr-1"), unit="s-1 MeV-1 sr-1",
                       meta=dict(meta))

    migra = MapAxis.from_bounds(0.8, 1.2, nbin=80, name="migra")
    edisp = EnergyDispersion2D.from_gauss(energy_axis_true=energy_true, migra_axis=migra,
                                          offset_axis=offset, bias=0.0, sigma=EDISP_SIGMA)
    edisp.meta.update(meta)
    return {"aeff": aeff, "psf": psf, "bkg": bkg, "edisp": edisp}


def run_times():
    """Start and stop (astropy Time) of each run."""
    first = Time(FIRST_START_ISO, scale="tt")
    out = []
    for k in range(N_RUNS):
        start = first + (k * (RUN_DURATION + RUN_GAP)) * u.s
        out.append((start, start + RUN_DURATION * u.s))
    return out


class GaussianFlare(GaussianTemporalModel):
    """GaussianTemporalModel with its `integral` on the GTIs' time scale.

    Gammapy 1.0's GaussianTemporalModel.integral builds the peak time as
    Time(t_ref, format="mjd"), i.e. reads t_ref as UTC, while `evaluate` (through
    TemporalModel.__call__ and sample_time) compares it with the MJD numbers of the GTI's own
    scale. With TT GTIs the number of flare events the sampler draws per run (from `integral`)
    then belongs to a peak TT - UTC = 69.184 s later than the time distribution it draws them
    with (from `evaluate`): -10 % and +10 % flare events in the two runs beside the peak, seen
    as pulls of -2.8 and +3.2 in the reference light curve. Here t_ref is read on the scale of
    the GTI times, as `evaluate` does; the formula is Gammapy's."""

    tag = ["GaussianFlare"]
    # Gammapy collects a model's parameters from its own class body: declare them again.
    t_ref = Parameter("t_ref", Time("2000-01-01").mjd, unit="day", frozen=False)
    sigma = Parameter("sigma", "1 d", frozen=False)

    def integral(self, t_min, t_max, **kwargs):
        sigma = self.sigma.quantity
        t_ref = Time(self.t_ref.quantity.to_value("d"), format="mjd", scale=t_min.scale)
        u_min = ((t_min - t_ref) / (np.sqrt(2) * sigma)).to_value("")
        u_max = ((t_max - t_ref) / (np.sqrt(2) * sigma)).to_value("")
        integral = np.sqrt(np.pi / 2) * sigma * (scipy.special.erf(u_max) - scipy.special.erf(u_min))
        return (integral / self.time_sum(t_min, t_max)).to_value("")


def source_models(t_peak):
    position = SkyCoord(SOURCE_RA, SOURCE_DEC, unit="deg", frame="icrs")

    def component(name, amplitude, temporal=None):
        spectral = PowerLawSpectralModel(index=INDEX, amplitude=amplitude * u.Unit("cm-2 s-1 TeV-1"),
                                         reference=E0 * u.TeV)
        spatial = PointSpatialModel.from_position(position)
        return SkyModel(spectral_model=spectral, spatial_model=spatial, temporal_model=temporal,
                        name=name)

    flare = GaussianFlare(t_ref=t_peak.mjd * u.d, sigma=FLARE_WIDTH * u.s)
    return [component("crab", N0), component("crab_flare", FLARE_AMPLITUDE * N0, flare)]


def sampling_geom(small):
    position = SkyCoord(SOURCE_RA, SOURCE_DEC, unit="deg", frame="icrs")
    energy = MapAxis.from_energy_bounds(EMIN, EMAX, nbin=20, per_decade=True, unit="TeV",
                                        name="energy")
    width = 1.0 if small else 2.5
    geom = WcsGeom.create(skydir=position, width=width * u.deg, binsz=0.01, frame="icrs",
                          proj="TAN", axes=[energy])
    energy_true = MapAxis.from_energy_edges(energy.edges, name="energy_true")
    return geom, energy_true, width


class EventSampler(MapDatasetEventSampler):
    """Gammapy's sampler, minus a cost: `sample_sources` updates each model's evaluator, which
    computes a PSF kernel (0.999 containment, 4x oversampled, every energy bin) that drawing
    the true positions never uses (the PSF is applied afterwards by `sample_psf`, from the
    dataset's PSF map). That kernel was 80 % of the fixture's run time (47 of 61 s with
    --small). Without the PSF map the evaluator's exposure cutout loses its PSF margin, so the
    draws differ from the stock sampler's (an equally valid realisation: the true positions
    of a point source lie in the pixels around it either way)."""

    def sample_sources(self, dataset):
        psf, dataset.psf = dataset.psf, None
        try:
            return super().sample_sources(dataset)
        finally:
            dataset.psf = psf


def random_state(seed, index):
    return np.random.RandomState(np.random.SeedSequence([seed, index]).generate_state(1)[0])


GADF_CLASS = {"AEFF_2D": "aeff_2d", "EDISP_2D": "edisp_2d", "PSF_3GAUSS": "psf_3gauss",
              "PSF_TABLE": "psf_table", "BKG_2D": "bkg_2d", "BKG_3D": "bkg_3d"}
HDU_TYPE = {"aeff_2d": "aeff", "edisp_2d": "edisp", "psf_3gauss": "psf", "psf_table": "psf",
            "bkg_2d": "bkg", "bkg_3d": "bkg"}


def complete_headers(path):
    """Gammapy 1.0 writes a parametric PSF without the GADF HDUCLASn keywords (only
    IRF.to_table adds them; ParametricPSF.to_table does not): add them."""
    with fits.open(path, mode="update") as hdul:
        h = hdul["PSF_2D_GAUSS"].header
        for key, value in [("HDUCLASS", "GADF"),
                           ("HDUDOC", "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats"),
                           ("HDUVERS", "0.2"), ("HDUCLAS1", "RESPONSE"), ("HDUCLAS2", "RPSF"),
                           ("HDUCLAS3", "FULL-ENCLOSURE"), ("HDUCLAS4", "PSF_3GAUSS")]:
            h.setdefault(key, value)
        for extname in ("EFFECTIVE AREA", "ENERGY DISPERSION", "BACKGROUND"):
            hdr = hdul[extname].header
            hdr.setdefault("TELESCOP", "CTA")
            hdr.setdefault("INSTRUME", "Northern Array")


def write_observation(obs, path):
    """Observation.write into a plain FITS file beside `path`, the headers completed in place,
    then gzip-compressed to `path` with a zero timestamp (so that equal data give equal bytes,
    apart from the primary header's DATE, which Gammapy sets to the time of writing)."""
    plain = path[:-3]
    obs.write(plain, overwrite=True, include_irfs=True)
    complete_headers(plain)
    gzip_file(plain, path)


def gzip_file(plain, path):
    """Compress `plain` into `path` (zero timestamp in the gzip header) and remove it."""
    with open(plain, "rb") as src, open(path, "wb") as raw:
        with gzip.GzipFile(filename=os.path.basename(plain), mode="wb", fileobj=raw,
                           compresslevel=6, mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    os.remove(plain)


def write_index(outdir, files):
    """hdu-index and obs-index through DataStore.from_events_files, with what Gammapy 1.0's
    DataStoreMaker gets wrong for these files corrected: it lists every IRF with a fixed class
    and name (aeff_2d 'EFFECTIVE AREA', edisp_2d 'ENERGY DISPERSION', psf_3gauss 'POINT SPREAD
    FUNCTION', bkg_3d 'BACKGROUND') whatever the file holds, and FILE_DIR as the directory
    given. Here the IRF rows are rebuilt from the HDUs actually in each file (HDUCLAS4 and
    EXTNAME), and FILE_DIR is '.' so that the directory can be moved."""
    from astropy.table import vstack
    from gammapy.data import HDUIndexTable
    store = DataStore.from_events_files([os.path.join(outdir, f) for f in files])
    hdu = store.hdu_table
    keep = [row.index for row in hdu if row["HDU_TYPE"] in ("events", "gti")]
    base = hdu[keep]
    rows = []
    for f in files:
        obs_id = int(fits.getheader(os.path.join(outdir, f), "EVENTS")["OBS_ID"])
        with fits.open(os.path.join(outdir, f)) as hdul:
            for h in hdul[1:]:
                cls = GADF_CLASS.get(str(h.header.get("HDUCLAS4", "")).strip().upper())
                if cls is not None:
                    rows.append({"OBS_ID": obs_id, "HDU_TYPE": HDU_TYPE[cls], "HDU_CLASS": cls,
                                 "FILE_DIR": ".", "FILE_NAME": f, "HDU_NAME": h.name})
    irf = HDUIndexTable(rows=rows, names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR",
                                          "FILE_NAME", "HDU_NAME"])
    base["FILE_DIR"] = "."
    table = HDUIndexTable(vstack([base, irf], metadata_conflicts="silent"))
    table.meta.update(hdu.meta)
    table.sort(["OBS_ID", "HDU_TYPE"])
    table.write(os.path.join(outdir, "hdu-index.fits"), overwrite=True)
    gzip_file(os.path.join(outdir, "hdu-index.fits"), os.path.join(outdir, "hdu-index.fits.gz"))

    obs = store.obs_table
    obs["EVENTS_FILENAME"] = list(files)
    obs["IRF_FILENAME"] = list(files)
    obs.write(os.path.join(outdir, "obs-index.fits"), overwrite=True)
    gzip_file(os.path.join(outdir, "obs-index.fits"), os.path.join(outdir, "obs-index.fits.gz"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--small", action="store_true",
                        help="a 1-deg box around the source instead of 2.5 deg (CI)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*IERS.*")
    os.makedirs(args.outdir, exist_ok=True)
    print(f"gammapy {gammapy.__version__}: DL3 fixture into {args.outdir} "
          f"(seed {args.seed}, {'small' if args.small else 'full'})", flush=True)

    reference_time = Time(MJDREF, format="mjd", scale="tt")
    runs = run_times()
    t_peak = runs[0][0] + 0.5 * (runs[-1][1] - runs[0][0])
    irfs = make_irfs()
    geom, energy_true, width = sampling_geom(args.small)
    source = SkyCoord(SOURCE_RA, SOURCE_DEC, unit="deg", frame="icrs")
    maker = MapDatasetMaker(selection=["exposure", "background", "psf"])

    files, summary = [], []
    for k, ((start, stop), (label, angle)) in enumerate(zip(runs, WOBBLE_ANGLES)):
        t_obs = time.time()
        obs_id = OBS_ID_FIRST + k
        pointing = source.directional_offset_by(angle * u.deg, WOBBLE_OFFSET * u.deg)
        # One observation per run, each with its one GTI (an observation holding several
        # GTIs reports the first GTI's stop as its end in Gammapy 1.0).
        obs = Observation.create(pointing=pointing, obs_id=obs_id, tstart=start, tstop=stop,
                                 irfs=irfs, deadtime_fraction=DEADTIME_FRACTION,
                                 reference_time=reference_time)
        empty = MapDataset.create(geom, energy_axis_true=energy_true, name=f"obs_{obs_id}",
                                  reference_time=reference_time)
        dataset = maker.run(empty, obs)
        models = source_models(t_peak)
        dataset.models = Models(models + [FoVBackgroundModel(dataset_name=dataset.name)])
        events = EventSampler(random_state=random_state(args.seed, k)).run(dataset, obs)
        events.table.meta["OBJECT"] = "Crab (binflow fixture)"
        # The sampler stacks background then source events; IACT event lists are in time order.
        events.table.sort("TIME")
        events.table["EVENT_ID"] = np.arange(len(events.table), dtype=np.int64)
        obs._events = events
        name = f"obs_{obs_id}.fits.gz"
        write_observation(obs, os.path.join(args.outdir, name))
        files.append(name)
        n_src = int(np.sum(events.table["MC_ID"] > 0))
        row = {"obs_id": obs_id, "file": name, "wobble": label,
               "ra_pnt": float(pointing.ra.deg), "dec_pnt": float(pointing.dec.deg),
               "offset_deg": float(pointing.separation(source).deg),
               "tstart": float((start - reference_time).to_value("s")),
               "tstop": float((stop - reference_time).to_value("s")),
               "ontime": float(obs.observation_time_duration.to_value("s")),
               "livetime": float(obs.observation_live_time_duration.to_value("s")),
               "events": len(events.table), "source_events": n_src}
        summary.append(row)
        print(f"obs {obs_id} wobble {label}: pointing ({row['ra_pnt']:.4f}, {row['dec_pnt']:.4f}) "
              f"deg, offset {row['offset_deg']:.3f} deg, {row['events']} events "
              f"({n_src} source), livetime {row['livetime']:.1f} s of {row['ontime']:.1f} s "
              f"[{time.time() - t_obs:.1f} s]", flush=True)

    write_index(args.outdir, files)
    truth = {
        "creator": f"tests/e2e/gammapy_dl3_fixture.py, gammapy {gammapy.__version__}",
        "seed": args.seed, "small": args.small, "sampling_box_deg": width,
        "mjdref": MJDREF, "timesys": "tt",
        "source": {"ra": SOURCE_RA, "dec": SOURCE_DEC, "N0": N0, "E0": E0, "index": INDEX},
        "flare": {"profile": "1 + amplitude exp(-(t - t_peak)^2 / (2 width^2))",
                  "amplitude": FLARE_AMPLITUDE, "width": FLARE_WIDTH,
                  "t_peak": float((t_peak - reference_time).to_value("s")),
                  "t_peak_mjd": float(t_peak.mjd)},
        "energy_range": [EMIN, EMAX], "deadtime_fraction": DEADTIME_FRACTION,
        "instrument": {
            "aeff": f"{AEFF_ON_AXIS_M2} m2 (1 - exp(-E/0.1 TeV)) exp(-o^2 / (2 ({FOV_SIGMA} deg)^2))",
            "psf_3gauss": "sigma_1 = (0.03 + 0.07 exp(-log10(E/0.1 TeV)/1.028)) (1 + 0.2 o^2) deg, "
                          f"sigma_2 = {PSF_SIGMA_RATIOS[1]} sigma_1, sigma_3 = {PSF_SIGMA_RATIOS[2]} sigma_1, "
                          f"AMPL_2 = {PSF_AMPL_2}, AMPL_3 = {PSF_AMPL_3}",
            "bkg_2d": f"{BKG_NORM} (E/TeV)^-{BKG_INDEX} (1 - exp(-E/0.1 TeV)) exp(-o^2 / (2 ({FOV_SIGMA} deg)^2))"
                      " s^-1 TeV^-1 deg^-2 per second of ontime",
            "edisp_2d": f"Gaussian in migra, sigma {EDISP_SIGMA}, bias 0; NOT applied to the events",
        },
        "observations": summary,
    }
    with open(os.path.join(args.outdir, "fixture.json"), "w") as f:
        json.dump(truth, f, indent=1)
    total = sum(r["events"] for r in summary)
    print(f"fixture: {len(files)} observations, {total} events, index files written; "
          f"{time.time() - T_BEGIN:.1f} s (imports included)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
