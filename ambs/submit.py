"""Render job scripts for Slurm and PBS from the package's templates, and submit them.

The job script only calls the ``ambs`` command line: one MPI search over the
allocation, a warning signal (Slurm) or timer (PBS) before the walltime so
the search stops cleanly, and a resume when a later job of a chain (or a
requeued job) starts. The site's own lines (``--setup``, ``--directive``)
and launcher (``--launcher``) go in as given, so no script needs editing.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Callable

from ambs.errors import AmbsError
from ambs.jobscript.launcher import LAUNCHERS, custom_words
from ambs.jobscript.spec import JobSpec, check_values
from ambs.walltime import hms, parse_walltime

__all__ = ["EXAMPLES", "JobSpec", "LAUNCHERS", "SCHEDULERS", "chain_commands", "launcher_words",
           "render", "submit"]

SCHEDULERS = ("slurm", "pbs")
_PLACEHOLDER = re.compile(r"@(\w+)@")
_MARK = re.compile(r"#@(gpu|slots) ")


def _ambs_command() -> list[str]:
    """The ``ambs`` of this installation (its words), so the job runs the same code."""
    exe = Path(sys.executable).parent / "ambs"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "ambs"]


def _mpiexec(spec: JobSpec, name: str) -> str:
    """mpiexec/mpirun as the script calls it: absolute (the one beside this Python
    first), or the bare name, from the job's PATH, when there is none here."""
    if spec.portable:
        return name
    from ambs.jobscript.launcher import resolve

    return spec.launcher_path or resolve(name) or name


def launcher_words(spec: JobSpec) -> list[str]:
    """The launcher's words before ``ambs``; the script adds its rank count and host file
    (``"$SLURM_NTASKS"``, ``"$NRANKS"``, ``"$HOSTFILE"``) for mpiexec and mpirun."""
    launcher = spec.launcher or ("custom" if spec.launcher_command else "mpiexec")
    if launcher not in LAUNCHERS:
        raise AmbsError(f"unknown launcher {launcher!r} (choose from {', '.join(LAUNCHERS)})")
    if spec.launcher_command is not None and launcher != "custom":
        raise AmbsError(f"--launcher-command is a custom launcher: drop --launcher {launcher}")
    if spec.mpi is not None and launcher != "srun":
        raise AmbsError(f"--mpi is srun's (srun --mpi=TYPE); --launcher {launcher} does not take it")
    if launcher == "custom":
        if spec.launcher_command is None:
            raise AmbsError("--launcher custom needs --launcher-command 'CMD ...'")
        return custom_words(spec.launcher_command)
    if launcher == "srun":
        if spec.scheduler != "slurm":
            raise AmbsError("srun is Slurm's launcher: PBS jobs launch with mpiexec, mpirun or "
                            "--launcher-command")
        words = ["srun"]
        cpus = _layout(spec)[2]
        if cpus:  # srun of Slurm 22.05 and later does not take it over from the job's #SBATCH line
            words.append(f"--cpus-per-task={cpus}")
        if spec.gpus_per_node:
            words.append("--distribution=arbitrary")  # ranks placed by SLURM_HOSTFILE
        return words + ([f"--mpi={spec.mpi}"] if spec.mpi else [])
    words = [_mpiexec(spec, launcher)]
    if spec.oversubscribe and spec.mpi_family == "openmpi":
        words.append("--oversubscribe")  # Hydra oversubscribes without being asked
    return words


_EXPANDABLE = re.compile(r"(?:[\w@%+=:,./-]|\$\{?[A-Za-z_]\w*\}?)+")


def _custom_word(word: str) -> str:
    """One word of ``--launcher-command``: ``$VAR``/``${VAR}`` expand, nothing else is shell."""
    if "$" in word and _EXPANDABLE.fullmatch(word):
        return f'"{word}"'
    return shlex.quote(word)


def _launch(spec: JobSpec, words: list[str], placed: bool) -> str:
    """The launch as the script writes it (``"$VAR"`` words stay unquoted)."""
    text = " ".join(shlex.quote(w) for w in words)
    launcher = spec.launcher or ("custom" if spec.launcher_command else "mpiexec")
    if launcher == "custom":
        return " ".join(_custom_word(w) for w in words)
    if launcher == "srun":
        return ('SLURM_HOSTFILE="$HOSTFILE" ' + text) if placed else text
    if spec.scheduler == "pbs":
        return text + ' -n "$NRANKS" ${HOSTS[@]+"${HOSTS[@]}"}'
    return text + ' -n "$SLURM_NTASKS"' + (' --hostfile "$HOSTFILE"' if placed else "")


def _layout(spec: JobSpec) -> tuple[int, int, int | None]:
    """Ranks a node, ranks in all, and CPUs a rank (None: not known)."""
    g = spec.gpus_per_node
    if g:
        if spec.ranks_per_node not in (None, g):
            raise AmbsError(f"with --gpus-per-node {g} the job runs {g} worker ranks a node plus the "
                            f"master on the first: drop --ranks-per-node {spec.ranks_per_node}")
        per_node, total = g + 1, spec.nodes * g + 1
    else:
        if spec.ranks_per_node is None:
            raise AmbsError("--ranks-per-node is needed (or --gpus-per-node on GPU nodes)")
        per_node, total = spec.ranks_per_node, spec.nodes * spec.ranks_per_node
    if total < 2:
        raise AmbsError("a job needs at least 2 ranks: rank 0 searches, the others evaluate")
    cpus = spec.threads_per_worker or (spec.cores_per_node // per_node if spec.cores_per_node else None)
    if cpus == 0:
        raise AmbsError(f"--cores-per-node {spec.cores_per_node} is fewer than the {per_node} ranks a node")
    return per_node, total, cpus


def _allocation(spec: JobSpec) -> dict[str, str | None]:
    """Ranks, CPUs and the resource lines of the allocation."""
    g = spec.gpus_per_node
    per_node, total, cpus = _layout(spec)
    if spec.scheduler == "pbs" and (spec.qos or spec.constraint):
        raise AmbsError("--qos and --constraint are Slurm's: on PBS write them with --directive")
    # The cores a node: PBS Pro's ncpus, Torque's ppn (Torque lists a node once
    # per ppn in PBS_NODEFILE: the script then writes a host file of its own).
    ncpus = spec.cores_per_node or per_node * (cpus or 1)
    if spec.pbs_flavor == "torque":
        chunk = f"nodes={spec.nodes}:ppn={ncpus}" + (f":gpus={g}" if g else "")
    else:
        chunk = (f"select={spec.nodes}:ncpus={ncpus}:mpiprocs={per_node}" + (f":ngpus={g}" if g else "")
                 + (f":mem={spec.mem}" if spec.mem else ""))
    return {
        "ranks_per_node": None if g else str(per_node),
        "total_ranks": str(total),
        "gpu_ranks": str(total) if g else None,
        "cpus_per_task": str(cpus) if cpus else None,
        "threads": str(cpus or 1),
        "pbs_select": chunk,
        "pbs_mem": spec.mem if spec.pbs_flavor == "torque" else None,
        # PBS Pro may put two chunks on one node unless told to scatter them;
        # the ranks-a-node layout (and a GPU job's host file) needs one a node.
        # A --directive '-l place=...' comes later in the script, and wins.
        "pbs_place": None if spec.pbs_flavor == "torque" else "scatter" + (":excl" if spec.exclusive else ""),
        "pbs_exclusive": "-n" if spec.pbs_flavor == "torque" and spec.exclusive else None,
        "torque_slots": str(per_node) if spec.pbs_flavor == "torque" and not g and ncpus != per_node else None,
    }


def render(spec: JobSpec) -> str:
    """The job script text for ``spec``."""
    if spec.scheduler not in SCHEDULERS:
        raise AmbsError(f"unknown scheduler {spec.scheduler!r} (choose from {', '.join(SCHEDULERS)})")
    if spec.pbs_flavor not in ("pro", "torque"):
        raise AmbsError(f"unknown PBS flavor {spec.pbs_flavor!r} (choose from pro, torque)")
    if spec.nodes < 1 or (spec.ranks_per_node is not None and spec.ranks_per_node < 1):
        raise AmbsError("--nodes and --ranks-per-node must be at least 1")
    allocation = _allocation(spec)
    try:
        seconds = int(parse_walltime(spec.walltime))
    except ValueError as exc:
        raise AmbsError(f"--walltime: {exc}") from None
    if spec.warning < 30:
        raise AmbsError(f"--warning {spec.warning} is too short: the search needs at least 30 s to let "
                        "running evaluations end, write its results and exit before the job is killed")
    if seconds <= spec.warning + 30:
        raise AmbsError(
            f"--walltime {spec.walltime} leaves no time to search: it must exceed the "
            f"--warning of {spec.warning} s by more than 30 s"
        )
    words = launcher_words(spec)
    placed = bool(spec.gpus_per_node)
    if spec.portable:
        submit_dir = "SLURM_SUBMIT_DIR" if spec.scheduler == "slurm" else "PBS_O_WORKDIR"
        workdir = f'"${{{submit_dir}:-$PWD}}"'
        job_output = "ambs-%j.out" if spec.scheduler == "slurm" else "ambs-job.out"
    else:
        workdir = shlex.quote(str(spec.workdir))
        # sbatch expands %j, %x, ... in --output: a '%' of the directory is written %%.
        job_output = (f"{str(spec.run_dir).replace('%', '%%')}/job-%j.out" if spec.scheduler == "slurm"
                      else f"{spec.run_dir}/job.out")
    check_values(spec, job_output)
    search_args = list(spec.search_args)
    if spec.gpus_per_node:
        search_args += ["--gpus-per-node", str(spec.gpus_per_node)]
    if spec.threads_per_worker:
        search_args += ["--threads-per-worker", str(spec.threads_per_worker)]
    tag = "#SBATCH" if spec.scheduler == "slurm" else "#PBS"
    values: dict[str, str | None] = {
        **allocation,
        "job_name": spec.job_name,
        "nodes": str(spec.nodes),
        "gpus_per_node": str(spec.gpus_per_node) if spec.gpus_per_node else None,
        "walltime": hms(seconds),  # every scheduler reads HH:MM:SS the same way
        "account": spec.account,
        "queue": spec.queue,
        "qos": spec.qos,
        "constraint": spec.constraint,
        "mem": spec.mem,
        "exclusive": "" if spec.exclusive else None,
        "requeue": ("" if spec.scheduler == "slurm" else "y") if spec.requeue else None,
        "directives": "\n".join(f"{tag} {d.strip()}" for d in spec.directives) or None,
        # The site's lines as written; module and conda scripts may read unset variables.
        "setup": "\n".join(["# Site setup (--setup, --setup-file, the config file), as written.", "set +u",
                            *spec.setup, "set -u"]) if spec.setup else None,
        "run_dir": shlex.quote(str(spec.run_dir)),
        "workdir": workdir,
        "job_output": job_output,
        "method": shlex.quote(spec.method),
        "max_evals": str(spec.max_evals),
        "warning": str(spec.warning),
        # The search's own clock stops it too, in case a signal never comes.
        "search_walltime": str(seconds - spec.warning),
        "grace": str(max(spec.warning // 2, 5)),
        "launch": _launch(spec, words, placed),
        "launcher_env": shlex.quote(" ".join(words)),
        # The words of a bash array, used as "${AMBS[@]}": a path with a space stays one word.
        "ambs": "ambs" if spec.portable else " ".join(shlex.quote(w) for w in _ambs_command()),
        "problem": shlex.quote(spec.problem),
        "search_args": "".join(" " + shlex.quote(a) for a in search_args),
    }
    template = (resources.files("ambs") / "templates" / f"{spec.scheduler}.sh").read_text()
    lines = []
    for line in template.splitlines():
        marked = _MARK.match(line)  # a line of one kind of job only
        if marked:
            if not {"gpu": placed, "slots": values["torque_slots"] is not None}[marked.group(1)]:
                continue
            line = line[marked.end():]
        names = _PLACEHOLDER.findall(line)
        if any(values.get(n) is None for n in names):
            if any(n not in values for n in names):
                raise KeyError(f"template placeholder {names} unknown")
            continue  # an optional directive with no value: leave the line out
        lines.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)] or "", line))
    return "\n".join(lines) + "\n"


def _command(spec: JobSpec, script: Path, after: str | None) -> list[str]:
    """The sbatch/qsub command line of one job of a chain."""
    if spec.scheduler == "slurm":
        return ["sbatch", "--parsable", *([f"--dependency=afterany:{after}"] if after else []), str(script)]
    return ["qsub", *(["-W", f"depend=afterany:{after}"] if after else []), str(script.resolve())]


def chain_commands(spec: JobSpec, script: Path, chain: int = 0) -> list[str]:
    """The command lines that submit ``script`` and its ``chain`` follow-ups, with
    ``<job K>`` for the id the command before prints (what ``--dry-run`` shows)."""
    lines = []
    for k in range(chain + 1):
        cmd = _command(spec, script, f"<job {k}>" if k else None)
        lines.append(" ".join(shlex.quote(w) if not w.startswith("--dependency=") and "<job" not in w
                              else w for w in cmd) + f"    # job {k + 1}")
    return lines


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    if shutil.which(cmd[0]) is None:
        kind = "Slurm" if cmd[0] == "sbatch" else "PBS"
        raise AmbsError(f"{cmd[0]} not found: is this a login node of a {kind} cluster? "
                        "(use --dry-run to only print the script)")
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise AmbsError(f"{' '.join(cmd[:2])} failed: {msg[-1] if msg else f'exit {res.returncode}'}")
    return res.stdout.strip()


def submit(spec: JobSpec, script: Path, chain: int = 0,
           on_submitted: Callable[[str], None] | None = None) -> list[str]:
    """Submit ``script`` and ``chain`` follow-up jobs that each start after the
    previous one ends (any outcome) and resume the run. Returns the job ids;
    ``on_submitted`` is told each as soon as it is queued. A chain that fails
    partway says which of its jobs are queued already."""
    ids: list[str] = []
    for _ in range(chain + 1):
        cmd = _command(spec, script, ids[-1] if ids else None)
        try:
            if spec.scheduler == "slurm":
                job = _run(cmd).split(";")[0].strip()
            else:
                # From the run directory: a qsub that ignores #PBS -o (Slurm's PBS
                # wrappers do) writes the job's output where it was called.
                job = _run(cmd, cwd=script.resolve().parent).split()[0]
        except AmbsError as exc:
            if not ids:
                raise
            cancel = "scancel" if spec.scheduler == "slurm" else "qdel"
            raise AmbsError(f"{exc}; job(s) {' '.join(ids)} of the chain are queued already (they run and "
                            f"resume the run; `{cancel} {' '.join(ids)}` cancels them)") from None
        ids.append(job)
        if on_submitted is not None:
            on_submitted(job)
    return ids


def _example(scheduler: str, gpu: bool) -> JobSpec:
    return JobSpec(
        scheduler=scheduler, problem="problems.mlp_digits",
        run_dir=Path("runs/mlp_digits-ambs"), workdir=Path("."),
        nodes=4 if gpu else 8, ranks_per_node=None if gpu else 16, walltime="02:00:00",
        method="ambs", max_evals=2000, gpus_per_node=4 if gpu else None,
        threads_per_worker=None if gpu else 4, cores_per_node=32 if gpu else None, account="MYPROJECT",
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
