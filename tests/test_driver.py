"""ambs.driver: the asynchronous loop and its stop rules, in process and end to end."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest

from ambs.driver import Driver, Progress, StopRules
from ambs.evaluator.serial import SerialEvaluator
from ambs.problem import load_problem
from ambs.recorder import RESULTS, Recorder, RunInfo, columns_for, read_results
from ambs.search import METHODS, GridSearch, RandomSearch

# ------------------------------------------------------------------ helpers


class Run:
    """A search, a serial evaluator and a recorder on one problem module."""

    def __init__(self, path, out, search_cls=RandomSearch, resume: bool = False, seed: int = 0, **kw):
        self.loaded = load_problem(str(path))
        problem = self.loaded.problem
        self.search = search_cls(problem, random_state=seed, **kw)
        self.info = RunInfo(
            problem=str(path), problem_name=self.loaded.name, fingerprint=problem.fingerprint(),
            method="test", columns=columns_for(problem.hyperparameter_names, problem.metadata),
        )
        self.recorder = Recorder(out, self.info, resume=resume)
        self.previous = read_results(self.recorder.path, self.search.space) if resume else []
        self.evaluator = SerialEvaluator(str(path), time.time())

    def drive(self, rules: StopRules, **kw):
        try:
            driver = Driver(self.search, self.evaluator, self.recorder, rules, self.evaluator.t0,
                            previous=self.previous, **kw)
            return driver.run()
        finally:
            self.recorder.close()
            self.evaluator.close()


# ------------------------------------------------------------------ in process


def test_stop_rules():
    rules = StopRules(max_evals=10, walltime=60.0)
    assert rules.reason(9, 59.0) is None
    assert rules.reason(10, 1.0) == "max-evals"
    assert rules.reason(3, 60.0) == "walltime"
    assert rules.reason(10, 61.0) == "walltime"
    rules.signalled = "SIGTERM"
    assert rules.reason(0, 0.0) == "signal SIGTERM"
    assert StopRules(max_evals=5).reason(4, 1e9) is None  # no walltime given


def test_runs_to_max_evals(tmp_path, make_problem, rows):
    seen = []
    run = Run(make_problem("quadratic"), tmp_path / "run")
    summary = run.drive(StopRules(max_evals=7), on_result=seen.append)
    table = rows(tmp_path / "run" / RESULTS)
    assert len(table) == 7 == len(seen)
    assert [int(r["job_id"]) for r in table] == list(range(7))
    assert [e.job_id for e in seen] == list(range(7))
    assert summary.stop_reason == "max-evals"
    assert summary.evaluations == summary.total == 7
    assert summary.by_status == {"ok": 7}
    best = max(float(r["objective"]) for r in table)
    assert summary.best_objective == pytest.approx(best)
    assert run.search.n_told == 7 and run.search.n_pending == 0
    for r in table:
        assert float(r["submitted"]) <= float(r["started"]) <= float(r["finished"])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_stops_when_a_finite_space_is_exhausted(method, tmp_path, make_problem, rows):
    run = Run(make_problem("discrete"), tmp_path / "run", search_cls=METHODS[method])
    summary = run.drive(StopRules(max_evals=100))
    table = rows(tmp_path / "run" / RESULTS)
    assert summary.stop_reason == "space exhausted"
    assert len(table) == 12
    assert len({(r["p:cat"], r["p:n"]) for r in table}) == 12


def test_failures_are_recorded_and_told(tmp_path, make_problem, rows):
    path = make_problem("faulty")
    run = Run(path, tmp_path / "run", search_cls=GridSearch)
    # Leave out the modes that hang or kill the test process.
    run.search.tell([({"mode": "sleep"}, None), ({"mode": "abort"}, None)])
    summary = run.drive(StopRules(max_evals=10))
    table = {r["p:mode"]: r for r in rows(tmp_path / "run" / RESULTS)}
    assert set(table) == {"ok", "raise", "nan"}
    assert table["ok"]["status"] == "ok"
    assert table["raise"]["status"] == "failed" and table["raise"]["error"].startswith("KeyError")
    assert table["nan"]["status"] == "failed" and table["nan"]["objective"] == ""
    assert summary.by_status == {"ok": 1, "failed": 2}
    assert summary.best_objective == 1.0 and summary.best_config == {"mode": "ok"}


def test_previous_evaluations_count_and_are_not_repeated(tmp_path, make_problem, rows):
    path = make_problem("discrete", high=10)  # 30 configurations
    out = tmp_path / "run"
    first = Run(path, out, search_cls=METHODS["ambs"])
    assert first.drive(StopRules(max_evals=8)).total == 8
    before = (out / RESULTS).read_text()
    again = Run(path, out, search_cls=METHODS["ambs"], resume=True, seed=1)
    assert len(again.previous) == 8
    summary = again.drive(StopRules(max_evals=20))
    assert summary.evaluations == 12 and summary.total == 20
    text = (out / RESULTS).read_text()
    assert text.startswith(before)
    table = rows(out / RESULTS)
    assert [int(r["job_id"]) for r in table] == list(range(20))
    assert len({(r["p:cat"], r["p:n"]) for r in table}) == 20


def test_walltime(tmp_path, make_problem, rows):
    run = Run(make_problem("sleepy", sleep=0.1), tmp_path / "run")
    t = time.monotonic()
    summary = run.drive(StopRules(max_evals=1000, walltime=0.6))
    took = time.monotonic() - t
    assert summary.stop_reason == "walltime"
    assert 0.6 <= took < 5
    n = len(rows(tmp_path / "run" / RESULTS))
    assert 2 <= n < 20 and summary.total == n


def test_signal_stops_the_run(tmp_path, make_problem, rows):
    before = signal.getsignal(signal.SIGUSR1)

    def on_result(ev):
        if ev.job_id == 2:
            os.kill(os.getpid(), signal.SIGUSR1)

    run = Run(make_problem("sleepy", sleep=0.01), tmp_path / "run")
    summary = run.drive(StopRules(max_evals=1000), on_result=on_result)
    assert summary.stop_reason == "signal SIGUSR1"
    assert 3 <= summary.total <= 5
    assert len(rows(tmp_path / "run" / RESULTS)) == summary.total
    assert signal.getsignal(signal.SIGUSR1) == before  # handlers are put back


def test_progress_lines():
    stream = io.StringIO()
    progress = Progress(max_evals=10, stream=stream, interval=1000.0)
    for done in range(1, 11):
        progress.update(done, best=float(done), running=1, elapsed=2.0, rate_n=done)
    progress.update(10, best=10.0, running=0, elapsed=2.0, rate_n=10, force=True)
    out = stream.getvalue().splitlines()
    assert out[0].startswith("[1/10] best 1 | running 1")
    assert out[-1].startswith("[10/10] best 10 | running")
    assert "evals/min" in out[-1] and out[-1].endswith("0:00:02")
    assert len(out) == 10  # one per tenth of the budget, none repeated


# ---------------------------------------------------------- the command, in process


@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_repeats_nothing(method, ambs_main, make_problem, rows, capfd):
    path = make_problem("discrete", high=10)  # 30 configurations
    common = ["search", path, "--method", method, "--grid-steps", "10", "--evaluator", "serial", "-o", "run", "--quiet"]
    assert ambs_main(*common, "--max-evals", "10", "--seed", "3") == 0
    first = rows("run/results.csv")
    assert len(first) == 10
    assert ambs_main(*common, "--max-evals", "20", "--resume", "--seed", "4") == 0
    table = rows("run/results.csv")
    assert len(table) == 20
    assert table[:10] == first
    assert len({r["job_id"] for r in table}) == 20
    assert len({(r["p:cat"], r["p:n"]) for r in table}) == 20  # no configuration twice
    # Times continue from the first part of the run.
    assert float(table[10]["submitted"]) >= float(first[-1]["finished"])
    out = capfd.readouterr().out
    assert "evaluations: 20 in run/results.csv" in out and "10 in this run" in out


def test_max_evals_counts_resumed_evaluations(ambs_main, make_problem, rows, capfd):
    path = make_problem("quadratic")
    common = ["search", path, "--method", "random", "--evaluator", "serial", "-o", "run", "--quiet"]
    assert ambs_main(*common, "--max-evals", "6") == 0
    assert ambs_main(*common, "--max-evals", "6", "--resume") == 0
    assert "already holds 6 evaluations" in capfd.readouterr().err
    assert len(rows("run/results.csv")) == 6
    assert ambs_main(*common, "--max-evals", "9", "--resume") == 0
    table = rows("run/results.csv")
    assert len(table) == 9 and [int(r["job_id"]) for r in table] == list(range(9))


def test_resume_after_a_crash_mid_row(ambs_main, make_problem, rows, capfd):
    path = make_problem("discrete", high=10)
    common = ["search", path, "--method", "random", "--evaluator", "serial", "-o", "run", "--quiet"]
    assert ambs_main(*common, "--max-evals", "5") == 0
    with open("run/results.csv", "a") as fh:
        fh.write("5,b,")  # a crash in the middle of writing row 6
    with pytest.warns(UserWarning, match="half-written"):
        assert ambs_main(*common, "--max-evals", "8", "--resume") == 0
    table = rows("run/results.csv")
    assert [int(r["job_id"]) for r in table] == list(range(8))
    assert all(r["status"] == "ok" for r in table)


# ---------------------------------------------------------- end to end, subprocess


@pytest.mark.slow
def test_csv_fills_while_the_search_runs(tmp_path, make_problem, ambs_cli, rows):
    path = make_problem("sleepy", sleep=0.2)
    csv_path = tmp_path / "run" / RESULTS
    proc = ambs_cli.popen("search", path, "--evaluator", "process", "--workers", "2",
                          "--max-evals", "16", "--seed", "0", "-o", "run", cwd=tmp_path)
    seen_while_running = set()
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if csv_path.exists():
                text = csv_path.read_text()
                n = len(text.splitlines()) - 1
                if proc.poll() is None:  # still running after the read
                    assert text.endswith("\n")  # whole rows only
                    if 0 < n < 16:
                        seen_while_running.add(n)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert len(seen_while_running) >= 2, f"rows seen while running: {sorted(seen_while_running)}"
    table = rows(csv_path)
    assert len(table) == 16 and all(r["status"] == "ok" for r in table)
    assert {r["worker"] for r in table} == {"1", "2"}
    assert "evaluations: 16" in out


@pytest.mark.slow
def test_walltime_stop_end_to_end(tmp_path, make_problem, ambs_cli):
    path = make_problem("sleepy", sleep=0.2)
    t = time.monotonic()
    res = ambs_cli.run("search", path, "--evaluator", "process", "--workers", "2", "--max-evals", "1000",
                       "--walltime", "2", "--seed", "0", "-o", "run", "--quiet", cwd=tmp_path)
    took = time.monotonic() - t
    assert res.returncode == 0, res.stderr
    assert "stopped by walltime" in res.stdout and "continue with: ambs search" in res.stdout and "--resume --output run" in res.stdout
    assert took < 60
    csv_path = tmp_path / "run" / RESULTS
    text = csv_path.read_text()
    assert text.endswith("\n")
    evs = read_results(csv_path, load_problem(str(path)).space)
    assert 1 <= len(evs) < 1000
    assert len(evs) == len(text.splitlines()) - 1
    assert all(e.ok for e in evs)
    assert sorted(e.job_id for e in evs) == list(range(len(evs)))
    assert f"evaluations: {len(evs)} in run/results.csv" in res.stdout


@pytest.mark.slow
def test_stop_signal_while_loading_is_a_clean_stop(tmp_path, write_module, ambs_cli):
    """Slurm may send its warning signal before the program is ready; the search must still stop cleanly."""
    path = write_module("slowimport", """
        import time

        from ambs import Problem

        time.sleep(3)  # a problem module that takes a while to load (data, torch)
        problem = Problem()
        problem.add_hyperparameter((0.0, 1.0), "x")


        def run(config):
            return config["x"]
    """)
    proc = ambs_cli.popen("search", path, "--evaluator", "serial", "--max-evals", "1000",
                          "-o", "run", "--quiet", cwd=tmp_path)
    time.sleep(1.0)  # loading the problem
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by signal SIGUSR1" in out
    assert "continue with: ambs search" in out and "--resume --output run" in out


def test_stop_signals_are_ignored_once_the_command_is_done(monkeypatch, capfd):
    """At exit Python puts handlers back to the default action (death for SIGUSR1):
    a scheduler's warning during MPI's shutdown must not fail a finished job."""
    from ambs.__main__ import main

    sigs = (signal.SIGTERM, signal.SIGUSR1)
    before = {s: signal.getsignal(s) for s in sigs}
    monkeypatch.setattr("sys.argv", ["ambs", "analyze", "summary", "/nonexistent/run"])
    try:
        assert main() != 0  # a failing command too
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in sigs)
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert "ambs: error" in capfd.readouterr().err


DEFAULT_BUDGET = """
from ambs import Problem
problem = Problem(name="short")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.set_budget(1, 8, "epochs", default=6)
problem.add_metadata("epochs")
def run(config, budget=None):
    return {"objective": config["x"], "epochs": problem.budget.whole(budget)}
"""


def test_budget_of_a_job_without_one_is_what_run_trained(tmp_path):
    """A method that is not multi-fidelity calls run(config): the budget column
    says what that trained with (the declared default), not the budget's high."""
    import csv

    from ambs.cli import main

    path = tmp_path / "short.py"
    path.write_text(DEFAULT_BUDGET)
    assert main(["search", str(path), "--method", "random", "--max-evals", "3", "--evaluator", "serial",
                 "-q", "-o", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / RESULTS, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["budget"]) for r in rows] == [6.0] * 3
    assert [r["m:epochs"] for r in rows] == ["6"] * 3
