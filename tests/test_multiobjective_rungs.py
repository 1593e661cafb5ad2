"""Several objectives in successive halving's rungs: the Pareto order that
ranks a rung, the promotions it gives under each rule, and AMBS behind
``--stopper`` told every objective."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambs.objectives import nondominated
from ambs.pareto import pareto_order
from ambs.search.base import config_key
from ambs.search.brackets import RULES
from ambs.search.factory import make_search
from tests.test_multiobjective import _budgeted, values


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_the_pareto_order_never_puts_a_point_after_one_it_dominates(n, m, seed):
    L = np.random.default_rng(seed).integers(0, 5, size=(n, m)).astype(float)  # ties on purpose
    order = pareto_order(L)
    assert sorted(order) == list(range(n))
    for a, i in enumerate(order):
        for j in order[a + 1:]:
            assert not ((L[j] <= L[i]).all() and (L[j] < L[i]).any())
    k = int(nondominated(L).sum())
    assert set(order[:k]) == set(np.flatnonzero(nondominated(L)))  # the front comes first


def test_within_a_front_the_extremes_and_the_spread_out_come_first():
    L = np.array([[0.0, 4.0], [1.0, 3.0], [1.1, 2.9], [4.0, 0.0], [3.0, 1.5]])
    order = list(pareto_order(L))
    assert order[:2] == [0, 3]  # the extremes (infinite crowding distance), by row order
    # The isolated one before the crowded pair; of the pair, row 2's neighbours
    # are further apart (0.5 + 0.375 of the ranges against 0.275 + 0.275).
    assert order[2:] == [4, 2, 1]


def _tell_all(search, told: list[tuple[dict, dict]], budget: float) -> None:
    for config, v in told:
        search.tell([(config, v)], budgets=[budget])


def test_asha_promotes_the_front_of_a_rung_with_several_objectives():
    """The top third of a rung of 9 is its front of 3, whatever the order told."""
    search = make_search("asha", _budgeted(), 0, min_budget=1, max_budget=9, eta=3)
    assert search.multi_objective
    jobs = search.ask_jobs(9)
    assert {b for _, b in jobs} == {1.0}
    front = [{"gain": 1.0, "cost": 1.0}, {"gain": 2.0, "cost": 2.0}, {"gain": 3.0, "cost": 3.0}]
    dominated = [{"gain": 0.5 + 0.1 * i, "cost": 3.5 + i} for i in range(6)]
    told = list(zip([c for c, _ in jobs], dominated[:3] + front + dominated[3:]))
    _tell_all(search, told, 1.0)
    promoted = search.ask_jobs(3)
    assert {b for _, b in promoted} == {3.0}
    assert {config_key(c) for c, _ in promoted} == {config_key(c) for c, v in told if v in front}


def test_the_median_rule_continues_what_is_in_the_better_half_when_it_arrives():
    search = make_search("asha", _budgeted(), 0, min_budget=1, max_budget=9, eta=3)
    search.bracket.rule = "median"
    jobs = search.ask_jobs(9)
    dominated = [{"gain": 0.0, "cost": 5.0 + i} for i in range(6)]
    front = [{"gain": 1.0, "cost": 1.0}, {"gain": 2.0, "cost": 2.0}, {"gain": 3.0, "cost": 3.0}]
    told = list(zip([c for c, _ in jobs], dominated + front))
    _tell_all(search, told, 1.0)
    # The first is alone (its own median); each later dominated one is behind it;
    # each front point, when told, leads every dominated one.
    expected = {config_key(told[i][0]) for i in (0, 6, 7, 8)}
    assert {config_key(c) for c, b in search.ask_jobs(9) if b == 3.0} == expected


@pytest.mark.parametrize("rule", RULES)
def test_ambs_behind_a_stopper_is_told_every_objective_at_the_bottom_rung(rule):
    """Before, AMBS as ASHA's sampler was told one number where two objectives
    are declared, which it takes for a failure: it modelled nothing."""
    search = make_search("ambs", _budgeted(), 0, stopper=rule, min_budget=1, max_budget=9, eta=3)
    assert search.multi_objective and search.sampler.multi_objective
    bottom = []
    for _ in range(6):
        jobs = search.ask_jobs(4)
        search.tell([(c, values(c)) for c, _ in jobs], budgets=[b for _, b in jobs])
        bottom += [c for c, b in jobs if b == 1.0]
    sampler = search.sampler
    assert sampler.n_told == len(bottom) >= 12
    expected = [[-values(c)["gain"], values(c)["cost"]] for c in bottom]
    assert np.allclose(np.array(sampler._L), expected)
    assert len(sampler.front()) >= 1


BUDGETED = '''
from ambs import Problem

problem = Problem(name="budgeted")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter((0.0, 1.0), "y")
problem.add_objective("gain", "max")
problem.add_objective("cost", "min")
problem.set_budget(1, 9, name="epochs")


def run(config, budget=None):
    b = 9 if budget is None else budget
    x, y = config["x"], config["y"]
    return {"gain": x - y - 0.1 * (9 - b), "cost": x * x + y}
'''


@pytest.mark.parametrize("method", [["--method", "asha"], ["--method", "ambs", "--stopper", "sha"]])
def test_a_budgeted_search_of_the_front_from_the_command_line_resumes(method, tmp_path):
    """The user's path: ``ambs search`` on a problem with two objectives and a
    budget, on the process evaluator, then ``--resume``: no line saying that
    only the first objective counts, the front at the full budget printed, no
    (configuration, budget) evaluated twice."""
    import csv
    import subprocess
    import sys

    problem = tmp_path / "budgeted.py"
    problem.write_text(BUDGETED)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ambs", "search", str(problem), *method, "--evaluator", "process",
           "--workers", "2", "--seed", "3", "-o", str(out)]
    for evals, extra in ((30, []), (45, ["--resume"])):
        proc = subprocess.run([*cmd, "--max-evals", str(evals), *extra], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "optimizes the first objective" not in proc.stderr
        assert "Pareto front at 9 epochs: " in proc.stdout and "gain (max), cost (min)" in proc.stdout
        # The progress line counts the same front (at the highest budget), not one of every budget's rows.
        size = proc.stdout.split("Pareto front at 9 epochs: ")[1].split(" configuration")[0]
        assert f"[{evals}/{evals}] front {size} |" in proc.stderr
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 45
    pairs = [(r["p:x"], r["p:y"], r["budget"]) for r in rows]
    assert len(set(pairs)) == 45
    assert {float(r["budget"]) for r in rows} >= {1.0, 3.0}


def test_the_front_table_shows_whole_numbers_and_inactive_cells_as_such():
    """``ambs analyze pareto`` prints a width of 256, not 256.0 (pandas reads a
    column of integers with inactive cells as floats), an inactive cell as -."""
    import pandas as pd

    from ambs.analysis import format_front

    frame = pd.DataFrame({"accuracy": [0.95, 0.9], "parameters": [107914.0, 2410.0],
                          "l1_width": [256.0, float("nan")], "lr": [0.5, 1.0]})
    lines = format_front(frame).splitlines()
    assert lines[1].split() == ["0.95", "107914", "256", "0.5"]
    assert lines[2].split() == ["0.90", "2410", "-", "1.0"]
