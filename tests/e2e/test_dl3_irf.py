"""binflow's DL3 reader against Gammapy 1.0 (Debian's python3-gammapy).

Gammapy's own constructors make the response (EffectiveAreaTable2D.from_parametrization and
a table with offset dependence, EnergyDependentMultiGaussPSF and the PSF3D it gives,
Background2D, Background3D) and write it into two observations with EVENTS and GTI HDUs made
with astropy: obs1.fits holds everything; obs2.fits holds its events and irf2.fits its
response (psf_table, bkg_3d, an edisp_2d that is noted and not applied, other units). The
three input kinds (one file, a list, an index directory that Gammapy's DataStore reads too)
go through tests/helpers/dl3_irf_eval, and its evaluation at several source positions is
compared with Gammapy's `evaluate`:

- aeff, bkg (2d at the offset, 3d at the SkyOffsetFrame lon/lat) and the PSF densities to
  1e-6 relative (the agreement is 1e-15..1e-13: the same interpolation in the same double
  arithmetic);
- the 3-Gaussian containment to Gammapy's closed form; the table PSF's containment to the
  integral of Gammapy's interpolated profile (Gauss-Legendre, exact on its linear pieces). Gammapy's own
  PSF3D.containment is a cumulative sum over RAD bins, which differs by ~1e-3 (printed);
- offsets to astropy's separation, the events (times on one axis over two MJDREFs, GeV and
  rad converted) to astropy's reading of the files.

Usage: test_dl3_irf.py --helper build/bin/dl3_irf_eval --workdir DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import warnings

import numpy as np

import e2e_common
import astropy.units as u
from astropy.coordinates import SkyCoord, SkyOffsetFrame
from astropy.io import fits
from astropy.table import Table

warnings.simplefilter("ignore")
from gammapy.data import DataStore  # noqa: E402
from gammapy.irf import (  # noqa: E402
    Background2D,
    Background3D,
    EffectiveAreaTable2D,
    EnergyDependentMultiGaussPSF,
    EnergyDispersion2D,
    PSF3D,
)
from gammapy.maps import MapAxis  # noqa: E402

TOLERANCE = 1e-6


class Checks(e2e_common.Checks):
    """With comparisons of arrays to a relative tolerance."""

    def close(self, what, ours, reference, tolerance=TOLERANCE, absolute=0.0):
        ours = np.asarray(ours, dtype=float)
        reference = np.asarray(reference, dtype=float)
        scale = np.maximum(np.abs(ours), np.abs(reference))
        deviation = np.abs(ours - reference)
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(scale > 0, deviation / scale, 0.0)
        worst = float(np.max(relative)) if relative.size else 0.0
        good = bool(np.all((deviation <= tolerance * scale) | (deviation <= absolute)))
        detail = ""
        if not good:
            i = np.unravel_index(np.argmax(relative), relative.shape)
            detail = f"worst at {i}: binflow {ours[i]!r}, reference {reference[i]!r}"
        self.check(good, f"{what}: max relative deviation {worst:.2e}", detail)
        return worst


def energy_axis(lo, hi, nbin, name):
    return MapAxis.from_energy_bounds(lo, hi, nbin=nbin, unit="TeV", name=name)


def make_irfs():
    """The response, with Gammapy's constructors."""
    irf = {}
    # Effective area: the H.E.S.S. parametrisation (one offset bin) ...
    irf["aeff_a"] = EffectiveAreaTable2D.from_parametrization(
        energy_axis_true=energy_axis(0.02, 200, 40, "energy_true"), instrument="HESS")
    # ... and one with an offset dependence, in m2.
    e_true = energy_axis(0.05, 100, 24, "energy_true")
    offset = MapAxis.from_bounds(0, 4, nbin=8, unit="deg", name="offset")
    coords = EffectiveAreaTable2D(axes=[e_true, offset], data=1.0, unit="m2").axes.get_coord()
    energy = coords["energy_true"].to_value("MeV")
    off = coords["offset"].to_value("deg")
    area = 6.85e9 * energy ** -0.0891 * np.exp(-5e5 / energy) * (1 - 0.04 * off ** 2) * 1e-4
    irf["aeff_b"] = EffectiveAreaTable2D(axes=[e_true, offset], data=area, unit="m2")

    # The 3-Gaussian PSF over energy and offset, and the PSF3D table it gives.
    e_psf = energy_axis(0.03, 100, 12, "energy_true")
    off_psf = MapAxis.from_bounds(0, 3, nbin=6, unit="deg", name="offset")
    names = ["sigma_1", "sigma_2", "sigma_3", "scale", "ampl_2", "ampl_3"]
    data = np.zeros((12, 6), dtype=[(n, "f8") for n in names])
    c = e_psf.center.to_value("TeV")[:, None]
    o = off_psf.center.to_value("deg")[None, :]
    sigma_1 = (0.02 + 0.06 * np.exp(-np.log10(c / 0.1))) * (1 + 0.1 * o)
    data["sigma_1"] = sigma_1
    data["sigma_2"] = 2.2 * sigma_1
    data["sigma_3"] = 4.5 * sigma_1 * (1 + 0.05 * o)
    data["scale"] = 1.0 / (2 * np.pi * np.deg2rad(sigma_1) ** 2)
    data["ampl_2"] = 0.3 + 0.05 * o + 0 * c
    data["ampl_3"] = 0.05 + 0.02 * np.log10(c) + 0 * o
    unit = {"sigma_1": u.deg, "sigma_2": u.deg, "sigma_3": u.deg, "scale": u.Unit("sr-1"),
            "ampl_2": u.Unit(""), "ampl_3": u.Unit("")}
    irf["psf_3gauss"] = EnergyDependentMultiGaussPSF(axes=[e_psf, off_psf], data=data, unit=unit)
    table = irf["psf_3gauss"].to_psf3d(rad=np.linspace(0, 1.0, 101) * u.deg)
    irf["psf_table"] = PSF3D(axes=table.axes, data=table.quantity.to_value("sr-1"), unit="sr-1")

    # Background: 2d over offset (with a zero node, which Gammapy floors at float32's tiny),
    # 3d over an asymmetric field of view.
    e_reco = energy_axis(0.1, 100, 15, "energy")
    off_bkg = MapAxis.from_bounds(0, 4, nbin=8, unit="deg", name="offset")
    c = e_reco.center.to_value("TeV")[:, None]
    o = off_bkg.center.to_value("deg")[None, :]
    rate = 1e-4 * c ** -2.7 * np.exp(-o ** 2 / 8)
    rate[-1, -1] = 0.0
    irf["bkg_2d"] = Background2D(axes=[e_reco, off_bkg], data=rate, unit="s-1 MeV-1 sr-1")
    e_reco3 = energy_axis(0.1, 100, 10, "energy")
    lon = MapAxis.from_bounds(-4, 4, nbin=16, unit="deg", name="fov_lon")
    lat = MapAxis.from_bounds(-4, 4, nbin=12, unit="deg", name="fov_lat")
    c = e_reco3.center.to_value("TeV")[:, None, None]
    x = lon.center.to_value("deg")[None, :, None]
    y = lat.center.to_value("deg")[None, None, :]
    rate3 = 2e-4 * c ** -2.5 * np.exp(-(x - 0.3) ** 2 / 6 - (y + 0.2) ** 2 / 4) * (1 + 0.05 * x)
    irf["bkg_3d"] = Background3D(axes=[e_reco3, lon, lat], data=rate3, unit="s-1 MeV-1 sr-1")
    migra = MapAxis.from_bounds(0.2, 5, nbin=30, name="migra")
    irf["edisp"] = EnergyDispersion2D.from_gauss(
        energy_axis_true=e_true, migra_axis=migra, offset_axis=offset, bias=0, sigma=0.1)
    return irf


def events_hdu(obs_id, pointing, mjdref, n, seed, energy_unit, angle_unit, t0, livetime_key):
    rng = np.random.default_rng(seed)
    time = np.sort(rng.uniform(t0, t0 + 1800.0, n))
    energy = 0.1 * (1 - rng.uniform(size=n)) ** (-1 / 1.5)  # TeV
    ra = pointing[0] + rng.normal(0, 1, n)
    dec = pointing[1] + rng.normal(0, 1, n)
    table = Table()
    table["EVENT_ID"] = np.arange(n)
    table["TIME"] = time * u.s
    table["RA"] = (ra * u.deg).to(angle_unit)
    table["DEC"] = (dec * u.deg).to(angle_unit)
    table["ENERGY"] = (energy * u.TeV).to(energy_unit)
    hdu = fits.BinTableHDU(table, name="EVENTS")
    h = hdu.header
    h["HDUCLASS"] = "GADF"
    h["HDUCLAS1"] = "EVENTS"
    h["OBS_ID"] = obs_id
    h["OBJECT"] = "Crab"
    h["MJDREFI"] = int(mjdref[0])
    h["MJDREFF"] = mjdref[1]
    h["TIMESYS"] = "TT"
    h["TIMEUNIT"] = "s"
    h["TIMEREF"] = "LOCAL"
    h["RA_PNT"] = pointing[0]
    h["DEC_PNT"] = pointing[1]
    h["ONTIME"] = 1790.0
    if livetime_key == "LIVETIME":
        h["LIVETIME"] = 1700.5
    else:
        h["DEADC"] = 0.93
    gti = Table()
    gti["START"] = [t0, t0 + 1000.0] * u.s
    gti["STOP"] = [t0 + 990.0, t0 + 1800.0] * u.s
    gti_hdu = fits.BinTableHDU(gti, name="GTI")
    gti_hdu.header["MJDREFI"] = int(mjdref[0])
    gti_hdu.header["MJDREFF"] = mjdref[1]
    gti_hdu.header["TIMESYS"] = "TT"
    return hdu, gti_hdu


POINTINGS = {1: (83.6331, 22.5145), 2: (84.1331, 21.8145)}
MJDREFS = {1: (51910, 7.428703703703703e-4), 2: (51911, 0.25)}


def write_data(irf, data_dir):
    os.makedirs(data_dir)
    ev1, gti1 = events_hdu(1, POINTINGS[1], MJDREFS[1], 1000, 1, u.TeV, u.deg, 1e8, "LIVETIME")
    fits.HDUList([fits.PrimaryHDU(), ev1, gti1, irf["aeff_b"].to_table_hdu(),
                  irf["psf_3gauss"].to_table_hdu(), irf["bkg_2d"].to_table_hdu()]).writeto(
        os.path.join(data_dir, "obs1.fits"))
    ev2, gti2 = events_hdu(2, POINTINGS[2], MJDREFS[2], 700, 2, u.GeV, u.rad, 5e3, "DEADC")
    fits.HDUList([fits.PrimaryHDU(), ev2, gti2]).writeto(os.path.join(data_dir, "obs2.fits"))
    # Another spelling of the background's unit, in TeV instead of MeV (a copy: to_table
    # shares the IRF's data).
    table = irf["bkg_3d"].to_table()
    table["BKG"] = table["BKG"].quantity.to("s-1 TeV-1 sr-1")
    bkg3 = fits.BinTableHDU(table, name="BACKGROUND")
    bkg3.header["FOVALIGN"] = "RADEC"
    bkg3.columns.change_unit("BKG", "s**-1 TeV**-1 sr**-1")
    fits.HDUList([fits.PrimaryHDU(), irf["aeff_a"].to_table_hdu(), irf["psf_table"].to_table_hdu(),
                  bkg3, irf["edisp"].to_table_hdu()]).writeto(os.path.join(data_dir, "irf2.fits"))

    rows = []
    for obs_id, events, response in [(1, "obs1.fits", "obs1.fits"), (2, "obs2.fits", "irf2.fits")]:
        for hdu_type, hdu_class, name, file in [
                ("events", "events", "EVENTS", events), ("gti", "gti", "GTI", events),
                ("aeff", "aeff_2d", "EFFECTIVE AREA", response),
                ("psf", "psf_3gauss" if obs_id == 1 else "psf_table",
                 "PSF_2D_GAUSS" if obs_id == 1 else "PSF_2D_TABLE", response),
                ("bkg", "bkg_2d" if obs_id == 1 else "bkg_3d", "BACKGROUND", response)]:
            rows.append((obs_id, hdu_type, hdu_class, ".", file, name))
    rows.append((2, "edisp", "edisp_2d", ".", "irf2.fits", "ENERGY DISPERSION"))
    hdu_index = Table(rows=rows, names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME",
                                        "HDU_NAME"])
    hdu_index.meta["EXTNAME"] = "HDU_INDEX"
    hdu_index.write(os.path.join(data_dir, "hdu-index.fits.gz"))
    obs_index = Table({"OBS_ID": [1, 2], "RA_PNT": [POINTINGS[1][0], POINTINGS[2][0]],
                       "DEC_PNT": [POINTINGS[1][1], POINTINGS[2][1]]})
    obs_index.meta["EXTNAME"] = "OBS_INDEX"
    obs_index.write(os.path.join(data_dir, "obs-index.fits.gz"))
    with open(os.path.join(data_dir, "obs.lst"), "w") as f:
        f.write("# two observations\nobs1.fits\n\nobs2.fits   irf2.fits  # separate response\n")


def run_helper(helper, inobs, source, energies, thetas):
    out = subprocess.run([helper, inobs, repr(source[0]), repr(source[1]),
                          ",".join(repr(e) for e in energies), ",".join(repr(t) for t in thetas)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"dl3_irf_eval {inobs} failed ({out.returncode}): {out.stderr}")
    return json.loads(out.stdout)


def table_containment(psf, energy, offset, theta):
    """2 pi Int_0^theta P(r) r dr of Gammapy's interpolated PSF3D profile: P is linear between
    RAD centres, so 3-point Gauss-Legendre on each piece is exact (P r is quadratic)."""
    nodes = psf.axes["rad"].center.to_value("deg")
    top = min(theta, psf.axes["rad"].edges[-1].to_value("deg"))
    if top <= 0:
        return 0.0
    breaks = np.array([0.0] + [x for x in nodes if 0 < x < top] + [top])
    x, w = np.polynomial.legendre.leggauss(3)
    mid = 0.5 * (breaks[1:] + breaks[:-1])
    half = 0.5 * (breaks[1:] - breaks[:-1])
    r = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weight = (half[:, None] * w[None, :]).ravel()
    value = psf.evaluate(energy_true=energy * u.TeV, offset=offset * u.deg, rad=r * u.deg)
    return float(np.sum(weight * value.to_value("deg-2") * 2 * np.pi * r))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--helper", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    data_dir = os.path.join(args.workdir, "data")
    checks = Checks()

    irf = make_irfs()
    write_data(irf, data_dir)
    store = DataStore.from_dir(data_dir)
    gammapy_obs = {i: store.obs(i, required_irf=["aeff", "psf", "bkg"]) for i in (1, 2)}

    # Not on a bin edge: there Gammapy's edge (exp of log) and SCIENCE.md's 1e-12 rule differ
    # by rounding.
    energies = [0.01, 0.0301, 0.05, 0.0731, 0.1001, 0.2, 0.5, 1.0, 3.3, 10.0, 31.6, 80.0, 99.9,
                150.0, 300.0]
    thetas = [0.0, 0.01, 0.05, 0.1, 0.2, 0.35, 0.6, 0.99, 1.2]
    sources = [(83.6331, 22.0145), (84.5, 22.9), (82.9, 21.2)]

    # The three input kinds give the same data set.
    index = run_helper(args.helper, data_dir, sources[0], energies, thetas)
    listed = run_helper(args.helper, os.path.join(data_dir, "obs.lst"), sources[0], energies,
                        thetas)
    single = run_helper(args.helper, os.path.join(data_dir, "obs1.fits"), sources[0], energies,
                        thetas)
    checks.check(index["kind"] == "DL3 index directory" and listed["kind"] == "list of DL3 files"
                 and single["kind"] == "DL3 file", "input kinds detected from content",
                 (index["kind"], listed["kind"], single["kind"]))
    checks.check(index["observations"] == listed["observations"],
                 "the index and the list give the same observations")
    checks.check(single["observations"][0] == index["observations"][0],
                 "the single file gives the index's first observation")
    checks.check(index["timesys"] == "TT" and index["mjdref_int"] == 51910,
                 "time axis: the first observation's MJDREF and TIMESYS")
    checks.check(any("edisp_2d" in n and "not applied" in n for n in index["notes"]),
                 "the energy dispersion of obs 2 is noted as not applied", index["notes"])
    obs1, obs2 = index["observations"]
    checks.check(obs1["psf_class"] == "psf_3gauss" and obs2["psf_class"] == "psf_table"
                 and obs1["bkg_class"] == "bkg_2d" and obs2["bkg_class"] == "bkg_3d"
                 and obs2["has_edisp"] and not obs1["has_edisp"], "response classes")

    # Header facts, GTIs and events against astropy's reading of the files.
    shift = ((MJDREFS[2][0] - MJDREFS[1][0]) + (MJDREFS[2][1] - MJDREFS[1][1])) * 86400.0
    checks.close("time shift of obs 2 (one day + 0.25 d - MJDREFF 1)", obs2["time_shift"], shift,
                 1e-15)
    checks.check(obs1["livetime"] == 1700.5 and abs(obs2["livetime"] - 1790 * 0.93) < 1e-9,
                 "livetime from LIVETIME and from DEADC", (obs1["livetime"], obs2["livetime"]))
    for number, obs, name in [(1, obs1, "obs1.fits"), (2, obs2, "obs2.fits")]:
        events = Table.read(os.path.join(data_dir, name), hdu="EVENTS")
        gti = Table.read(os.path.join(data_dir, name), hdu="GTI")
        time_shift = shift if number == 2 else 0.0
        checks.close(f"obs {number}: event times on the axis", obs["time"],
                     events["TIME"].quantity.to_value("s") + time_shift, 1e-15)
        checks.close(f"obs {number}: energies in TeV", obs["energy"],
                     events["ENERGY"].quantity.to_value("TeV"), 1e-15)
        checks.close(f"obs {number}: RA/DEC in deg", obs["ra"] + obs["dec"],
                     list(events["RA"].quantity.to_value("deg")) +
                     list(events["DEC"].quantity.to_value("deg")), 1e-15)
        checks.close(f"obs {number}: GTIs on the axis", obs["gti_start"] + obs["gti_stop"],
                     list(gti["START"].quantity.to_value("s") + time_shift) +
                     list(gti["STOP"].quantity.to_value("s") + time_shift), 1e-15)

    # The response at each source against Gammapy's evaluation, in memory and as read back by
    # DataStore (which stores the 3-Gaussian parameters as float32: ~1e-7).
    worst = {}
    e = np.array(energies)
    psf_energies = (e >= 0.03) & (e <= 100)  # the PSF holds its energy at the grid edges
    for source in sources:
        result = run_helper(args.helper, data_dir, source, energies, thetas)
        for number, obs in zip((1, 2), result["observations"]):
            label = f"source {source}, obs {number}"
            pointing = SkyCoord(*POINTINGS[number], unit="deg")
            target = SkyCoord(*source, unit="deg")
            offset = target.separation(pointing).to_value("deg")
            checks.close(f"{label}: offset", obs["offset"], offset, 1e-12, 1e-13)
            fov = target.transform_to(SkyOffsetFrame(origin=pointing))
            checks.close(f"{label}: field-of-view lon/lat",
                         [obs["fov_lon"], obs["fov_lat"]],
                         [fov.lon.wrap_at(180 * u.deg).to_value("deg"), fov.lat.to_value("deg")],
                         1e-12, 1e-12)
            aeff = irf["aeff_b"] if number == 1 else irf["aeff_a"]
            for tag, model in [("", aeff), (" (DataStore)", gammapy_obs[number].aeff)]:
                reference = model.evaluate(energy_true=e * u.TeV, offset=offset * u.deg)
                worst.setdefault("aeff", []).append(checks.close(
                    f"{label}: aeff{tag}", obs["aeff"], reference.to_value("cm2")))
            if number == 1:
                bkg_models = [irf["bkg_2d"], gammapy_obs[1].bkg]
                evaluate = dict(offset=offset * u.deg)
            else:
                bkg_models = [irf["bkg_3d"], gammapy_obs[2].bkg]
                evaluate = dict(fov_lon=obs["fov_lon"] * u.deg, fov_lat=obs["fov_lat"] * u.deg)
            for tag, model in zip(["", " (DataStore)"], bkg_models):
                reference = model.evaluate(energy=e * u.TeV, **evaluate)
                worst.setdefault("bkg", []).append(checks.close(
                    f"{label}: background rate{tag}", obs["bkg_rate"],
                    reference.to_value("s-1 TeV-1 deg-2")))
            density = np.array(obs["psf_density"])[psf_energies]
            containment = np.array(obs["psf_containment"])[psf_energies]
            grid_e, grid_t = np.meshgrid(e[psf_energies], thetas, indexing="ij")
            if number == 1:
                # DataStore keeps the parameters as float32: in the tails (theta / sigma ~ 30)
                # the density then differs by ~2e-6.
                for tag, model, tolerance in [("", irf["psf_3gauss"], TOLERANCE),
                                              (" (DataStore)", gammapy_obs[1].psf, 1e-5)]:
                    reference = model.evaluate(energy_true=grid_e * u.TeV, offset=offset * u.deg,
                                               rad=grid_t * u.deg)
                    worst.setdefault("psf_3gauss density" + tag, []).append(checks.close(
                        f"{label}: 3-Gaussian PSF density{tag}", density,
                        reference.to_value("deg-2"), tolerance))
                    reference = model.containment(rad=grid_t * u.deg, energy_true=grid_e * u.TeV,
                                                  offset=offset * u.deg)
                    worst.setdefault("psf_3gauss containment" + tag, []).append(checks.close(
                        f"{label}: 3-Gaussian PSF containment{tag}", containment,
                        np.asarray(reference, dtype=float), TOLERANCE, 1e-15))
            else:
                model = irf["psf_table"]
                reference = model.evaluate(energy_true=grid_e * u.TeV, offset=offset * u.deg,
                                           rad=grid_t * u.deg)
                worst.setdefault("psf_table density", []).append(checks.close(
                    f"{label}: table PSF density", density, reference.to_value("deg-2")))
                reference = np.array([[table_containment(model, ee, offset, t) for t in thetas]
                                      for ee in e[psf_energies]])
                worst.setdefault("psf_table containment", []).append(checks.close(
                    f"{label}: table PSF containment (integral of Gammapy's profile)",
                    containment, reference, TOLERANCE, 1e-12))
                inside = (np.array(thetas) >= 0.01) & (np.array(thetas) <= 1.0)
                cumsum = model.containment(rad=grid_t[:, inside] * u.deg,
                                           energy_true=grid_e[:, inside] * u.TeV,
                                           offset=offset * u.deg)
                diff = np.max(np.abs(containment[:, inside] - np.asarray(cumsum, dtype=float)))
                print(f"      (Gammapy's PSF3D.containment, a cumulative sum over RAD bins, "
                      f"differs by up to {diff:.1e})")
    print("measured agreement with Gammapy (max relative deviation over all points):")
    for name, values in worst.items():
        print(f"  {name:24s} {max(values):.2e}")
    checks.finish()


if __name__ == "__main__":
    main()
