"""Benchmark problem: an evaluation that only sleeps AMBS_BENCH_SLEEP seconds.

It isolates the cost of the search and the evaluator from any training.
"""

from __future__ import annotations

import os
import time

from ambs import Problem

SLEEP = float(os.environ.get("AMBS_BENCH_SLEEP", "0"))

problem = Problem(name="sleep")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter((0.0, 1.0), "y")


def run(config: dict) -> float:
    if SLEEP > 0:
        time.sleep(SLEEP)
    return -((config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2)
