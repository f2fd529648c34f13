#!/usr/bin/python3
"""binflow against a vectorised numpy implementation of SCIENCE.md (issue 12).

The numpy light curve below is what a competent Python analyst would write from SCIENCE.md
alone: h5py reads of the whole event file, the ROI selection (energy range, a declination
band, then the exact great-circle distance) and the response interpolation vectorised over
all events at once, bins cut with np.searchsorted on the selected times, and per bin a
damped, bounded Newton fit of the extended unbinned likelihood vectorised over the bin's
events (N0 >= 0, beta >= 0, gamma fixed), errors from the observed information, TS (null
N0 = 0 with beta refitted) and the profile-likelihood upper limit (beta refitted along the
profile). The Python loop runs over bins; inside a bin everything is numpy.

The bench
1. checks that it agrees with `binflow lightcurve` on the same file and bins, against
   SCIENCE.md's tolerances (values and errors 1e-4 relative, TS 1e-3 absolute, UL 1e-3
   relative; the exit status is 1 if they disagree), and
2. times, interleaved in one run, R repetitions of: the numpy light curve in a fresh
   interpreter (timed inside it after the imports, h5py reads included), `binflow lightcurve
   tbins=B nthreads=1` on one rank (its map wall from /run `wall`, and its whole-process wall
   minus that of a start-up run over the first second with one bin), and prints medians with
   min-max and the ratio numpy / binflow for both binflow figures; the same for CPU seconds
   (numpy's process time after the imports; binflow's process minus its start-up run's).

The event file: --events FILE (read only), else <workdir>/ev<hours>h.h5, simulated by
`binflow simulate` (default instrument and source) when it is not there yet.

Usage: bench/numpy_lightcurve.py --binflow build/bin/binflow [--repetitions 5] [--bins 2500]
                                 [--hours 100] [--workdir DIR] [--events FILE]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from scipy.stats import chi2

from bench_common import mpi_environment

SIMPSON_INTERVALS = 256  # SCIENCE.md section 2: part of the definition
GRID_TOLERANCE = 1e-12   # SCIENCE.md section 1: within this (relative, in ln E) of a grid end is inside
MAX_ITERATIONS = 100
TOLERANCE = 1e-10        # relative Newton step at which a fit, a profile or a limit has converged


# ---------------------------------------------------------------------------------------------
# The numpy implementation of SCIENCE.md

class Response:
    """The section-1 response, interpolated in u = ln E for arrays of energies."""

    def __init__(self, energy, aeff, psf_sigma, bkg_rate):
        self.u = np.log(energy)
        self.aeff, self.psf, self.bkg = aeff, psf_sigma, bkg_rate
        with np.errstate(divide="ignore"):
            self.log_aeff, self.log_bkg = np.log(aeff), np.log(bkg_rate)
        self.tol_lo = GRID_TOLERANCE * max(1.0, abs(self.u[0]))
        self.tol_hi = GRID_TOLERANCE * max(1.0, abs(self.u[-1]))

    def _cell(self, u):
        inside = (u >= self.u[0] - self.tol_lo) & (u <= self.u[-1] + self.tol_hi)
        uc = np.clip(u, self.u[0], self.u[-1])
        i = np.clip(np.searchsorted(self.u, uc, side="right") - 1, 0, len(self.u) - 2)
        frac = (uc - self.u[i]) / (self.u[i + 1] - self.u[i])
        return inside, i, frac

    def _loglog(self, values, logs, inside, i, frac):
        ok = inside & (values[i] > 0) & (values[i + 1] > 0)  # a zero on either side gives zero
        with np.errstate(invalid="ignore"):
            out = np.exp(logs[i] + frac * (logs[i + 1] - logs[i]))
        return np.where(ok, out, 0.0)

    def __call__(self, energy):
        """aeff, psf_sigma, bkg_rate at `energy` (TeV)."""
        inside, i, frac = self._cell(np.log(energy))
        # Outside the grid psf_sigma keeps its end values: uc is clipped to the grid.
        sigma = self.psf[i] + frac * (self.psf[i + 1] - self.psf[i])
        return (self._loglog(self.aeff, self.log_aeff, inside, i, frac), sigma,
                self._loglog(self.bkg, self.log_bkg, inside, i, frac))


def angular_distance(ra1, dec1, ra2, dec2):
    """Exact great-circle distance, deg (the atan2 form, accurate at all separations)."""
    d = np.pi / 180.0
    dra = (ra2 - ra1) * d
    s1, c1 = np.sin(dec1 * d), np.cos(dec1 * d)
    s2, c2 = np.sin(dec2 * d), np.cos(dec2 * d)
    cdra = np.cos(dra)
    return np.arctan2(np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * cdra),
                      s1 * s2 + c1 * c2 * cdra) / d


def simpson_log(f_of_e, emin, emax, n=SIMPSON_INTERVALS):
    """Int_emin^emax f(E) dE by composite Simpson in ln E (f vectorised)."""
    u = np.log(emin) + (np.log(emax) - np.log(emin)) / n * np.arange(n + 1)
    w = np.ones(n + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    e = np.exp(u)
    return (w * f_of_e(e) * e).sum() * (u[1] - u[0]) / 3.0


def power_law_integral(gamma, emin, emax):
    if abs(gamma - 1.0) < 1e-12:
        return np.log(emax / emin)
    return (emax ** (1.0 - gamma) - emin ** (1.0 - gamma)) / (1.0 - gamma)


def livetimes(t0, t1, gti_start, gti_stop, deadtime):
    """Overlap of every bin [t0, t1) with the GTIs, times 1 - deadtime (bins x GTIs at once)."""
    overlap = np.minimum(t1[:, None], gti_stop) - np.maximum(t0[:, None], gti_start)
    return np.clip(overlap, 0.0, None).sum(axis=1) * (1.0 - deadtime)


# In counts, s = T N0 A and mu = T beta B, with p = a / A and q = b / B the source and
# background densities of the events, lnL = sum ln(s p + mu q) - s - mu (exactly the
# sum ln(T m) - Npred of SCIENCE.md), which is well scaled whatever N0's units.

def log_like(p, q, s, mu):
    return np.log(s * p + mu * q).sum() - s - mu


def fit_counts(p, q, s, mu):
    """Maximum of lnL over s >= 0, mu >= 0 by damped projected Newton from (s, mu).
    Returns s, mu, lnL, iterations, converged."""
    lnl = log_like(p, q, s, mu)
    for it in range(1, MAX_ITERATIONS + 1):
        m = s * p + mu * q
        rp, rq = p / m, q / m
        g = np.array([rp.sum() - 1.0, rq.sum() - 1.0])
        h_ss, h_sm, h_mm = (rp * rp).sum(), (rp * rq).sum(), (rq * rq).sum()  # of -H
        x = np.array([s, mu])
        free = ~((x == 0.0) & (g <= 0.0))  # on a bound and pushed against it: held there
        step = np.zeros(2)
        det = h_ss * h_mm - h_sm * h_sm
        if free.all() and det > 1e-12 * h_ss * h_mm:
            step = np.array([h_mm * g[0] - h_sm * g[1], h_ss * g[1] - h_sm * g[0]]) / det
        elif free.all():
            # Singular information (a single event, or all with one p/q ratio): lnL is flat
            # along a line and its maximum on a bound; diagonal Newton steps, line-searched.
            step = g / np.array([h_ss, h_mm])
        elif free[0]:
            step[0] = g[0] / h_ss
        elif free[1]:
            step[1] = g[1] / h_mm
        if np.all(np.abs(step) <= TOLERANCE * np.maximum(x, 1.0)):
            return max(s + step[0], 0.0), max(mu + step[1], 0.0), lnl, it, True
        # Backtracking (lnL is concave: a shorter step along the Newton direction gains). Near
        # the optimum the gain is below the rounding of a sum of n logarithms: accept a step
        # that loses no more than that.
        noise = 1e-12 * (abs(lnl) + len(p))
        alpha = 1.0
        while True:
            xn = np.maximum(x + alpha * step, 0.0)
            lnl_new = log_like(p, q, xn[0], xn[1])
            if lnl_new >= lnl - noise or alpha < 1e-12:
                break
            alpha *= 0.5
        if lnl_new < lnl - noise:
            return s, mu, lnl, it, False
        s, mu, lnl = xn[0], xn[1], lnl_new
    return s, mu, lnl, MAX_ITERATIONS, False


def profile_background(p, q, s, mu):
    """mu >= 0 maximising lnL at fixed s (Newton on the convex, decreasing score)."""
    for _ in range(MAX_ITERATIONS):
        rq = q / (s * p + mu * q)
        g = rq.sum() - 1.0
        if mu == 0.0 and g <= 0.0:
            return 0.0
        step = g / (rq * rq).sum()
        nxt = max(mu + step, 0.0)
        if abs(nxt - mu) <= TOLERANCE * max(mu, 1.0):
            return nxt
        mu = nxt
    return np.nan


def upper_limit_counts(p, q, s_hat, lnl_best, delta, start):
    """s > s_hat with 2 (lnL_best - lnL_profile(s)) = delta, beta refitted along the profile.
    Newton with d lnL_profile / ds = sum p / m - 1 (envelope theorem), kept above s_hat."""
    s, mu = start, (len(p) - s_hat)
    lo, hi = s_hat, np.inf
    for _ in range(MAX_ITERATIONS):
        mu = profile_background(p, q, s, mu)
        if not np.isfinite(mu):
            return np.nan
        excess = lnl_best - log_like(p, q, s, mu) - 0.5 * delta
        slope = 1.0 - (p / (s * p + mu * q)).sum()
        if excess > 0:
            hi = s
        else:
            lo = s
        nxt = s - excess / slope if slope > 0 else np.nan
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi) if np.isfinite(hi) else lo + 2.0 * (s - lo)
        if abs(nxt - s) <= TOLERANCE * s:
            return nxt
        s = nxt
    return np.nan


def inverse_information(h):
    """Inverse of the 2x2 information matrix h, or None when it is singular (condition
    number above 1e12 after scaling to a unit diagonal: too few events to constrain both)."""
    d = np.sqrt(np.diag(h)) if np.all(np.diag(h) > 0) else None
    if d is None:
        return None
    unit = h / np.outer(d, d)
    r = abs(unit[0, 1])
    if not (1.0 - r > 1e-12 * (1.0 + r)):
        return None
    return np.linalg.inv(unit) / np.outer(d, d)


def numpy_lightcurve(path, tbins, emin=0.1, emax=100.0, theta_max=0.2, gamma=2.5,
                     confidence=0.95, phases=None):
    """The LIN light curve of SCIENCE.md: a dict of per-bin columns. `phases`, a dict if
    given, receives the seconds spent reading, selecting (ROI and response) and fitting."""
    clock = [time.perf_counter()]
    with h5py.File(path, "r") as f:
        ra_src, dec_src = float(f.attrs["ra_pnt"]), float(f.attrs["dec_pnt"])
        deadtime = float(f.attrs["deadtime_fraction"])
        gti_start, gti_stop = f["gti/start"][()], f["gti/stop"][()]
        irf = Response(*(f["irf/" + k][()] for k in ("energy", "aeff", "psf_sigma", "bkg_rate")))
        tmin, tmax = gti_start[0], gti_stop[-1]
        time_ = f["events/time"][()]
        i0, i1 = np.searchsorted(time_, [tmin, tmax])
        time_ = time_[i0:i1]
        energy = f["events/energy"][i0:i1]
        ra = f["events/ra"][i0:i1]
        dec = f["events/dec"][i0:i1]
    clock.append(time.perf_counter())

    # ROI, cutting down the candidates step by step: energy (closed range), a declination
    # band (a cheap bound, with a margin far above its rounding), the GTIs (half-open), then
    # the exact distance (strict).
    sel = np.flatnonzero((energy >= emin) & (energy <= emax))
    sel = sel[np.abs(dec[sel] - dec_src) < theta_max + 1e-9]
    t = time_[sel]
    g = np.minimum(np.searchsorted(gti_stop, t, side="right"), len(gti_start) - 1)
    in_gti = (t < gti_stop[g]) & (gti_start[g] <= t)
    sel, t = sel[in_gti], t[in_gti]
    theta = angular_distance(ra_src, dec_src, ra[sel], dec[sel])
    near = theta < theta_max
    t, e, theta = t[near], energy[sel[near]], theta[near]

    # Per-event model densities and the energy integrals (Npred per unit livetime).
    aeff, sigma, bkg = irf(e)
    a = e ** -gamma * aeff * np.exp(-theta**2 / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    src_int = simpson_log(
        lambda x: x ** -gamma * irf(x)[0] * -np.expm1(-theta_max**2 / (2 * irf(x)[1] ** 2)),
        emin, emax)
    bkg_int = np.pi * theta_max**2 * simpson_log(lambda x: irf(x)[2], emin, emax)
    outside = (a == 0) & (bkg == 0)  # outside the response grid: no model, ignored
    t, p, q = t[~outside], a[~outside] / src_int, bkg[~outside] / bkg_int

    edges = tmin + (tmax - tmin) * np.arange(tbins + 1) / tbins
    edges[-1] = tmax
    first = np.searchsorted(t, edges)
    live = livetimes(edges[:-1], edges[1:], gti_start, gti_stop, deadtime)
    delta = chi2.ppf(2 * confidence - 1, 1)
    flux_per_n0 = power_law_integral(gamma, emin, emax)

    names = ("n_events", "livetime", "N0", "N0_err", "beta", "beta_err", "ts", "N0_ul", "lnl",
             "npred", "flux", "flux_err", "flux_ul", "iterations")
    out = {k: np.full(tbins, np.nan) for k in names}
    status = np.empty(tbins, dtype=object)
    out["livetime"][:] = live
    clock.append(time.perf_counter())
    with np.errstate(divide="ignore"):  # ln 0 = -inf: a model with no density at an event
        _fit_bins(out, status, p, q, first, live, src_int, bkg_int, delta, flux_per_n0)
    out["status"] = status
    out["time_start"], out["time_stop"] = edges[:-1], edges[1:]
    clock.append(time.perf_counter())
    if phases is not None:
        phases.update(zip(("read", "select", "fit"), np.diff(clock)))
    return out


def _fit_bins(out, status, p, q, first, live, src_int, bkg_int, delta, flux_per_n0):
    for k in range(len(live)):
        pb, qb = p[first[k]:first[k + 1]], q[first[k]:first[k + 1]]
        n, T = len(pb), live[k]
        out["n_events"][k] = n
        src_counts, bkg_counts = T * src_int, T * bkg_int  # per unit N0, per unit beta
        if n == 0 or not T > 0:
            status[k] = "empty"
            out["N0"][k] = out["beta"][k] = out["ts"][k] = out["lnl"][k] = out["npred"][k] = 0.0
            out["flux"][k] = out["iterations"][k] = 0.0
            if T > 0:  # lnL = -s - mu: the limit is s = delta / 2 counts
                out["N0_ul"][k] = 0.5 * delta / src_counts
                out["flux_ul"][k] = out["N0_ul"][k] * flux_per_n0
            continue
        f0 = np.clip(1.0 - bkg_counts / n, 0.05, 0.95)  # start from the excess over beta = 1
        s, mu, lnl, its, ok = fit_counts(pb, qb, f0 * n, (1.0 - f0) * n)
        out["iterations"][k] = its
        out["N0"][k], out["beta"][k] = s / src_counts, mu / bkg_counts
        out["lnl"][k], out["npred"][k] = lnl, s + mu
        out["flux"][k] = out["N0"][k] * flux_per_n0
        if not ok:
            status[k] = "failed"
            continue
        status[k] = "ok"
        m = s * pb + mu * qb
        rp, rq = pb / m, qb / m
        info = np.array([[(rp * rp).sum(), (rp * rq).sum()],
                         [(rp * rq).sum(), (rq * rq).sum()]])  # -Hessian in (s, mu)
        cov = inverse_information(info)
        if cov is not None:
            out["N0_err"][k] = np.sqrt(cov[0, 0]) / src_counts
            out["beta_err"][k] = np.sqrt(cov[1, 1]) / bkg_counts
            out["flux_err"][k] = out["N0_err"][k] * flux_per_n0
        # TS: the null s = 0 refits mu to n (d/dmu [sum ln(mu q) - mu] = n / mu - 1).
        lnl_null = np.log(n * qb).sum() - n
        out["ts"][k] = 0.0 if s == 0.0 else max(0.0, 2.0 * (lnl - lnl_null))
        sd = np.sqrt(cov[0, 0]) if cov is not None else np.nan
        start = s + np.sqrt(delta) * sd if np.isfinite(sd) and sd > 0 else \
            s + 0.5 * delta + np.sqrt(2 * delta * (s + 1))
        s_ul = upper_limit_counts(pb, qb, s, lnl, delta, start)
        out["N0_ul"][k] = s_ul / src_counts
        out["flux_ul"][k] = out["N0_ul"][k] * flux_per_n0


# ---------------------------------------------------------------------------------------------
# The bench

def run_numpy_once(args):
    """Hidden mode: one numpy light curve in this fresh interpreter, timed after the imports."""
    phases = {}
    start, cpu = time.perf_counter(), time.process_time()
    r = numpy_lightcurve(args.events, args.bins, phases=phases)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    status = r.pop("status")
    np.savez(args.numpy_once, wall=wall, cpu=cpu, status=status.astype(str),
             **{"phase_" + k: v for k, v in phases.items()}, **r)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_binflow(args, out, extra):
    """Whole-process wall and CPU seconds of one binflow lightcurve on one rank (no mpirun:
    a singleton), and its /run wall."""
    cmd = [args.binflow, "lightcurve", f"inobs={args.events}", f"outfile={out}", "clobber=yes",
           "chatter=0", "nthreads=1", *extra]
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(cmd, check=True, env=mpi_environment(), stdout=subprocess.DEVNULL)
    process, cpu = time.perf_counter() - start, children_cpu() - cpu
    with h5py.File(out, "r") as f:
        return process, cpu, float(f["run"].attrs["wall"])


def run_numpy(args, out):
    cmd = [sys.executable, os.path.abspath(__file__), "--events", args.events, "--bins",
           str(args.bins), "--numpy_once", out, "--binflow", args.binflow]
    # One core, as binflow's nthreads=1: no BLAS or OpenMP threads behind numpy's back.
    one_core = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    subprocess.run(cmd, check=True, env=dict(os.environ, **one_core))
    with np.load(out, allow_pickle=False) as z:
        r = {k: z[k] for k in z.files}
    return float(r.pop("wall")), float(r.pop("cpu")), r


def relative_difference(a, b, floor=1e-12):
    """max |a - b| / |b| over bins where both are finite (|a - b| alone where |b| <= floor,
    SCIENCE.md's "1e-12 absolute near zero"), and the bin where it is largest."""
    ok = np.isfinite(a) & np.isfinite(b)
    d = np.abs(a[ok] - b[ok])
    scale = np.abs(b[ok])
    d = np.where(scale > floor, d / np.where(scale > floor, scale, 1.0), d)
    return (float(d.max()) if d.size else 0.0), int(np.argmax(d)) if d.size else -1


def agreement(ours, lc_path):
    with h5py.File(lc_path, "r") as f:
        ref = {k: f["results/" + k][()] for k in f["results"].keys()}
    ref_status = np.array([s.decode() if isinstance(s, bytes) else s for s in ref["status"]])
    same_status = np.array_equal(ref_status, ours["status"])
    same_events = np.array_equal(ref["n_events"], ours["n_events"].astype(np.int64))
    same_nan = all(np.array_equal(np.isnan(ref[k]), np.isnan(ours[k]))
                   for k in ("N0_err", "beta_err", "N0_ul"))
    print(f"agreement with binflow over {len(ref_status)} bins "
          f"({int((ref_status == 'ok').sum())} ok, {int((ref_status == 'empty').sum())} empty): "
          f"status {'same' if same_status else 'DIFFERENT'}, n_events "
          f"{'same' if same_events else 'DIFFERENT'}, NaN errors/limits "
          f"{'same' if same_nan else 'DIFFERENT'}")
    good = same_status and same_events and same_nan
    checks = [("livetime", 1e-4, "rel"), ("N0", 1e-4, "rel"), ("N0_err", 1e-4, "rel"),
              ("beta", 1e-4, "rel"), ("beta_err", 1e-4, "rel"), ("flux", 1e-4, "rel"),
              ("flux_err", 1e-4, "rel"), ("lnl", 1e-4, "rel"), ("ts", 1e-3, "abs"),
              ("N0_ul", 1e-3, "rel"), ("flux_ul", 1e-3, "rel")]
    for name, tol, kind in checks:
        if kind == "rel":
            d, where = relative_difference(ours[name], ref[name])
        else:
            ok = np.isfinite(ours[name]) & np.isfinite(ref[name])
            diff = np.abs(ours[name][ok] - ref[name][ok])
            d, where = float(diff.max()), int(np.argmax(diff))
        passed = d <= tol
        good = good and passed
        print(f"  {name:<9} max {'relative' if kind == 'rel' else 'absolute'} difference "
              f"{d:.2e} (tolerance {tol:g}; bin {where}) {'ok' if passed else 'EXCEEDED'}")
    return good


def summary(values):
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binflow", required=True)
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--workdir", help="keep the simulated file here (default: a temporary directory)")
    p.add_argument("--events", help="use this event file instead of simulating one (read only)")
    p.add_argument("--bins", type=int, default=2500)
    p.add_argument("--hours", type=float, default=100.0)
    p.add_argument("--numpy_once", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.repetitions < 1 or args.bins < 1 or not args.hours > 0:
        p.error("--repetitions and --bins must be >= 1 and --hours > 0")
    if args.numpy_once:
        run_numpy_once(args)
        return
    args.binflow = os.path.abspath(args.binflow)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        if not args.events:
            args.events = os.path.join(workdir, f"ev{args.hours:g}h.h5")
            if not os.path.exists(args.events):
                subprocess.run([args.binflow, "simulate", f"duration={args.hours * 3600:g}",
                                f"outfile={args.events}", "chatter=0"], env=mpi_environment(),
                               check=True)
        with h5py.File(args.events, "r") as f:
            n_file = f["events/time"].shape[0]
            t0 = float(f["gti/start"][0])
        print(f"file {args.events}: {n_file} events; light curve of {args.bins} LIN bins over "
              f"the GTIs' span, 0.1-100 TeV, theta < 0.2 deg, gamma fixed 2.5, TS and UL on")

        lc = os.path.join(tmp, "lc.h5")
        startup_out = os.path.join(tmp, "startup.h5")
        npz = os.path.join(tmp, "numpy.npz")
        np_wall, np_cpu, np_phases, bf_map, bf_net, bf_cpu, bf_process, bf_startup = \
            [], [], [], [], [], [], [], []
        for rep in range(args.repetitions):  # interleaved: the machine's load hits all alike
            w, c, ours = run_numpy(args, npz)
            np_wall.append(w)
            np_cpu.append(c)
            np_phases.append([float(ours.pop("phase_" + k)) for k in ("read", "select", "fit")])
            proc, cpu, wall = run_binflow(args, lc, [f"tbins={args.bins}"])
            s_proc, s_cpu, _ = run_binflow(args, startup_out,
                                           [f"tmin={t0:.17g}", f"tmax={t0 + 1:.17g}", "tbins=1"])
            bf_process.append(proc)
            bf_startup.append(s_proc)
            bf_map.append(wall)
            bf_net.append(proc - s_proc)
            bf_cpu.append(cpu - s_cpu)
            if rep == 0:
                ours["status"] = ours["status"].astype(object)
                agree = agreement(ours, lc)
                if not agree:
                    print("numpy and binflow DISAGREE beyond SCIENCE.md's tolerances")
        with h5py.File(lc, "r") as f:
            roi = int(f["results/n_events"][()].sum())
        print(f"timing, {args.repetitions} interleaved repetitions, medians (min-max); "
              f"{roi} ROI events:")
        print(f"  numpy (in process after imports, h5py reads included): {summary(np_wall)}")
        read, select, fit = (statistics.median(x) for x in zip(*np_phases))
        print(f"    of which (medians) h5py reads {read:.3f} s, ROI selection and response "
              f"{select:.3f} s, the {args.bins} fits with TS and UL {fit:.3f} s")
        print(f"  binflow 1 rank, map wall (/run wall):                  {summary(bf_map)}")
        print(f"  binflow 1 rank, process - start-up run:                {summary(bf_net)} "
              f"(process {summary(bf_process)}, start-up {summary(bf_startup)})")
        med = statistics.median(np_wall)
        print(f"  ratio numpy / binflow (wall): {med / statistics.median(bf_map):.1f} (map wall), "
              f"{med / statistics.median(bf_net):.1f} (process - start-up)")
        print(f"  CPU seconds (less sensitive to a busy machine): numpy {summary(np_cpu)}, "
              f"binflow process - start-up {summary(bf_cpu)}, ratio "
              f"{statistics.median(np_cpu) / statistics.median(bf_cpu):.1f}")
        if not agree:
            sys.exit(1)


if __name__ == "__main__":
    main()
