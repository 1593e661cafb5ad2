"""ambs.result: what run() returned, turned into an evaluation."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from ambs.result import Evaluation, Job, Status, execute, normalize_output


@pytest.mark.parametrize(
    "out, expected",
    [
        (1, 1.0),
        (-2.5, -2.5),
        (np.float32(0.25), 0.25),
        (np.float64(-3.0), -3.0),
        (np.int64(7), 7.0),
        (np.array(1.5), 1.5),
        (Decimal("0.5"), 0.5),
        (Fraction(3, 4), 0.75),
    ],
)
def test_numbers(out, expected):
    objective, status, error, metadata = normalize_output(out)
    assert objective == expected and type(objective) is float
    assert status is Status.OK and error == "" and metadata == {}


def test_dict_with_objective_and_metadata():
    objective, status, error, metadata = normalize_output(
        {"objective": np.float64(0.9), "fit_seconds": 1.25, "epochs": 3}
    )
    assert (objective, status, error) == (0.9, Status.OK, "")
    assert metadata == {"fit_seconds": 1.25, "epochs": 3}


def test_dict_keys_become_strings():
    _, _, _, metadata = normalize_output({"objective": 1.0, 3: "three"})
    assert metadata == {"3": "three"}


def test_dict_without_objective():
    objective, status, error, metadata = normalize_output({"accuracy": 0.9})
    assert math.isnan(objective) and status is Status.FAILED
    assert "without an 'objective' key" in error


@pytest.mark.parametrize(
    "out, words",
    [
        (math.nan, "non-finite objective (nan)"),
        (math.inf, "non-finite objective (inf)"),
        (-math.inf, "non-finite objective (-inf)"),
        (np.float32("nan"), "non-finite"),
        (None, "run returned None, not a number"),
        (True, "run returned True, not a number"),
        (False, "run returned False, not a number"),
        ("0.9", "run returned '0.9', not a number"),
        ("abc", "run returned 'abc', not a number"),
        (b"1", "not a number"),
        ([1.0], "run returned [1.0], not a number"),
        (1 + 2j, "not a number"),
        (object(), "not a number"),
        ({"objective": None}, "run returned None"),
        ({"objective": math.nan}, "non-finite"),
        ({"objective": "1"}, "run returned '1'"),
    ],
)
def test_failures(out, words):
    objective, status, error, _ = normalize_output(out)
    assert math.isnan(objective)
    assert status is Status.FAILED
    assert words in error


def test_failed_dict_keeps_its_metadata():
    _, status, _, metadata = normalize_output({"objective": math.nan, "diverged_at": 12})
    assert status is Status.FAILED and metadata == {"diverged_at": 12}


def test_long_values_are_shortened_in_the_error():
    _, _, error, _ = normalize_output("x" * 500)
    assert len(error) < 120 and error.count("x") < 100 and "..." in error


def test_execute_ok():
    t0 = time.time() - 10.0
    job = Job(job_id=4, config={"x": 2.0}, submitted=9.5)
    ev = execute(lambda c: {"objective": c["x"] ** 2, "note": "fine"}, job, t0)
    assert isinstance(ev, Evaluation)
    assert ev.ok and ev.status is Status.OK
    assert (ev.job_id, ev.config, ev.objective, ev.metadata) == (4, {"x": 2.0}, 4.0, {"note": "fine"})
    assert ev.submitted == 9.5
    assert 10.0 <= ev.started <= ev.finished < 20.0


def test_execute_passes_a_copy_of_the_config():
    job = Job(0, {"x": 1})

    def run(config):
        config["x"] = 99
        return 1.0

    execute(run, job, time.time())
    assert job.config == {"x": 1}


@pytest.mark.parametrize(
    "exc, words",
    [
        (ValueError("bad learning rate"), "ValueError: bad learning rate"),
        (ZeroDivisionError(), "ZeroDivisionError"),
        (MemoryError("out of memory\nsecond line"), "MemoryError: out of memory"),
        (KeyError("lr"), "KeyError: 'lr'"),
    ],
)
def test_execute_exception_is_a_failed_evaluation(exc, words):
    def run(config):
        raise exc

    ev = execute(run, Job(1, {}), time.time())
    assert ev.status is Status.FAILED and not ev.ok
    assert math.isnan(ev.objective)
    assert ev.error.startswith(words)
    assert "test_result.py" in ev.error  # where it was raised
    assert "\n" not in ev.error


def test_execute_bad_return_value():
    ev = execute(lambda c: "0.5", Job(2, {}), time.time())
    assert ev.status is Status.FAILED and "not a number" in ev.error


def test_execute_lets_interrupts_through():
    def run(config):
        raise KeyboardInterrupt()

    with pytest.raises(KeyboardInterrupt):
        execute(run, Job(3, {}), time.time())


def test_sys_exit_in_run_is_a_failure():
    """sys.exit in run would end a serial search (or a worker): it is the evaluation's failure."""
    def run(config):
        raise SystemExit(4)

    ev = execute(run, Job(3, {}), time.time())
    assert ev.status is Status.FAILED and "SystemExit: 4" in ev.error and "sys.exit" in ev.error


def test_status_values():
    assert [s.value for s in Status] == ["ok", "failed", "timeout", "crashed", "cancelled"]
    assert Status("timeout") is Status.TIMEOUT
    assert Evaluation(0, {}).ok and not Evaluation(0, {}, status=Status.CRASHED).ok
