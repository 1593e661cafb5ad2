"""Plots of a run with several objectives: the Pareto front, and the
hypervolume it dominates against evaluations and against time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ambs.analysis.budget import ranking_budget
from ambs.analysis.canvas import STATUS_COLORS, figure, run_title, save
from ambs.analysis.load import Run
from ambs.analysis.pareto import directions, hypervolume_trace, pareto_front
from ambs.analysis.space import at_budget

__all__ = ["plot_pareto", "plot_hypervolume"]


def plot_pareto(run: Run, path: str | Path, columns: Sequence[str] | None = None,
                budget: float | None = None) -> Path:
    """The first two objectives of every successful evaluation (at ``budget``,
    in a run with several: see :func:`ambs.analysis.pareto.objectives_frame`),
    the front joined by steps."""
    front = pareto_front(run, columns, budget=budget)
    b = ranking_budget(run, budget)
    names = [c for c in front.columns if c not in ("job_id", "pareto")]
    dirs = dict(zip(names, directions(run, front)))
    x, y = names[1], names[0]
    fig = figure(6.5, 4.8)
    ax = fig.subplots()
    rest = front[~front["pareto"]]
    on = front[front["pareto"]].sort_values(x)
    ax.scatter(rest[x], rest[y], s=14, color="#9ecae1", edgecolor="none", label="dominated")
    # The attained region's edge: each front point holds until the next one along x.
    ax.step(on[x], on[y], where="post" if (dirs[x] == "min") == (dirs[y] == "min") else "pre",
            color=STATUS_COLORS["ok"], lw=1.5)
    ax.scatter(on[x], on[y], s=26, color=STATUS_COLORS["ok"], zorder=3, label=f"Pareto front ({len(on)})")
    better = {"max": "higher is better", "min": "lower is better"}
    ax.set_xlabel(f"{x} ({better[dirs[x]]})")
    ax.set_ylabel(f"{y} ({better[dirs[y]]})")
    if len(names) > 2:
        ax.set_title(f"{len(names) - 2} more objective(s) not drawn; the front is over all {len(names)}",
                     fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, frameon=False)
    at = at_budget(run.settings, b)
    fig.suptitle(f"{run_title(run)}: Pareto front of {len(front)} evaluations{at}")
    return save(fig, path)


def plot_hypervolume(run: Run, path: str | Path, reference: Sequence[float] | None = None,
                     columns: Sequence[str] | None = None, budget: float | None = None) -> Path:
    """The hypervolume dominated so far, against evaluations and against time
    (by the evaluations at ``budget``, in a run with several)."""
    trace, ref = hypervolume_trace(run, reference, columns, budget)
    fig = figure(10, 4.2)
    left, right = fig.subplots(1, 2)
    left.step(trace["evaluation"], trace["hypervolume"], where="post", color=STATUS_COLORS["ok"])
    left.set_xlabel("evaluations finished")
    timed = trace[np.isfinite(trace["finished"])]
    right.step(timed["finished"], timed["hypervolume"], where="post", color=STATUS_COLORS["ok"])
    right.set_xlabel("seconds since the run began")
    for ax in (left, right):
        ax.set_ylabel("hypervolume")
        ax.grid(alpha=0.3)
    text = ", ".join(f"{v:.4g}" for v in ref)
    fig.suptitle(f"{run_title(run)}: hypervolume up to the reference point ({text})")
    return save(fig, path)
