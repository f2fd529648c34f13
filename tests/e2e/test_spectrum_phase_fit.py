#!/usr/bin/python3
"""`binflow fit`, `spectrum` and `phasecurve` on simulated files with known answers: the fit
recovers the simulated N0 and gamma, the flux points follow the simulated power law, the
phase curve of a simulated pulsar recovers its peak; /results of spectrum and phasecurve are
bit-identical for 1-4 ranks and static/dynamic schedules; the nested `fit` inside spectrum
really runs (its log block sits indented inside the global bin's block); bad input gives one
line, exit 2 and nothing written."""
import math
import os
import shutil
import time

import h5py
import numpy as np

from e2e_common import Context, identical, read_attributes, read_group

ctx = Context()
N0_TRUE, GAMMA_TRUE = 3.5e-11, 2.5

# Two hours of the default Crab-like source, and two hours of a pulsar with the same mean flux.
obs = ctx.path("crab.h5")
r = ctx.run(["simulate", "--duration", "7200", "--seed", "5", "--outfile", obs])
ctx.check(r.returncode == 0, "simulate 2 hours of the default source", r.stderr)
psr = ctx.path("pulsar.h5")
PULSED, PEAK, WIDTH, F0 = 0.5, 0.3, 0.05, 0.0297
r = ctx.run(["simulate", "--duration", "7200", "--seed", "7", "--profile", "pulsar",
             "--pulsed_fraction", str(PULSED), "--peak_phase", str(PEAK), "--peak_width", str(WIDTH),
             "--t_ref", "0", "--f0", str(F0), "--outfile", psr])
ctx.check(r.returncode == 0, "simulate 2 hours of a pulsar", r.stderr)


def run_ok(name, words, ranks=None):
    out = ctx.path(name + ".h5")
    r = ctx.run([*words, "--outfile", out], ranks=ranks)
    ctx.check(r.returncode == 0, f"{name}: exit 0", r.stderr[-3000:])
    return out


# --- fit ------------------------------------------------------------------------------
res = read_group(run_ok("fit_free", ["fit", "--inobs", obs, "--free_index"]))
ctx.check(len(res["bin"]) == 1 and res["status"][0] == "ok", "fit: one row, status ok", res["status"])
pull_n0 = (res["N0"][0] - N0_TRUE) / res["N0_err"][0]
pull_gamma = (res["gamma"][0] - GAMMA_TRUE) / res["gamma_err"][0]
ctx.check(abs(pull_n0) < 4 and abs(pull_gamma) < 4, "fit: N0 and gamma within 4 sigma of the truth",
          f"N0 {res['N0'][0]:.4e} +- {res['N0_err'][0]:.2e}, gamma {res['gamma'][0]:.4f} +- "
          f"{res['gamma_err'][0]:.4f}")
ctx.check(abs(res["beta"][0] - 1.0) < 4 * res["beta_err"][0], "fit: beta within 4 sigma of 1")
ctx.check(res["ts"][0] > 1000 and res["N0_ul"][0] > res["N0"][0], "fit: TS large, UL above N0")
ctx.check(res["time_start"][0] == 0.0 and res["time_stop"][0] == 7200.0 and res["emin"][0] == 0.1,
          "fit: default selection is every GTI, 0.1-100 TeV")
fixed = read_group(run_ok("fit_fixed", ["fit", "--inobs", obs, "--tmin", "1000", "--tmax", "5000",
                                        "--emin", "0.3", "--emax", "30"], ranks=2))
ctx.check(fixed["status"][0] == "ok" and math.isnan(fixed["gamma_err"][0]) and fixed["gamma"][0] == 2.5,
          "fit: index fixed by default (gamma_err NaN), on 2 ranks")
ctx.check(abs(fixed["N0"][0] - N0_TRUE) < 4 * fixed["N0_err"][0] and fixed["livetime"][0] < res["livetime"][0],
          "fit: a sub-selection in time and energy recovers N0")
ctx.check(read_attributes(ctx.path("fit_free.h5")).get("tool") == "fit", "fit: provenance names the tool")

# --- spectrum -------------------------------------------------------------------------
spec_words = ["spectrum", "--inobs", obs, "--ebinalg", "LOG", "--enumbins", "12", "--emin", "0.1",
              "--emax", "100"]
spec_log = ctx.path("spectrum.log")
ref_path = run_ok("spectrum", spec_words + ["--logfile", spec_log])
spec = read_group(ref_path)
ctx.check(len(spec["bin"]) == 12, "spectrum: 12 energy bins")
ctx.check(np.allclose(spec["e_min"][1:], spec["e_max"][:-1]) and spec["e_min"][0] == 0.1
          and spec["e_max"][-1] == 100.0, "spectrum: LOG bins cover 0.1-100 TeV")
ctx.check(np.allclose(spec["e_ref"], np.sqrt(spec["e_min"] * spec["e_max"]), rtol=1e-15, atol=0),
          "spectrum: e_ref is the log centre")
attrs = read_attributes(ref_path)
g_global, g_err = float(attrs.get("gamma", "nan")), float(attrs.get("gamma_err", "nan"))
ctx.check(attrs.get("global_status") == "ok" and abs(g_global - GAMMA_TRUE) < 4 * g_err,
          "spectrum: global fit (attributes) recovers gamma", {k: attrs.get(k) for k in ("gamma", "gamma_err", "N0")})
ctx.check(np.all(spec["gamma"] == g_global), "spectrum: every bin uses the global index")
ctx.check(np.allclose(spec["dnde"], spec["N0"] * spec["e_ref"] ** -spec["gamma"], rtol=1e-14, atol=0),
          "spectrum: dnde = N0 (e_ref / 1 TeV)^-gamma")
bright = spec["ts"] > 25
true_dnde = N0_TRUE * spec["e_ref"] ** -GAMMA_TRUE
pulls = (spec["dnde"] - true_dnde) / spec["dnde_err"]
ctx.check(bright.sum() >= 6 and np.all(np.abs(pulls[bright]) < 4),
          f"spectrum: {bright.sum()} bright points (TS > 25) within 4 sigma of the true power law",
          np.round(pulls, 2))
ctx.check(np.mean(pulls[bright] ** 2) < 4, "spectrum: mean squared pull of the bright points < 4",
          np.round(pulls[bright], 2))
ok = spec["status"] == "ok"
ctx.check(np.all(spec["dnde_ul"][ok] > spec["dnde"][ok]), "spectrum: upper limits above dnde")
ctx.check(int(spec["counts"].sum()) <= int(read_group(ctx.path("fit_free.h5"))["n_events"][0]) + 11,
          "spectrum: counts add up to (at most) the global selection")

# The nested fit ran: the global bin's block holds the fit tool's own messages and its
# one-bin block, one indentation level deeper.
with open(spec_log) as f:
    lines = f.read().splitlines()
start = next((i for i, l in enumerate(lines) if l.startswith("bin 0 [0.1, 100) TeV")), None)
block = []
if start is not None:
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        block.append(line)
nested_header = any(l.startswith("  bin 0 [0, 7200) s") for l in block)
nested_fit = any(l.startswith("    ") and "gamma =" in l and "iterations" in l for l in block)
nested_settings = any(l.startswith("  ") and "(free)" in l for l in block)
ctx.check(start is not None and nested_header and nested_fit and nested_settings,
          "spectrum: the nested fit's log lines appear indented in the global bin's block",
          "\n".join(lines[:20]))

for ranks in (1, 2, 3, 4):
    for schedule in ("static", "dynamic"):
        name = f"spectrum_np{ranks}_{schedule}"
        out = run_ok(name, spec_words + ["--schedule", schedule, "--chatter", "1"], ranks=ranks)
        same, why = identical(read_group(out), spec)
        ctx.check(same, f"{name}: /results bit-identical", why)
        a = read_attributes(out)
        ctx.check(all(a.get(k) == attrs.get(k) for k in ("gamma", "gamma_err", "N0", "ts")),
                  f"{name}: global fit attributes identical")

with open(ctx.path("ebins.txt"), "w") as f:
    f.write("# emin emax\n0.2 1\n1 5\n5 50\n")
spec_file = read_group(run_ok("spectrum_file", ["spectrum", "--inobs", obs, "--ebinalg", "FILE", "--ebinfile",
                                                ctx.path("ebins.txt")], ranks=2))
ctx.check(list(spec_file["e_min"]) == [0.2, 1, 5] and list(spec_file["e_max"]) == [1, 5, 50],
          "spectrum: ebinalg=FILE takes the bins from the file")
ctx.check(float(read_attributes(ctx.path("spectrum_file.h5"))["emax"]) == 100.0
          and read_attributes(ctx.path("spectrum_file.h5"))["global_status"] == "ok",
          "spectrum: global fit over the file's range")

# Resume across spectrum's two maps ("global", then "spectrum"): kill -9 part-way (the
# moment varies, so the run may be cut in either map or finish), resume, same /results.
long_obs = ctx.path("long.h5")
r = ctx.run(["simulate", "--duration", "72000", "--seed", "9", "--outfile", long_obs])
ctx.check(r.returncode == 0, "simulate 20 hours for the resume check", r.stderr)
long_words = ["spectrum", "--inobs", long_obs, "--enumbins", "30", "--nthreads", "1", "--chatter", "1"]
long_ref = read_group(run_ok("long_reference", long_words))
resumed = ctx.path("long_resumed.h5")
cut = 0
for delay in (0.25, 0.6):
    p = ctx.start([*long_words, "--outfile", resumed, "--resume"])
    time.sleep(delay)
    p.kill()
    p.communicate()
    cut += os.path.exists(resumed + ".ckpt") and not os.path.exists(resumed)
r = ctx.run([*long_words, "--outfile", resumed, "--resume"])
ctx.check(r.returncode == 0, f"spectrum: resumed after {cut} kill -9 (exit 0)", r.stderr[-2000:])
same, why = identical(read_group(resumed), long_ref)
ctx.check(same, "spectrum: resumed /results bit-identical to an uninterrupted run", why)

# --- phasecurve -----------------------------------------------------------------------
phase_words = ["phasecurve", "--inobs", psr, "--phbins", "10", "--t_ref", "0", "--f0", str(F0)]
ph_path = run_ok("phasecurve", phase_words)
ph = read_group(ph_path)
ctx.check(len(ph["bin"]) == 10 and np.all(ph["status"] == "ok"), "phasecurve: 10 phase bins fitted")
total_live = read_group(ctx.path("fit_free.h5"))["livetime"][0]  # same GTIs as the pulsar file
ctx.check(np.allclose(ph["livetime"], total_live * (ph["phase_max"] - ph["phase_min"]), rtol=1e-14, atol=0),
          "phasecurve: livetime = total livetime x bin width")


def phi(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def pulse_mass(a, b):
    """Mass of the wrapped Gaussian peak in phases [a, b)."""
    return sum(phi((b - PEAK + k) / WIDTH) - phi((a - PEAK + k) / WIDTH) for k in range(-3, 4))


expected = np.array([(1 - PULSED) + PULSED * pulse_mass(a, b) / (b - a)
                     for a, b in zip(ph["phase_min"], ph["phase_max"])])
ph_pulls = (ph["N0"] - N0_TRUE * expected) / ph["N0_err"]
ctx.check(np.all(np.abs(ph_pulls) < 4), "phasecurve: every bin's N0 within 4 sigma of the pulse profile",
          np.round(ph_pulls, 2))
on = (ph["phase_min"] >= 0.2 - 1e-9) & (ph["phase_max"] <= 0.4 + 1e-9)
off = ph["phase_min"] >= 0.5 - 1e-9


def weighted(mask):
    w = 1.0 / ph["N0_err"][mask] ** 2
    return float(np.sum(w * ph["N0"][mask]) / np.sum(w)), float(1.0 / math.sqrt(np.sum(w)))


(n_on, e_on), (n_off, e_off) = weighted(on), weighted(off)
ratio = n_on / n_off
ratio_err = ratio * math.hypot(e_on / n_on, e_off / n_off)
ratio_true = expected[on].mean() / expected[off].mean()
ctx.check(abs(ratio - ratio_true) < 3 * ratio_err,
          f"phasecurve: on-peak / off-peak N0 = {ratio:.3f} +- {ratio_err:.3f} (expected {ratio_true:.3f})")
ctx.check(np.all(np.abs(ph["beta"] - 1) < 4 * ph["beta_err"]), "phasecurve: background normalisation 1 in every bin")
for ranks in (1, 2, 3, 4):
    for schedule in ("static", "dynamic"):
        name = f"phasecurve_np{ranks}_{schedule}"
        out = run_ok(name, phase_words + ["--schedule", schedule, "--chatter", "1"], ranks=ranks)
        same, why = identical(read_group(out), ph)
        ctx.check(same, f"{name}: /results bit-identical", why)
with open(ctx.path("phbins.txt"), "w") as f:
    f.write("0.2 0.4\n0.5 1.0\n")
two = read_group(run_ok("phasecurve_file", ["phasecurve", "--inobs", psr, "--phbinfile", ctx.path("phbins.txt"),
                                            "--f0", str(F0), "--window", "600"], ranks=2))
ctx.check(len(two["bin"]) == 2 and abs(two["N0"][0] / two["N0"][1] - ratio) < 2 * ratio_err,
          "phasecurve: phase bins from a file, events read in 600 s windows")

# --- bad input ------------------------------------------------------------------------
with open(ctx.path("not_hdf5.h5"), "w") as f:
    f.write("plain text\n")
with open(ctx.path("bad_ebins.txt"), "w") as f:
    f.write("0.1 1\n1 oops\n")
with open(ctx.path("bad_phbins.txt"), "w") as f:
    f.write("0.0 0.5\n0.5 1.5\n")
unsorted = ctx.path("unsorted.h5")
shutil.copy(obs, unsorted)
with h5py.File(unsorted, "r+") as f:
    t = f["events/time"][()]
    t[100] = t[101] + 10.0  # later than the event after it: found while reading, inside a bin
    f["events/time"][...] = t
bad = {
    "fit: unsorted event times": (["fit", "--inobs", unsorted], "/events/time"),
    "spectrum: unsorted event times": (["spectrum", "--inobs", unsorted], "/events/time"),
    "phasecurve: unsorted event times": (["phasecurve", "--inobs", unsorted], "/events/time"),
    "fit: missing file": (["fit", "--inobs", ctx.path("nope.h5")], "nope.h5"),
    "fit: no inobs": (["fit"], "inobs"),
    "fit: tmin >= tmax": (["fit", "--inobs", obs, "--tmin", "500", "--tmax", "100"], "tmin"),
    "fit: tmin after the data": (["fit", "--inobs", obs, "--tmin", "9000"], "tmin"),
    "spectrum: not HDF5": (["spectrum", "--inobs", ctx.path("not_hdf5.h5")], "not_hdf5.h5"),
    "spectrum: emin above emax": (["spectrum", "--inobs", obs, "--emin", "10", "--emax", "1"], "emin"),
    "spectrum: bin file does not parse": (["spectrum", "--inobs", obs, "--ebinalg", "FILE", "--ebinfile",
                                           ctx.path("bad_ebins.txt")], "bad_ebins.txt:2"),
    "spectrum: FILE without ebinfile": (["spectrum", "--inobs", obs, "--ebinalg", "FILE"], "ebinfile"),
    "spectrum: wrong format (a result file)": (["spectrum", "--inobs", ctx.path("fit_free.h5")], "fit_free.h5"),
    "phasecurve: f0 = 0": (["phasecurve", "--inobs", psr, "--f0", "0"], "f0"),
    "phasecurve: phase file outside [0, 1]": (["phasecurve", "--inobs", psr, "--phbinfile",
                                               ctx.path("bad_phbins.txt")], "bad_phbins.txt"),
    "phasecurve: missing file": (["phasecurve", "--inobs", ctx.path("nope.h5")], "nope.h5"),
}
for what, (words, needle) in bad.items():
    for ranks in ((None, 3) if what.endswith(("missing file", "times")) or "parse" in what else (None,)):
        out = ctx.path("bad.h5")
        r = ctx.run([*words, "--outfile", out], ranks=ranks)
        ours = [l for l in r.stderr.splitlines() if l.startswith("binflow")]
        label = f"{what} ({'plain' if ranks is None else 'mpirun -n 3'})"
        ctx.check(r.returncode == 2, f"{label}: exit status 2", r.stderr[-2000:])
        ctx.check(len(ours) == 1 and needle in ours[0], f"{label}: one line naming {needle!r}", r.stderr[-2000:])
        ctx.check(not os.path.exists(out) and not os.path.exists(out + ".ckpt"), f"{label}: nothing written")
ctx.finish()
