"""ambs.evaluator: the serial (in-process) and process (worker pool) evaluators, and
what an MPI worker rank needs without MPI (see tests/test_mpi.py for ranks)."""

from __future__ import annotations

import math
import os
import pickle
import sys
import time

import pytest

from ambs.errors import AmbsError
from ambs.evaluator import EVALUATORS, SIMULATED, make_evaluator
from ambs.evaluator.process import ProcessEvaluator, thread_env
from ambs.evaluator.serial import SerialEvaluator
from ambs.result import Evaluation, Job, Status

TIMEOUT = 1.5  # the process pool's evaluation timeout, seconds


def drain(evaluator, n: int, limit: float = 60.0) -> list[Evaluation]:
    """Wait until ``n`` evaluations came back (fails after ``limit`` seconds)."""
    out: list[Evaluation] = []
    deadline = time.monotonic() + limit
    while len(out) < n:
        assert time.monotonic() < deadline, f"only {len(out)} of {n} evaluations after {limit} s"
        out += evaluator.wait(1.0)
    assert len(out) == n
    return sorted(out, key=lambda e: e.job_id)


# ------------------------------------------------------------------ serial


@pytest.fixture
def serial(make_problem):
    path = make_problem("faulty")
    t0 = time.time()
    with SerialEvaluator(str(path), t0) as ev:
        yield ev


def test_serial_runs_jobs_in_order(serial):
    assert serial.n_workers == 1 and serial.n_free == 1
    for i, mode in enumerate(["ok", "raise", "nan", "ok"]):
        serial.submit(Job(i, {"mode": mode}, submitted=time.time() - serial.t0))
    assert serial.n_running == 4 and serial.n_free == 0
    evs = [serial.wait()[0] for _ in range(4)]
    assert [e.job_id for e in evs] == [0, 1, 2, 3]
    assert [e.status for e in evs] == [Status.OK, Status.FAILED, Status.FAILED, Status.OK]
    assert evs[0].objective == 1.0 and evs[0].metadata == {"pid": os.getpid()}
    assert evs[1].error.startswith("KeyError: 'boom'")
    assert "non-finite" in evs[2].error
    for e in evs:
        assert e.worker == 0 and e.host
        assert e.submitted <= e.started <= e.finished
    assert serial.n_running == 0


def test_serial_wait_with_nothing_to_do(serial):
    t = time.monotonic()
    assert serial.wait(0.2) == []
    assert time.monotonic() - t >= 0.2


def test_serial_cancel(serial):
    serial.submit(Job(0, {"mode": "ok"}))
    serial.submit(Job(1, {"mode": "ok"}))
    cancelled = serial.cancel()
    assert [e.status for e in cancelled] == [Status.CANCELLED] * 2
    assert [e.job_id for e in cancelled] == [0, 1]
    assert serial.n_running == 0 and serial.wait(0) == []


def test_make_evaluator(make_problem):
    path = make_problem("quadratic")
    ev = make_evaluator("serial", str(path), time.time())
    assert isinstance(ev, SerialEvaluator)
    with pytest.raises(AmbsError, match="unknown evaluator 'gpu'"):
        make_evaluator("gpu", str(path), time.time())
    assert set(EVALUATORS) >= {"serial", "process", "mpi"}


@pytest.mark.parametrize("name", [*EVALUATORS, *SIMULATED])
def test_an_option_an_evaluator_does_not_take_is_an_error(name, make_problem):
    """A mistyped option is refused in one line, before any worker starts."""
    path = make_problem("quadratic")
    with pytest.raises(AmbsError, match=f"the {name} evaluator takes no option eval_timout"):
        make_evaluator(name, str(path), time.time(), eval_timout=3)


def test_thread_env():
    assert thread_env(None) == {}
    env = thread_env(2)
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "2"


# ------------------------------------------------------------------ process


@pytest.fixture(scope="module")
def _pool(tmp_path_factory, problem_writer):
    path = problem_writer(tmp_path_factory.mktemp("pool"), "faulty")
    ev = ProcessEvaluator(str(path), time.time(), eval_timeout=TIMEOUT, workers=2, threads_per_worker=1)
    yield ev
    ev.cancel()
    ev.close()


@pytest.fixture
def pool(_pool):
    """Two worker processes on the faulty problem, idle at the start of each test."""
    assert _pool.n_running == 0
    yield _pool
    _pool.cancel()


def _ok_on_both_workers(pool, first_id: int) -> list[Evaluation]:
    pool.submit(Job(first_id, {"mode": "ok"}))
    pool.submit(Job(first_id + 1, {"mode": "ok"}))
    evs = drain(pool, 2)
    assert [e.status for e in evs] == [Status.OK, Status.OK]
    assert {e.worker for e in evs} == {1, 2}
    return evs


def test_process_runs_jobs_on_workers(pool):
    assert pool.n_workers == 2 and pool.n_free == 2
    t = time.time() - pool.t0
    pool.submit(Job(0, {"mode": "ok"}, submitted=t))
    pool.submit(Job(1, {"mode": "ok"}, submitted=t))
    assert pool.n_running == 2 and pool.n_free == 0
    with pytest.raises(RuntimeError, match="no free worker"):
        pool.submit(Job(2, {"mode": "ok"}))
    evs = drain(pool, 2)
    assert pool.n_running == 0
    assert {e.worker for e in evs} == {1, 2}
    pids = {e.metadata["pid"] for e in evs}
    assert len(pids) == 2 and os.getpid() not in pids  # separate processes
    for e in evs:
        assert e.ok and e.objective == 1.0
        assert e.host and e.local_rank == e.worker - 1
        assert e.submitted == pytest.approx(t) and t <= e.started <= e.finished
        assert e.config == {"mode": "ok"}


def test_process_failures_keep_the_worker(pool):
    before = {e.worker: e.metadata["pid"] for e in _ok_on_both_workers(pool, 10)}
    pool.submit(Job(12, {"mode": "raise"}))
    pool.submit(Job(13, {"mode": "nan"}))
    failed = drain(pool, 2)
    assert [e.status for e in failed] == [Status.FAILED, Status.FAILED]
    assert failed[0].error.startswith("KeyError: 'boom'")
    assert "non-finite" in failed[1].error
    after = {e.worker: e.metadata["pid"] for e in _ok_on_both_workers(pool, 14)}
    assert after == before  # an exception in run does not cost a worker


def test_process_timeout_then_the_worker_keeps_working(pool):
    _ok_on_both_workers(pool, 20)  # both workers loaded: the timeout counts from now
    t = time.monotonic()
    pool.submit(Job(22, {"mode": "sleep"}))
    [ev] = drain(pool, 1, limit=30)
    took = time.monotonic() - t
    assert ev.job_id == 22 and ev.status is Status.TIMEOUT
    assert ev.error == f"evaluation exceeded the timeout of {TIMEOUT:g} s"
    assert math.isnan(ev.objective)
    assert TIMEOUT <= took < TIMEOUT + 5
    assert ev.finished >= ev.submitted
    # Both workers, the replaced one included, run the next jobs.
    _ok_on_both_workers(pool, 23)


def test_process_crash_is_recorded_and_the_next_job_runs(pool):
    before = {e.worker: e.metadata["pid"] for e in _ok_on_both_workers(pool, 30)}
    pool.submit(Job(32, {"mode": "abort"}))
    [ev] = drain(pool, 1, limit=30)
    assert ev.job_id == 32 and ev.status is Status.CRASHED
    assert "SIGABRT" in ev.error
    assert ev.worker in (1, 2)
    after = {e.worker: e.metadata["pid"] for e in _ok_on_both_workers(pool, 33)}
    assert after[ev.worker] != before[ev.worker]  # a fresh process took its place
    other = 3 - ev.worker
    assert after[other] == before[other]


def test_process_cancel(pool):
    pool.submit(Job(40, {"mode": "sleep"}))
    pool.submit(Job(41, {"mode": "sleep"}))
    time.sleep(0.2)
    cancelled = pool.cancel()
    assert sorted(e.job_id for e in cancelled) == [40, 41]
    assert all(e.status is Status.CANCELLED for e in cancelled)
    assert pool.n_running == 0 and pool.n_free == 2
    _ok_on_both_workers(pool, 42)


def test_process_wait_with_nothing_running(pool):
    t = time.monotonic()
    assert pool.wait(0.1) == []
    assert time.monotonic() - t >= 0.1


# ------------------------------------------------------------------ mpi, without MPI

CLASSY = """
from ambs import Problem

problem = Problem(name="classy")
problem.add_hyperparameter((0.0, 1.0), "x")


class Score:
    def __init__(self, value):
        self.value = value


def run(config):
    return {"objective": config["x"], "score": Score(config["x"])}
"""


def test_a_worker_rank_imports_the_problem_file_for_a_result_that_needs_it(write_module, monkeypatch):
    """A worker rank unpickles each result of its evaluation process before it
    passes it on; one holding an instance of a class the problem file defines
    needs that module, which the rank has not loaded."""
    from ambs.evaluator.mpi_rank import _ProblemFinder
    from ambs.problem import load_problem, module_file, module_name

    path = write_module("classy", CLASSY)
    data = pickle.dumps(load_problem(str(path)).run({"x": 0.25}))  # as the evaluation process sends it
    name = module_name(module_file(str(path)))
    monkeypatch.delitem(sys.modules, name)  # a rank that has not loaded it
    with pytest.raises(ModuleNotFoundError, match=name):
        pickle.loads(data)
    monkeypatch.chdir(path.parent)  # the rank's working directory: the problem's name is relative to it
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, _ProblemFinder(module_file(path.name))])
    result = pickle.loads(data)
    assert result["score"].value == 0.25 and type(result["score"]).__module__ == name
    assert sys.modules[name].__file__ == str(path)
