"""What one evaluation produced: status, objective, timing, and where it ran."""

from __future__ import annotations

import enum
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Status", "Job", "Evaluation", "execute", "normalize_output", "normalize_multi"]


class Status(str, enum.Enum):
    """Outcome of one evaluation; only ``OK`` carries a finite objective."""

    OK = "ok"  # run returned a finite number
    FAILED = "failed"  # run raised, or returned something that is not a finite number
    TIMEOUT = "timeout"  # run exceeded the evaluation timeout and was killed
    CRASHED = "crashed"  # the process running it died (segfault, abort, out of memory)
    CANCELLED = "cancelled"  # the search stopped before it finished


@dataclass
class Job:
    """A configuration handed to an evaluator, with the budget to train it with.

    ``budget`` None means the full training: the worker calls ``run(config)``;
    a number (from a multi-fidelity search) makes it call ``run(config, budget)``.
    ``kind`` names the kind of worker the job should run on (``gpu``, ``cpu``;
    see :meth:`ambs.evaluator.base.Evaluator.worker_kinds`), None for any.
    """

    job_id: int
    config: dict[str, Any]
    submitted: float = 0.0  # seconds since the run began
    budget: float | None = None
    kind: str | None = None
    log: str | None = None  # the file its output goes to (absolute path), None: no log
    checkpoint: str | None = None  # the file a promoted training continues from (see ambs.checkpoints)
    objectives: tuple[tuple[str, str], ...] = ()  # the problem's declared (name, direction)s; () for one objective


@dataclass
class Evaluation:
    """A finished job, as written to one CSV row."""

    job_id: int
    config: dict[str, Any]
    objective: float = math.nan
    status: Status = Status.OK
    error: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    worker: int = 0  # worker number (the MPI rank under the mpi evaluator)
    host: str = ""
    local_rank: int = 0  # the worker's index among the workers on its host
    gpu: str = ""  # the GPU the worker was given (its CUDA_VISIBLE_DEVICES), "" on CPU
    submitted: float = math.nan
    started: float = math.nan
    finished: float = math.nan
    budget: float | None = None  # the budget it trained with; None: the full one, or no budget declared
    log: str = ""  # the file that holds its stdout and stderr ("" for none)
    stopped: float | None = None  # the report step at which it was told to stop; None: it ran to its end
    # The declared objectives' values, as run returned them (None: one objective, or no result);
    # ``objective`` is then the first of them, negated when it is minimized.
    objectives: tuple[float, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def _short_repr(value: Any) -> str:
    """``repr(value)`` cut to 80 characters; a repr that raises gives the type's name."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - the value is reported, whatever its repr does
        return f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def normalize_multi(out: Any, specs: tuple[tuple[str, str], ...]
                    ) -> tuple[float, Status, str, dict[str, Any], tuple[float, ...] | None]:
    """What ``run`` returned, for a problem that declares objectives
    ``specs`` ((name, direction) pairs): (objective, status, error, metadata,
    the objectives' values). ``objective`` is the first value, negated when
    it is minimized, so that what reads one objective still maximizes it."""
    from ambs.objectives import read_objectives

    names = ", ".join(name for name, _ in specs)
    if not isinstance(out, dict):
        return (math.nan, Status.FAILED, f"run returned {_short_repr(out)}; the problem declares the objectives "
                f"{names}: return a dict holding each", {}, None)
    values, metadata, error = read_objectives(out, specs)
    if error:
        return math.nan, Status.FAILED, error, {}, None
    numbers = []
    for (name, _), v in zip(specs, values):
        number, status, err, _ = normalize_output(v)
        if status is not Status.OK:
            return math.nan, status, f"objective {name!r}: {err}", metadata, None
        numbers.append(number)
    first = numbers[0] if specs[0][1] == "max" else -numbers[0]
    return first, Status.OK, "", metadata, tuple(numbers)


def normalize_output(out: Any) -> tuple[float, Status, str, dict[str, Any]]:
    """Turn what ``run`` returned into (objective, status, error, metadata).

    Several objectives (all maximized) come in a dict, as a list or tuple
    under ``objective`` or ``objectives`` (a bare list is an error): the first is the
    objective every search optimizes, and the whole list goes to the
    metadata as ``objectives`` (its ``m:objectives`` column, when declared,
    holds it as JSON; ``ambs.analysis`` computes the Pareto front from it).
    """
    metadata: dict[str, Any] = {}
    value = out
    if isinstance(out, dict):
        key = "objective" if "objective" in out else "objectives" if "objectives" in out else None
        if key is None:
            return math.nan, Status.FAILED, "run returned a dict without an 'objective' key", {}
        value = out[key]
        metadata = {str(k): v for k, v in out.items() if k != key}
    if isinstance(out, dict) and (isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) == 1):
        values = list(value)
        if not values:
            return math.nan, Status.FAILED, "run returned an empty list of objectives", metadata
        numbers = []
        for v in values:
            if isinstance(v, (list, tuple, dict)):
                return math.nan, Status.FAILED, f"run returned {_short_repr(v)} in a list of objectives", metadata
            number, status, error, _ = normalize_output(v)
            if status is not Status.OK:
                return math.nan, status, error.replace("objective", "objective in a list"), metadata
            numbers.append(number)
        metadata["objectives"] = numbers
        value = numbers[0]
    # float() would also accept a string such as "0.9": that is a bug in run, not a result.
    if isinstance(value, (bool, str, bytes)) or value is None:
        return math.nan, Status.FAILED, f"run returned {_short_repr(value)}, not a number", metadata
    # An array (numpy, torch) must be a scalar: float() of a one-element one
    # would hide a shape bug, as it does for [x] lists, which float() refuses.
    shape = getattr(value, "shape", ())
    if not isinstance(shape, tuple) or len(shape) > 0:
        return (math.nan, Status.FAILED,
                f"run returned an array of shape {tuple(shape)}, not a number", metadata)
    try:
        objective = float(value)  # numpy scalars, 0-d arrays, ints
    except (TypeError, ValueError):
        return math.nan, Status.FAILED, f"run returned {_short_repr(value)}, not a number", metadata
    except Exception as exc:  # noqa: BLE001 - 10**400 (OverflowError), a __float__ that raises
        return (math.nan, Status.FAILED,
                f"run returned {_short_repr(value)}, not a finite number ({_exc_text(exc)})", metadata)
    if not math.isfinite(objective):
        return math.nan, Status.FAILED, f"run returned a non-finite objective ({objective})", metadata
    return objective, Status.OK, "", metadata


def _exc_text(exc: BaseException) -> str:
    """``Type: first line of the message`` (just the type when the message cannot be had)."""
    try:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    except Exception:  # noqa: BLE001 - an exception whose str raises
        msg = ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _error_text(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" [{tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}]" if tb else ""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}{where}" if msg else f"{type(exc).__name__}{where}"


def _end_fork(pid: int) -> None:
    """A child that ``run`` forked returned into ambs code: it ends here, at once,
    and touches nothing (no row, no result sent, no second search)."""
    if os.getpid() != pid:
        os._exit(0)


def _print_traceback(exc: BaseException) -> None:
    """Write the traceback of a failed ``run`` to stderr (its log, where it has one)."""
    import sys

    tb = exc.__traceback__
    tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb  # from run's frame on, not execute's
    try:
        traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a traceback that cannot be written is left out
        pass


def execute(run: Callable[..., Any], job: Job, t0: float, print_traceback: bool = False,
            reporter: Any = None) -> Evaluation:
    """Run one job in this process and record what happened.

    ``t0`` is the run's start as ``time.time()``; times are seconds since then.
    Exceptions from ``run`` become FAILED evaluations, ``sys.exit`` (SystemExit)
    too: under the serial evaluator it would end the whole search, under the
    others a worker process. KeyboardInterrupt propagates, so a worker can
    still be stopped. ``print_traceback``: write the traceback of a failure
    to stderr (the evaluation's log) besides the one-line error.
    ``reporter``: what a ``run`` that declares ``report`` gets (see
    :mod:`ambs.reports`); None gives such a run one that records nothing.
    """
    started = time.time() - t0
    budget = getattr(job, "budget", None)  # a Job pickled by an older version has none
    pid = os.getpid()
    from ambs.reports import Reporter, accepts_report

    args: tuple[Any, ...] = (dict(job.config),) if budget is None else (dict(job.config), budget)
    values: tuple[float, ...] | None = None
    kwargs: dict[str, Any] = {}
    if accepts_report(run):
        reporter = kwargs["report"] = reporter if reporter is not None else Reporter(job.job_id)
        checkpoint = getattr(job, "checkpoint", None)  # a Job pickled by an older version has none
        reporter.checkpoint = Path(checkpoint) if checkpoint else None
    else:
        reporter = None
    try:
        out = run(*args, **kwargs)
    except KeyboardInterrupt:
        _end_fork(pid)
        raise
    except SystemExit as exc:
        _end_fork(pid)
        objective, status, error, metadata = math.nan, Status.FAILED, f"{_error_text(exc)} (run called sys.exit)", {}
    except BaseException as exc:  # noqa: BLE001 - any user error is a failed evaluation
        _end_fork(pid)
        if print_traceback:
            _print_traceback(exc)
        objective, status, error, metadata = math.nan, Status.FAILED, _error_text(exc), {}
    else:
        _end_fork(pid)
        specs = tuple(getattr(job, "objectives", ()) or ())  # a Job pickled by an older version has none
        try:
            if specs:
                objective, status, error, metadata, values = normalize_multi(out, specs)
            else:
                objective, status, error, metadata = normalize_output(out)
        except Exception as exc:  # noqa: BLE001 - a result that breaks what reads it is a failure too
            objective, status, error, metadata = (
                math.nan, Status.FAILED, f"run returned a result that cannot be read ({_exc_text(exc)})", {})
            values = None
    return Evaluation(
        job_id=job.job_id,
        config=job.config,
        objective=objective,
        status=status,
        error=error,
        metadata=metadata,
        submitted=job.submitted,
        started=started,
        finished=time.time() - t0,
        budget=budget,
        stopped=reporter.stopped if reporter is not None else None,
        objectives=values,
    )
