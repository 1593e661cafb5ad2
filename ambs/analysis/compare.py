"""Several runs side by side: best-so-far per label (median and interquartile
range) against wall time or the evaluation count, and the table of final bests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ambs.analysis.load import Run
from ambs.analysis.metrics import best_so_far, summarize
from ambs.errors import AnalysisError

__all__ = ["compare_runs", "compare_table", "format_compare"]


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
