#!/usr/bin/python3
"""`binflow report` and the live dashboard in a real browser (Debian's Chromium driven by
playwright-core from web/node_modules, tests/e2e/report_browser.mjs):
1. the reports of a light curve, a spectrum, a phase curve, a pull run, a TS distribution and a
   synthetic run
   load from disk with no console error and no request beyond the page; every series holds the
   points the output file says it must (points with errors where TS >= 4, upper-limit arrows
   where TS < 4, as Plotly drew them in the DOM); the timeline has one box per bin; hovering
   the first box shows that bin, its rank and status;
2. a 100 000-bin run: the page loads, the timeline merges sub-pixel boxes (fewer boxes than
   bins, every bin counted);
3. the dashboard, loaded while a synthetic job runs on 2 ranks, shows the count of completed
   bins advancing, then the final report; /results are bit-identical to a run without it; a
   port in use is a warning and the run still writes its results;
4. bad input to `binflow report`: one line, exit 2, nothing written."""
import json
import os
import shutil
import socket
import subprocess
import time

from e2e_common import Context, identical, read_group

ctx = Context()
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
browser_script = os.path.join(root, "tests", "e2e", "report_browser.mjs")
chromium = shutil.which("chromium")
ctx.check(chromium is not None, "Debian's chromium is installed (scripts/setup.sh installs it)")
TS_THRESHOLD = 4.0
timings = {}


def timed(name, fn):
    t0 = time.time()
    out = fn()
    timings[name] = time.time() - t0
    return out


def run_ok(what, words, ranks=None, expect=0):
    r = ctx.run(words, ranks=ranks)
    ctx.check(r.returncode == expect, f"{what}: exit {expect}", r.stderr[-2000:])
    return r


def report(h5, html):
    r = ctx.run(["report", h5, f"html={html}"])
    ctx.check(r.returncode == 0 and os.path.exists(html), f"binflow report {os.path.basename(h5)}",
              r.stderr)
    return "file://" + html


def browse(job):
    path = ctx.path(f"job{len(timings)}.json")
    with open(path, "w") as f:
        json.dump({"chromium": chromium, **job}, f)
    r = subprocess.run(["node", browser_script, path], capture_output=True, text=True,
                       timeout=300, cwd=ctx.workdir)
    ok = ctx.check(r.returncode == 0, "the browser driver ran", r.stderr[-3000:])
    return json.loads(r.stdout) if ok else {"pages": [], "live": None}


def expected_points(results, value, ul):
    """Points and upper limits of a result plot, from the file: ok rows, UL where TS < 4."""
    ok = results["status"] == "ok"
    limit = ok & (results["ts"] < TS_THRESHOLD) & ~__import__("numpy").isnan(results[ul])
    return int((ok & ~limit).sum()), int(limit.sum())


def trace(page, name):
    return next((t for t in page["traces"] if t["name"] == name), None)


# --- the outputs ---------------------------------------------------------------------------
def make_outputs():
    obs = ctx.path("crab.h5")
    run_ok("simulate 2 hours", ["simulate", "--duration", "7200", "--seed", "3", "--outfile", obs])
    # High energies only: most 5-minute bins are faint, so both points and limits appear.
    run_ok("lightcurve", ["lightcurve", "--inobs", obs, "--tbins", "24", "--emin", "3",
                          "--outfile", ctx.path("lc.h5")], ranks=2)
    run_ok("spectrum", ["spectrum", "--inobs", obs, "--enumbins", "12", "--emin", "0.1",
                        "--emax", "100", "--outfile", ctx.path("spec.h5")], ranks=2)
    run_ok("pull", ["pull", "--ntrials", "60", "--free_index", "yes",
                    "--outfile", ctx.path("pull.h5")], ranks=2)
    run_ok("tsdist", ["tsdist", "--ntrials", "60", "--outfile", ctx.path("ts.h5")], ranks=2)
    psr = ctx.path("pulsar.h5")
    run_ok("simulate a pulsar", ["simulate", "--duration", "3600", "--seed", "7", "--profile",
                                 "pulsar", "--pulsed_fraction", "0.5", "--t_ref", "0", "--f0",
                                 "0.0297", "--outfile", psr])
    run_ok("phasecurve", ["phasecurve", "--inobs", psr, "--t_ref", "0", "--f0", "0.0297",
                          "--phbins", "10", "--outfile", ctx.path("phase.h5")], ranks=2)
    # One failed bin: the table and the timeline show it (the run exits 1).
    run_ok("synthetic with a failed bin", ["synthetic", "--bins", "30", "--cost_ms", "2",
                                           "--fail_bins", "7", "--outfile", ctx.path("syn.h5")],
           ranks=3, expect=1)
    # Two bins at once on one rank (lightcurve with 2 threads and 600 bins): two timeline rows.
    run_ok("lightcurve, 2 bins at once", ["lightcurve", "--inobs", obs, "--tbins", "600",
                                          "--nthreads", "2", "--oversubscribe", "yes",
                                          "--outfile", ctx.path("lanes.h5")])
    run_ok("synthetic, 100000 bins", ["synthetic", "--bins", "100000", "--cost_ms", "0",
                                      "--draws", "16", "--log_lines", "0", "--chatter", "1",
                                      "--outfile", ctx.path("big.h5")], ranks=2)


timed("outputs", make_outputs)
pages = timed("reports", lambda: [
    {"name": name, "url": report(ctx.path(f"{name}.h5"), ctx.path(f"{name}.html")),
     "hover": name == "syn", "screenshot": ctx.path(f"{name}.png")}
    for name in ["lc", "spec", "phase", "pull", "ts", "syn", "big", "lanes"]])
seen = timed("browser, reports", lambda: browse({"pages": pages}))
by_name = {p["name"]: p for p in seen["pages"]}

for name, page in by_name.items():
    ctx.check(page["errors"] == [], f"{name}: no console error, no request", page["errors"])
    ctx.check(page["externalScripts"] == 0, f"{name}: every script and style is inlined")
    bins = read_group(ctx.path(f"{name}.h5"), "run/bins")
    resumed = int(bins["resumed"].sum())
    tl = page["report"]["timeline"]
    ctx.check(tl["bins"] == len(bins["bin"]) - resumed, f"{name}: the timeline counts every bin",
              tl)
    ctx.check(page["timelineBars"] == tl["boxes"], f"{name}: Plotly drew every timeline box",
              f"{page['timelineBars']} drawn, {tl['boxes']} boxes")
    if name not in ("big", "lanes"):
        ctx.check(tl["boxes"] == tl["bins"] and not tl["aggregated"],
                  f"{name}: one timeline box per bin", tl)

lc = by_name.get("lc")
if lc:
    res = read_group(ctx.path("lc.h5"))
    points, limits = expected_points(res, "flux", "flux_ul")
    ctx.check(points > 0 and limits > 0, f"lightcurve: points ({points}) and limits ({limits})")
    ctx.check(trace(lc, "flux")["markers"] == points, "lightcurve: every flux point drawn",
              trace(lc, "flux"))
    ctx.check(trace(lc, f"upper limits (TS < {TS_THRESHOLD:g})")["markers"] == limits,
              "lightcurve: every upper-limit arrow drawn", lc["traces"])
    ctx.check(trace(lc, "TS")["markers"] == int((res["status"] == "ok").sum()),
              "lightcurve: the TS panel has every ok bin")
    ctx.check(lc["cards"].get("card-ranks") == "2" and lc["cards"].get("card-nodes") == "1",
              "lightcurve: geometry 2 ranks on 1 node", lc["cards"])

spec = by_name.get("spec")
if spec:
    res = read_group(ctx.path("spec.h5"))
    points, limits = expected_points(res, "dnde", "dnde_ul")
    ctx.check(points > 0 and limits > 0, f"spectrum: points ({points}) and limits ({limits})")
    ctx.check(trace(spec, "flux points")["markers"] == points, "spectrum: every flux point drawn")
    ctx.check(trace(spec, f"upper limits (TS < {TS_THRESHOLD:g})")["markers"] == limits,
              "spectrum: every upper-limit arrow drawn", spec["traces"])
    ctx.check(spec["report"]["result"].get("model") == 1 and trace(spec, "band") is not None,
              "spectrum: the global power law and its band", spec["traces"])

phase = by_name.get("phase")
if phase:
    res = read_group(ctx.path("phase.h5"))
    points, limits = expected_points(res, "flux", "flux_ul")
    ctx.check(points + limits == int((res["status"] == "ok").sum()) and points > 0,
              f"phasecurve: every ok bin is a point ({points}) or a limit ({limits})")
    ctx.check(trace(phase, "flux")["markers"] == points, "phasecurve: every flux point drawn",
              phase["traces"])
    # An empty trace has no SVG group at all (markers None).
    ctx.check((trace(phase, f"upper limits (TS < {TS_THRESHOLD:g})")["markers"] or 0) == limits,
              "phasecurve: every upper-limit arrow drawn", phase["traces"])

pull = by_name.get("pull")
if pull:
    res = read_group(ctx.path("pull.h5"))
    import numpy as np
    ok = res["status"] == "ok"
    want = {k: int(np.isfinite(res[k][ok]).sum()) for k in res if k.startswith("pull_")}
    ctx.check(pull["report"]["result"].get("histograms") == want,
              f"pull: one histogram per pull column with every trial ({want})",
              pull["report"]["result"])
    normals = [t for t in pull["traces"] if t["name"] == "unit normal"]
    ctx.check(len(normals) == len(want), "pull: a unit normal over each histogram")

ts = by_name.get("ts")
if ts:
    res = read_group(ctx.path("ts.h5"))
    ctx.check(ts["report"]["result"].get("trials") == int((res["status"] == "ok").sum()),
              "tsdist: every trial in the histogram", ts["report"]["result"])
    ctx.check(trace(ts, "½ χ²₁ expectation") is not None, "tsdist: the half chi^2 expectation")

syn = by_name.get("syn")
if syn:
    ctx.check(syn["report"]["result"].get("kind") == "table" and syn["resultsRows"] == 30,
              "synthetic: a table view of /results (30 rows)", syn["report"]["result"])
    bins = read_group(ctx.path("syn.h5"), "run/bins")
    status = read_group(ctx.path("syn.h5"))["status"]
    # The first box drawn: the first status trace's earliest box of the lowest rank.
    first_status = "ok"
    cand = [i for i in range(len(bins["bin"])) if bins["rank"][i] == 0 and status[i] == first_status]
    first = min(cand, key=lambda i: bins["start"][i])
    hover = syn.get("hover") or ""
    ctx.check(f"bin {bins['bin'][first]}" in hover and "rank 0, ok" in hover,
              f"synthetic: hovering the first box shows bin {bins['bin'][first]} on rank 0",
              hover)
    ctx.check(syn["report"]["timeline"]["boxes"] == 30, "synthetic: 30 boxes, the failed one too")

lanes = by_name.get("lanes")
if lanes:
    rows = lanes["report"]["timeline"].get("rows")
    ctx.check(rows == ["rank 0 · 0", "rank 0 · 1"],
              "two bins at once: the timeline has a row per bin in flight", rows)

big = by_name.get("big")
if big:
    tl = big["report"]["timeline"]
    ctx.check(tl["aggregated"] and tl["boxes"] < 100000 // 10,
              f"100000 bins: sub-pixel boxes merged ({tl['boxes']} boxes)", tl)
    print(f"      100000-bin report: {os.path.getsize(ctx.path('big.html')) / 1e6:.1f} MB, "
          f"loaded and drawn in {big['loadMs'] / 1000:.1f} s", flush=True)


# --- the live dashboard ----------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_dashboard():
    port = free_port()
    words = ["synthetic", "--bins", "120", "--cost_ms", "100", "--seed", "4", "--clobber"]
    ref = ctx.path("live_ref.h5")
    run_ok("synthetic without the dashboard", [*words, "--outfile", ref], ranks=2)
    url = f"http://127.0.0.1:{port}/"
    job = ctx.path("live_job.json")
    with open(job, "w") as f:
        json.dump({"chromium": chromium, "live": {"url": url, "until_ms": 30000,
                                                  "screenshot": ctx.path("live.png")}}, f)
    # The browser first, then the run: the page is open from the run's first second.
    browser = subprocess.Popen(["node", browser_script, job], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ctx.workdir)
    ready = browser.stderr.readline()
    ctx.check("browser ready" in ready, "the browser is up", ready)
    out = ctx.path("live.h5")
    proc = ctx.start([*words, "--outfile", out, "--dashboard", str(port)], ranks=2,
                     stdout=subprocess.DEVNULL)
    stdout, stderr = browser.communicate(timeout=120)
    proc.wait(timeout=60)
    ctx.check(browser.returncode == 0, "the browser driver ran", stderr[-3000:])
    ctx.check(proc.returncode == 0, "the run with the dashboard: exit 0", proc.stderr.read()[-2000:])
    same, why = identical(read_group(ref), read_group(out))
    ctx.check(same, "dashboard on: /results bit-identical to the run without it", why)
    result = json.loads(stdout) if browser.returncode == 0 else {}
    live = result.get("live") or {"samples": [], "errors": ["no result"], "report": {}}
    done = [s["live"]["done"] for s in live["samples"] if s["live"] and not s["live"]["finished"]]
    ctx.check(len(set(done)) >= 2 and done == sorted(done),
              f"the page showed completed bins advancing ({sorted(set(done))})", live["samples"][:5])
    ctx.check(bool(live["samples"]) and live["samples"][-1]["ready"], "the page drew the final report")
    final = live.get("report", {}).get("live", {})
    ctx.check(final.get("finished") and final.get("done") == 120,
              "the final state: finished, 120 of 120 bins", final)
    ctx.check(live.get("timelineBars") == 120, "the final timeline has the 120 bins",
              live.get("timelineBars"))
    ctx.check(live["errors"] == [], "the live page: no console error", live["errors"])


timed("dashboard", live_dashboard)


def port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = ctx.path("busy.h5")
        r = run_ok("dashboard on a port in use: the run goes on",
                   ["synthetic", "--bins", "5", "--outfile", out, "--dashboard", str(port)])
        ctx.check(f"cannot listen on 127.0.0.1:{port}" in r.stdout and os.path.exists(out),
                  "... with a warning, and writes its results", r.stdout[-1500:])


timed("port in use", port_in_use)


# --- bad input -------------------------------------------------------------------------------
def bad_input():
    html = ctx.path("lc.html")
    before = open(html, "rb").read()
    events = ctx.path("crab.h5")
    cases = [
        (["report", ctx.path("missing.h5")], "missing.h5"),
        (["report", events, f"html={ctx.path('events.html')}"], "not the output of a binflow tool"),
        (["report", ctx.path("lc.h5"), f"html={html}"], "exists (clobber=yes overwrites it)"),
        (["report", ctx.path("lc.h5"), f"html={ctx.path('lc.h5')}"], "same file"),
        (["report", ctx.path("lc.h5"), f"html={ctx.path('nodir/x.html')}"], "does not exist"),
    ]
    for words, text in cases:
        r = ctx.run(words)
        lines = r.stderr.strip().splitlines()
        ctx.check(r.returncode == 2 and len(lines) == 1 and text in lines[0],
                  f"bad input {' '.join(os.path.basename(w) for w in words[1:])}: one line, exit 2",
                  r.stderr)
    ctx.check(open(html, "rb").read() == before, "the existing page is untouched")
    ctx.check(not os.path.exists(ctx.path("events.html")), "no page written for an events file")


timed("bad input", bad_input)
print("      times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), flush=True)
ctx.finish()
