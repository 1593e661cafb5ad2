"""MPI evaluator: rank 0 runs the search, every other rank evaluates.

Launched as ``mpiexec -n N ambs search PROBLEM --evaluator mpi``: all ranks
run the same command; rank 0 becomes the master (search, CSV) and ranks
1..N-1 serve jobs until told to stop. Launched without mpiexec, the master
spawns ``--workers`` worker processes through MPI dynamic process management.

The master never blocks on a worker: jobs go out with non-blocking sends,
and results are taken as they arrive (probe, then receive), so a worker that
finishes gets its next configuration at once; there is no barrier.

Each worker rank runs its evaluations in a child process of its own, and
may hold its next job while it runs one (:mod:`ambs.evaluator.mpi_rank`,
:mod:`ambs.evaluator.prefetch`).

Each worker rank sets ``AMBS_RANK``, ``AMBS_LOCAL_RANK`` and
``AMBS_WORKER_INDEX`` (and corrects Slurm's ``SLURM_PROCID``/``SLURM_LOCALID``)
before it loads the problem, and, with ``--gpus-per-node G``, its GPU: its
index among the worker ranks of its host (the master excluded); more worker
ranks on a host than G is refused unless ``--share-gpus`` (see
:mod:`ambs.evaluator.placement`). Evaluations' output goes to their logs
(:mod:`ambs.evaluator.logs`).

Each worker reports its kind when it is ready: ``gpu`` when it was given a
GPU (``--gpus-per-node``), else ``cpu``, or what ``$AMBS_WORKER_KIND`` says
on that rank (for nodes whose GPUs are set up outside ambs, and for tests:
``mpiexec -n 1 ambs ... : -n 1 -env AMBS_WORKER_KIND gpu ambs ... : -n 2 ambs ...``).
With ``--assign shadho`` the driver uses the kinds (see :mod:`ambs.nas.hardware`).

mpi4py is imported only here and in the worker ranks' module, so MPI is
initialized only when this evaluator is chosen.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambs.comm import Tag, poll_cap, probe
from ambs.errors import AmbsError
from ambs.evaluator.base import Evaluator
from ambs.evaluator.logs import log_name
from ambs.evaluator.mpi_rank import KIND_VAR, serve
from ambs.evaluator.placement import Placement, world
from ambs.evaluator.placement import mpi as _mpi
from ambs.evaluator.prefetch import Prefetch, parse_prefetch
from ambs.result import Evaluation, Job, Status
from ambs.target import RunTarget

__all__ = ["KIND_VAR", "Cluster", "MPIEvaluator", "Placement", "serve", "world"]

# Variables the master set for this run that worker ranks need too (mpiexec
# started them before): where NAS problems keep trained weights for morphisms.
FORWARDED_ENV = ("AMBS_CHECKPOINT_DIR",)


@dataclass
class Cluster:
    """The master's side of the worker ranks: a communicator and their ranks.

    Create it before anything else can fail on the master, and call
    :meth:`stop` in a ``finally``: worker ranks wait for a message, and
    without STOP they would wait forever.
    """

    comm: Any
    ranks: list[int]
    spawned: bool = False
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def connect(cls, comm: Any, spawn: int | None = None) -> Cluster:
        """Use the other ranks of ``comm``, or spawn ``spawn`` workers when alone."""
        size = comm.Get_size()
        if size > 1:
            return cls(comm, list(range(1, size)))
        if not spawn:
            raise AmbsError(
                "the mpi evaluator has no worker ranks: launch it as "
                "'mpiexec -n N ambs search ... --evaluator mpi' (N-1 workers), "
                "or give --workers N to spawn N workers"
            )
        MPI = _mpi()
        info = MPI.Info.Create()
        info.Set("wdir", os.getcwd())
        try:
            inter = MPI.COMM_SELF.Spawn(
                sys.executable, args=["-m", "ambs.evaluator.mpi_rank"], maxprocs=spawn, info=info
            )
        except MPI.Exception as exc:
            raise AmbsError(
                f"could not spawn {spawn} MPI workers ({exc.Get_error_string()}); launch with "
                "'mpiexec -n N ambs search ... --evaluator mpi' instead"
            ) from None
        finally:
            info.Free()
        return cls(inter, list(range(spawn)), spawned=True)

    def stop(self) -> None:
        """Tell every worker to exit (once), and disconnect spawned workers."""
        if self._stopped:
            return
        self._stopped = True
        reqs = [self.comm.isend(None, dest=r, tag=Tag.STOP) for r in self.ranks]
        for r in reqs:
            r.wait()
        if self.spawned:
            self.comm.Disconnect()


class MPIEvaluator(Evaluator):
    """Hands jobs to MPI worker ranks and collects their results as they arrive.

    Args:
        cluster: the worker ranks (see :meth:`Cluster.connect`).
        threads_per_worker: OMP/MKL/torch threads per worker (CPU and KNL nodes).
        gpus_per_node: one GPU per worker, ``CUDA_VISIBLE_DEVICES`` from its
            index among the worker ranks of its node (the master excluded).
        share_gpus: allow more worker ranks on a node than ``gpus_per_node``
            (worker ``i`` gets GPU ``i mod gpus_per_node``); refused otherwise.
        log_dir: where each evaluation's stdout and stderr go, one file per
            evaluation (:mod:`ambs.evaluator.logs`); None: they stay on the rank's.
        eval_memory: MiB of address space each evaluation may add to its
            child process (see :class:`ambs.evaluator.process.ProcessEvaluator`).
        prefetch: jobs a rank holds beyond the one it runs (None: decided
            from what the ranks would wait, see :mod:`ambs.evaluator.prefetch`).
    """

    name = "mpi"
    default_fit = "process"  # the master's node has cores for it (see ambs.fitter)

    def __init__(
        self,
        target: RunTarget | str | Callable[..., Any],
        t0: float,
        eval_timeout: float | None = None,
        cluster: Cluster | None = None,
        threads_per_worker: int | None = None,
        gpus_per_node: int | None = None,
        ready_timeout: float = 600.0,
        eval_memory: int | None = None,
        share_gpus: bool = False,
        log_dir: str | Path | None = None,
        prefetch: int | str | None = None,
    ) -> None:
        super().__init__(target, t0, eval_timeout)
        self.target.check_portable(self.name)
        self.MPI = _mpi()
        self.log_dir = str(Path(log_dir).resolve()) if log_dir is not None else None
        if cluster is None:
            raise AmbsError("the mpi evaluator needs a Cluster of worker ranks")
        self.cluster = cluster
        self.comm = cluster.comm
        self.busy: dict[int, list[Job]] = {r: [] for r in cluster.ranks}  # running first, then queued
        self.prefetch = Prefetch(parse_prefetch(prefetch))
        self._queued: set[int] = set()  # ids of jobs handed to a rank that was busy
        self.placement: dict[int, dict[str, Any]] = {}
        self._sends: list[Any] = []
        settings = {
            "problem": self.target, "cwd": os.getcwd(), "t0": t0, "eval_timeout": eval_timeout,
            "threads_per_worker": threads_per_worker, "gpus_per_node": gpus_per_node,
            "eval_memory": eval_memory, "share_gpus": share_gpus,
            "env": {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ},
        }
        for r in cluster.ranks:
            self._sends.append(self.comm.isend(settings, dest=r, tag=Tag.INIT))
        self._await_ready(ready_timeout)

    def _await_ready(self, timeout: float) -> None:
        """Wait until every worker has loaded the problem (or one reports it cannot)."""
        status = self.MPI.Status()
        deadline = time.monotonic() + timeout
        while len(self.placement) < len(self.busy):
            if probe(self.comm, self.MPI.ANY_SOURCE, self.MPI.ANY_TAG, status):
                src, tag = status.Get_source(), status.Get_tag()
                msg = self.comm.recv(source=src, tag=tag)
                if tag == Tag.FATAL:
                    raise AmbsError(f"a worker could not start: {msg}")
                if tag == Tag.READY:
                    self.placement[src] = msg
            elif time.monotonic() > deadline:
                missing = sorted(set(self.busy) - set(self.placement))
                raise AmbsError(f"worker ranks {missing[:10]} did not start within {timeout:g} s")
            else:
                time.sleep(0.002)

    @property
    def n_workers(self) -> int:
        return len(self.busy)

    @property
    def n_running(self) -> int:
        return sum(len(jobs) for jobs in self.busy.values())

    @property
    def n_free(self) -> int:
        room = 1 + self.prefetch.depth
        return sum(max(room - len(jobs), 0) for jobs in self.busy.values())

    def attach(self, search: Any) -> None:
        """``auto`` prefetch is for searches whose proposals do not learn from results."""
        self.prefetch.learning = bool(getattr(search, "learns_from_results", True))

    def _kind(self, rank: int) -> str:
        return str(self.placement.get(rank, {}).get("kind", "cpu"))

    def worker_kinds(self) -> list[str]:
        return [self._kind(r) for r in self.busy]

    def free_kinds(self) -> list[str]:
        room = 1 + self.prefetch.depth
        return [self._kind(r) for r, jobs in sorted(self.busy.items(), key=lambda it: len(it[1]))
                for _ in range(room - len(jobs))]

    def submit(self, job: Job) -> None:
        room = 1 + self.prefetch.depth
        rank, best = -1, (True, room)
        for r, jobs in self.busy.items():  # a rank of the job's kind first, then the least loaded
            if len(jobs) >= room:
                continue
            key = (self._kind(r) != job.kind, len(jobs))
            if rank < 0 or key < best:
                rank, best = r, key
                if key == (False, 0):
                    break
        if rank < 0:
            raise RuntimeError("submit() with no free worker")
        if self.log_dir is not None:
            job.log = os.path.join(self.log_dir, log_name(job.job_id))
        if self.busy[rank]:
            self._queued.add(job.job_id)
        self.busy[rank].append(job)
        self._sends.append(self.comm.isend(job, dest=rank, tag=Tag.JOB))
        if len(self._sends) > 64:
            self._sends = [r for r in self._sends if not r.test()[0]]

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        MPI = self.MPI
        status = MPI.Status()
        out: list[Evaluation] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0
        cap = poll_cap(self.prefetch.typical)
        while True:
            if probe(self.comm, MPI.ANY_SOURCE, MPI.ANY_TAG, status):
                src, tag = status.Get_source(), status.Get_tag()
                msg = self.comm.recv(source=src, tag=tag)
                if tag == Tag.RESULT:
                    jobs = self.busy.get(src, [])
                    if any(j.job_id == msg.job_id for j in jobs):
                        jobs[:] = [j for j in jobs if j.job_id != msg.job_id]
                        self.prefetch.observe(src, msg, msg.job_id in self._queued)
                        self._queued.discard(msg.job_id)
                        out.append(msg)
                    # else: the result of a job cancelled meanwhile; dropped
                elif tag == Tag.REPORT:
                    jobs = self.busy.get(src, [])
                    if jobs and jobs[0].job_id == msg[0] and self.on_report is not None \
                            and self.on_report(*msg):
                        self._sends.append(self.comm.isend(msg[0], dest=src, tag=Tag.HALT))
                elif tag == Tag.FATAL:
                    raise AmbsError(f"a worker failed: {msg}")
                pause = 0.0
                continue  # drain whatever else has arrived
            if out or self.n_running == 0:
                return out
            if deadline is not None and time.monotonic() >= deadline:
                return out
            # Back off from spinning while nothing arrives (see ambs.comm).
            pause = min(max(pause * 2, 2e-5), cap)
            time.sleep(pause)

    def cancel(self) -> list[Evaluation]:
        out = []
        now = time.time() - self.t0
        for rank, jobs in self.busy.items():
            if not jobs:
                continue
            self._sends.append(self.comm.isend(None, dest=rank, tag=Tag.CANCEL))
            info = self.placement.get(rank, {})
            out += [Evaluation(
                job_id=job.job_id, config=job.config, status=Status.CANCELLED,
                error="search stopped before it finished", worker=rank,
                host=info.get("host", ""), local_rank=info.get("local_rank", 0), gpu=info.get("gpu") or "",
                submitted=job.submitted, finished=now, log=job.log or "",
            ) for job in jobs]
            self.busy[rank] = []
        self._queued.clear()
        return out

    def close(self) -> None:
        for r in self._sends:
            r.wait()
        self._sends = []
        self.cluster.stop()
