"""`ambs submit` and the job scripts: rendering, and real jobs on a local Slurm.

The Slurm tests need the one-node cluster of scripts/slurm-local-up.sh
(.ci/run starts it). Without one they skip, except under CI, where a
missing cluster is a failure: CI must exercise the real scheduler.
"""

from __future__ import annotations

import csv
import json
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


def _options(base: dict[str, str], args: list[str]) -> list[str]:
    """``base`` options, with ``args`` (flag, value, ...) replacing or adding to them, as words."""
    merged = {**base, **dict(zip(args[::2], args[1::2]))}
    return [w for kv in merged.items() for w in kv]


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
    flat = _options({"--scheduler": "slurm", "--walltime": "01:00:00"}, args)
    res = _ambs("submit", "problems/branin.py", "--ranks-per-node", "2", "--dry-run", *flat)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ambs: error:") and message in lines[0]


def test_single_rank_job_is_refused() -> None:
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "1",
                "--walltime", "01:00:00", "--dry-run")
    assert res.returncode == 2 and "at least 2 ranks" in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "asha"], "budget"),
        (["--stopper", "sha"], "budget"),
        (["--stopper", "sha", "--method", "random"], "--stopper applies to --method ambs"),
        (["--stop-rule", "lce"], "final step"),
        (["--warm-start", "/nonexistent/run"], "--warm-start /nonexistent/run: no such run directory"),
        (["--initial-configs", "/nonexistent/c.csv"], "--initial-configs /nonexistent/c.csv: no such file"),
        (["--walltime", "1:61:00"], "below 60"),
        (["--warning", "5"], "too short"),
    ],
)
def test_what_the_search_would_refuse_is_refused_at_submit(tmp_path: Path, args: list[str], message: str) -> None:
    """Before anything is written or queued: a job must not fail after waiting for its nodes."""
    flat = _options({"--walltime": "01:00:00"}, args)
    res = _ambs("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "2",
                "-o", str(tmp_path / "run"), *flat, cwd=ROOT)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_default_run_directories_never_collide(tmp_path: Path) -> None:
    """Two submissions within one second get two run directories."""
    written = []
    for _ in range(2):
        res = _ambs("submit", "--scheduler", "slurm", str(ROOT / "problems/branin.py"), "--ranks-per-node", "2",
                    "--walltime", "01:00:00", "--dry-run", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        written.append(res.stderr.split("# written to ")[1].split(";")[0])
    assert written[0] != written[1] and all(Path(w).is_file() for w in written)


def _fake_sbatch(tmp_path: Path, fail_after: int) -> dict[str, str]:
    """An sbatch that queues ``fail_after`` jobs, then refuses as a full queue would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    count = tmp_path / "count"
    (bin_dir / "sbatch").write_text(textwrap.dedent(f"""\
        #!/bin/bash
        n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}
        if [ "$n" -ge {fail_after} ]; then
          echo "sbatch: error: AssocMaxSubmitJobLimit" >&2; exit 1
        fi
        echo "$((700 + n))"
        """))
    (bin_dir / "sbatch").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_a_failed_submission_leaves_nothing_and_a_broken_chain_names_its_jobs(tmp_path: Path) -> None:
    args = ("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "2",
            "--walltime", "01:00:00", "--no-launcher-check")
    res = _ambs(*args, "-o", str(tmp_path / "none"), env=_fake_sbatch(tmp_path / "a", fail_after=0))
    assert res.returncode == 2 and "AssocMaxSubmitJobLimit" in res.stderr
    assert not (tmp_path / "none").exists()
    res = _ambs(*args, "--chain", "2", "-o", str(tmp_path / "some"), env=_fake_sbatch(tmp_path / "b", fail_after=2))
    assert res.returncode == 2
    line = res.stderr.strip().splitlines()[-1]
    assert "AssocMaxSubmitJobLimit" in line and "job(s) 700 701 of the chain are queued" in line
    assert "scancel 700 701" in line
    assert [ln.split()[0] for ln in (tmp_path / "some" / "jobs.txt").read_text().splitlines()] == ["700", "701"]
    assert (tmp_path / "some" / "job.slurm").is_file()  # the queued jobs run it


def test_a_second_submission_to_a_queued_run_is_refused(slurm: None, tmp_path: Path) -> None:
    """Two jobs on one run directory would run two searches on one CSV (the second
    one locked out only once both run): refused at submit time, while the first waits."""
    run_dir = tmp_path / "run"
    args = ("submit", "--scheduler", "slurm", "problems/branin.py", "--ranks-per-node", "2",
            "--walltime", "00:05:00", "-o", str(run_dir))
    res = _ambs(*args, "--directive=--hold")
    assert res.returncode == 0, res.stderr
    (job,) = _job_ids(res.stdout)
    try:
        script = (run_dir / "job.slurm").read_text()
        again = _ambs(*args)
        assert again.returncode == 2 and f"job {job} was submitted for it" in again.stderr, again.stderr
        dry = _ambs(*args, "--max-evals", "7", "--dry-run")
        assert dry.returncode == 0 and "MAX_EVALS=7" in dry.stdout and "not written" in dry.stderr
        assert (run_dir / "job.slurm").read_text() == script  # the queued job's script as submitted
    finally:
        subprocess.run(["scancel", job])


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
    run_dir = tmp_path / "run%x"  # sbatch would expand %x in --output: the script writes %%
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


# ------------------------------------------------ the lock of a job killed hard
def _lock_of(run_dir: Path, job: str) -> None:
    """The lock file a search on another node of batch job ``job`` leaves when it is
    killed hard (SIGKILL at the walltime, a failed node): fresh, never released."""
    run_dir.mkdir()
    holder = {"host": "another-node", "pid": 4242, "start": "1", "boot": "x", "job": job,
              "scheduler": "slurm", "restart": None, "since": "2026-01-01T00:00:00+0000"}
    (run_dir / "run.lock").write_text(json.dumps(holder) + "\n")


def test_lock_of_an_ended_job_is_taken_over_at_once(slurm: None, tmp_path: Path) -> None:
    """The next job of a chain must not wait out the heartbeat timeout (or be refused)
    because the job before was killed on another node: squeue says it has ended."""
    from ambs.errors import RunDirError
    from ambs.runlock import RunLock

    done = subprocess.run(["sbatch", "--parsable", "--output=/dev/null", "--wrap", "true"], capture_output=True, text=True,
                          check=True).stdout.strip().split(";")[0]
    _wait_job(done, 60)
    _lock_of(tmp_path / "ended", done)
    lock = RunLock(tmp_path / "ended")
    with pytest.warns(UserWarning, match=f"its job {done} has ended"):
        lock.acquire()
    assert json.loads((tmp_path / "ended" / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()
    running = subprocess.run(["sbatch", "--parsable", "--output=/dev/null", "--wrap", "sleep 60"], capture_output=True, text=True,
                             check=True).stdout.strip().split(";")[0]
    try:
        deadline = time.monotonic() + 60
        while _job_state(running).get("JobState") != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)
        _lock_of(tmp_path / "running", running)
        with pytest.raises(RunDirError, match="in use by another search"):
            RunLock(tmp_path / "running").acquire()
    finally:
        subprocess.run(["scancel", running])
