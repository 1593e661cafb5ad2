"""Pareto fronts of several maximized objectives (pure numpy).

The CSV is append-only, so no row is ever marked Pareto-optimal in it: a
row on the front today may be dominated tomorrow. The front is computed
when it is needed, by a search (LEMONADE) or at analysis time
(:func:`ambs.analysis.pareto_front`).
"""

from __future__ import annotations

import numpy as np

from ambs.objectives import nondominated

__all__ = ["pareto_mask", "dominates", "pareto_order"]


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


def pareto_order(losses: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``losses`` (n, m, minimized; no NaN) best first:
    by non-dominated front, then by crowding distance within a front, then
    by row order (Deb et al., *NSGA-II*, IEEE TEC 2002). Successive halving
    with several objectives ranks a rung this way (Schmucker et al.,
    *Multi-objective Asynchronous Successive Halving*, 2021): the front's
    configurations go on first, its spread-out ones before its crowded ones."""
    L = np.asarray(losses, dtype=float)
    left = np.arange(len(L))
    out: list[np.ndarray] = []
    while len(left):
        on = nondominated(L[left])
        front = left[on]
        crowd = _crowding(L[front])
        out.append(front[np.lexsort((front, -crowd))])
        left = left[~on]
    return np.concatenate(out) if out else left


def _crowding(F: np.ndarray) -> np.ndarray:
    """Crowding distance of each row of one front: the sum over objectives of
    the normalized gap between its neighbours; the extremes are infinite."""
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        v = F[order, j]
        span = v[-1] - v[0]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (v[2:] - v[:-2]) / span
    return d
