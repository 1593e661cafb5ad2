"""The same contract for every evaluator: statuses, timeouts, crash isolation,
asynchrony, resume without repeats, per-evaluation logs, in-training reports
and checkpoints, options from the constructor.

Parametrized from the registries (``ambs.evaluator.EVALUATORS`` and
``SIMULATED``); each evaluator is started as a user starts it (``ambs search``,
under ``mpiexec`` for mpi, with Balsam's launcher for balsam, ``ambs simulate``).
A new evaluator fails :func:`test_every_evaluator_is_in_the_contract_suite`
until it is given a way to start here.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ambs.evaluator import EVALUATORS, SIMULATED
from tests.conftest import MPIEXEC
from tests.test_balsam import balsam_site, launcher  # noqa: F401 - the balsam evaluator's fixtures

BIN = Path(sys.executable).parent

# What each evaluator can do: isolate a crash (an evaluation in a process of
# its own), stop an evaluation at a timeout, run evaluations side by side,
# keep each evaluation's output in a log of its own (RUN_DIR/logs), send
# in-training reports to the master (RUN_DIR/curves.csv, stop rules), hand a
# promoted training its checkpoint (report.checkpoint).
ABILITIES = {
    "serial": {"logs", "reports", "checkpoints"},
    "process": {"crash", "timeout", "parallel", "logs", "reports", "checkpoints"},
    "mpi": {"crash", "timeout", "parallel", "logs", "reports", "checkpoints"},
    # The test's Balsam launcher has one node and runs one job on it at a time
    # (MPI job mode), so its evaluations cannot run side by side here. A Balsam
    # job reports to its database only when it ends: no in-training reports.
    "balsam": {"crash", "timeout", "checkpoints"},
    # Simulated evaluations run no code: nothing reports, nothing trains.
    "simulated": {"parallel-virtual"},
}

CONTRACT = """
import math
import os
import time

from ambs import Problem

problem = Problem(name="contract")
problem.add_hyperparameter({modes!r}, "mode")
problem.add_hyperparameter((0, 1), "i")


def run(config):
    mode = config["mode"]
    if mode == "slow":
        time.sleep(30)
    if mode == "abort":
        os.abort()
    if mode == "raise":
        raise KeyError("boom")
    if mode == "nan":
        return math.nan
    return float(config["i"])
"""

def _rows(path: Path) -> list[dict[str, str]]:
    with open(path / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


Launch = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def launch(request, tmp_path) -> Launch:
    """``launch(problem_path, out, *args) -> CompletedProcess`` for this test's evaluator."""
    name = request.node.callspec.params["evaluator"]
    if name == "balsam":
        env = request.getfixturevalue("balsam_site")
        prefix = request.getfixturevalue("launcher")

        def balsam(problem: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "ambs", "search", str(problem), "--evaluator", "balsam", "-o", str(out),
                 "-q", "--balsam-workflow", f"{prefix}-{out.name}-{len(list(tmp_path.iterdir()))}", *args],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

        return balsam

    def local(problem: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
        if name == "mpi":
            workers = args[args.index("--workers") + 1] if "--workers" in args else "2"
            rest = [a for i, a in enumerate(args) if a != "--workers" and (i == 0 or args[i - 1] != "--workers")]
            cmd = [str(MPIEXEC), "-n", str(int(workers) + 1), sys.executable, "-m", "ambs", "search", str(problem),
                   "--evaluator", "mpi", *rest]
        elif name == "simulated":  # from Python: `ambs simulate` is for what-ifs and does not resume
            opts = dict(zip(args[::2], args[1::2])) if "--resume" not in args else \
                dict(zip([a for a in args if a != "--resume"][::2], [a for a in args if a != "--resume"][1::2]))
            code = (f"from ambs import run_search\n"
                    f"run_search({str(problem)!r}, method={opts['--method']!r}, evaluator='simulated', "
                    f"max_evals={int(opts['--max-evals'])}, seed={int(opts.get('--seed', 0))}, "
                    f"workers={int(opts.get('--workers', 2))}, output={str(out)!r}, resume={'--resume' in args}, "
                    f"quiet=True, evaluator_options={{'duration': 'uniform:1,3'}})\n")
            return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                                  timeout=300)
        else:
            cmd = [sys.executable, "-m", "ambs", "search", str(problem), "--evaluator", name, *args]
            if name == "serial" and "--workers" in cmd:
                i = cmd.index("--workers")
                del cmd[i:i + 2]
        return subprocess.run([*cmd, "-o", str(out), "-q"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)

    return local


def _marks(name: str) -> list:
    return {"mpi": [pytest.mark.mpi]}.get(name, [])


EVERY = [pytest.param(name, marks=_marks(name)) for name in [*EVALUATORS, *SIMULATED]]


def test_every_evaluator_is_in_the_contract_suite():
    assert set(ABILITIES) == set(EVALUATORS) | set(SIMULATED), "say what a new evaluator can do in ABILITIES"


@pytest.mark.parametrize("evaluator", EVERY)
def test_statuses_timeouts_crashes_asynchrony_and_resume(evaluator, tmp_path, launch):
    """Every outcome is a row with its status; a slow evaluation holds no other
    worker; a resume runs on to max-evals without repeating a configuration.

    The grid covers every configuration once: the first run stops two short,
    the resume runs the last two."""
    can = ABILITIES[evaluator]
    modes = ["ok", "raise", "nan"] + (["abort"] if "crash" in can else []) + (["slow"] if "timeout" in can else [])
    problem = tmp_path / "contract.py"
    problem.write_text(textwrap.dedent(CONTRACT.format(modes=modes)))
    n = 2 * len(modes)
    # A Balsam job's time counts from its RUNNING state, which includes starting
    # Python and Django: its timeout leaves room for that.
    # Elsewhere it outlasts a worker's restart after the crash (a new process that
    # imports the problem), so that the other worker is seen going on beside it.
    extra = ["--eval-timeout", "20" if evaluator == "balsam" else "8"] if "timeout" in can else []
    out = tmp_path / "run"
    proc = launch(problem, out, "--method", "grid", "--seed", "0", "--max-evals", str(n - 2), "--workers", "2",
                  *extra)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(_rows(out)) == n - 2
    proc = launch(problem, out, "--method", "grid", "--seed", "0", "--max-evals", str(n), "--workers", "2",
                  "--resume", *extra)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert sorted(int(r["job_id"]) for r in rows) == list(range(n))
    assert len({(r["p:mode"], r["p:i"]) for r in rows}) == n, "a configuration ran twice"
    by_mode: dict[str, set[str]] = {}
    for r in rows:
        by_mode.setdefault(r["p:mode"], set()).add(r["status"])
    expected = {"ok": {"ok"}, "raise": {"failed"}, "nan": {"failed"}, "abort": {"crashed"}, "slow": {"timeout"}}
    assert by_mode == {m: expected[m] for m in modes}
    assert all(r["error"] for r in rows if r["status"] != "ok")
    if {"timeout", "parallel"} <= can:
        # While a slow evaluation waited for its timeout, results of the other worker came in.
        first = [r for r in rows if int(r["job_id"]) < n - 2]
        # The first slow one: work was left for the other worker then (a later one may
        # run while the run drains, with nothing left to run beside it).
        slow = min((r for r in first if r["p:mode"] == "slow"), key=lambda r: float(r["started"]))
        during = [r for r in first if r["p:mode"] != "slow"
                  and float(slow["started"]) < float(r["finished"]) < float(slow["finished"])]
        assert len(during) >= 2, f"results did not come in while the slow evaluation {slow['job_id']} ran: {first}"


LOUD = """
import sys

from ambs import Problem

problem = Problem(name="loud")
problem.add_hyperparameter(["ok", "raise"], "mode")
problem.add_hyperparameter((0, 1), "i")


def run(config):
    for n in range(40):
        print(f"EVAL-OUT {n}")
    if config["mode"] == "raise":
        print("EVAL-ERR last words", file=sys.stderr)
        raise KeyError("boom")
    return float(config["i"])
"""


@pytest.mark.parametrize("evaluator", EVERY)
def test_each_evaluation_has_its_own_log(evaluator, tmp_path, launch):
    """What an evaluation prints is in its log, named in the ``log`` column, never in
    the search's own output; a failure's ``error`` ends with the last lines printed.
    An evaluator without logs leaves the column empty."""
    problem = tmp_path / "loud.py"
    problem.write_text(LOUD)
    out = tmp_path / "run"
    proc = launch(problem, out, "--method", "grid", "--seed", "0", "--max-evals", "4", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert len(rows) == 4
    if "logs" not in ABILITIES[evaluator]:
        assert all(r["log"] == "" for r in rows)
        return
    assert "EVAL-" not in proc.stdout + proc.stderr
    for r in rows:
        text = (out / r["log"]).read_text()
        assert r["log"] == f"logs/{int(r['job_id']):06d}.log" and "EVAL-OUT 0\n" in text and "EVAL-OUT 39\n" in text
        if r["p:mode"] == "raise":
            assert r["error"].startswith("KeyError") and "EVAL-ERR last words" in r["error"]
            assert "EVAL-OUT 0\n" not in r["error"] and "KeyError: 'boom'" in text


# A training of `budget` steps that continues from its checkpoint; each evaluation sleeps {sleep} s.
STEPS = """
import time

from ambs import Problem

problem = Problem(name="steps")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.set_budget(1, 3, "steps")
problem.add_metadata("start")


def run(config, budget, report):
    start = 0
    if report.checkpoint is not None and report.checkpoint.exists():
        start = int(report.checkpoint.read_text())
    time.sleep({sleep})
    for step in range(start + 1, int(budget) + 1):
        report(step, config["x"] * step)
    if report.checkpoint is not None:
        report.checkpoint.write_text(str(int(budget)))
    return {{"objective": config["x"] * int(budget), "start": start}}
"""


@pytest.mark.parametrize("evaluator", [p for p in EVERY if "checkpoints" in ABILITIES[p.values[0]]])
def test_a_promotion_continues_from_its_checkpoint_and_reports_each_step(evaluator, tmp_path, launch):
    """Successive halving at budgets 1 and 3 on one worker (with more, a new
    bracket fills the barrier's wait): the promoted configuration finds
    the checkpoint its budget-1 training wrote and trains steps 2 and 3 only;
    every step reported is in curves.csv (where the evaluator sends reports);
    the checkpoints are gone once the run is complete."""
    problem = tmp_path / "steps.py"
    problem.write_text(STEPS.format(sleep=0))
    out = tmp_path / "run"
    proc = launch(problem, out, "--method", "sha", "--seed", "0", "--max-evals", "4", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert sorted(float(r["budget"]) for r in rows) == [1, 1, 1, 3]
    assert {r["m:start"] for r in rows if float(r["budget"]) == 1} == {"0"}
    (top,) = [r for r in rows if float(r["budget"]) == 3]
    assert top["m:start"] == "1", "the promotion retrained from scratch"
    assert not (out / "checkpoints").exists()
    if "reports" in ABILITIES[evaluator]:
        from ambs.reports import read_curves

        steps = sorted((job, step) for job, step, _, _ in read_curves(out / "curves.csv"))
        first = [(int(r["job_id"]), 1.0) for r in rows if float(r["budget"]) == 1]
        assert steps == sorted(first + [(int(top["job_id"]), 2.0), (int(top["job_id"]), 3.0)])


def test_the_options_of_each_evaluator_come_from_its_constructor():
    """What the command line may pass each evaluator (``ambs.evaluator.evaluator_options``)."""
    from ambs.evaluator import evaluator_options

    takes = {name: set(evaluator_options(name)) for name in [*EVALUATORS, *SIMULATED]}
    assert {"log_dir"} <= takes["serial"]
    assert {"gpus", "share_gpus", "log_dir", "workers", "eval_timeout", "eval_memory"} <= takes["process"]
    assert {"gpus_per_node", "share_gpus", "log_dir", "eval_timeout", "eval_memory"} <= takes["mpi"]
    assert "gpus" not in takes["mpi"] and "gpus_per_node" not in takes["process"]
    assert all(("log_dir" in takes[n]) == ("logs" in ABILITIES[n]) for n in takes)
