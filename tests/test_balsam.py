"""The balsam evaluator against a real Balsam 1: a local PostgreSQL, Balsam's own
launcher in MPI mode with the project's MPICH, and ``ambs search --evaluator balsam``.

The database comes from ``scripts/postgres-local-up.sh`` (run here when the tests
run as root; ``.ci/run`` runs it before the tests). Without Balsam or PostgreSQL
the integration tests skip and say why, except under CI (``$CI`` set), where
they fail.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ambs.evaluator.balsam import _last_message
from ambs.evaluator.balsam_app import local_rank, plain, rank
from tests.conftest import unavailable

REPO = Path(__file__).resolve().parent.parent
CONNECTION = Path(os.environ.get("AMBS_PG_DIR", "/var/lib/ambs-postgres")) / "balsam.json"


# ---------------------------------------------------------------- unit tests
def test_plain_makes_json_safe_values():
    np = pytest.importorskip("numpy")
    out = plain({"a": np.float64(1.5), "b": [np.int64(3), math.nan], "c": math.inf, "d": "x"})
    assert out == {"a": 1.5, "b": [3, None], "c": None, "d": "x"}
    assert isinstance(out["b"][0], int)
    json.dumps(out, allow_nan=False)


def test_rank_and_local_rank_from_launcher_environment(monkeypatch):
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PALS_RANKID", "SLURM_PROCID",
                 "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PALS_LOCAL_RANKID", "SLURM_LOCALID"):
        monkeypatch.delenv(name, raising=False)
    assert (rank(), local_rank()) == (0, 0)
    monkeypatch.setenv("PMI_RANK", "5")
    monkeypatch.setenv("MPI_LOCALRANKID", "1")
    assert (rank(), local_rank()) == (5, 1)


def test_last_message_of_a_multiline_run_error():
    history = (
        "\n[11-23-2026 16:40:01.123456 CREATED] "
        "\n  [11-23-2026 16:40:05.123456 RUN_ERROR] nonzero return 3: \n    Traceback\n    KeyError: boom"
        "\n[11-23-2026 16:40:07.123456 FAILED] "
    )
    assert _last_message(history) == "nonzero return 3: Traceback KeyError: boom"
    assert _last_message("") == ""
    noisy = "\n[11-23-2026 16:40:05.123456 RUN_ERROR] nonzero return 6: " + "x" * 400 + " signal 6"
    short = _last_message(noisy)
    assert short.startswith("nonzero return 6: ... ") and short.endswith("signal 6") and len(short) < 300


def test_missing_balsam_is_one_line_error(tmp_path):
    """Without Balsam installed, --evaluator balsam says what to install, in one line."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["balsam"] = None  # as if balsam-flow were not installed
        from ambs.cli import main
        sys.exit(main(["search", {str(REPO / "problems" / "branin.py")!r}, "--evaluator", "balsam",
                       "--max-evals", "2", "--output", "run", "-q"]))
    """)
    env = dict(os.environ, BALSAM_DB_PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[balsam]'" in lines[0] and "balsam-flow" in lines[0]


def test_no_database_is_one_line_error(tmp_path, ambs_cli):
    env = {k: v for k, v in ambs_cli.env.items() if k != "BALSAM_DB_PATH"}
    proc = subprocess.run(ambs_cli.command("search", REPO / "problems" / "branin.py", "--evaluator", "balsam",
                                           "--max-evals", "2", "--output", "run", "-q"),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "BALSAM_DB_PATH" in proc.stderr


# ---------------------------------------------------------------- integration
def _connection() -> dict:
    """The local server's connection, starting it first when we may (root)."""
    script = REPO / "scripts" / "postgres-local-up.sh"
    if os.geteuid() == 0:
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            unavailable("the Balsam tests", f"PostgreSQL could not start: {script.name}: {tail[0]}")
    try:
        return json.loads(CONNECTION.read_text())
    except OSError as exc:
        unavailable("the Balsam tests", f"no local PostgreSQL ({CONNECTION}: {exc.strerror}); start one with "
                     f"`sudo scripts/postgres-local-up.sh`")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def balsam_site(tmp_path_factory):
    """A Balsam database directory on the local server, and the environment to use it."""
    import importlib.util

    # Looked up, not imported: importing balsam would change this process's
    # sys.excepthook and root logger; Balsam runs in child processes only.
    if importlib.util.find_spec("balsam") is None:
        unavailable("the Balsam tests", "Balsam is not installed; pip install -e '.[balsam]'")
    try:
        import psycopg2
    except ImportError as exc:
        unavailable("the Balsam tests", f"Balsam's PostgreSQL driver is missing ({exc}); pip install -e '.[balsam]'")
    from ambs.evaluator import balsam_site as site

    conn = _connection()
    try:
        psycopg2.connect(host=conn["host"], port=conn["port"], user=conn["user"], password=conn["password"],
                         dbname=conn["database"], connect_timeout=10).close()
    except psycopg2.OperationalError as exc:
        unavailable("the Balsam tests", f"cannot connect to the local PostgreSQL: {str(exc).strip().splitlines()[0]}")
    root = tmp_path_factory.mktemp("balsam")
    home = root / "home"
    home.mkdir()
    db_dir = site.init_db_dir(root / "db", conn["host"], conn["port"], conn["password"])
    site.write_local_site(home)
    env = site.balsam_env(db_dir, conn["user"])
    env["HOME"] = str(home)
    # Balsam's launcher runs `mpirun` from PATH: the project's MPICH comes first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env.pop("PYTHONWARNINGS", None)
    site.migrate(env)
    return env


@pytest.fixture(scope="module")
def launcher(balsam_site, tmp_path_factory):
    """Balsam's launcher in MPI mode on this host, for this module's workflows only."""
    prefix = f"ambs-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("launcher") / "launcher.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "balsam"), "launcher", "--wf-filter", prefix, "--job-mode", "mpi",
             "--persistent", "--time-limit-minutes", "20"],
            env=balsam_site, stdout=out, stderr=subprocess.STDOUT)
    yield prefix
    proc.terminate()  # Balsam's launcher stops its runs and exits on SIGTERM
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _balsam_query(balsam_site, prefix, delete=True)


_QUERY = """
import json, sys
import balsam
balsam.setup()
from balsam.core.models import BalsamJob
jobs = BalsamJob.objects.filter(workflow__startswith=sys.argv[1])
print(json.dumps([{"id": str(j.pk), "workflow": j.workflow, "state": j.state, "data": j.data,
                   "application": j.application, "num_nodes": j.num_nodes,
                   "ranks_per_node": j.ranks_per_node} for j in jobs]))
if sys.argv[2] == "delete":
    from balsam.core.models import ApplicationDefinition
    apps = set(jobs.values_list("application", flat=True))
    jobs.delete()
    unused = apps - set(BalsamJob.objects.filter(application__in=apps).values_list("application", flat=True))
    ApplicationDefinition.objects.filter(name__in=unused).delete()
"""


def _balsam_query(env: dict, workflow: str, delete: bool = False) -> list[dict]:
    """The jobs of ``workflow`` (and those whose name extends it), read from Balsam's database."""
    proc = subprocess.run([sys.executable, "-c", _QUERY, workflow, "delete" if delete else "keep"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _settled(env: dict, workflow: str, n: int, timeout: float = 60) -> list[dict]:
    """Wait until Balsam has moved ``n`` jobs of ``workflow`` to an end state."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = _balsam_query(env, workflow)
        if len(jobs) == n and all(j["state"] in ("JOB_FINISHED", "FAILED") for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            return jobs
        time.sleep(1)


def _search(env: dict, cwd: Path, *args: str, timeout: float = 300, quiet: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ambs", "search", *args, "--evaluator", "balsam",
                           *(["-q"] if quiet else [])],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_branin_search_through_balsam(balsam_site, launcher, tmp_path, rows):
    workflow = f"{launcher}-branin"
    proc = _search(balsam_site, tmp_path, str(REPO / "problems" / "branin.py"), "--max-evals", "6",
                   "--workers", "2", "--seed", "3", "--n-initial-points", "3", "--output", "run",
                   "--balsam-workflow", workflow)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "evaluations: 6" in proc.stdout and "(6 ok)" in proc.stdout
    table = rows(tmp_path / "run" / "results.csv")
    assert len(table) == 6 and {r["job_id"] for r in table} == {str(i) for i in range(6)}
    assert all(r["status"] == "ok" and r["m:balsam_job_id"] for r in table)

    jobs = {j["id"]: j for j in _settled(balsam_site, workflow, 6)}
    assert set(jobs) == {r["m:balsam_job_id"] for r in table}
    for r in table:
        job = jobs[r["m:balsam_job_id"]]
        assert job["state"] == "JOB_FINISHED" and job["workflow"] == workflow
        assert (job["num_nodes"], job["ranks_per_node"]) == (1, 1)
        spec, result = job["data"]["ambs"], job["data"]["ambs_result"]
        assert spec["job_id"] == int(r["job_id"])
        assert spec["config"]["x0"] == pytest.approx(float(r["p:x0"]))
        assert spec["config"]["x1"] == pytest.approx(float(r["p:x1"]))
        assert result["status"] == "ok" and result["objective"] == pytest.approx(float(r["objective"]))
        # The objective is Branin's (negated) at the configuration, computed by the Balsam job.
        x0, x1 = spec["config"]["x0"], spec["config"]["x1"]
        b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
        branin = (x1 - b * x0 ** 2 + c * x0 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x0) + 10
        assert float(r["objective"]) == pytest.approx(-branin)
    assert len({j["application"] for j in jobs.values()}) == 1


FAULTY = """
import os

from ambs import Problem

problem = Problem(name="faulty_balsam")
problem.add_hyperparameter(["ok", "raise"], "mode")
problem.add_hyperparameter((1, 2), "n")
problem.add_metadata("ranks")
problem.add_metadata("gpus")
problem.add_metadata("threads")


def run(config):
    if config["mode"] == "raise":
        raise ValueError(f"no good for n={config['n']}")
    return {"objective": float(config["n"]), "ranks": os.environ.get("PMI_SIZE"),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": os.environ.get("OMP_NUM_THREADS")}
"""


def test_failed_evaluations_are_failed_in_csv_and_balsam(balsam_site, launcher, tmp_path, rows):
    """run raising is a failed row and a FAILED Balsam job; resources reach every rank."""
    (tmp_path / "faulty_balsam.py").write_text(FAULTY)
    workflow = f"{launcher}-faulty"
    env = {k: v for k, v in balsam_site.items() if k != "CUDA_VISIBLE_DEVICES"}
    # Two MPI ranks of two threads and one GPU each per evaluation; rank 0 reports.
    proc = _search(env, tmp_path, "faulty_balsam.py", "--method", "grid", "--max-evals", "4",
                   "--workers", "2", "--output", "run", "--balsam-workflow", workflow,
                   "--balsam-ranks-per-node", "2", "--threads-per-worker", "2", "--balsam-gpus-per-rank", "1")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    table = rows(tmp_path / "run" / "results.csv")
    assert sorted((r["p:mode"], r["p:n"]) for r in table) == [("ok", "1"), ("ok", "2"),
                                                              ("raise", "1"), ("raise", "2")]
    jobs = {j["id"]: j for j in _settled(balsam_site, workflow, 4)}
    assert set(jobs) == {r["m:balsam_job_id"] for r in table}
    for r in table:
        job = jobs[r["m:balsam_job_id"]]
        assert (job["num_nodes"], job["ranks_per_node"]) == (1, 2)
        if r["p:mode"] == "raise":
            assert r["status"] == "failed" and r["objective"] == ""
            assert r["error"].startswith(f"ValueError: no good for n={r['p:n']}")
            assert job["state"] == "FAILED"
        else:
            assert r["status"] == "ok" and float(r["objective"]) == float(r["p:n"])
            assert (r["m:ranks"], r["m:gpus"], r["m:threads"]) == ("2", "0", "2")
            assert r["local_rank"] == "0"
            assert job["state"] == "JOB_FINISHED"


HARSH = """
import os
import time

from ambs import Problem

problem = Problem(name="harsh_balsam")
problem.add_hyperparameter(["ok", "abort", "sleep"], "mode")


def run(config):
    if config["mode"] == "abort":
        os.abort()
    if config["mode"] == "sleep":
        with open("sleeper.pid", "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(300)
    return 1.0
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_crash_and_timeout_through_balsam(balsam_site, launcher, tmp_path, rows):
    """A job that dies without a result is crashed; one past --eval-timeout is killed by Balsam."""
    (tmp_path / "harsh_balsam.py").write_text(HARSH)
    workflow = f"{launcher}-harsh"
    proc = _search(balsam_site, tmp_path, "harsh_balsam.py", "--method", "grid", "--max-evals", "3",
                   "--workers", "3", "--eval-timeout", "15", "--output", "run", "--balsam-workflow", workflow)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    table = {r["p:mode"]: r for r in rows(tmp_path / "run" / "results.csv")}
    assert set(table) == {"ok", "abort", "sleep"}
    assert table["ok"]["status"] == "ok"
    # Balsam keeps the tail of the job's output (here MPICH's report of the abort) as the reason.
    assert table["abort"]["status"] == "crashed"
    assert table["abort"]["error"].startswith("the Balsam job failed (") and "signal 6" in table["abort"]["error"]
    assert table["sleep"]["status"] == "timeout" and "timeout of 15 s" in table["sleep"]["error"]

    deadline = time.monotonic() + 60
    while True:
        states = {j["id"]: j["state"] for j in _balsam_query(balsam_site, workflow)}
        if states.get(table["abort"]["m:balsam_job_id"]) == "FAILED" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert states[table["ok"]["m:balsam_job_id"]] in ("RUN_DONE", "POSTPROCESSED", "JOB_FINISHED")
    assert states[table["abort"]["m:balsam_job_id"]] == "FAILED"
    assert states[table["sleep"]["m:balsam_job_id"]] == "USER_KILLED"
    # The launcher stopped the sleeping evaluation's process, not just its database row.
    pid = int((tmp_path / "sleeper.pid").read_text())
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(pid)


def test_warm_start_and_resume_through_balsam(balsam_site, launcher, tmp_path, rows):
    """``--warm-start`` on the balsam evaluator: AMBS begins with the earlier
    run's best configuration, the earlier results are neither rerun nor
    counted, and a resume keeps the warm start."""
    from ambs import run_search

    old = tmp_path / "old"
    run_search(str(REPO / "problems" / "branin.py"), method="random", evaluator="serial", max_evals=20, seed=5,
               output=old, quiet=True)
    best = max(rows(old / "results.csv"), key=lambda r: float(r["objective"]))
    workflow = f"{launcher}-warm"
    args = [str(REPO / "problems" / "branin.py"), "--max-evals", "3", "--workers", "1", "--seed", "3",
            "--output", "run", "--balsam-workflow", workflow]
    proc = _search(balsam_site, tmp_path, *args, "--warm-start", str(old))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    table = rows(tmp_path / "run" / "results.csv")
    assert len(table) == 3 and all(r["status"] == "ok" and r["m:balsam_job_id"] for r in table)
    first = table[0]
    assert (float(first["p:x0"]), float(first["p:x1"])) == pytest.approx((float(best["p:x0"]), float(best["p:x1"])))
    assert float(first["objective"]) == pytest.approx(float(best["objective"]))
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["warm_start"] == [str(old.resolve())]

    # Not quiet: the resume says what it told the search again.
    proc = _search(balsam_site, tmp_path, *args[:2], "5", *args[3:], "--resume", quiet=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "ambs: warm start from 1 run(s): 20 of 20 results told" in proc.stderr
    table = rows(tmp_path / "run" / "results.csv")
    assert len(table) == 5 and len({r["job_id"] for r in table}) == 5
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["warm_start"] == [str(old.resolve())]
    assert len(_settled(balsam_site, workflow, 5)) == 5
