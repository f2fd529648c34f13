#!/usr/bin/python3
"""FITS results (outfile *.fits, *.fits.gz or format=fits): Gammapy 1.0 reads the light curve
(FluxPoints.read(..., format="lightcurve")) and the spectrum (FluxPoints.read, gadf-sed), and
astropy the phase curve and the fit, and every number equals the HDF5 output of the same run:
bit for bit in the table, to a few ulp through Gammapy's conversions; every /results column and
attribute is in the file; the console shows a compact table; a tool without FITS output
refuses format=fits before any work (exit 2, nothing written); a failure while the FITS file is
written leaves no temporary file and a checkpoint that resume=yes finishes."""
import gzip
import os
import resource
import signal
import subprocess
import warnings

import h5py
import numpy as np

from e2e_common import Context, read_attributes, read_group

warnings.simplefilter("ignore")  # astropy's stale leap-second table, Gammapy's reference model
from astropy import units as u  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402
from gammapy.estimators import FluxPoints  # noqa: E402
from gammapy.modeling.models import PowerLawSpectralModel  # noqa: E402

ctx = Context()
ULP = 4 * np.finfo(float).eps  # what Gammapy's unit and reference-model conversions may cost

obs = ctx.path("obs.h5")
r = ctx.run(["simulate", "duration=7200", "seed=3", "profile=flare", "outfile=" + obs])
ctx.check(r.returncode == 0, "simulate a 2-hour flare", r.stderr)
psr = ctx.path("psr.h5")
r = ctx.run(["simulate", "duration=3600", "seed=4", "profile=pulsar", "outfile=" + psr])
ctx.check(r.returncode == 0, "simulate a 1-hour pulsar", r.stderr)


def both(name, words, ranks=None, suffix=".fits"):
    """Runs the same analysis into name.h5 and name + suffix; the HDF5 results and attributes,
    and the path of the FITS file."""
    outs = {}
    for ext in (".h5", suffix):
        out = ctx.path(name + ext)
        r = ctx.run([*words, "outfile=" + out], ranks=ranks)
        ctx.check(r.returncode == 0, f"{name}{ext}: exit 0", r.stderr[-2000:])
        outs[ext] = (out, r)
    h5 = outs[".h5"][0]
    return read_group(h5), read_attributes(h5), outs[suffix][0], outs[suffix][1]


def units(path):
    with h5py.File(path, "r") as f:
        out = {}
        for name, dataset in f["results"].items():
            unit = dataset.attrs.get("unit", "")
            out[name] = unit.decode() if isinstance(unit, bytes) else str(unit)
        return out


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return np.array_equal(a.astype(np.float64).view(np.uint64), b.astype(np.float64).view(np.uint64))
    if a.dtype.kind in "US" or b.dtype.kind in "US" or a.dtype.kind == "O":
        return [str(x).rstrip() for x in a.tolist()] == [str(x).rstrip() for x in b.tolist()]
    return np.array_equal(a, b)


def close(a, b, rtol=ULP):
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=0.0, equal_nan=True)


def check_table(label, table, res, h5_units, renamed, cells):
    """Every HDF5 column is in the FITS table (under its new name where renamed), bit for bit,
    with its unit; `cells` maps FITS names to their cell shape."""
    bad = []
    for name, values in res.items():
        col = renamed.get(name, name)
        if col not in table.colnames:
            bad.append(f"/results/{name}: no column {col}")
            continue
        data = np.asarray(table[col])
        shape = (len(values), *cells.get(col, ()))
        if data.shape != shape:
            bad.append(f"{col}: shape {data.shape}, expected {shape}")
        elif not same_bits(data.reshape(len(values)), values):
            bad.append(f"{col}: {data.ravel()[:3]} vs {values[:3]}")
        if h5_units[name] and (table[col].unit is None or u.Unit(table[col].unit) !=
                               u.Unit(h5_units[name].replace("^", ""), format="fits")):
            bad.append(f"{col}: unit {table[col].unit} vs {h5_units[name]}")
    ctx.check(not bad, f"{label}: every /results column ({len(res)}) bit-identical, with its unit"
              f"{' and renamed ' + str(renamed) if renamed else ''}", bad)


def check_header(label, header, attrs, skip=("outfile", "command_line", "start_time", "end_time")):
    """Every /results attribute is a header keyword with the same value."""
    bad = []
    for name, value in attrs.items():
        if name in skip:
            continue
        got = header.get(name.upper())
        if isinstance(value, (np.integer, int)):
            ok = got == int(value)
        else:
            ok = got == value
        if not ok:
            bad.append(f"{name}: {got!r} vs {value!r}")
    ctx.check(not bad, f"{label}: every /results attribute is in the header ({len(attrs)})", bad)
    ctx.check(header.get("COMMAND_LINE", "").startswith(ctx.binflow) and
              header.get("START_TIME", "").endswith("Z") and header.get("END_TIME", "").endswith("Z"),
              f"{label}: command line and run times in the header",
              (header.get("COMMAND_LINE"), header.get("START_TIME")))


def is_ul(ts, ul):
    return np.isfinite(ul) & ~(ts >= 4)


# --- light curve: Gammapy's format="lightcurve" ---------------------------------------
LC = ["lightcurve", "inobs=" + obs, "tbins=12", "free_index=yes", "confidence=0.9"]
res, attrs, path, run = both("lc", LC, ranks=2)
fp = FluxPoints.read(path, format="lightcurve", reference_model=PowerLawSpectralModel(index=2.5))
ctx.check(fp.sed_type_init == "flux" and fp.geom.axes.names == ["energy", "time"],
          "lightcurve: Gammapy reads sed type flux on an energy and a time axis",
          (fp.sed_type_init, fp.geom.axes.names))
time_axis = fp.geom.axes["time"]
ctx.check(close(time_axis.time_min.tt.mjd, res["mjd_start"], 1e-14) and
          close(time_axis.time_max.tt.mjd, res["mjd_stop"], 1e-14),
          "lightcurve: Gammapy's time bins are mjd_start, mjd_stop (TT)",
          np.max(np.abs(time_axis.time_min.tt.mjd - res["mjd_start"])) * 86400)
ctx.check(close(fp.energy_axis.edges.to_value("TeV"), [0.1, 100.0], 1e-15),
          "lightcurve: energy axis emin..emax", fp.energy_axis.edges)
for q, col in (("flux", "flux"), ("flux_err", "flux_err"), ("flux_ul", "flux_ul")):
    ctx.check(close(getattr(fp, q).quantity.to_value("cm-2 s-1"), res[col]),
              f"lightcurve: Gammapy's {q} is /results/{col}")
ctx.check(close(fp.ts.data, res["ts"], 0) and close(fp.sqrt_ts.data, np.sqrt(res["ts"]), 0),
          "lightcurve: ts and sqrt_ts")
ctx.check(same_bits(fp.counts.data.ravel(), res["n_events"]) and close(fp.npred.data, res["npred"], 0),
          "lightcurve: counts is n_events, npred is npred")
ctx.check(np.array_equal(fp.is_ul.data.ravel(), is_ul(res["ts"], res["flux_ul"])),
          "lightcurve: is_ul where ts < 4", fp.is_ul.data.ravel())
ctx.check(fp.meta.get("UL_CONF") == 0.9 and fp.n_sigma_ul == 1.6,
          "lightcurve: UL_CONF is the confidence", (fp.meta.get("UL_CONF"), fp.n_sigma_ul))
with fits.open(path) as hdus:
    header = hdus["LIGHTCURVE"].header
    table = Table.read(hdus["LIGHTCURVE"])
ctx.check(header["SED_TYPE"] == "flux" and header["TIMESYS"] == "tt" and
          header["MJDREFI"] + header["MJDREFF"] == 51544.5,
          "lightcurve: SED_TYPE, TIMESYS and MJDREF in the header")
check_table("lightcurve", table, res, units(ctx.path("lc.h5")),
            {"mjd_start": "time_min", "mjd_stop": "time_max", "n_events": "counts"},
            {"flux": (1,), "flux_err": (1,), "flux_ul": (1,), "ts": (1,), "counts": (1, 1),
             "npred": (1, 1)})
ctx.check(same_bits(np.asarray(table["sqrt_ts"]).ravel(), np.sqrt(res["ts"])) and
          np.array_equal(np.asarray(table["success"]).ravel(), res["status"] != "failed"),
          "lightcurve: sqrt_ts and success columns")
check_header("lightcurve", header, attrs)
ctx.check(header["RANKS"] == 2 and header["OUTFILE"] == path and header["FORMAT"] == "auto",
          "lightcurve: ranks and outfile in the header", (header["RANKS"], header["OUTFILE"]))

# The console: a compact table, the index "+- error" (free here) or "fixed", MJD told apart.
text = run.stdout
head = next((line for line in text.splitlines() if line.split()[:2] == ["bin", "mjd_start"]), "")
ctx.check("mjd_start" in head and "lnl" not in head and "livetime" not in head,
          "console: a compact set of columns (lnl, livetime only in the file)", head)
rows = [line.split() for line in text.splitlines()[text.splitlines().index(head) + 1:]
        if line[:4].strip().isdigit()][:12]
ctx.check(len(rows) == 12 and len({r[1] for r in rows}) == 12,
          "console: every bin's mjd_start reads differently", [r[1] for r in rows])
r = ctx.run(["lightcurve", "inobs=" + obs, "tbins=4"])
ctx.check(r.returncode == 0 and "2.5 fixed" in r.stdout and "+- nan" not in r.stdout and
          "gamma = 2.500 (fixed)" in r.stdout, "console: a fixed index says fixed, not +- nan",
          r.stdout[-1500:])

# --- phase curve: the same layout with phase_min, phase_max; astropy reads it ---------
PH = ["phasecurve", "inobs=" + psr, "phbins=8", "t_ref=0", "f0=0.0297"]
res, attrs, path, _ = both("phase", PH)
with fits.open(path) as hdus:
    header = hdus["PHASECURVE"].header
    table = Table.read(hdus["PHASECURVE"])
ctx.check(header["SED_TYPE"] == "flux" and header["UL_CONF"] == 0.95,
          "phasecurve: SED_TYPE flux and UL_CONF in the header")
check_table("phasecurve", table, res, units(ctx.path("phase.h5")), {"n_events": "counts"},
            {"flux": (1,), "flux_err": (1,), "flux_ul": (1,), "ts": (1,), "counts": (1, 1),
             "npred": (1, 1)})
ctx.check(same_bits(np.asarray(table["e_min"]).ravel(), np.full(8, 0.1)) and
          same_bits(np.asarray(table["is_ul"]).ravel(), is_ul(res["ts"], res["flux_ul"])),
          "phasecurve: e_min and is_ul columns")
check_header("phasecurve", header, attrs)

# --- spectrum: a gadf-sed table, also gzip-compressed ---------------------------------
SP = ["spectrum", "inobs=" + obs, "enumbins=8"]
res, attrs, path, _ = both("spec", SP, suffix=".fits.gz")
with open(path, "rb") as f:
    ctx.check(f.read(2) == b"\x1f\x8b", "spectrum: spec.fits.gz is gzip-compressed")
fp = FluxPoints.read(path, reference_model=PowerLawSpectralModel(index=float(attrs["gamma"])))
ctx.check(fp.sed_type_init == "dnde" and fp.geom.axes.names == ["energy"],
          "spectrum: Gammapy reads sed type dnde on an energy axis")
ctx.check(close(fp.energy_axis.edges[:-1].to_value("TeV"), res["e_min"], 8 * ULP) and
          close(fp.energy_axis.edges[1:].to_value("TeV"), res["e_max"], 8 * ULP) and
          close(fp.energy_ref.to_value("TeV"), res["e_ref"], 8 * ULP),
          "spectrum: energy bins and e_ref", fp.energy_axis.edges)
for q in ("dnde", "dnde_err", "dnde_ul"):
    ctx.check(close(getattr(fp, q).quantity.to_value("cm-2 s-1 TeV-1"), res[q]),
              f"spectrum: Gammapy's {q} is /results/{q}",
              getattr(fp, q).quantity.to_value("cm-2 s-1 TeV-1") / res[q] - 1)
ctx.check(close(fp.ts.data, res["ts"], 0) and same_bits(fp.counts.data.ravel(), res["counts"]) and
          close(fp.npred.data, res["npred"], 0) and
          np.array_equal(fp.is_ul.data.ravel(), is_ul(res["ts"], res["dnde_ul"])),
          "spectrum: ts, counts, npred, is_ul")
with fits.open(path) as hdus:
    header = hdus["FLUX_POINTS"].header
    table = Table.read(hdus["FLUX_POINTS"])
check_table("spectrum", table, res, units(ctx.path("spec.h5")), {},
            {"counts": (1,), "npred": (1,)})
check_header("spectrum", header, attrs)
ctx.check(header["GAMMA"] == attrs["gamma"] and header["GLOBAL_STATUS"] == "ok",
          "spectrum: the global fit in the header", (header.get("GAMMA"), attrs["gamma"]))

# --- fit: one row, every column -------------------------------------------------------
res, attrs, path, run = both("fit", ["fit", "inobs=" + obs])
with fits.open(path) as hdus:
    ctx.check([h.name for h in hdus] == ["PRIMARY", "FIT"], "fit: HDU FIT after an empty primary")
    header = hdus["FIT"].header
    table = Table.read(hdus["FIT"])
ctx.check(sorted(table.colnames) == sorted(res) and len(table) == 1, "fit: one row of every column",
          table.colnames)
check_table("fit", table, res, units(ctx.path("fit.h5")), {}, {})
check_header("fit", header, attrs)
ctx.check("N0" in run.stdout and "2.5 fixed" in run.stdout and "lnl" not in run.stdout,
          "fit: console table compact", run.stdout[-800:])

# format=fits writes FITS whatever the name says, format=hdf5 HDF5.
out = ctx.path("fit.out")
r = ctx.run(["fit", "inobs=" + obs, "format=fits", "outfile=" + out])
ctx.check(r.returncode == 0 and same_bits(Table.read(out)["N0"], res["N0"]),
          "format=fits writes FITS under any name", r.stderr[-800:])
out = ctx.path("named.fits")
r = ctx.run(["fit", "inobs=" + obs, "format=hdf5", "outfile=" + out])
ctx.check(r.returncode == 0 and h5py.is_hdf5(out), "format=hdf5 writes HDF5 under a .fits name")

# --- refused before any work: one line, exit 2, nothing written -----------------------
refusals = {
    "synthetic format=fits": (["synthetic", "bins=3", "format=fits", "outfile=s1.h5"], "format",
                              "s1.h5"),
    "synthetic outfile=*.fits": (["synthetic", "bins=3", "outfile=s2.fits"], "outfile", "s2.fits"),
    "pull outfile=*.FITS": (["pull", "ntrials=2", "outfile=s3.FITS"], "outfile", "s3.FITS"),
    "format=fits without outfile": (["lightcurve", "inobs=" + obs, "format=fits"], "format", None),
}
for what, (words, needle, name) in refusals.items():
    for ranks in (None, 2):
        before = set(os.listdir(ctx.workdir))
        r = ctx.run(words, ranks=ranks)
        lines = [line for line in r.stderr.splitlines() if line.startswith("binflow")]
        label = f"{what} ({'plain' if ranks is None else 'mpirun -n 2'})"
        why = "no FITS output" if name else "needs an outfile"
        ctx.check(r.returncode == 2 and len(lines) == 1 and f"error: {needle}:" in lines[0] and
                  why in lines[0], f"{label}: exit 2, one line naming {needle}", r.stderr[-600:])
        ctx.check(set(os.listdir(ctx.workdir)) == before, f"{label}: nothing written",
                  set(os.listdir(ctx.workdir)) - before)

# --- a failure while the FITS file is written -----------------------------------------
# A file-size limit (SIGXFSZ ignored) makes the write fail with EFBIG once the file passes
# 12 kB: the 12-bin light curve's journal stays below it, its FITS file does not. Open MPI's
# singleton needs no shared-memory file then (PMIx gds=hash, btl self).
def limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (12000, 12000))


out = ctx.path("cut.fits")
env = dict(ctx.env, PMIX_MCA_gds="hash", OMPI_MCA_btl="self")
r = subprocess.run([ctx.binflow, *LC, "outfile=" + out], env=env, cwd=ctx.workdir,
                   preexec_fn=limited, capture_output=True, text=True, timeout=300)
left = [n for n in os.listdir(ctx.workdir) if n.startswith("cut.fits")]
ctx.check(r.returncode == 3 and "cut.fits.tmp." in r.stderr, "FITS write failure: exit 3 naming the file",
          r.stderr[-800:])
ctx.check(left == ["cut.fits.ckpt"], "FITS write failure: no output, no temporary, the journal kept",
          left)
r = ctx.run([*LC, "outfile=" + out, "resume=yes"])
ctx.check(r.returncode == 0 and os.path.exists(out) and not os.path.exists(out + ".ckpt"),
          "resume=yes writes the FITS file from the journal", r.stderr[-800:])
if os.path.exists(out):
    a, b = Table.read(out), Table.read(ctx.path("lc.fits"))
    ctx.check(all(same_bits(np.asarray(a[c]), np.asarray(b[c])) for c in b.colnames),
              "the resumed FITS table equals the uninterrupted one")

with gzip.open(ctx.path("spec.fits.gz")) as f:
    ctx.check(f.read(9) == b"SIMPLE  =", "spec.fits.gz holds a FITS file")
ctx.check(not [n for n in os.listdir(ctx.workdir) if ".tmp." in n or n.endswith(".part")],
          "no temporary files left behind")
ctx.finish()
