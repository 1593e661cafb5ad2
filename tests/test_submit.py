"""`ambs submit` and the job scripts: rendering, and real jobs on a local Slurm.

The Slurm tests need the one-node cluster of scripts/slurm-local-up.sh
(.ci/run starts it). Without one they skip, except under CI, where a
missing cluster is a failure: CI must exercise the real scheduler.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ambs.submit import EXAMPLES, render
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _ambs(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "-m", "ambs", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _slurm_up() -> str | None:
    """None when a Slurm node is usable here, else why not."""
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    states = res.stdout.split()
    if res.returncode != 0 or not any(s in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no usable Slurm node (sinfo: {res.stdout.strip() or res.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    why = _slurm_up()
    if why is None:
        return
    unavailable("the Slurm tests", f"{why}: start the local cluster with `sudo scripts/slurm-local-up.sh`")


def _wait_job(job_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if res.returncode != 0 or not res.stdout.strip():
            return
        time.sleep(1)
    subprocess.run(["scancel", job_id])
    pytest.fail(f"job {job_id} did not finish within {timeout:g} s")


def _job_state(job_id: str) -> dict[str, str]:
    res = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True)
    return dict(f.split("=", 1) for f in res.stdout.split() if "=" in f)


def _job_ids(stdout: str) -> list[str]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("submitted"))
    first = line.split(" as job ")[1].split(",")[0].strip()
    rest = line.split("chained job(s) ")[1].split() if "chained" in line else []
    return [first, *rest]


SLEEPY = """
import time
from ambs import Problem
problem = Problem()
problem.add_hyperparameter((0.0, 1.0), "x")
def run(config):
    time.sleep({sleep})
    return -config["x"]
"""


# ------------------------------------------------------------------ rendering
def test_examples_are_rendered_from_the_templates() -> None:
    for rel, spec in EXAMPLES.items():
        assert (ROOT / rel).read_text() == render(spec), (
            f"{rel} is out of date: run python scripts/render_job_examples.py .")
        res = subprocess.run(["bash", "-n", str(ROOT / rel)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_dry_run_prints_the_script(tmp_path: Path) -> None:
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--nodes", "2",
                "--gpus-per-node", "4", "--walltime", "01:00:00",
                "--account", "proj", "--queue", "gpu", "--max-evals", "50", "--method", "random",
                "--assign", "shadho", "--fit", "sync", "--dry-run", "-o", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    script = res.stdout
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks=9", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --time=01:00:00", "#SBATCH --account=proj", "#SBATCH --partition=gpu",
                 "#SBATCH --signal=B:USR1@120", "#SBATCH --open-mode=append", "METHOD=random", "MAX_EVALS=50"):
        assert line in script
    assert "--ntasks-per-node" not in script and "--mpi=" not in script
    assert f'{BIN / "mpiexec"} -n "$SLURM_NTASKS" --hostfile "$HOSTFILE"' in script
    assert "--gpus-per-node 4" in script
    assert "--assign shadho" in script and "--fit sync" in script  # search options travel along
    assert "--walltime 3480" in script  # the search's own clock: walltime minus the warning
    # The run directory is made (#SBATCH --output names it) and holds the printed script.
    assert (tmp_path / "run" / "job.slurm").read_text() == script
    assert f"sbatch --parsable {tmp_path / 'run' / 'job.slurm'}" in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--walltime", "00:02:00"], "leaves no time"),
        (["--walltime", "abc"], "HH:MM:SS"),
        (["--launcher", "srun", "--scheduler", "pbs"], "mpiexec"),
        (["--mpi", "pmix"], "srun"),
        (["--launcher", "custom"], "--launcher-command"),
        (["--launcher-command", "srun\n-n 2"], "control character"),
        (["--launcher-command", "aprun 'x"], "quotation"),
        (["--setup", "module load x\nrm -rf y"], "control character"),
        (["--directive", "--comment=a\n#SBATCH --x"], "control character"),
        (["--directive", "mail-type=END"], "#SBATCH option"),
        (["--qos", "a b"], "one word"),
        (["--constraint", "a\tb"], "control character"),
        (["--qos", "high", "--scheduler", "pbs"], "Slurm's"),
        (["--setup-file", "/nonexistent/setup.sh"], "--setup-file"),
    ],
)
def test_submit_errors_are_one_line(args: list[str], message: str) -> None:
    base = {"--scheduler": "slurm", "--walltime": "01:00:00"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    flat = [x for kv in base.items() for x in kv]
    res = _ambs("submit", "problems/branin.py", "--ranks-per-node", "2", "--dry-run", *flat)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ambs: error:") and message in lines[0]


def test_single_rank_job_is_refused() -> None:
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "1",
                "--walltime", "01:00:00", "--dry-run")
    assert res.returncode == 2 and "at least 2 ranks" in res.stderr


# ------------------------------------------------------------- a PBS-like run
def test_pbs_script_body_reads_the_pbs_environment(tmp_path: Path) -> None:
    prob = tmp_path / "prob.py"
    prob.write_text(textwrap.dedent(SLEEPY.format(sleep=0.05)))
    run_dir = tmp_path / "run"
    res = _ambs("submit", "--scheduler", "pbs", str(prob), "--ranks-per-node", "4",
                "--walltime", "00:10:00", "--max-evals", "12", "--dry-run", "-o", str(run_dir))
    assert res.returncode == 0, res.stderr
    script = tmp_path / "job.pbs"
    script.write_text(res.stdout)
    nodefile = tmp_path / "nodefile"
    host = socket.gethostname()
    nodefile.write_text(f"{host}\n" * 4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PBS_NODEFILE=str(nodefile), PBS_JOBID="4242.pbs-server", PBS_O_WORKDIR=str(tmp_path))
    job = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=180)
    assert job.returncode == 0, job.stderr + job.stdout
    # The script writes its own output file per job, beside the run.
    log = (run_dir / "job-4242.pbs-server.out").read_text()
    assert f"ambs job 4242.pbs-server: 4 ranks on {host}" in log
    rows = _rows(run_dir / "results.csv")
    assert len(rows) == 12
    assert {r["worker"] for r in rows} == {"1", "2", "3"}


# ------------------------------------------------------------ real Slurm jobs
def test_slurm_job_runs_an_mpi_search(slurm: None, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "3",
                "--walltime", "00:05:00", "--max-evals", "12", "--seed", "1", "-o", str(run_dir))
    assert res.returncode == 0, res.stderr
    (job,) = _job_ids(res.stdout)
    _wait_job(job, 240)
    assert _job_state(job).get("JobState") == "COMPLETED"
    rows = _rows(run_dir / "results.csv")
    assert len(rows) == 12
    assert {r["worker"] for r in rows} == {"1", "2"}
    log = (run_dir / f"job-{job}.out").read_text()
    assert "ambs job" in log and "3 ranks" in log


def test_slurm_job_runs_the_site_setup_and_directives(slurm: None, tmp_path: Path) -> None:
    """--setup runs in the job before the launch and --directive reaches sbatch,
    with no script edited; the venv's MPICH mpiexec, checked at submit time, launches."""
    run_dir = tmp_path / "run"
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "3",
                "--walltime", "00:05:00", "--max-evals", "6", "--seed", "3", "-o", str(run_dir),
                "--setup", "export AMBS_TEST_SETUP=yes", "--setup", 'echo "setup says $AMBS_TEST_SETUP"',
                "--directive=--comment=ambs-test", "--launcher", "mpiexec", "--requeue")
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr, res.stderr  # the launcher check passed
    (job,) = _job_ids(res.stdout)
    comment = subprocess.run(["squeue", "-h", "-j", job, "-o", "%k"], capture_output=True, text=True).stdout
    _wait_job(job, 120)
    state = _job_state(job)
    assert state.get("JobState") == "COMPLETED", state
    assert state.get("Comment") == "ambs-test" or comment.strip() == "ambs-test", (state, comment)
    assert state.get("Requeue") == "1"
    log = (run_dir / f"job-{job}.out").read_text()
    assert "setup says yes" in log, log
    assert len(_rows(run_dir / "results.csv")) == 6
    script = (run_dir / "job.slurm").read_text()
    assert f"export AMBS_LAUNCHER={BIN / 'mpiexec'}" in script


def test_slurm_gpu_layout_launches_from_the_host_file(slurm: None, tmp_path: Path) -> None:
    """A GPU job's script (its --gpus-per-node directive left out: this node has
    no GPUs) runs N*G+1 ranks from the host file it builds: the master and G
    workers on the first node."""
    run_dir = tmp_path / "run"
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--gpus-per-node", "2",
                "--walltime", "00:05:00", "--max-evals", "6", "--seed", "5", "--dry-run", "-o", str(run_dir))
    assert res.returncode == 0, res.stderr
    script = tmp_path / "job.slurm"
    script.write_text("".join(ln + "\n" for ln in res.stdout.splitlines() if "--gpus-per-node=" not in ln))
    job = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                         cwd=tmp_path).stdout.strip()
    _wait_job(job, 120)
    assert _job_state(job).get("JobState") == "COMPLETED", (run_dir / f"job-{job}.out").read_text()
    host = (run_dir / f"hosts-{job}").read_text().split()
    assert len(host) == 3 and len(set(host)) == 1
    assert "3 ranks" in (run_dir / f"job-{job}.out").read_text()
    assert {r["worker"] for r in _rows(run_dir / "results.csv")} == {"1", "2"}


def test_slurm_time_limit_stops_cleanly_and_chain_resumes(slurm: None, tmp_path: Path) -> None:
    prob = tmp_path / "prob.py"
    prob.write_text(textwrap.dedent(SLEEPY.format(sleep=1.0)))
    run_dir = tmp_path / "run"
    # Two-minute jobs warned 70 s before the limit: the search's own walltime is
    # 50 s, and Slurm's warning comes earlier still (here 20 to 50 s into a job:
    # it checks limits periodically). Three workers at 1 s an evaluation manage
    # well under 150 evaluations a job and at least ~45, so 160 take two to four.
    n = 160
    res = _ambs("submit", "--scheduler", "slurm", str(prob), "--ranks-per-node", "4",
                "--walltime", "00:02:00", "--warning", "70", "--max-evals", str(n),
                "--method", "random", "--seed", "4", "--chain", "3", "-o", str(run_dir))
    assert res.returncode == 0, res.stderr
    jobs = _job_ids(res.stdout)
    assert len(jobs) == 4
    logs, counts = [], []
    for job in jobs:
        _wait_job(job, 200)
        state = _job_state(job)
        log = (run_dir / f"job-{job}.out").read_text()
        # Every job ends cleanly (exit 0) before its limit, whatever stopped it.
        assert state.get("JobState") == "COMPLETED", (state.get("JobState"), state.get("ExitCode"), log)
        logs.append(log)
        counts.append(len(_rows(run_dir / "results.csv")) if (run_dir / "results.csv").exists() else 0)
        if len(logs) == 1:
            first = _rows(run_dir / "results.csv")
    assert "stopped by" in logs[0], logs[0]
    assert 5 <= len(first) < n
    assert f"resuming {run_dir} ({len(first)} done)" in logs[1], logs[1]
    rows = _rows(run_dir / "results.csv")
    assert len(rows) == n
    assert rows[: len(first)] == first
    assert len({r["job_id"] for r in rows}) == n
    assert len({r["p:x"] for r in rows}) == n, "an evaluation was repeated"
    # The job that reached max-evals is the last to search; later ones stop at once.
    done = next(k for k, c in enumerate(counts) if c == n)
    assert "continue with:" not in logs[done], logs[done]
    for log in logs[done + 1:]:
        assert "nothing to do" in log, log


def test_pbs_job_through_slurm_torque_wrappers(slurm: None, tmp_path: Path) -> None:
    if shutil.which("qsub") is None:
        pytest.fail("qsub missing: scripts/slurm-local-up.sh installs slurm-wlm-torque")
    run_dir = tmp_path / "run"
    # Slurm's wrappers read Torque's nodes=N:ppn=P, not PBS Pro's select=.
    res = _ambs("submit", "--scheduler", "pbs", "problems/branin.py", "--ranks-per-node", "3",
                "--walltime", "00:05:00", "--max-evals", "9", "--seed", "2", "-o", str(run_dir),
                "--pbs-flavor", "torque")
    assert res.returncode == 0, res.stderr
    (job,) = _job_ids(res.stdout)
    _wait_job(job, 240)
    rows = _rows(run_dir / "results.csv")
    assert len(rows) == 9
    # The job's output stays with the run, not in the directory qsub was called from.
    assert not list(ROOT.glob(f"*.[oe]{job}")), "job output written into the working directory"
    assert list(run_dir.glob(f"*{job}*")) or (run_dir / "job.out").exists()
    assert {r["worker"] for r in rows} == {"1", "2"}
