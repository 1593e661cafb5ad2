"""Search quality at scale: does AMBS stay ahead of random search when its
proposals come in batches of thousands?

Runs the search through the real driver on simulated workers (the simulated
evaluator, as ``ambs simulate`` does) with constant evaluation times, so that
all W workers finish together and every round is one batch of W proposals
made with constant liar from the model of the rounds before: the hardest
case for a model-based search on a large machine. Reports the median simple
regret (optimum minus the best objective) after each round, over seeds, for
AMBS and random search at the same scale.

    .venv/bin/python bench/scale_quality.py [--functions ackley hartmann6]
        [--workers 1024 4096] [--rounds 4] [--seeds 3] [--json FILE]

Functions are the names ``bench/tasks.py`` loads (``ackley``, ``hartmann6``,
``ackley-20``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import tasks  # noqa: E402

from ambs.runner import run_search  # noqa: E402


def one(function: str, method: str, workers: int, rounds: int, seed: int, tmp: Path) -> dict:
    task = tasks.load(function)
    best = []

    def on_result(ev) -> None:  # noqa: ANN001
        v = ev.objective if ev.ok else -np.inf
        best.append(max(v, best[-1]) if best else v)

    t = time.perf_counter()
    res = run_search(task.problem, method, "simulated", max_evals=workers * rounds, run=task.run,
                     output=tmp / f"{function}-{method}-{workers}-{seed}", workers=workers, seed=seed,
                     quiet=True, evaluator_options={"duration": "const:60"}, on_result=on_result)
    assert res is not None
    regret = [task.OPTIMUM - best[min(workers * (r + 1), len(best)) - 1] for r in range(rounds)]
    return {"function": function, "method": method, "workers": workers, "seed": seed, "regret": regret,
            "real_seconds": time.perf_counter() - t, "fits": res.search.n_fits if hasattr(res.search, "n_fits") else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", nargs="+", default=["ackley", "hartmann6"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--methods", nargs="+", default=["ambs", "random"])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    print(f"{'function':>10} {'workers':>7} {'method':>7} " + " ".join(f"{'@' + str(r + 1):>9}" for r in
                                                                        range(args.rounds)) + "  (median regret after each round)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for f in args.functions:
            for w in args.workers:
                for m in args.methods:
                    runs = [one(f, m, w, args.rounds, s, Path(tmp)) for s in range(args.seeds)]
                    rows += runs
                    med = np.median([r["regret"] for r in runs], axis=0)
                    secs = np.mean([r["real_seconds"] for r in runs])
                    print(f"{f:>10} {w:>7} {m:>7} " + " ".join(f"{v:>9.4g}" for v in med) + f"  ({secs:.0f} s/run)",
                          flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
