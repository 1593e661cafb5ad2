"""Balsam evaluator: one Balsam job per configuration, run by Balsam's own launcher.

For sites that run their workloads through Balsam 1 (``balsam-flow``): the
search registers one Balsam application for the problem's ``run``
(``python -m ambs.evaluator.balsam_app PROBLEM``), adds one ``BalsamJob`` per
configuration to the database in ``$BALSAM_DB_PATH`` with the configuration as
JSON in the job's ``data`` and the resources of one evaluation (nodes, ranks
per node, threads per rank, GPUs per rank), and polls the database: a job that
finished or failed is read back and its place goes to the next configuration
at once. A launcher (``balsam launcher``, here or in a batch job) runs the jobs;
the search never starts processes itself. The Balsam job id goes to the CSV
column ``m:balsam_job_id``.

Balsam is imported only when this evaluator is chosen.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ambs.errors import AmbsError
from ambs.evaluator.balsam_app import RESULT_KEY, SPEC_KEY, load_balsam, plain
from ambs.evaluator.base import Evaluator
from ambs.result import Evaluation, Job, Status
from ambs.target import RunTarget

__all__ = ["JOB_ID_METADATA", "BalsamEvaluator", "load_balsam"]

JOB_ID_METADATA = "balsam_job_id"  # the CSV column m:balsam_job_id

DONE_STATES = ("RUN_DONE", "POSTPROCESSED", "JOB_FINISHED")
ERROR_STATES = ("RUN_ERROR", "FAILED")
KILLED = "USER_KILLED"


def _db_errors() -> tuple[type[BaseException], ...]:
    from django import db

    return (db.OperationalError, db.InterfaceError)


def _check_database(models: ModuleType) -> None:
    """Fail early, in one line, if the database cannot be reached or has no tables."""
    from django import db

    try:
        models.BalsamJob.objects.exists()
    except db.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AmbsError(f"cannot reach Balsam's database ({os.environ['BALSAM_DB_PATH']}): {first}") from None
    except db.ProgrammingError:
        raise AmbsError("Balsam's database has no job table: create it with `balsam init` "
                        "or `python -m ambs.evaluator.balsam_site`") from None


@dataclass
class _Flight:
    """A job handed to Balsam and not yet returned by ``wait``."""

    job: Job
    pk: Any  # the BalsamJob's UUID
    slot: int  # 1..n_workers, the CSV's worker column
    running_since: float | None = None  # time.monotonic() when first seen RUNNING


class BalsamEvaluator(Evaluator):
    """Keeps ``workers`` Balsam jobs of the search in the database at once.

    Args:
        workers: jobs in flight (queued or running in Balsam) at once.
        threads_per_worker: threads per rank (Balsam's ``threads_per_rank``;
            also caps the math libraries' threads).
        balsam_nodes: nodes per evaluation.
        balsam_ranks_per_node: MPI ranks per node of one evaluation; every
            rank runs ``run`` and rank 0 reports the objective.
        balsam_gpus_per_rank: GPUs per rank, set in ``CUDA_VISIBLE_DEVICES``
            from the rank's index on its node.
        balsam_node_packing: evaluations sharing a node in Balsam's serial
            job mode (single-rank jobs only).
        balsam_workflow: the Balsam workflow name of the search's jobs.
        poll_interval: seconds between two queries of the database.

    ``eval_timeout`` counts from the first poll that sees the job RUNNING, so it
    includes the start of the job's processes; the job is then marked
    USER_KILLED, which Balsam's MPI-mode launcher acts on by stopping it.
    """

    name = "balsam"

    def __init__(
        self,
        target: RunTarget | str | Callable[..., Any],
        t0: float,
        eval_timeout: float | None = None,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        balsam_nodes: int = 1,
        balsam_ranks_per_node: int = 1,
        balsam_gpus_per_rank: int = 0,
        balsam_node_packing: int = 1,
        balsam_workflow: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(target, t0, eval_timeout)
        problem_ref = self.target.portable_ref()  # Balsam's jobs load it by command line
        self._n = int(workers or os.cpu_count() or 1)
        for what, value in (("workers", self._n), ("nodes", balsam_nodes),
                            ("ranks per node", balsam_ranks_per_node),
                            ("node packing", balsam_node_packing)):
            if value < 1:
                raise ValueError(f"the balsam evaluator needs at least 1 for {what}, got {value}")
        self.threads = threads_per_worker
        self.nodes = int(balsam_nodes)
        self.ranks_per_node = int(balsam_ranks_per_node)
        self.gpus_per_rank = int(balsam_gpus_per_rank or 0)
        self.node_packing = int(balsam_node_packing)
        self.poll_interval = poll_interval
        self._cwd = os.getcwd()
        self._host = socket.gethostname()
        self._flights: dict[str, _Flight] = {}  # str(pk) -> flight
        self.models = load_balsam()
        _check_database(self.models)
        module, _, function = problem_ref.rpartition(":")
        if not (module and function.isidentifier()):
            module, function = problem_ref, ""
        problem = Path(module)
        if module.endswith(".py") or problem.is_file():
            app, stem = str(problem.resolve()), problem.stem
        else:
            app, stem = module, module.rsplit(".", 1)[-1]
        if function:
            app, stem = f"{app}:{function}", f"{stem}-{function}"
        self.workflow = balsam_workflow or f"ambs-{stem}"
        self.app = self._register_app(app, stem)

    # ------------------------------------------------------------ Balsam
    def _register_app(self, target: str, stem: str) -> str:
        """The Balsam application running this problem's ``run``; returns its name.

        The name carries a hash of the command line, so that two searches with
        problems of the same name (or two virtualenvs) never share one.
        """
        executable = f"{shlex.quote(sys.executable)} -m ambs.evaluator.balsam_app {shlex.quote(target)}"
        name = f"ambs-{stem}-{hashlib.sha1(executable.encode()).hexdigest()[:8]}"
        self.models.ApplicationDefinition.objects.update_or_create(
            name=name, defaults={"executable": executable,
                                 "description": f"ambs: run() of the problem {target}"})
        return name

    def _job_fields(self, job: Job) -> dict[str, Any]:
        spec = {
            "job_id": job.job_id, "config": plain(job.config), "cwd": self._cwd, "t0": self.t0,
            "submitted": job.submitted, "threads": self.threads, "gpus_per_rank": self.gpus_per_rank,
            "budget": job.budget,  # None: run(config); a number: run(config, budget)
            "checkpoint": job.checkpoint,
            "objectives": [list(o) for o in job.objectives],
        }
        fields: dict[str, Any] = {
            "name": f"{self.workflow}-{job.job_id}",
            "workflow": self.workflow,
            "application": self.app,
            "description": f"ambs evaluation {job.job_id}",
            "num_nodes": self.nodes,
            "ranks_per_node": self.ranks_per_node,
            "threads_per_rank": self.threads or 1,
            "cpu_affinity": "depth" if self.threads else "none",
            "node_packing_count": self.node_packing,
            "data": {SPEC_KEY: spec},
        }
        if self.eval_timeout:
            fields["wall_time_minutes"] = max(1, math.ceil(self.eval_timeout / 60))
        return fields

    # ------------------------------------------------------------ contract
    @property
    def n_workers(self) -> int:
        return self._n

    @property
    def n_running(self) -> int:
        return len(self._flights)

    def submit(self, job: Job) -> None:
        used = {f.slot for f in self._flights.values()}
        slot = next((i for i in range(1, self._n + 1) if i not in used), None)
        if slot is None:
            raise RuntimeError("submit() with no free worker")
        record = self.models.BalsamJob(**self._job_fields(job))
        record.save()
        self._flights[str(record.pk)] = _Flight(job, record.pk, slot)

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            if not self._flights:
                if timeout:
                    time.sleep(timeout)
                return []
            try:
                out = self._poll()
                failures = 0
            except _db_errors() as exc:
                # A restarted database server or a dropped connection: reconnect and retry.
                from django import db

                db.connections.close_all()
                failures += 1
                if failures >= 10:
                    raise AmbsError(f"lost Balsam's database: {str(exc).strip().splitlines()[0]}") from None
                out = []
            if out:
                return out
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            time.sleep(self.poll_interval if left is None else min(self.poll_interval, left))

    def _poll(self) -> list[Evaluation]:
        """One query for the states of the jobs in flight; settle those that ended."""
        BalsamJob = self.models.BalsamJob
        states = dict(BalsamJob.objects.filter(pk__in=[f.pk for f in self._flights.values()])
                      .values_list("pk", "state"))
        now = time.monotonic()
        ended: list[tuple[_Flight, str]] = []
        to_kill: list[_Flight] = []
        for flight in list(self._flights.values()):
            state = states.get(flight.pk)
            if state is None or state in DONE_STATES or state in ERROR_STATES or state == KILLED:
                ended.append((flight, state or "DELETED"))
            elif state == "RUNNING":
                if flight.running_since is None:
                    flight.running_since = now
                if self.eval_timeout and now - flight.running_since >= self.eval_timeout:
                    to_kill.append(flight)
        out = []
        if ended:
            rows = {pk: (data, history) for pk, data, history in BalsamJob.objects.filter(
                pk__in=[f.pk for f, _ in ended]).values_list("pk", "data", "state_history")}
            for flight, state in ended:
                data, history = rows.get(flight.pk, ({}, ""))
                out.append(self._settle(flight, state, data or {}, history or ""))
        if to_kill:
            BalsamJob.batch_update_state([f.pk for f in to_kill], KILLED,
                                         f"ambs: evaluation exceeded the timeout of {self.eval_timeout:g} s")
            for flight in to_kill:
                out.append(self._end(flight, Status.TIMEOUT,
                                     f"evaluation exceeded the timeout of {self.eval_timeout:g} s"))
        return out

    def _end(self, flight: _Flight, status: Status, error: str) -> Evaluation:
        """An evaluation that ran no ``run`` to its end (timeout, crash, cancel)."""
        self._flights.pop(str(flight.pk), None)
        now = time.time() - self.t0
        return Evaluation(
            job_id=flight.job.job_id, config=flight.job.config, status=status, error=error,
            metadata={JOB_ID_METADATA: str(flight.pk)}, worker=flight.slot, host=self._host,
            local_rank=0, submitted=flight.job.submitted, started=flight.job.submitted, finished=now)

    def _settle(self, flight: _Flight, state: str, data: dict[str, Any], history: str) -> Evaluation:
        """The evaluation of a job that reached ``state``, from what its rank 0 reported."""
        result = data.get(RESULT_KEY)
        if state == "DELETED":
            return self._end(flight, Status.FAILED, "the Balsam job was deleted from the database")
        if state == KILLED and result is None:
            return self._end(flight, Status.FAILED, "the Balsam job was killed (USER_KILLED)")
        if result is None:
            last = _last_message(history)
            if state in DONE_STATES:
                return self._end(flight, Status.FAILED, "the Balsam job ended without reporting a result")
            return self._end(flight, Status.CRASHED, f"the Balsam job failed ({last})" if last
                             else f"the Balsam job ended in state {state}")
        self._flights.pop(str(flight.pk), None)
        try:
            status = Status(result.get("status", "failed"))
        except ValueError:
            status = Status.FAILED
        objective = result.get("objective")
        metadata = dict(result.get("metadata") or {})
        metadata[JOB_ID_METADATA] = str(flight.pk)
        values = result.get("objectives")
        return Evaluation(
            job_id=flight.job.job_id, config=flight.job.config,
            objective=float(objective) if status is Status.OK and objective is not None else math.nan,
            status=status, error=str(result.get("error") or ""), metadata=metadata,
            worker=flight.slot, host=str(result.get("host") or ""),
            local_rank=int(result.get("local_rank") or 0), submitted=flight.job.submitted,
            started=_float(result.get("started")), finished=_float(result.get("finished")),
            objectives=tuple(float(v) for v in values) if status is Status.OK and values else None,
        )

    def cancel(self) -> list[Evaluation]:
        """Mark every job in flight USER_KILLED (Balsam's launcher stops those
        running in MPI mode) and return them as cancelled."""
        flights = list(self._flights.values())
        if not flights:
            return []
        try:
            BalsamJob = self.models.BalsamJob
            live = BalsamJob.objects.filter(pk__in=[f.pk for f in flights]).exclude(
                state__in=DONE_STATES + ERROR_STATES + (KILLED,)).values_list("pk", flat=True)
            BalsamJob.batch_update_state(list(live), KILLED, "ambs: search stopped")
        except _db_errors():
            pass  # the evaluations are cancelled for the search either way
        return [self._end(f, Status.CANCELLED, "search stopped before it finished") for f in flights]

    def close(self) -> None:
        try:
            from django import db

            db.connections.close_all()
        except Exception:  # noqa: BLE001 - nothing left to release
            pass


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _last_message(history: str) -> str:
    """The last non-empty message in a job's state history, on one line.

    Each entry starts with ``[date time STATE]`` on a new line; a RUN_ERROR's
    message holds the tail of the job's output over several lines.
    """
    entries = re.split(r"\n\s*(?=\[\d+-\d+-\d+ [\d:.]+ [A-Z_]+\])", "\n" + history)
    for entry in reversed(entries):
        head, _, message = entry.strip().partition("]")
        message = " ".join(message.split())
        if head and message:
            if len(message) <= 300:
                return message
            # Keep Balsam's "nonzero return N:" and the end of the job's output.
            lead, sep, rest = message.partition(": ")
            lead = lead if sep and len(lead) < 40 else ""
            return f"{lead}: ... {message[-240:]}" if lead else f"... {message[-280:]}"
    return ""
