"""Each evaluation's output in its own log; one worker per GPU; where a run ran.

Through the command line, as users run it: ``ambs search ... --gpus 4`` and
``mpiexec -n N ambs search ... --evaluator mpi --gpus-per-node 4``. No GPU is
needed: the problem returns the ``CUDA_VISIBLE_DEVICES`` its worker was given.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ambs.errors import AmbsError
from ambs.evaluator.logs import captured, release, tail, with_tail
from ambs.evaluator.placement import parse_gpus, place, rank_env, rank_gpu

BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"

PROBLEM = """
import os
import subprocess
import sys

from ambs import Problem

problem = Problem(name="loud")
problem.add_hyperparameter(["ok", "raise"], "mode")
problem.add_hyperparameter((0, {top}), "i")
problem.add_metadata("cvd")
problem.add_metadata("rank")
problem.add_metadata("procid")


def run(config):
    for n in range(60):
        print(f"LOUD-OUT {{config['mode']}} {{config['i']}} line {{n}}")
    sys.stdout.flush()
    subprocess.run(["sh", "-c", "echo LOUD-CHILD"], check=True)
    os.write(2, b"LOUD-FD2\\n")
    if config["mode"] == "raise":
        print("LOUD-LAST before the error", file=sys.stderr)
        raise KeyError("boom")
    return {{"objective": float(config["i"]), "cvd": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
             "rank": os.environ.get("AMBS_RANK", ""), "procid": os.environ.get("SLURM_PROCID", "")}}
"""


def _problem(tmp_path: Path, top: int = 3) -> Path:
    path = tmp_path / "loud.py"
    path.write_text(textwrap.dedent(PROBLEM.format(top=top)))
    return path


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "PBS_JOBID",
                                                           "AMBS_LAUNCHER", "SLURM_PROCID", "SLURM_LOCALID")}
    env.update(extra)
    return env


def _search(tmp_path: Path, *args: str, mpi: int = 0, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ambs", "search", *args]
    if mpi:
        cmd = [str(MPIEXEC), "-n", str(mpi), *cmd, "--evaluator", "mpi"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                          env=env or _env())


def _check_logs(out: Path, proc: subprocess.CompletedProcess) -> None:
    """Every row names its log, which holds all it printed; a failure's error ends
    with the last lines; the search's own output holds none of it."""
    rows = _rows(out)
    assert rows
    for r in rows:
        assert r["log"] == f"logs/{int(r['job_id']):06d}.log"
        text = (out / r["log"]).read_text()
        assert all(f"line {n}\n" in text for n in range(60)), text[:300]
        assert "LOUD-CHILD" in text and "LOUD-FD2" in text
        if r["p:mode"] == "raise":
            assert r["status"] == "failed"
            assert r["error"].startswith("KeyError: 'boom'")
            assert "--- last lines of " + r["log"] in r["error"]
            assert "LOUD-LAST before the error" in r["error"] and "raise KeyError" in r["error"]
            assert "line 0\n" not in r["error"]  # the last lines only
            assert "Traceback (most recent call last)" in text
        else:
            assert r["status"] == "ok" and "LOUD" not in r["error"]
    assert "LOUD" not in proc.stdout and "LOUD" not in proc.stderr


# ------------------------------------------------------------------ units
def test_captured_redirects_file_descriptors_and_puts_them_back(tmp_path, capfd):
    log = tmp_path / "logs" / "000001.log"
    print("before")
    with captured(str(log)) as ok:
        print("inside")
        os.write(1, b"fd1\n")
        os.write(2, b"fd2\n")
        subprocess.run(["sh", "-c", "echo child"], check=True)
    print("after")
    assert ok
    assert log.read_text().split() == ["inside", "fd1", "fd2", "child"]
    seen = capfd.readouterr()
    assert "before" in seen.out and "after" in seen.out and "inside" not in seen.out + seen.err
    with captured(None) as ok:
        assert not ok
    (tmp_path / "log.txt").write_text("a file, not a folder")
    with captured(str(tmp_path / "log.txt" / "under-a-file.log")) as ok:  # cannot be opened: nothing redirected
        assert not ok


def test_a_silent_evaluation_keeps_no_log_and_its_file_serves_the_next(tmp_path):
    logs = tmp_path / "logs"
    with captured(str(logs / "000001.log")) as first:
        assert (logs / "000001.log").exists()  # there while it runs, for tail -f
    assert first and first.empty
    with captured(str(logs / "000002.log")) as second:
        assert not (logs / "000001.log").exists() and (logs / "000002.log").exists()
        print("loud")
    assert not second.empty and (logs / "000002.log").read_text() == "loud\n"
    with captured(str(logs / "000003.log")) as third:
        os.write(2, b"")  # nothing written
    assert third.empty and (logs / "000003.log").exists()
    with captured(str(logs / "000004.log")) as fourth:
        os.write(1, b"from C\n")
    assert not fourth.empty and (logs / "000004.log").read_text() == "from C\n"
    release()
    release()  # nothing kept: nothing to do
    assert sorted(os.listdir(logs)) == ["000002.log", "000004.log"]


QUIET = """
from ambs import Problem

problem = Problem(name="quiet")
problem.add_hyperparameter(list(range(8)), "i")


def run(config):
    if config["i"] % 2:
        print(f"LOUD {config['i']}")
    return float(config["i"])
"""


@pytest.mark.parametrize("evaluator", ["serial", "process", pytest.param("mpi", marks=pytest.mark.mpi)])
def test_only_evaluations_that_print_keep_a_log(tmp_path, evaluator):
    """Through the command line: the rows of silent evaluations have no log and
    no file is left for them; every file is named by the row it belongs to."""
    (tmp_path / "quiet.py").write_text(textwrap.dedent(QUIET))
    args = ["quiet.py", "--method", "grid", "--max-evals", "8", "-q", "-o", "run"]
    if evaluator == "mpi":
        proc = _search(tmp_path, *args, mpi=3)
    else:
        proc = _search(tmp_path, *args, "--evaluator", evaluator, *(["--workers", "2"] if evaluator == "process" else []))
    assert proc.returncode == 0, proc.stderr
    rows = _rows(tmp_path / "run")
    assert sorted(int(r["p:i"]) for r in rows) == list(range(8))
    for r in rows:
        i = int(r["p:i"])
        if i % 2:
            assert r["log"] == f"logs/{int(r['job_id']):06d}.log"
            assert (tmp_path / "run" / r["log"]).read_text() == f"LOUD {i}\n"
        else:
            assert r["log"] == ""
    assert sorted(os.listdir(tmp_path / "run" / "logs")) == sorted(r["log"][5:] for r in rows if r["log"])


def test_tail_keeps_the_last_lines(tmp_path):
    log = tmp_path / "logs" / "000007.log"
    log.parent.mkdir()
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    last = tail(log)
    assert last.splitlines() == [f"line {n}" for n in range(80, 100)]
    log.write_text("x" * 10_000)
    assert len(tail(log)) == 2000
    assert with_tail("E", str(log)).startswith("E\n--- last lines of logs/000007.log ---\nxxx")
    assert with_tail("E", str(tmp_path / "missing.log")) == "E" and with_tail("E", None) == "E"


def test_parse_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert parse_gpus(4) == parse_gpus("4") == ["0", "1", "2", "3"]
    assert parse_gpus("0,1,3") == ["0", "1", "3"]
    assert parse_gpus(None) == []
    for bad in ("0", "-1", "a,b", "1,1", "0,x"):
        with pytest.raises(ValueError):
            parse_gpus(bad)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # the GPUs a scheduler gave the job
    assert parse_gpus(2) == ["4", "5"] and parse_gpus("1,3") == ["5", "7"]


@pytest.mark.parametrize("nodes", [1, 2, 4])
def test_each_gpu_gets_exactly_one_worker_rank(nodes):
    """Simulated hosts of 4 GPUs: G ranks per node, one more on node 0 for the master."""
    gpus, ranks, hosts = 4, 0, {}
    for n in range(nodes):
        count = gpus + 1 if n == 0 else gpus
        hosts[f"node{n}"] = list(range(ranks, ranks + count))
        ranks += count
    taken: dict[tuple[str, str], list[int]] = {}
    for host, on_node in hosts.items():
        for rank in on_node:
            p = place(host, on_node, rank, master=0)
            if rank == 0:
                assert p.local_rank == -1  # the master takes no GPU
                continue
            taken.setdefault((host, rank_gpu(p, gpus)), []).append(rank)
            env = rank_env(rank, p)
            assert env["AMBS_RANK"] == str(rank) and env["AMBS_LOCAL_RANK"] == str(on_node.index(rank))
    assert sorted(taken) == sorted((h, str(g)) for h in hosts for g in range(gpus))
    assert all(len(r) == 1 for r in taken.values())
    assert taken[("node0", "0")] == [1]  # on the master's node, ranks 1..G use GPUs 0..G-1


def test_more_worker_ranks_than_gpus_is_refused_unless_shared():
    on_node = list(range(6))  # the master and 5 workers
    p = place("node0", on_node, 5)
    with pytest.raises(AmbsError, match="5 worker ranks for 4 GPU.*--share-gpus"):
        rank_gpu(p, 4)
    assert rank_gpu(p, 4, share=True) == "0"


def test_rank_env_corrects_slurm_only_where_set(monkeypatch):
    p = place("n", [0, 1, 2], 2)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    monkeypatch.delenv("SLURM_LOCALID", raising=False)
    assert "SLURM_PROCID" not in rank_env(2, p)
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_LOCALID", "0")
    env = rank_env(2, p)
    assert env["SLURM_PROCID"] == "2" and env["SLURM_LOCALID"] == "2" and env["AMBS_WORKER_INDEX"] == "1"


def test_serial_evaluator_logs_and_gives_the_terminal_back(tmp_path, capfd):
    from ambs.runner import run_search

    problem = _problem(tmp_path, top=1)
    result = run_search(str(problem), method="grid", evaluator="serial", max_evals=4, output=tmp_path / "run",
                        quiet=True)
    assert result is not None
    seen = capfd.readouterr()
    assert "LOUD" not in seen.out + seen.err
    rows = _rows(tmp_path / "run")
    assert len(rows) == 4 and all(r["gpu"] == "" for r in rows)
    _check_logs(tmp_path / "run", subprocess.CompletedProcess([], 0, "", ""))
    print("the terminal is back")
    assert "the terminal is back" in capfd.readouterr().out


# ------------------------------------------------------------------ process, through the command line
def test_process_logs_each_evaluation_and_keeps_the_tail_of_a_failure(tmp_path):
    problem = _problem(tmp_path)
    out = tmp_path / "run"
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "8", "--workers", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    _check_logs(out, proc)
    assert len(list((out / "logs").iterdir())) == 8


def test_a_crash_or_a_timeout_keeps_what_it_printed(tmp_path):
    problem = tmp_path / "dies.py"
    problem.write_text(textwrap.dedent("""
        import os, time
        from ambs import Problem
        problem = Problem()
        problem.add_hyperparameter(["abort", "hang"], "mode")
        def run(config):
            print("LAST WORDS of", config["mode"])
            if config["mode"] == "abort":
                os.abort()
            time.sleep(60)
    """))
    out = tmp_path / "run"
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "2", "--workers", "2",
                   "--eval-timeout", "3", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    rows = {r["p:mode"]: r for r in _rows(out)}
    assert rows["abort"]["status"] == "crashed" and rows["hang"]["status"] == "timeout"
    for mode, r in rows.items():
        assert r["log"] and f"--- last lines of {r['log']} ---\nLAST WORDS of {mode}" in r["error"], r
    assert "LAST WORDS" not in proc.stdout + proc.stderr


def test_no_logs_leaves_output_on_the_terminal(tmp_path):
    problem = _problem(tmp_path, top=1)
    out = tmp_path / "run"
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "2", "--workers", "1", "--no-logs",
                   "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "LOUD-OUT" in proc.stdout and all(r["log"] == "" for r in _rows(out))
    assert not (out / "logs").exists()


def test_process_gives_each_worker_its_own_gpu(tmp_path):
    problem = _problem(tmp_path, top=7)
    out = tmp_path / "run"
    proc = _search(tmp_path, str(problem), "--method", "random", "--max-evals", "12", "--gpus", "4", "--workers", "4",
                   "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in _rows(out) if r["status"] == "ok"]
    assert rows and all(r["gpu"] == r["m:cvd"] for r in rows)  # the column is what the worker saw
    assert {r["worker"]: r["gpu"] for r in _rows(out)} == {"1": "0", "2": "1", "3": "2", "4": "3"}
    # --workers defaults to the number of GPUs; a list of indices is taken as it is
    out2 = tmp_path / "run2"
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "6", "--gpus", "0,2,3", "-o", str(out2),
                   "-q")
    assert proc.returncode == 0, proc.stderr
    assert {r["worker"]: r["gpu"] for r in _rows(out2)} == {"1": "0", "2": "2", "3": "3"}


def test_more_workers_than_gpus_is_refused_unless_shared(tmp_path):
    problem = _problem(tmp_path, top=3)
    out = tmp_path / "run"
    proc = _search(tmp_path, str(problem), "--max-evals", "4", "--gpus", "2", "--workers", "3", "-o", str(out), "-q")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--share-gpus" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "6", "--gpus", "2", "--workers", "3",
                   "--share-gpus", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert {r["worker"]: r["gpu"] for r in _rows(out)} == {"1": "0", "2": "1", "3": "0"}


@pytest.mark.parametrize("args, message", [
    (["--gpus", "2", "--evaluator", "serial"], "--gpus applies to --evaluator process"),
    (["--gpus-per-node", "2"], "--gpus-per-node applies to --evaluator mpi"),
    (["--share-gpus"], "--share-gpus goes with --gpus"),
    (["--gpus", "1,1"], "lists a GPU twice"),
    (["--prefetch", "1"], "--prefetch applies to --evaluator mpi"),
    (["--evaluator", "mpi", "--prefetch", "many"], "--prefetch takes 'auto' or a number"),
])
def test_gpu_flags_in_the_wrong_place_are_one_line(tmp_path, args, message):
    problem = _problem(tmp_path)
    proc = _search(tmp_path, str(problem), "--max-evals", "2", *args, "-o", str(tmp_path / "run"), "-q")
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_resume_and_analyze_with_and_without_the_new_columns(tmp_path):
    """A run with gpu and log columns resumes and is analyzed; so is one written
    before them (its header kept, its new rows without those cells)."""
    problem = _problem(tmp_path, top=3)
    out = tmp_path / "run"
    env = _env(SLURM_JOB_ID="1001", AMBS_LAUNCHER="srun")
    common = [str(problem), "--method", "grid", "--workers", "2", "-o", str(out), "-q"]
    assert _search(tmp_path, *common, "--max-evals", "3", env=env).returncode == 0
    proc = _search(tmp_path, *common, "--max-evals", "5", "--resume", env=_env(SLURM_JOB_ID="1002"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(r["job_id"]) for r in _rows(out)) == list(range(5))
    doc = json.loads((out / "run.json").read_text())
    assert doc["scheduler_jobs"] == ["1001", "1002"] and "launcher" not in doc  # the latest start's
    assert "mpi_library" not in doc
    summary = subprocess.run([sys.executable, "-m", "ambs", "analyze", "summary", str(out), "--json"],
                             capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0, summary.stderr
    # The same run as an older version wrote it: no gpu and log columns.
    old = tmp_path / "old"
    old.mkdir()
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    drop = [rows[0].index("gpu"), rows[0].index("log")]
    with open(old / "results.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([[c for i, c in enumerate(r) if i not in drop] for r in rows])
    doc["columns"] = [c for c in doc["columns"] if c not in ("gpu", "log")]
    for key in ("scheduler_jobs", "launcher"):
        doc.pop(key, None)
    (old / "run.json").write_text(json.dumps(doc))
    (old / "space.json").write_text((out / "space.json").read_text())
    header = rows[0]
    proc = _search(tmp_path, str(problem), "--method", "grid", "--workers", "2", "-o", str(old), "-q",
                   "--max-evals", "7", "--resume")
    assert proc.returncode == 0, proc.stderr
    new = _rows(old)
    assert len(new) == 7 and "log" not in new[0] and "gpu" not in new[0]
    assert list(new[0]) == [c for c in header if c not in ("gpu", "log")]
    assert len({(r["p:mode"], r["p:i"]) for r in new}) == 7
    for run in (out, old):
        summary = subprocess.run([sys.executable, "-m", "ambs", "analyze", "summary", str(run)],
                                 capture_output=True, text=True, timeout=120)
        assert summary.returncode == 0 and "Traceback" not in summary.stderr, summary.stderr


# ------------------------------------------------------------------ mpi, under mpiexec
@pytest.mark.mpi
def test_mpi_logs_and_gives_each_gpu_one_worker_rank(tmp_path):
    problem = _problem(tmp_path, top=3)
    out = tmp_path / "run"
    env = _env(SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_JOB_ID="77", AMBS_LAUNCHER="mpiexec")
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "8", "--gpus-per-node", "4",
                   "-o", str(out), mpi=5, env=env)
    assert proc.returncode == 0, proc.stderr
    _check_logs(out, proc)
    rows = _rows(out)
    # Worker ranks 1..4 on GPUs 0..3, one each; the master (rank 0) none.
    assert {r["worker"]: r["gpu"] for r in rows} == {"1": "0", "2": "1", "3": "2", "4": "3"}
    for r in rows:
        if r["status"] == "ok":
            assert r["m:cvd"] == r["gpu"]
            assert r["m:rank"] == r["m:procid"] == r["worker"]  # SLURM_PROCID corrected to the MPI rank
    doc = json.loads((out / "run.json").read_text())
    assert doc["mpi_library"] and "\n" not in doc["mpi_library"]
    assert doc["launcher"] == "mpiexec" and doc["scheduler_jobs"] == ["77"]


@pytest.mark.mpi
def test_mpi_more_worker_ranks_than_gpus_is_refused_unless_shared(tmp_path):
    problem = _problem(tmp_path, top=3)
    out = tmp_path / "run"
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "6", "--gpus-per-node", "4",
                   "-o", str(out), "-q", mpi=6, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "5 worker ranks for 4 GPU(s)" in lines[0] and "--share-gpus" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    proc = _search(tmp_path, str(problem), "--method", "grid", "--max-evals", "8", "--gpus-per-node", "4",
                   "--share-gpus", "-o", str(out), "-q", mpi=6, timeout=120)
    assert proc.returncode == 0, proc.stderr
    gpus = {r["worker"]: r["gpu"] for r in _rows(out)}
    assert set(gpus.values()) <= {"0", "1", "2", "3"} and gpus.get("5", "0") == "0"
