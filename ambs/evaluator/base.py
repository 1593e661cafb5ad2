"""The evaluator contract: hand jobs to workers, collect evaluations as they finish.

An evaluator owns workers and nothing else: no search, no CSV. The driver
submits one job per free worker and waits for whatever finishes first.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ambs.result import Evaluation, Job
from ambs.target import RunTarget, as_target

if TYPE_CHECKING:
    from ambs.fitter import Fitter
    from ambs.search.base import Search

__all__ = ["Evaluator"]


class Evaluator(ABC):
    """Runs jobs asynchronously on ``n_workers`` workers.

    Args:
        target: what workers run: a problem module (dotted name or path),
            which each worker loads, or a callable ``run(config[, budget])``
            (see :mod:`ambs.target`).
        t0: the run's start as ``time.time()``; evaluations report times since then.
        eval_timeout: seconds after which a running evaluation is killed and
            recorded as a timeout (None: no limit).

    Backends take their own options as keyword arguments and refuse any they
    do not know (a mistyped option is an error, not a silent default).
    """

    name = "base"

    def __init__(self, target: RunTarget | str | Callable[..., Any], t0: float,
                 eval_timeout: float | None = None) -> None:
        self.target = as_target(target)
        self.t0 = t0
        self.eval_timeout = eval_timeout
        # Where in-training reports go on the master (ambs.reports.CurveBook.report):
        # (job_id, step, value) -> True when that evaluation should stop. None: not listened to.
        self.on_report: Callable[[int, Any, float], bool] | None = None

    @property
    def problem_ref(self) -> str | None:
        """The problem module's reference, or None for a callable target."""
        return self.target.ref

    @property
    @abstractmethod
    def n_workers(self) -> int:
        """How many jobs can run at once."""

    @property
    @abstractmethod
    def n_running(self) -> int:
        """Jobs submitted and not yet returned by ``wait``."""

    @property
    def n_free(self) -> int:
        return max(self.n_workers - self.n_running, 0)

    def worker_kinds(self) -> list[str]:
        """The kind of every worker, ``gpu`` or ``cpu``; all ``cpu`` unless the
        evaluator knows better. Workers of more than one kind let the driver
        send the most complex configurations to the most capable ones
        (``--assign shadho``, see :mod:`ambs.nas.hardware`)."""
        return ["cpu"] * self.n_workers

    def clock(self) -> float:
        """Now, in the seconds the driver counts walltime and records times in
        (``time.time``; the simulated evaluator's virtual clock)."""
        return time.time()

    # Where fits run when the user leaves it to the evaluator (--fit auto):
    # a thread; the MPI evaluator, whose master has a node's cores, a process.
    default_fit = "background"

    def fitter_for(self, search: Search, fit: str = "background") -> Fitter:
        """What fits ``search``'s model off the dispatch path while this
        evaluator runs: a background thread, or a process of its own
        (``fit="process"``); on a virtual clock when simulated."""
        from ambs.fitter import BackgroundFitter, ProcessFitter

        return ProcessFitter(search) if fit == "process" else BackgroundFitter(search)

    def attach(self, search: Search) -> None:
        """Learn what this evaluator may adapt to the search it serves (the MPI
        evaluator: whether ranks may hold a job proposed ahead); nothing by default."""
        return None

    def free_kinds(self) -> list[str]:
        """The kind of every free worker (one entry each)."""
        return ["cpu"] * self.n_free

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start ``job`` on a free worker (never blocks for a running one), one
        of kind ``job.kind`` when that is set and such a worker is free."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        """Return the evaluations finished so far, blocking up to ``timeout``
        seconds for at least one (None: until one finishes)."""

    @abstractmethod
    def cancel(self) -> list[Evaluation]:
        """Stop every running job now; returns them as CANCELLED evaluations."""

    def close(self) -> None:
        """Release the workers; running jobs should be waited for or cancelled first."""
        return None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
