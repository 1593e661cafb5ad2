"""How far apart two methods' mean normalized scores on the real-task suite are, beyond seed noise.

Reads the traces ``bench/quality.py --save`` wrote, scores every run as
``quality.py`` does (0: random search's mean best, 100: the best value any
of ``--methods`` found on the task), and resamples each task's seeds of the
two methods compared (a bootstrap) to put an interval on the difference of
their mean scores::

    .venv/bin/python bench/suite_compare.py --saved bench/results/quality \\
        --methods ambs random optuna-tpe optuna-gp dh-cbo hebo --compare ambs optuna-gp
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np
import tasks


def _bests(saved: str, task: str, evals: int, method: str, at: int) -> np.ndarray:
    files = sorted(glob.glob(os.path.join(saved, f"{task}-{evals}x8", f"{method}-seed*.json")))
    if not files:
        raise SystemExit(f"no saved runs of {method} on {task} under {saved}")
    return np.array([max(json.load(open(f))["trace"][:at]) for f in files])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--saved", default="bench/results/quality")
    ap.add_argument("--methods", nargs="+", required=True, help="the methods scored together (random among them)")
    ap.add_argument("--compare", nargs=2, required=True, metavar=("A", "B"))
    ap.add_argument("--evals", type=int, default=128)
    ap.add_argument("--at", type=int, nargs="+", default=[50, 100, 128])
    ap.add_argument("--draws", type=int, default=4000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a, b = args.compare
    for at in args.at:
        scores: dict[str, dict[str, np.ndarray]] = {}
        for task in tasks.SUITE:
            runs = {m: _bests(args.saved, task, args.evals, m, at) for m in args.methods}
            best = max(_bests(args.saved, task, args.evals, m, args.evals).max() for m in args.methods)
            base = runs["random"].mean()
            scores[task] = {m: 100 * (v - base) / (best - base) for m, v in runs.items()}
        mean = {m: float(np.mean([scores[t][m].mean() for t in tasks.SUITE])) for m in args.methods}
        draws = np.zeros(args.draws)
        for t in tasks.SUITE:
            x, y = scores[t][a], scores[t][b]
            draws += x[rng.integers(0, len(x), (args.draws, len(x)))].mean(axis=1)
            draws -= y[rng.integers(0, len(y), (args.draws, len(y)))].mean(axis=1)
        draws /= len(tasks.SUITE)
        lo, hi = np.percentile(draws, [5, 95])
        print(f"@{at}: " + ", ".join(f"{m} {v:.1f}" for m, v in mean.items())
              + f" | {a} - {b} {mean[a] - mean[b]:+.1f}, 90% interval {lo:+.1f} to {hi:+.1f},"
              f" {a} ahead in {np.mean(draws > 0):.0%} of {args.draws} draws")


if __name__ == "__main__":
    main()
