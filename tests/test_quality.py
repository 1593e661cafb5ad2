"""Search quality: AMBS with its defaults finds clearly better results than
random search at a small fixed budget (no timing; medians over seeds)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from ambs.search import AMBS, RandomSearch

SEEDS = range(5)
EVALS, BATCH = 80, 8


def _best(search, mod) -> float:
    best = -np.inf
    done = 0
    while done < EVALS:
        configs = search.ask(BATCH)
        results = [(c, float(mod.run(c))) for c in configs]
        search.tell(results)
        best = max(best, *(v for _, v in results))
        done += len(configs)
    return best


def _median_regret(method, name: str) -> float:
    mod = importlib.import_module(f"problems.{name}")
    return float(np.median([mod.OPTIMUM - _best(method(mod.problem, random_state=s), mod) for s in SEEDS]))


@pytest.mark.parametrize(
    "name, ratio",
    [
        ("branin", 0.05),  # AMBS's median regret under 5% of random search's
        ("hartmann6", 0.6),
    ],
)
def test_ambs_beats_random_search(name, ratio):
    ambs = _median_regret(AMBS, name)
    rand = _median_regret(RandomSearch, name)
    assert ambs < ratio * rand, (name, ambs, rand)
