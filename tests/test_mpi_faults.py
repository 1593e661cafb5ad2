"""Faults under a real ``mpiexec -n 4`` (one master, three worker ranks):
objectives that misbehave, SIGUSR1 from a scheduler, and the master rank
killed, then ``--resume``. Every launch has a timeout, so a hang fails."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fault_problems import (
    EXPECTED,
    FAULT_OPTIONS,
    check_fault_rows,
    rank_pid,
    write_faults,
    write_ledger,
)
from tests.test_faults import _complete_rows, _executed, _key, _wait_rows

BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"

pytestmark = pytest.mark.mpi  # skipped (or failed under CI) without mpiexec: see conftest.py


def _ambs(*args: str) -> list[str]:
    return [str(MPIEXEC), "-n", "4", str(BIN / "python"), "-m", "ambs", "search", *args]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.mark.slow
def test_every_fault_is_recorded_and_the_ranks_go_on(tmp_path, rows):
    path = write_faults(tmp_path)
    # Each evaluation takes 0.2 s more, so that work is left for every rank
    # after the first crash (a crashed evaluation's process is replaced in a
    # fraction of a second, and the 2 s "hang" holds one rank meanwhile).
    path.write_text(path.read_text().replace("def run(config):", "def _run(config):")
                    + "\n\ndef run(config):\n    time.sleep(0.2)\n    return _run(config)\n")
    n = 2 * len(EXPECTED)
    res = subprocess.run(_ambs(path.name, "--evaluator", "mpi", *FAULT_OPTIONS, "--max-evals", str(n),
                               "-o", "run", "-q"), cwd=tmp_path, capture_output=True, text=True,
                         timeout=240, env=_env())
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    table = rows(tmp_path / "run" / "results.csv")
    check_fault_rows(table)
    # Every rank took jobs after the first crash of its evaluation process.
    first_crash = min(float(r["finished"]) for r in table if r["status"] == "crashed")
    assert {r["worker"] for r in table if float(r["started"]) > first_crash} == {"1", "2", "3"}


@pytest.mark.slow
def test_sigusr1_to_mpiexec_stops_cleanly(tmp_path, rows):
    """mpiexec passes a scheduler's SIGUSR1 on to every rank; the master stops, the workers wait for it."""
    write_ledger(tmp_path, sleep=0.3)
    csv_path = tmp_path / "run" / "results.csv"
    proc = subprocess.Popen(_ambs("ledger.py", "--evaluator", "mpi", "--method", "random", "--max-evals", "120",
                                  "--seed", "2", "--grace", "20", "-o", "run", "-q"),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        _wait_rows(csv_path, 4, proc, limit=120)
        proc.send_signal(signal.SIGUSR1)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped by signal SIGUSR1" in out and "cancelled" not in out
    text = csv_path.read_text()
    assert text.endswith("\n")
    table = rows(csv_path)
    assert 4 <= len(table) < 120
    assert all(r["status"] == "ok" for r in table)
    assert len({r["job_id"] for r in table}) == len(table)
    # Each row's configuration ran once, and nothing ran that is not in the CSV.
    assert sorted(_executed(tmp_path / "executed.log")) == sorted(f"{r['p:cat']},{r['p:n']}" for r in table)


@pytest.mark.slow
@pytest.mark.parametrize("prefetch", ["1", "8"])
def test_master_or_worker_rank_killed_then_resume_loses_and_repeats_nothing(tmp_path, rows, prefetch):
    """SIGKILL the master rank, then (after a resume) a worker rank: mpiexec
    ends the job each time; every row written stays, once, and none runs again.
    Each rank holds its next jobs (--prefetch 1, and 8, the most ``auto``
    queues for short evaluations), so results are in flight when the master
    dies: the durability rule of ambs.evaluator.prefetch."""
    write_ledger(tmp_path, sleep=0.1)
    log = tmp_path / "executed.log"
    csv_path = tmp_path / "run" / "results.csv"
    rng = random.Random(4)
    max_evals = 45
    args = ["ledger.py", "--evaluator", "mpi", "--max-evals", str(max_evals), "--seed", "3", "--prefetch", prefetch,
            "-o", "run", "-q"]
    written: dict[str, str] = {}
    trials = repeated = 0
    prefix = ""
    for trial in range(3):
        resume = ["--resume"] if (tmp_path / "run" / "run.json").exists() else []
        n_before = len(_executed(log))
        proc = subprocess.Popen(_ambs(*args, *resume), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env())
        try:
            if trial < 2:
                _wait_rows(csv_path, len(_complete_rows(csv_path)[1]) + 2, proc, limit=120)
                time.sleep(rng.uniform(0.0, 0.8))
                pid = rank_pid(tmp_path, rank=trial)  # the master, then worker rank 1
                assert pid is not None, f"rank {trial} not found"
                os.kill(pid, signal.SIGKILL)
                trials += 1
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if trial == 2:
            assert proc.returncode == 0, err
        else:
            assert proc.returncode != 0  # mpiexec ends the job when its master dies
        repeated += sum(1 for k in _executed(log)[n_before:] if k in set(written.values()))
        text, lines = _complete_rows(csv_path)
        assert text.startswith(prefix), "rows written before a kill were rewritten"
        prefix = text
        written.update({line: _key(line) for line in lines})
    final = _complete_rows(csv_path)[1]
    lost = sum(1 for line in written if line not in final)
    keys = [_key(line) for line in final]
    repeated += len(keys) - len(set(keys))
    print(f"mpi kill trials: {trials}, lost: {lost}, repeated: {repeated}")
    assert trials == 2 and lost == 0 and repeated == 0
    assert len(rows(csv_path)) == max_evals
