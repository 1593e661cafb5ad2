"""Multi-fidelity search: Hyperband's brackets, the promotion rules of SHA, ASHA
and the median rule, budgets travelling to ``run``, the CSV budget column,
resume, and workers kept busy (no rung barrier) under the process and MPI
evaluators."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ambs import Problem
from ambs.driver import Driver, StopRules
from ambs.evaluator.serial import SerialEvaluator
from ambs.problem import load_problem
from ambs.recorder import RESULTS, Recorder, RunInfo, columns_for, read_results
from ambs.result import Job, Status, execute
from ambs.search import AMBS, ASHA, MULTI_FIDELITY, Hyperband, RandomSearch, SuccessiveHalving
from ambs.search.base import config_key
from ambs.search.multifidelity import hyperband_brackets, s_max_for

BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"

# A problem whose run reports the budget it was given, and sleeps in proportion to it.
BUDGETED = """
import time
from ambs import Problem
problem = Problem(name="budgeted")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter(["a", "b"], "c")
problem.set_budget(1, 9)
problem.add_metadata("budget_seen")
def run(config, budget=None):
    time.sleep({sleep} * (9 if budget is None else budget))
    b = 9.0 if budget is None else float(budget)
    value = -(config["x"] - 0.3) ** 2 - (0.1 if config["c"] == "b" else 0.0) - 1.0 / b
    return {{"objective": value, "budget_seen": budget}}
"""


def budget_problem(low: float = 1, high: float = 27) -> Problem:
    problem = Problem(name="q")
    problem.add_hyperparameter((0.0, 1.0), "x")
    problem.set_budget(low, high)
    return problem


def objective(config: dict, budget: float) -> float:
    return -((config["x"] - 0.3) ** 2) - 1.0 / budget


def write_budgeted(tmp_path: Path, sleep: float = 0.0) -> Path:
    path = tmp_path / "budgeted.py"
    path.write_text(BUDGETED.format(sleep=sleep).lstrip())
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------ brackets


def test_hyperband_brackets_reproduce_the_paper_table():
    # Li et al. (JMLR 2018), Table 1: n_i and r_i for R = 81, eta = 3, from
    # n = ceil(B/R eta^s/(s+1)), r = R eta^-s, n_i = floor(n eta^-i), r_i = r eta^i.
    table = {
        4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        3: [(34, 3), (11, 9), (3, 27), (1, 81)],
        2: [(15, 9), (5, 27), (1, 81)],
        1: [(8, 27), (2, 81)],
        0: [(5, 81)],
    }
    brackets = hyperband_brackets(81, 3)
    assert len(brackets) == 5
    for s, rungs in zip(range(4, -1, -1), brackets):
        assert [(n, r) for n, r in rungs] == [(n, float(r)) for n, r in table[s]]


def test_s_max_and_ladders():
    assert s_max_for(81, 3) == 4 and s_max_for(80.9, 3) == 3 and s_max_for(20, 3) == 2
    assert s_max_for(1, 3) == 0 and s_max_for(8, 2) == 3
    search = Hyperband(budget_problem(1, 20), random_state=0)
    # The top rung is always the full budget; bottoms are max / eta^s >= min.
    assert [rungs[-1][1] for rungs in search.brackets_table] == [20.0, 20.0, 20.0]
    assert [n for n, _ in search.brackets_table[0]] == [9, 3, 1]
    assert search.brackets_table[0][0][1] == pytest.approx(20 / 9)
    assert ASHA(budget_problem(1, 27), random_state=0).ladder() == [1.0, 3.0, 9.0, 27.0]


def test_budgets_default_from_the_problem_and_are_checked():
    with pytest.raises(ValueError, match="declares none"):
        ASHA(_no_budget(), random_state=0)
    with pytest.raises(ValueError, match="eta"):
        ASHA(budget_problem(), random_state=0, eta=1)
    with pytest.raises(ValueError, match="min_budget <= max_budget"):
        Hyperband(budget_problem(), random_state=0, min_budget=5, max_budget=2)
    s = SuccessiveHalving(_no_budget(), random_state=0, min_budget=2, max_budget=18)
    assert (s.min_budget, s.max_budget, s.s_max) == (2.0, 18.0, 2)


def _no_budget() -> Problem:
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    return p


# ------------------------------------------------------------ promotion rules


def test_sha_waits_for_the_whole_rung_then_promotes_its_top_third():
    search = SuccessiveHalving(budget_problem(1, 9), random_state=0)  # n = 9 at 1, 3 at 3, 1 at 9
    first = search.ask_jobs(9)
    assert [b for _, b in first] == [1.0] * 9
    # Eight of nine results in: the rung is not complete, so no promotion; the
    # free worker gets a configuration of the next bracket instead.
    search.tell([(c, objective(c, b)) for c, b in first[:8]], budgets=[b for _, b in first[:8]])
    (c9, b9), = search.ask_jobs(1)
    assert b9 == 1.0 and config_key(c9) not in {config_key(c) for c, _ in first}
    c, b = first[8]
    search.tell([(c, objective(c, b))], budgets=[b])
    promoted = search.ask_jobs(5)
    ranked = sorted(first, key=lambda cb: -objective(*cb))
    assert [p for p, _ in promoted[:3]] == [c for c, _ in ranked[:3]]
    assert [b for _, b in promoted[:3]] == [3.0] * 3
    assert [b for _, b in promoted[3:]] == [1.0, 1.0]  # then new configurations again
    # Rung 3 -> 9 waits for all three results as well.
    search.tell([(c, objective(c, b)) for c, b in promoted[:2]], budgets=[3.0, 3.0])
    assert all(b == 1.0 for _, b in search.ask_jobs(2))
    search.tell([(promoted[2][0], objective(promoted[2][0], 3.0))], budgets=[3.0])
    (top, btop), = search.ask_jobs(1)
    assert btop == 9.0 and top == ranked[0][0]


def test_asha_promotes_the_top_third_as_soon_as_possible():
    search = ASHA(budget_problem(1, 9), random_state=0)
    jobs = search.ask_jobs(2)
    search.tell([(c, objective(c, b)) for c, b in jobs], budgets=[1.0, 1.0])
    # Two results: floor(2/3) = 0 promotable; a new configuration.
    (c, b), = search.ask_jobs(1)
    assert b == 1.0
    search.tell([(c, objective(c, b))], budgets=[b])
    # Three results: the best is promoted at once, no other result awaited.
    rung0 = jobs + [(c, b)]
    best = max(rung0, key=lambda cb: objective(*cb))[0]
    (p, bp), = search.ask_jobs(1)
    assert (p, bp) == (best, 3.0)
    # Only one is due per three results: the next job is new, not a second promotion.
    nxt = search.ask_jobs(3)
    assert [b for _, b in nxt] == [1.0, 1.0, 1.0]
    search.tell([(c, objective(c, 1.0)) for c, _ in nxt], budgets=[1.0] * 3)
    (q, bq), = search.ask_jobs(1)
    ranked = sorted(rung0 + nxt, key=lambda cb: -objective(*cb))
    top2 = [c for c, _ in ranked[:2]]  # floor(6/3) = 2 due; the one not promoted yet goes
    assert bq == 3.0 and q in top2 and q != p


def test_asha_promotes_from_the_highest_rung_first():
    search = ASHA(budget_problem(1, 9), random_state=0)
    jobs = search.ask_jobs(9)
    search.tell([(c, objective(c, 1.0)) for c, _ in jobs], budgets=[1.0] * 9)
    up = search.ask_jobs(3)
    assert [b for _, b in up] == [3.0] * 3
    search.tell([(c, objective(c, 3.0)) for c, _ in up], budgets=[3.0] * 3)
    (c, b), = search.ask_jobs(1)
    assert b == 9.0 and c == max(up, key=lambda cb: objective(cb[0], 3.0))[0]


def test_median_rule_continues_results_at_least_as_good_as_the_median():
    search = ASHA(budget_problem(1, 9), random_state=0, rule="median")
    values = {0.3: None, 0.9: None, 0.35: None, 0.0: None}  # x -> told in this order
    configs = [{"x": x} for x in values]
    promoted = []
    for c in configs:
        search.tell([(c, objective(c, 1.0))], budgets=[1.0])
        promoted += [p for p, b in search.ask_jobs(1) if b == 3.0]
    # 0.3: alone, it is the median; 0.9 is worse than the median of {0.3, 0.9};
    # 0.35 is the median of three; 0.0 is worse than the median of four.
    assert promoted == [{"x": 0.3}, {"x": 0.35}]


def test_a_promotion_is_not_a_duplicate_and_pairs_never_repeat():
    for name in MULTI_FIDELITY:
        search = MULTI_FIDELITY[name](budget_problem(1, 27), random_state=1)
        pairs, configs = [], set()
        for _ in range(40):
            jobs = search.ask_jobs(3)
            assert jobs, name
            search.tell([(c, objective(c, b)) for c, b in jobs], budgets=[b for _, b in jobs])
            pairs += [(config_key(c), b) for c, b in jobs]
            configs |= {config_key(c) for c, _ in jobs}
        assert len(pairs) == len(set(pairs)), name
        assert len(configs) < len(pairs), name  # some configurations ran at several budgets
        budgets = {b for _, b in pairs}
        assert budgets <= {1.0, 3.0, 9.0, 27.0} and 27.0 in budgets, name
        assert search.best_at_full_budget() is not None


def test_ask_and_tell_without_budgets_use_the_pending_budget():
    search = ASHA(budget_problem(1, 9), random_state=0)
    configs = search.ask(3)
    search.tell([(c, objective(c, 1.0)) for c in configs])  # no budgets: those asked
    assert search.told_budgets == [1.0, 1.0, 1.0] and search.n_pending == 0
    promoted = search.ask(1)
    assert promoted[0] in configs
    search.tell([(promoted[0], 0.0)])
    assert search.told_budgets[-1] == 3.0
    search.tell([({"x": 0.5}, -1.0)])  # never asked: a result at the full budget
    assert search.told_budgets[-1] == 9.0


def test_failures_are_never_promoted():
    search = ASHA(budget_problem(1, 9), random_state=0)
    jobs = search.ask_jobs(3)
    search.tell([(c, None) for c, _ in jobs], budgets=[1.0] * 3)
    assert [b for _, b in search.ask_jobs(2)] == [1.0, 1.0]


@pytest.mark.parametrize("name", sorted(MULTI_FIDELITY))
def test_replaying_the_results_rebuilds_the_rungs(name):
    """A resumed search, told the CSV's rows in order, proposes what the
    uninterrupted one would."""
    problem = budget_problem(1, 27)
    original = MULTI_FIDELITY[name](problem, random_state=3)
    told = []
    for _ in range(25):
        jobs = original.ask_jobs(2)
        original.tell([(c, objective(c, b)) for c, b in jobs], budgets=[b for _, b in jobs])
        told += [(c, objective(c, b), b) for c, b in jobs]
    replayed = MULTI_FIDELITY[name](problem, random_state=3)
    replayed.tell([(c, y) for c, y, _ in told], budgets=[b for _, _, b in told])
    assert replayed.ask_jobs(6) == original.ask_jobs(6)


def test_early_stopping_tells_the_model_only_the_bottom_rung():
    problem = budget_problem(1, 9)
    sampler = AMBS(problem, random_state=0, n_initial_points=4, n_candidates=64)
    search = ASHA(problem, random_state=0, sampler=sampler)
    n_bottom = 0
    for _ in range(12):
        jobs = search.ask_jobs(2)
        # The sampler holds the running bottom-rung jobs as pending (constant liar).
        assert sampler.n_pending == sum(b == 1.0 for _, b in jobs)
        search.tell([(c, objective(c, b)) for c, b in jobs], budgets=[b for _, b in jobs])
        n_bottom += sum(b == 1.0 for _, b in jobs)
    assert search.n_told == 24 and sampler.n_told == n_bottom < 24
    assert sampler.n_fits > 0  # new configurations came from the model


# ------------------------------------------------------------ budgets travel


def test_execute_passes_the_budget_and_records_it():
    seen = []

    def run(config, budget=None):
        seen.append(budget)
        return 1.0

    ev = execute(run, Job(0, {"x": 1}, budget=3.0), time.time())
    assert ev.status is Status.OK and ev.budget == 3.0 and seen == [3.0]
    ev = execute(lambda config: 2.0, Job(1, {"x": 1}), time.time())  # no budget: run(config)
    assert ev.status is Status.OK and ev.budget is None


class Run:
    """A search, a serial evaluator and a recorder with a budget column."""

    def __init__(self, path: Path, out: Path, make, resume: bool = False) -> None:
        loaded = load_problem(str(path))
        self.search = make(loaded.problem)
        info = RunInfo(problem=str(path), problem_name=loaded.name, fingerprint=loaded.problem.fingerprint(),
                       method="test", columns=columns_for(loaded.problem.hyperparameter_names,
                                                          loaded.problem.metadata, budget=True))
        self.recorder = Recorder(out, info, resume=resume)
        self.previous = read_results(self.recorder.path, self.search.space) if resume else []
        self.evaluator = SerialEvaluator(str(path), time.time())

    def drive(self, max_evals: int):
        try:
            return Driver(self.search, self.evaluator, self.recorder, StopRules(max_evals=max_evals),
                          self.evaluator.t0, previous=self.previous).run()
        finally:
            self.recorder.close()
            self.evaluator.close()


def test_csv_budget_column_holds_the_budget_run_was_given(tmp_path):
    path = write_budgeted(tmp_path)
    Run(path, tmp_path / "mf", lambda p: Hyperband(p, random_state=0)).drive(30)
    table = rows(tmp_path / "mf" / RESULTS)
    assert len(table) == 30 and "budget" in table[0]
    assert list(table[0])[:4] == ["job_id", "p:c", "p:x", "budget"]
    for r in table:
        assert float(r["budget"]) == float(r["m:budget_seen"])
    assert {float(r["budget"]) for r in table} == {1.0, 3.0, 9.0}
    # A single-fidelity method on the same problem: run(config), the full budget recorded.
    Run(path, tmp_path / "sf", lambda p: RandomSearch(p, random_state=0)).drive(5)
    table = rows(tmp_path / "sf" / RESULTS)
    assert [r["budget"] for r in table] == ["9.0"] * 5
    assert [r["m:budget_seen"] for r in table] == [""] * 5  # run got no budget argument


@pytest.mark.parametrize("name", ["hyperband", "asha"])
def test_resume_rebuilds_the_rungs_from_the_csv(tmp_path, name):
    path = write_budgeted(tmp_path)
    out = tmp_path / "run"
    Run(path, out, lambda p: MULTI_FIDELITY[name](p, random_state=0)).drive(20)
    before = (out / RESULTS).read_text()
    again = Run(path, out, lambda p: MULTI_FIDELITY[name](p, random_state=0), resume=True)
    assert [e.budget for e in again.previous] == [float(r["budget"]) for r in rows(out / RESULTS)]
    summary = again.drive(45)
    assert summary.total == 45 and (out / RESULTS).read_text().startswith(before)
    table = rows(out / RESULTS)
    pairs = [((r["p:x"], r["p:c"]), float(r["budget"])) for r in table]
    assert len(set(pairs)) == len(pairs)  # nothing re-run at the same budget
    # A configuration starts at a bracket's bottom rung (Hyperband's brackets
    # start at 1, 3 and 9), and every promotion triples its last budget.
    bottoms = {1.0, 3.0, 9.0} if name == "hyperband" else {1.0}
    ran: dict = {}
    for key, b in pairs:
        assert b == 3 * ran[key] if key in ran else b in bottoms, (key, b)
        ran[key] = b
    # The uninterrupted run from the same seed proposes the same jobs.
    straight = Run(path, tmp_path / "straight", lambda p: MULTI_FIDELITY[name](p, random_state=0))
    straight.drive(45)
    assert rows(tmp_path / "straight" / RESULTS)[20:] and [
        ((r["p:x"], r["p:c"]), r["budget"]) for r in rows(tmp_path / "straight" / RESULTS)
    ] == [((r["p:x"], r["p:c"]), r["budget"]) for r in table]


def test_analysis_marks_stopped_rows_and_plots_budgets(tmp_path):
    pytest.importorskip("matplotlib")
    from ambs import analysis

    path = write_budgeted(tmp_path)
    Run(path, tmp_path / "run", lambda p: ASHA(p, random_state=0)).drive(30)
    run = analysis.load_run(tmp_path / "run")
    d = run.data
    assert "stopped" in d and d["stopped"].any()
    for _, r in d.iterrows():
        same = d[(d["p:x"] == r["p:x"]) & (d["p:c"] == r["p:c"])]
        promoted = (same["budget"] > r["budget"]).any()
        assert r["stopped"] == (r["budget"] < 9.0 and not promoted)
    table = analysis.budget_table(run)
    assert list(table["budget"]) == [1.0, 3.0, 9.0]
    assert int(table["evaluations"].sum()) == 30
    assert int(table["stopped"].sum()) == int(d["stopped"].sum())
    files, _ = analysis.plot_run(run, tmp_path / "plots")
    assert tmp_path / "plots" / "objective_vs_budget.png" in files
    assert (tmp_path / "plots" / "objective_vs_budget.png").stat().st_size > 1000
    assert "budget 3:" in analysis.format_summary(analysis.summarize(run))


# ------------------------------------------------------------ command line


def test_cli_multi_fidelity_needs_a_budget(tmp_path, make_problem, ambs_cli):
    quad = make_problem("quadratic")
    for args in (["--method", "hyperband"], ["--method", "ambs", "--stopper", "sha"]):
        res = ambs_cli.run("search", quad, *args, "--max-evals", "3", "-q", cwd=tmp_path)
        assert res.returncode == 2
        assert res.stderr.count("\n") == 1 and "declares a budget" in res.stderr
    res = ambs_cli.run("search", quad, "--method", "random", "--stopper", "sha", cwd=tmp_path)
    assert res.returncode == 2 and "--stopper applies to --method ambs" in res.stderr
    res = ambs_cli.run("search", quad, "--min-budget", "2", cwd=tmp_path)
    assert res.returncode == 2 and "--min-budget applies to multi-fidelity" in res.stderr
    res = ambs_cli.run("search", quad, "--method", "random", "--max-budget", "2", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "declares a budget" in res.stderr


def test_max_budget_is_the_budget_of_every_configuration_of_other_methods(tmp_path, ambs_cli):
    """--max-budget B with a method that is not multi-fidelity: every configuration
    trains with run(config, B), the budget column and run.json say B, and a resume
    without it is refused (its rows would mean something else)."""
    path, out = write_budgeted(tmp_path), tmp_path / "run"
    base = ["search", path, "--method", "evolution", "--evaluator", "serial", "--seed", "1", "-o", out]
    res = ambs_cli.run(*base, "--max-budget", "2", "--max-evals", "4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    table = rows(out / RESULTS)
    assert [(r["budget"], r["m:budget_seen"]) for r in table] == [("2.0", "2.0")] * 4
    assert json.loads((out / "run.json").read_text())["settings"]["max_budget"] == 2
    res = ambs_cli.run(*base, "--max-evals", "6", "--resume", cwd=tmp_path)
    assert res.returncode == 2 and "max_budget is now None, the run's was 2" in res.stderr, res.stderr
    res = ambs_cli.run(*base, "--max-budget", "2", "--max-evals", "6", "--resume", cwd=tmp_path)
    assert res.returncode == 0 and [r["budget"] for r in rows(out / RESULTS)] == ["2.0"] * 6, res.stderr


def _busy_checks(table: list[dict[str, str]], workers: int) -> None:
    """Every worker ran several jobs (how busy they stayed is measured on the
    virtual clock, where machine load cannot change it: see below)."""
    by_worker: dict[str, int] = {}
    for r in table:
        by_worker[r["worker"]] = by_worker.get(r["worker"], 0) + 1
    assert len(by_worker) == workers
    assert min(by_worker.values()) >= 2, by_worker


@pytest.mark.parametrize("stopper", [None, "sha", "median"])
def test_multi_fidelity_keeps_every_worker_busy_on_the_virtual_clock(stopper, tmp_path):
    """No barrier between rungs: with 8 simulated workers and the master's real
    compute on the clock, workers idle for less than 1% of the time while there
    is work to hand out (a rung barrier would idle them for whole evaluations)."""
    from ambs.simulate import MemoryRecorder, parse_duration, simulate

    loaded = load_problem(str(write_budgeted(tmp_path)))
    if stopper is None:
        search = ASHA(loaded.problem, random_state=0)
    else:
        search = ASHA(loaded.problem, random_state=0, rule=stopper, sampler=AMBS(loaded.problem, random_state=0))
    rec = MemoryRecorder()
    report = simulate(search, loaded.run, rec, workers=8, duration=parse_duration("lognormal:60,0.5"),
                      max_evals=80, seed=0)
    assert len(rec.rows) == 80 and {r.budget for r in rec.rows} >= {1.0, 3.0}
    assert report.utilization > 0.99, report


def test_the_virtual_clock_sees_a_barrier(tmp_path):
    """The measure above can fail: the same ASHA, made to wait until every
    running job is back before it proposes (a batch barrier), idles workers."""
    from ambs.simulate import MemoryRecorder, parse_duration, simulate

    class Batched(ASHA):
        def ask_jobs(self, n: int = 1) -> list:
            return super().ask_jobs(n) if self.n_pending == 0 else []

    loaded = load_problem(str(write_budgeted(tmp_path)))
    report = simulate(Batched(loaded.problem, random_state=0), loaded.run, MemoryRecorder(), workers=8,
                      duration=parse_duration("lognormal:60,0.5"), max_evals=80, seed=0)
    assert report.utilization < 0.9, report


@pytest.mark.slow
def test_process_evaluator_stays_busy_under_asha(tmp_path, ambs_cli):
    path = write_budgeted(tmp_path, sleep=0.05)
    out = tmp_path / "run"
    res = ambs_cli.run("search", path, "--method", "asha", "--evaluator", "process", "--workers", "2",
                       "--max-evals", "30", "--seed", "0", "-o", out, "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    table = rows(out / RESULTS)
    assert len(table) == 30 and {float(r["budget"]) for r in table} >= {1.0, 3.0}
    _busy_checks(table, workers=2)


@pytest.mark.slow
@pytest.mark.mpi
def test_mpi_evaluator_stays_busy_under_asha(tmp_path):
    path = write_budgeted(tmp_path, sleep=0.05)
    out = tmp_path / "run"
    res = subprocess.run(
        [str(MPIEXEC), "-n", "4", str(BIN / "python"), "-m", "ambs", "search", str(path), "--method", "asha",
         "--evaluator", "mpi", "--max-evals", "36", "--seed", "0", "-o", str(out), "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    table = rows(out / RESULTS)
    assert len(table) == 36 and all(r["status"] == "ok" for r in table)
    assert all(float(r["budget"]) == float(r["m:budget_seen"]) for r in table)
    _busy_checks(table, workers=3)


def test_hyperband_keeps_every_bracket_in_flight_budget_accounting():
    """Every evaluation of a bracket is one job; a bracket's rungs stay as the paper's."""
    search = Hyperband(budget_problem(1, 9), random_state=0)  # s_max = 2
    counts: dict[float, int] = {}
    for _ in range(60):
        jobs = search.ask_jobs(1)
        c, b = jobs[0]
        counts[b] = counts.get(b, 0) + 1
        search.tell([(c, objective(c, b))], budgets=[b])
    # Told one at a time, brackets run one after another: 9+3+1, 5+1 (s=1: n=ceil(3*3/2)=5), 3.
    per_cycle = {1.0: 9, 3.0: 3 + 5, 9.0: 1 + 1 + 3}
    cycles = 60 // sum(per_cycle.values())
    for b, n in per_cycle.items():
        assert counts[b] >= cycles * n
    assert math.isclose(sum(counts.values()), 60)
