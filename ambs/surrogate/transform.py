"""Monotone transforms of the loss before the surrogate is fitted.

Losses of hyperparameter searches are skewed: a few good results and a long
tail of bad ones (diverged runs, the flat outer region of a test function).
Fitted on raw values, tree leaves average the good results away with the
bad ones around them, and the spread of the tail dominates the uncertainty.
A monotone transform that stretches the good end keeps the order of the
results (so the best stays best) and lets the trees resolve where the good
results are.

Every transform returns the transformed targets and a function that maps
further losses (lies, results told after the fit) onto the same scale.

Ranks forget magnitudes, which is what lets them resolve small differences
among the best results of a smooth function; on an objective with plateaus
(accuracies on a finite validation set: many results share a value) that is
a trap. Each block of tied results shares one mid-rank, so two plateaus one
validation sample apart, or 1e-4 apart after averaging folds, are ranked as
far apart as the results they hold, and the further the search samples the
better plateau the worse its neighbour looks; the search stays on it.
``"auto"`` therefore takes ``"rank"`` unless fewer than half the results are
distinct values, and ``"log"`` (which keeps near values near) then.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtri

__all__ = ["TRANSFORMS", "transform_targets"]

TRANSFORMS = ("auto", "log", "rank", "none")
TIED_SHARE = 0.5  # "auto" takes "log" when fewer than this share of the results are distinct


def transform_targets(
    y: np.ndarray, kind: str = "log", eps: float = 0.01
) -> tuple[np.ndarray, Callable[[np.ndarray | float], np.ndarray]]:
    """Transform losses ``y`` (to minimize) for fitting.

    Args:
        y: finite losses, shape (n,).
        kind: ``"log"``: ``log(eps + (y - min) / (max - min))``, a log scale
            anchored at the best loss, so that differences among good results
            count as much as among bad ones; ``"rank"``: normal scores of the
            ranks (only the order of the results matters); ``"auto"``: "rank",
            or "log" when fewer than half the values are distinct; ``"none"``.
        eps: for ``"log"``, how far below the best result (as a fraction of
            the range) the log's pole sits; smaller stretches the best more.

    Returns:
        The transformed targets (n,) and the map applied to them, which also
        takes values outside the range seen (clipped at the best end).
    """
    y = np.asarray(y, dtype=float)
    if kind == "auto":
        kind = "log" if len(np.unique(y)) < TIED_SHARE * len(y) else "rank"
    if kind == "none" or len(y) == 0:
        return y.copy(), lambda v: np.asarray(v, dtype=float)
    lo, hi = float(y.min()), float(y.max())
    span = hi - lo
    if span <= 0 or not np.isfinite(span):
        return np.zeros_like(y), lambda v: np.zeros_like(np.asarray(v, dtype=float))
    if kind == "log":

        def f(v):
            z = (np.asarray(v, dtype=float) - lo) / span
            return np.log(eps + np.maximum(z, 0.0))

        return f(y), f
    if kind == "rank":
        order = np.sort(y)
        n = len(y)

        def f(v):
            v = np.asarray(v, dtype=float)
            # Mid-ranks (ties share one value), interpolated between results.
            left = np.searchsorted(order, v, side="left")
            right = np.searchsorted(order, v, side="right")
            r = 0.5 * (left + right)
            return ndtri(np.clip((r + 0.5) / (n + 1.0), 1e-6, 1 - 1e-6))

        return f(y), f
    raise ValueError(f"unknown transform {kind!r} (choose from {', '.join(TRANSFORMS)})")
