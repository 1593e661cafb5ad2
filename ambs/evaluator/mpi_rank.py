"""An MPI worker rank's side: wait for the master's settings, then run jobs until STOP.

Each worker rank runs its evaluations in a child process of its own (the
process evaluator with one slot), so an evaluation that segfaults, aborts
or runs past ``--eval-timeout`` is recorded and the rank goes on, and what
an evaluation starts ends with it, also when mpiexec kills the rank (see
:mod:`ambs.reaper`). A rank may hold jobs beyond the one it runs (see
:mod:`ambs.evaluator.prefetch`); it starts the next before its last result
leaves. The messages are the master's (:mod:`ambs.evaluator.mpi`, tags in
:mod:`ambs.comm`). Run as ``python -m ambs.evaluator.mpi_rank`` by a master
that spawns its workers.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from ambs.comm import POLL_MAX, Tag, poll_cap, probe
from ambs.errors import AmbsError
from ambs.evaluator.placement import GPU_VAR, Placement, rank_env, rank_gpu, world
from ambs.evaluator.placement import mpi as _mpi
from ambs.result import Job

__all__ = ["KIND_VAR", "serve"]

KIND_VAR = "AMBS_WORKER_KIND"  # a worker rank's kind (gpu, cpu), instead of the one from --gpus-per-node


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


def _recv_idle(comm: Any, source: int, tag: int, status: Any, cap: float = POLL_MAX) -> Any:
    """``comm.recv`` that sleeps while nothing arrives (20 us, doubling up to ``cap``).

    MPICH's blocking receive spins: an idle worker rank would keep a core busy,
    one that the evaluations of the node's other ranks (or, with more ranks than
    cores, the master) could use."""
    pause = 0.0
    while not probe(comm, source, tag, status):
        pause = min(max(pause * 2, 2e-5), cap)
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
    queue: deque[Job] = deque()  # jobs handed out ahead (see ambs.evaluator.prefetch)
    running = False
    cap = POLL_MAX  # the longest sleep while it waits for a job, from its last evaluation

    def take(tag: int, msg: Any) -> bool:
        """Act on a message from the master; True when it says stop."""
        nonlocal running
        if tag == Tag.JOB:
            queue.append(msg)
        elif tag == Tag.HALT:
            local.halt(msg)  # ignored when that job is no longer running
        elif tag in (Tag.CANCEL, Tag.STOP):
            queue.clear()
            if running:  # else a CANCEL that crossed a RESULT: nothing runs
                local.cancel()
                running = False
        return tag == Tag.STOP

    def drain() -> bool:
        """Take every message that has arrived, without waiting."""
        while probe(comm, master, MPI.ANY_TAG, status):
            tag = status.Get_tag()
            if take(tag, comm.recv(source=master, tag=tag)):
                return True
        return False

    try:
        while True:
            if not running and not queue:
                msg = _recv_idle(comm, master, MPI.ANY_TAG, status, cap)
                if take(status.Get_tag(), msg):
                    return 0
            if drain():
                return 0
            if not running and queue:
                local.submit(queue.popleft())
                running = True
            if not running:
                continue
            done = local.wait(0.05)
            if done:
                ev = done[0]
                ev.worker, ev.host, ev.local_rank = rank, placement.host, placement.local_rank
                ev.gpu = gpu or ""
                running = False
                cap = poll_cap(ev.finished - ev.started)
                if drain():
                    return 0
                if queue:  # the next job starts before this result leaves
                    local.submit(queue.popleft())
                    running = True
                comm.send(ev, dest=master, tag=Tag.RESULT)
    finally:
        for r in reports:
            r.wait()
        local.close()


def _spawned_main() -> int:
    """Entry point of a worker spawned by a singleton master."""
    MPI = _mpi()
    parent = MPI.Comm.Get_parent()
    if parent == MPI.COMM_NULL:
        print("ambs.evaluator.mpi_rank: run by the master's spawn, not by hand", file=sys.stderr)
        return 2
    _, placement = world(master=None)
    code = serve(parent, 0, placement)
    parent.Disconnect()
    return code


if __name__ == "__main__":
    sys.exit(_spawned_main())
