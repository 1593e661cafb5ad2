"""Pareto fronts of several maximized objectives (pure numpy).

The CSV is append-only, so no row is ever marked Pareto-optimal in it: a
row on the front today may be dominated tomorrow. The front is computed
when it is needed, by a search (LEMONADE) or at analysis time
(:func:`ambs.analysis.pareto_front`).
"""

from __future__ import annotations

import numpy as np

from ambs.objectives import nondominated

__all__ = ["pareto_mask", "dominates"]


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a dominates b: at least as good in every objective, better in one (maximized)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool((a >= b).all() and (a > b).any())


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (n, m) that no other row dominates, all objectives maximized.

    Rows with a NaN are never on the front; equal rows are all kept
    (:func:`ambs.objectives.nondominated` of the negated points).
    """
    P = np.asarray(points, dtype=float)
    return nondominated(-(P[:, None] if P.ndim == 1 else P))
