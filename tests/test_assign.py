"""Hardware-aware assignment (``--assign shadho``): the driver, a two-kind evaluator
and :class:`ambs.nas.hardware.ShadhoAssigner`, in process."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from ambs.driver import Driver, StopRules
from ambs.evaluator.base import Evaluator
from ambs.nas.hardware import ShadhoAssigner, by_capability, complexity
from ambs.nas.space import ArchSpec, arch_problem, count_parameters
from ambs.recorder import Recorder, RunInfo, columns_for
from ambs.result import Evaluation, Job
from ambs.search import RandomSearch
from ambs.space import Space

SPEC = ArchSpec(kind="vector", input_shape=(8,), n_outputs=2, max_layers=4, widths=(4, 8, 16))


def _objective(config: dict) -> float:
    """Larger networks score higher, with diminishing returns: a loss-like spread per depth."""
    return 1.0 - 1.0 / math.log(10.0 + count_parameters(config, SPEC))


class TwoKinds(Evaluator):
    """Workers of given kinds, run in process; ``wait`` finishes one running job,
    chosen at random, so workers free up one at a time as in a real run."""

    name = "two-kinds"

    def __init__(self, kinds: list[str], seed: int = 0) -> None:
        super().__init__("in-test", time.time())
        self.kinds = kinds
        self.busy: list[Job | None] = [None] * len(kinds)
        self.ran: list[tuple[int, str, Job]] = []  # (worker, kind, job) in submission order
        self.rng = np.random.default_rng(seed)

    @property
    def n_workers(self) -> int:
        return len(self.kinds)

    @property
    def n_running(self) -> int:
        return sum(j is not None for j in self.busy)

    def worker_kinds(self) -> list[str]:
        return list(self.kinds)

    def free_kinds(self) -> list[str]:
        return [k for k, j in zip(self.kinds, self.busy) if j is None]

    def submit(self, job: Job) -> None:
        free = [w for w, j in enumerate(self.busy) if j is None]
        w = next((w for w in free if self.kinds[w] == job.kind), free[0])
        self.busy[w] = job
        self.ran.append((w, self.kinds[w], job))

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        running = [w for w, j in enumerate(self.busy) if j is not None]
        if not running:
            return []
        w = int(self.rng.choice(running))
        job = self.busy[w]
        assert job is not None
        self.busy[w] = None
        now = time.time() - self.t0
        return [Evaluation(job.job_id, job.config, objective=_objective(job.config), worker=w,
                           submitted=job.submitted, started=now, finished=now)]

    def cancel(self) -> list[Evaluation]:
        self.busy = [None] * len(self.kinds)
        return []


def _drive(tmp_path, kinds: list[str], shadho: bool, max_evals: int = 120, seed: int = 0):
    problem = arch_problem(SPEC, name="arch")
    search = RandomSearch(problem, random_state=seed)
    info = RunInfo(problem="arch", problem_name="arch", fingerprint=problem.fingerprint(), method="random",
                   columns=columns_for(problem.hyperparameter_names, problem.metadata))
    recorder = Recorder(tmp_path / f"run-{shadho}-{seed}", info)
    evaluator = TwoKinds(kinds, seed=seed)
    assigner = ShadhoAssigner(search.space) if shadho else None
    try:
        summary = Driver(search, evaluator, recorder, StopRules(max_evals=max_evals), evaluator.t0,
                         assigner=assigner).run()
    finally:
        recorder.close()
    return search, evaluator, summary, assigner


def _complexity_by_kind(search, evaluator) -> dict[str, float]:
    c = complexity(search.space, [job.config for _, _, job in evaluator.ran])
    kinds = np.array([k for _, k, _ in evaluator.ran])
    return {k: float(c[kinds == k].mean()) for k in set(kinds)}


def test_complex_configurations_go_to_the_gpu_worker(tmp_path):
    kinds = ["cpu", "gpu", "cpu", "cpu"]
    search, ev, summary, assigner = _drive(tmp_path, kinds, shadho=True)
    assert summary.total == 120 and summary.stop_reason == "max-evals"
    # Nothing asked was lost in the pool: every proposal ran once, none is pending.
    assert search.n_told == 120 and search.n_pending == 0 and assigner.n_held == 0
    assert sorted(job.job_id for _, _, job in ev.ran) == list(range(120))
    # The jobs named their kind and ran on a worker of it.
    assert all(job.kind == kind for _, kind, job in ev.ran)
    by_kind = _complexity_by_kind(search, ev)
    # The GPU runs about a quarter of the jobs, from the top of the ranking.
    gpu_share = sum(k == "gpu" for _, k, _ in ev.ran) / len(ev.ran)
    assert 0.15 < gpu_share < 0.4
    assert by_kind["gpu"] > 2.0 * by_kind["cpu"], by_kind
    # The same search without assignment: whichever worker is free takes the next one.
    search0, ev0, _, _ = _drive(tmp_path, kinds, shadho=False)
    assert all(job.kind is None for _, _, job in ev0.ran)
    plain = _complexity_by_kind(search0, ev0)
    assert by_kind["gpu"] / by_kind["cpu"] > plain["gpu"] / plain["cpu"] + 0.5, (by_kind, plain)
    # The GPU's configurations are deeper on average.
    depth = {k: np.mean([j.config["n_layers"] for _, kk, j in ev.ran if kk == k]) for k in ("gpu", "cpu")}
    assert depth["gpu"] > depth["cpu"] + 0.5


def test_workers_of_one_kind_change_nothing(tmp_path):
    search, ev, summary, assigner = _drive(tmp_path, ["cpu"] * 3, shadho=True, max_evals=30)
    search0, ev0, _, _ = _drive(tmp_path, ["cpu"] * 3, shadho=False, max_evals=30)
    assert summary.total == 30 and assigner.n_held == 0
    assert [j.config for _, _, j in ev.ran] == [j.config for _, _, j in ev0.ran]
    assert all(j.kind is None for _, _, j in ev.ran)


def test_a_low_ranked_job_does_not_wait_forever():
    problem = arch_problem(SPEC)
    space = Space(problem.space)
    shallow = problem.starting_points[0]
    deep = {"n_layers": 4, **{f"l{i}_width": 16 for i in range(4)}, **{f"l{i}_act": "relu" for i in range(4)},
            "l2_skip": "none", "l3_skip": "none"}
    fleet = ["gpu", "cpu", "cpu"]
    a = ShadhoAssigner(space)
    assert a.pool_size(fleet) == 3
    a.hold([(shallow, None)])
    given = []
    # Only the GPU worker frees up, and ever more complex jobs arrive: the shallow one
    # still leaves the pool within twice the pool size of hand-outs.
    for _ in range(10):
        a.hold([(deep, None)])
        given += a.take(["gpu"], fleet)
    order = [c["n_layers"] for c, _, _ in given]
    assert 1 in order and order.index(1) <= 2 * a.pool_size(fleet)


def test_ranking_by_cost_then_priority_and_budget():
    p = arch_problem(SPEC)
    space = Space(p.space)
    one = p.starting_points[0]
    two = {**one, "n_layers": 2, "l1_width": 4, "l1_act": "relu"}
    a = ShadhoAssigner(space, full_budget=8.0)
    # A deeper network costs more; so does the same network at a larger budget.
    a.hold([(one, 8.0), (two, 1.0), (two, 8.0)])
    got = a.take(["gpu", "cpu", "cpu"], ["gpu", "cpu", "cpu"])
    assert got[0] == (two, 8.0, "gpu")
    # Priority: among models of equal cost, the one whose results vary most goes first.
    a = ShadhoAssigner(space)
    other = {**one, "l0_act": "tanh"}  # same model (active hyperparameters) as one
    assert a._models([one])[0] == a._models([other])[0]
    a.tell([(one, 0.9), (one, 0.1), (two, 0.5), (two, 0.55)])
    prio = a.priorities()
    m1, m2 = a._models([one])[0][0], a._models([two])[0][0]
    assert prio[m1] == pytest.approx(1 / 1.0 - 1 / (1 + 0.8 / 0.8))
    assert prio[m1] > prio[m2] > 0
    assert by_capability(["cpu", "tpu", "gpu", "cpu"]) == [("gpu", 1), ("cpu", 2), ("tpu", 1)]
