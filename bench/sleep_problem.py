"""Benchmark problem: an evaluation that only sleeps.

``AMBS_BENCH_SLEEP`` is the sleep: seconds (``0.1``), or a distribution in
``ambs simulate --duration``'s form (``lognormal:1.5,0.5``), drawn per
evaluation from a generator seeded by the configuration, so that the same
configuration sleeps as long in every run. A sleep uses no CPU: it isolates
the cost of the search and the evaluator from any training.
"""

from __future__ import annotations

import functools
import os
import time
import zlib

import numpy as np

from ambs import Problem
from ambs.simtime import Duration, parse_duration


@functools.lru_cache(maxsize=4)
def _sleep(text: str) -> Duration | None:
    return None if text.strip() in ("", "0", "0.0") else parse_duration(text)


problem = Problem(name="sleep")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter((0.0, 1.0), "y")


def run(config: dict) -> float:
    sleep = _sleep(os.environ.get("AMBS_BENCH_SLEEP", "0"))  # read per call: a benchmark may change it
    if sleep is not None:
        seed = zlib.crc32(f"{config['x']!r},{config['y']!r}".encode())
        time.sleep(sleep.sample(np.random.default_rng(seed)))
    return -((config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2)
