"""Search quality at a small budget: AMBS against random search.

For each problem and seed, run ``--evals`` evaluations asked in batches of
``--batch`` (ask a batch, evaluate it, tell it, repeat) and record the best
objective found (maximized). Prints the median and quartiles over the seeds.

    .venv/bin/python bench/quality_quick.py [--seeds 10] [--evals 100] [--batch 8]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ambs.search import AMBS, RandomSearch  # noqa: E402

PROBLEMS = {
    "ackley": "problems.ackley",
    "hartmann6": "problems.hartmann6",
    "branin": "problems.branin",
    "mixed": "problems.mixed",
}
METHODS = {"ambs": AMBS, "random": RandomSearch}


def objective(value) -> float:
    if isinstance(value, dict):
        value = value["objective"]
    return float(value)


def run_one(problem_name: str, method: str, seed: int, evals: int, batch: int) -> tuple[float, float]:
    """Best objective after ``evals`` evaluations, and seconds spent in the search."""
    module = importlib.import_module(PROBLEMS[problem_name])
    search = METHODS[method](module.problem, random_state=seed)
    best, done, spent = -np.inf, 0, 0.0
    while done < evals:
        t = time.perf_counter()
        configs = search.ask(min(batch, evals - done))
        spent += time.perf_counter() - t
        results = [(c, objective(module.run(c))) for c in configs]
        t = time.perf_counter()
        search.tell(results)
        spent += time.perf_counter() - t
        best = max([best] + [r for _, r in results])
        done += len(configs)
    return best, spent


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds per problem and method (default: 10)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default: 0)")
    p.add_argument("--evals", type=int, default=100, help="evaluations per run (default: 100)")
    p.add_argument("--batch", type=int, default=8, help="configurations per ask (default: 8)")
    p.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated problem names")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated: ambs,random")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs (default: cores)")
    args = p.parse_args(argv)
    problems = [s for s in args.problems.split(",") if s]
    methods = [s for s in args.methods.split(",") if s]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    jobs = [(pr, m, s) for pr in problems for m in methods for s in seeds]
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        futures = {j: pool.submit(run_one, *j, args.evals, args.batch) for j in jobs}
        out = {j: f.result() for j, f in futures.items()}
    print(f"best objective (maximized) after {args.evals} evaluations in batches of {args.batch}, "
          f"seeds {seeds[0]}..{seeds[-1]}")
    head = f"{'problem':<10} {'method':<7} {'q25':>10} {'median':>10} {'q75':>10} {'search s/run':>13}"
    print(head)
    print("-" * len(head))
    for pr in problems:
        for m in methods:
            best = np.array([out[(pr, m, s)][0] for s in seeds])
            spent = np.median([out[(pr, m, s)][1] for s in seeds])
            q25, q50, q75 = np.percentile(best, [25, 50, 75])
            print(f"{pr:<10} {m:<7} {q25:>10.4f} {q50:>10.4f} {q75:>10.4f} {spent:>13.2f}")


if __name__ == "__main__":
    main()
