"""What a stop rule compares with and what the search is told about a stopped
evaluation: the median rule against finished curves (Vizier's form), the
``tell`` modes, and the driver telling the search the rule's value while
results.csv keeps the one the training returned."""

from __future__ import annotations

from pathlib import Path

import pytest

from ambs import Problem, run_search
from ambs.reports import CurveBook
from ambs.result import Evaluation, Status
from ambs.search.base import Search
from ambs.stopping import TELLS, MedianRule, make_rule
from tests.conftest import read_rows


def _full(rule, job_id: int, values: list[float]) -> None:
    """A curve that ran to its end."""
    for step, v in enumerate(values, start=1):
        rule.observe(job_id, step, v)
    rule.finish(job_id, values[-1])


def _cut(rule, job_id: int, values: list[float]) -> None:
    """A curve that was stopped after its last value."""
    for step, v in enumerate(values, start=1):
        rule.observe(job_id, step, v)
    rule.finish(job_id, values[-1], stopped=len(values))


def test_median_against_finished_curves_ignores_the_ones_cut_short() -> None:
    rules = {a: MedianRule(grace=0, min_others=2, against=a) for a in ("all", "finished")}
    for rule in rules.values():
        _full(rule, 0, [0.2, 0.3, 0.4, 0.5])
        _full(rule, 1, [0.3, 0.4, 0.5, 0.6])
        # Three good curves still running at step 2: the median of all is theirs.
        for j in (2, 3, 4):
            rule.observe(j, 1, 0.8)
            rule.observe(j, 2, 0.9)
    assert rules["all"].decide(5, 1, 0.5) and not rules["all"].finals.get(5)
    assert not rules["finished"].decide(5, 1, 0.5)  # above 0.2 and 0.3
    assert rules["finished"].decide(6, 1, 0.1)


def test_median_vizier_compares_the_best_so_far_with_running_means() -> None:
    plain = MedianRule(grace=0, min_others=2, against="finished")
    vizier = MedianRule(grace=0, min_others=2, against="finished", vizier=True)
    for rule in (plain, vizier):
        _full(rule, 0, [0.1, 0.9, 0.9])
        _full(rule, 1, [0.1, 0.9, 0.9])
        rule.observe(2, 1, 0.6)
    # At step 2 the others are at 0.9, their running mean 0.5; the curve's best is 0.6.
    assert plain.decide(2, 2, 0.55)
    assert not vizier.decide(2, 2, 0.55)
    assert vizier.decide(3, 1, 0.05) and not vizier.decide(4, 1, 0.2)


def test_median_refuses_an_unknown_comparison() -> None:
    with pytest.raises(ValueError, match="all or finished"):
        MedianRule(against="best")


def test_told_value_per_mode() -> None:
    assert set(TELLS) == {"value", "worst", "scaled"}
    rules = {t: make_rule("median", tell=t) for t in TELLS}
    for rule in rules.values():
        assert rule.told(9, 2, 0.7) == 0.7  # nothing finished yet: its own value
        _full(rule, 0, [0.2, 0.4, 0.5, 0.6])  # gains 0.2 after step 2
        _full(rule, 1, [0.5, 0.6, 0.8, 0.9])  # gains 0.3 after step 2
        _cut(rule, 2, [0.0, 0.1])  # a stopped curve counts for neither
    assert rules["value"].told(3, 2, 0.7) == 0.7
    assert rules["worst"].told(3, 2, 0.7) == 0.6
    assert rules["worst"].told(3, 2, 0.3) == 0.3
    assert rules["scaled"].told(3, 2, 0.5) == pytest.approx(0.5 + 0.25)
    with pytest.raises(ValueError, match="tell"):
        make_rule("median", tell="best")


def test_asha_tells_scaled_values_by_default_and_the_others_their_own() -> None:
    assert make_rule("asha", final_step=20).tell == "scaled"
    assert make_rule("asha", final_step=20, tell="value").tell == "value"
    for name in ("median", "patience"):
        assert make_rule(name).tell == "value"
    assert make_rule("lce", final_step=20).tell == "value"


def test_curve_book_tells_a_stopped_evaluation_the_rules_value() -> None:
    book = CurveBook(None, make_rule("median", tell="worst"))
    book.finished(0, 0.6)
    kept = Evaluation(job_id=1, config={"q": 0.1}, objective=0.9, status=Status.OK, stopped=3)
    assert book.told(kept).objective == 0.6 and kept.objective == 0.9
    full = Evaluation(job_id=2, config={"q": 0.2}, objective=0.9, status=Status.OK)
    assert book.told(full) is full
    assert CurveBook(None, None).told(kept) is kept


class _Listening(Search):
    """Random proposals that keep what they were told."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem, random_state=0)
        self.heard: list[float] = []

    def _propose(self, n, rng):
        return self.space.sample(n, rng)

    def tell(self, results) -> None:
        results = list(results)
        self.heard += [r.objective for r in results]
        super().tell(results)


def test_the_search_hears_the_told_value_and_results_csv_the_returned_one(tmp_path: Path) -> None:
    problem = Problem("curve")
    problem.add_hyperparameter((0.0, 1.0), "q")

    def run(config, report):
        value = 0.0
        for step in range(1, 11):
            value = config["q"] * step / 10
            if report(step, value):
                break
        return value

    search = _Listening(problem)
    rule = MedianRule(grace=1, min_others=2)
    rule.tell = "scaled"  # the curves rise to the end: a stopped one is told more than it returned
    res = run_search(problem, run=run, method=search, evaluator="serial", max_evals=12, output=tmp_path / "run",
                     quiet=True, stop_rule=rule)
    rows = read_rows(Path(res.directory) / "results.csv")
    assert len(search.heard) == len(rows) == 12
    stopped = [i for i, r in enumerate(rows) if r["stopped"]]
    assert stopped, "the median rule stopped none"
    for i, r in enumerate(rows):
        returned = float(r["objective"])
        if i in stopped:
            step = float(r["stopped"])
            gains = sorted(float(f["objective"]) * (1 - step / 10) for f in rows[:i] if not f["stopped"])
            median = (gains[(len(gains) - 1) // 2] + gains[len(gains) // 2]) / 2
            assert search.heard[i] == pytest.approx(returned + median) and search.heard[i] > returned
        else:
            assert search.heard[i] == returned
