"""Searches that begin from earlier runs: ``--warm-start`` and ``--initial-configs``
(:mod:`ambs.warmstart`), from Python and the command line, on the evaluators, resumed."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float

from ambs import Problem, run_search
from ambs.errors import AmbsError
from ambs.search.ambs import AMBS
from ambs.warmstart import load_initial_configs, load_warm_start

OLD = """
from ambs import Problem

problem = Problem(name="old")
problem.add_hyperparameter((0.0, 10.0), "a")
problem.add_hyperparameter(["x", "y"], "b")
problem.add_hyperparameter((0.0, 1.0), "c")


def run(config):
    return -(config["a"] - 3.0) ** 2 - (0.0 if config["b"] == "x" else 1.0)
"""

NEW = """
from ambs import Problem

problem = Problem(name="new")
problem.add_hyperparameter((0.0, 5.0), "a")
problem.add_hyperparameter(["x", "y"], "b")
problem.add_hyperparameter((0.0, 1.0), "d", default_value=0.5)


def run(config):
    return -(config["a"] - 3.0) ** 2 - (0.0 if config["b"] == "x" else 1.0) - config["d"]
"""


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    (tmp_path / "old.py").write_text(textwrap.dedent(OLD))
    (tmp_path / "new.py").write_text(textwrap.dedent(NEW))
    run_search(str(tmp_path / "old.py"), method="random", evaluator="serial", max_evals=30, seed=1,
               output=tmp_path / "old_run", quiet=True)
    return tmp_path / "old_run"


def _space_of(path: Path):
    from ambs.problem import load_problem

    return load_problem(str(path)).problem.space


def test_rows_are_matched_by_name_and_the_ones_outside_the_space_dropped(old_run: Path, tmp_path: Path) -> None:
    ws = load_warm_start([old_run], _space_of(tmp_path / "new.py"))
    old = _rows(old_run)
    inside = [r for r in old if float(r["p:a"]) <= 5.0]
    assert ws.read == 30 and ws.dropped == 30 - len(inside) > 0
    assert len(ws.observations) == len(inside)
    for (config, objective), r in zip(ws.observations, inside):
        assert config == {"a": float(r["p:a"]), "b": r["p:b"], "d": 0.5}  # c ignored, d at its default
        assert objective == float(r["objective"])
    assert ws.ignored == {"c"} and ws.defaulted == {"d"}
    line = ws.summary([str(old_run)])
    assert f"{len(inside)} of 30 results told, {30 - len(inside)} outside the new space dropped" in line
    assert "ignored (not in the space): c" in line and "at their default (new): d" in line


def test_conditions_decide_which_rows_fit() -> None:
    """A row with a value the new conditions switch off, or without one they
    switch on, is dropped; one that agrees is kept."""
    space = ConfigurationSpace(seed=0)
    opt, lr = Categorical("opt", ["sgd", "adam"]), Float("momentum", (0.0, 1.0))
    space.add([opt, lr, EqualsCondition(lr, opt, "sgd")])
    from ambs.warmstart import _configure

    assert _configure(space, {"opt": "sgd", "momentum": "0.5"}, None) == {"opt": "sgd", "momentum": 0.5}
    assert _configure(space, {"opt": "adam", "momentum": ""}, None) == {"opt": "adam"}
    assert _configure(space, {"opt": "adam", "momentum": "0.5"}, None) is None  # inactive now
    assert _configure(space, {"opt": "sgd", "momentum": ""}, None) is None  # active now, no value
    assert _configure(space, {"opt": "rmsprop"}, None) is None  # a choice the space lacks


@pytest.mark.parametrize("evaluator", ["serial", "process", pytest.param("mpi", marks=pytest.mark.mpi)])
def test_warm_start_tells_the_search_without_counting_or_rerunning(evaluator: str, old_run: Path,
                                                                   tmp_path: Path, ambs_cli) -> None:
    """``ambs search --warm-start``: the new run holds only its own evaluations,
    the search knew the old ones (AMBS begins with the best of them, near the
    old optimum), and a resume told them again."""
    out = tmp_path / "warm"
    args = ["search", str(tmp_path / "new.py"), "--method", "ambs", "--evaluator", evaluator, "--max-evals", "4",
            "--seed", "2", "-o", str(out), "--warm-start", str(old_run)]
    if evaluator == "process":
        args += ["--workers", "2"]
    res = ambs_cli.run(*args, cwd=tmp_path, timeout=120, ranks=3 if evaluator == "mpi" else None)
    assert res.returncode == 0, res.stderr
    assert "ambs: warm start from 1 run(s):" in res.stderr
    rows = _rows(out)
    assert len(rows) == 4
    # Told the old optimum at a = 3, the model's proposals are close to it (a random
    # design over 0..5 would put half of them 1.25 away or more).
    assert sum(abs(float(r["p:a"]) - 3.0) < 1.25 for r in rows) >= 3, rows
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["warm_start"] == [str(old_run.resolve())]
    res = ambs_cli.run(*[a for a in args if a not in ("--warm-start", str(old_run))], "--resume",
                       "--max-evals", "6", cwd=tmp_path, timeout=120, ranks=3 if evaluator == "mpi" else None)
    assert res.returncode == 0, res.stderr
    assert "ambs: warm start from 1 run(s):" in res.stderr
    assert len(_rows(out)) == 6


def test_a_warm_start_begins_with_the_earlier_best_then_the_design(old_run: Path, tmp_path: Path) -> None:
    """Told 30 earlier results, AMBS first evaluates the best of them that fit
    the new space (half of its 10-point initial design, best first), then the
    rest of the cold run's space-filling design; the results are a prior, not
    evaluations of this run."""
    common = dict(method="ambs", evaluator="serial", max_evals=10, seed=5, quiet=True)
    run_search(str(tmp_path / "new.py"), output=tmp_path / "cold", **common)
    result = run_search(str(tmp_path / "new.py"), output=tmp_path / "warm", warm_start=[old_run], **common)
    ws = load_warm_start([old_run], _space_of(tmp_path / "new.py"))
    best = sorted(ws.observations, key=lambda o: -o[1])[:5]
    warm, cold = _rows(tmp_path / "warm"), _rows(tmp_path / "cold")
    assert [(float(r["p:a"]), r["p:b"]) for r in warm[:5]] == [(c["a"], c["b"]) for c, _ in best]
    assert [r["p:a"] for r in warm[5:]] == [r["p:a"] for r in cold[:5]]
    assert result.search.n_warm == len(ws.observations) and result.search.n_told == 10


def test_warm_start_from_python_counts_observations_apart(old_run: Path, tmp_path: Path) -> None:
    result = run_search(str(tmp_path / "new.py"), method="ambs", evaluator="serial", max_evals=3, seed=0,
                        output=tmp_path / "warm", quiet=True, warm_start=[old_run])
    ws = load_warm_start([old_run], _space_of(tmp_path / "new.py"))
    assert result.search.n_warm == len(ws.observations) and result.search.n_told == 3
    assert len(_rows(tmp_path / "warm")) == 3


def _plane() -> Problem:
    p = Problem(name="plane")
    for name in "ab":
        p.add_hyperparameter((0.0, 5.0), name)
    return p


@pytest.mark.parametrize("seed", range(3))
def test_new_results_overrule_an_earlier_optimum_that_moved(seed: int) -> None:
    """The earlier task's optimum is at (3, 3), the new one's at (1.5, 1.5).
    Told as data, the earlier results held AMBS at the old optimum (best
    found after 40 new evaluations: about -4.4 on every seed); as a prior
    (AMBS.warm), the new results take over and it finds the new one."""
    old = AMBS(_plane(), random_state=100 + seed)
    told = []
    for _ in range(8):
        configs = old.ask(8)
        told += [(c, -(c["a"] - 3) ** 2 - (c["b"] - 3) ** 2) for c in configs]
        old.tell(told[-8:])
    search = AMBS(_plane(), random_state=seed)
    search.warm(told)
    best = -np.inf
    for _ in range(5):
        results = [(c, -(c["a"] - 1.5) ** 2 - (c["b"] - 1.5) ** 2) for c in search.ask(8)]
        search.tell(results)
        best = max(best, max(v for _, v in results))
    assert best > -0.5
    assert search.n_told == 40 and search.n_warm == 64


def test_warm_start_with_a_multi_fidelity_method_is_one_line(old_run: Path, tmp_path: Path) -> None:
    with pytest.raises(AmbsError, match="one budget"):
        run_search(str(_budgeted(tmp_path)), method="hyperband", evaluator="serial", max_evals=3,
                   output=tmp_path / "mf", quiet=True, warm_start=[old_run], min_budget=1, max_budget=9)
    assert not (tmp_path / "mf").exists()


def test_warm_start_from_a_directory_without_results_is_one_line(tmp_path: Path, ambs_cli) -> None:
    (tmp_path / "new.py").write_text(textwrap.dedent(NEW))
    (tmp_path / "empty").mkdir()
    res = ambs_cli.run("search", "new.py", "--warm-start", "empty", "--max-evals", "2", "-o", "run",
                       cwd=tmp_path, timeout=60)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("ambs: error: --warm-start ") and last.endswith("/empty: no results.csv there")
    assert not (tmp_path / "run").exists()


def test_initial_configs_run_first_once_and_are_checked(old_run: Path, tmp_path: Path, ambs_cli) -> None:
    """A JSON list runs first (completed with defaults); a resume does not run
    them again; a results.csv of another run works as a list too."""
    listed = tmp_path / "first.json"
    listed.write_text(json.dumps([{"a": 3.0, "b": "x", "d": 0.0}, {"a": 1.0}]))
    args = ["search", "new.py", "--method", "ambs", "--evaluator", "serial", "--seed", "0", "-o", "run", "-q",
            "--initial-configs", str(listed)]
    res = ambs_cli.run(*args, "--max-evals", "1", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    res = ambs_cli.run(*args, "--max-evals", "4", "--resume", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = _rows(tmp_path / "run")
    assert [(float(r["p:a"]), r["p:b"], float(r["p:d"])) for r in rows[:2]] == [(3.0, "x", 0.0), (1.0, "x", 0.5)]
    assert len({(r["p:a"], r["p:b"], r["p:d"]) for r in rows}) == 4
    space = _space_of(tmp_path / "new.py")
    from_csv = load_initial_configs(tmp_path / "run" / "results.csv", space)
    assert len(from_csv) == 4 and from_csv[0] == {"a": 3.0, "b": "x", "d": 0.0}
    with pytest.raises(AmbsError, match="configuration 1 is not in the search space"):
        load_initial_configs([{"a": 9.0}], space)
    with pytest.raises(AmbsError, match="lacks: zz"):
        load_initial_configs([{"a": 1.0, "zz": 2}], space)


def _budgeted(tmp_path: Path) -> Path:
    path = tmp_path / "budgeted.py"
    path.write_text(textwrap.dedent(NEW).replace("def run(config):", "def run(config, budget=None):")
                    + "\nproblem.set_budget(1, 9)\n")
    return path


@pytest.mark.parametrize("method", sorted(__import__("ambs.search", fromlist=["ALL_METHODS"]).ALL_METHODS))
def test_every_method_takes_a_warm_start_or_refuses_it_in_one_line(method: str, old_run: Path,
                                                                   tmp_path: Path) -> None:
    """From the registry: a method with one budget per configuration is told the
    old results; a multi-fidelity one refuses before anything is written."""
    from ambs.search import MULTI_FIDELITY

    kwargs = dict(method=method, evaluator="serial", max_evals=3, seed=0, output=tmp_path / "w", quiet=True,
                  warm_start=[old_run])
    if method in MULTI_FIDELITY:
        with pytest.raises(AmbsError, match="one budget"):
            run_search(str(_budgeted(tmp_path)), **kwargs)
        assert not (tmp_path / "w").exists()
        return
    result = run_search(str(tmp_path / "new.py"), **kwargs)
    told = len(load_warm_start([old_run], _space_of(tmp_path / "new.py")).observations)
    assert result.search.n_warm == told and len(_rows(tmp_path / "w")) == 3
    assert result.search.n_told == 3 + (told if method != "ambs" else 0)  # AMBS: a prior, not data


def test_a_multi_fidelity_run_lends_its_full_budget_rows_only(tmp_path: Path) -> None:
    (tmp_path / "new.py").write_text(textwrap.dedent(NEW))
    budgeted = _budgeted(tmp_path)
    run_search(str(budgeted), method="asha", evaluator="serial", max_evals=20, seed=0, output=tmp_path / "mf",
               quiet=True)
    rows = [r for r in _rows(tmp_path / "mf") if r["status"] == "ok"]
    full = [r for r in rows if float(r["budget"]) == 9.0]
    assert full and len(full) < len(rows)
    ws = load_warm_start([tmp_path / "mf"], _space_of(tmp_path / "new.py"))
    assert len(ws.observations) + ws.dropped == len(full) and ws.low_budget == len(rows) - len(full)
    assert f"{ws.low_budget} at a lower budget than their run's full one left out" in ws.summary(["mf"])


def test_initial_configs_take_the_hyperparameters_types() -> None:
    """JSON's ``0`` for a real hyperparameter and a CSV's ``3.0`` for an integer
    one become what the space proposes (``0.0``, ``3``), not mixed types in the CSV."""
    from ambs import Problem
    from ambs.warmstart import load_initial_configs

    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((1, 10), "n")
    (config,) = load_initial_configs([{"x": 0, "n": 3.0}], p.space)
    assert config == {"x": 0.0, "n": 3} and type(config["x"]) is float and type(config["n"]) is int


def test_the_summary_names_earlier_runs_of_another_problem(old_run: Path, tmp_path: Path) -> None:
    """Matching by name lets any run in (a variant of the problem is the point),
    but runs of another problem are named in the one line, not taken silently."""
    old_name = json.loads((old_run / "run.json").read_text())["problem_name"]
    assert old_name == "old"
    same = load_warm_start([old_run], _space_of(tmp_path / "new.py"), problem="old")
    assert not same.other_problems and "another problem" not in same.summary([str(old_run)])
    other = load_warm_start([old_run], _space_of(tmp_path / "new.py"), problem="new")
    assert other.other_problems == {"old"}
    assert other.summary([str(old_run)]).endswith("; runs of another problem: old")
