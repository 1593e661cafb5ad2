"""Finding and reading a run: ``results.csv`` (or a DeepHyper-style CSV),
``run.json`` and ``space.json``, into a :class:`Run`.

The CSV is read by :func:`ambs.cells.read_table`, the reader ``--resume``
uses too, and a ``p:`` cell's value is :func:`ambs.cells.hp_value`: how a
row is encoded is known there, not here. What this module adds is what a
frame needs: numbers parsed, statuses, times in seconds since the run began,
workers (inferred when the CSV does not say), rows in finish order.

DeepHyper-style CSVs: ``p:`` columns (or none: every column that is not a
known one is a hyperparameter), ``objective`` with ``F`` for failures,
``m:timestamp_submit``/``m:timestamp_gather`` or
``m:timestamp_start``/``m:timestamp_end`` instead of started/finished.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ambs.analysis.budget import full_budget, stopped_rows
from ambs.analysis.space import is_textual, read_space
from ambs.cells import Table, hp_value, read_table
from ambs.errors import AnalysisError
from ambs.recorder import BUDGET, FIXED_AFTER, FIXED_BEFORE, RESULTS, SETTINGS
from ambs.result import Status

__all__ = ["Run", "STATUSES", "load_run", "load_runs", "numbers"]

STATUSES = tuple(s.value for s in Status)  # ok, failed, timeout, crashed, cancelled
# Columns that are never hyperparameters in a CSV without ``p:`` columns: the
# recorder's, and DeepHyper's.
_NOT_PARAMS = set(FIXED_BEFORE + FIXED_AFTER + [BUDGET]) | {
    "id", "job_status", "elapsed_sec", "duration",
    "timestamp_submit", "timestamp_gather", "timestamp_start", "timestamp_end",
}
# Where each time comes from, first match wins; the tag names the clock it is on.
_TIME_SOURCES = {
    "submitted": [("submitted", "ambs"), ("m:timestamp_submit", "sg"), ("timestamp_submit", "sg")],
    "started": [("started", "ambs"), ("m:timestamp_start", "se"), ("timestamp_start", "se"),
                ("m:timestamp_submit", "sg"), ("timestamp_submit", "sg")],
    "finished": [("finished", "ambs"), ("m:timestamp_end", "se"), ("timestamp_end", "se"),
                 ("m:timestamp_gather", "sg"), ("timestamp_gather", "sg"), ("elapsed_sec", "sg")],
}


@dataclass
class Run:
    """One loaded run.

    ``data`` has one row per evaluation in the order they finished, with
    ``p:<name>`` columns (numbers, or strings for categoricals; NaN where a
    conditional hyperparameter was inactive), ``objective`` (NaN unless ok),
    ``status``, ``worker``, ``submitted``/``started``/``finished`` (seconds
    since the run began), and whatever else the file held.
    """

    data: pd.DataFrame
    params: list[str]
    source: Path
    label: str
    settings: dict[str, Any] = field(default_factory=dict)
    style: str = "ambs"  # or "deephyper"
    dropped_partial_line: bool = False
    workers_inferred: bool = False
    notes: list[str] = field(default_factory=list)
    space: dict[str, dict[str, Any]] | None = None  # from space.json (see ambs.analysis.space)

    @property
    def directory(self) -> Path:
        """The directory that holds the CSV (the run directory for ambs runs)."""
        return self.source.parent

    @property
    def ok(self) -> pd.DataFrame:
        """The successful evaluations (status ok and a finite objective)."""
        d = self.data
        return d[(d["status"] == "ok") & d["objective"].notna()]


# ---------------------------------------------------------------- columns
def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def numbers(col: pd.Series) -> pd.Series:
    """The cells as floats (NaN where not a number), parsed by Python's float():
    exactly what the recorder wrote, where pandas 2's to_numeric rounds some
    17-digit values in the last place."""
    return col.map(_float).astype(float)


def _to_seconds(col: pd.Series) -> pd.Series:
    """Numbers as they are; date-time strings as seconds since the epoch."""
    num = numbers(col)
    if num.notna().any() or col.isna().all():
        return num
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = pd.to_datetime(col, errors="coerce", utc=True)
    return (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype(float)


def _numeric_param(col: pd.Series) -> pd.Series | None:
    """The column as floats if every present value is a number (not a boolean)."""
    present = col.dropna()
    if present.empty or present.str.lower().isin(["true", "false"]).any():
        return None
    num = numbers(col)
    if num[col.notna()].isna().any():
        return None
    return num.astype(float)


def _derive_status(df: pd.DataFrame, raw_objective: pd.Series, objective: pd.Series) -> pd.Series:
    """Status for CSVs without a ``status`` column (DeepHyper: ``F`` objectives)."""
    status = pd.Series(np.where(objective.notna(), "ok", "failed"), index=df.index, dtype=object)
    text = raw_objective.fillna("").astype(str).str.lower()
    status[(status == "failed") & text.str.contains("timeout")] = "timeout"
    if "job_status" in df:
        js = df["job_status"].fillna("").astype(str).str.lower()
        status[js.str.startswith("cancel")] = "cancelled"
    return status


def _infer_workers(started: pd.Series, finished: pd.Series) -> pd.Series:
    """Assign intervals to the fewest lanes (greedy interval colouring)."""
    lanes = pd.Series(np.nan, index=started.index)
    free_at: list[float] = []
    order = started.sort_values(kind="stable").index
    for i in order:
        s, f = started[i], finished[i]
        if not (math.isfinite(s) and math.isfinite(f)):
            continue
        for lane, t in enumerate(free_at):
            if t <= s + 1e-9:
                free_at[lane] = f
                lanes[i] = lane + 1
                break
        else:
            free_at.append(f)
            lanes[i] = len(free_at)
    return lanes


def _normalize_times(df: pd.DataFrame, notes: list[str]) -> None:
    """Fill submitted/started/finished (seconds since the run began) in place."""
    chosen: dict[str, tuple[str, str]] = {}
    for target, sources in _TIME_SOURCES.items():
        for col, clock in sources:
            if col in df and df[col].notna().any():
                chosen[target] = (col, clock)
                break
    values = {t: _to_seconds(df[c]) for t, (c, _) in chosen.items()}
    clocks = {clock for _, clock in chosen.values()}
    if {"sg", "se"} <= clocks:  # DeepHyper: relative submit/gather, absolute start/end
        ref = [t for t, (_, k) in chosen.items() if k == "sg"]
        other = [t for t, (_, k) in chosen.items() if k == "se"]
        lo_ref = min(values[t].min() for t in ref)
        lo_other = min(values[t].min() for t in other)
        if abs(lo_other - lo_ref) > 1e5:
            for t in other:
                values[t] = values[t] - (lo_other - lo_ref)
            notes.append("start/end timestamps were on another clock than submit/gather; "
                         "aligned on the first submission")
    if values:
        lo = min(v.min() for v in values.values())
        if math.isfinite(lo) and (lo < 0 or lo > 1e5):  # absolute clock: start at 0
            for t in values:
                values[t] = values[t] - lo
    for t in _TIME_SOURCES:
        df[t] = values.get(t, pd.Series(np.nan, index=df.index))
    if "started" in chosen and chosen["started"][0] != "started":
        notes.append(f"started from {chosen['started'][0]}, finished from "
                     f"{chosen.get('finished', ('nothing',))[0]}")


# ---------------------------------------------------------------- loading
def _read_table(path: Path) -> Table:
    """The cells of the CSV (:func:`ambs.cells.read_table`), with a warning
    when a half-written last line was left out."""
    try:
        table = read_table(path)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    if not table.header:
        raise AnalysisError(f"{path} is empty")
    if table.dropped:
        warnings.warn(f"{path}: skipped a half-written last line (run still in progress?)", stacklevel=3)
    return table


def _frame(rows: list[list[str]], header: list[str], encoded: set[str]) -> pd.DataFrame:
    """The rows as an object frame, NaN where a cell holds no value; the cells
    of the ``encoded`` columns decoded by :func:`ambs.cells.hp_value`. Duplicate
    columns: the first is kept."""
    def value(text: str, hp: bool) -> Any:
        v = hp_value(text) if hp else (text or None)
        return np.nan if v is None else v

    hps = [c in encoded for c in header]
    # NaN while building the frame: replace() on an object frame would downcast
    # all-empty columns (deprecated in pandas 2.x).
    cells = [[value(text, hp) for text, hp in zip(row, hps)] for row in rows]
    df = pd.DataFrame(cells, columns=header, dtype=object)
    return df.loc[:, ~df.columns.duplicated()]


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Load a run directory (its ``results.csv``) or a results CSV file.

    Raises AnalysisError for a missing path, an empty file or one that is
    not a results CSV; warns and skips a half-written last line.
    """
    p = Path(path)
    if not p.exists():
        raise AnalysisError(f"{p}: no such file or directory")
    if p.is_dir():
        csv_path = p / RESULTS
        if not csv_path.is_file():
            raise AnalysisError(f"{p} is not a run directory (no {RESULTS} in it)")
    else:
        csv_path = p
    settings: dict[str, Any] = {}
    try:
        doc = json.loads((csv_path.parent / SETTINGS).read_text())
        if isinstance(doc, dict):
            settings = doc
    except (OSError, ValueError):
        pass
    table = _read_table(csv_path)
    header = [h.strip() for h in table.header]
    if "objective" not in header:
        if any(h.startswith("objective_") for h in header):
            raise AnalysisError(f"{csv_path} is a multi-objective results CSV; only one objective "
                                "is supported")
        raise AnalysisError(f"{csv_path} is not a results CSV (no 'objective' column)")
    if not table.rows:
        raise AnalysisError(f"{csv_path} holds no evaluations yet")
    try:
        table.check_widths(csv_path)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    notes: list[str] = []
    style = "ambs" if {"status", "started", "finished"} <= set(header) else "deephyper"
    pcols = [c for c in header if c.startswith("p:")]
    renamed = not pcols  # a CSV without p: columns: the columns not known are the hyperparameters
    if renamed:
        pcols = [c for c in header if c not in _NOT_PARAMS and not c.startswith("m:")]
    # The cells of an ambs CSV's hyperparameters are encoded (an empty cell is
    # inactive, "" the empty string); other CSVs' cells are their values.
    df = _frame(table.rows, header, set(pcols) if style == "ambs" else set())
    raw_obj = df["objective"]
    obj = numbers(raw_obj)
    obj[~np.isfinite(obj)] = np.nan
    if "status" in df:
        status = df["status"].fillna("").astype(str).str.strip().str.lower()
        missing = status == ""
        status[missing] = np.where(obj[missing].notna(), "ok", "failed")
    else:
        status = _derive_status(df, raw_obj, obj)
    obj[status != "ok"] = np.nan
    df["objective"] = obj
    df["status"] = status.astype(str)

    if renamed:
        if pcols:
            notes.append("no p: columns; took " + ", ".join(pcols) + " as hyperparameters")
        df = df.rename(columns={c: f"p:{c}" for c in pcols})
        pcols = [f"p:{c}" for c in pcols]
    space = read_space(csv_path.parent)
    for c in pcols:
        num = None if is_textual((space or {}).get(c[2:])) else _numeric_param(df[c])
        if num is not None:
            df[c] = num

    _normalize_times(df, notes)
    if "budget" in df:
        df["budget"] = numbers(df["budget"])
    if "job_id" in df:
        df["job_id"] = pd.to_numeric(df["job_id"], errors="coerce")
    else:
        df["job_id"] = np.arange(len(df), dtype=float)
    inferred = False
    if "worker" in df and pd.to_numeric(df["worker"], errors="coerce").notna().any():
        df["worker"] = pd.to_numeric(df["worker"], errors="coerce")
    else:
        df["worker"] = _infer_workers(df["started"], df["finished"])
        inferred = df["worker"].notna().any()
        if inferred:
            notes.append("the CSV does not say which worker ran what: workers inferred as the "
                         "fewest parallel slots that fit the intervals")
    df = df.sort_values(["finished", "job_id"], kind="stable", na_position="last").reset_index(drop=True)
    # The CSV's stopped cell is the report step an evaluation was stopped at
    # (ambs.reports); here "stopped" is whether its training stopped early, by
    # a stop rule or at a budget rung, and "stopped_step" that step.
    at = numbers(df.pop("stopped")) if "stopped" in df else pd.Series(np.nan, index=df.index)
    df["stopped_step"] = at
    df["stopped"] = at.notna()
    if "budget" in df:
        df["stopped"] = stopped_rows(df, pcols, full_budget(settings, df)) | df["stopped"]
    if label is None:
        label = str(settings.get("method") or (csv_path.parent.name if p.is_dir() or
                                                  csv_path.name == RESULTS else csv_path.stem))
    return Run(data=df, params=[c[2:] for c in pcols], source=csv_path, label=label,
               settings=settings, style=style, dropped_partial_line=table.dropped,
               workers_inferred=bool(inferred), notes=notes, space=space)


def load_runs(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[Run]:
    """Load several runs; ``labels`` (one per run) overrides their default labels."""
    if labels is not None and len(labels) != len(paths):
        raise AnalysisError(f"{len(labels)} label(s) for {len(paths)} run(s); give one label per run")
    return [load_run(p, None if labels is None else labels[i]) for i, p in enumerate(paths)]
