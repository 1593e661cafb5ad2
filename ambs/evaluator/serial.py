"""Serial evaluator: runs each job in this process, for debugging and tests."""

from __future__ import annotations

import math
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ambs import reaper
from ambs.evaluator.base import Evaluator
from ambs.result import Evaluation, Job, Status, execute
from ambs.target import RunTarget

__all__ = ["SerialEvaluator"]


class SerialEvaluator(Evaluator):
    """One worker, in process: ``wait`` runs the next queued job to completion.

    An evaluation timeout cannot be enforced in process; use the process
    evaluator for that. The processes an evaluation starts are ended when it
    returns (:mod:`ambs.reaper`); if the master is killed (SIGKILL), they are not.
    """

    name = "serial"

    def __init__(self, target: RunTarget | str | Callable[..., Any], t0: float,
                 eval_timeout: float | None = None) -> None:
        super().__init__(target, t0, eval_timeout)
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
        try:
            ev = execute(self.run, self.queue.popleft(), self.t0)
        finally:
            reaper.end_new(before)
            if not was:
                reaper.subreaper(False)
        ev.worker, ev.host = 0, self.host
        return [ev]

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
