"""The evaluator contract: hand jobs to workers, collect evaluations as they finish.

An evaluator owns workers and nothing else: no search, no CSV. The driver
submits one job per free worker and waits for whatever finishes first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ambs.result import Evaluation, Job

__all__ = ["Evaluator"]


class Evaluator(ABC):
    """Runs jobs asynchronously on ``n_workers`` workers.

    Args:
        problem_ref: the problem module (dotted name or path); workers load it.
        t0: the run's start as ``time.time()``; evaluations report times since then.
        eval_timeout: seconds after which a running evaluation is killed and
            recorded as a timeout (None: no limit).
    """

    name = "base"

    def __init__(self, problem_ref: str, t0: float, eval_timeout: float | None = None) -> None:
        self.problem_ref = problem_ref
        self.t0 = t0
        self.eval_timeout = eval_timeout

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
