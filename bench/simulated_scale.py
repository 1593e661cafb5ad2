"""Simulated utilization at scale, and master memory over a long run.

Runs ``ambs simulate`` (the real AMBS and driver, simulated workers on a
virtual clock, the master's compute measured for real) for each worker count
and evaluation-time distribution, and prints one table row each:
utilization while there is work to hand out, the same including the final
drain, master milliseconds per result (and by phase: writing rows, telling,
folding results and lies into the forest, the rest of the acquisition,
submitting, the loop), fits, and the master's resident memory at the start,
at the end and at its peak (transients such as a model being received too).

    .venv/bin/python bench/simulated_scale.py [--workers 128 1024 4096]
        [--durations lognormal:60,0.5 lognormal:5,0.5] [--waves 3] [--json FILE]

Each run simulates ``--waves`` times as many evaluations as workers (at
least ``--min-evals``), so every worker is handed several configurations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_one(problem: str, workers: int, duration: str, evals: int, seed: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "ambs", "simulate", problem, "--workers", str(workers), "--duration", duration,
           "--max-evals", str(evals), "--seed", str(seed), "--json", *extra]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr}")
    out = json.loads(res.stdout)
    out["real_seconds"] = time.perf_counter() - t
    out["command"] = " ".join(["ambs", *cmd[3:]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="problems.ackley")
    ap.add_argument("--workers", type=int, nargs="+", default=[128, 1024, 4096])
    ap.add_argument("--durations", nargs="+", default=["lognormal:60,0.5", "lognormal:5,0.5"])
    ap.add_argument("--waves", type=float, default=3.0)
    ap.add_argument("--min-evals", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="further `ambs simulate` options (e.g. --fit sync)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    print(f"{'workers':>7} {'duration':>18} {'evals':>6} {'util':>7} {'util+drain':>10} "
          f"{'ms/result':>9} {'fits':>5} {'RSS MB start->end':>18} {'peak':>5} {'real s':>7}", flush=True)
    for duration in args.durations:
        for w in args.workers:
            n = max(int(args.waves * w), args.min_evals)
            r = run_one(args.problem, w, duration, n, args.seed, args.extra)
            rss = r["rss_mb"]
            first, last = rss[min(rss, key=int)], rss[max(rss, key=int)]
            print(f"{w:>7} {duration:>18} {r['evaluations']:>6} {r['utilization']:>7.2%} "
                  f"{r['utilization_total']:>10.2%} {r['master_seconds_per_result'] * 1e3:>9.2f} "
                  f"{r['fits']:>5} {first:>8.0f} -> {last:<7.0f} {r.get('rss_peak_mb', 0):>5.0f} {r['real_seconds']:>7.0f}",
                  flush=True)
            per = r.get("master_breakdown", {})
            print("        master ms/result: " + ", ".join(
                f"{k} {v / max(r['evaluations'], 1) * 1e3:.3f}" for k, v in per.items()), flush=True)
            rows.append(r)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
