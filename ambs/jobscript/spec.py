"""What a job asks for and what it runs (:class:`JobSpec`), and the checks
that keep every value inside its line of the job script."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ambs.errors import AmbsError

__all__ = ["CONTROL", "JobSpec", "check_values"]

# C0 and C1 control characters and Unicode line breaks: any of them would end
# a #SBATCH/#PBS line (or a shell word) early and start a line of its own.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MPI_TYPE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass
class JobSpec:
    """What a job asks for and what it runs.

    Args:
        scheduler: ``slurm`` or ``pbs``.
        problem: the problem module as the search should load it.
        run_dir: absolute run directory.
        workdir: directory the job runs in (dotted problem names resolve there).
        nodes, ranks_per_node: the allocation; rank 0 is the master. With
            ``gpus_per_node`` G the job runs G workers a node plus the master.
        walltime: the job's walltime, as :func:`ambs.walltime.parse_walltime` reads it.
        method, max_evals: the search method and evaluation budget.
        search_args: further ``ambs search`` flags, already split.
        gpus_per_node, threads_per_worker, cores_per_node: placement on GPU or CPU nodes.
        account, queue, qos, constraint, mem, exclusive: what the job is charged to and runs on.
        launcher: ``mpiexec`` (default), ``mpirun``, ``srun`` (Slurm) or ``custom``.
        launcher_path: the resolved mpiexec/mpirun (None: the name, from the job's PATH).
        launcher_command: the words of a custom launcher (``--launcher-command``).
        mpi: ``srun --mpi=`` type (None: the site's MpiDefault).
        mpi_family: the MPI of mpi4py (``mpich``, ``openmpi``...), when known.
        oversubscribe: more ranks than cores (Open MPI needs a flag for it).
        requeue: let the scheduler requeue the job (it resumes the run).
        setup: shell lines run before the launch (module loads, environments).
        directives: extra ``#SBATCH``/``#PBS`` arguments, as written.
        pbs_flavor: ``pro`` (``select=``) or ``torque`` (``nodes=:ppn=``).
        warning: seconds before the walltime at which the search stops.
    """

    scheduler: str
    problem: str
    run_dir: Path
    workdir: Path
    nodes: int
    ranks_per_node: int | None
    walltime: str
    method: str = "ambs"
    max_evals: int = 100
    search_args: list[str] = field(default_factory=list)
    gpus_per_node: int | None = None
    threads_per_worker: int | None = None
    cores_per_node: int | None = None
    account: str | None = None
    queue: str | None = None
    qos: str | None = None
    constraint: str | None = None
    mem: str | None = None
    exclusive: bool = False
    launcher: str | None = None
    launcher_path: str | None = None
    launcher_command: str | None = None
    mpi: str | None = None
    mpi_family: str | None = None
    oversubscribe: bool = False
    requeue: bool = False
    setup: list[str] = field(default_factory=list)
    directives: list[str] = field(default_factory=list)
    pbs_flavor: str = "pro"
    warning: int = 120
    job_name: str = "ambs"
    portable: bool = False  # `ambs`, `mpiexec` from PATH; paths relative to the submit directory


def check_values(spec: JobSpec, job_output: str) -> None:
    """Refuse, in one line, a value that would break out of its line of the script.

    Every value is checked for control characters (a newline would end a
    ``#SBATCH`` line or a shell word and start a line of its own); values of
    scheduler directives must also be one word, as sbatch and qsub read them.
    The values that reach command lines are shell-quoted by the renderer;
    setup lines and ``--directive`` arguments are the user's own, as written.
    """
    directives = {
        "the job name (--job-name, or ambs-<Problem name>)": spec.job_name,
        "--account": spec.account,
        "--queue": spec.queue,
        "--qos": spec.qos,
        "--constraint": spec.constraint,
        "--mem": spec.mem,
        "--walltime": spec.walltime,
        "--output": job_output,
    }
    words = {
        "PROBLEM": spec.problem,
        "the run directory (--output)": str(spec.run_dir),
        "the working directory": str(spec.workdir),
        "--method": spec.method,
        "--mpi": spec.mpi,
        **{f"search option {a!r}"[:60]: a for a in spec.search_args},
        **{f"--setup line {s!r}"[:60]: s for s in spec.setup},
        **{f"--directive {d!r}"[:60]: d for d in spec.directives},
    }
    for what, value in {**directives, **words}.items():
        if value is not None and CONTROL.search(value):
            raise AmbsError(f"{what} {value!r} holds a control character (a newline, tab, ...), "
                            "which cannot go into a job script")
    tag = "#SBATCH" if spec.scheduler == "slurm" else "#PBS"
    for what, value in directives.items():
        if value is not None and (value == "" or re.search(r"[\s'\"\\]", value)):
            raise AmbsError(f"{what} {value!r} cannot go into a {tag} line: it must be one word "
                            "without spaces or quotes")
        if value is not None and "#" in value:
            raise AmbsError(f"{what} {value!r} cannot go into a {tag} line: the scheduler reads "
                            "'#' as the start of a comment")
    if spec.scheduler == "pbs" and ":" in job_output:
        raise AmbsError(f"the run directory {str(spec.run_dir)!r} holds a ':', which PBS reads in #PBS -o "
                        "as the end of a host name; choose an --output without ':'")
    for d in spec.directives:
        if not d.strip().startswith("-"):
            raise AmbsError(f"--directive {d!r}: write it as the {tag} option, e.g. "
                            + ("'--mail-type=END'" if tag == "#SBATCH" else "'-m ae'"))
    if spec.mpi is not None and not _MPI_TYPE.match(spec.mpi):
        raise AmbsError(f"--mpi {spec.mpi!r} is not an srun --mpi type (see `srun --mpi=list`)")
