"""Runs with several objectives: the objectives of each successful evaluation,
the Pareto front, and the hypervolume it dominates as the run went on.

All computed from the rows so far: the CSV is append-only and never marks a
row as on the front (a later row can dominate an earlier one). A run of a
problem that declares its objectives (:meth:`ambs.Problem.add_objective`)
has an ``o:<name>`` column for each and their directions in run.json; for
older runs the objectives come from ``m:objectives`` (a JSON list, every one
maximized) or from columns the user names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ambs.analysis.budget import ranked_rows
from ambs.analysis.load import Run, numbers
from ambs.analysis.space import objective_names
from ambs.errors import AnalysisError
from ambs.objectives import Front, hypervolume, nondominated

__all__ = ["objectives_frame", "pareto_front", "directions", "hypervolume_trace", "default_reference", "format_front"]

PREFIX = "o:"


def declared(run: Run) -> list[str]:
    """The declared objectives' names (their ``o:`` columns), [] for a run without."""
    return [c[len(PREFIX):] for c in run.data.columns if c.startswith(PREFIX)]


def objectives_frame(run: Run, columns: Sequence[str] | None = None, budget: float | None = None) -> pd.DataFrame:
    """The objectives of the successful evaluations, one column each, named
    by the objectives (:func:`directions` says which are minimized). In a
    run with several budgets, only the evaluations at ``budget`` (default:
    the highest reached; :func:`ambs.analysis.budget.ranked_rows`): a
    lower budget is another, cheaper objective, not a point of the same front.

    From ``columns`` of the CSV when given (all maximized; a leading ``-``
    negates one, ``-m:n_parameters``); else the declared objectives' ``o:``
    columns as ``run`` returned them; else ``m:objectives`` (all maximized).
    The index is the rows' index in ``run.data``; ``job_id`` comes along.
    """
    ok = ranked_rows(run, budget)
    out = pd.DataFrame({"job_id": ok["job_id"]}, index=ok.index)
    if columns:
        for col in columns:
            name, sign = (col[1:], -1.0) if col.startswith("-") else (col, 1.0)
            if name not in ok.columns:
                raise AnalysisError(f"{run.source} has no column {name!r}")
            out[col] = sign * numbers(ok[name])
        return out
    names = declared(run)
    if names:
        for name in names:
            out[name] = numbers(ok[PREFIX + name])
        return out
    if "m:objectives" not in ok.columns:
        raise AnalysisError(f"{run.source} has one objective; declare several in the problem "
                            "(problem.add_objective) or name columns with --objectives")
    lists = ok["m:objectives"].map(lambda v: json.loads(v) if isinstance(v, str) and v.startswith("[") else [])
    width = int(lists.map(len).max()) if len(lists) else 0
    if width < 2:
        raise AnalysisError(f"{run.source} has fewer than two objectives per evaluation")
    for k, name in enumerate(objective_names(run.settings, width)):
        out[name] = lists.map(lambda v, k=k: float(v[k]) if len(v) > k else math.nan)
    return out


def directions(run: Run, frame: pd.DataFrame) -> list[str]:
    """"max" or "min" for each objective column of ``frame``: the declared
    directions (run.json) for the ``o:`` columns, "max" for any other."""
    names = [c for c in frame.columns if c not in ("job_id", "pareto")]
    declared_dirs = dict(zip(run.settings.get("objectives") or [], run.settings.get("directions") or []))
    if not declared(run):
        return ["max"] * len(names)
    return [declared_dirs.get(n, "max") for n in names]


def _losses(frame: pd.DataFrame, dirs: list[str]) -> np.ndarray:
    names = [c for c in frame.columns if c not in ("job_id", "pareto")]
    signs = np.array([1.0 if d == "min" else -1.0 for d in dirs])
    return frame[names].to_numpy(dtype=float) * signs


def pareto_front(run: Run, columns: Sequence[str] | None = None, configs: bool = False,
                 budget: float | None = None) -> pd.DataFrame:
    """The successful evaluations with their objectives and a ``pareto`` flag,
    the front first (sorted by the first objective, best first).

    A row is on the front when no other row is at least as good in every
    objective and better in one. ``configs``: the hyperparameters (and the
    budget) of each row come along, after the objectives.
    """
    frame = objectives_frame(run, columns, budget)
    dirs = directions(run, frame)
    names = [c for c in frame.columns if c != "job_id"]
    L = _losses(frame, dirs)
    frame["pareto"] = nondominated(L) if len(frame) else []
    frame["_key"] = L[:, 0] if len(frame) else []
    if configs:
        for name in run.params:
            frame[name] = run.data.loc[frame.index, f"p:{name}"]
        if "budget" in run.data.columns:
            frame["budget"] = run.data.loc[frame.index, "budget"]
    frame = frame.sort_values(["pareto", "_key", *names[1:]], ascending=[False, True] + [dirs[k] == "min"
                              for k in range(1, len(names))], kind="stable")
    return frame.drop(columns="_key").reset_index(drop=True)


def default_reference(run: Run, frame: pd.DataFrame | None = None) -> list[float]:
    """A reference point for the hypervolume, in the objectives' own units:
    the worst value of each objective among the successful evaluations,
    moved a tenth of its range further (so that the extreme points count)."""
    frame = objectives_frame(run) if frame is None else frame
    dirs = directions(run, frame)
    L = _losses(frame, dirs)
    L = L[np.isfinite(L).all(axis=1)]
    if not len(L):
        raise AnalysisError(f"{run.source} has no successful evaluation with every objective")
    hi, lo = L.max(axis=0), L.min(axis=0)
    ref = hi + 0.1 * np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return [float(-r if d == "max" else r) for r, d in zip(ref, dirs)]


def hypervolume_trace(run: Run, reference: Sequence[float] | None = None, columns: Sequence[str] | None = None,
                      budget: float | None = None) -> tuple[pd.DataFrame, list[float]]:
    """The hypervolume the successful evaluations dominate, after each
    evaluation in the order they finished: columns ``evaluation`` (how many
    had finished, failures included), ``finished`` (seconds since the run
    began) and ``hypervolume``; and the reference point used (given in the
    objectives' own units, or :func:`default_reference`); the evaluations
    at ``budget`` count (see :func:`objectives_frame`)."""
    frame = objectives_frame(run, columns, budget)
    dirs = directions(run, frame)
    ref = list(reference) if reference is not None else default_reference(run, frame)
    names = [c for c in frame.columns if c != "job_id"]
    if len(ref) != len(names):
        raise AnalysisError(f"the reference point has {len(ref)} values, the run {len(names)} objectives "
                            f"({', '.join(names)})")
    signs = np.array([1.0 if d == "min" else -1.0 for d in dirs])
    R = np.asarray(ref, dtype=float) * signs
    data = run.data
    finished = numbers(data["finished"]) if "finished" in data.columns else pd.Series(np.nan, index=data.index)
    order = np.argsort(finished.fillna(np.inf).to_numpy(), kind="stable")
    L = _losses(frame, dirs)
    row_of = {idx: k for k, idx in enumerate(frame.index)}
    front = Front()  # a dominated point leaves the hypervolume as it was
    out = []
    hv = 0.0
    for n, i in enumerate(order, start=1):
        idx = data.index[i]
        if idx in row_of:
            p = L[row_of[idx]]
            if np.isfinite(p).all() and (p < R).all():
                if front.add(p):
                    hv = hypervolume(np.array(front.points), R)
        out.append({"evaluation": n, "finished": float(finished.iloc[i]), "hypervolume": hv})
    return pd.DataFrame(out, columns=["evaluation", "finished", "hypervolume"]), ref


def front_summary(run: Run, limit: int = 20, config_of: Any = None, budget: float | None = None) -> dict | None:
    """The front of a run with declared objectives, for ``ambs analyze
    summary``: the objectives and their directions, how many evaluations
    are on the front, its hypervolume (default reference point), and up to
    ``limit`` of its members with their configurations (``config_of(row)``
    of the member's row of ``run.data``); None for a run without declared
    objectives or without a successful evaluation (at ``budget``, see
    :func:`objectives_frame`)."""
    names = declared(run)
    if not names or run.ok.empty:
        return None
    frame = objectives_frame(run, budget=budget)
    if frame.empty:
        return None
    dirs = directions(run, frame)
    L = _losses(frame, dirs)
    on = frame[nondominated(L)].iloc[np.argsort(L[nondominated(L), 0], kind="stable")]
    trace, ref = hypervolume_trace(run, budget=budget)
    members = []
    for idx, r in on.head(limit).iterrows():
        row = run.data.loc[idx]
        config = config_of(row) if config_of is not None else {p: row[f"p:{p}"] for p in run.params}
        members.append({"job_id": int(r["job_id"]), "objectives": {n: float(r[n]) for n in names},
                        "config": config})
    return {"objectives": [{"name": n, "direction": d} for n, d in zip(names, dirs)], "size": int(len(on)),
            "successful": int(len(frame)), "hypervolume": float(trace["hypervolume"].iloc[-1]) if len(trace) else 0.0,
            "reference": ref, "members": members}


def format_front(frame: pd.DataFrame, na_rep: str = "-") -> str:
    """A table of the front's rows as text: whole numbers shown as such (a width
    of 256, not 256.0: pandas reads an integer column with empty cells, the
    inactive ones, as floats), empty cells as ``na_rep``."""
    out = frame.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_float_dtype(col) and col.notna().any():
            v = col.dropna()
            if ((v % 1) == 0).all() and (v.abs() < 2**53).all():
                out[c] = pd.Series([na_rep if pd.isna(x) else int(x) for x in col], index=col.index, dtype=object)
    return out.to_string(index=False, na_rep=na_rep)
