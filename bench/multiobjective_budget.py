"""Several objectives with budgets: how ranking a rung by Pareto order, and
telling AMBS every objective behind ``--stopper``, change the front found for
the same training time.

Problems: ZDT1, ZDT2 and DTLZ2 of ``bench/multiobjective.py`` (6 variables,
objectives minimized), given a fidelity: at budget ``b`` of
``1 .. R = 27`` (as epochs), objective ``j`` is
``f_j(x) (1 + 0.5 d) + 0.2 d c_j(x)`` with ``d = 1 - b / R`` and ``c_j`` a
fixed sum of 8 random cosines scaled into [-1, 1]: a short training reads
every objective worse, and by an amount that depends on the configuration,
so a low rung's order is correlated with the full budget's, not equal to it.
At ``b = R`` it is the function itself. The reference point is past the
worst value of the space (ZDT: (1.1, 11); DTLZ2: 2.2 in each), not 1.1 as in
``bench/multiobjective.py``: with a few dozen full trainings most results lie
beyond 1.1, and the hypervolume would not tell the methods apart.

Eight asynchronous workers are simulated on a virtual clock whose time is the
budget (a job of budget ``b`` occupies its worker ``b`` units; the job that
ends first is told first, its worker is asked for the next job), until every
run has spent the same total (``--full`` full trainings' worth). Reported:
the median over seeds of the hypervolume of the results at the full budget
once a quarter, half and all of the total was spent, and of the evaluations.

Methods: ``random`` and ``ambs`` (every configuration at the full budget);
``asha`` (random configurations; rungs ranked by Pareto order) and
``ambs+sha`` (AMBS's proposals, told every objective at the bottom rung), as
``ambs search --method asha`` and ``--method ambs --stopper sha`` run now;
``asha-first`` and ``ambs+sha-first``: the same on a problem that declares
the first objective only, so rungs are ranked and AMBS models by it alone
(what a single-objective search does; the hypervolume is of both).

    .venv/bin/python bench/multiobjective_budget.py [--problems zdt1 zdt2 dtlz2] [--seeds 5] [--full 60]
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from multiobjective import DIM, Task  # noqa: E402

from ambs import Problem  # noqa: E402
from ambs.objectives import hypervolume  # noqa: E402
from ambs.search.factory import make_search  # noqa: E402

R = 27.0
REFERENCE = {"zdt1": [1.1, 11.0], "zdt2": [1.1, 11.0], "zdt3": [1.1, 11.0], "dtlz2": [2.2, 2.2, 2.2]}
METHODS = ["random", "ambs", "asha", "asha-first", "ambs+sha", "ambs+sha-first"]


class Fidelity:
    """Objective values at a budget: the task's at ``R``, biased below it."""

    def __init__(self, task: Task) -> None:
        self.task = task
        rng = np.random.default_rng(12345)
        m = len(task.names)
        self.w = rng.normal(size=(m, 8, DIM)) * 3.0
        self.phase = rng.uniform(0, 2 * np.pi, size=(m, 8))

    def values(self, config: dict[str, Any], budget: float) -> list[float]:
        x = np.array([config[f"x{i}"] for i in range(DIM)], dtype=float)
        f = np.array(self.task.values(config), dtype=float)
        c = np.cos(self.w @ x + self.phase).sum(axis=1) / 8.0
        d = 1.0 - budget / R
        return list(f * (1 + 0.5 * d) + 0.2 * d * c)


def _first_only(task: Task) -> Problem:
    p = Problem(name=f"{task.name}-first")
    for i in range(DIM):
        p.add_hyperparameter((0.0, 1.0), f"x{i}")
    return p


def make(method: str, task: Task, seed: int) -> tuple[Any, bool]:
    """The search, and whether it is told the first objective only."""
    first = method.endswith("-first")
    problem = _first_only(task) if first else task.problem
    base = method.removesuffix("-first")
    if base in ("random", "ambs"):
        return make_search(base, problem, seed), first
    problem.set_budget(1, R)  # a fresh problem per run: no budget yet
    mf = {"min_budget": 1, "max_budget": R, "eta": 3}
    if base == "asha":
        return make_search("asha", problem, seed, **mf), first
    return make_search("ambs", problem, seed, stopper="sha", **mf), first


def run_one(method: str, name: str, seed: int, total: float, workers: int, marks: list[float]) -> dict:
    task = Task(name)
    fid = Fidelity(task)
    search, first = make(method, task, seed)
    multi = search.multi_fidelity
    running: list[tuple[float, int, dict, float]] = []
    now, spent, n, next_id = 0.0, 0.0, 0, 0
    full: list[list[float]] = []
    at: dict[float, float] = {}
    t = time.perf_counter()

    def hv() -> float:
        return hypervolume(np.array(full), REFERENCE[name]) if full else 0.0

    def submit(k: int) -> None:
        nonlocal next_id
        jobs = search.ask_jobs(k) if multi else [(c, R) for c in search.ask(k)]
        for config, budget in jobs:
            heapq.heappush(running, (now + budget, next_id, config, budget))
            next_id += 1

    submit(workers)
    while running and spent < total:
        now, _, config, budget = heapq.heappop(running)
        v = fid.values(config, budget)
        told = -v[0] if first else dict(zip(task.names, v))
        if multi:
            search.tell([(config, told)], budgets=[budget])
        else:
            search.tell([(config, told)])
        before, spent, n = spent, spent + budget, n + 1
        for m in marks:
            if before < m <= spent:
                at[m] = hv()
        if budget >= R:
            full.append(v)
        if spent < total:
            submit(1)
    for m in marks:
        at.setdefault(m, hv())
    return {"marks": [at[m] for m in marks], "evals": n, "seconds": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", nargs="+", default=["zdt1", "zdt2", "dtlz2"], choices=["zdt1", "zdt2", "zdt3", "dtlz2"])
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--full", type=int, default=60, help="the total, in full trainings' worth")
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    total = args.full * R
    marks = [total / 4, total / 2, total]
    for name in args.problems:
        print(f"\n{name}: {args.full} full trainings' worth ({total:g} budget units), budgets 1..{R:g} (eta 3), "
              f"{args.workers} simulated workers, {args.seeds} seeds; median hypervolume at the full budget")
        print(f"| method | @{args.full // 4} | @{args.full // 2} | @{args.full} | IQR @{args.full} | evals | s/run |")
        print("|---|---|---|---|---|---|---|")
        for method in args.methods:
            res = [run_one(method, name, s, total, args.workers, marks) for s in range(args.seeds)]
            med = np.median([r["marks"] for r in res], axis=0)
            q1, q3 = np.percentile([r["marks"][-1] for r in res], [25, 75])
            print(f"| {method} | " + " | ".join(f"{v:.4f}" for v in med) + f" | {q1:.4f}..{q3:.4f} | "
                  f"{np.median([r['evals'] for r in res]):.0f} | {np.median([r['seconds'] for r in res]):.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
