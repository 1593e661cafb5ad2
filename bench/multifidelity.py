"""Multi-fidelity search on the torch MLP problem (problems.mlp_digits): the best
validation accuracy against the total training epochs spent, for random
search, AMBS, Hyperband, ASHA and AMBS with early stopping (``--stopper sha``).

Every method gets the same number of training epochs (``--epochs``). Two
asynchronous workers are simulated on a virtual clock whose time is epochs: a
job of budget ``b`` occupies its worker for ``b`` time units, the job that
finishes first is told first, and the freed worker is asked for the next job.
The trainings themselves run in this process, one after the other (the
machine's cores are shared), so the ordering is that of two real workers
whose evaluation time is proportional to the epochs, without their noise.
Random search and AMBS train every configuration with the full budget
(``--max-budget`` epochs); the multi-fidelity methods use budgets from
``--min-budget`` to ``--max-budget`` with ``eta = 3``. Epochs are counted as
trained (``run`` rounds a budget to whole epochs).

    nice -n 10 .venv/bin/python bench/multifidelity.py [--seeds 3] [--epochs 360]

Recorded with the defaults on a shared 2-core machine, CPU torch, 1 thread
(validation set of 359 images: one image is 0.0028 of accuracy):

    360 epochs per run, 2 simulated workers, budgets 2..18 (eta 3), 3 seeds; medians
    method           @90     @180     @360        min..max    full  evals      s
    random        0.9554   0.9554   0.9554  0.9526..0.9666  0.9554     20   95.4
    ambs          0.9526   0.9610   0.9694  0.9666..0.9749  0.9749     20   43.5
    hyperband     0.9554   0.9582   0.9721  0.9694..0.9749  0.9721     58   42.5
    asha          0.9554   0.9638   0.9749  0.9721..0.9749  0.9749     82   35.5
    ambs+sha      0.9526   0.9554   0.9721  0.9666..0.9721  0.9721     69   53.3

``@E``: the best validation accuracy (at any budget) once E epochs were spent;
``full``: the best at the full budget; ``s``: wall seconds (the trainings).
Every method beats random search by 360 epochs; ASHA gets there first, by
training 82 configurations (most for 2 epochs) where random search and AMBS
train 20. The gaps among the four are one to three validation images with 3
seeds: they do not rank them.
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ambs.problem import load_problem  # noqa: E402
from ambs.result import normalize_output  # noqa: E402
from ambs.search import AMBS, ASHA, Hyperband, RandomSearch  # noqa: E402

METHODS = ["random", "ambs", "hyperband", "asha", "ambs+sha"]


def make(method: str, problem: Any, seed: int, lo: float, hi: float) -> Any:
    mf = {"min_budget": lo, "max_budget": hi, "eta": 3}
    if method == "random":
        return RandomSearch(problem, random_state=seed)
    if method == "ambs":
        return AMBS(problem, random_state=seed, n_initial_points=5)
    if method == "hyperband":
        return Hyperband(problem, random_state=seed, **mf)
    if method == "asha":
        return ASHA(problem, random_state=seed, **mf)
    if method == "ambs+sha":
        return ASHA(problem, random_state=seed, rule="sha",
                    sampler=AMBS(problem, random_state=seed, n_initial_points=5), **mf)
    raise ValueError(method)


def run_one(method: str, seed: int, epochs: int, workers: int, lo: float, hi: float,
            marks: list[int]) -> dict[str, Any]:
    """Best validation accuracy (any budget) after each mark of epochs spent,
    the best at the full budget, evaluations, and seconds."""
    loaded = load_problem("problems.mlp_digits")
    search = make(method, loaded.problem, seed, lo, hi)
    multi = search.multi_fidelity
    running: list[tuple[float, int, dict, float, float, int]] = []  # (finish, id, config, budget, objective, epochs)
    now, spent, n, best, best_full = 0.0, 0, 0, -np.inf, -np.inf
    at_mark: dict[int, float] = {}
    next_id = 0
    t = time.perf_counter()

    def submit(k: int) -> None:
        nonlocal next_id
        jobs = search.ask_jobs(k) if multi else [(c, hi) for c in search.ask(k)]
        for config, budget in jobs:
            out = loaded.run(dict(config), budget)
            objective, _, _, meta = normalize_output(out)
            trained = int(meta.get("epochs", round(budget)))
            heapq.heappush(running, (now + trained, next_id, config, budget, objective, trained))
            next_id += 1

    submit(workers)
    while running and spent < epochs:
        now, _, config, budget, objective, trained = heapq.heappop(running)
        if multi:
            search.tell([(config, objective)], budgets=[budget])
        else:
            search.tell([(config, objective)])
        before, spent, n = spent, spent + trained, n + 1
        for m in marks:
            if before < m <= spent:
                at_mark[m] = best  # the best known when this many epochs were spent
        best = max(best, objective)
        if budget >= hi:
            best_full = max(best_full, objective)
        if spent < epochs:
            submit(1)
    for m in marks:
        at_mark.setdefault(m, best)
    return {"marks": [at_mark[m] for m in marks], "best": best, "best_full": best_full, "evals": n,
            "seconds": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=360, help="training epochs each run may spend")
    ap.add_argument("--workers", type=int, default=2, help="simulated asynchronous workers")
    ap.add_argument("--min-budget", type=float, default=2)
    ap.add_argument("--max-budget", type=float, default=18)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("AMBS_TORCH_DEVICE", "cpu")
    marks = [args.epochs // 4, args.epochs // 2, args.epochs]
    print(f"{args.epochs} epochs per run, {args.workers} simulated workers, budgets "
          f"{args.min_budget:g}..{args.max_budget:g} (eta 3), {args.seeds} seeds; medians")
    head = "".join(f"{'@' + str(m):>9}" for m in marks)
    print(f"{'method':<11}{head}{'min..max':>16}{'full':>8}{'evals':>7}{'s':>7}")
    for method in args.methods:
        res = [run_one(method, seed, args.epochs, args.workers, args.min_budget, args.max_budget, marks)
               for seed in range(args.seeds)]
        med = np.median([r["marks"] for r in res], axis=0)
        last = [r["marks"][-1] for r in res]
        cells = "".join(f"{v:9.4f}" for v in med)
        print(f"{method:<11}{cells}{min(last):8.4f}..{max(last):.4f}"
              f"{np.median([r['best_full'] for r in res]):8.4f}{np.median([r['evals'] for r in res]):7.0f}"
              f"{np.median([r['seconds'] for r in res]):7.1f}", flush=True)


if __name__ == "__main__":
    main()
