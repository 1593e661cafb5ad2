"""Architecture search at a small budget: evolution, lemonade, reinforce and morphism
against random search on the NAS problems (nas_mlp_digits, nas_cnn_digits).

For each problem, method and seed: ``--evals`` evaluations asked in batches of
``--batch`` (ask, evaluate in this process, tell), as a pool of ``--batch``
workers would. Records the best validation accuracy, the number of weights of
that network, the size of the Pareto front of (accuracy, -weights), and the
seconds taken. morphism runs with a fresh ``$AMBS_CHECKPOINT_DIR``, so its
children start from their parents' weights. Prints medians over the seeds.

    nice -n 10 .venv/bin/python bench/nas.py [--seeds 3] [--evals 24] [--batch 2]

Recorded with the defaults on a shared 2-core machine, CPU torch (the
validation set has 359 images: one image is 0.0028 of accuracy, and 3 seeds
are few, so only large gaps mean much):

    24 evaluations in batches of 2, 3 seeds; medians
    problem          method      best acc       min..max  weights  front      s
    nas_mlp_digits   random        0.9499 0.9471..0.9554   100234   10.0    8.6
    nas_mlp_digits   evolution     0.9526 0.9471..0.9582    72554    6.0   10.6
    nas_mlp_digits   lemonade      0.9582 0.9526..0.9638   149514    7.0   14.8
    nas_mlp_digits   reinforce     0.9582 0.9499..0.9582   100234    8.0   22.4
    nas_mlp_digits   morphism      0.9638 0.9499..0.9749    14890    9.0   19.1
    nas_cnn_digits   random        0.9554 0.9471..0.9610    42634    7.0   29.5
    nas_cnn_digits   evolution     0.9554 0.9554..0.9610    93066    8.0   47.1
    nas_cnn_digits   lemonade      0.9471 0.9471..0.9554    41610    8.0   37.7
    nas_cnn_digits   reinforce     0.9304 0.9220..0.9694    50308    8.0   29.6
    nas_cnn_digits   morphism      0.9749 0.9749..0.9749    12154    7.0   20.8

Hill climbing by morphisms, whose children start from trained parents, finds
the best and much smaller networks at this budget; the others are within a
few validation images of random search (reinforce's controller has
had too few updates to learn much in 12 batches).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ambs.nas.morph import CHECKPOINT_VAR  # noqa: E402
from ambs.pareto import pareto_mask  # noqa: E402
from ambs.problem import load_problem  # noqa: E402
from ambs.result import normalize_output  # noqa: E402
from ambs.search import METHODS  # noqa: E402

PROBLEMS = ["problems/nas_mlp_digits.py", "problems/nas_cnn_digits.py"]
SEARCHES = ["random", "evolution", "lemonade", "reinforce", "morphism"]


def run_one(ref: str, method: str, seed: int, evals: int, batch: int) -> dict[str, float]:
    loaded = load_problem(ref)
    kw = {"population_size": 8, "sample_size": 3} if method in ("evolution", "lemonade") else {}
    search = METHODS[method](loaded.problem, random_state=seed, **kw)
    points = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as ckpt:
        if method == "morphism":
            os.environ[CHECKPOINT_VAR] = ckpt
        try:
            done = 0
            while done < evals:
                configs = search.ask(min(batch, evals - done))
                if not configs:
                    break
                results = []
                for c in configs:
                    obj, _, _, meta = normalize_output(loaded.run(c))
                    results.append((c, obj))
                    points.append(meta.get("objectives", [obj, np.nan]))
                search.tell(results)
                done += len(configs)
        finally:
            os.environ.pop(CHECKPOINT_VAR, None)
    P = np.array(points, dtype=float)
    best = int(np.nanargmax(P[:, 0]))
    return {"best": P[best, 0], "weights": -P[best, 1], "front": int(pareto_mask(P).sum()),
            "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--evals", type=int, default=24)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--problems", nargs="+", default=PROBLEMS)
    ap.add_argument("--methods", nargs="+", default=SEARCHES)
    args = ap.parse_args()
    print(f"{args.evals} evaluations in batches of {args.batch}, {args.seeds} seeds; medians")
    print(f"{'problem':16} {'method':10} {'best acc':>9} {'min..max':>14} {'weights':>8} {'front':>6} {'s':>6}")
    for ref in args.problems:
        name = os.path.splitext(os.path.basename(ref))[0]
        for method in args.methods:
            rows = [run_one(ref, method, s, args.evals, args.batch) for s in range(args.seeds)]
            best = [r["best"] for r in rows]
            print(f"{name:16} {method:10} {np.median(best):9.4f} {min(best):6.4f}..{max(best):6.4f} "
                  f"{np.median([r['weights'] for r in rows]):8.0f} {np.median([r['front'] for r in rows]):6.1f} "
                  f"{np.median([r['seconds'] for r in rows]):6.1f}", flush=True)


if __name__ == "__main__":
    main()
