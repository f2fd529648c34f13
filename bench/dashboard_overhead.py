#!/usr/bin/python3
"""What the live dashboard costs a run: the map's wall time (/run's `wall`) of `binflow
synthetic` (2000 bins of 1 ms on 2 ranks by default) without the dashboard, with it, and with
it while a client polls /state.json as often as it can (every completed request is followed
at once by the next, for the bins completed since its last answer: far harsher than a page's
one poll a second). Runs alternate, so drifts
of a shared machine hit all three alike; prints the median and min-max of each and the
ratios of the medians to the run without the dashboard. Usage:
    bench/dashboard_overhead.py --binflow build/bin/binflow [--ranks 2] [--bins 2000]
        [--cost_ms 1] [--repetitions 7]
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import urllib.request

import h5py

from bench_common import mpi_environment


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll_until(stop, url, counter):
    """Asks for the state back to back until `stop` is set, for the bins since its last
    answer as the page does; counts the answers."""
    since = 0
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{url}state.json?since={since}", timeout=1) as r:
                since += len(json.loads(r.read())["bins"])
                counter[0] += 1
        except (OSError, http.client.HTTPException):
            pass  # not up yet, or gone


def run_once(args, workdir, name, mode):
    out = os.path.join(workdir, f"{name}.h5")
    cmd = [args.mpiexec, "-n", str(args.ranks), args.binflow, "synthetic", "--bins", str(args.bins),
           "--cost_ms", str(args.cost_ms), "--draws", "0", "--log_lines", "0", "--chatter", "1",
           "--outfile", out, "--clobber"]
    stop = threading.Event()
    answers = [0]
    poller = None
    if mode != "off":
        port = free_port()
        cmd += ["--dashboard", str(port)]
        if mode == "polled":
            poller = threading.Thread(target=poll_until,
                                      args=(stop, f"http://127.0.0.1:{port}/", answers))
            poller.start()
    subprocess.run(cmd, check=True, env=mpi_environment(), stdout=subprocess.DEVNULL)
    stop.set()
    if poller:
        poller.join()
    with h5py.File(out, "r") as f:
        return float(f["run"].attrs["wall"]), answers[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binflow", required=True)
    p.add_argument("--mpiexec", default="mpirun")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--bins", type=int, default=2000)
    p.add_argument("--cost_ms", type=float, default=1.0)
    p.add_argument("--repetitions", type=int, default=7)
    args = p.parse_args()
    modes = ["off", "on", "polled"]
    walls = {m: [] for m in modes}
    polls = []
    with tempfile.TemporaryDirectory() as workdir:
        for rep in range(args.repetitions):
            for m in modes:
                wall, answers = run_once(args, workdir, f"{m}{rep}", m)
                walls[m].append(wall)
                if m == "polled":
                    polls.append(answers / wall)
    base = statistics.median(walls["off"])
    print(f"synthetic, {args.bins} bins of {args.cost_ms} ms on {args.ranks} ranks, "
          f"{args.repetitions} runs each (map wall time):")
    for m in modes:
        med = statistics.median(walls[m])
        print(f"  dashboard {m:6s}  median {med:.3f} s  (min {min(walls[m]):.3f}, "
              f"max {max(walls[m]):.3f})  ratio {med / base:.3f}")
    print(f"  the polling client got {statistics.median(polls):.0f} answers per second (median)")


if __name__ == "__main__":
    main()
