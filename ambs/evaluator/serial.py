"""Serial evaluator: runs each job in this process, for debugging and tests."""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ambs import reaper
from ambs.evaluator.base import Evaluator
from ambs.evaluator.logs import captured, log_name, release
from ambs.reports import Reporter
from ambs.result import Evaluation, Job, Status, execute
from ambs.target import RunTarget

__all__ = ["SerialEvaluator"]


class SerialEvaluator(Evaluator):
    """One worker, in process: ``wait`` runs the next queued job to completion.

    An evaluation timeout cannot be enforced in process; use the process
    evaluator for that. The processes an evaluation starts are ended when it
    returns (:mod:`ambs.reaper`); if the master is killed (SIGKILL), they are not.

    With ``log_dir``, this process's stdout and stderr (file descriptors 1
    and 2) go to the evaluation's log while it runs, and come back after it
    (:mod:`ambs.evaluator.logs`): what the master's other threads write
    meanwhile lands in that log too.
    """

    name = "serial"

    def __init__(self, target: RunTarget | str | Callable[..., Any], t0: float,
                 eval_timeout: float | None = None, log_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(target, t0, eval_timeout)
        self.log_dir = os.path.abspath(log_dir) if log_dir is not None else None
        if eval_timeout is not None:
            raise ValueError("the serial evaluator cannot stop a running evaluation: no eval_timeout")
        self.run = self.target.load()
        self.queue: deque[Job] = deque()
        self.host = socket.gethostname()

    @property
    def n_workers(self) -> int:
        return 1

    @property
    def n_running(self) -> int:
        return len(self.queue)

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        if not self.queue:
            if timeout:
                time.sleep(timeout)
            return []
        # What the evaluation starts ends with it (see ambs.reaper); orphans it
        # leaves are re-parented here meanwhile, so they are found too.
        before = reaper.descendants()
        was = reaper.is_subreaper()
        reaper.subreaper(True)
        job = self.queue.popleft()
        log = os.path.join(self.log_dir, log_name(job.job_id)) if self.log_dir is not None else None
        try:
            with captured(log) as logged:
                try:
                    ev = execute(self.run, job, self.t0, print_traceback=bool(logged), reporter=self._reporter(job))
                finally:
                    reaper.end_new(before)
        finally:
            if not was:
                reaper.subreaper(False)
        logged.name_in(ev)
        ev.worker, ev.host = 0, self.host
        return [ev]

    def _reporter(self, job: Job) -> Reporter | None:
        """In process, the master decides at once on each report."""
        if self.on_report is None:
            return None
        return Reporter(job.job_id, send=self.on_report)

    def close(self) -> None:
        release()  # the empty log kept for a next evaluation

    def cancel(self) -> list[Evaluation]:
        out = []
        now = time.time() - self.t0
        while self.queue:
            job = self.queue.popleft()
            out.append(
                Evaluation(
                    job_id=job.job_id, config=job.config, status=Status.CANCELLED,
                    error="search stopped before it ran", submitted=job.submitted,
                    started=math.nan, finished=now, host=self.host,
                )
            )
        return out
