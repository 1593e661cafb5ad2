"""The learning curves that evaluations reported while they trained (``RUN_DIR/curves.csv``,
:mod:`ambs.reports`), as one plot: the curves that ran to their end, and those a stop rule stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ambs.analysis.canvas import figure, robust_ylim, run_title, save
from ambs.analysis.load import Run
from ambs.reports import CURVES, read_curves

__all__ = ["curves_path", "plot_curves"]


def curves_path(run: Run) -> Path | None:
    """The run's curves.csv, None when its evaluations reported nothing."""
    path = Path(run.source).parent / CURVES
    return path if path.is_file() and path.stat().st_size else None


def plot_curves(run: Run, path: str | Path) -> Path:
    """Each evaluation's reported values against its steps: grey when it ran to
    its end, red when a stop rule stopped it, the best final objective's curve in blue."""
    source = curves_path(run)
    rows = read_curves(source) if source is not None else []
    by_job: dict[int, tuple[list[float], list[float]]] = {}
    for job_id, step, value, _ in rows:
        xs, ys = by_job.setdefault(job_id, ([], []))
        xs.append(step)
        ys.append(value)
    data = run.data
    stopped = set(data.loc[data["stopped_step"].notna(), "job_id"].astype(int)) if "stopped_step" in data else set()
    best = int(run.ok.loc[run.ok["objective"].idxmax(), "job_id"]) if len(run.ok) else None
    fig = figure(6.4, 4.4)
    ax = fig.subplots()
    values = []
    for job_id, (xs, ys) in by_job.items():
        values += ys
        color, lw, z = ("#e45756", 0.8, 2) if job_id in stopped else ("#aaaaaa", 0.8, 1)
        if job_id == best:
            color, lw, z = "#4c78a8", 2.0, 3
        ax.plot(xs, ys, color=color, lw=lw, zorder=z)
    ax.plot([], [], color="#aaaaaa", label="ran to its end")
    ax.plot([], [], color="#e45756", label=f"stopped by a stop rule ({len(stopped & set(by_job))})")
    if best is not None and best in by_job:
        ax.plot([], [], color="#4c78a8", lw=2.0, label="best")
    lim = robust_ylim(np.asarray(values, dtype=float)) if values else None
    if lim is not None:
        ax.set_ylim(*lim)
    ax.set_xlabel("step")
    ax.set_ylabel("reported value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    fig.suptitle(f"{run_title(run)}: learning curves of {len(by_job)} evaluations")
    return save(fig, path)
