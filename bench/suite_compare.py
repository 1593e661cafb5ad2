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


def _traces(saved: str, task: str, evals: int, method: str) -> list[list[float]]:
    files = sorted(glob.glob(os.path.join(saved, f"{task}-{evals}x8", f"{method}-seed*.json")))
    if not files:
        raise SystemExit(f"no saved runs of {method} on {task} under {saved}")
    out = []
    for f in files:
        with open(f) as fh:
            out.append(json.load(fh)["trace"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--saved", default="bench/results/quality")
    ap.add_argument("--methods", nargs="+", required=True, help="the methods scored together (random among them)")
    ap.add_argument("--compare", nargs=2, required=True, metavar=("A", "B"))
    ap.add_argument("--evals", type=int, default=128)
    ap.add_argument("--at", type=int, nargs="+", default=[50, 100, 128])
    ap.add_argument("--draws", type=int, default=4000)
    args = ap.parse_args()
    a, b = args.compare
    missing = [m for m in ("random", a, b) if m not in args.methods]
    if missing:
        ap.error(f"--methods must include random and both --compare methods (missing: {', '.join(missing)})")
    traces = {(t, m): _traces(args.saved, t, args.evals, m) for t in tasks.SUITE for m in args.methods}
    rng = np.random.default_rng(0)
    for at in args.at:
        scores: dict[str, dict[str, np.ndarray]] = {}
        for task in tasks.SUITE:
            runs = {m: np.array([max(tr[:at]) for tr in traces[task, m]]) for m in args.methods}
            best = max(max(tr) for m in args.methods for tr in traces[task, m])
            base = runs["random"].mean()
            if best - base <= 1e-9 * max(1.0, abs(best)):
                continue  # random search's mean is already the best: no score (as quality.py)
            scores[task] = {m: 100 * (v - base) / (best - base) for m, v in runs.items()}
        mean = {m: float(np.mean([scores[t][m].mean() for t in scores])) for m in args.methods}
        # Each task's seeds of both methods resampled; random search's mean stays the origin.
        draws = np.zeros(args.draws)
        for t in scores:
            x, y = scores[t][a], scores[t][b]
            draws += x[rng.integers(0, len(x), (args.draws, len(x)))].mean(axis=1)
            draws -= y[rng.integers(0, len(y), (args.draws, len(y)))].mean(axis=1)
        draws /= len(scores)
        lo, hi = np.percentile(draws, [5, 95])
        print(f"@{at}: " + ", ".join(f"{m} {v:.1f}" for m, v in mean.items())
              + f" | {a} - {b} {mean[a] - mean[b]:+.1f}, 90% interval {lo:+.1f} to {hi:+.1f},"
              f" {a} ahead in {np.mean(draws > 0):.0%} of {args.draws} draws")


if __name__ == "__main__":
    main()
