"""Append-only results CSV: the run directory's rows (its identity, run.json
and space.json, is :mod:`ambs.runinfo`).

``results.csv`` gets one row per finished evaluation, written and flushed
the moment it finishes; the header is fixed when the run starts, from the
space and the problem's declared metadata. Nothing is ever rewritten,
except that resuming cuts off a half-written last line (a crash mid-write).
A Recorder holds the run directory's lock (``run.lock``, :mod:`ambs.runlock`)
from its start to :meth:`Recorder.close`: one search at a time per directory.

What ambs writes, ambs reads back: how a value becomes a cell, how large a
cell may be, and how the file is read back (:func:`ambs.cells.read_table`,
for :func:`read_results` and :mod:`ambs.analysis`) is :mod:`ambs.cells`. A
result the master cannot encode (metadata with tuple keys, a value whose
``str`` raises) is still a row: its objective kept, the value left out and
named in ``error``. ``space.json`` (:func:`write_space`) is the search space
in ConfigSpace's JSON format, for the analysis's axes.

A ``p:`` cell that is empty means the hyperparameter was inactive (its
condition did not hold). A value whose text is empty, or only double quotes,
gets two more double quotes: the cell ``""`` is the empty string, four
double quotes the string ``""`` (:func:`ambs.cells.hp_cell`). Every other value is its text,
so CSVs written before this encoding read back as they were written.

About 420 lines: writing, resuming and cutting a torn line are one
concern, the CSV's integrity.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from ambs.cells import (  # noqa: F401 - MAX_*: part of this module's interface
    MAX_CELL_CHARS,
    MAX_ERROR_CHARS,
    allow_large_fields,
    cap_text,
    hp_cell,
    parse_hp_cell,
    read_table,
    relative_path,
)
from ambs.cells import cell as _cell
from ambs.cells import first_line as _first_line
from ambs.cells import to_json as _json
from ambs.errors import RecorderError, RunDirError
from ambs.result import Evaluation, Status
from ambs.runinfo import (  # noqa: F401 - SETTINGS, SPACE, write_space...: part of this module's interface
    SETTINGS,
    SPACE,
    RunInfo,
    check_same_run,
    effective_settings,
    write_settings,
    write_space,
)
from ambs.runlock import RunLock

__all__ = ["Recorder", "RunInfo", "allow_large_fields", "cap_text", "columns_for", "effective_settings",
           "read_results", "write_space"]

RESULTS = "results.csv"
FIXED_BEFORE = ["job_id"]
FIXED_AFTER = ["objective", "status", "worker", "host", "local_rank", "gpu", "submitted", "started", "finished",
               "error", "log", "stopped"]
# Columns that runs of older versions lack: resuming such a run keeps its header without them.
ADDED = ("gpu", "log", "stopped")
EXTRA = "m:extra"  # JSON object of metadata keys the problem did not declare
BUDGET = "budget"  # the budget an evaluation trained with (runs of a problem with a budget)
OBJECTIVE = "o:"  # prefix of a declared objective's column (its value as run returned it)


def columns_for(hp_names: list[str], metadata: list[str], budget: bool = False,
                objectives: list[str] | None = None) -> list[str]:
    """The CSV header of a run over these hyperparameters and metadata names;
    ``budget``: a ``budget`` column after the hyperparameters (the problem
    declares a budget, or the method is multi-fidelity); ``objectives``: the
    declared objectives' names, an ``o:<name>`` column each after ``objective``."""
    return (
        FIXED_BEFORE
        + [f"p:{n}" for n in hp_names]
        + ([BUDGET] if budget else [])
        + FIXED_AFTER[:1]
        + [f"{OBJECTIVE}{n}" for n in objectives or []]
        + FIXED_AFTER[1:]
        + [f"m:{n}" for n in metadata]
        + [EXTRA]
    )


class Recorder:
    """Writes ``results.csv`` and ``run.json`` into a run directory.

    Args:
        run_dir: the directory (created if missing).
        info: the run's identity.
        resume: continue an existing run; otherwise the directory must not
            already hold results.
    """

    def __init__(self, run_dir: str | Path, info: RunInfo, resume: bool = False) -> None:
        self.dir = Path(run_dir)
        self._resolved = str(self.dir.resolve())  # log paths are written relative to it
        self.info = info
        self.path = self.dir / RESULTS
        self.columns = info.columns
        self._plan_of: list[str] | None = None  # the header _plan was worked out for
        self._plan_cache: list[tuple[str, Any]] = []
        self._objective_names: list[str] = []
        self._extra_warned: set[str] = set()
        self._old: dict[str, Any] | None = None  # run.json of the run being resumed
        settings_path = self.dir / SETTINGS
        # One search at a time per run directory (ambs.runlock), before anything
        # is read or cut; a directory still to be made is locked once made.
        self._lock: RunLock | None = None
        if self.dir.is_dir():
            self._lock = RunLock(self.dir)
            self._lock.acquire()
        try:
            self._open(settings_path, resume)
        except BaseException:
            self._release()
            raise

    def _open(self, settings_path: Path, resume: bool) -> None:
        has_results = self.path.exists() and self.path.stat().st_size > 0
        if resume:
            if not settings_path.exists() and not has_results:
                raise RunDirError(f"nothing to resume: {self.dir} holds no run (no {SETTINGS})")
            self._old = check_same_run(self.dir, self.info)
            self._check_header()
            self._repair_tail()
        elif has_results or settings_path.exists():
            raise RunDirError(
                f"{self.dir} already holds a run; pass --resume to continue it "
                "or choose another --output"
            )
        # Created only now, so that a refused resume leaves no empty directory behind.
        self._resume = resume
        self._rows = 0
        self._made_dir = not self.dir.exists()
        self._made_csv = not os.path.lexists(self.path)  # not a file (or link) the user put there
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {self.dir}: {exc.strerror}") from None
        self._fh: Any = None
        if self._lock is None:
            self._lock = RunLock(self.dir)
            try:
                self._lock.acquire()
            except (RunDirError, RecorderError):
                self._lock = None
                if self._made_dir:
                    try:
                        self.dir.rmdir()
                    except OSError:
                        pass
                raise
        self._made_space = False
        try:
            write_settings(settings_path, self.info, self.columns, self._old if resume else None)
            if self.info.space is not None and not (self.dir / SPACE).exists():
                self._made_space = write_space(self.info.space, self.dir / SPACE)
            new_file = not self.path.exists() or self.path.stat().st_size == 0
            try:
                # Unbuffered: a row that cannot be written (disk full) is not kept
                # in a buffer that the next write or close would fail on again.
                self._fh = open(self.path, "ab", buffering=0)
                if new_file:
                    self._write_line(self.columns)
            except OSError as exc:
                raise RecorderError(f"cannot write {self.path}: {exc.strerror}") from None
        except RecorderError:
            self.discard()
            raise

    # ------------------------------------------------------------ checks
    def _check_header(self) -> None:
        """The CSV of the run being resumed has this problem's columns (a header cut
        short by a crash is no header: the tail repair drops it); one written by
        an older version, without some of the ADDED columns, keeps its header."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, encoding="utf-8", newline="") as fh:
                first = fh.readline()
            allow_large_fields()
            header = next(csv.reader([first]), [])
            if first.endswith("\n") and header != self.columns and set(header) <= set(self.columns) \
                    and [c for c in self.columns if c not in ADDED] == [c for c in header if c not in ADDED]:
                self.columns = header
            if first.endswith("\n") and header != self.columns:
                raise RunDirError(
                    f"cannot resume {self.dir}: {RESULTS} has other columns than this problem "
                    f"declares ({len(header)} vs {len(self.columns)})"
                )

    def _repair_tail(self) -> None:
        """Cut off a half-written last line left by a crash, with a warning."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        try:
            os.truncate(self.path, cut)
        except OSError as exc:
            raise RecorderError(
                f"cannot resume {self.dir}: cannot cut the half-written last line of {RESULTS} "
                f"({exc.strerror})"
            ) from None
        warnings.warn(
            f"{self.path}: dropped a half-written last line ({len(data) - cut} bytes) "
            "left by an interrupted run",
            stacklevel=2,
        )

    # ------------------------------------------------------------ writing
    def _write_line(self, cells: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(cells)
        # One write call per row, so a crash leaves at most one partial line.
        data = memoryview(buf.getvalue().encode("utf-8"))
        while len(data):
            n = self._fh.write(data)
            if not n:  # pragma: no cover - a raw write writes something or raises
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            data = data[n:]

    def append(self, ev: Evaluation) -> None:
        """Write one finished evaluation and flush it to the file at once."""
        holder = self._lock.lost() if self._lock is not None else None
        if holder is not None:  # e.g. suspended past the stale timeout, and another host resumed the run
            raise RecorderError(f"{self.dir}: this search lost the run lock to {holder}; it stops so that two "
                                f"searches never write one {RESULTS} (see {self.dir / 'run.lock'})")
        row: dict[str, Any] = {
            "job_id": ev.job_id,
            "objective": ev.objective,
            "status": ev.status.value,
            "worker": ev.worker,
            "host": ev.host,
            "local_rank": ev.local_rank,
            "submitted": round(ev.submitted, 6),
            "started": round(ev.started, 6),
            "finished": round(ev.finished, 6),
            "error": ev.error,
            BUDGET: ev.budget,
            "gpu": ev.gpu,
            "log": relative_path(ev.log, self._resolved),
            "stopped": getattr(ev, "stopped", None),  # the report step it was stopped at (ambs.reports)
        }
        for k, v in ev.config.items():
            row[f"p:{k}"] = v
        self._plan()
        for name, v in zip(self._objective_names, getattr(ev, "objectives", None) or ()):
            row[f"{OBJECTIVE}{name}"] = v
        extra = {}
        for k, v in ev.metadata.items():
            col = f"m:{k}"
            if col in self.columns and col != EXTRA:
                row[col] = v
            else:
                extra[k] = v
                if k not in self._extra_warned:
                    self._extra_warned.add(k)
                    warnings.warn(
                        f"run returned metadata {k!r} that the problem does not declare; "
                        f"it goes to the {EXTRA} column (declare it with problem.add_metadata)",
                        stacklevel=2,
                    )
        cells, problems = self._encode(row, extra)
        if problems:
            # The row is written all the same (its objective too): what could
            # not be written is named in its error text, never a crash.
            note = "; ".join(problems)
            error = f"{ev.error}; {note}" if ev.error else note
            cells[self.columns.index("error")] = _cell(error)
        try:
            self._write_line([cap_text(cell, MAX_ERROR_CHARS if c == "error" else MAX_CELL_CHARS)
                              for c, cell in zip(self.columns, cells)])
            self._rows += 1
        except OSError as exc:
            raise RecorderError(
                f"cannot append to {self.path}: {exc.strerror}; the search stops so that "
                "no further result is lost"
            ) from None

    def _plan(self) -> list[tuple[str, Any]]:
        """Each column and what writes its cells (None: the extra column), worked
        out once per header rather than once per cell of every row."""
        if self._plan_of is not self.columns:
            self._plan_of = self.columns
            self._plan_cache = [(c, None if c == EXTRA else hp_cell if c.startswith("p:") else _cell)
                                for c in self.columns]
            self._objective_names = [c[len(OBJECTIVE):] for c in self.columns if c.startswith(OBJECTIVE)]
        return self._plan_cache

    def _encode(self, row: dict[str, Any], extra: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The row's cells, and what could not be encoded (a metadata dict with
        tuple or mixed keys, a value whose ``str`` raises): left empty, and named."""
        problems: list[str] = []

        def encode(what: str, value: Any, to_text: Any = _cell) -> str | None:
            try:
                return to_text(value)
            except Exception as exc:  # noqa: BLE001 - whatever run returned, the row is written
                problems.append(f"{what} not written ({type(exc).__name__}: {_first_line(exc)})")
                return None

        if extra:
            # Key by key (sorted), so one value that cannot be written loses only itself.
            parts = [f"{json.dumps(k)}: {text}" for k in sorted(extra)
                     if (text := encode(f"metadata {k!r}", extra[k], _json)) is not None]
            row[EXTRA] = "{" + ", ".join(parts) + "}" if parts else None
        cells = []
        for c, to_text in self._plan():
            value = row.get(c)
            if to_text is None:  # the extra metadata column, already text
                cells.append(value or "")
            elif value is None:
                cells.append("")
            else:
                cells.append(encode(f"metadata {c[2:]!r}" if c.startswith("m:") else c, value, to_text) or "")
        return cells, problems

    def discard(self) -> None:
        """Close, and undo a new run that never wrote a row (its start failed):
        no run.json and header are left behind to be mistaken for a run."""
        self.close()
        if self._resume or self._rows:
            self._release()
            return
        made = [self.path] if self._made_csv else []
        made += [self.dir / SPACE] if self._made_space else []
        for path in [self.dir / SETTINGS] + made:
            try:
                path.unlink()
            except OSError:
                pass
        self._release()
        if self._made_dir:
            try:
                self.dir.rmdir()
            except OSError:  # something else was put there meanwhile: leave it
                pass

    def _release(self) -> None:
        if getattr(self, "_lock", None) is not None:
            self._lock.release()
            self._lock = None

    def close(self) -> None:
        """Sync and close the CSV, and give the run directory's lock back; never
        raises (every row was written or reported already)."""
        if self._fh is None:
            self._release()
            return
        try:
            os.fsync(self._fh.fileno())
        except OSError:
            pass
        try:
            self._fh.close()
        except OSError:
            pass
        self._fh = None
        self._release()


def read_results(path: str | Path, space: Any) -> list[Evaluation]:
    """Read a results CSV back into evaluations (for resume).

    Rows that cannot be parsed raise RunDirError naming the line; a
    half-written last line is skipped with a warning.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        table = read_table(path)
    except ValueError as exc:
        raise RunDirError(str(exc)) from None
    if not table.header:
        return []
    index = {c: i for i, c in enumerate(table.header)}
    for col in ("job_id", "objective", "status"):
        if col not in index:
            raise RunDirError(f"{path} is not an ambs results file (no {col!r} column)")
    try:
        table.check_widths(path)
    except ValueError as exc:
        raise RunDirError(str(exc)) from None
    if table.dropped:
        warnings.warn(f"{path}: skipped a half-written last line", stacklevel=2)
    hps = {hp.name: hp for hp in space.hps}
    out = []
    for n, (row, lineno) in enumerate(zip(table.rows, table.lines), start=1):
        try:
            config = {
                name: parse_hp_cell(hp, row[index[f"p:{name}"]])
                for name, hp in hps.items()
                if row[index[f"p:{name}"]] != ""
            }
            status = Status(row[index["status"]])
            obj = row[index["objective"]]
            ev = Evaluation(
                job_id=int(row[index["job_id"]]),
                config=config,
                objective=float(obj) if obj else math.nan,
                status=status,
                error=row[index["error"]] if "error" in index else "",
            )
            for col in ("submitted", "started", "finished"):
                if col in index and row[index[col]]:
                    setattr(ev, col, float(row[index[col]]))
            if "worker" in index and row[index["worker"]]:
                ev.worker = int(row[index["worker"]])
            if BUDGET in index and row[index[BUDGET]]:
                ev.budget = float(row[index[BUDGET]])
            if "stopped" in index and row[index["stopped"]]:
                ev.stopped = float(row[index["stopped"]])
            cols = [i for c, i in index.items() if c.startswith(OBJECTIVE)]
            if cols and status is Status.OK and all(row[i] for i in cols):
                ev.objectives = tuple(float(row[i]) for i in cols)
        except (KeyError, ValueError) as exc:
            if n == len(table.rows) and table.last_cut:
                warnings.warn(f"{path}: skipped a half-written last line", stacklevel=2)
                continue
            raise RunDirError(f"{path}, line {lineno}: cannot parse row ({exc})") from None
        out.append(ev)
    return out
