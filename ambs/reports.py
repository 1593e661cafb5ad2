"""In-training reports: the reporter a problem's ``run`` gets, and the master's book of curves.

A ``run`` that declares a parameter named ``report`` (``def run(config,
report)``, ``def run(config, budget=None, report=None)``) is called with a
:class:`Reporter`; ``run(config)`` and ``run(config, budget)`` are called as
before. ``report(step, value)`` records one point of the evaluation's
learning curve (``value``: its objective so far, maximized) and returns True
when the evaluation should stop now; ``run`` then returns its current
objective. The call is cheap: the report goes to the master without waiting
for an answer, and the latest stop decision that has arrived is read.

Under a multi-fidelity method (Hyperband, ASHA, SHA), ``report.checkpoint``
is the file where the training may save its state when it ends and, when
the same configuration is promoted to a larger budget, load it from, so
that it continues instead of retraining (:mod:`ambs.checkpoints`); it is
None otherwise.

On the master, a :class:`CurveBook` appends every report to
``RUN_DIR/curves.csv`` (one flushed line each, append-only, like
results.csv) and asks the stopping rule (:mod:`ambs.stopping`) whether the
evaluation should stop.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import inspect
import io
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ambs.errors import RecorderError

__all__ = ["CURVES", "CurveBook", "Reporter", "accepts_report", "pipe_reporter", "read_curves"]

CURVES = "curves.csv"
HEADER = ["job_id", "step", "value", "time"]
PARAM = "report"
REPORT = "report"  # worker -> master on a pipe: (REPORT, job_id, step, value), one report
HALT = "halt"  # master -> worker on a pipe: (HALT, job_id), that evaluation should stop


@functools.lru_cache(maxsize=64)
def _accepts(run: Callable[..., Any]) -> bool:
    try:
        return PARAM in inspect.signature(run).parameters
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return False


def accepts_report(run: Callable[..., Any]) -> bool:
    """Whether ``run`` declares a ``report`` parameter (looked up once per function)."""
    try:
        return _accepts(run)
    except TypeError:  # an unhashable callable object
        return _accepts.__wrapped__(run)


def _number(step: Any) -> int | float:
    """The step as an int when it is a whole number; TypeError for anything else."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) and not hasattr(step, "__float__"):
        raise TypeError(f"report(step, value): step must be a number, not {type(step).__name__}")
    f = float(step)
    return int(f) if f.is_integer() else f


class Reporter:
    """``report(step, value) -> bool``: record one point of the learning curve;
    True when the evaluation should stop now.

    Args:
        job_id: the evaluation's id.
        send: hands one report to the master; returns its decision when it
            decides at once (in process), None when the decision comes later.
        poll: the latest stop decision that has arrived (False: none).
    """

    def __init__(self, job_id: int, send: Callable[[int, Any, float], bool | None] | None = None,
                 poll: Callable[[], bool] | None = None) -> None:
        self.job_id = job_id
        self._send = send
        self._poll = poll
        self.stopped: int | float | None = None  # the step at which it was first told to stop
        self.steps = 0
        self._last: int | float = 0  # the latest step reported
        # The file this configuration's training may continue from and should
        # save to (a promotion of a multi-fidelity method); None: none (see ambs.checkpoints).
        self.checkpoint: Path | None = None

    def __call__(self, step: Any, value: Any) -> bool:
        step = _number(step)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"report(step, value): value must be a number, not {type(value).__name__}") from None
        self.steps += 1
        self._last = step
        if self.stopped is not None:
            return True
        decided = self._send(self.job_id, step, value) if self._send is not None else None
        if decided or (self._poll is not None and self._poll()):
            self.stopped = step
        return self.stopped is not None

    @property
    def should_stop(self) -> bool:
        """True once the master decided that the evaluation should stop."""
        if self.stopped is None and self._poll is not None and self._poll():
            self.stopped = self._last  # told after its latest report (0: before its first)
        return self.stopped is not None


def pipe_reporter(conn: Any, job_id: int) -> Reporter:
    """A worker process's reporter: reports go up its pipe to the master
    without waiting; a stop decision comes down the same pipe (nothing else
    does while a job runs) and is read at the next report."""
    halted = [False]

    def send(jid: int, step: Any, value: float) -> None:
        conn.send((REPORT, jid, step, value))

    def poll() -> bool:
        while not halted[0] and conn.poll():
            if conn.recv() == (HALT, job_id):
                halted[0] = True
        return halted[0]

    return Reporter(job_id, send=send, poll=poll)


def read_curves(path: str | Path) -> list[tuple[int, float, float, float]]:
    """The (job_id, step, value, time) rows of a curves.csv; a half-written
    last line (a crash mid-write) is left out."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # cut short
    out = []
    for row in csv.reader(lines[1:]):
        if len(row) != len(HEADER):
            continue
        try:
            out.append((int(row[0]), float(row[1]), float(row[2]), float(row[3])))
        except ValueError:
            continue
    return out


class CurveBook:
    """The master's record of every report, and the stopping rule it consults.

    Args:
        run_dir: where ``curves.csv`` goes (None: kept in memory only).
        rule: a :class:`ambs.stopping.StopRule`, or None to record without stopping.
        t0: the run's start as ``time.time()``; the ``time`` column counts from it.
        resume: read the curves already in the file back into the rule.
    """

    def __init__(self, run_dir: str | Path | None, rule: Any = None, t0: float = 0.0,
                 resume: bool = False) -> None:
        self.rule = rule
        self.t0 = t0
        self.stopped: set[int] = set()
        self.n_reports = 0
        self._fh: Any = None
        self.path = Path(run_dir) / CURVES if run_dir is not None else None
        if self.path is None:
            return
        if resume:
            self._repair()
            if rule is not None:
                for job_id, step, value, _ in read_curves(self.path):
                    rule.observe(job_id, step, value)

    def _open(self) -> None:
        """Open curves.csv at the first report: a run without reports has none."""
        assert self.path is not None
        new = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._fh = open(self.path, "ab", buffering=0)
            if new:
                self._write(HEADER)
        except OSError as exc:
            raise RecorderError(f"cannot write {self.path}: {exc.strerror}") from None

    def _repair(self) -> None:
        """Cut off a half-written last line left by a crash."""
        if self.path is None or not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            os.truncate(self.path, data.rfind(b"\n") + 1)
            warnings.warn(f"{self.path}: dropped a half-written last line", stacklevel=2)

    def _write(self, cells: list[Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(cells)
        self._fh.write(buf.getvalue().encode("utf-8"))  # one write per line: a crash cuts one at most

    def report(self, job_id: int, step: Any, value: float) -> bool:
        """Record one report; True when the evaluation should stop (said once per evaluation)."""
        self.n_reports += 1
        if self._fh is None and self.path is not None:
            self._open()
        if self._fh is not None:
            v = repr(float(value)) if math.isfinite(value) else str(value)
            try:
                self._write([job_id, step, v, round(time.time() - self.t0, 6)])
            except OSError as exc:
                raise RecorderError(f"cannot append to {self.path}: {exc.strerror}") from None
        if self.rule is None:
            return False
        if job_id in self.stopped:  # told already: its curve still counts for the others
            self.rule.observe(job_id, step, value)
            return False
        if self.rule.decide(job_id, step, value):
            self.stopped.add(job_id)
            return True
        return False

    def finished(self, job_id: int, objective: float | None, stopped: float | None = None) -> None:
        """An evaluation finished (objective None unless it is ok; ``stopped``: the
        step at which it was told to stop): the rule learns its final value."""
        if self.rule is not None:
            self.rule.finish(job_id, objective, stopped)

    def told(self, ev: Any) -> Any:
        """The evaluation as the search is told it: a stopped one with the
        objective its rule gives it (:meth:`ambs.stopping.StopRule.told`);
        the evaluation itself otherwise (what results.csv holds is unchanged)."""
        if self.rule is None or not ev.ok or ev.stopped is None or ev.objective is None:
            return ev
        value = self.rule.told(ev.job_id, ev.stopped, ev.objective)
        return ev if value == ev.objective else dataclasses.replace(ev, objective=value)

    def close(self) -> None:
        if self._fh is not None:
            try:
                os.fsync(self._fh.fileno())
                self._fh.close()
            except OSError:
                pass
            self._fh = None
