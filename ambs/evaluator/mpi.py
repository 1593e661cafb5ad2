"""MPI evaluator: rank 0 runs the search, every other rank evaluates.

Launched as ``mpiexec -n N ambs search PROBLEM --evaluator mpi``: all ranks
run the same command; rank 0 becomes the master (search, CSV) and ranks
1..N-1 serve jobs until told to stop. Launched without mpiexec, the master
spawns ``--workers`` worker processes through MPI dynamic process management.

The master never blocks on a worker: jobs go out with non-blocking sends,
and results are taken as they arrive (probe, then receive), so a worker that
finishes gets its next configuration at once; there is no barrier.

Each worker rank runs its evaluations in a child process of its own (the
process evaluator with one slot), so an evaluation that segfaults, aborts
or runs past ``--eval-timeout`` is recorded and the rank goes on, and what
an evaluation starts ends with it, also when mpiexec kills the rank (see
:mod:`ambs.reaper`).

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

mpi4py is imported only here, so MPI is initialized only when this
evaluator is chosen.

About 410 lines: the master's side and the worker ranks' loop share the
message protocol, which stays in one file.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambs.comm import Tag
from ambs.errors import AmbsError
from ambs.evaluator.base import Evaluator
from ambs.evaluator.logs import log_name
from ambs.evaluator.placement import GPU_VAR, Placement, rank_env, rank_gpu, world
from ambs.evaluator.placement import mpi as _mpi
from ambs.result import Evaluation, Job, Status
from ambs.target import RunTarget

__all__ = ["KIND_VAR", "Cluster", "MPIEvaluator", "Placement", "serve", "world"]

KIND_VAR = "AMBS_WORKER_KIND"  # a worker rank's kind (gpu, cpu), instead of the one from --gpus-per-node
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
                sys.executable, args=["-m", "ambs.evaluator.mpi"], maxprocs=spawn, info=info
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


class _ProblemFinder(importlib.abc.MetaPathFinder):
    """Finds the problem file under the name its evaluation processes import it
    by (see :func:`ambs.problem.module_name`). A worker rank unpickles each
    result before it passes it on to the master; one holding an instance of a
    class the problem defines needs the module, which is then imported, once.
    A rank that no result needs it for never imports it (torch, data)."""

    def __init__(self, path: Path) -> None:
        from ambs.problem import module_name

        self.path, self.name = path, module_name(path)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name or not self.path.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, self.path)


def _recv_idle(comm: Any, source: int, tag: int, status: Any) -> Any:
    """``comm.recv`` that sleeps while nothing arrives (20 us, doubling up to 2 ms).

    MPICH's blocking receive spins: an idle worker rank would keep a core busy,
    one that the evaluations of the node's other ranks (or, with more ranks than
    cores, the master) could use."""
    pause = 0.0
    while not comm.Iprobe(source=source, tag=tag, status=status):
        pause = min(max(pause * 2, 2e-5), 2e-3)
        time.sleep(pause)
    return comm.recv(source=source, tag=status.Get_tag())


def serve(comm: Any, master: int, placement: Placement) -> int:
    """A worker rank's loop: wait for INIT, then run jobs until STOP.

    Returns the process exit code (0 after a STOP).
    """
    MPI = _mpi()
    from ambs.evaluator.process import ProcessEvaluator

    # The master decides when work stops (it gives running evaluations a
    # grace period); a scheduler's signals to every rank must not cut it short.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    status = MPI.Status()
    settings = _recv_idle(comm, master, MPI.ANY_TAG, status)
    if status.Get_tag() == Tag.STOP:
        return 0
    rank = comm.Get_rank()
    os.environ.update(settings.get("env", {}))
    os.environ.update(rank_env(rank, placement))
    gpus = settings.get("gpus_per_node")
    gpu = None
    try:
        if gpus:
            gpu = rank_gpu(placement, gpus, bool(settings.get("share_gpus")))
            os.environ[GPU_VAR] = gpu
        os.chdir(settings["cwd"])
        from ambs.problem import module_file

        target = settings["problem"]  # a RunTarget: a problem module, or a callable
        path = module_file(target.ref) if target.ref is not None else None
        if path is not None:  # a dotted name is imported by that name, here as anywhere
            sys.meta_path.append(_ProblemFinder(path))
        local = ProcessEvaluator(
            settings["problem"], settings["t0"], eval_timeout=settings.get("eval_timeout"),
            workers=1, threads_per_worker=settings.get("threads_per_worker"),
            eval_memory=settings.get("eval_memory"),
        )
    except Exception as exc:  # noqa: BLE001 - reported to the master, which stops
        why = str(exc) if isinstance(exc, AmbsError) else f"{type(exc).__name__}: {exc}"
        comm.send(f"rank {rank} on {placement.host}: {why}", dest=master, tag=Tag.FATAL)
        _recv_idle(comm, master, Tag.STOP, status)
        return 0 if isinstance(exc, AmbsError) else 1  # a refused setting: the master says so, and exits
    reports: list[Any] = []  # sends in flight

    def report(job_id: int, step: Any, value: float) -> bool:
        reports.append(comm.isend((job_id, step, value), dest=master, tag=Tag.REPORT))
        if len(reports) > 64:
            reports[:] = [r for r in reports if not r.test()[0]]
        return False  # the master's decision comes as a HALT

    local.on_report = report
    kind = os.environ.get(KIND_VAR, "").strip().lower() or ("gpu" if gpu is not None else "cpu")
    comm.send({"host": placement.host, "local_rank": placement.local_rank, "gpu": gpu, "kind": kind},
              dest=master, tag=Tag.READY)
    try:
        while True:
            job = _recv_idle(comm, master, MPI.ANY_TAG, status)
            tag = status.Get_tag()
            if tag == Tag.STOP:
                return 0
            if tag != Tag.JOB:
                continue  # a CANCEL that crossed a RESULT: nothing is running
            local.submit(job)
            while True:
                done = local.wait(0.05)
                if done:
                    ev = done[0]
                    ev.worker, ev.host, ev.local_rank = rank, placement.host, placement.local_rank
                    ev.gpu = gpu or ""
                    comm.send(ev, dest=master, tag=Tag.RESULT)
                    break
                if comm.Iprobe(source=master, tag=MPI.ANY_TAG, status=status):
                    tag = status.Get_tag()
                    if tag == Tag.HALT:
                        local.halt(comm.recv(source=master, tag=tag))
                        continue
                    if tag in (Tag.CANCEL, Tag.STOP):
                        comm.recv(source=master, tag=tag)
                        local.cancel()
                        if tag == Tag.STOP:
                            return 0
                        break
    finally:
        for r in reports:
            r.wait()
        local.close()


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
    ) -> None:
        super().__init__(target, t0, eval_timeout)
        self.target.check_portable(self.name)
        self.MPI = _mpi()
        self.log_dir = Path(log_dir).resolve() if log_dir is not None else None
        if cluster is None:
            raise AmbsError("the mpi evaluator needs a Cluster of worker ranks")
        self.cluster = cluster
        self.comm = cluster.comm
        self.busy: dict[int, Job | None] = {r: None for r in cluster.ranks}
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
            if self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=self.MPI.ANY_TAG, status=status):
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
        return sum(j is not None for j in self.busy.values())

    def _kind(self, rank: int) -> str:
        return str(self.placement.get(rank, {}).get("kind", "cpu"))

    def worker_kinds(self) -> list[str]:
        return [self._kind(r) for r in self.busy]

    def free_kinds(self) -> list[str]:
        return [self._kind(r) for r, j in self.busy.items() if j is None]

    def submit(self, job: Job) -> None:
        free = [r for r, j in self.busy.items() if j is None]
        if not free:
            raise RuntimeError("submit() with no free worker")
        rank = next((r for r in free if self._kind(r) == job.kind), free[0])
        if self.log_dir is not None:
            job.log = str(self.log_dir / log_name(job.job_id))
        self.busy[rank] = job
        self._sends.append(self.comm.isend(job, dest=rank, tag=Tag.JOB))
        if len(self._sends) > 64:
            self._sends = [r for r in self._sends if not r.test()[0]]

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        MPI = self.MPI
        status = MPI.Status()
        out: list[Evaluation] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0
        while True:
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                src, tag = status.Get_source(), status.Get_tag()
                msg = self.comm.recv(source=src, tag=tag)
                if tag == Tag.RESULT:
                    job = self.busy.get(src)
                    if job is not None and job.job_id == msg.job_id:
                        self.busy[src] = None
                        out.append(msg)
                    # else: the result of a job cancelled meanwhile; dropped
                elif tag == Tag.REPORT:
                    job = self.busy.get(src)
                    if job is not None and job.job_id == msg[0] and self.on_report is not None \
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
            # Back off from spinning while nothing arrives: 20 us up to 2 ms.
            pause = min(max(pause * 2, 2e-5), 2e-3)
            time.sleep(pause)

    def cancel(self) -> list[Evaluation]:
        out = []
        now = time.time() - self.t0
        for rank, job in self.busy.items():
            if job is None:
                continue
            self._sends.append(self.comm.isend(None, dest=rank, tag=Tag.CANCEL))
            info = self.placement.get(rank, {})
            out.append(Evaluation(
                job_id=job.job_id, config=job.config, status=Status.CANCELLED,
                error="search stopped before it finished", worker=rank,
                host=info.get("host", ""), local_rank=info.get("local_rank", 0), gpu=info.get("gpu") or "",
                submitted=job.submitted, finished=now, log=job.log or "",
            ))
            self.busy[rank] = None
        return out

    def close(self) -> None:
        for r in self._sends:
            r.wait()
        self._sends = []
        self.cluster.stop()


def _spawned_main() -> int:
    """Entry point of a worker spawned by a singleton master."""
    MPI = _mpi()
    parent = MPI.Comm.Get_parent()
    if parent == MPI.COMM_NULL:
        print("ambs.evaluator.mpi: run by the master's spawn, not by hand", file=sys.stderr)
        return 2
    _, placement = world(master=None)
    code = serve(parent, 0, placement)
    parent.Disconnect()
    return code


if __name__ == "__main__":
    sys.exit(_spawned_main())
