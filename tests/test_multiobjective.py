"""Several declared objectives: the declaration, what ``run`` returns, the
CSV, every evaluator and resume, the searches' fronts, the hypervolume, and
the analysis of the front."""

from __future__ import annotations

import csv
import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambs import Problem
from ambs.errors import SpaceError
from ambs.objectives import Scalarizer, hypervolume, nondominated
from ambs.result import Job, Status, execute
from ambs.search import ALL_METHODS
from ambs.search.base import config_key
from ambs.search.factory import make_search
from tests.test_balsam import balsam_site, launcher  # noqa: F401 - the balsam evaluator's fixtures
from tests.test_contract_evaluators import EVERY, launch  # noqa: F401 - the evaluators' launcher (a fixture)

ROOT = Path(__file__).resolve().parents[1]


def two(name: str = "two") -> Problem:
    p = Problem(name=name)
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((0.0, 1.0), "y")
    p.add_objective("gain", "max")
    p.add_objective("cost", "min")
    return p


def values(config: dict) -> dict:
    """A front along x: gain grows with x, so does cost; y only hurts both."""
    x, y = config["x"], config["y"]
    return {"gain": x - y, "cost": x ** 2 + y}


# ---------------------------------------------------------------- declaring
def test_declaring_objectives_refuses_what_cannot_work():
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    for bad, match in [(("", "max"), "non-empty"), (("a", "up"), "direction"), (("objective", "max"), "reserved"),
                       ((" a", "max"), "surrounding")]:
        with pytest.raises(SpaceError, match=match):
            p.add_objective(*bad)
    p.add_objective("a", "min")
    with pytest.raises(SpaceError, match="declared twice"):
        p.add_objective("a", "max")
    with pytest.raises(SpaceError, match="declares one objective"):
        p.validate()
    p.add_objective("b")
    p.validate()
    assert p.multi_objective and [o.direction for o in p.objectives] == ["min", "max"]
    p.add_metadata("b")
    with pytest.raises(SpaceError, match="both as an objective and as metadata"):
        p.validate()


def test_a_cheap_objective_is_oriented_to_be_maximized_for_lemonade():
    p = two()
    assert p.cheap_objective is None
    q = Problem()
    q.add_hyperparameter((1, 9), "n")
    q.add_objective("accuracy")
    q.add_objective("size", "min", cheap=lambda c: 10 * c["n"])
    assert q.cheap_objective({"n": 3}) == -30.0
    lemonade = make_search("lemonade", q, 0)
    assert lemonade.cheap_objective({"n": 2}) == -20.0


def _run(config):
    return config["out"]


@pytest.mark.parametrize("out, status, error, objective, vals", [
    ({"out": {"gain": 2, "cost": 5, "note": "a"}}, Status.OK, "", 2.0, (2.0, 5.0)),
    ({"out": {"objectives": [1, 3]}}, Status.OK, "", 1.0, (1.0, 3.0)),
    ({"out": {"gain": 2}}, Status.FAILED, "run returned no 'cost' (declared objective)", math.nan, None),
    ({"out": {"gain": 2, "cost": math.inf}}, Status.FAILED, "objective 'cost': run returned a non-finite objective", math.nan, None),
    ({"out": {"gain": "2", "cost": 1}}, Status.FAILED, "objective 'gain': run returned '2', not a number", math.nan, None),
    ({"out": 0.5}, Status.FAILED, "declares the objectives gain, cost: return a dict", math.nan, None),
    ({"out": {"objectives": [1]}}, Status.FAILED, "returned 1 objectives, the problem declares 2", math.nan, None),
])
def test_run_returns_the_declared_objectives_by_name(out, status, error, objective, vals):
    job = Job(0, out, objectives=(("gain", "max"), ("cost", "min")))
    ev = execute(_run, job, 0.0)
    assert ev.status is status and error in ev.error
    assert ev.objectives == vals
    assert (math.isnan(ev.objective) and math.isnan(objective)) or ev.objective == objective
    if status is Status.OK and "note" in out["out"]:
        assert ev.metadata == {"note": "a"}


def test_a_minimized_first_objective_is_negated_in_the_objective_column():
    ev = execute(_run, Job(0, {"out": {"cost": 4, "gain": 1}}, objectives=(("cost", "min"), ("gain", "max"))), 0.0)
    assert ev.objective == -4.0 and ev.objectives == (4.0, 1.0)


# ---------------------------------------------------------------- searches
def _front(losses: np.ndarray) -> set[int]:
    return set(np.flatnonzero(nondominated(losses)))


@pytest.mark.parametrize("method", list(ALL_METHODS))
def test_every_search_takes_several_objectives_and_says_whether_it_searches_the_front(method):
    """Every registered search runs on a problem with two declared objectives,
    told as dicts by name and as failures, and reports the front of what it
    was told (a multi-fidelity one: of the results at the highest budget it
    reached)."""
    p = two()
    p.set_budget(1, 9)
    search = make_search(method, p, 0)
    told = []
    for _ in range(4):
        jobs = search.ask_jobs(4)
        results = []
        for k, (config, budget) in enumerate(jobs):
            results.append((config, None if k == 3 else values(config)))
            told.append((config, results[-1][1], budget))
        if search.multi_fidelity:
            search.tell(results, budgets=[b for _, b in jobs])
        else:
            search.tell(results)
    assert search.n_told == 16
    front = search.front()
    top = max(b for _, v, b in told if v is not None) if search.multi_fidelity else None
    ok = [(c, v) for c, v, b in told if v is not None and b == top]
    L = np.array([[-v["gain"], v["cost"]] for _, v in ok])
    expected = sorted(tuple(sorted(ok[i][0].items())) for i in _front(L))
    assert sorted(tuple(sorted(c.items())) for c, _ in front) == expected
    for c, (gain, cost) in front:
        assert (gain, cost) == (values(c)["gain"], values(c)["cost"])


def _hv_of(search, problem_values, n: int, batch: int = 8) -> float:
    while search.n_told < n:
        configs = search.ask(batch)
        search.tell([(c, problem_values(c)) for c in configs])
    return hypervolume(np.array(search._L), (1.1, 11.0))


def test_ambs_finds_a_better_front_than_random_search_on_zdt1():
    """ZDT1 in 6 variables, 96 evaluations in batches of 8, 3 seeds: AMBS's
    scalarized forest dominates a larger hypervolume than random search in
    every seed (reference (1.1, 11), beyond the worst point of the space)."""
    sys.path.insert(0, str(ROOT))
    from problems import zdt1

    for seed in range(3):
        ambs = _hv_of(make_search("ambs", zdt1.problem, seed), zdt1.run, 96)
        rand = _hv_of(make_search("random", zdt1.problem, seed), zdt1.run, 96)
        assert ambs > rand + 0.05, (seed, ambs, rand)


def test_ambs_proposals_depend_on_the_seed_and_results_only():
    p = two()
    runs = []
    for order in (False, True):
        s = make_search("ambs", p, 3)
        for _ in range(4):
            configs = s.ask(5)
            results = [(c, values(c)) for c in configs]
            s.tell(results[::-1] if order else results)
        runs.append(s.ask(3))
    assert runs[0] == runs[1]


# ---------------------------------------------------------- hypervolume
def test_the_front_kept_as_results_come_is_the_front_of_all_of_them():
    from ambs.objectives import Front

    rng = np.random.default_rng(5)
    L = rng.random((200, 3))
    front = Front()
    for row in L:
        front.add(row)
    front.add([np.nan, 0.0, 0.0])
    assert sorted(map(tuple, front.points)) == sorted(map(tuple, L[nondominated(L)]))


def test_hypervolume_of_known_fronts():
    assert hypervolume(np.array([[0.0, 0.0]]), (1.0, 1.0)) == 1.0
    assert hypervolume(np.array([[0.5, 0.0], [0.0, 0.5], [0.6, 0.6]]), (1.0, 1.0)) == pytest.approx(0.75)
    assert hypervolume(np.array([[2.0, 0.0]]), (1.0, 1.0)) == 0.0  # beyond the reference
    cube = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]])
    assert hypervolume(cube, (1.0, 1.0, 1.0)) == pytest.approx(1 - 0.5 ** 3)
    assert hypervolume(np.empty((0, 2)), (1.0, 1.0)) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_hypervolume_equals_the_union_of_boxes_by_inclusion_exclusion(n, m, seed):
    """Against the definition: the measure of the union of the boxes [p, ref],
    by inclusion-exclusion over every subset of the points."""
    P = np.random.default_rng(seed).random((n, m))
    ref = np.ones(m)
    total = 0.0
    for k in range(1, n + 1):
        for subset in itertools.combinations(range(n), k):
            corner = P[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(ref - corner))
    assert hypervolume(P, ref) == pytest.approx(total, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_every_minimizer_of_a_scalarization_is_on_the_front(n, m, seed):
    rng = np.random.default_rng(seed)
    L = rng.random((n, m))
    s = Scalarizer.draw(L, rng)
    assert int(np.argmin(s(L))) in _front(L)


# ------------------------------------------------- command line, every evaluator
PROBLEM = """
from ambs import Problem

problem = Problem(name="two")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter((0.0, 1.0), "y")
problem.add_objective("gain", "max")
problem.add_objective("cost", "min")
problem.add_metadata("note")


def run(config):
    x, y = config["x"], config["y"]
    if x > 0.9:
        return {"gain": x}  # the cost is missing: a failure
    return {"gain": x - y, "cost": x * x + y, "note": "n"}
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("evaluator", [p for p in EVERY if p.values[0] != "simulated"])
def test_each_objective_has_a_column_on_every_evaluator_and_resume_repeats_nothing(evaluator, tmp_path,
                                                                                   launch):  # noqa: F811
    """Every evaluator that runs code writes the declared objectives' columns;
    a missing objective fails the evaluation naming it; a resumed run reads
    them back (the search is told the front) and repeats no configuration."""
    problem = tmp_path / "two.py"
    problem.write_text(PROBLEM)
    out = tmp_path / "run"
    proc = launch(problem, out, "--method", "ambs", "--seed", "1", "--max-evals", "12", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    proc = launch(problem, out, "--method", "ambs", "--seed", "1", "--max-evals", "16", "--workers", "2",
                  "--resume")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert len(rows) == 16
    assert len({(r["p:x"], r["p:y"]) for r in rows}) == 16
    header = list(rows[0])
    assert header.index("o:gain") == header.index("objective") + 1 and "o:cost" in header
    for r in rows:
        x, y = float(r["p:x"]), float(r["p:y"])
        if x > 0.9:
            assert r["status"] == "failed" and "'cost'" in r["error"] and r["o:gain"] == ""
        else:
            assert r["status"] == "ok"
            assert float(r["o:gain"]) == pytest.approx(x - y) and float(r["o:cost"]) == pytest.approx(x * x + y)
            assert float(r["objective"]) == float(r["o:gain"]) and r["m:note"] == "n"


def test_the_command_line_reports_the_front_and_the_analysis_draws_it(tmp_path):
    """``ambs search`` on the shipped ZDT1 prints the front; ``ambs analyze
    summary|pareto|plot`` give its configurations, hypervolume and plots;
    a method that optimizes one objective says which."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ambs", "search", str(ROOT / "problems" / "zdt1.py"), "--max-evals", "30",
           "--workers", "2", "--seed", "0", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Pareto front:" in proc.stdout and "f1 (min), f2 (min)" in proc.stdout
    assert "[30/30] front " in proc.stderr  # the progress line counts the front, not a best
    proc = subprocess.run([sys.executable, "-m", "ambs", "analyze", "summary", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Pareto front of f1 (min), f2 (min):" in proc.stdout and "hypervolume" in proc.stdout
    assert "x0=" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "ambs", "analyze", "pareto", str(out), "--reference", "1.1,12"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "up to the reference point (1.1, 12)" in proc.stdout
    assert (out / "pareto.png").stat().st_size > 0 and (out / "hypervolume.png").stat().st_size > 0
    proc = subprocess.run([sys.executable, "-m", "ambs", "analyze", "pareto", str(out), "--reference", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "2 objectives" in proc.stderr
    proc = subprocess.run([*cmd[:-1], str(tmp_path / "morph"), "--method", "morphism"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "morphism optimizes the first objective (min f1)" in proc.stderr


def test_hypervolume_trace_grows_and_matches_the_final_front(tmp_path):
    from ambs import analysis, run_search

    sys.path.insert(0, str(ROOT))
    result = run_search(str(ROOT / "problems" / "zdt1.py"), max_evals=40, evaluator="serial", seed=2,
                        output=tmp_path / "run", quiet=True)
    run = analysis.load_run(tmp_path / "run")
    trace, ref = analysis.hypervolume_trace(run, (1.1, 12.0))
    assert list(trace["evaluation"]) == list(range(1, 41))
    assert (np.diff(trace["hypervolume"]) >= 0).all()
    L = np.array([[v[0], v[1]] for _, v in result.search.front()])
    assert trace["hypervolume"].iloc[-1] == pytest.approx(hypervolume(L, (1.1, 12.0)))


@pytest.mark.parametrize("kind", ["et", "rf"])
def test_a_forest_grown_on_several_targets_reads_out_any_one_of_them(kind):
    """The node statistics belief_for computes from the training rows are the
    trees' own for each target (sklearn's weighted node means), and the
    predicted mean interpolates a target the trees were grown on."""
    from ambs.surrogate import ForestSurrogate

    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    Y = np.column_stack([X[:, 0] + X[:, 1], (X[:, 2] - 0.5) ** 2])
    forest = ForestSurrogate(kind=kind, n_estimators=8, random_state=1).fit(X, Y)
    for j in range(2):
        view = forest.belief_for(Y[:, j])
        own = np.concatenate([est.tree_.value[:, j, 0] for est in forest.estimators_])
        assert np.allclose(view.mean, own)
    view = forest.belief_for(Y[:, 1])
    view.extend(view.locate(X.astype(np.float32)))
    mu, sd = view.mean_std()
    assert np.corrcoef(mu, Y[:, 1])[0, 1] > 0.9


def _budgeted() -> Problem:
    p = two("budgeted")
    p.set_budget(1, 9, name="epochs")
    return p


def _inflated(config: dict, budget: float) -> dict:
    """Short trainings look better in both objectives: mixed with the full
    ones, they would take the whole front."""
    v = values(config)
    return {"gain": v["gain"] + (9 - budget), "cost": v["cost"] - (9 - budget)}


@pytest.mark.parametrize("method", ["asha", "hyperband"])
def test_a_multi_fidelity_front_is_the_front_at_the_highest_budget_reached(method, tmp_path):
    """The end-of-run front, ``ambs analyze summary|pareto`` and the
    hypervolume rank the evaluations at the highest budget reached, as
    "best" does; ``--budget`` asks for another."""
    from ambs import analysis, run_search

    result = run_search(_budgeted(), method=method, run=_inflated, evaluator="serial", max_evals=40, seed=0,
                        output=tmp_path / "run", quiet=True, min_budget=1, max_budget=9, eta=3)
    search = result.search
    top = max(search.told_budgets)
    assert top == 9 and min(search.told_budgets) < top
    assert search.front_budget() == top
    full = {config_key(c) for c, b in zip(search.space.to_dicts(np.array(search._X)), search.told_budgets)
            if b == top}
    front = search.front()
    assert front and all(config_key(c) in full for c, _ in front)
    run = analysis.load_run(tmp_path / "run")
    rows = analysis.pareto_front(run, configs=True)
    assert set(rows["budget"]) == {9.0}
    assert int(rows["pareto"].sum()) == len(front)
    summary = analysis.summarize(run)
    assert summary["front"]["size"] == len(front) and summary["ranked_at"] == 9.0
    low = analysis.pareto_front(run, configs=True, budget=1)
    assert set(low["budget"]) == {1.0}
    assert analysis.hypervolume_trace(run, (0.0, 3.0))[0]["hypervolume"].iloc[-1] == pytest.approx(
        hypervolume(np.array([[-v[0], v[1]] for _, v in front]), (0.0, 3.0)))
    proc = subprocess.run([sys.executable, "-m", "ambs", "analyze", "pareto", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"of {len(rows)} successful evaluations at 9 epochs (--budget for another) on the front" in proc.stdout


def test_ambs_takes_an_earlier_runs_front_as_its_prior():
    """Warm-started with an earlier run's results, AMBS evaluates the earlier
    front first and then models on its own results with one prior input per
    objective; the earlier results are not told (not in its front)."""
    from ambs.search.ambs import AMBS

    old, told = AMBS(two(), random_state=1), []
    for _ in range(3):
        results = [(c, values(c)) for c in old.ask(8)]
        old.tell(results)
        told += results
    search = AMBS(two(), random_state=0)
    search.warm(told)
    assert search.n_warm == 24 and search.n_told == 0 and not search.front()
    L = np.array([[-v["gain"], v["cost"]] for _, v in told])
    front = {tuple(sorted(told[i][0].items())) for i in _front(L)}
    first = search.ask(5)
    assert {tuple(sorted(c.items())) for c in first[: min(5, len(front))]} <= front
    search.tell([(c, values(c)) for c in first])
    more = search.ask(8)
    assert len(more) == 8 and search.model is not None
    assert search._enc(search.pending).shape[1] == search.space.encode(search.pending).shape[1] + 2
