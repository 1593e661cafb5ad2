"""Render job scripts for Slurm and PBS from the package's templates, and submit them.

The job script only calls the ``ambs`` command line: one MPI search over the
allocation, a warning signal (Slurm) or timer (PBS) before the walltime so
the search stops cleanly, and a resume when a later job of a chain starts.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ambs.errors import AmbsError
from ambs.walltime import hms, parse_walltime

__all__ = ["EXAMPLES", "JobSpec", "render", "submit", "LAUNCHERS", "SCHEDULERS"]

SCHEDULERS = ("slurm", "pbs")
LAUNCHERS = ("srun", "mpiexec")
_PLACEHOLDER = re.compile(r"@(\w+)@")
# C0 and C1 control characters and Unicode line breaks: any of them would end
# a #SBATCH/#PBS line (or a shell word) early and start a line of its own.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass
class JobSpec:
    """What a job asks for and what it runs.

    Args:
        scheduler: ``slurm`` or ``pbs``.
        problem: the problem module as the search should load it.
        run_dir: absolute run directory.
        workdir: directory the job runs in (dotted problem names resolve there).
        nodes, ranks_per_node: the allocation; rank 0 is the master.
        walltime: the job's walltime, as :func:`ambs.walltime.parse_walltime` reads it.
        method, max_evals: the search method and evaluation budget.
        search_args: further ``ambs search`` flags, already split.
        gpus_per_node, threads_per_worker: placement on GPU or CPU nodes.
        account, queue: charged account, partition or queue.
        launcher: ``mpiexec`` (default) or ``srun`` (Slurm only).
        warning: seconds before the walltime at which the search stops.
    """

    scheduler: str
    problem: str
    run_dir: Path
    workdir: Path
    nodes: int
    ranks_per_node: int
    walltime: str
    method: str = "ambs"
    max_evals: int = 100
    search_args: list[str] = field(default_factory=list)
    gpus_per_node: int | None = None
    threads_per_worker: int | None = None
    account: str | None = None
    queue: str | None = None
    launcher: str | None = None
    warning: int = 120
    job_name: str = "ambs"
    portable: bool = False  # `ambs`, `mpiexec` from PATH; paths relative to the submit directory


def _ambs_command() -> list[str]:
    """The ``ambs`` of this installation (its words), so the job runs the same code."""
    exe = Path(sys.executable).parent / "ambs"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "ambs"]


def _check_values(spec: JobSpec, job_output: str) -> None:
    """Refuse, in one line, a value that would break out of its line of the script.

    Every value is checked for control characters (a newline would end a
    ``#SBATCH`` line or a shell word and start a line of its own); values of
    scheduler directives must also be one word, as sbatch and qsub read them.
    The values that reach command lines are shell-quoted by :func:`render`.
    """
    directives = {
        "the job name (--job-name, or ambs-<Problem name>)": spec.job_name,
        "--account": spec.account,
        "--queue": spec.queue,
        "--walltime": spec.walltime,
        "--output": job_output,
    }
    words = {
        "PROBLEM": spec.problem,
        "the run directory (--output)": str(spec.run_dir),
        "the working directory": str(spec.workdir),
        "--method": spec.method,
        **{f"search option {a!r}"[:60]: a for a in spec.search_args},
    }
    for what, value in {**directives, **words}.items():
        if value is not None and _CONTROL.search(value):
            raise AmbsError(f"{what} {value!r} holds a control character (a newline, tab, ...), "
                            "which cannot go into a job script")
    tag = "#SBATCH" if spec.scheduler == "slurm" else "#PBS"
    for what, value in directives.items():
        if value is not None and (value == "" or re.search(r"[\s'\"\\]", value)):
            raise AmbsError(f"{what} {value!r} cannot go into a {tag} line: it must be one word "
                            "without spaces or quotes")


def _mpiexec() -> str:
    exe = Path(sys.executable).parent / "mpiexec"
    return shlex.quote(str(exe)) if exe.exists() else "mpiexec"


def render(spec: JobSpec) -> str:
    """The job script text for ``spec``."""
    if spec.scheduler not in SCHEDULERS:
        raise AmbsError(f"unknown scheduler {spec.scheduler!r} (choose from {', '.join(SCHEDULERS)})")
    if spec.nodes < 1 or spec.ranks_per_node < 1:
        raise AmbsError("--nodes and --ranks-per-node must be at least 1")
    total = spec.nodes * spec.ranks_per_node
    if total < 2:
        raise AmbsError("a job needs at least 2 ranks: rank 0 searches, the others evaluate")
    try:
        seconds = int(parse_walltime(spec.walltime))
    except ValueError as exc:
        raise AmbsError(f"--walltime: {exc}") from None
    if seconds <= spec.warning + 30:
        raise AmbsError(
            f"--walltime {spec.walltime} leaves no time to search: it must exceed the "
            f"--warning of {spec.warning} s by more than 30 s"
        )
    # mpiexec (Hydra reads the Slurm or PBS allocation) is the default: srun
    # --mpi=pmi2 needs a Slurm PMI2 that the job's MPI works with.
    launcher = spec.launcher or "mpiexec"
    if launcher not in LAUNCHERS:
        raise AmbsError(f"unknown launcher {launcher!r} (choose from {', '.join(LAUNCHERS)})")
    if spec.scheduler == "pbs" and launcher != "mpiexec":
        raise AmbsError("PBS jobs launch with mpiexec; drop --launcher srun")
    mpiexec = "mpiexec" if spec.portable else _mpiexec()
    launch = "srun --mpi=pmi2" if launcher == "srun" else f'{mpiexec} -n "$SLURM_NTASKS"'
    if spec.portable:
        submit_dir = "SLURM_SUBMIT_DIR" if spec.scheduler == "slurm" else "PBS_O_WORKDIR"
        workdir = f'"${{{submit_dir}:-$PWD}}"'
        job_output = "ambs-%j.out" if spec.scheduler == "slurm" else "ambs-job.out"
    else:
        workdir = shlex.quote(str(spec.workdir))
        job_output = f"{spec.run_dir}/job-%j.out" if spec.scheduler == "slurm" else f"{spec.run_dir}/job.out"
    _check_values(spec, job_output)
    threads = spec.threads_per_worker or 1
    search_args = list(spec.search_args)
    if spec.gpus_per_node:
        search_args += ["--gpus-per-node", str(spec.gpus_per_node)]
    if spec.threads_per_worker:
        search_args += ["--threads-per-worker", str(spec.threads_per_worker)]
    values: dict[str, str | None] = {
        "job_name": spec.job_name,
        "nodes": str(spec.nodes),
        "ranks_per_node": str(spec.ranks_per_node),
        "total_ranks": str(total),
        "cpus_per_task": str(spec.threads_per_worker) if spec.threads_per_worker else None,
        "gpus_per_node": str(spec.gpus_per_node) if spec.gpus_per_node else None,
        "pbs_gpus": f":gpus={spec.gpus_per_node}" if spec.gpus_per_node else "",
        "walltime": hms(seconds),  # every scheduler reads HH:MM:SS the same way
        "account": spec.account,
        "queue": spec.queue,
        "run_dir": shlex.quote(str(spec.run_dir)),
        "workdir": workdir,
        "job_output": job_output,
        "method": shlex.quote(spec.method),
        "max_evals": str(spec.max_evals),
        "threads": str(threads),
        "warning": str(spec.warning),
        # The search's own clock stops it too, in case a signal never comes.
        "search_walltime": str(seconds - spec.warning),
        "grace": str(max(spec.warning // 2, 5)),
        "launcher": launch,
        "mpiexec": mpiexec,
        # The words of a bash array, used as "${AMBS[@]}": a path with a space stays one word.
        "ambs": "ambs" if spec.portable else " ".join(shlex.quote(w) for w in _ambs_command()),
        "problem": shlex.quote(spec.problem),
        "search_args": "".join(" " + shlex.quote(a) for a in search_args),
    }
    template = (resources.files("ambs") / "templates" / f"{spec.scheduler}.sh").read_text()
    lines = []
    for line in template.splitlines():
        names = _PLACEHOLDER.findall(line)
        if any(values.get(n) is None for n in names):
            if any(n not in values for n in names):
                raise KeyError(f"template placeholder {names} unknown")
            continue  # an optional directive with no value: leave the line out
        lines.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)] or "", line))
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    if shutil.which(cmd[0]) is None:
        raise AmbsError(f"{cmd[0]} not found: is this a login node of a {cmd[0][:2]} cluster? "
                        "(use --dry-run to only print the script)")
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise AmbsError(f"{' '.join(cmd[:2])} failed: {msg[-1] if msg else f'exit {res.returncode}'}")
    return res.stdout.strip()


def submit(spec: JobSpec, script: Path, chain: int = 0) -> list[str]:
    """Submit ``script`` and ``chain`` follow-up jobs that each start after the
    previous one ends (any outcome) and resume the run. Returns the job ids."""
    ids: list[str] = []
    for _ in range(chain + 1):
        if spec.scheduler == "slurm":
            cmd = ["sbatch", "--parsable"]
            if ids:
                cmd.append(f"--dependency=afterany:{ids[-1]}")
            out = _run(cmd + [str(script)])
            ids.append(out.split(";")[0].strip())
        else:
            cmd = ["qsub"]
            if ids:
                cmd += ["-W", f"depend=afterany:{ids[-1]}"]
            # From the run directory: a qsub that ignores #PBS -o (Slurm's PBS
            # wrappers do) writes the job's output where it was called.
            ids.append(_run(cmd + [str(script.resolve())], cwd=script.resolve().parent).split()[0])
    return ids


def _example(scheduler: str, gpu: bool) -> JobSpec:
    return JobSpec(
        scheduler=scheduler, problem="problems.mlp_digits",
        run_dir=Path("runs/mlp_digits-ambs"), workdir=Path("."),
        nodes=4 if gpu else 8, ranks_per_node=4 if gpu else 16, walltime="02:00:00",
        method="ambs", max_evals=2000, gpus_per_node=4 if gpu else None,
        threads_per_worker=None if gpu else 4, account="MYPROJECT",
        queue="gpu" if gpu else "normal", job_name="ambs-mlp", portable=True,
    )


# The ready job scripts in slurm/ and pbs/, rendered from the same templates
# (`python scripts/render_job_examples.py .` writes them; a test keeps them in sync).
EXAMPLES: dict[str, JobSpec] = {
    "slurm/cpu.sh": _example("slurm", gpu=False),
    "slurm/gpu.sh": _example("slurm", gpu=True),
    "pbs/cpu.sh": _example("pbs", gpu=False),
    "pbs/gpu.sh": _example("pbs", gpu=True),
}
