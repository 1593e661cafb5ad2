"""Faults end to end on the process evaluator: objectives that misbehave, stop
signals, the master killed at random moments, a results CSV that cannot be
written, and bad input. Each must leave a CSV that says what happened, and a
run that ``--resume`` continues without losing or repeating an evaluation.
Those parametrized over EVALUATORS run on the serial and MPI evaluators too
(MPI: ``mpiexec -n 3``; tests/test_mpi_faults.py has the MPI-only ones)."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import resource
import shlex
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from ambs.evaluator.process import ProcessEvaluator
from ambs.result import Job, Status, normalize_output
from tests.fault_problems import (
    BIG_FIELDS,
    EMPTY_CHOICES,
    EXPECTED,
    FAULT_OPTIONS,
    FORKER,
    UNWRITABLE,
    UNWRITABLE_EXPECTED,
    check_fault_rows,
    marked_processes,
    rank_pid,
    write_faults,
    write_ledger,
    write_module,
    write_spawns,
)
from tests.test_cli import check_error_line

# ------------------------------------------------------------ misbehaving objectives


@pytest.mark.slow
def test_every_fault_is_recorded_and_the_workers_go_on(tmp_path, ambs_cli, rows):
    path = write_faults(tmp_path)
    n = 2 * len(EXPECTED)
    res = ambs_cli.run("search", path.name, *FAULT_OPTIONS, "--workers", "2", "--max-evals", str(n),
                       "-o", "run", "-q", cwd=tmp_path, timeout=180)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    table = rows(tmp_path / "run" / "results.csv")
    check_fault_rows(table)
    assert f"evaluations: {n} in run/results.csv" in res.stdout
    # Both workers took jobs after the first crash: each crash cost a process, not a worker.
    first_crash = min(float(r["finished"]) for r in table if r["status"] == "crashed")
    later = {r["worker"] for r in table if float(r["started"]) > first_crash}
    assert later == {"1", "2"}


@pytest.mark.parametrize(
    "value, words",
    [
        (np.array([0.5]), "array of shape (1,)"),
        (np.array([[1.0, 2.0]]), "array of shape (1, 2)"),
        ([0.5], "run returned [0.5], not a number"),
        ((0.5,), "run returned (0.5,), not a number"),
        (1 + 2j, "not a number"),
        (b"1.0", "not a number"),
        ({"objective": np.array([[1.0, 2.0]])}, "array of shape (1, 2)"),
        ({"objective": None, "seconds": 3}, "run returned None"),
    ],
)
def test_wrong_shapes_and_types_are_failures(value, words):
    objective, status, error, _ = normalize_output(value)
    assert status is Status.FAILED and math.isnan(objective)
    assert words in error


def test_scalars_of_any_kind_are_objectives():
    assert normalize_output(np.float32(0.25))[:2] == (0.25, Status.OK)
    assert normalize_output(np.array(0.5))[:2] == (0.5, Status.OK)
    assert normalize_output(np.int64(3))[:2] == (3.0, Status.OK)


SPAWNER = """
import os
import subprocess
import time
from pathlib import Path

from ambs import Problem

problem = Problem(name="spawner")
problem.add_hyperparameter(["hang", "abort", "terminate"], "mode")


def run(config):
    # A training that runs in a subprocess (or has data-loader workers).
    child = subprocess.Popen(["sleep", "300"])
    if config["mode"] == "terminate":  # the evaluation stops its own subprocess
        child.terminate()
        return float(child.wait(timeout=10))
    Path(config["mode"] + ".pid").write_text(str(child.pid))
    if config["mode"] == "abort":
        time.sleep(0.2)
        os.abort()
    time.sleep(600)
"""


def _gone(pid: int) -> bool:
    """The process no longer runs (a zombie left for init to reap counts as gone)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _drain(pool: ProcessEvaluator, n: int, limit: float = 60) -> list:
    """The next ``n`` evaluations the pool finishes."""
    evs: list = []
    deadline = time.monotonic() + limit
    while len(evs) < n and time.monotonic() < deadline:
        evs += pool.wait(1.0)
    assert len(evs) == n, evs
    return evs


@pytest.mark.slow
def test_timeout_and_crash_also_end_the_processes_an_evaluation_started(tmp_path, monkeypatch):
    (tmp_path / "spawner.py").write_text(SPAWNER.lstrip())
    monkeypatch.chdir(tmp_path)
    pool = ProcessEvaluator("spawner.py", time.time(), eval_timeout=1.5, workers=2)
    try:
        pool.submit(Job(0, {"mode": "hang"}))
        pool.submit(Job(1, {"mode": "abort"}))
        evs = _drain(pool, 2)
        assert sorted((e.job_id, e.status) for e in evs) == [(0, Status.TIMEOUT), (1, Status.CRASHED)]
        # Stop signals the worker ignores are not ignored by what an evaluation starts.
        pool.submit(Job(2, {"mode": "terminate"}))
        [ev] = _drain(pool, 1)
        assert ev.status is Status.OK and ev.objective == -signal.SIGTERM, ev.error
        for mode in ("hang", "abort"):
            pid = int((tmp_path / f"{mode}.pid").read_text())
            for _ in range(50):
                if _gone(pid):
                    break
                time.sleep(0.1)
            assert _gone(pid), f"the subprocess of the {mode} evaluation outlived it"
    finally:
        pool.cancel()
        pool.close()


def test_eval_memory_must_be_positive(tmp_path, make_problem):
    with pytest.raises(ValueError, match="at least 1 MB"):
        ProcessEvaluator(str(make_problem("quadratic")), time.time(), workers=1, eval_memory=0)


# ------------------------------------------------------------------- stop signals

STOPPABLE = """
import time
from pathlib import Path

from ambs import Problem

problem = Problem(name="stoppable")
problem.add_hyperparameter((0.0, 1.0), "x")


def run(config):
    # Fast until the test creates `slow`; then long enough to need cancelling.
    time.sleep(60 if Path("slow").exists() else {sleep})
    return config["x"]
"""


def _wait_rows(csv_path: Path, n: int, proc: subprocess.Popen, limit: float = 90) -> int:
    """Block until the CSV holds at least ``n`` rows; returns how many it holds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the search ended early: {proc.communicate()[1]}")
        if csv_path.exists():
            got = csv_path.read_text().count("\n") - 1
            if got >= n:
                return got
        time.sleep(0.05)
    pytest.fail(f"fewer than {n} rows within {limit} s")


def _wait_settled(csv_path: Path, quiet: float = 1.0, limit: float = 30) -> None:
    """Block until the CSV has not grown for ``quiet`` seconds."""
    size, since, deadline = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        now = csv_path.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)
    pytest.fail(f"the CSV kept growing for {limit} s")


@pytest.mark.slow
@pytest.mark.parametrize(
    "signals, grace, finish",
    [
        pytest.param(["SIGTERM"], 30, True, id="SIGTERM-running-finish"),
        pytest.param(["SIGUSR1"], 0.5, False, id="SIGUSR1-grace-expires"),
        pytest.param(["SIGINT", "SIGINT"], 60, False, id="second-SIGINT-cancels-at-once"),
    ],
)
def test_stop_signal_on_the_process_evaluator(signals, grace, finish, tmp_path, ambs_cli, rows):
    (tmp_path / "stoppable.py").write_text(STOPPABLE.format(sleep=0.5 if finish else 0.1).lstrip())
    csv_path = tmp_path / "run" / "results.csv"
    proc = ambs_cli.popen("search", "stoppable.py", "--method", "random", "--workers", "2",
                          "--max-evals", "500", "--grace", str(grace), "--seed", "1", "-o", "run", "-q",
                          cwd=tmp_path)
    try:
        _wait_rows(csv_path, 3, proc)
        if not finish:
            (tmp_path / "slow").touch()
            _wait_settled(csv_path)  # the fast evaluations in flight are written; slow ones run
        before = rows(csv_path)
        t = time.monotonic()
        for name in signals:
            proc.send_signal(getattr(signal, name))
            time.sleep(0.3)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"stopped by signal {signals[0]}" in out
    text = csv_path.read_text()
    assert text.endswith("\n")
    after = rows(csv_path)
    assert after[: len(before)] == before
    assert all(r["status"] == "ok" for r in after)  # nothing cancelled is written
    if finish:
        # The evaluations running at the signal finished within the grace period.
        assert len(after) > len(before)
        assert "cancelled" not in out
    else:
        assert len(after) == len(before)
        assert "2 running evaluation(s) cancelled" in out
        assert took < 15
    if signals != ["SIGUSR1"]:
        return
    # The run continues where it stopped; what was cancelled is not counted.
    (tmp_path / "slow").unlink()
    res = ambs_cli.run("search", "stoppable.py", "--method", "random", "--workers", "2",
                       "--max-evals", str(len(after) + 2), "--seed", "1", "-o", "run", "-q", "--resume",
                       cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    final = rows(csv_path)
    assert len(final) == len(after) + 2 and final[: len(after)] == after


# ------------------------------------------------ the master killed, then --resume


def _complete_rows(csv_path: Path) -> tuple[str, list[str]]:
    """The CSV's text up to its last newline, and its complete data lines."""
    if not csv_path.exists():
        return "", []
    text = csv_path.read_text()
    text = text[: text.rfind("\n") + 1]
    return text, text.splitlines()[1:]


def _key(line: str) -> str:
    """The configuration of a ledger CSV line (job_id,p:cat,p:n,...)."""
    cells = line.split(",")
    return f"{cells[1]},{cells[2]}"


def _executed(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.slow
def test_master_killed_at_random_moments_loses_and_repeats_nothing(tmp_path, ambs_cli, rows):
    """SIGKILL the master 5 times at seeded random moments, resume each time;
    every evaluation written before a kill stays, once, and never runs again."""
    write_ledger(tmp_path, sleep=0.08)
    log = tmp_path / "executed.log"
    csv_path = tmp_path / "run" / "results.csv"
    rng = random.Random(20261123)
    max_evals = 50
    args = ["search", "ledger.py", "--workers", "2", "--max-evals", str(max_evals), "--seed", "7",
            "-o", "run", "-q"]
    written: dict[str, str] = {}  # CSV line -> its configuration, for every line seen after a kill
    trials = lost = repeated = 0
    prefix = ""
    warned = half_lines = 0
    for trial in range(6):
        resume = ["--resume"] if (tmp_path / "run" / "run.json").exists() else []
        n_before = len(_executed(log))
        proc = ambs_cli.popen(*args, *resume, cwd=tmp_path)
        killed = False
        try:
            if trial < 5:
                # Kill while evaluations finish, or while the program is still starting.
                if rng.random() < 0.8:
                    _wait_rows(csv_path, len(_complete_rows(csv_path)[1]) + 1, proc)
                    time.sleep(rng.uniform(0.0, 0.8))
                else:
                    time.sleep(rng.uniform(0.2, 1.5))
                if proc.poll() is None:
                    proc.kill()
                    killed = True
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        trials += killed
        if not killed:
            assert proc.returncode == 0, err
        warned += "dropped a half-written last line" in err
        assert "Traceback" not in err
        # Evaluations written before this run that ran again in it.
        again = _executed(log)[n_before:]
        repeated += sum(1 for k in again if k in set(written.values()))
        text, lines = _complete_rows(csv_path)
        assert text.startswith(prefix), "rows written before a kill were rewritten"
        prefix = text
        written.update({line: _key(line) for line in lines})
        if killed and trial % 2 == 0 and lines:
            with open(csv_path, "a") as fh:
                fh.write(f"{900 + trial},b,")  # a kill in the middle of writing a row
            half_lines += 1
    final = _complete_rows(csv_path)[1]
    lost = sum(1 for line in written if line not in final)
    keys = [_key(line) for line in final]
    repeated += len(keys) - len(set(keys))
    print(f"kill trials: {trials}, lost: {lost}, repeated: {repeated}")
    assert trials >= 4
    assert warned == half_lines >= 1  # each half-written line was dropped, with a warning
    assert lost == 0 and repeated == 0
    table = rows(csv_path)
    assert len(table) == max_evals == len({r["job_id"] for r in table})
    assert set(keys) <= set(_executed(log))  # each row was really run


# ------------------------------------------------- a results CSV that cannot be written

BIG_ROWS = """
import time

from ambs import Problem

problem = Problem(name="bigrows")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_metadata("blob")


def run(config):
    time.sleep(0.01)
    return {"objective": config["x"], "blob": "z" * 6000}
"""


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(size) -> Path``: a tiny tmpfs (tests run as root), unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here to fill a disk ({res.stderr.strip() or res.returncode})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _check_write_error(res: subprocess.CompletedProcess, words: str) -> None:
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    check_error_line(res.stderr, [words, "the search stops"])


def _resume_after(run_dir: Path, tmp_path: Path, ambs_cli, rows, more: int, **kw) -> None:
    """Resume a run that stopped on a write error, now that it can be written."""
    text = (run_dir / "results.csv").read_text()
    partial = not text.endswith("\n")
    kept = rows(run_dir / "results.csv")[: text.count("\n") - 1]
    assert kept, "no row was written before the disk filled"
    res = ambs_cli.run("search", "bigrows.py", "--method", "random", "--evaluator", "serial", "-q",
                       "--max-evals", str(len(kept) + more), "-o", str(run_dir), "--resume", cwd=tmp_path, **kw)
    assert res.returncode == 0, res.stderr
    assert ("dropped a half-written last line" in res.stderr) == partial
    final = rows(run_dir / "results.csv")
    assert len(final) == len(kept) + more and final[: len(kept)] == kept


@pytest.mark.slow
def test_disk_full_stops_with_one_line_and_resume_continues(tmp_path, tmpfs, ambs_cli, rows):
    disk = tmpfs("64k")
    (tmp_path / "bigrows.py").write_text(BIG_ROWS.lstrip())
    res = ambs_cli.run("search", "bigrows.py", "--method", "random", "--workers", "1", "--max-evals", "100",
                       "-o", str(disk / "run"), "-q", cwd=tmp_path)
    _check_write_error(res, "No space left on device")
    assert "evaluations:" not in res.stdout  # no report of a run that did not finish cleanly
    subprocess.run(["mount", "-o", "remount,size=2m", str(disk)], check=True)
    _resume_after(disk / "run", tmp_path, ambs_cli, rows, more=3)


@pytest.mark.slow
def test_file_size_limit_stops_with_one_line(tmp_path, ambs_cli, rows):
    """RLIMIT_FSIZE makes writes fail (EFBIG) past a size: a disk quota, mid-run."""
    (tmp_path / "bigrows.py").write_text(BIG_ROWS.lstrip())

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, resource.RLIM_INFINITY))

    res = subprocess.run(ambs_cli.command("search", "bigrows.py", "--method", "random", "--evaluator",
                                          "serial", "--max-evals", "100", "-o", "run", "-q"),
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ambs_cli.env,
                         preexec_fn=limit)
    _check_write_error(res, "File too large")
    _resume_after(tmp_path / "run", tmp_path, ambs_cli, rows, more=2)


def test_dev_full_stops_at_the_header(tmp_path, ambs_main, make_problem, capfd):
    make_problem("quadratic")
    (tmp_path / "run").mkdir()
    os.symlink("/dev/full", tmp_path / "run" / "results.csv")
    assert ambs_main("search", "quadratic.py", "--evaluator", "serial", "--max-evals", "5",
                     "-o", "run", "-q") == 1
    check_error_line(capfd.readouterr().err, ["cannot write run/results.csv", "No space left on device"])


@pytest.mark.parametrize("resume", [False, True], ids=["new-run", "resume"])
def test_read_only_run_directory(resume, tmp_path, tmpfs, ambs_main, make_problem, capfd):
    make_problem("quadratic")
    disk = tmpfs("1m")
    common = ["search", "quadratic.py", "--evaluator", "serial", "--method", "random", "-o", str(disk), "-q"]
    if resume:
        assert ambs_main(*common, "--max-evals", "3") == 0
        with open(disk / "results.csv", "a") as fh:
            fh.write("3,0.5,")  # resume has a half-written line to cut off
    before = sorted(p.name for p in disk.iterdir())
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    capfd.readouterr()
    code = ambs_main(*common, "--max-evals", "6", *(["--resume"] if resume else []))
    assert code == 1
    check_error_line(capfd.readouterr().err, ["cannot", "Read-only file system"])
    assert sorted(p.name for p in disk.iterdir()) == before


# ------------------------------------------------------------------- bad input

BAD_MODULES = {
    "syntaxerror": "def run(config:\n    return 1\n",
    "notaproblem": "problem = 42\n\ndef run(config):\n    return 1.0\n",
    "logzero": (
        "from ambs import Problem\nproblem = Problem()\n"
        "problem.add_hyperparameter((0.0, 1.0, 'log-uniform'), 'lr')\n\ndef run(config):\n    return 1.0\n"
    ),
    "emptychoices": (
        "from ambs import Problem\nproblem = Problem()\n"
        "problem.add_hyperparameter([], 'act')\n\ndef run(config):\n    return 1.0\n"
    ),
    "twice": (
        "from ambs import Problem\nproblem = Problem()\nproblem.add_hyperparameter((0, 5), 'n')\n"
        "problem.add_hyperparameter((0, 9), 'n')\n\ndef run(config):\n    return 1.0\n"
    ),
    "unknownparent": (
        "from ambs import Problem\nproblem = Problem()\nproblem.add_hyperparameter((0.0, 1.0), 'x')\n"
        "problem.add_condition('x', 'opt', 'sgd')\n\ndef run(config):\n    return 1.0\n"
    ),
    "empty": "from ambs import Problem\nproblem = Problem()\n\ndef run(config):\n    return 1.0\n",
    "badstart": (
        "from ambs import Problem\nproblem = Problem()\nproblem.add_hyperparameter((0.0, 1.0), 'x')\n"
        "problem.add_starting_point(x=7.0)\n\ndef run(config):\n    return 1.0\n"
    ),
}

# case -> (arguments after `ambs`, words the one error line must contain).
BAD_INPUT: dict[str, tuple[list[str], list[str]]] = {
    "syntax-error": (["search", "syntaxerror.py"], ["SyntaxError", "line 1"]),
    "problem-not-a-problem": (["search", "notaproblem.py"], ["not an ambs.Problem"]),
    "log-range-from-zero": (["search", "logzero.py"], ["'lr'", "low > 0"]),
    "no-choices": (["search", "emptychoices.py"], ["'act'", "empty"]),
    "declared-twice": (["search", "twice.py"], ["'n'", "declared twice"]),
    "condition-unknown-parent": (["search", "unknownparent.py"], ["unknown hyperparameter 'opt'"]),
    "no-hyperparameters": (["search", "empty.py"], ["no hyperparameters"]),
    "starting-point-outside": (["search", "badstart.py"], ["starting point"]),
    "eval-memory-0": (["search", "quadratic.py", "--eval-memory", "0"], ["--eval-memory", "at least 1"]),
    "eval-memory-text": (["search", "quadratic.py", "--eval-memory", "4GB"], ["--eval-memory", "whole number"]),
    "eval-memory-serial": (["search", "quadratic.py", "--evaluator", "serial", "--eval-memory", "100"],
                           ["--eval-memory", "--evaluator process"]),
    "eval-timeout-0": (["search", "quadratic.py", "--eval-timeout", "0"], ["--eval-timeout", "more than 0"]),
    "xi-nan": (["search", "quadratic.py", "--xi", "nan"], ["--xi", "finite"]),
    "kappa-inf": (["search", "quadratic.py", "--kappa", "inf"], ["--kappa", "finite"]),
    "threads-0": (["search", "quadratic.py", "--threads-per-worker", "0"], ["--threads-per-worker"]),
    "n-initial-0": (["search", "quadratic.py", "--n-initial-points", "0"], ["--n-initial-points"]),
    "gpus-without-mpi": (["search", "quadratic.py", "--gpus-per-node", "2"], ["--gpus-per-node", "mpi"]),
    "unknown-evaluator": (["search", "quadratic.py", "--evaluator", "ray"], ["--evaluator", "invalid choice"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line(case, ambs_main, tmp_path, make_problem, capfd):
    for name, source in BAD_MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    make_problem("quadratic")
    args, words = BAD_INPUT[case]
    assert ambs_main(*args) == 2
    check_error_line(capfd.readouterr().err, words)
    assert not (tmp_path / "runs").exists()  # a refused search leaves no run directory


def _held_run(ambs_main, make_problem) -> list[str]:
    make_problem("discrete")
    common = ["search", "discrete.py", "--evaluator", "serial", "--method", "random", "-o", "held", "-q"]
    assert ambs_main(*common, "--max-evals", "4") == 0
    return common


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda lines: lines[:2] + ["1,2,3"] + lines[2:], ["line 3: 3 fields, expected"]),
        (lambda lines: lines[:2] + [lines[2].replace(",b,", ",z,").replace(",a,", ",z,")
                                    .replace(",c,", ",z,")] + lines[3:], ["line 3: cannot parse row"]),
        (lambda lines: lines[:3] + [lines[3].replace(",ok,", ",exploded,")] + lines[4:],
         ["line 4: cannot parse row"]),
        (lambda lines: ["a,b,c"] + lines[1:], ["other columns"]),
    ],
    ids=["short-row", "value-not-in-space", "unknown-status", "foreign-header"],
)
def test_resume_from_a_malformed_csv_is_one_line(damage, words, ambs_main, make_problem, capfd, tmp_path):
    common = _held_run(ambs_main, make_problem)
    path = tmp_path / "held" / "results.csv"
    damaged = "\n".join(damage(path.read_text().splitlines())) + "\n"
    path.write_text(damaged)
    capfd.readouterr()
    assert ambs_main(*common, "--max-evals", "8", "--resume") == 2
    check_error_line(capfd.readouterr().err, ["cannot resume" if "columns" in words[0] else "held", *words])
    assert path.read_text() == damaged  # a refused resume leaves the CSV as it was


# ------------------------------------------------------------------ job scripts

# option -> a value that would end its #SBATCH/#PBS line and start a shell line.
INJECTIONS: dict[str, list[str]] = {
    "job-name": ["--job-name", "x\ntouch INJECTED"],
    "account": ["--account", "proj\ntouch INJECTED"],
    "queue": ["--queue", "q\rtouch INJECTED"],
    "output": ["--output", "run\ntouch INJECTED"],
    "walltime": ["--walltime", "01:00:00\n"],
    "account-space": ["--account", "proj touch"],
}


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_job_script_values_cannot_inject_lines(case, scheduler, ambs_main, make_problem, capfd, tmp_path):
    make_problem("quadratic")
    args = {"--walltime": "01:00:00"}
    args.update(dict(zip(INJECTIONS[case][::2], INJECTIONS[case][1::2])))
    code = ambs_main("submit", "quadratic.py", "--scheduler", scheduler, "--ranks-per-node", "2",
                     "--dry-run", *[x for kv in args.items() for x in kv])
    out, err = capfd.readouterr()
    assert code == 2, out
    check_error_line(err, [INJECTIONS[case][0] if case != "job-name" else "--job-name",
                           "control character" if case != "account-space" else "one word"])
    assert "INJECTED" not in out and not (tmp_path / "INJECTED").exists()


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_job_name_from_the_problem_cannot_inject_lines(scheduler, ambs_main, write_module, capfd):
    write_module("named", """
        from ambs import Problem
        problem = Problem(name="x\\ntouch INJECTED")
        problem.add_hyperparameter((0.0, 1.0), "x")
        def run(config):
            return config["x"]
    """)
    # Not a dry run: that one loads nothing of the problem; here the values are checked before submitting.
    code = ambs_main("submit", "named.py", "--scheduler", scheduler, "--ranks-per-node", "2",
                     "--walltime", "01:00:00")
    out, err = capfd.readouterr()
    assert code == 2, out
    check_error_line(err, ["job name", "Problem name", "control character"])


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_job_script_quotes_paths_and_values(scheduler, tmp_path, monkeypatch):
    """An installation path with a space, a problem and working directory full
    of shell syntax, a node file path with a space: the job script passes each
    as one word, and runs none of it."""
    from ambs import submit as sub

    bindir = tmp_path / "an install" / "bin"
    bindir.mkdir(parents=True)
    log = tmp_path / "argv.txt"
    stub = bindir / "ambs"
    stub.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {shlex.quote(str(log))}\n')
    mpi = bindir / "mpiexec"  # drops -n N and --hostfile FILE, runs the rest
    mpi.write_text('#!/bin/bash\nwhile [ "$1" = -n ] || [ "$1" = --hostfile ]; do\n'
                   '  if [ "$1" = --hostfile ]; then [ -f "$2" ] || exit 9; fi; shift 2\ndone\nexec "$@"\n')
    for p in (stub, mpi):
        p.chmod(0o755)
    # The job runs the ambs and mpiexec beside the interpreter that renders it.
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    weird = tmp_path / "w $(touch INJECTED1); `touch INJECTED2` 'q\" $HOME"
    weird.mkdir()
    problem = weird / "p $(touch INJECTED3).py"
    spec = sub.JobSpec(scheduler=scheduler, problem=str(problem), run_dir=tmp_path / "run", workdir=weird,
                       nodes=1, ranks_per_node=2, walltime="01:00:00", method="random",
                       search_args=["--seed", "1; touch INJECTED4"], job_name="ok-name")
    script = tmp_path / "job.sh"
    script.write_text(sub.render(spec))
    nodefile = tmp_path / "node file"
    nodefile.write_text("localhost\nlocalhost\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PBS_"))}
    env.update(SLURM_NTASKS="2", PBS_NODEFILE=str(nodefile))
    job = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert job.returncode == 0, job.stderr + job.stdout
    assert log.read_text().splitlines() == [
        "search", str(problem), "--method", "random", "--max-evals", "100", "--evaluator", "mpi",
        "--output", str(tmp_path / "run"), "--walltime", "3480", "--grace", "60",
        "--seed", "1; touch INJECTED4"]
    assert not list(tmp_path.rglob("INJECTED*")), "the job script ran a value as a command"


# ------------------------------------------------- results the master must write and read back

MPI = pytest.param("mpi", marks=pytest.mark.mpi)  # skipped (or failed under CI) without mpiexec
EVALUATORS = ["serial", "process", MPI]


class OnEvaluator:
    """``ambs`` on one evaluator: ``--evaluator`` added, and two workers where
    it takes them: ``--workers 2``, or under MPI ``mpiexec -n 3`` (a master
    rank and two worker ranks)."""

    def __init__(self, cli, name: str) -> None:
        self.cli, self.name = cli, name
        self.ranks = 3 if name == "mpi" else None

    def args(self, *args: str) -> list[str]:
        return [*args, "--evaluator", self.name, *(["--workers", "2"] if self.name == "process" else [])]

    def run(self, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.cli.run(*self.args(*args), cwd=cwd, timeout=timeout, ranks=self.ranks)

    def popen(self, *args: str, cwd: Path) -> subprocess.Popen:
        return self.cli.popen(*self.args(*args), cwd=cwd, ranks=self.ranks)

    def master_pid(self, proc: subprocess.Popen, cwd: Path) -> int:
        """The PID of the search's master, which holds the run's lock: ``proc``
        itself, or under MPI its rank 0 (``proc`` is mpiexec)."""
        if self.ranks is None:
            return proc.pid
        deadline = time.monotonic() + 30
        while (pid := rank_pid(cwd, 0)) is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert pid is not None, "rank 0 not found"
        return pid


@pytest.fixture
def on(evaluator, ambs_cli) -> OnEvaluator:
    """The ``ambs`` command on the evaluator the test is parametrized with."""
    return OnEvaluator(ambs_cli, evaluator)


def _search(on: OnEvaluator, tmp_path: Path, module: str, n: int, *extra: str):
    """``ambs search`` of ``module`` (grid order) on ``on``'s evaluator, into tmp_path/run."""
    return on.run("search", module, "--method", "grid", "--max-evals", str(n), "-o", "run", "-q", *extra,
                  cwd=tmp_path)


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_huge_fields_are_cut_and_read_back(evaluator, on, tmp_path, ambs_cli, rows):
    write_module(tmp_path, "bigfields", BIG_FIELDS)
    res = _search(on, tmp_path, "bigfields.py", 4)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    res = _search(on, tmp_path, "bigfields.py", 6, "--resume")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    from ambs.recorder import MAX_CELL_CHARS, MAX_ERROR_CHARS

    table = rows(tmp_path / "run" / "results.csv")
    assert len(table) == 6
    for r in table:
        assert all(len(v) <= MAX_CELL_CHARS for v in r.values())
        if r["p:mode"] == "raise":
            assert r["status"] == "failed" and r["error"].startswith("RuntimeError: xxx")
            assert len(r["error"]) <= MAX_ERROR_CHARS and "[cut: " in r["error"]
        else:
            assert r["status"] == "ok"
            assert "[cut: " in (r["m:blob"] if r["p:mode"] == "meta" else r["m:extra"])
    res = ambs_cli.run("analyze", "summary", "run", cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    # A CSV written before the cap, with a 200 KB cell, reads too.
    path = tmp_path / "run" / "results.csv"
    header, *lines = path.read_text().splitlines(keepends=True)
    row = next(i for i, r in enumerate(table) if r["p:mode"] == "raise")
    lines[row] = lines[row].replace(table[row]["error"], "RuntimeError: " + "x" * 200_000)
    path.write_text(header + "".join(lines))
    for res in (_search(on, tmp_path, "bigfields.py", 7, "--resume"),
                ambs_cli.run("analyze", "summary", "run", cwd=tmp_path)):
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert len(path.read_text().splitlines()) == 1 + 6  # the grid of 6 is done


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_results_the_master_cannot_write_are_rows(evaluator, on, tmp_path, rows):
    write_module(tmp_path, "unwritable", UNWRITABLE)
    res = _search(on, tmp_path, "unwritable.py", 4)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    table = rows(tmp_path / "run" / "results.csv")
    assert sorted(r["p:mode"] for r in table) == sorted(UNWRITABLE_EXPECTED)
    for r in table:
        status, words = UNWRITABLE_EXPECTED[r["p:mode"]][evaluator]
        assert r["status"] == status, r
        assert all(w in r["error"] for w in words), r
        assert (r["objective"] != "") == (status == "ok"), r
        if not words:
            assert r["error"] == "", r
    assert json.loads(next(r for r in table if r["p:mode"] == "mixedkeys")["m:extra"]) == {
        "other": {"1": "a", "b": 2}}
    # Everything was recorded: a resume runs none of it again.
    res = _search(on, tmp_path, "unwritable.py", 8, "--resume")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert rows(tmp_path / "run" / "results.csv") == table


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_empty_string_values_and_inactive_ones_read_back_apart(evaluator, on, tmp_path, ambs_cli, rows):
    write_module(tmp_path, "emptychoices", EMPTY_CHOICES)
    for n, extra in ((6, []), (12, ["--resume"])):
        res = _search(on, tmp_path, "emptychoices.py", n, *extra)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    from ambs.cells import hp_text

    table = rows(tmp_path / "run" / "results.csv")
    seen = [(hp_text(r["p:s"]), r["p:opt"], None if r["p:sub"] == "" else hp_text(r["p:sub"])) for r in table]
    assert sorted(seen, key=repr) == sorted(
        [(s, "x", None) for s in ("", "a", '""', '"')]
        + [(s, "y", sub) for s in ("", "a", '""', '"') for sub in ("", "b")], key=repr)
    for r, (s, _, sub) in zip(table, seen):  # each value reached run as itself
        assert float(r["objective"]) == len(s) + len("zz" if sub is None else sub), r
    res = ambs_cli.run("analyze", "summary", "run", cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr


# Faults that a serial evaluator survives as well as a process or an MPI one.
IN_PROCESS_FAULTS = ["ok", "raise", "huge", "badfloat", "badeverything", "nan", "none", "string", "nokey",
                     "exit", "exitnone"]


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_objectives_that_break_float_and_sys_exit_are_failures(evaluator, on, tmp_path, rows):
    path = write_faults(tmp_path, IN_PROCESS_FAULTS)
    res = _search(on, tmp_path, path.name, 2 * len(IN_PROCESS_FAULTS), "--seed", "0")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    check_fault_rows(rows(tmp_path / "run" / "results.csv"), IN_PROCESS_FAULTS)


# ------------------------------------------------------------ checkpoints


class _Planted:
    """Unpickling it would create a file: what a tampered checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_with_more_than_weights_is_refused(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from ambs.nas.morph import checkpoint_key, load_checkpoint

    # torch before 2.6 unpickled anything by default: ambs must ask for weights only itself.
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, weights_only=False, **k: real(*a, weights_only=weights_only, **k))

    config = {"layers": 2}
    marker = tmp_path / "code-ran"
    torch.save({"w": torch.zeros(2), "payload": _Planted(marker)}, tmp_path / f"{checkpoint_key(config)}.pt")
    with pytest.raises(ValueError, match="refusing checkpoint .* more than weights"):
        load_checkpoint(tmp_path, config)
    assert not marker.exists(), "loading the checkpoint ran code"
    torch.save({"w": torch.ones(2)}, tmp_path / f"{checkpoint_key(config)}.pt")
    assert load_checkpoint(tmp_path, config)["w"].tolist() == [1.0, 1.0]


# ------------------------------------------------------------ balsam_site


def test_balsam_site_exports_survive_eval(tmp_path, monkeypatch, capsys):
    """What `python -m ambs.evaluator.balsam_site` prints is `eval`ed by the
    README: a database path with a space, a `$` and backquotes stays itself."""
    from ambs.evaluator import balsam_site

    monkeypatch.setattr(balsam_site, "migrate", lambda env: None)  # no PostgreSQL here
    db = tmp_path / "db $HOME `touch INJECTED` $(touch INJECTED2) it's"
    conn = tmp_path / "conn.json"
    conn.write_text(json.dumps({"host": "localhost", "port": 5432, "user": "ba lsam$USER", "password": "pw"}))
    assert balsam_site.main([str(db), "--connection", str(conn)]) == 0
    out = capsys.readouterr().out
    shell = subprocess.run(["bash", "-c", 'eval "$1"; printf "%s\\n" "$BALSAM_DB_PATH" "$BALSAM_USER"', "_", out],
                           cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines() == [str(db), "ba lsam$USER"]
    assert not list(tmp_path.glob("INJECTED*"))


# ------------------------------------------------------------ starting the workers


def test_no_more_workers_than_evaluations(tmp_path, ambs_cli, rows, make_problem):
    make_problem("quadratic")
    # (6, not 100000: were the cap missing, this test would start what it asks for.)
    res = ambs_cli.run("search", "quadratic.py", "--workers", "6", "--max-evals", "2", "-o", "run",
                       cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "on 2 process worker(s)" in res.stderr
    assert {r["worker"] for r in rows(tmp_path / "run" / "results.csv")} <= {"1", "2"}


@pytest.mark.parametrize("nproc", [None, 40], ids=["cpu-multiple", "rlimit-nproc"])
def test_absurd_worker_counts_are_refused(nproc, tmp_path, ambs_cli, make_problem):
    from ambs.evaluator.process import WORKERS_PER_CPU

    make_problem("quadratic")
    workers = 50 if nproc else WORKERS_PER_CPU * (os.cpu_count() or 1) + 1

    def limit() -> None:
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, resource.getrlimit(resource.RLIMIT_NPROC)[1]))

    res = subprocess.run(ambs_cli.command("search", "quadratic.py", "--workers", str(workers), "--max-evals",
                                          "1000", "-o", "run", "-q"),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, env=ambs_cli.env,
                         preexec_fn=limit)
    assert res.returncode == 2
    check_error_line(res.stderr, [f"--workers {workers}", "RLIMIT_NPROC" if nproc else "per CPU core"])
    assert not (tmp_path / "run").exists()


DIES_IN_WORKERS = """
import multiprocessing
import os

from ambs import Problem

if multiprocessing.current_process().name.startswith("ambs-worker"):
    os._exit(7)  # loads in the master, not in a worker (a missing GPU, a module only the login node has)
problem = Problem(name="diesinworkers")
problem.add_hyperparameter((0.0, 1.0), "x")


def run(config):
    return config["x"]
"""


@pytest.mark.parametrize("how", ["worker-dies-loading", "fork-refused"])
def test_a_failed_start_leaves_no_run_directory(how, tmp_path, ambs_main, make_problem, monkeypatch, capfd):
    from ambs.evaluator import process

    if how == "fork-refused":
        module = make_problem("quadratic").name

        def refuse(self, slot):
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

        monkeypatch.setattr(process.ProcessEvaluator, "_start", refuse)
        words = ["cannot start 2 process worker(s)", os.strerror(errno.EAGAIN)]
    else:
        module = write_module(tmp_path, "diesinworkers", DIES_IN_WORKERS).name
        words = ["died while loading the problem", "code 7"]
    assert ambs_main("search", module, "--workers", "2", "--max-evals", "4", "-o", "run", "-q") == 2
    check_error_line(capfd.readouterr().err, words)
    assert not (tmp_path / "run").exists(), "a failed start left a run directory behind"


@pytest.mark.parametrize("room", [0, 8192], ids=["no-room", "room-for-run-json"])
def test_a_new_run_that_cannot_be_written_is_undone(room, tmp_path, tmpfs, ambs_main, make_problem, capfd):
    """A full disk (or one with room for run.json, not the header): the run stops
    with one line, and leaves no half-made run directory behind."""
    make_problem("quadratic")
    disk = tmpfs("64k")
    with open(disk / "filler", "wb") as fh:  # fill the disk, then give back `room` bytes
        try:
            fh.write(b"x" * (128 * 1024))
        except OSError:
            pass
    with open(disk / "filler", "r+b") as fh:
        fh.truncate(max((disk / "filler").stat().st_size - room, 0))
    run = disk / "run"
    code = ambs_main("search", "quadratic.py", "--evaluator", "serial", "--max-evals", "3", "-o", str(run), "-q")
    check_error_line(capfd.readouterr().err, ["cannot write", "results.csv" if room else "run.lock",
                                              "No space left on device"])
    assert code == 1
    assert not run.exists(), sorted(p.name for p in run.iterdir())


# ------------------------------------------------- what run() starts ends with it


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_a_fork_in_run_is_not_a_second_search(evaluator, on, tmp_path, rows):
    """run() forks and both processes return: the child ends at once, so each
    job is one row and the search is not duplicated."""
    write_module(tmp_path, "forker", FORKER)
    res = on.run("search", "forker.py", "--method", "random", "--max-evals", "6", "--seed", "3", "-o", "run", "-q",
                 cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    table = rows(tmp_path / "run" / "results.csv")
    assert sorted(int(r["job_id"]) for r in table) == list(range(6)), [r["job_id"] for r in table]
    assert res.stdout.count("evaluations:") == 1, res.stdout


def _wait_gone(mark: str, limit: float = 5.0) -> list[int]:
    """The marked processes still alive after ``limit`` seconds (killed, so none leaks)."""
    deadline = time.monotonic() + limit
    while (left := marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_processes_run_started_end_with_the_search(evaluator, on, tmp_path, rows):
    """A sleep started with Popen and a forked child that ignores SIGTERM end
    when their evaluation ends: none is left once the search has finished."""
    path, mark = write_spawns(tmp_path)
    try:
        res = on.run("search", path.name, "--method", "random", "--max-evals", "3", "-o", "run", "-q",
                     cwd=tmp_path)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        assert len(rows(tmp_path / "run" / "results.csv")) == 3
    finally:
        left = _wait_gone(mark)
    assert not left, f"{len(left)} process(es) started by run() outlived the search"


@pytest.mark.slow
@pytest.mark.parametrize("evaluator", ["process", MPI])
def test_processes_run_started_end_when_the_master_is_killed(evaluator, on, tmp_path):
    """kill -9 of the master: the workers end, and so does what their evaluations
    started. Under MPI the master is rank 0: mpiexec then ends the worker ranks."""
    path, mark = write_spawns(tmp_path, sleep=30)
    proc = on.popen("search", path.name, "--method", "random", "--max-evals", "4", "-o", "run", "-q",
                    cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(marked_processes(mark)) < 4 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert len(marked_processes(mark)) >= 4
        os.kill(on.master_pid(proc, tmp_path), signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        left = _wait_gone(mark)
    assert not left, f"{len(left)} process(es) started by run() outlived the killed master"


# ------------------------------------------------- one search at a time per run directory


HELD = """
import time
from pathlib import Path

from ambs import Problem

problem = Problem(name="held")
problem.add_hyperparameter((0.0, 1.0), "x")


def run(config):
    time.sleep(0.05)
    while Path("hold").exists():  # the test holds the search here while it tries a second one
        time.sleep(0.05)
    return config["x"]
"""


def _sleepy_search(on: OnEvaluator, tmp_path: Path, n: int, *extra: str,
                   module: str = "sleepy.py") -> subprocess.Popen:
    return on.popen("search", module, "--method", "random", "--max-evals", str(n), "--seed", "5",
                    "-o", "run", "-q", *extra, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_a_second_search_on_a_run_in_use_is_refused(evaluator, on, tmp_path, rows):
    """A --resume started while the run goes on is refused in one line naming
    the holder; the run ends with its own rows only, and gives the lock back."""
    write_module(tmp_path, "held", HELD)
    csv_path = tmp_path / "run" / "results.csv"
    first = _sleepy_search(on, tmp_path, 40, module="held.py")
    try:
        _wait_rows(csv_path, 1, first)
        holder = on.master_pid(first, tmp_path)
        (tmp_path / "hold").touch()
        _wait_settled(csv_path)
        before = csv_path.read_bytes()
        res = on.run("search", "held.py", "--method", "random", "--max-evals", "40", "-o", "run", "-q",
                     "--resume", cwd=tmp_path)
        assert first.poll() is None, "the first search ended before the second one tried"
        assert csv_path.read_bytes() == before, "the refused search touched the CSV"
        (tmp_path / "hold").unlink()
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert res.returncode == 2
    check_error_line(res.stderr, ["is in use by another search", f"PID {holder}", "since"])
    assert first.returncode == 0, err
    table = rows(csv_path)
    assert sorted(int(r["job_id"]) for r in table) == list(range(40))
    assert not (tmp_path / "run" / "run.lock").exists(), "the lock outlived a normal exit"


@pytest.mark.slow
@pytest.mark.parametrize("evaluator", EVALUATORS)
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_lock_goes_away_with_its_holder(how, evaluator, on, tmp_path, make_problem, rows):
    """SIGTERM: the search stops and gives the lock back. kill -9: the lock
    stays, and --resume takes it over (its PID no longer runs) with one line.
    Under MPI the holder is rank 0 (not mpiexec), so the signal goes to it, and
    the lock names its PID."""
    make_problem("sleepy", sleep=0.2)
    csv_path = tmp_path / "run" / "results.csv"
    first = _sleepy_search(on, tmp_path, 100)
    try:
        _wait_rows(csv_path, 1, first)
        holder = on.master_pid(first, tmp_path)
        os.kill(holder, getattr(signal, how))
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert (tmp_path / "run" / "run.lock").exists() == (how == "SIGKILL")
    done = len(_complete_rows(csv_path)[1])
    res = on.run("search", "sleepy.py", "--method", "random", "--max-evals", str(done + 2), "-o", "run", "-q",
                 "--resume", cwd=tmp_path)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    notes = [line for line in res.stderr.splitlines() if "took over the lock" in line]
    if how == "SIGKILL":
        assert len(notes) == 1 and f"PID {holder} no longer runs" in notes[0], res.stderr
    else:
        assert not notes, res.stderr
    assert len(rows(csv_path)) == done + 2
    assert not (tmp_path / "run" / "run.lock").exists()


@pytest.mark.parametrize("age", [0, 10_000], ids=["fresh-heartbeat", "old-heartbeat"])
def test_a_lock_from_another_host(age, tmp_path, ambs_main, make_problem, capfd, rows):
    """Another node's lock is held while its heartbeat is fresh, taken over once
    it is older than the timeout (that node died)."""
    make_problem("quadratic")
    assert ambs_main("search", "quadratic.py", "--evaluator", "serial", "--max-evals", "2", "-o", "run", "-q") == 0
    lock = tmp_path / "run" / "run.lock"
    holder = {"host": "node-elsewhere-0042", "pid": 4242, "job": "123456.sched", "since": "2026-01-01T00:00:00"}
    lock.write_text(json.dumps(holder))
    os.utime(lock, (time.time() - age, time.time() - age))
    before = (tmp_path / "run" / "results.csv").read_bytes()
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = ambs_main("search", "quadratic.py", "--evaluator", "serial", "--max-evals", "3", "-o", "run", "-q",
                         "--resume")
    err = capfd.readouterr().err
    notes = [str(w.message) for w in caught if "took over the lock" in str(w.message)]
    if age:
        assert code == 0, err
        assert len(notes) == 1 and "\n" not in notes[0], notes
        assert "no heartbeat for" in notes[0] and "node-elsewhere-0042" in notes[0]
        assert len(rows(tmp_path / "run" / "results.csv")) == 3
        assert not lock.exists()
    else:
        assert code == 2
        check_error_line(err, ["is in use by another search", "host node-elsewhere-0042", "PID 4242",
                               "job 123456.sched", "since 2026-01-01T00:00:00"])
        assert (tmp_path / "run" / "results.csv").read_bytes() == before
        assert json.loads(lock.read_text()) == holder


@pytest.mark.parametrize("how", ["taken-over", "deleted"])
def test_a_holder_that_lost_its_lock_stops_writing(how, tmp_path, ambs_cli, make_problem, rows):
    """A search suspended past the stale timeout may lose its lock to a search on
    another host; when it runs again it must not append beside that one: it
    stops with one line (exit 1) and writes no row after the takeover."""
    make_problem("sleepy", sleep=0.2)
    out = tmp_path / "run"
    proc = ambs_cli.popen("search", "sleepy.py", "--method", "random", "--max-evals", "200", "--workers", "2",
                          "-o", str(out), "-q", cwd=tmp_path)
    lock, csv_path = out / "run.lock", out / "results.csv"
    deadline = time.monotonic() + 120
    while not (csv_path.exists() and len(rows(csv_path)) >= 4):
        assert time.monotonic() < deadline and proc.poll() is None, "the search did not get going"
        time.sleep(0.1)
    if how == "taken-over":  # what a search on another node does once the heartbeat is stale
        other = {"host": "node-elsewhere-0042", "pid": 4242, "job": "99.sched", "since": "2026-01-01T00:00:00"}
        tmp = out / "run.lock.new"
        tmp.write_text(json.dumps(other))
        os.replace(tmp, lock)
    else:
        lock.unlink()
    n_then = len(rows(csv_path))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    check_error_line(err, ["lost the run lock to", "node-elsewhere-0042" if how == "taken-over" else "deleted"])
    # Rows already on their way may land within one check interval (5 s of 0.2 s evaluations on
    # 2 workers: at most 50), never the rest of the 200.
    assert len(rows(csv_path)) - n_then <= 50 and len(rows(csv_path)) < 200
    if how == "taken-over":
        assert json.loads(lock.read_text())["host"] == "node-elsewhere-0042"  # the new holder's lock stays


def test_analyze_needs_no_lock(tmp_path, ambs_main, make_problem, capfd):
    make_problem("quadratic")
    assert ambs_main("search", "quadratic.py", "--evaluator", "serial", "--max-evals", "3", "-o", "run", "-q") == 0
    (tmp_path / "run" / "run.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": "now"}))
    assert ambs_main("analyze", "summary", "run") == 0
    assert (tmp_path / "run" / "run.lock").exists()


# ------------------------------------------------- a resume that would change what the rows mean

MEANINGFUL = """
from ambs import Problem

problem = Problem(name="meaningful")
problem.add_hyperparameter((0.0, {high}), "x")
problem.add_hyperparameter(["a", "b"], "c")
problem.set_budget(1, {budget})
problem.set_objective_names({names})


def run(config, budget=None):
    return config["x"] * (budget or 1)
"""

MEANING_CASES = {
    # what changes -> (module parameters, extra options, words of the refusal)
    "budget": ({"budget": 27}, [], ["budget is now epochs 1..27, the run's was epochs 1..9"]),
    "max-budget": ({}, ["--max-budget", "3"], ["max_budget is now 3", "the run's was 9"]),
    "objectives": ({"names": '"loss", "size"'}, [], ["objectives are now ['loss', 'size']"]),
    "space": ({"high": 2.0}, [], ["another search space"]),
}


@pytest.mark.parametrize("case", sorted(MEANING_CASES))
def test_a_resume_that_changes_what_rows_mean_is_refused(case, tmp_path, ambs_cli):
    params, options, words = MEANING_CASES[case]
    base = {"high": 1.0, "budget": 9, "names": '"loss", "time"'}
    write_module(tmp_path, "meaningful", MEANINGFUL.format(**base))
    common = ["search", "meaningful.py", "--method", "asha", "--evaluator", "serial", "-o", "run", "-q"]
    res = ambs_cli.run(*common, "--max-evals", "4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    write_module(tmp_path, "meaningful", MEANINGFUL.format(**{**base, **params}))
    res = ambs_cli.run(*common, "--max-evals", "8", "--resume", *options, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    check_error_line(res.stderr, ["cannot resume", *words])
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_a_resume_keeps_the_settings_history(tmp_path, ambs_main, make_problem):
    """Another --seed or --kappa on resume is allowed, and recorded: the original
    settings stay, each resume appends what it changed."""
    make_problem("quadratic")
    common = ["search", "quadratic.py", "--method", "ambs", "--evaluator", "serial", "-o", "run", "-q"]
    assert ambs_main(*common, "--max-evals", "3", "--seed", "1") == 0
    assert ambs_main(*common, "--max-evals", "5", "--seed", "2", "--kappa", "5", "--resume") == 0
    assert ambs_main(*common, "--max-evals", "6", "--seed", "2", "--kappa", "5", "--surrogate", "rf",
                     "--resume") == 0
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    assert doc["settings"]["seed"] == 1 and doc["settings"]["max_evals"] == 3
    assert [r["changed"] for r in doc["resumes"]] == [
        {"max_evals": 5, "seed": 2, "kappa": 5.0}, {"max_evals": 6, "surrogate": "rf"}]
    assert all(r["at"] for r in doc["resumes"])
    # Without --seed a resume keeps the seed it ran with (2), not a new random one.
    assert ambs_main(*common, "--max-evals", "7", "--kappa", "5", "--surrogate", "rf", "--resume") == 0
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    assert doc["resumes"][-1]["changed"] == {"max_evals": 7}


def test_simulate_and_the_python_recorder_take_the_lock(tmp_path, ambs_main, make_problem, capfd):
    """Whatever writes a results.csv holds the lock: ambs simulate --output, a Recorder."""
    import socket

    from ambs.errors import RunDirError
    from ambs.recorder import Recorder, RunInfo, columns_for
    from ambs.runlock import _start_ticks

    make_problem("quadratic")
    (tmp_path / "sim").mkdir()
    holder = os.getppid()  # a live process of this host
    (tmp_path / "sim" / "run.lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": holder, "start": _start_ticks(holder), "since": "then"}))
    code = ambs_main("simulate", "quadratic.py", "--workers", "2", "--duration", "1", "--max-evals", "4",
                     "--output", "sim", "--quiet")
    assert code == 2
    check_error_line(capfd.readouterr().err, ["sim is in use by another search", f"PID {holder}"])
    assert sorted(p.name for p in (tmp_path / "sim").iterdir()) == ["run.lock"]

    from ambs import Problem

    problem = Problem(name="p")
    problem.add_hyperparameter((0.0, 1.0), "x")
    info = RunInfo(problem="p.py", problem_name="p", fingerprint=problem.fingerprint(), method="random",
                   columns=columns_for(problem.hyperparameter_names, []), settings={"seed": 1})
    first = Recorder(tmp_path / "py", info)
    with pytest.raises(RunDirError, match=f"in use by another search .*PID {os.getpid()}"):
        Recorder(tmp_path / "py", info, resume=True)
    first.close()
    assert not (tmp_path / "py" / "run.lock").exists()
    Recorder(tmp_path / "py", info, resume=True).close()


def test_a_display_that_goes_away_ends_the_display_not_the_search(tmp_path):
    """``ambs search ... 2>&1 | head -2``: once ``head`` has its lines, the
    progress line's pipe is closed. The search goes on to its last evaluation
    (it stopped after the first, exit 0, with most of the run never made)."""
    out = tmp_path / "run"
    cmd = (f"{shlex.quote(sys.executable)} -m ambs search problems/branin.py --method random --max-evals 40 "
           f"--evaluator serial -o {shlex.quote(str(out))} 2>&1 | head -2; exit ${{PIPESTATUS[0]}}")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    assert len((out / "results.csv").read_text().splitlines()) == 41
