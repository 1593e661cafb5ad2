"""What a stop rule costs the master per report (``ambs.stopping``).

The master decides on each in-training report as it arrives, between two
dispatches; this measures that decision for every rule in ``RULES``, with
``--history`` finished curves already on the master (synthetic learning
curves: saturating climbs with noise, some flat). Reported: the mean, median and
99th percentile of one ``decide`` in milliseconds, over the reports of
``--curves`` new evaluations of ``--steps`` steps each.

    .venv/bin/python bench/stop_rules.py [--history 100 1000] [--curves 50] [--steps 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ambs.stopping import RULES, make_rule  # noqa: E402


def curve(rng: np.random.Generator, steps: int) -> list[float]:
    """A saturating climb to a random ceiling with noise; one in five stays flat."""
    x = np.arange(1, steps + 1)
    if rng.random() < 0.2:
        return list(np.full(steps, rng.uniform(0.05, 0.15)))
    top, rate = rng.uniform(0.5, 0.98), rng.uniform(0.1, 0.8)
    return list(top * (1 - np.exp(-rate * x)) + rng.normal(0, 0.01, steps))


def measure(name: str, history: int, curves: int, steps: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    rule = make_rule(name, final_step=steps)
    for j in range(history):
        values = curve(rng, steps)
        for s, v in enumerate(values, start=1):
            rule.observe(j, s, v)
        rule.finish(j, values[-1])
    times, stopped = [], 0
    for j in range(history, history + curves):
        for s, v in enumerate(curve(rng, steps), start=1):
            t = time.perf_counter()
            stop = rule.decide(j, s, v)
            times.append(time.perf_counter() - t)
            if stop:
                stopped += 1
                break
        rule.finish(j, v)
    ms = np.asarray(times) * 1e3
    return {"rule": name, "history": history, "reports": len(ms), "stopped": stopped,
            "mean_ms": float(ms.mean()), "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    ap.add_argument("--history", nargs="+", type=int, default=[100, 1000])
    ap.add_argument("--curves", type=int, default=50)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", default=None, help="write the rows to this file")
    args = ap.parse_args()
    rows = [measure(r, h, args.curves, args.steps) for h in args.history for r in args.rules]
    print(f"{'rule':<10}{'history':>8}{'reports':>9}{'stopped':>9}{'mean ms':>9}{'median ms':>11}{'p99 ms':>9}")
    for r in rows:
        print(f"{r['rule']:<10}{r['history']:>8}{r['reports']:>9}{r['stopped']:>9}"
              f"{r['mean_ms']:>9.3f}{r['median_ms']:>11.3f}{r['p99_ms']:>9.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
