"""Runs with several objectives: the objectives of each successful evaluation
and the Pareto front (:func:`ambs.pareto.pareto_mask`), computed from the rows
so far: the CSV is append-only and never marks a row as on the front."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pandas as pd

from ambs.analysis.load import Run, numbers
from ambs.analysis.space import objective_names
from ambs.errors import AnalysisError
from ambs.pareto import pareto_mask

__all__ = ["objectives_frame", "pareto_front"]


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
            out[col] = sign * numbers(ok[name])
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
    frame = objectives_frame(run, columns)
    names = [c for c in frame.columns if c != "job_id"]
    frame["pareto"] = pareto_mask(frame[names].to_numpy(dtype=float)) if len(frame) else []
    return frame.sort_values(["pareto"] + names, ascending=[False] + [False] * len(names),
                             kind="stable").reset_index(drop=True)

