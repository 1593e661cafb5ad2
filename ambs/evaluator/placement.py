"""Where workers run and which GPU each one gets, for the process and MPI evaluators.

One rule for both: a worker's GPU is its index among the workers of its
machine, so each GPU has exactly one worker. Under MPI the master (world
rank 0) is no worker: on its node the worker ranks 1..G use GPUs 0..G-1.
More workers than GPUs is refused unless sharing is asked for
(``--share-gpus``), and then worker ``i`` uses GPU ``i mod G``.

A worker's GPU is set as ``CUDA_VISIBLE_DEVICES`` before the problem module
is imported. When the machine's ``CUDA_VISIBLE_DEVICES`` already lists the
GPUs a scheduler gave the job, worker ``i`` gets the ``i``-th of them.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ambs.errors import AmbsError

__all__ = ["GPU_VAR", "WORKERS_PER_CPU", "Placement", "device", "mpi", "mpi_library", "place", "rank_gpu", "parse_gpus", "rank_env", "too_many_workers", "world", "worker_limit"]

GPU_VAR = "CUDA_VISIBLE_DEVICES"


@dataclass
class Placement:
    """Where an MPI rank runs: its host, its index among that host's worker
    ranks (``local_rank``; -1 for the master), its index among all of the
    job's ranks on the host (``node_rank``), and how many of each there are."""

    host: str
    local_rank: int
    node_size: int  # ranks of this job on the host
    node_rank: int = 0
    node_workers: int = 0  # worker ranks of this job on the host


def mpi() -> Any:
    """Import mpi4py (initializing MPI), with MPICH's own launcher first on PATH.

    A singleton MPICH process that spawns workers runs the first ``mpiexec``
    on PATH; another MPI's (or a scheduler wrapper's) hangs it. The ``mpich``
    wheel installs its launcher next to this Python, so that one goes first.
    """
    here = Path(sys.executable).parent
    if (here / "mpiexec").exists():
        path = os.environ.get("PATH", "")
        if not path.startswith(str(here) + os.pathsep):
            os.environ["PATH"] = str(here) + os.pathsep + path
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise AmbsError(
            f"the mpi evaluator needs mpi4py ({exc}); install it with: pip install -e '.[mpi]'"
        ) from None
    return MPI


def mpi_library() -> str:
    """The first line of the MPI library's version (what run.json records)."""
    lines = str(mpi().Get_library_version()).strip().splitlines()
    return lines[0].strip() if lines else ""


def world(master: int | None = 0) -> tuple[Any, Placement]:
    """COMM_WORLD and this rank's placement (collective: every rank calls it).

    Args:
        master: the world rank that is the master, or None when the master
            is outside this world (spawned workers).
    """
    MPI = mpi()
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
    on_node = node.allgather(rank)
    node.Free()
    return comm, place(MPI.Get_processor_name() or socket.gethostname(), on_node, rank, master)


def place(host: str, on_node: list[int], rank: int, master: int | None = 0) -> Placement:
    """The placement of ``rank`` among the ranks ``on_node`` of its host (the master no worker)."""
    workers = sorted(r for r in on_node if r != master)
    local = workers.index(rank) if rank in workers else -1
    return Placement(host=host, local_rank=local, node_size=len(on_node), node_rank=sorted(on_node).index(rank),
                     node_workers=len(workers))


def rank_gpu(placement: Placement, gpus: int, share: bool = False) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` of the worker rank at ``placement`` with
    ``gpus`` GPUs per node: its index among the node's worker ranks; AmbsError
    for more worker ranks on the node than GPUs, unless ``share``."""
    refused = too_many_workers(placement.node_workers, gpus, f"on {placement.host} (--gpus-per-node {gpus})",
                               "worker ranks")
    if refused and not share:
        raise AmbsError(refused)
    return device(placement.local_rank % gpus, gpus)


def parse_gpus(value: int | str | list[int] | None) -> list[str]:
    """The GPUs of ``--gpus``, as each worker's ``CUDA_VISIBLE_DEVICES`` will
    name them: a count N (GPUs 0..N-1) or a list of indices (``0,1,3``), both
    counted among the GPUs this machine shows (see :func:`device`); ValueError
    for anything else."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"gpus must be a count of at least 1 or a list of GPU indices, got {value}")
        return [device(i, value) for i in range(value)]
    text = str(value).strip()
    if isinstance(value, str) and text.isdigit():  # a count
        return parse_gpus(int(text))
    items = [str(v).strip() for v in value] if isinstance(value, (list, tuple)) else \
        [t.strip() for t in text.split(",") if t.strip()]
    if not items or any(not t.isdigit() for t in items):
        raise ValueError(f"gpus must be a count (4) or a list of GPU indices (0,1,3), got {value!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"gpus lists a GPU twice: {','.join(items)}")
    return [device(int(t), int(t) + 1) for t in items]


def device(index: int, count: int) -> str:
    """What ``CUDA_VISIBLE_DEVICES`` a worker with GPU ``index`` of ``count`` gets:
    the ``index``-th GPU the machine's own ``CUDA_VISIBLE_DEVICES`` lists, when it
    lists at least ``count`` (a scheduler gave the job those), else ``index``."""
    given = [t.strip() for t in os.environ.get(GPU_VAR, "").split(",") if t.strip()]
    return given[index] if len(given) >= count else str(index)


def too_many_workers(workers: int, gpus: int, where: str, what: str = "workers") -> str:
    """The one-line refusal of more workers than GPUs on one machine ("" when they fit)."""
    if workers <= gpus:
        return ""
    return (f"{workers} {what} for {gpus} GPU(s) {where}: each GPU gets one worker; "
            f"give --share-gpus to let workers share GPUs, or start fewer {what}")


def rank_env(rank: int, placement: Placement) -> dict[str, str]:
    """Variables a worker rank sets before it loads the problem: ``AMBS_RANK``,
    ``AMBS_LOCAL_RANK`` (among the job's ranks on the host),
    ``AMBS_WORKER_INDEX`` (among the host's worker ranks: the GPU index), and
    Slurm's ``SLURM_PROCID``/``SLURM_LOCALID`` where they are set (under
    ``mpirun`` in a Slurm job every rank inherits those of the batch step)."""
    env = {"AMBS_RANK": str(rank), "AMBS_LOCAL_RANK": str(placement.node_rank),
           "AMBS_WORKER_INDEX": str(placement.local_rank)}
    if "SLURM_PROCID" in os.environ:
        env["SLURM_PROCID"] = str(rank)
    if "SLURM_LOCALID" in os.environ:
        env["SLURM_LOCALID"] = str(placement.node_rank)
    return env


# At most this many worker processes per CPU core: more is a typo, not a plan
# (evaluations that wait on I/O rarely need more than a few per core).
WORKERS_PER_CPU = 32


def worker_limit() -> tuple[int, str]:
    """The most worker processes this machine is asked to start, and why:
    WORKERS_PER_CPU per core, or fewer under RLIMIT_NPROC (``ulimit -u``)."""
    cpus = os.cpu_count() or 1
    limit, why = WORKERS_PER_CPU * cpus, f"{WORKERS_PER_CPU} per CPU core, {cpus} core(s)"
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    except (ImportError, AttributeError, OSError, ValueError):
        soft = -1
    if soft != -1 and soft < limit and soft != getattr(resource, "RLIM_INFINITY", -1):
        limit, why = max(int(soft), 1), f"RLIMIT_NPROC (ulimit -u) of {soft} processes"
    return limit, why
