"""The worker side of every backend: start up once, then evaluate jobs.

A worker process, whoever started it (the process evaluator's pool, the
child of an MPI worker rank, a Balsam job), does the same things in the same
order, all written here once:

1. :func:`start`: cap math-library threads; on Linux die with the master and
   adopt what evaluations leave behind (:mod:`ambs.reaper`); take its own
   process group; ignore the stop signals a terminal or a scheduler sends to
   everyone (the master decides when work stops).
2. :func:`load`: resolve the run target once (a problem module's ``run`` or a
   callable); a failure is reported for every job instead of crashing.
3. :func:`cap_memory`: the address-space limit, counted from the loaded problem.
4. :func:`evaluate`: run one job with its stdout and stderr in its log
   (:mod:`ambs.evaluator.logs`), end whatever it started, return its
   :class:`ambs.result.Evaluation` for the backend to report.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from ambs import reaper
from ambs.evaluator.logs import captured
from ambs.result import Evaluation, Job, Status, execute
from ambs.target import RunTarget

__all__ = ["cap_memory", "evaluate", "limit_memory", "load", "start", "thread_env"]

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def thread_env(threads: int | None) -> dict[str, str]:
    """Environment variables that cap a worker's math-library threads."""
    return {} if not threads else {v: str(threads) for v in _THREAD_VARS}


def _ignore(_signum: int, _frame: Any) -> None:
    """A stop signal reached a worker: the master decides, so nothing happens here."""


def _master_gone(_signum: int, _frame: Any) -> None:
    """The master died: end everything this worker started, then the worker."""
    reaper.end(reaper.descendants(), grace=0)
    os._exit(1)


def start(threads: int | None = None, own_group: bool = True, die_with_parent: bool = True,
          ignore_stop_signals: bool = True) -> None:
    """Set up this process as a worker (see the module); call it first.

    Args:
        threads: cap on OpenMP/MKL/BLAS threads (None: no cap).
        own_group: lead a process group of its own, so that a timeout or a
            crash also ends what an evaluation started (not for a process an
            MPI launcher or Balsam manages as a group of its own).
        die_with_parent: on Linux, end with the master's death (process pool).
        ignore_stop_signals: leave SIGINT/SIGTERM/SIGUSR1 to the master (not
            for a process whose own launcher stops it by signal, as Balsam's).
    """
    os.environ.update(thread_env(threads))
    if die_with_parent:
        signal.signal(reaper.MASTER_GONE, _master_gone)
        if reaper.die_with_parent(reaper.MASTER_GONE) and os.getppid() == 1:
            _master_gone(reaper.MASTER_GONE, None)  # the master died before the request took effect
    # What an evaluation started and left behind is re-parented here, not to
    # PID 1, so that it is ended with the evaluation (see ambs.reaper).
    reaper.subreaper()
    if own_group:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
    if not ignore_stop_signals:
        return
    # A handler that does nothing, not SIG_IGN: an ignored signal stays
    # ignored in the programs an evaluation starts, which then could not be
    # terminated by the evaluation itself.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, _ignore)
        signal.siginterrupt(sig, False)  # system calls in C code resume, as if ignored


def load(target: RunTarget, threads: int | None = None) -> tuple[Callable[..., Any] | None, str]:
    """The run function of ``target`` and "", or None and why it could not be loaded.

    A worker never reads the search space: its problem records the
    declarations instead of building them (:func:`ambs.problem.defer_spaces`)."""
    from ambs.problem import defer_spaces

    defer_spaces()
    try:
        run = target.load(check=False)
    except Exception as exc:  # noqa: BLE001 - reported for every job this worker gets
        return None, f"worker could not load the problem: {exc}"
    torch = sys.modules.get("torch")  # torch sizes its pools at first use
    if threads and torch is not None:
        torch.set_num_threads(threads)
    return run, ""


def _address_space() -> int:
    """This process's virtual memory size in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def limit_memory(megabytes: int) -> int:
    """Cap this process's address space (RLIMIT_AS) at its current size plus
    ``megabytes`` MiB; returns the limit set, in bytes."""
    import resource

    limit = _address_space() + int(megabytes) * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


def cap_memory(megabytes: int | None) -> None:
    """Called once the problem is loaded, so the cap is what one evaluation may
    add, not what numpy or torch take to import."""
    if megabytes:
        limit_memory(megabytes)


def evaluate(run: Callable[..., Any] | None, load_error: str, job: Job, t0: float,
             memory_mb: int | None = None, reporter: Any = None) -> Evaluation:
    """Run ``job``, its output in ``job.log`` when it names a file; what it
    started ends with it. A worker that could not load the problem records
    that as the job's failure. ``reporter``: see :func:`ambs.result.execute`."""
    if run is None:
        now = time.time() - t0
        return Evaluation(job.job_id, job.config, status=Status.FAILED, error=load_error,
                          submitted=job.submitted, started=now, finished=now)
    log = getattr(job, "log", None)  # a Job pickled by an older version has none
    before = reaper.descendants()
    with captured(log) as logged:
        try:
            ev = execute(run, job, t0, print_traceback=bool(logged), reporter=reporter)
        finally:
            reaper.end_new(before)  # inside: what it left behind writes to the log, not here
    if memory_mb and ev.status is Status.FAILED and ev.error.split(" ", 1)[0].rstrip(":").endswith("MemoryError"):
        ev.error = f"{ev.error} (over the evaluation memory limit of {memory_mb} MB)"
    logged.name_in(ev)
    return ev
