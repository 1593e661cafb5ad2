"""What every plot of a run shares: a matplotlib figure drawn with the Agg
backend without touching pyplot's global state, saving it as PNG, status
colours, axis helpers. matplotlib is imported when a figure is made, so that
importing :mod:`ambs.analysis` (``ambs analyze summary``) does not load it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ambs.analysis.load import Run
from ambs.analysis.space import is_number
from ambs.errors import AnalysisError

__all__ = ["STATUS_COLORS", "OTHER_COLOR", "figure", "save", "time_scale", "robust_ylim", "mark_below",
           "percent", "run_title", "plain_axis"]

STATUS_COLORS = {
    "ok": "#4c78a8",
    "failed": "#e45756",
    "timeout": "#f58518",
    "crashed": "#7f3c8d",
    "cancelled": "#9d9d9d",
}
OTHER_COLOR = "#54a24b"  # a status none of the above


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas, without pyplot."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise AnalysisError("plots need matplotlib, a dependency of ambs: pip install 'matplotlib>=3.7'") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: str | Path) -> Path:
    """Write the figure as a PNG file (its directory made if missing); the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise AnalysisError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def time_scale(seconds: float) -> tuple[float, str]:
    """The unit (divisor, name) for a time axis that spans ``seconds``."""
    if not math.isfinite(seconds) or seconds < 300:
        return 1.0, "s"
    if seconds < 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def robust_ylim(values: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, float] | None:
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


def mark_below(ax: Any, x: Any, y: Any, lim: tuple[float, float] | None) -> int:
    """Draw values under the y-axis as grey triangles on its bottom edge; their count."""
    if lim is None:
        return 0
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    below = np.isfinite(y) & (y < lim[0])
    if below.any():
        ax.plot(x[below], np.full(int(below.sum()), 0.012), "v", color="0.45", ms=5,
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, linestyle="none")
    return int(below.sum())


def percent(u: float) -> str:
    """A fraction as a percentage, with more digits when it is small."""
    if not math.isfinite(u):
        return "-"
    if u >= 0.1 or u == 0:
        return f"{u:.0%}"
    if u >= 0.001:
        return f"{u * 100:.2g}%"
    return "<0.1%"


def run_title(run: Run) -> str:
    """The problem's name, and the run's label when it says more."""
    name = run.settings.get("problem_name") or run.directory.name
    return f"{name} ({run.label})" if run.label and run.label != name else str(name)


def plain_axis(axis: Any, values: Sequence[float], max_ticks: int = 10) -> None:
    """Ticks of a (log) matplotlib axis as plain numbers (``2``, not ``2×10^0``);
    at the values themselves when there are few of them."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    distinct = sorted({float(v) for v in values if is_number(v)})
    if 0 < len(distinct) <= max_ticks:
        axis.set_ticks(distinct)
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
