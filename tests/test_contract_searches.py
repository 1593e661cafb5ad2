"""The driver's contract with every registered search, multi-fidelity ones included.

Generated from ``ambs.search.ALL_METHODS`` and built through
``ambs.search.factory.make_search``, as ``ambs search`` and ``run_search``
build them: a method added to the registry is covered without editing this file.
The driver asks ``ask_jobs(n)`` and tells ``Evaluation`` objects; these tests
talk to searches the same way.
"""

from __future__ import annotations

import math

import ConfigSpace as CS
import pytest

from ambs import Problem
from ambs.result import Evaluation, Status
from ambs.search import ALL_METHODS
from ambs.search.base import config_key
from ambs.search.factory import make_search
from tests.conftest import build_mixed_problem

METHODS = list(ALL_METHODS)
FAILURES = [Status.FAILED, Status.TIMEOUT, Status.CRASHED, Status.CANCELLED]


def budgeted() -> Problem:
    """The mixed space (every kind of hyperparameter, a conditional one) with a budget."""
    p = build_mixed_problem()
    p.set_budget(1, 9)
    return p


def objective(c: dict, budget: float | None) -> float:
    return -abs(math.log10(c["lr"]) + 2.5) - 0.1 * c["layers"] + c.get("momentum", 0.0) + 0.01 * (budget or 9)


def new(method: str, seed: int = 0):
    return make_search(method, budgeted(), seed)


def evaluation(job_id: int, job: tuple, status: Status = Status.OK) -> Evaluation:
    config, budget = job
    ok = status is Status.OK
    return Evaluation(job_id, config, objective=objective(config, budget) if ok else math.nan, status=status,
                      error="" if ok else "it went wrong", budget=budget)


def check_jobs(search, jobs: list, n: int) -> None:
    """At most n jobs, valid configurations, budgets in range (None: the full training)."""
    assert len(jobs) <= n
    for config, budget in jobs:
        CS.Configuration(search.problem.space, values=config).check_valid_configuration()
        if search.multi_fidelity:
            assert search.min_budget <= budget <= search.max_budget
        else:
            assert budget is None


@pytest.mark.parametrize("method", METHODS)
def test_jobs_are_valid_and_pending_ones_are_never_proposed_again(method):
    search = new(method)
    asked: list = []
    for _ in range(4):
        jobs = search.ask_jobs(3)
        check_jobs(search, jobs, 3)
        asked += jobs
    keys = [(config_key(c), b) for c, b in asked]
    assert len(keys) == len(set(keys)) == 12, "a pending job was proposed twice"


@pytest.mark.parametrize("method", METHODS)
def test_no_barrier_a_free_worker_gets_a_job_while_others_run(method):
    """Asynchrony: with jobs running and nothing told, a freed worker still gets work."""
    search = new(method)
    running = search.ask_jobs(8)
    assert len(running) == 8
    search.tell([evaluation(0, running[0])])
    assert len(search.ask_jobs(1)) == 1


@pytest.mark.parametrize("method", METHODS)
def test_every_status_is_told_and_the_search_goes_on(method):
    search = new(method)
    told = 0
    for _ in range(4):
        jobs = search.ask_jobs(len(FAILURES) + 1)
        check_jobs(search, jobs, len(FAILURES) + 1)
        statuses = [Status.OK, *FAILURES][: len(jobs)]
        search.tell([evaluation(told + i, job, s) for i, (job, s) in enumerate(zip(jobs, statuses))])
        told += len(jobs)
    assert search.n_told == told and search.n_pending == 0
    best = search.best()
    assert best is not None and math.isfinite(best[1])
    assert len(search.ask_jobs(2)) == 2


@pytest.mark.parametrize("method", METHODS)
def test_a_resumed_search_never_repeats_a_recorded_job(method):
    """Resume: results replayed from the CSV (told, never asked) are seen."""
    live = new(method, seed=3)
    done: list = []
    for _ in range(5):
        jobs = live.ask_jobs(4)
        live.tell([evaluation(len(done) + i, j) for i, j in enumerate(jobs)])
        done += jobs
    resumed = new(method, seed=3)
    resumed.tell([evaluation(i, j) for i, j in enumerate(done)])
    assert resumed.n_told == len(done) and resumed.n_pending == 0
    recorded = {(config_key(c), b) for c, b in done}
    for config, budget in resumed.ask_jobs(6):
        assert (config_key(config), budget) not in recorded


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_and_results_same_jobs_whether_told_as_pairs_or_evaluations(method):
    """Proposals depend on the seed and the results only. Users tell (config,
    objective) pairs, the driver tells Evaluations: the same state either way."""
    a, b = new(method, seed=7), new(method, seed=7)
    for _ in range(3):
        ja, jb = a.ask_jobs(4), b.ask_jobs(4)
        assert ja == jb
        a.tell([evaluation(i, j) for i, j in enumerate(ja)])
        b.tell([(c, objective(c, bud)) for c, bud in jb], **({"budgets": [bud for _, bud in jb]}
                                                             if b.multi_fidelity else {}))
    assert a.ask_jobs(3) == b.ask_jobs(3)
    assert a.best() == b.best()
