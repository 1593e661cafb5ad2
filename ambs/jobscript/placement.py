"""Where the ranks of a GPU job run: the master (world rank 0) takes no GPU.

A GPU job runs G worker ranks on each of its N nodes, plus the master on the
first node: N*G + 1 ranks. A worker's GPU is its index among the worker ranks
of its host (world rank 0 excluded), so on the first node workers are local
ranks 1..G with GPUs 0..G-1, and every GPU has exactly one worker. The job
script writes the same order into a host file (one line per rank), which
srun (``SLURM_HOSTFILE`` with ``--distribution=arbitrary``), Hydra and
Open MPI (``--hostfile``) all read as "rank i runs on line i's host".
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Slot", "gpu_layout", "rank_hosts"]


class Slot(NamedTuple):
    """One rank: its world rank, host, and GPU (None for the master)."""

    rank: int
    host: str
    gpu: int | None


def rank_hosts(hosts: list[str], gpus_per_node: int) -> list[str]:
    """The host of each world rank, in rank order: the first host G+1 times, the others G times."""
    if not hosts:
        raise ValueError("no hosts")
    if gpus_per_node < 1:
        raise ValueError(f"GPUs per node must be at least 1, got {gpus_per_node}")
    return [hosts[0]] + [h for h in hosts for _ in range(gpus_per_node)]


def gpu_layout(hosts: list[str], gpus_per_node: int) -> list[Slot]:
    """Every rank with its host and GPU, as the job script places them and the workers pick GPUs."""
    slots: list[Slot] = []
    workers_on: dict[str, int] = {}
    for rank, host in enumerate(rank_hosts(hosts, gpus_per_node)):
        if rank == 0:
            slots.append(Slot(0, host, None))
            continue
        index = workers_on.get(host, 0)
        workers_on[host] = index + 1
        slots.append(Slot(rank, host, index % gpus_per_node))
    return slots

