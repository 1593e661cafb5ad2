"""In-training reports and the stop rules on them: the rules alone, then the
reporter through the command line on the serial, process and MPI evaluators,
curves.csv and the stopped column, resume, kill -9 and old CSVs."""

from __future__ import annotations

import csv
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from ambs.reports import CURVES, CurveBook, Reporter, accepts_report, read_curves
from ambs.runinfo import recorded_settings
from ambs.stopping import RULES, LearningCurveRule, MedianRule, PatienceRule, RungRule, extrapolate, make_rule
from tests.conftest import read_rows

CURVE = """
import time

from ambs import Problem

problem = Problem("curve")
problem.add_hyperparameter((0.0, 1.0), "q")


def run(config, report):
    q, value = config["q"], 0.0
    for step in range(1, 21):
        time.sleep({sleep})
        value = q * step / 20
        if report(step, value):
            break
    return value
"""


def _curve_problem(tmp_path: Path, sleep: float = 0.005) -> Path:
    path = tmp_path / "curve.py"
    path.write_text(textwrap.dedent(CURVE.format(sleep=sleep)))
    return path


def _curves(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- the rules alone
def _feed(rule, job_id: int, values: list[float]) -> list[bool]:
    return [rule.decide(job_id, step, v) for step, v in enumerate(values, start=1)]


def test_rules_registry_drives_the_choices() -> None:
    assert set(RULES) == {"median", "patience", "lce", "asha", "asha-lce"}
    assert isinstance(make_rule("median"), MedianRule)
    for name in ("lce", "asha-lce"):
        with pytest.raises(ValueError, match="final step"):
            make_rule(name)
    with pytest.raises(ValueError, match="unknown stop rule"):
        make_rule("nope")


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_stops_a_hopeless_curve_and_keeps_the_best(name: str) -> None:
    """Six finished curves climbing to about 0.9: a curve stuck at 0.05 is
    stopped, one above all the others all along is never."""
    rule = make_rule(name, final_step=20)
    for j in range(6):
        values = [0.5 + 0.4 * (1 - 1 / s) + 0.01 * j for s in range(1, 21)]
        assert not any(_feed(rule, j, values)) or name in ("median", "asha", "asha-lce")  # below the others early on
        rule.finish(j, values[-1])
    assert any(_feed(rule, 10, [0.05] * 20))
    assert not any(_feed(rule, 11, [0.6 + 0.4 * (1 - 1 / s) for s in range(1, 21)]))


def test_asha_rule_keeps_the_top_third_at_each_rung() -> None:
    rule = RungRule(min_step=1, eta=3, final_step=27)
    assert [rule.decide(0, 1, 0.5)] == [False]  # the first at a rung always goes on
    assert rule.decide(1, 1, 0.4)  # below the top third of [0.5]
    assert not rule.decide(2, 1, 0.6)
    assert not rule.decide(2, 2, 0.0)  # no rung at step 2
    assert not rule.decide(2, 3, 0.7)  # the first at rung 3
    assert rule.decide(3, 3, 0.1)  # a first report past two rungs counts at the highest: below 0.7
    assert not rule.decide(4, 9, 0.1)  # the first at rung 9
    assert [len(r) for r in rule.rungs] == [3, 2, 1]
    assert not rule.decide(5, 27, 0.2) and len(rule.rungs) == 3  # the final step is no rung: judged at 9
    again = RungRule(min_step=1, eta=3, final_step=27)  # a resumed run reads the curves back
    for job, step, value in [(0, 1, 0.5), (1, 1, 0.4), (2, 1, 0.6)]:
        again.observe(job, step, value)
    assert again.decide(6, 1, 0.45) and not again.decide(7, 1, 0.65)


def test_asha_lce_extrapolates_past_the_last_rung() -> None:
    """Before its last rung (9 of 20) the rule is ASHA's; past it, a survivor
    whose curve levels off below the best finished value is stopped, and one
    still rising past it is not."""
    rule = make_rule("asha-lce", final_step=20)
    assert isinstance(rule, RungRule) and rule.last_rung == 9 and rule.tell == "scaled"
    best = [0.5 + 0.45 * (1 - 1 / s) for s in range(1, 21)]  # ends at 0.93
    assert not any(_feed(rule, 0, best))
    rule.finish(0, best[-1])
    flat = [min(0.905, 0.6 + 0.1 * s) for s in range(1, 21)]  # first at every rung, then flat at 0.905
    decisions = _feed(rule, 1, flat)
    assert not any(decisions[:9])  # rungs 1, 3, 9: above the only other curve there
    assert any(decisions[9:])  # past rung 9: 0.905 for good, below 0.93
    rising = [0.7 + 0.3 * (1 - 1 / s) for s in range(1, 21)]  # heading for 0.985
    assert not any(_feed(rule, 2, rising))
    plain = make_rule("asha", final_step=20)  # the same curves, ASHA alone
    _feed(plain, 0, best)
    plain.finish(0, best[-1])
    assert not any(_feed(plain, 1, flat))


def test_median_stops_a_curve_clearly_below_the_others() -> None:
    rule = MedianRule(grace=2, min_others=3)
    for j in range(3):
        assert not any(_feed(rule, j, [0.5 + 0.1 * s + 0.01 * j for s in range(10)]))
    decisions = _feed(rule, 9, [0.01 * s for s in range(10)])
    assert decisions[:2] == [False, False]  # within the grace
    assert decisions[2]  # the first step after it, clearly below the median
    good = _feed(rule, 10, [0.6 + 0.1 * s for s in range(10)])
    assert not any(good)


def test_median_waits_for_enough_others() -> None:
    rule = MedianRule(grace=0, min_others=3)
    _feed(rule, 0, [1.0] * 5)
    _feed(rule, 1, [1.0] * 5)
    assert not any(_feed(rule, 2, [0.0] * 5))  # two others only


def test_patience_stops_after_reports_without_improvement() -> None:
    rule = PatienceRule(grace=0, patience=3)
    decisions = _feed(rule, 0, [0.1, 0.2, 0.3, 0.3, 0.25, 0.29, 0.2])
    assert decisions == [False, False, False, False, False, True, True]
    assert not any(_feed(rule, 1, [0.1 * s for s in range(10)]))


def test_lce_stops_a_flat_poor_curve_and_keeps_one_on_course() -> None:
    rule = LearningCurveRule(grace=4, final_step=50, threshold=0.05)
    rule.finish(0, 0.8)
    flat = [0.30 + 0.001 * (s % 2) for s in range(10)]
    assert any(_feed(rule, 1, flat))
    rising = [0.9 - 0.8 / s ** 0.7 for s in range(1, 11)]  # 0.1 ... 0.74, tending to 0.9
    assert not any(_feed(rule, 2, rising))
    mean, sd = extrapolate(list(range(1, 11)), rising, 50)
    assert mean > 0.8 and sd >= 0


def test_lce_does_not_stop_before_anything_finished() -> None:
    rule = LearningCurveRule(grace=0, final_step=50)
    assert not any(_feed(rule, 1, [0.1] * 8))


def test_reporter_contract_in_process() -> None:
    seen = []
    rep = Reporter(7, send=lambda j, s, v: seen.append((j, s, v)) or s >= 3)
    assert [rep(s, 0.5) for s in (1, 2, 3, 4)] == [False, False, True, True]
    assert rep.should_stop and rep.stopped == 3 and seen == [(7, 1, 0.5), (7, 2, 0.5), (7, 3, 0.5)]
    with pytest.raises(TypeError, match="value must be a number"):
        rep(5, "x")
    null = Reporter(1)  # where reports are not supported: records nothing, never stops
    assert not null(1, 0.1) and not null.should_stop


def test_report_parameter_is_detected_from_the_signature() -> None:
    def plain(config):
        return 0.0

    def budgeted(config, budget):
        return 0.0

    def reporting(config, budget=None, report=None):
        return 0.0

    assert not accepts_report(plain) and not accepts_report(budgeted) and accepts_report(reporting)


def test_curve_book_appends_and_reads_back(tmp_path: Path) -> None:
    book = CurveBook(tmp_path, MedianRule(grace=0, min_others=1), t0=time.time())
    assert not (tmp_path / CURVES).exists()  # made at the first report
    book.report(0, 1, 0.9)
    assert book.report(1, 1, 0.1)
    book.close()
    with open(tmp_path / CURVES, "ab") as fh:
        fh.write(b"2,1,0.")  # a line cut by a crash
    assert [(j, s, v) for j, s, v, _ in read_curves(tmp_path / CURVES)] == [(0, 1.0, 0.9), (1, 1.0, 0.1)]
    rule = MedianRule(grace=0, min_others=1)
    with pytest.warns(UserWarning, match="half-written"):
        CurveBook(tmp_path, rule, resume=True).close()
    assert set(rule.curves) == {0, 1}
    assert (tmp_path / CURVES).read_bytes().endswith(b"\n")  # the cut line is gone


# ---------------------------------------------------------------- through the command line
def _check_run(out: Path, n: int) -> list[dict[str, str]]:
    rows = read_rows(out / "results.csv")
    assert len(rows) == n and all(r["status"] == "ok" for r in rows)
    curves = _curves(out / CURVES)
    stopped = [r for r in rows if r["stopped"]]
    assert stopped, "the median rule stopped none"
    for r in rows:
        mine = [c for c in curves if c["job_id"] == r["job_id"]]
        steps = [int(float(c["step"])) for c in mine]
        assert steps == list(range(1, len(steps) + 1))  # every report, in order
        if r["stopped"]:
            assert int(r["stopped"]) == steps[-1] < 20  # it stopped at the step it was told at
            assert float(r["objective"]) == pytest.approx(float(mine[-1]["value"]))
        else:
            assert steps[-1] == 20
    return rows


@pytest.mark.parametrize("evaluator", ["serial", "process"])
def test_median_stops_evaluations_serial_and_process(tmp_path: Path, ambs_cli, evaluator: str) -> None:
    prob = _curve_problem(tmp_path)
    extra = ["--workers", "2"] if evaluator == "process" else []
    res = ambs_cli.run("search", prob, "--method", "random", "--evaluator", evaluator, "--max-evals", "12",
                       "--seed", "1", "--stop-rule", "median", "--stop-final-step", "20", "-o", "run", "-q", *extra,
                       cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    _check_run(tmp_path / "run", 12)
    res = ambs_cli.run("search", prob, "--method", "random", "--evaluator", evaluator, "--max-evals", "16",
                       "--stop-rule", "median", "--stop-final-step", "20", "-o", "run", "--resume", "-q", *extra,
                       cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = _check_run(tmp_path / "run", 16)
    assert sorted(int(r["job_id"]) for r in rows) == list(range(16))  # nothing repeated
    res = ambs_cli.run("analyze", "summary", "run", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    stops = [int(r["stopped"]) for r in rows if r["stopped"]]
    saved = sum(20 - s for s in stops)
    assert f"stopped early by a stop rule: {len(stops)} evaluations, saving {saved} of {20 * len(stops)} steps" \
        in res.stdout
    if evaluator == "serial":
        res = ambs_cli.run("analyze", "plot", "run", "--out", "plots", cwd=tmp_path, timeout=60)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / "plots" / "learning_curves.png").stat().st_size > 0


@pytest.mark.mpi
def test_median_stops_evaluations_under_mpi(tmp_path: Path, ambs_cli) -> None:
    prob = _curve_problem(tmp_path)
    res = ambs_cli.run("search", prob, "--method", "random", "--evaluator", "mpi", "--max-evals", "12",
                       "--seed", "1", "--stop-rule", "median", "-o", "run", "-q", cwd=tmp_path, timeout=90, ranks=3)
    assert res.returncode == 0, res.stderr
    _check_run(tmp_path / "run", 12)


def test_lce_without_a_final_step_is_a_one_line_error(tmp_path: Path, ambs_cli) -> None:
    prob = _curve_problem(tmp_path)
    res = ambs_cli.run("search", prob, "--method", "random", "--evaluator", "serial", "--max-evals", "2",
                       "--stop-rule", "lce", "-o", "run", "-q", cwd=tmp_path, timeout=60)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "--stop-final-step" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_kill_9_of_the_master_then_resume_loses_nothing(tmp_path: Path, ambs_cli) -> None:
    prob = _curve_problem(tmp_path, sleep=0.02)
    args = ("search", prob, "--method", "random", "--workers", "2", "--max-evals", "40", "--seed", "2",
            "--stop-rule", "median", "-o", "run", "-q")
    proc = ambs_cli.popen(*args, cwd=tmp_path)
    results = tmp_path / "run" / "results.csv"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not results.exists() or len(read_rows(results)) < 4):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    before_rows = read_rows(results)
    before_curves = read_curves(tmp_path / "run" / CURVES)
    assert len(before_rows) >= 4 and before_curves
    time.sleep(0.5)  # the run lock of a dead master is taken over
    res = ambs_cli.run(*args, "--resume", "--max-evals", str(len(before_rows) + 4), cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    after_rows = read_rows(results)
    assert after_rows[: len(before_rows)] == before_rows
    after = read_curves(tmp_path / "run" / CURVES)
    assert after[: len(before_curves)] == before_curves
    ids = [int(r["job_id"]) for r in after_rows]
    assert len(ids) == len(set(ids))
    # The evaluations running at the kill reported under their ids: the resumed
    # run hands out new ones, so that no curve mixes two trainings.
    orphans = {job for job, *_ in before_curves} - {int(r["job_id"]) for r in before_rows}
    assert not orphans & set(ids[len(before_rows):])
    for job in ids:
        steps = [step for j, step, _, _ in after if j == job]
        assert steps == list(range(1, len(steps) + 1)), f"job {job}'s curve is not one training"


def test_a_resume_keeps_the_runs_stop_rule(tmp_path: Path, ambs_cli) -> None:
    """Resumed without --stop-rule (after a walltime or a kill), a run goes on
    stopping by the rule and final step it was started with."""
    prob = _curve_problem(tmp_path)
    base = ("search", prob, "--method", "random", "--evaluator", "serial", "--seed", "4", "-o", "run", "-q")
    res = ambs_cli.run(*base, "--max-evals", "6", "--stop-rule", "asha-lce", "--stop-final-step", "20",
                       cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    res = ambs_cli.run(*base, "--max-evals", "24", "--resume", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = read_rows(tmp_path / "run" / "results.csv")
    assert len(rows) == 24
    assert any(r["stopped"] for r in rows[6:]), "the resumed run stopped nothing"
    settings = recorded_settings(tmp_path / "run")
    assert settings["stop_rule"] == "asha-lce" and settings["stop_final_step"] == 20


def test_old_csv_without_the_stopped_column_resumes(tmp_path: Path, ambs_cli) -> None:
    prob = _curve_problem(tmp_path)
    base = ("search", prob, "--method", "random", "--evaluator", "serial", "-o", "run", "-q")
    res = ambs_cli.run(*base, "--max-evals", "3", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    path = tmp_path / "run" / "results.csv"
    with open(path, newline="") as fh:
        table = list(csv.reader(fh))
    col = table[0].index("stopped")
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([r[:col] + r[col + 1:] for r in table])
    res = ambs_cli.run(*base, "--max-evals", "5", "--resume", "--stop-rule", "median", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = read_rows(path)
    assert len(rows) == 5 and "stopped" not in rows[0]
    res = ambs_cli.run("analyze", "summary", "run", cwd=tmp_path, timeout=60)
    assert res.returncode == 0 and "evaluations: 5" in res.stdout, res.stderr


@pytest.mark.parametrize("name", ["mlp_digits", "cnn_digits", "rnn_addition"])
def test_torch_problems_report_each_epoch_and_stop_when_told(name: str) -> None:
    pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[test]'")
    from ambs.problem import load_problem

    loaded = load_problem(f"problems/{name}.py")
    config = loaded.problem.default_configuration
    seen: list[tuple[int, float]] = []

    def report(epoch: int, value: float) -> bool:
        seen.append((epoch, value))
        return epoch >= 2

    out = loaded.run(config, 4, report=report)
    assert [e for e, _ in seen] == [1, 2] and out["epochs"] == out["epochs_trained"] == 2
    assert out["objective"] == pytest.approx(seen[-1][1])
    assert loaded.run(config, 2)["objective"] == pytest.approx(out["objective"])  # same training without reports


def test_lce_keeps_a_steady_climb_that_ends_above_the_best() -> None:
    rule = LearningCurveRule(grace=4, final_step=20)
    rule.finish(0, 0.909)
    assert not any(_feed(rule, 1, [0.95 * s / 20 for s in range(1, 16)]))  # ends at 0.95
    assert _feed(rule, 2, [0.84 * s / 20 for s in range(1, 16)])[4]  # ends at 0.84: stopped at once


BUDGETED_CURVE = """
from ambs import Problem

problem = Problem("curve_b")
problem.add_hyperparameter((0.0, 1.0), "q")
problem.set_budget(1, 20, "steps")


def run(config, budget=None, report=None):
    value = 0.0
    for step in range(1, int(budget or 20) + 1):
        value = config["q"] * step / 20
        if report(step, value):
            break
    return value
"""


def test_summary_tells_rule_stops_from_rung_stops(tmp_path: Path, ambs_cli) -> None:
    """A full-budget run whose stop rule ended trainings: the summary says they
    stopped in training, not that they were left behind at a budget rung."""
    (tmp_path / "curve_b.py").write_text(textwrap.dedent(BUDGETED_CURVE))
    res = ambs_cli.run("search", "curve_b.py", "--method", "random", "--evaluator", "serial", "--max-evals", "10",
                       "--seed", "4", "--stop-rule", "median", "-o", "run", "-q", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    n = sum(1 for r in csv.DictReader(open(tmp_path / "run" / "results.csv")) if r["stopped"])
    assert n > 0, "the median rule stopped none"
    res = ambs_cli.run("analyze", "summary", "run", cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    assert f"budget 20: 10 evaluations, {n} stopped in training by a stop rule, best" in res.stdout
    assert "not promoted" not in res.stdout
