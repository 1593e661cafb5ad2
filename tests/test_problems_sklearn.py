"""The scikit-learn problems (rf_digits, gb_breast_cancer): cross-validated
objectives that beat chance, are reproducible, and honour their budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from ambs.problem import Budget, load_problem

ROOT = Path(__file__).resolve().parents[1]
# name: (small budget, an objective the default configuration must beat with it)
SMALL = {
    "rf_digits": (10, 0.85),  # 10 classes: chance is 0.1
    "gb_breast_cancer": (10, 0.9),  # always answering "benign" scores 0.627
}
NAMES = list(SMALL)


@pytest.fixture(scope="module")
def loaded():
    return {name: load_problem(str(ROOT / "problems" / f"{name}.py")) for name in NAMES}


_FIRST: dict[str, dict] = {}


def _small_run(loaded, name: str) -> dict:
    if name not in _FIRST:
        p = loaded[name]
        _FIRST[name] = p.run(p.problem.default_configuration, SMALL[name][0])
    return _FIRST[name]


@pytest.mark.parametrize("name", NAMES)
def test_space_budget_and_metadata(loaded, name):
    problem = loaded[name].problem
    hps = list(problem.space.values())
    assert 5 <= len(hps) <= 10
    kinds = {type(hp).__name__ for hp in hps}
    assert "UniformIntegerHyperparameter" in kinds
    assert "CategoricalHyperparameter" in kinds
    assert any(type(hp).__name__ == "UniformFloatHyperparameter" and hp.log for hp in hps)
    assert problem.budget is not None and problem.budget.name == "n_estimators"
    assert "fit_seconds" in problem.metadata


@pytest.mark.parametrize("name", NAMES)
def test_default_configuration_beats_chance(loaded, name):
    budget, floor = SMALL[name]
    out = _small_run(loaded, name)
    assert floor < out["objective"] <= 1.0
    assert set(out) - {"objective"} == set(loaded[name].problem.metadata)
    assert out["n_estimators"] == budget


@pytest.mark.parametrize("name", NAMES)
def test_same_configuration_same_objective(loaded, name):
    first = _small_run(loaded, name)
    p = loaded[name]
    assert p.run(p.problem.default_configuration, SMALL[name][0])["objective"] == first["objective"]


@pytest.mark.parametrize("name", NAMES)
def test_run_without_budget_uses_the_high_end(loaded, name, monkeypatch):
    # The declared range is shrunk so the "full" training stays quick.
    problem = loaded[name].problem
    assert problem.budget.high == 200
    monkeypatch.setattr(problem, "budget", Budget(problem.budget.name, 10, 20))
    out = loaded[name].run(problem.default_configuration)
    assert out["n_estimators"] == 20


@pytest.mark.parametrize("name", NAMES)
def test_budget_is_rounded_and_clipped(loaded, name):
    p = loaded[name]
    config = p.problem.default_configuration
    assert p.run(config, 3)["n_estimators"] == 10
    assert p.run(config, 11.6)["n_estimators"] == 12



def test_gb_reports_every_ten_stages_and_stops_when_told(loaded):
    """gb_breast_cancer reports its cross-validated accuracy every 10 stages;
    reporting does not change the model, and a stop ends the boosting there."""
    from ambs.reports import Reporter

    run = loaded["gb_breast_cancer"].run
    config = loaded["gb_breast_cancer"].problem.default_configuration
    points: list[tuple[int, float]] = []
    full = run(config, 30, Reporter(0, send=lambda _j, s, v: points.append((s, v))))
    assert [s for s, _ in points] == [10, 20, 30]
    assert points[-1][1] == full["objective"] == run(config, 30)["objective"]
    stopped = run(config, 30, Reporter(1, send=lambda _j, s, _v: s >= 20))
    assert stopped["n_estimators"] == 20 and stopped["objective"] == points[1][1]
