"""Process evaluator: a pool of local worker processes, the default on one machine.

Each worker is a process of its own that loads the problem module once and
runs one job at a time, so the master can kill a worker whose evaluation
runs past its timeout or notice one that crashed (segfault, abort, out of
memory), record that, and start a fresh worker in its place. With a memory
limit, a worker caps its own address space once the problem is loaded, so
an evaluation that allocates too much fails (MemoryError) or dies alone,
never the machine.

About 430 lines: the pool, its workers' start-up and their caps belong
together (each start-up step answers one way a worker can fail).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from typing import Any

from ambs import reaper
from ambs.errors import AmbsError
from ambs.evaluator import worker as worker_side
from ambs.evaluator.base import Evaluator
from ambs.evaluator.logs import log_name, with_tail
from ambs.evaluator.logs import release as release_log
from ambs.evaluator.placement import GPU_VAR, WORKERS_PER_CPU, parse_gpus, too_many_workers, worker_limit
from ambs.evaluator.worker import limit_memory, thread_env
from ambs.reports import HALT as _HALT
from ambs.reports import REPORT as _REPORT
from ambs.reports import pipe_reporter as _reporter
from ambs.result import Evaluation, Job, Status
from ambs.target import RunTarget

__all__ = ["WORKERS_PER_CPU", "ProcessEvaluator", "limit_memory", "thread_env", "worker_limit"]

# Set for each worker process as it starts: the math-library threads, its GPU
# and its index (read by problems that pick a device themselves).
_START_VARS = (*thread_env(1), GPU_VAR, "AMBS_WORKER_INDEX")


def _unsendable(ev: Evaluation, exc: Exception) -> Evaluation:
    """A FAILED copy of ``ev``, for a result that cannot be pickled back to the master."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return replace(ev, objective=math.nan, status=Status.FAILED, metadata={}, objectives=None,
                   error=f"run returned a result that cannot be sent back to the master ({type(exc).__name__}: {msg})")


def _worker_main(
    conn: Connection, target: RunTarget, cwd: str, t0: float, worker: int, threads: int | None = None,
    memory_mb: int | None = None, gpu: str = "",
) -> None:
    """Worker loop: start up and load the problem once (:mod:`ambs.evaluator.worker`),
    then run jobs until told to stop."""
    worker_side.start(threads)
    os.chdir(cwd)
    run, load_error = worker_side.load(target, threads)
    worker_side.cap_memory(memory_mb)
    host = socket.gethostname()
    try:
        conn.send(_READY)  # the timeout of a job counts from here, not from the spawn
    except (BrokenPipeError, OSError):
        return
    try:
        _serve(conn, run, load_error, t0, (worker, host, gpu), memory_mb)
    finally:
        release_log()  # the empty log kept for a next evaluation
        reaper.end(reaper.descendants())  # what the problem module started too


def _serve(conn: Connection, run: Any, load_error: str, t0: float, where: tuple[int, str, str],
           memory_mb: int | None) -> None:
    """Run the jobs the master sends until it sends None or goes away;
    ``where``: this worker's number, host and GPU."""
    worker, host, gpu = where
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        if not isinstance(job, Job):
            continue  # the stop decision for a job that has ended meanwhile
        ev = worker_side.evaluate(run, load_error, job, t0, memory_mb, reporter=_reporter(conn, job.job_id))
        ev.worker, ev.host, ev.local_rank, ev.gpu = worker, host, worker - 1, gpu
        try:
            try:
                conn.send(ev)  # pickles first: a pickling error has sent nothing
            except (BrokenPipeError, OSError):
                raise
            except Exception as exc:  # noqa: BLE001 - a lambda, a lock, a socket in the result
                conn.send(_unsendable(ev, exc))
        except (BrokenPipeError, OSError):
            return


_READY = "ready"  # sent once by a worker when it has loaded the problem


@dataclass
class _Slot:
    worker: int
    gpu: str = ""  # its CUDA_VISIBLE_DEVICES ("": none set)
    proc: Any = None
    conn: Connection | None = None
    job: Job | None = None
    ready: bool = False  # the worker has loaded the problem (and leads its process group)
    deadline: float = float("inf")  # when the running job times out


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of the process group a worker led (its own processes)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # no such group left, or never made
        pass


def _death_reason(exitcode: int | None, memory_mb: int | None = None) -> str:
    if exitcode is None:
        return "worker process died"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        if memory_mb:  # a failed allocation in C code often ends in an abort or a segfault
            hint += f" (evaluations may allocate {memory_mb} MB)"
        return f"worker process killed by {name}{hint}"
    return f"worker process exited with code {exitcode}"


class ProcessEvaluator(Evaluator):
    """``workers`` local processes, each running one evaluation at a time.

    Args:
        workers: number of worker processes (default: the number of cores).
        threads_per_worker: cap on math-library threads in each worker.
        wait_ready: block in the constructor until every worker has loaded
            the problem.
        ready_timeout: how long to wait for that, in seconds.
        eval_memory: MiB of address space an evaluation may add to its
            worker's (RLIMIT_AS, set once the worker has loaded the problem);
            None: no limit.
        gpus: one GPU per worker: a count or GPU indices (``4``, ``"0,1,3"``,
            see :func:`ambs.evaluator.placement.parse_gpus`); each worker's
            ``CUDA_VISIBLE_DEVICES`` is set before it imports the problem.
            ``workers`` defaults to their number.
        share_gpus: allow more workers than GPUs (worker ``i`` gets GPU
            ``i mod len(gpus)``); refused otherwise.
        log_dir: where each evaluation's stdout and stderr go, one file per
            evaluation (:mod:`ambs.evaluator.logs`); None: they stay on the
            workers' (the master's terminal).
    """

    name = "process"

    def __init__(
        self,
        target: RunTarget | str | Callable[..., Any],
        t0: float,
        eval_timeout: float | None = None,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        wait_ready: bool = True,
        ready_timeout: float = 600.0,
        eval_memory: int | None = None,
        gpus: int | str | list[int] | None = None,
        share_gpus: bool = False,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(target, t0, eval_timeout)
        self.target.check_portable(self.name)
        self.gpus = parse_gpus(gpus)
        self._n = int(workers or len(self.gpus) or os.cpu_count() or 1)
        if self._n < 1:
            raise ValueError("the process evaluator needs at least one worker")
        refused = too_many_workers(self._n, len(self.gpus), "(--gpus)") if self.gpus else ""
        if refused and not share_gpus:
            raise ValueError(refused)
        self.log_dir = os.path.abspath(log_dir) if log_dir is not None else None
        if eval_memory is not None and eval_memory < 1:
            raise ValueError(f"eval_memory must be at least 1 MB, got {eval_memory}")
        self.eval_memory = eval_memory
        self.threads_per_worker = threads_per_worker
        self._ctx = mp.get_context("spawn")
        self._cwd = os.getcwd()
        self._host = socket.gethostname()
        self._slots = [_Slot(worker=i + 1, gpu=self.gpus[i % len(self.gpus)] if self.gpus else "")
                       for i in range(self._n)]
        try:
            for slot in self._slots:
                self._start(slot)
            if wait_ready:
                self.wait_ready(ready_timeout)
        except BaseException:  # a failed start leaves no worker behind
            for slot in self._slots:
                self._stop(slot, kill=True)
            raise

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Block until every worker has loaded the problem, so that the first
        evaluations do not wait on imports and their timing is honest.

        Raises AmbsError if a worker dies while loading or takes longer than
        ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            pending = [s for s in self._slots if not s.ready]
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AmbsError(f"{len(pending)} worker process(es) did not start within {timeout:g} s")
            handles = {s.conn: s for s in pending} | {s.proc.sentinel: s for s in pending}
            for h in mp_wait(list(handles), timeout=left):
                s = handles[h]
                try:
                    while s.conn.poll():
                        if s.conn.recv() == _READY:
                            s.ready = True
                except (EOFError, OSError):
                    pass
                if not s.ready and not s.proc.is_alive():
                    raise AmbsError(
                        f"a worker process died while loading the problem "
                        f"({_death_reason(s.proc.exitcode)})"
                    )

    # ------------------------------------------------------------ workers
    def _start(self, slot: _Slot) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        saved = {k: os.environ.get(k) for k in _START_VARS}
        os.environ.update(thread_env(self.threads_per_worker))
        os.environ.update({GPU_VAR: slot.gpu} if slot.gpu else {})
        if self.gpus or "AMBS_WORKER_INDEX" not in os.environ:  # not an MPI rank's own index
            os.environ["AMBS_WORKER_INDEX"] = str(slot.worker - 1)
        try:
            proc = self._ctx.Process(
                target=_worker_main,
                args=(child, self.target, self._cwd, self.t0, slot.worker, self.threads_per_worker,
                      self.eval_memory, slot.gpu),
                name=f"ambs-worker-{slot.worker}",
                daemon=True,
            )
            proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        slot.proc, slot.conn, slot.job, slot.ready = proc, parent, None, False
        slot.deadline = float("inf")

    def _stop(self, slot: _Slot, kill: bool) -> None:
        if slot.proc is None:
            return
        if kill:
            left = reaper.descendants(slot.proc.pid)  # also those that left its group (setsid)
            slot.proc.kill()
            if slot.ready:  # it made its own process group before it said so
                _kill_group(slot.proc.pid)
            reaper.end(left, grace=0)
        else:
            try:
                slot.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        slot.proc.join(timeout=5)
        if slot.proc.is_alive():
            slot.proc.kill()
            slot.proc.join()
        slot.conn.close()
        slot.proc = slot.conn = None

    # ------------------------------------------------------------ contract
    @property
    def n_workers(self) -> int:
        return self._n

    @property
    def n_running(self) -> int:
        return sum(s.job is not None for s in self._slots)

    def worker_kinds(self) -> list[str]:
        return ["gpu" if s.gpu else "cpu" for s in self._slots]

    def free_kinds(self) -> list[str]:
        return ["gpu" if s.gpu else "cpu" for s in self._slots if s.job is None]

    def submit(self, job: Job) -> None:
        free = [s for s in self._slots if s.job is None]
        # A worker restarted after a crash may still be loading: prefer ready ones.
        slot = next((s for s in free if s.ready), free[0] if free else None)
        if slot is None:
            raise RuntimeError("submit() with no free worker")
        if self.log_dir is not None:
            job.log = os.path.join(self.log_dir, log_name(job.job_id))
        slot.job = job
        self._arm(slot)
        try:
            slot.conn.send(job)
        except (BrokenPipeError, OSError):
            pass  # the dead worker is noticed in wait()

    def _arm(self, slot: _Slot) -> None:
        """Start the timeout clock of a slot's job once its worker is ready."""
        if slot.ready and slot.job is not None and self.eval_timeout:
            slot.deadline = time.monotonic() + self.eval_timeout
        else:
            slot.deadline = float("inf")

    def _finish(self, slot: _Slot, status: Status, error: str) -> Evaluation:
        job = slot.job
        assert job is not None
        now = time.time() - self.t0
        log = getattr(job, "log", None) or ""
        if log and status in (Status.CRASHED, Status.TIMEOUT):  # what it printed before it ended
            error = with_tail(error, log)
        ev = Evaluation(
            job_id=job.job_id, config=job.config, status=status, error=error,
            worker=slot.worker, host=self._host, local_rank=slot.worker - 1, gpu=slot.gpu,
            submitted=job.submitted, started=job.submitted, finished=now,
            log=log if os.path.exists(log) else "",
        )
        slot.job = None
        return ev

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        busy = [s for s in self._slots if s.job is not None]
        if not busy:
            if timeout:
                time.sleep(timeout)
            return []
        now = time.monotonic()
        limit = min(s.deadline for s in busy) - now
        wait_for = max(0.0, limit) if timeout is None else max(0.0, min(timeout, limit))
        if wait_for == float("inf"):
            wait_for = None
        handles: dict[Any, _Slot] = {}
        for s in busy:
            handles[s.conn] = s
            handles[s.proc.sentinel] = s
        ready = mp_wait(list(handles), timeout=wait_for)
        out: list[Evaluation] = []
        done: set[int] = set()
        for h in ready:
            s = handles[h]
            if s.worker in done or s.job is None:
                continue
            done.add(s.worker)
            ev = self._receive(s)
            if ev is not None:
                out.append(ev)
        now = time.monotonic()
        for s in busy:
            if s.job is not None and now >= s.deadline:
                self._stop(s, kill=True)
                out.append(self._finish(
                    s, Status.TIMEOUT, f"evaluation exceeded the timeout of {self.eval_timeout:g} s"))
                self._start(s)
        return out

    def _receive(self, s: _Slot) -> Evaluation | None:
        """Collect the result of a slot that became ready, or record its death."""
        try:
            while s.conn.poll():
                msg = s.conn.recv()
                if isinstance(msg, str) and msg == _READY:
                    s.ready = True
                    self._arm(s)
                    continue
                if isinstance(msg, tuple) and msg and msg[0] == _REPORT:
                    self._report(s, *msg[1:])
                    continue
                s.job = None
                s.deadline = float("inf")
                return msg
        except (EOFError, OSError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - a result that unpickling fails on, here only
            # The message was read whole: the worker goes on; the result is a row, not a crash.
            s.deadline = float("inf")
            return self._finish(s, Status.FAILED, "run returned a result that cannot be sent back to the "
                                f"master ({type(exc).__name__}: {str(exc).strip()[:200]})")
        if s.proc.is_alive():
            return None
        s.proc.join()
        ev = self._finish(s, Status.CRASHED, _death_reason(s.proc.exitcode, self.eval_memory))
        self._stop(s, kill=True)
        self._start(s)
        return ev

    def _report(self, s: _Slot, job_id: int, step: Any, value: float) -> None:
        """One in-training report of a slot's job: to ``on_report``, and a stop back when it says so."""
        if self.on_report is not None and s.job is not None and s.job.job_id == job_id \
                and self.on_report(job_id, step, value):
            self.halt(job_id)

    def halt(self, job_id: int) -> None:
        """Tell the evaluation ``job_id`` that it should stop (read at its next report)."""
        for s in self._slots:
            if s.job is not None and s.job.job_id == job_id:
                try:
                    s.conn.send((_HALT, job_id))
                except (BrokenPipeError, OSError):
                    pass

    def cancel(self) -> list[Evaluation]:
        out = []
        for s in self._slots:
            if s.job is not None:
                self._stop(s, kill=True)
                out.append(self._finish(s, Status.CANCELLED, "search stopped before it finished"))
                self._start(s)
        return out

    def close(self) -> None:
        for s in self._slots:
            self._stop(s, kill=s.job is not None)
