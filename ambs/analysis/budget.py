"""Budgets in a run's results: which rows stopped early, the table per budget,
and the budget that ranks a multi-fidelity run.

Functions of the loaded frame (see :class:`ambs.analysis.Run`); rows are in
finish order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ambs.errors import AnalysisError

if TYPE_CHECKING:
    from ambs.analysis.load import Run

__all__ = ["config_keys", "full_budget", "stopped_rows", "budget_table", "has_budgets", "ranking_budget", "ranked_rows"]


def full_budget(settings: dict[str, Any], df: pd.DataFrame) -> float:
    """The run's full budget: from run.json, else the largest budget in the CSV."""
    from ambs.recorder import effective_settings

    inner = effective_settings(settings) if isinstance(settings.get("settings"), dict) else {}
    try:
        return float(inner["max_budget"])
    except (KeyError, TypeError, ValueError):
        return float(df["budget"].max())


def config_keys(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    """One string per row that identifies its configuration, an inactive
    (NaN) hyperparameter as an empty field. Built cell by cell: ``astype(str)``
    keeps NaN as missing under pandas 3, which a string join cannot take."""
    rows = frame[cols].to_numpy(dtype=object) if cols else np.empty((len(frame), 0), dtype=object)
    keys = ["\x1f".join("" if pd.isna(v) else str(v) for v in row) for row in rows]
    return pd.Series(keys, index=frame.index, dtype=object)


def stopped_rows(df: pd.DataFrame, pcols: list[str], max_budget: float) -> pd.Series:
    """Which successful rows are where a configuration's training stopped early.

    A row is *stopped* when it trained with less than the full budget and no
    later row trains the same configuration with a larger budget: the search
    did not promote it (it lost its rung, or the run ended first). This is
    computed from the whole CSV, not written with the row: when a row is
    appended, an asynchronous search (ASHA) may still promote it later.
    """
    keys = config_keys(df, pcols)
    budget = df["budget"].to_numpy(dtype=float)
    largest_after = np.full(len(df), -np.inf)
    seen: dict[str, float] = {}
    for i in range(len(df) - 1, -1, -1):  # rows in finish order: a promotion finishes later
        k = keys.iat[i]
        largest_after[i] = seen.get(k, -np.inf)
        if np.isfinite(budget[i]):
            seen[k] = max(seen.get(k, -np.inf), budget[i])
    short = budget < max_budget * (1 - 1e-9)
    ok = (df["status"] == "ok").to_numpy()
    return pd.Series(ok & short & ~(largest_after > budget), index=df.index)


def budget_table(run: Run) -> pd.DataFrame:
    """Per budget: evaluations, successes, how many stopped there (not
    promoted further), how many of those a stop rule stopped in training,
    best and median objective. Empty when the CSV records no budgets."""
    d = run.data
    if not has_budgets(d):
        return pd.DataFrame(columns=["budget", "evaluations", "ok", "stopped", "rule_stopped", "best", "median"])
    rows = []
    for b, g in d.groupby("budget", sort=True):
        ok = g[(g["status"] == "ok") & g["objective"].notna()]
        by_rule = g["stopped_step"].notna() if "stopped_step" in g else pd.Series(False, index=g.index)
        rows.append({"budget": float(b), "evaluations": len(g), "ok": len(ok),
                     "stopped": int((g["stopped"] & ~by_rule).sum()), "rule_stopped": int(by_rule.sum()),
                     "best": float(ok["objective"].max()) if len(ok) else math.nan,
                     "median": float(ok["objective"].median()) if len(ok) else math.nan})
    return pd.DataFrame(rows)


def has_budgets(data: pd.DataFrame) -> bool:
    """Whether the CSV records the budget of some evaluation."""
    return "budget" in data and bool(data["budget"].notna().any())


def ranking_budget(run: Run, budget: float | None = None) -> float | None:
    """The budget whose results rank a run: ``budget`` (which some successful
    evaluation must have trained with), else the highest budget a successful
    evaluation reached when the CSV holds several (a multi-fidelity run: a
    lower budget is a cheaper, noisier objective), else None (rank them all)."""
    ok = run.ok
    budgets = sorted(ok["budget"].dropna().unique()) if has_budgets(run.data) else []
    if budget is None:
        return float(budgets[-1]) if len(budgets) > 1 else None
    for b in budgets:
        if math.isclose(b, budget, rel_tol=1e-5):  # as printed, to 6 digits
            return float(b)
    have = ", ".join(f"{b:g}" for b in budgets) or "none"
    raise AnalysisError(f"no successful evaluation of {run.source} trained with budget {budget:g} "
                        f"(budgets: {have})")


def ranked_rows(run: Run, budget: float | None = None) -> pd.DataFrame:
    """The successful rows that rank a run: those at :func:`ranking_budget`
    (all of them when it is None), in the order of ``run.ok``."""
    ok = run.ok
    b = ranking_budget(run, budget)
    if b is None:
        return ok
    return ok[np.isclose(pd.to_numeric(ok["budget"], errors="coerce").to_numpy(dtype=float), b, rtol=1e-9)]
