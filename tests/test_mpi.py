"""The MPI evaluator under a real ``mpiexec`` (most tests: one master, three worker ranks).

Every launch has a timeout, so a hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"

pytestmark = pytest.mark.mpi  # skipped (or failed under CI) without mpiexec: see conftest.py

SLEEPY = """
import math, time
from ambs import Problem
problem = Problem()
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter(["ok", "raise", "nan", "hang"], "mode")
def run(config):
    mode = config["mode"] if {faults} else "ok"
    if mode == "raise":
        raise RuntimeError("bad configuration")
    if mode == "nan":
        return math.nan
    time.sleep({sleep} if mode == "ok" else 30)
    return -config["x"]
"""


def _problem(tmp_path: Path, sleep: float = 0.3, faults: bool = False) -> Path:
    path = tmp_path / "prob.py"
    path.write_text(textwrap.dedent(SLEEPY.format(sleep=sleep, faults=faults)))
    return path


def _ambs(*args: str) -> list[str]:
    return [str(BIN / "python"), "-m", "ambs", "search", *args]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _mpirun(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MPIEXEC), "-n", "4", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_three_workers_overlap(tmp_path: Path) -> None:
    prob = _problem(tmp_path, sleep=0.5)
    out = tmp_path / "run"
    res = _mpirun(_ambs(str(prob), "--evaluator", "mpi", "--max-evals", "24", "--seed", "3",
                        "-o", str(out), "-q"), tmp_path)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == 24
    assert len({r["job_id"] for r in rows}) == 24
    assert {r["worker"] for r in rows} == {"1", "2", "3"}
    assert {r["local_rank"] for r in rows} == {"0", "1", "2"}
    assert all(r["status"] == "ok" for r in rows)
    # Busy intervals of every pair of workers overlap: they train at the same time.
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        spans.setdefault(r["worker"], []).append((float(r["started"]), float(r["finished"])))
    for a, b in itertools.combinations(sorted(spans), 2):
        assert any(s1 < f2 and s2 < f1 for s1, f1 in spans[a] for s2, f2 in spans[b]), (a, b)
    # No rank idles between evaluations while work remains: the typical gap from
    # one evaluation's end to the next one's start (result pickup, tell, ask,
    # a fresh child process: about 0.1 s here) stays under half an evaluation.
    # The median, not the maximum: four ranks share this machine's two cores,
    # and one scheduling hiccup is the machine's, not the master's (utilization
    # at scale is measured by bench/simulated_scale.py).
    for w, iv in spans.items():
        iv.sort()
        gaps = sorted(s2 - f1 for (_, f1), (s2, _) in zip(iv, iv[1:]))
        assert gaps[len(gaps) // 2] < 0.25, (w, gaps)


@pytest.mark.parametrize("prefetch", ["0", "1"])
def test_a_rank_holds_its_next_job_only_with_prefetch(tmp_path: Path, prefetch: str) -> None:
    """With --prefetch 1 a rank is handed its next job while it still runs one
    (the job's submission precedes the end of the rank's previous evaluation),
    and every job runs once; with 0, a job goes out only after the last result is in."""
    prob = _problem(tmp_path, sleep=0.2)
    out = tmp_path / "run"
    res = _mpirun(_ambs(str(prob), "--evaluator", "mpi", "--method", "random", "--max-evals", "18",
                        "--seed", "1", "--prefetch", prefetch, "-o", str(out), "-q"), tmp_path)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == 18 and len({r["job_id"] for r in rows}) == 18
    assert all(r["status"] == "ok" for r in rows)
    ahead = behind = 0
    for w in {r["worker"] for r in rows}:
        mine = sorted((r for r in rows if r["worker"] == w), key=lambda r: float(r["started"]))
        for prev, nxt in zip(mine, mine[1:]):
            assert float(nxt["started"]) >= float(prev["finished"])  # one evaluation at a time per rank
            if float(nxt["submitted"]) < float(prev["finished"]):
                ahead += 1
            else:
                behind += 1
    if prefetch == "1":
        assert ahead >= 9, (ahead, behind)  # 15 follow-on jobs on 3 ranks; the first of each may start idle
    else:
        assert ahead == 0 and behind == 15


def test_failures_are_recorded_and_workers_go_on(tmp_path: Path) -> None:
    prob = _problem(tmp_path, sleep=0.05, faults=True)
    out = tmp_path / "run"
    # Every mode once first: random draws depend on how the asks are batched, which
    # depends on timing, and 24 draws can miss one of four modes.
    first = tmp_path / "first.json"
    first.write_text(json.dumps([{"x": 0.5, "mode": m} for m in ("ok", "raise", "nan", "hang")]))
    res = _mpirun(_ambs(str(prob), "--evaluator", "mpi", "--method", "random", "--max-evals", "24",
                        "--seed", "1", "--eval-timeout", "1", "--initial-configs", str(first), "-o", str(out),
                        "-q"), tmp_path)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == 24
    by_mode: dict[str, set[str]] = {}
    for r in rows:
        by_mode.setdefault(r["p:mode"], set()).add(r["status"])
    assert by_mode.get("raise") == {"failed"}
    assert by_mode.get("nan") == {"failed"}
    assert by_mode.get("hang") == {"timeout"}
    assert by_mode.get("ok") == {"ok"}
    for r in rows:
        if r["p:mode"] == "raise":
            assert "RuntimeError: bad configuration" in r["error"]
        if r["status"] != "ok":
            assert r["objective"] == ""


@pytest.mark.parametrize("fit", ["background", "process"])
def test_sigterm_stops_cleanly_and_resume_repeats_nothing(tmp_path: Path, fit: str) -> None:
    """A scheduler's SIGTERM to every rank (and to the fitting process, which
    leaves the stop to the master), then a resume: nothing lost, nothing run twice."""
    prob = _problem(tmp_path, sleep=0.4)
    out = tmp_path / "run"
    args = _ambs(str(prob), "--evaluator", "mpi", "--max-evals", "200", "--seed", "5",
                 "-o", str(out), "-q", "--grace", "10", "--fit", fit)
    proc = subprocess.Popen([str(MPIEXEC), "-n", "4", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (out / "results.csv").exists() and len(_rows(out / "results.csv")) >= 6:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no evaluations finished within 90 s")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped by signal SIGTERM" in stdout
    first = _rows(out / "results.csv")
    assert 6 <= len(first) < 200
    # The evaluations running at the signal finished in the grace period.
    assert all(r["status"] == "ok" for r in first)
    total = len(first) + 6
    res = _mpirun(_ambs(str(prob), "--evaluator", "mpi", "--max-evals", str(total), "--seed", "5",
                        "-o", str(out), "-q", "--resume", "--fit", fit), tmp_path)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == total
    assert rows[: len(first)] == first
    assert len({r["job_id"] for r in rows}) == total
    # A configuration is x and mode together: a local move may change the mode alone.
    assert len({(r["p:x"], r["p:mode"]) for r in rows}) == total, "an evaluation was repeated"


def test_spawned_workers_without_mpiexec(tmp_path: Path) -> None:
    prob = _problem(tmp_path, sleep=0.1)
    out = tmp_path / "run"
    env = dict(os.environ, PATH="/usr/bin:/bin")  # MPICH's launcher must be found anyway
    res = subprocess.run(_ambs(str(prob), "--evaluator", "mpi", "--workers", "2", "--max-evals", "8",
                               "-o", str(out), "-q"), cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == 8
    assert {r["worker"] for r in rows} == {"0", "1"}


def test_workers_flag_must_match_mpiexec(tmp_path: Path) -> None:
    prob = _problem(tmp_path)
    res = _mpirun(_ambs(str(prob), "--evaluator", "mpi", "--workers", "7", "--max-evals", "4",
                        "-o", str(tmp_path / "run")), tmp_path, timeout=60)
    assert res.returncode != 0
    assert "does not match" in res.stderr
    assert "Traceback" not in res.stderr


ARCH = """
import time
from ambs.nas.space import ArchSpec, arch_problem
problem = arch_problem(ArchSpec(kind="vector", input_shape=(4,), n_outputs=2, max_layers=4, widths=(4, 8)))
def run(config):
    time.sleep(0.15)
    return float(config["n_layers"]) - 0.1 * len(config)
"""


def test_shadho_sends_deep_networks_to_the_gpu_rank(tmp_path: Path) -> None:
    prob = tmp_path / "arch.py"
    prob.write_text(textwrap.dedent(ARCH))
    out = tmp_path / "run"
    args = _ambs(str(prob), "--evaluator", "mpi", "--method", "random", "--max-evals", "36", "--seed", "2",
                 "--assign", "shadho", "-o", str(out), "-q")
    # Rank 1 says it is a GPU worker ($AMBS_WORKER_KIND), ranks 2 and 3 are CPU workers.
    cmd = [str(MPIEXEC), "-n", "1", *args, ":", "-n", "1", "-env", "AMBS_WORKER_KIND", "gpu", *args,
           ":", "-n", "2", *args]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == 36 and all(r["status"] == "ok" for r in rows)
    depth: dict[str, list[int]] = {"gpu": [], "cpu": []}
    for r in rows:
        depth["gpu" if r["worker"] == "1" else "cpu"].append(int(r["p:n_layers"]))
    # Random search draws depths 1 to 4 alike; by chance each rank's mean would be
    # about the same. Deep networks (the most complex) went to the GPU rank.
    assert len(depth["gpu"]) >= 6
    mean = {k: sum(v) / len(v) for k, v in depth.items()}
    assert mean["gpu"] > mean["cpu"] + 0.7, mean
    assert '"assign": "shadho"' in (out / "run.json").read_text()


ENV_PROBE = """
import os
from ambs import Problem
problem = Problem()
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_metadata("checkpoints")
def run(config):
    return {"objective": config["x"], "checkpoints": os.environ.get("AMBS_CHECKPOINT_DIR", "unset")}
"""


def test_master_passes_its_checkpoint_directory_to_the_worker_ranks(tmp_path: Path) -> None:
    """Only the master has the variable (as when `--method morphism` sets it): the ranks get it at INIT."""
    prob = tmp_path / "probe.py"
    prob.write_text(textwrap.dedent(ENV_PROBE))
    out = tmp_path / "run"
    args = _ambs(str(prob), "--evaluator", "mpi", "--method", "random", "--max-evals", "6", "-o", str(out), "-q")
    env = {k: v for k, v in os.environ.items() if k != "AMBS_CHECKPOINT_DIR"}
    res = subprocess.run([str(MPIEXEC), "-n", "1", "-env", "AMBS_CHECKPOINT_DIR", "/ckpt/here", *args,
                          ":", "-n", "2", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    rows = _rows(out / "results.csv")
    assert len(rows) == 6 and {r["worker"] for r in rows} == {"1", "2"}
    assert {r["m:checkpoints"] for r in rows} == {"/ckpt/here"}


def test_an_idle_worker_rank_sleeps_instead_of_spinning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker rank waiting for the master probes (twice at each wake-up, see
    ambs.comm.probe) and sleeps (20 us doubling to 2 ms) instead of MPICH's
    spinning receive; it takes the message that arrives."""
    from ambs.evaluator import mpi_rank as ambs_mpi

    class Comm:
        def __init__(self, quiet: int) -> None:
            self.quiet, self.received = quiet, []

        def Iprobe(self, source: int, tag: int, status: Status) -> bool:
            self.quiet -= 1
            status.tag = 7
            return self.quiet < 0

        def recv(self, source: int, tag: int) -> str:
            self.received.append((source, tag))
            return "job"

    class Status:
        tag = -1

        def Get_tag(self) -> int:
            return self.tag

    pauses: list[float] = []
    monkeypatch.setattr(ambs_mpi.time, "sleep", pauses.append)
    comm = Comm(quiet=24)  # 12 wake-ups of two probes find nothing
    assert ambs_mpi._recv_idle(comm, 0, -1, Status()) == "job"
    assert comm.received == [(0, 7)]
    assert len(pauses) == 12 and pauses[0] == 2e-5 and max(pauses) == pauses[-1] == 2e-3
    assert all(a <= b for a, b in zip(pauses, pauses[1:]))


PROBE_AFTER_SLEEP = """
import time
from mpi4py import MPI
from ambs.comm import probe
comm, status = MPI.COMM_WORLD, MPI.Status()
comm.Barrier()
if comm.Get_rank() == 1:
    time.sleep(0.05)
    comm.send("job", dest=0, tag=3)  # arrives while rank 0 sleeps
    comm.recv(source=0, tag=9)
else:
    time.sleep(2.0)
    seen = probe(comm, 1, 3, status)
    again = comm.Iprobe(source=1, tag=3, status=status)  # a message seen stays seen
    print("probe", seen, "after", again, flush=True)
    comm.recv(source=1, tag=3)
    comm.send(None, dest=1, tag=9)
"""


def test_a_message_that_arrived_during_a_sleep_is_seen_by_the_first_probe_after_it(tmp_path: Path) -> None:
    """Real MPI (the mpich wheel): ambs.comm.probe, what every waiting side
    calls after each sleep, finds a message that arrived during the sleep at
    once (one Iprobe per wake-up, MPICH's may find it only at the next one)."""
    script = tmp_path / "probe_after_sleep.py"
    script.write_text(PROBE_AFTER_SLEEP)
    res = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "probe True after True" in res.stdout, res.stdout

