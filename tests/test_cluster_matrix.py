"""MPI x launcher on the local Slurm: a chained search, stopped by a signal, resumed.

Each cell submits with ``ambs submit`` from the virtualenv of one MPI, and
edits nothing in the script:

- ``mpich``: the README's .venv (mpi4py with the MPICH wheel), with its own
  ``mpiexec`` (Hydra) and with ``srun --mpi=pmi2``;
- ``openmpi``: .venv-openmpi, whose mpi4py is built from source against
  Debian's Open MPI as on a cluster (``scripts/site-mpi-env.sh`` builds it;
  .ci/run does), with Open MPI's ``mpirun`` and with ``srun --mpi=pmix``.

The first job of each chain is stopped with TERM to its batch script, as
Slurm's preemption and ``scancel --batch`` deliver it; the script turns it into
the USR1 every launcher forwards, so running evaluations end within the grace
period and the job exits 0. The chained job then resumes the run to its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.test_submit import _job_ids, _job_state, _rows, _wait_job, slurm  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SITE_PYTHON = ROOT / ".venv-openmpi" / "bin" / "python"

# (MPI, launcher, srun's --mpi): the matrix CI runs.
CELLS = [
    ("mpich", "mpiexec", None),
    ("mpich", "srun", "pmi2"),
    ("openmpi", "mpirun", None),
    ("openmpi", "srun", "pmix"),
]

PROBLEM = """
import time
from ambs import Problem
problem = Problem()
problem.add_hyperparameter((0.0, 1.0), "x")
def run(config):
    time.sleep(0.5)
    return -config["x"]
"""


def _python(mpi: str) -> Path:
    if mpi == "mpich":
        return Path(sys.executable)
    if not SITE_PYTHON.exists():
        unavailable("the Open MPI cells", "there is no site-style Open MPI environment here: "
                    "`sudo scripts/site-mpi-env.sh` installs Debian's Open MPI and builds .venv-openmpi")
    return SITE_PYTHON


def _wait_rows(path: Path, n: int, job: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(_rows(path)) >= n:
            return
        state = _job_state(job).get("JobState", "")
        if state and state not in ("PENDING", "RUNNING", "CONFIGURING"):
            pytest.fail(f"job {job} ended ({state}) before {n} results")
        time.sleep(0.5)
    subprocess.run(["scancel", job])
    pytest.fail(f"job {job} wrote fewer than {n} results in {timeout:g} s")


@pytest.mark.usefixtures("slurm")
@pytest.mark.parametrize(("mpi", "launcher", "pmi"), CELLS, ids=[f"{m}-{x}{'-' + p if p else ''}" for m, x, p in CELLS])
def test_a_chained_search_is_stopped_by_a_signal_and_resumed(tmp_path: Path, mpi: str, launcher: str,
                                                             pmi: str | None) -> None:
    python = _python(mpi)
    prob = tmp_path / "prob.py"
    prob.write_text(textwrap.dedent(PROBLEM))
    run_dir = tmp_path / "run"
    n = 40
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    args = [str(python), "-m", "ambs", "submit", "--scheduler", "slurm", str(prob), "--ranks-per-node", "4",
            "--walltime", "00:05:00", "--max-evals", str(n), "--method", "random", "--seed", "3",
            "--chain", "1", "-o", str(run_dir), "--launcher", launcher]
    if pmi:
        args += ["--mpi", pmi]
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    first, second = _job_ids(res.stdout)
    script = (run_dir / "job.slurm").read_text()
    if launcher == "srun":
        assert f"--mpi={pmi}" in script

    _wait_rows(run_dir / "results.csv", 6, first, 120)
    subprocess.run(["scancel", "--batch", "--signal=TERM", first], check=True)
    _wait_job(first, 120)
    state = _job_state(first)
    log = (run_dir / f"job-{first}.out").read_text()
    assert state.get("JobState") == "COMPLETED", (state.get("JobState"), state.get("ExitCode"), log)
    assert "stopped by" in log, log
    done = _rows(run_dir / "results.csv")
    assert 6 <= len(done) < n, log
    # Evaluations that were running at the stop finished within the grace period.
    assert {r["status"] for r in done} == {"ok"}, log

    _wait_job(second, 180)
    log2 = (run_dir / f"job-{second}.out").read_text()
    assert _job_state(second).get("JobState") == "COMPLETED", log2
    assert f"resuming {run_dir} ({len(done)} done)" in log2, log2
    rows = _rows(run_dir / "results.csv")
    assert len(rows) == n, log2
    assert rows[: len(done)] == done
    assert len({r["p:x"] for r in rows}) == n, "an evaluation was repeated"
    assert {r["worker"] for r in rows} == {"1", "2", "3"}
    # run.json says which MPI and launcher ran, and which jobs.
    info = json.loads((run_dir / "run.json").read_text())
    assert info["mpi_library"].startswith("Open MPI" if mpi == "openmpi" else "MPICH"), info["mpi_library"]
    assert info["launcher"].split()[0].endswith(launcher), info["launcher"]
    assert info["scheduler_jobs"] == [first, second]
