"""Post-processing of a run's ``results.csv``: summaries, plots and comparisons.

Everything here is a function of the CSV (and ``run.json`` and ``space.json``
when they are next to it, see :mod:`ambs.analysis_space`); nothing needs the
problem module. Summaries need pandas, numpy and scikit-learn; the ``plot_*``
functions and :func:`write_report` import matplotlib when called and draw
with its Agg backend, without touching pyplot's global state.

Reads ambs runs, runs still in progress (a half-written last line is
skipped) and DeepHyper-style CSVs (``p:`` columns, ``objective`` with ``F``
for failures, ``m:timestamp_submit``/``m:timestamp_gather`` or
``m:timestamp_start``/``m:timestamp_end`` instead of started/finished).

Times are seconds since the run began. Utilization is the busy time of the
workers (the union of each worker's evaluation intervals) divided by
workers x wall time, wall time running from the run's start to the last
finished evaluation.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ambs.analysis_budget import (
    budget_table,
    config_keys,
    full_budget,
    has_budgets,
    ranking_budget,
    stopped_rows,
)
from ambs.analysis_space import (
    at_budget,
    budget_name,
    budget_text,
    is_textual,
    objective_names,
    plain_axis,
    read_space,
)
from ambs.cells import allow_large_fields, hp_text
from ambs.errors import AnalysisError

__all__ = [
    "AnalysisError",
    "Run",
    "load_run",
    "load_runs",
    "param_kinds",
    "summarize",
    "format_summary",
    "top_k",
    "budget_table",
    "ranking_budget",
    "best_so_far",
    "worker_intervals",
    "utilization",
    "importance",
    "compare_runs",
    "compare_table",
    "format_compare",
    "plot_best_so_far",
    "plot_timeline",
    "plot_params",
    "plot_importance",
    "plot_compare",
    "plot_run",
    "write_report",
    "objectives_frame",
    "pareto_front",
    "plot_pareto",
]

RESULTS = "results.csv"
SETTINGS = "run.json"
STATUSES = ("ok", "failed", "timeout", "crashed", "cancelled")
STATUS_COLORS = {
    "ok": "#4c78a8",
    "failed": "#e45756",
    "timeout": "#f58518",
    "crashed": "#7f3c8d",
    "cancelled": "#9d9d9d",
}
_OTHER_COLOR = "#54a24b"
# Columns that are never hyperparameters in a CSV without ``p:`` columns.
_NOT_PARAMS = {
    "job_id", "id", "objective", "status", "job_status", "worker", "host", "local_rank",
    "submitted", "started", "finished", "error", "elapsed_sec", "duration", "budget",
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
_MIN_FOR_IMPORTANCE = 8


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
    space: dict[str, dict[str, Any]] | None = None  # from space.json (see ambs.analysis_space)

    @property
    def directory(self) -> Path:
        """The directory that holds the CSV (the run directory for ambs runs)."""
        return self.source.parent

    @property
    def ok(self) -> pd.DataFrame:
        """The successful evaluations (status ok and a finite objective)."""
        d = self.data
        return d[(d["status"] == "ok") & d["objective"].notna()]


# ---------------------------------------------------------------- loading
def _read_rows(path: Path) -> tuple[list[str], list[list[str]], bool]:
    """Header, complete rows, and whether a half-written last line was dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AnalysisError(f"{path} is not a results CSV (not a text file)") from None
    except IsADirectoryError:
        raise AnalysisError(f"{path} is a directory, not a results CSV") from None
    except OSError as exc:
        raise AnalysisError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        raise AnalysisError(f"{path} is empty")
    if "\x00" in text:
        raise AnalysisError(f"{path} is not a results CSV (binary content)")
    complete = text.endswith("\n")
    allow_large_fields()  # the long cells ambs writes, and those of CSVs written before its caps
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as exc:
        raise AnalysisError(f"{path} is not a readable CSV ({exc})") from None
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    dropped = False
    if body and not complete and len(body[-1]) != len(header):
        body.pop()
        dropped = True
        warnings.warn(f"{path}: skipped a half-written last line (run still in progress?)", stacklevel=3)
    return header, body, dropped


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _numbers(col: pd.Series) -> pd.Series:
    """The cells as floats (NaN where not a number), parsed by Python's float():
    exactly what the recorder wrote, where pandas 2's to_numeric rounds some
    17-digit values in the last place."""
    return col.map(_float).astype(float)


def _to_seconds(col: pd.Series) -> pd.Series:
    """Numbers as they are; date-time strings as seconds since the epoch."""
    num = _numbers(col)
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
    num = _numbers(col)
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
    header, body, dropped = _read_rows(csv_path)
    if "objective" not in header:
        if any(h.startswith("objective_") for h in header):
            raise AnalysisError(f"{csv_path} is a multi-objective results CSV; only one objective "
                                "is supported")
        raise AnalysisError(f"{csv_path} is not a results CSV (no 'objective' column)")
    if not body:
        raise AnalysisError(f"{csv_path} holds no evaluations yet")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise AnalysisError(f"{csv_path}, row {i}: {len(row)} fields, expected {len(header)} "
                                "as in the header")
    # Empty cells become NaN while building the frame: replace() on an object frame
    # would downcast all-empty columns (deprecated in pandas 2.x).
    cells = [[np.nan if c == "" else c for c in row] for row in body]
    df = pd.DataFrame(cells, columns=header, dtype=object)
    df = df.loc[:, ~df.columns.duplicated()]
    notes: list[str] = []
    style = "ambs" if {"status", "started", "finished"} <= set(header) else "deephyper"

    raw_obj = df["objective"]
    obj = _numbers(raw_obj)
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

    pcols = [c for c in header if c.startswith("p:")]
    if not pcols:
        pcols = [c for c in header if c not in _NOT_PARAMS and not c.startswith("m:")]
        if pcols:
            notes.append("no p: columns; took " + ", ".join(pcols) + " as hyperparameters")
        df = df.rename(columns={c: f"p:{c}" for c in pcols})
        pcols = [f"p:{c}" for c in pcols]
    space = read_space(csv_path.parent)
    for c in pcols:
        if style == "ambs":  # "" in a cell is the empty string; an empty cell, inactive
            df[c] = df[c].map(lambda v: hp_text(v) if isinstance(v, str) else v)
        num = None if is_textual((space or {}).get(c[2:])) else _numeric_param(df[c])
        if num is not None:
            df[c] = num

    _normalize_times(df, notes)
    if "budget" in df:
        df["budget"] = _numbers(df["budget"])
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
    if "budget" in df:
        df["stopped"] = stopped_rows(df, pcols, full_budget(settings, df))
    if label is None:
        label = str(settings.get("method") or (csv_path.parent.name if p.is_dir() or
                                                  csv_path.name == RESULTS else csv_path.stem))
    return Run(data=df, params=[c[2:] for c in pcols], source=csv_path, label=label,
               settings=settings, style=style, dropped_partial_line=dropped,
               workers_inferred=bool(inferred), notes=notes, space=space)


def load_runs(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[Run]:
    """Load several runs; ``labels`` (one per run) overrides their default labels."""
    if labels is not None and len(labels) != len(paths):
        raise AnalysisError(f"{len(labels)} label(s) for {len(paths)} run(s); give one label per run")
    return [load_run(p, None if labels is None else labels[i]) for i, p in enumerate(paths)]


# ---------------------------------------------------------------- numbers
def _is_log_scaled(values: pd.Series) -> bool:
    """Positive values that look sampled on a log scale: spanning two decades or
    more with many in the lowest decade, or spanning more decades than a uniform
    sample of this size would (and not all piled up at the top)."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) < 3 or (v <= 0).any():
        return False
    lo, hi = v.min(), v.max()
    decades = math.log10(hi / lo)
    if decades < 2:
        return False
    if np.mean(v < hi / 10) >= 0.3:
        return True
    return decades >= math.log10(len(v)) + 1.5 and np.mean(v < math.sqrt(lo * hi)) >= 0.1


def param_kinds(run: Run) -> dict[str, dict[str, Any]]:
    """For each hyperparameter: kind (numeric/categorical), log scale, times
    active, and the order of its levels. Scale and order come from the run's
    space.json; without one (older runs, DeepHyper CSVs) the scale is guessed
    from the values and levels are sorted."""
    out = {}
    for name in run.params:
        col = run.data[f"p:{name}"]
        numeric = pd.api.types.is_numeric_dtype(col)
        declared = (run.space or {}).get(name)
        if declared is not None:
            log, order = numeric and declared["log"], declared["order"]
        else:
            log, order = numeric and _is_log_scaled(col), None
        out[name] = {"kind": "numeric" if numeric else "categorical", "log": bool(log),
                     "active": int(col.notna().sum()), "order": order,
                     "scale_from": "space" if declared is not None else "values"}
    return out


def _py(v: Any) -> Any:
    """A JSON-friendly Python value (NaN -> None, numpy scalars -> Python)."""
    if isinstance(v, dict):
        return {str(k): _py(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (TypeError, ValueError):
            pass
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v.is_integer() and abs(v) < 2**53:
            return v
    return v


def _config(run: Run, row: pd.Series) -> dict[str, Any]:
    cfg = {}
    for name in run.params:
        v = row[f"p:{name}"]
        if isinstance(v, float) and math.isnan(v):
            continue  # inactive conditional hyperparameter
        col = run.data[f"p:{name}"].dropna()
        if isinstance(v, float) and v.is_integer() and col.map(float.is_integer).all():
            v = int(v)
        elif isinstance(v, str) and set(col) <= {"True", "False"}:
            v = v == "True"  # a boolean categorical, written as True/False
        cfg[name] = _py(v)
    return cfg


def _ranked(run: Run, budget: float | None = None) -> pd.DataFrame:
    """The ok rows at the ranking budget (see :func:`ranking_budget`), best
    first (ties: the earlier one first)."""
    ok = run.ok
    b = ranking_budget(run, budget)
    if b is not None:
        ok = ok[np.isclose(ok["budget"].to_numpy(dtype=float), b, rtol=1e-9)]
    return ok.sort_values(["objective", "finished"], ascending=[False, True], kind="stable")


def top_k(run: Run, k: int = 5, budget: float | None = None) -> pd.DataFrame:
    """The k best successful evaluations at the ranking budget: job_id,
    objective, budget (when the run has budgets), finished, hyperparameters."""
    ok = _ranked(run, budget).head(k)
    cols = (["job_id", "objective"] + (["budget"] if has_budgets(run.data) else []) + ["finished"]
            + [f"p:{n}" for n in run.params])
    out = ok[cols].rename(columns={f"p:{n}": n for n in run.params}).reset_index(drop=True)
    out["job_id"] = out["job_id"].astype("Int64")
    return out


def best_so_far(run: Run) -> pd.DataFrame:
    """Best objective so far, by finish order: evaluation (1..n), time, objective, status, best.

    ``best`` is NaN until the first successful evaluation; ``improved`` marks
    the evaluations that raised it.
    """
    d = run.data
    best = d["objective"].cummax().ffill()  # a failure keeps the best so far
    prev = best.shift(1)
    improved = d["objective"].notna() & (prev.isna() | (d["objective"] > prev))
    return pd.DataFrame({
        "evaluation": np.arange(1, len(d) + 1),
        "time": d["finished"].to_numpy(),
        "objective": d["objective"].to_numpy(),
        "status": d["status"].to_numpy(),
        "best": best.to_numpy(),
        "improved": improved.to_numpy(),
    })


def worker_intervals(run: Run) -> pd.DataFrame:
    """One row per timed evaluation: worker, lane (0..), job_id, start, end, status."""
    d = run.data
    ok = d["started"].notna() & d["finished"].notna() & d["worker"].notna()
    iv = pd.DataFrame({
        "worker": d.loc[ok, "worker"].astype(int),
        "job_id": d.loc[ok, "job_id"],
        "start": d.loc[ok, "started"],
        "end": np.maximum(d.loc[ok, "finished"], d.loc[ok, "started"]),
        "status": d.loc[ok, "status"],
    })
    lanes = {w: i for i, w in enumerate(sorted(iv["worker"].unique()))}
    iv["lane"] = iv["worker"].map(lanes).astype(int)
    return iv.sort_values(["lane", "start"], kind="stable").reset_index(drop=True)


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(zip(starts, ends)):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return float(total)


def utilization(run: Run) -> dict[str, float]:
    """Workers, wall time, busy time and utilization = busy / (workers x wall).

    ``utilization_after_start`` measures from the first evaluation's start
    instead of the run's start, leaving out the workers' start-up.
    """
    iv = worker_intervals(run)
    times = run.data[["submitted", "started", "finished"]].to_numpy(dtype=float)
    if iv.empty or not np.isfinite(times).any():
        return {"workers": 0, "wall_time": math.nan, "busy_time": math.nan, "utilization": math.nan,
                "utilization_after_start": math.nan, "start": math.nan, "end": math.nan}
    start = min(0.0, float(np.nanmin(times)))
    end = float(np.nanmax(run.data["finished"]))
    busy = sum(_union_length(g["start"].to_numpy(), g["end"].to_numpy()) for _, g in iv.groupby("worker"))
    workers = int(iv["worker"].nunique())
    wall = end - start
    first = float(iv["start"].min())
    util = busy / (workers * wall) if wall > 0 else math.nan
    after = busy / (workers * (end - first)) if end > first else math.nan
    return {"workers": workers, "wall_time": wall, "busy_time": busy, "utilization": util,
            "utilization_after_start": after, "start": start, "end": end}


def _common_errors(run: Run, n: int = 5) -> list[dict[str, Any]]:
    """The most frequent error messages of the evaluations that were not ok."""
    if "error" not in run.data:
        return []
    bad = run.data[run.data["status"] != "ok"]
    msgs = bad["error"].dropna().astype(str).map(lambda m: (m.strip().splitlines() or [""])[-1])
    counts = msgs[msgs != ""].value_counts().head(n)
    return [{"error": str(m), "count": int(c)} for m, c in counts.items()]


def _best_row(run: Run, i: Any) -> dict[str, Any]:
    row = run.data.loc[i]
    out = {"objective": float(row["objective"]), "job_id": _py(row["job_id"]),
           "evaluation": int(i) + 1, "time": _py(float(row["finished"])), "config": _config(run, row)}
    if has_budgets(run.data):
        out["budget"] = _py(float(row["budget"]))
    return out


def summarize(run: Run, k: int = 5, budget: float | None = None) -> dict[str, Any]:
    """The numbers of a run as a JSON-friendly dict (see :func:`format_summary`).

    ``best`` and ``top`` rank the evaluations at :func:`ranking_budget`
    (``ranked_at``: the highest budget reached in a multi-fidelity run, or
    ``budget``); ``best_any_budget`` is the best over all budgets when it is
    another evaluation.
    """
    d = run.data
    counts = d["status"].value_counts()
    by_status = {s: int(counts[s]) for s in STATUSES if s in counts}
    by_status.update({s: int(n) for s, n in counts.items() if s not in by_status})
    util = utilization(run)
    ranked = _ranked(run, budget)
    best = best_any = None
    if not ranked.empty:
        best = _best_row(run, ranked.index[0])  # first of equal maxima in finish order
        j = run.ok["objective"].idxmax()
        if j != ranked.index[0] and run.ok.at[j, "objective"] > best["objective"]:
            best_any = _best_row(run, j)
    dur = (d["finished"] - d["started"]).dropna()
    wall = util["wall_time"]
    return _py({
        "source": str(run.source),
        "label": run.label,
        "problem": run.settings.get("problem_name") or run.settings.get("problem"),
        "method": run.settings.get("method"),
        "style": run.style,
        "evaluations": int(len(d)),
        "by_status": by_status,
        "best": best,
        "ranked_at": ranking_budget(run, budget),
        "best_any_budget": best_any,
        "top": [{"job_id": _py(r["job_id"]), "objective": float(r["objective"]), "config": _config(run, r)}
                | ({"budget": float(r["budget"])} if has_budgets(run.data) else {})
                for _, r in ranked.head(k).iterrows()],
        "wall_time": wall,
        "evaluations_per_hour": len(d) / wall * 3600 if wall and wall > 0 else None,
        "median_duration": float(dur.median()) if len(dur) else None,
        "workers": util["workers"],
        "workers_inferred": run.workers_inferred,
        "busy_time": util["busy_time"],
        "utilization": util["utilization"],
        "utilization_after_start": util["utilization_after_start"],
        "errors": _common_errors(run),
        "budgets": budget_table(run).to_dict("records"),
        "dropped_partial_line": run.dropped_partial_line,
        "notes": list(run.notes),
    })


def _fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if 0 < abs(s) < 0.1:
        return f"{s * 1000:.2g} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def format_summary(summary: dict[str, Any], run: Run | None = None) -> str:
    """The summary as a few lines of text; with ``run``, the top-k table too."""
    s = summary
    what = ", ".join(x for x in (s.get("problem"), s.get("method")) if x)
    lines = [f"run: {s['source']}" + (f" ({what})" if what else "")]
    counts = ", ".join(f"{n} {k}" for k, n in s["by_status"].items())
    lines.append(f"evaluations: {s['evaluations']} ({counts})")
    b = s["best"]
    at = at_budget(run.settings if run is not None else {}, s.get("ranked_at"))
    if b:
        lines.append(f"best objective{at}: {_fmt(b['objective'], 10)} (job {b['job_id']}, evaluation "
                     f"{b['evaluation']}, after {_fmt_seconds(b['time'])})")
        lines.append("best configuration: " + ", ".join(f"{k}={v!r}" for k, v in b["config"].items()))
        a = s.get("best_any_budget")
        if a:
            lines.append(f"best at any budget: {_fmt(a['objective'], 10)} (job {a['job_id']}, budget "
                         f"{budget_text(a['budget'])}; a lower budget is a cheaper, noisier objective; "
                         "--budget B ranks at another budget)")
    else:
        lines.append("best objective: none (no evaluation succeeded)")
    rate = s["evaluations_per_hour"]
    lines.append(f"wall time: {_fmt_seconds(s['wall_time'])}; "
                 f"{_fmt(rate, 4)} evaluations/hour; median evaluation {_fmt_seconds(s['median_duration'])}")
    if s["workers"]:
        inferred = " (inferred)" if s["workers_inferred"] else ""
        lines.append(f"workers: {s['workers']}{inferred}; utilization {s['utilization']:.1%} "
                     f"({s['utilization_after_start']:.1%} after the first evaluation started)")
    for b in s.get("budgets") or []:
        lines.append(f"budget {budget_text(b['budget'])}: {b['evaluations']} evaluations, {b['stopped']} stopped there, "
                     f"best {_fmt(b['best'])}, median {_fmt(b['median'])}")
    if s["dropped_partial_line"]:
        lines.append("note: skipped a half-written last line (run still in progress?)")
    for e in s["errors"]:
        lines.append(f"error ({e['count']}x): {e['error']}")
    lines.extend(f"note: {n}" for n in s["notes"])
    if run is not None and s["best"]:
        table = top_k(run, len(s["top"]), s.get("ranked_at"))
        lines.append(f"top {len(table)}{at}:")
        budgets = {"budget": budget_text} if "budget" in table else {}
        lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.6g}", formatters=budgets))
    return "\n".join(lines)


# ---------------------------------------------------------------- importance
def _design(run: Run, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Numeric matrix for a forest: numbers as they are (log10 if log-scaled, a value
    below the range when inactive); categoricals one-hot (inactive is a level).
    Returns the matrix and the columns of each hyperparameter."""
    kinds = param_kinds(run)
    blocks, groups, j = [], {}, 0
    for name in run.params:
        col = frame[f"p:{name}"]
        if kinds[name]["kind"] == "numeric":
            v = col.to_numpy(dtype=float)
            if kinds[name]["log"]:
                v = np.log10(v)
            finite = v[np.isfinite(v)]
            lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
            v = np.where(np.isfinite(v), v, lo - (hi - lo) - 1.0)
            blocks.append(v[:, None])
            groups[name] = [j]
            j += 1
        else:
            dummies = pd.get_dummies(col.astype(object).where(col.notna(), "(inactive)").astype(str))
            blocks.append(dummies.to_numpy(dtype=float))
            groups[name] = list(range(j, j + dummies.shape[1]))
            j += dummies.shape[1]
    return np.hstack(blocks) if blocks else np.zeros((len(frame), 0)), groups


def importance(run: Run, method: str = "permutation", n_estimators: int = 100,
               n_repeats: int = 5, random_state: int = 0) -> pd.DataFrame:
    """Hyperparameter importance from a random forest fitted on the ok evaluations.

    ``permutation`` (default): drop in explained variance when the
    hyperparameter's columns are shuffled on held-out folds (3-fold cross
    fitting), as a fraction of the objective's variance. ``impurity``: the
    forest's impurity importance, one-hot columns summed per hyperparameter.
    Returns columns parameter, importance, std, sorted by importance.
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold

    if method not in ("permutation", "impurity"):
        raise AnalysisError(f"unknown importance method {method!r} (use permutation or impurity)")
    ok = run.ok
    if len(ok) < _MIN_FOR_IMPORTANCE or not run.params:
        raise AnalysisError(f"importance needs at least {_MIN_FOR_IMPORTANCE} successful evaluations "
                            f"and one hyperparameter; {run.source} has {len(ok)}")
    X, groups = _design(run, ok)
    y = ok["objective"].to_numpy(dtype=float)
    var = float(np.var(y))

    def forest() -> Any:
        return RandomForestRegressor(n_estimators=n_estimators, min_samples_leaf=2,
                                     random_state=random_state, n_jobs=1)

    if var == 0:
        scores = {n: [0.0] for n in run.params}
    elif method == "impurity":
        fi = forest().fit(X, y).feature_importances_
        scores = {n: [float(fi[cols].sum())] for n, cols in groups.items()}
    else:
        rng = np.random.default_rng(random_state)
        scores = {n: [] for n in run.params}
        folds = KFold(n_splits=3, shuffle=True, random_state=random_state)
        for train, test in folds.split(X):
            model = forest().fit(X[train], y[train])
            base = np.mean((model.predict(X[test]) - y[test]) ** 2)
            for name, cols in groups.items():
                for _ in range(n_repeats):
                    Xp = X[test].copy()
                    Xp[:, cols] = Xp[rng.permutation(len(test))][:, cols]
                    mse = np.mean((model.predict(Xp) - y[test]) ** 2)
                    scores[name].append((mse - base) / var)
    out = pd.DataFrame({
        "parameter": list(scores),
        "importance": [float(np.mean(v)) for v in scores.values()],
        "std": [float(np.std(v)) for v in scores.values()],
    })
    return out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- comparing
def _step_values(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Best-so-far of one run on a grid: -inf before its first success, its final
    best after its end."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    out = np.full(len(grid), -np.inf)
    if len(xs):
        idx = np.searchsorted(xs, grid, side="right") - 1
        out[idx >= 0] = ys[idx[idx >= 0]]
    return out


def compare_runs(runs: Sequence[Run], by: str = "time", points: int = 200) -> pd.DataFrame:
    """Median and interquartile range of best-so-far across runs, per label.

    ``by`` is ``time`` (seconds since each run began) or ``evaluations``. A run
    that ended keeps its final best until the label's longest run ends, so the
    curves never go down; before half of a label's runs have a success the
    median is NaN. Columns: label, x, median, q25, q75, runs (the runs of the
    label still going at x).
    """
    if by not in ("time", "evaluations"):
        raise AnalysisError(f"compare by 'time' or 'evaluations', not {by!r}")
    curves = []
    for r in runs:
        b = best_so_far(r)
        if by == "time":
            xs = b["time"].to_numpy(dtype=float)
            obj = b["objective"].to_numpy(dtype=float)
            order = np.argsort(np.where(np.isfinite(xs), xs, np.inf), kind="stable")
            xs = xs[order]
            ys = np.fmax.accumulate(np.where(np.isnan(obj[order]), -np.inf, obj[order]))
            end = float(np.nanmax(xs)) if np.isfinite(xs).any() else math.nan
        else:
            xs = b["evaluation"].to_numpy(dtype=float)
            ys = b["best"].fillna(-np.inf).to_numpy(dtype=float)
            end = float(len(b))
        curves.append((r.label, xs, np.where(np.isneginf(ys), np.nan, ys), end))
    ends = [c[3] for c in curves if math.isfinite(c[3])]
    if not ends:
        raise AnalysisError("no run has timed evaluations to compare")
    hi = max(ends)
    if by == "time":
        # each run's end too: an improvement in a run's last grid step still shows
        grid = np.unique(np.concatenate([np.linspace(0.0, hi, points), ends]))
    else:
        grid = np.unique(np.append(np.arange(1, int(hi) + 1, max(1, int(hi) // points)), hi)).astype(float)
    frames = []
    for label in dict.fromkeys(c[0] for c in curves):
        mine = [c for c in curves if c[0] == label]
        m = np.vstack([_step_values(xs, ys, grid) for _, xs, ys, _ in mine])
        with np.errstate(invalid="ignore"):  # -inf (no success yet) in the interpolation
            q25, med, q75 = np.percentile(m, [25, 50, 75], axis=0)
        label_end = max((c[3] for c in mine if math.isfinite(c[3])), default=-math.inf)
        going = np.sum([grid <= c[3] for c in mine], axis=0)
        stats = np.vstack([med, q25, q75])
        stats[~np.isfinite(stats)] = np.nan
        stats[:, grid > label_end] = np.nan
        frames.append(pd.DataFrame({"label": label, "x": grid, "median": stats[0], "q25": stats[1],
                                    "q75": stats[2], "runs": going}))
    return pd.concat(frames, ignore_index=True)


def compare_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Per label: runs, median/IQR/min/max of the final best, median time to the best."""
    rows = []
    for r in runs:
        s = summarize(r, k=1)
        b = s["best"] or {}
        rows.append({"label": r.label, "best": b.get("objective", math.nan),
                     "time_to_best": b.get("time", math.nan), "evaluations": s["evaluations"],
                     "wall_time": s["wall_time"]})
    df = pd.DataFrame(rows).astype({"best": float, "time_to_best": float})
    g = df.groupby("label", sort=False)
    return pd.DataFrame({
        "runs": g.size(),
        "best_median": g["best"].median(),
        "best_q25": g["best"].quantile(0.25),
        "best_q75": g["best"].quantile(0.75),
        "best_min": g["best"].min(),
        "best_max": g["best"].max(),
        "time_to_best_median": g["time_to_best"].median(),
        "evaluations_median": g["evaluations"].median(),
    }).reset_index()


def format_compare(table: pd.DataFrame) -> str:
    """:func:`compare_table` as aligned text."""
    return table.to_string(index=False, float_format=lambda x: f"{x:.6g}")


# ---------------------------------------------------------------- plots
def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas, without pyplot."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise AnalysisError("plots need matplotlib, a dependency of ambs: pip install 'matplotlib>=3.7'") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise AnalysisError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _time_scale(seconds: float) -> tuple[float, str]:
    if not math.isfinite(seconds) or seconds < 300:
        return 1.0, "s"
    if seconds < 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _robust_ylim(values: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, float] | None:
    """Y limits that leave out far outliers below (None when all fit well);
    ``keep`` are values that must stay inside (e.g. the best-so-far line)."""
    v = values[np.isfinite(values)]
    if len(v) < 5:
        return None
    hi, q = float(v.max()), float(np.quantile(v, 0.1))
    if keep is not None and np.isfinite(keep).any():
        q = min(q, float(np.nanmin(keep)))
    span = hi - q
    if span <= 0 or hi - float(v.min()) <= 5 * span:
        return None
    return q - 0.25 * span, hi + 0.08 * span


def _mark_below(ax: Any, x: Any, y: Any, lim: tuple[float, float] | None) -> int:
    """Draw values under the y-axis as grey triangles on its bottom edge; their count."""
    if lim is None:
        return 0
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    below = np.isfinite(y) & (y < lim[0])
    if below.any():
        ax.plot(x[below], np.full(int(below.sum()), 0.012), "v", color="0.45", ms=5,
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, linestyle="none")
    return int(below.sum())


def _pct(u: float) -> str:
    if not math.isfinite(u):
        return "-"
    if u >= 0.1 or u == 0:
        return f"{u:.0%}"
    if u >= 0.001:
        return f"{u * 100:.2g}%"
    return "<0.1%"


def _title(run: Run) -> str:
    name = run.settings.get("problem_name") or run.directory.name
    return f"{name} ({run.label})" if run.label and run.label != name else str(name)


def plot_best_so_far(run: Run, path: str | Path) -> Path:
    """Objective of every evaluation and the best so far, against wall time and
    against the evaluation count (two panels); failures as red ticks on the
    x-axis, far-off low values as grey triangles on it."""
    b = best_so_far(run)
    fig = _figure(11, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    end = float(np.nanmax(b["time"])) if b["time"].notna().any() else math.nan
    scale, unit = _time_scale(end)
    y = b["objective"].to_numpy(dtype=float)
    lim = _robust_ylim(y, b["best"].to_numpy(dtype=float))
    failed = b[b["status"] != "ok"]
    below = 0
    for ax, xcol, xlabel in ((axes[0], "time", f"wall time since the run began ({unit})"),
                             (axes[1], "evaluation", "evaluations finished")):
        x = b[xcol].to_numpy(dtype=float) / (scale if xcol == "time" else 1.0)
        ax.scatter(x, y, s=14, color="#9ecae1", edgecolor="none", label="evaluation", zorder=2)
        ax.step(x, b["best"], where="post", color=STATUS_COLORS["ok"], lw=2, label="best so far", zorder=3)
        imp = b["improved"].to_numpy()
        ax.scatter(x[imp], b["best"][imp], s=22, color=STATUS_COLORS["ok"], zorder=4,
                   label="improvement")
        if len(failed):
            fx = failed[xcol].to_numpy(dtype=float) / (scale if xcol == "time" else 1.0)
            ax.plot(fx, np.zeros(len(fx)), "|", color=STATUS_COLORS["failed"], ms=12, mew=1.5,
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, linestyle="none",
                    label=f"not ok ({len(failed)}, on the axis)")
        if lim:
            ax.set_ylim(*lim)
            below = _mark_below(ax, x, y, lim)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if xcol == "evaluation":
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("objective (higher is better)")
    handles, labels = axes[1].get_legend_handles_labels()
    if below:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="v", color="0.45", linestyle="none"))
        labels.append(f"below the y-axis ({below})")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    s = summarize(run, k=1)
    if s["best"]:
        fig.suptitle(f"{_title(run)}: best{at_budget(run.settings, s['ranked_at'])}: "
                     f"{s['best']['objective']:.6g} after "
                     f"{_fmt_seconds(s['best']['time'])} (evaluation {s['best']['evaluation']} of "
                     f"{s['evaluations']})")
    else:
        fig.suptitle(f"{_title(run)}: no successful evaluation")
    return _save(fig, path)


def plot_timeline(run: Run, path: str | Path) -> Path:
    """One row per worker, its evaluations as bars coloured by status; the title
    gives the utilization. Bars too short to see are widened to 0.2% of the axis."""
    iv = worker_intervals(run)
    util = utilization(run)
    n = int(iv["lane"].max()) + 1 if len(iv) else 1
    fig = _figure(11, min(10.0, max(2.8, 1.5 + 0.32 * n)))
    ax = fig.subplots()
    t0 = min(0.0, util["start"]) if math.isfinite(util["start"]) else 0.0
    end = util["end"] if math.isfinite(util["end"]) else 1.0
    scale, unit = _time_scale(end - t0)
    min_w = (end - t0) / 500
    dur = (iv["end"] - iv["start"]).to_numpy()
    widened = bool((dur < min_w).any())
    height = 0.8 if n < 60 else 1.0
    edges = n < 60
    for status, g in iv.groupby("status", sort=False):
        color = STATUS_COLORS.get(status, _OTHER_COLOR)
        for lane, gl in g.groupby("lane"):
            d = (gl["end"] - gl["start"]).to_numpy()
            wide = d >= 4 * min_w  # white edges separate jobs, but would hide thin bars
            for sel, edge in ((wide, edges), (~wide, False)):
                spans = [(s_ / scale, max(w, min_w) / scale) for s_, w in zip(gl["start"][sel], d[sel])]
                if spans:
                    ax.broken_barh(spans, (lane - height / 2, height), facecolors=color,
                                   edgecolor="white" if edge else "none", linewidth=0.5 if edge else 0)
    first = float(iv["start"].min()) if len(iv) else math.nan
    if math.isfinite(first) and first - t0 > 0.05 * (end - t0):
        ax.axvspan(t0 / scale, first / scale, color="0.92", zorder=0)
        ax.text((t0 + first) / 2 / scale, (n - 1) / 2, "start-up:\nno evaluation running", ha="center",
                va="center", fontsize=9, color="0.4")
    workers = sorted(iv["worker"].unique()) if len(iv) else []
    prefix = "slot" if run.workers_inferred else "worker"
    step = 1 if n <= 30 else int(math.ceil(n / 25))
    ax.set_yticks(range(0, len(workers), step), [f"{prefix} {workers[i]}" for i in range(0, len(workers), step)])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(t0 / scale, end / scale * 1.01)
    xlabel = f"wall time since the run began ({unit})"
    if widened:
        xlabel += f"; evaluations shorter than {_fmt_seconds(min_w)} are drawn {_fmt_seconds(min_w)} wide"
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    statuses = set(iv["status"])
    present = [s for s in STATUSES if s in statuses] + sorted(statuses - set(STATUSES))
    handles = [Patch(color=STATUS_COLORS.get(s, _OTHER_COLOR),
                     label=f"{s} ({int((iv['status'] == s).sum())})") for s in present]
    if handles:
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(handles),
                  fontsize=9, frameon=False, borderaxespad=0.2)
    u = util["utilization"]
    if math.isfinite(u):
        title = f"{_title(run)}: {util['workers']} worker(s), utilization {_pct(u)}"
        if math.isfinite(util["utilization_after_start"]):
            title += f" ({_pct(util['utilization_after_start'])} from the first start)"
    else:
        title = f"{_title(run)}: no timed evaluations"
    ax.set_title(title, loc="left", pad=6)
    return _save(fig, path)


def plot_budget(run: Run, path: str | Path) -> Path:
    """Objective against budget: each configuration's results joined by a line
    (its promotions), rows where its training stopped early as crosses, the
    best result at the largest budget as a red star; log budget axis when the
    budgets span a factor of 4 or more."""
    ok = run.ok[run.ok["budget"].notna()]
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    if len(ok):
        if run.params:
            keys = config_keys(ok, [f"p:{n}" for n in run.params])
            for _, g in ok.groupby(keys, sort=False):
                if len(g) > 1:
                    g = g.sort_values("budget")
                    ax.plot(g["budget"], g["objective"], color="#bbbbbb", lw=0.7, zorder=1)
        stopped = ok["stopped"].astype(bool)
        ax.scatter(ok.loc[~stopped, "budget"], ok.loc[~stopped, "objective"], s=18, color="#4c78a8",
                   label="continued or at the full budget", zorder=2)
        ax.scatter(ok.loc[stopped, "budget"], ok.loc[stopped, "objective"], s=22, marker="x",
                   color="#e45756", label="stopped here", zorder=2)
        top = ok[ok["budget"] == ok["budget"].max()]
        i = top["objective"].idxmax()
        ax.scatter([top.at[i, "budget"]], [top.at[i, "objective"]], s=140, marker="*", color="red",
                   zorder=3, label="best at the largest budget")
        lo, hi = float(ok["budget"].min()), float(ok["budget"].max())
        if lo > 0 and hi / lo >= 4:
            ax.set_xscale("log")
        plain_axis(ax.xaxis, ok["budget"])
        lim = _robust_ylim(ok["objective"].to_numpy(dtype=float))
        if lim is not None:
            ax.set_ylim(*lim)
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no successful evaluation", ha="center", va="center", transform=ax.transAxes)
    name = budget_name(run.settings)
    ax.set_xlabel(name)
    ax.set_ylabel("objective")
    ax.set_title(f"{_title(run)}: objective against {name}")
    return _save(fig, path)


def plot_params(run: Run, path: str | Path) -> Path:
    """Objective against each hyperparameter: a scatter coloured by evaluation
    order for numbers (log x-axis for log-scaled ones), box plots per level for
    categoricals; the best configuration is a red star, far-off low values are
    grey triangles on the x-axis."""
    import matplotlib.ticker as mticker

    kinds = param_kinds(run)
    ok = run.ok
    names = run.params
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = _figure(4.0 * ncols + 0.9, 3.2 * nrows + 0.7)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    y = ok["objective"].to_numpy(dtype=float)
    lim = _robust_ylim(y)
    order = ok.index.to_numpy()
    best_i = ok["objective"].idxmax() if len(ok) else None
    sc = None
    below = 0
    for ax, name in zip(axes, names):
        col = ok[f"p:{name}"]
        k = kinds[name]
        if k["kind"] == "numeric":
            act = col.notna().to_numpy()
            xs = col[act].to_numpy(dtype=float)
            sc = ax.scatter(xs, y[act], c=order[act], cmap="viridis", s=16, vmin=0,
                            vmax=max(1, len(run.data) - 1), edgecolor="none", alpha=0.85)
            if k["log"]:
                ax.set_xscale("log")
                plain_axis(ax.xaxis, xs, max_ticks=8)
            else:
                integer = len(xs) > 0 and bool(np.all(np.mod(xs, 1) == 0))
                ax.xaxis.set_major_locator(mticker.MaxNLocator(5, integer=integer))
                if len(xs) and xs.min() == xs.max():  # one value: a readable range around it
                    pad = 1.0 if integer else max(abs(xs[0]) * 0.1, 1e-3)
                    ax.set_xlim(xs[0] - pad, xs[0] + pad)
            if best_i is not None and pd.notna(ok.at[best_i, f"p:{name}"]):
                ax.plot(ok.at[best_i, f"p:{name}"], ok.at[best_i, "objective"], "*", color="red", ms=13,
                        mec="black", mew=0.5, zorder=5)
            hidden = _mark_below(ax, xs, y[act], lim)
            below += hidden
            if hidden and hidden == act.sum():
                ax.text(0.5, 0.5, f"all {hidden} value(s) below the y-axis", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")
            inactive = int((~act).sum())
            ax.set_xlabel(name + (" (log scale)" if k["log"] else "")
                          + (f"; inactive in {inactive} of {len(col)}" if inactive else ""))
            if not act.any():
                ax.text(0.5, 0.5, "never active in a successful evaluation", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")
        else:
            def _levels(c: pd.Series) -> pd.Series:
                return c.astype(object).where(c.notna(), "(inactive)").astype(str)

            levels = _levels(col)
            all_levels = _levels(run.data[f"p:{name}"])  # levels of failed evaluations too
            not_ok = all_levels[run.data["status"] != "ok"].value_counts()
            rank = {c: i for i, c in enumerate(k["order"] or [])}  # declared order, else sorted
            cats = sorted(all_levels.unique(), key=lambda c: (c == "(inactive)", rank.get(c, len(rank)), c))
            data = [y[(levels == c).to_numpy()] for c in cats]
            ax.boxplot(data, widths=0.5, showfliers=False, medianprops={"color": "black", "lw": 1.5},
                       zorder=4)  # over the points, which would hide it when there are many
            rng = np.random.default_rng(0)
            alpha = 0.5 if len(y) < 300 else 0.2
            for i, vals in enumerate(data, start=1):
                jx = i + rng.uniform(-0.15, 0.15, len(vals))
                ax.scatter(jx, vals, s=10, color=STATUS_COLORS["ok"], alpha=alpha, edgecolor="none", zorder=3)
                below += _mark_below(ax, jx, vals, lim)
            labels = [f"{c}\n{len(v)} ok" + (f"\n{not_ok[c]} not ok" if c in not_ok else "")
                      for c, v in zip(cats, data)]
            ax.set_xticks(range(1, len(cats) + 1), labels, fontsize=8 if len(cats) > 4 else 9,
                          rotation=30 if len(cats) > 5 else 0)
            if best_i is not None:
                ax.plot(cats.index(levels.loc[best_i]) + 1, ok.at[best_i, "objective"], "*", color="red",
                        ms=13, mec="black", mew=0.5, zorder=5)
            ax.set_xlabel(name)
        if lim:
            ax.set_ylim(*lim)
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[: len(names)]):
        if i % ncols == 0:
            ax.set_ylabel("objective")
    if sc is not None:
        cb = fig.colorbar(sc, ax=list(axes[: len(names)]), shrink=0.8, aspect=30, pad=0.01)
        cb.set_label("evaluation (finish order)")
    if not names:
        axes[0].text(0.5, 0.5, "no hyperparameter columns", ha="center", va="center")
    note = "; grey triangles: values below the y-axis" if below else ""
    fig.suptitle(f"{_title(run)}: objective of the {len(ok)} successful evaluations against each "
                 f"hyperparameter\n(red star: the best{note})")
    return _save(fig, path)


def plot_importance(run: Run, path: str | Path, table: pd.DataFrame | None = None) -> Path:
    """Horizontal bars of :func:`importance` (largest on top), with their spread."""
    t = importance(run) if table is None else table
    fig = _figure(8, max(2.6, 1.4 + 0.38 * len(t)))
    ax = fig.subplots()
    t = t.iloc[::-1]
    ax.barh(t["parameter"], t["importance"], xerr=t["std"], color=STATUS_COLORS["ok"],
            error_kw={"ecolor": "0.3", "capsize": 3, "lw": 1})
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("share of the objective's variance lost when the hyperparameter is shuffled\n"
                  "(random forest, held-out folds; error bars: standard deviation)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{_title(run)}: hyperparameter importance ({len(run.ok)} successful evaluations)",
                 loc="left")
    return _save(fig, path)


def plot_compare(runs: Sequence[Run], path: str | Path) -> Path:
    """Median best-so-far per label with the interquartile band, against wall
    time and against the evaluation count."""
    fig = _figure(11, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    by_time = compare_runs(runs, by="time")
    by_evals = compare_runs(runs, by="evaluations")
    scale, unit = _time_scale(float(by_time["x"].max()))
    counts = pd.Series([r.label for r in runs]).value_counts()
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]
    for ax, df, xlabel, sx in ((axes[0], by_time, f"wall time since the run began ({unit})", scale),
                               (axes[1], by_evals, "evaluations finished", 1.0)):
        for i, (label, g) in enumerate(df.groupby("label", sort=False)):
            c = colors[i % len(colors)]
            x = g["x"].to_numpy() / sx
            nr = counts[label]
            ax.plot(x, g["median"], color=c, lw=2, drawstyle="steps-post",
                    label=f"{label}: median of {nr} run(s)" + (", IQR band" if nr > 1 else ""))
            if nr > 1:
                ax.fill_between(x, g["q25"], g["q75"], color=c, alpha=0.2, lw=0, step="post")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("best objective so far")
    allv = pd.concat([by_time[["q25", "q75", "median"]], by_evals[["q25", "q75", "median"]]])
    v = allv.to_numpy(dtype=float).ravel()
    v = v[np.isfinite(v)]
    if len(v):  # every curve and band whole, with a margin
        pad = 0.05 * (v.max() - v.min()) or 0.05 * max(abs(v.max()), 1.0)
        axes[0].set_ylim(v.min() - pad, v.max() + pad)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(handles)), fontsize=9,
               frameon=False)
    fig.suptitle(f"best objective so far across {len(runs)} run(s): median and interquartile range "
                 "per label")
    return _save(fig, path)


def plot_run(run: Run, out_dir: str | Path,
             importance_table: pd.DataFrame | None = None) -> tuple[list[Path], list[str]]:
    """All plots of one run into ``out_dir``; returns the files and notes on
    plots that were left out (e.g. too few results for importance)."""
    out = Path(out_dir)
    files = [plot_best_so_far(run, out / "best_so_far.png"), plot_timeline(run, out / "timeline.png")]
    notes = []
    if run.params:
        files.append(plot_params(run, out / "objective_vs_params.png"))
    if "budget" in run.data and run.data["budget"].notna().any():
        files.append(plot_budget(run, out / "objective_vs_budget.png"))
    try:
        files.append(plot_importance(run, out / "importance.png", importance_table))
    except AnalysisError as exc:
        notes.append(f"no importance plot: {exc}")
    if "m:objectives" in run.data.columns:
        try:
            files.append(plot_pareto(run, out / "pareto.png"))
        except AnalysisError as exc:
            notes.append(f"no Pareto plot: {exc}")
    return files, notes


# ---------------------------------------------------------------- report
_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5em 0 1.5em}.note{color:#666}"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(run: Run, out: str | Path | None = None, k: int = 10) -> Path:
    """A self-contained HTML page (plots embedded as base64) with the summary,
    the best configuration, the top-k table, importance and all plots.
    Written to ``report.html`` in the run directory unless ``out`` is given."""
    import tempfile

    out_path = Path(out) if out is not None else run.directory / "report.html"
    s = summarize(run, k=k)
    e = html.escape
    rows = [("source", s["source"]), ("problem", s["problem"] or "-"), ("method", s["method"] or "-"),
            ("evaluations", f"{s['evaluations']} (" + ", ".join(f"{n} {st}" for st, n in
                                                               s["by_status"].items()) + ")"),
            ("best objective" + at_budget(run.settings, s["ranked_at"]),
             _fmt(s["best"]["objective"], 10) if s["best"] else "none"),
            ("time to the best", _fmt_seconds(s["best"]["time"]) if s["best"] else "-"),
            ("evaluation of the best", s["best"]["evaluation"] if s["best"] else "-"),
            ("wall time", _fmt_seconds(s["wall_time"])),
            ("evaluations per hour", _fmt(s["evaluations_per_hour"], 4)),
            ("median evaluation time", _fmt_seconds(s["median_duration"])),
            ("workers", f"{s['workers']}" + (" (inferred)" if s["workers_inferred"] else "")),
            ("utilization", "-" if s["utilization"] is None else
             f"{s['utilization']:.1%} ({s['utilization_after_start']:.1%} after the first start)")]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ambs report: "
             f"{e(_title(run))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Run report: {e(_title(run))}</h1>", "<h2>Summary</h2><table>"]
    parts += [f"<tr><th>{e(str(a))}</th><td>{e(str(b))}</td></tr>" for a, b in rows]
    parts.append("</table>")
    if s["best"]:
        parts.append("<h2>Best configuration</h2><table>")
        parts += [f"<tr><th>{e(str(a))}</th><td>{e(repr(b))}</td></tr>" for a, b in s["best"]["config"].items()]
        parts.append("</table>")
        parts.append(f"<h2>Top {len(s['top'])}</h2>")
        parts.append(top_k(run, k).to_html(index=False, float_format=lambda x: f"{x:.6g}", na_rep="",
                                           border=0))
    if s["errors"]:
        parts.append("<h2>Most frequent errors</h2><table><tr><th>error</th><th>count</th></tr>")
        parts += [f"<tr><td>{e(x['error'])}</td><td>{x['count']}</td></tr>" for x in s["errors"]]
        parts.append("</table>")
    notes = list(s["notes"]) + (["skipped a half-written last line (run still in progress?)"]
                                if s["dropped_partial_line"] else [])
    try:
        imp = importance(run)
    except AnalysisError:
        imp = None
    with tempfile.TemporaryDirectory() as tmp:
        files, plot_notes = plot_run(run, tmp, imp)
        notes += plot_notes
        names = {f.name: f for f in files}
        sections = [("Best so far", "best_so_far.png"), ("Worker timeline", "timeline.png"),
                    ("Objective against each hyperparameter", "objective_vs_params.png"),
                    ("Hyperparameter importance", "importance.png")]
        for title, name in sections:
            if name in names:
                parts.append(f"<h2>{e(title)}</h2>{_img(names[name])}")
        if imp is not None:
            parts.append(imp.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text("\n".join(parts), encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return out_path


# ---------------------------------------------------------------- several objectives
def objectives_frame(run: Run, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The objectives of the successful evaluations, one column each (all maximized).

    By default from ``m:objectives`` (the JSON list a run returns under
    ``objective``/``objectives``), named as the problem names them
    (run.json), else ``objective_1``, ``objective_2``, ...; or from
    ``columns`` of the CSV, a leading ``-`` negating one to maximize it
    (``-m:n_parameters``). The index is the rows' index in
    ``run.data``; ``job_id`` comes along.
    """
    ok = run.ok
    out = pd.DataFrame({"job_id": ok["job_id"]}, index=ok.index)
    if columns:
        for col in columns:
            name, sign = (col[1:], -1.0) if col.startswith("-") else (col, 1.0)
            if name not in ok.columns:
                raise AnalysisError(f"{run.source} has no column {name!r}")
            out[col] = sign * _numbers(ok[name])
        return out
    if "m:objectives" not in ok.columns:
        raise AnalysisError(f"{run.source} has no m:objectives column; name the objective columns")
    lists = ok["m:objectives"].map(lambda v: json.loads(v) if isinstance(v, str) and v.startswith("[") else [])
    width = int(lists.map(len).max()) if len(lists) else 0
    if width < 2:
        raise AnalysisError(f"{run.source} has fewer than two objectives per evaluation")
    for k, name in enumerate(objective_names(run.settings, width)):
        out[name] = lists.map(lambda v, k=k: float(v[k]) if len(v) > k else math.nan)
    return out


def pareto_front(run: Run, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The successful evaluations with their objectives and a ``pareto`` flag, front first.

    A row is on the front when no other row is at least as good in every
    objective and better in one. The CSV never holds this flag (it is
    append-only, and a later row can dominate an earlier one): it is
    computed here, from the rows so far.
    """
    from ambs.pareto import pareto_mask

    frame = objectives_frame(run, columns)
    names = [c for c in frame.columns if c != "job_id"]
    frame["pareto"] = pareto_mask(frame[names].to_numpy(dtype=float)) if len(frame) else []
    return frame.sort_values(["pareto"] + names, ascending=[False] + [False] * len(names),
                             kind="stable").reset_index(drop=True)


def plot_pareto(run: Run, path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """The first two objectives of every successful evaluation, the front joined by steps."""
    front = pareto_front(run, columns)
    names = [c for c in front.columns if c not in ("job_id", "pareto")]
    x, y = names[1], names[0]
    fig = _figure(6.5, 4.8)
    ax = fig.subplots()
    rest = front[~front["pareto"]]
    on = front[front["pareto"]].sort_values(x)
    ax.scatter(rest[x], rest[y], s=14, color="#9ecae1", edgecolor="none", label="dominated")
    ax.step(on[x], on[y], where="pre", color=STATUS_COLORS["ok"], lw=1.5)  # the attained region's edge
    ax.scatter(on[x], on[y], s=26, color=STATUS_COLORS["ok"], zorder=3, label=f"Pareto front ({len(on)})")
    ax.set_xlabel(f"{x} (higher is better)")
    ax.set_ylabel(f"{y} (higher is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, frameon=False)
    fig.suptitle(f"{_title(run)}: Pareto front of {len(front)} evaluations")
    return _save(fig, path)
