"""Search quality: AMBS with its defaults finds clearly better results than
random search at a small fixed budget (no timing; medians over seeds)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from ambs.search import AMBS, RandomSearch

SEEDS = range(5)
BATCH = 8


def _best(search, mod, evals: int) -> float:
    best = -np.inf
    done = 0
    while done < evals:
        configs = search.ask(BATCH)
        results = [(c, float(mod.run(c))) for c in configs]
        search.tell(results)
        best = max(best, *(v for _, v in results))
        done += len(configs)
    return best


def _median_regret(method, name: str, evals: int) -> float:
    mod = importlib.import_module(f"problems.{name}")
    return float(np.median([mod.OPTIMUM - _best(method(mod.problem, random_state=s), mod, evals) for s in SEEDS]))


@pytest.mark.parametrize(
    "name, evals, ratio",
    [
        ("branin", 80, 0.05),  # AMBS's median regret under 5% of random search's
        ("hartmann6", 120, 0.6),
    ],
)
def test_ambs_beats_random_search(name, evals, ratio):
    ambs = _median_regret(AMBS, name, evals)
    rand = _median_regret(RandomSearch, name, evals)
    assert ambs < ratio * rand, (name, ambs, rand)
