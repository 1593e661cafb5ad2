"""What a Balsam job of an ambs search runs: one evaluation of a problem's ``run``.

The Balsam application of a problem is ``python -m ambs.evaluator.balsam_app
PROBLEM``; the launcher starts it (under ``mpirun`` for MPI jobs) in the job's
working directory with ``BALSAM_JOB_ID`` set. The configuration comes from the
job's ``data`` (JSON, written by the evaluator); rank 0 writes the outcome back
there. A failed evaluation (``run`` raised or returned no finite number) also
exits with ``FAILED_EXIT`` so that Balsam marks the job FAILED; Balsam's serial
mode retries only exit codes 1, 255 and signals, so it is not retried.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
from types import ModuleType
from typing import Any

from ambs.errors import AmbsError

__all__ = ["FAILED_EXIT", "INSTALL_HINT", "RESULT_KEY", "SPEC_KEY", "load_balsam", "local_rank", "main", "plain",
           "rank"]

INSTALL_HINT = "pip install -e '.[balsam]' (Balsam 1, the balsam-flow package)"

SPEC_KEY = "ambs"  # job.data[SPEC_KEY]: job_id, config, cwd, t0, submitted, gpus_per_rank, threads, budget
RESULT_KEY = "ambs_result"  # job.data[RESULT_KEY]: what rank 0 reports
FAILED_EXIT = 3

_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PALS_RANKID", "SLURM_PROCID")
_LOCAL_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PALS_LOCAL_RANKID", "SLURM_LOCALID")


def _first_int(names: tuple[str, ...]) -> int:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def rank() -> int:
    """This process's MPI rank, from the launcher's environment (0 without MPI)."""
    return _first_int(_RANK_VARS)


def local_rank() -> int:
    """This process's index among the ranks of its node (0 without MPI)."""
    return _first_int(_LOCAL_VARS)


def plain(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars become Python numbers, NaN and inf None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def load_balsam() -> ModuleType:
    """Import Balsam 1, connect it to ``$BALSAM_DB_PATH``; returns ``balsam.core.models``.

    Raises AmbsError (one line) when Balsam is not installed or no database is set.
    """
    path = os.environ.get("BALSAM_DB_PATH", "")
    if not path or not os.path.isdir(os.path.expanduser(path)):
        raise AmbsError(
            "the balsam evaluator needs a Balsam database: set BALSAM_DB_PATH to its directory "
            "(`source balsamactivate DB`, or see `python -m ambs.evaluator.balsam_site --help`)"
            + (f"; {path} is not a directory" if path else ""))
    # Importing balsam replaces sys.excepthook and sets the root logger to DEBUG;
    # neither is Balsam's business in this process.
    hook, root = sys.excepthook, logging.getLogger()
    level = root.level
    try:
        import balsam
        from django.conf import settings  # noqa: F401 - balsam needs Django
    except ImportError as exc:
        raise AmbsError(f"the balsam evaluator needs Balsam: {INSTALL_HINT} ({exc})") from None
    finally:
        sys.excepthook = hook
        root.setLevel(level)
    try:
        balsam.setup()
        from balsam.core import models
    finally:
        sys.excepthook = hook
        root.setLevel(level)
    return models


def _set_gpus(gpus_per_rank: int) -> None:
    """Give each rank of the node its own ``gpus_per_rank`` GPUs."""
    if gpus_per_rank > 0 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        first = local_rank() * gpus_per_rank
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(first + i) for i in range(gpus_per_rank))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not os.environ.get("BALSAM_JOB_ID"):
        print("usage: BALSAM_JOB_ID=... python -m ambs.evaluator.balsam_app PROBLEM "
              "(started by Balsam's launcher)", file=sys.stderr)
        return 2
    models = load_balsam()
    job_pk = os.environ["BALSAM_JOB_ID"]
    spec = models.BalsamJob.objects.get(pk=job_pk).data[SPEC_KEY]
    _set_gpus(int(spec.get("gpus_per_rank") or 0))
    from ambs.evaluator import worker
    from ambs.result import Job
    from ambs.target import RunTarget

    # Balsam's launcher owns this process and its signals; ambs adds the rest
    # of a worker's start-up (threads, the reaper), then loads and evaluates.
    worker.start(spec.get("threads"), own_group=False, die_with_parent=False, ignore_stop_signals=False)
    os.chdir(spec["cwd"])
    t0 = float(spec["t0"])
    budget = spec.get("budget")
    job = Job(int(spec["job_id"]), dict(spec["config"]), submitted=float(spec.get("submitted", 0.0)),
              budget=None if budget is None else float(budget), checkpoint=spec.get("checkpoint"),
              objectives=tuple((str(n), str(d)) for n, d in spec.get("objectives") or ()))
    run, load_error = worker.load(RunTarget(ref=argv[0]), spec.get("threads"))
    ev = worker.evaluate(run, load_error, job, t0)
    if rank() == 0:
        result = {
            "status": ev.status.value, "objective": plain(ev.objective), "error": ev.error,
            "metadata": plain(ev.metadata), "started": ev.started, "finished": ev.finished,
            "host": socket.gethostname(), "local_rank": local_rank(),
            "objectives": list(ev.objectives) if ev.objectives is not None else None,
        }
        # Only the data column is written: the launcher owns state and lock.
        current = models.BalsamJob.objects.get(pk=job_pk).data
        current[RESULT_KEY] = result
        models.BalsamJob.objects.filter(pk=job_pk).update(data=current)
        print(json.dumps(result))
    from django import db

    db.connections.close_all()
    return 0 if ev.ok else FAILED_EXIT


if __name__ == "__main__":
    sys.exit(main())
