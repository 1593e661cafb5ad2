"""Leaf statistics of a fitted forest for a set of points, updatable without a refit.

A point's prediction is the average over trees of its leaf's mean, and its
spread the law of total variance over the trees. :class:`LeafView` keeps the
per-node mean, second moment and weight, addressed by global node id, and
folds an observation or a constant-liar lie into the leaves it lands in
(one per tree): only the points that share such a leaf change
(:mod:`ambs.surrogate.forest` makes them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LEAF", "LeafView"]

LEAF = np.int32  # the type of global leaf ids


def _merged(n, m, s, k, s1, s2, spread: bool):
    """Leaf statistics after adding ``k`` samples with sum ``s1`` and sum of
    squares ``s2`` to leaves of weight ``n``, mean ``m`` and second moment ``s``.

    With ``spread`` the samples count as observations (their distance from the
    mean adds to the variance); without, only the mean moves and the variance
    shrinks as ``k`` more samples at the mean would make it.

    Returns:
        the new weight, mean and second moment.
    """
    n_new = n + k
    m_new = (n * m + s1) / n_new
    if spread:
        s_new = (n * s + s2) / n_new
    else:
        s_new = np.maximum(s - m * m, 0.0) * (n / n_new) + m_new * m_new
    return n_new, m_new, s_new


# Folds into a view whose tracked points have not changed, past which a fold
# uses a sorted index of their leaves (its sort costs about as much as this
# many passes over every tracked point).
_DENSE_ADDS = 32


class LeafView:
    """Mean and variance of a set of points under updatable leaf statistics.

    Args:
        leaves: global leaf ids, shape (n_trees, n_points).
        mean, second, count: per-node mean, second moment and weight (copies;
            updates do not touch the fitted forest).
        locate: points to their leaf ids (the forest's :meth:`ForestSurrogate.leaves`).
    """

    def __init__(
        self, leaves: np.ndarray, mean: np.ndarray, second: np.ndarray, count: np.ndarray,
        locate: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self._locate = locate
        self.leaves = leaves
        self.mean = mean
        self.second = second
        self.count = count
        self.n_trees = leaves.shape[0]
        self.s1 = mean[leaves].sum(axis=0)
        self.s2 = second[leaves].sum(axis=0)
        self._adds = 0  # adds since the tracked points last changed
        self._index: tuple[np.ndarray, np.ndarray] | None = None  # tracked (tree, point) entries by leaf id

    def __len__(self) -> int:
        return self.leaves.shape[1]

    def locate(self, X: np.ndarray) -> np.ndarray:
        """Leaf ids of encoded points ``X``: the handles the other methods take."""
        assert self._locate is not None, "a view made without its forest"
        return self._locate(X)

    def mean_at(self, i: int) -> float:
        """The mean of tracked point ``i``."""
        return float(self.s1[i]) / self.n_trees

    def add_at(self, i: int, y: float, spread: bool = True, track: bool = True) -> None:
        """Fold ``y`` at tracked point ``i`` (see :meth:`add`)."""
        self.add(self.leaves[:, i], y, spread=spread, track=track)

    def fresh_at(self, idx: Any) -> tuple[Any, Any]:
        """Mean and standard deviation of tracked point(s) ``idx`` from the leaf
        statistics themselves (right after folds made with ``track=False``)."""
        return self.peek(np.ascontiguousarray(self.leaves[:, idx]))  # (contiguous: summed as peek sums)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of every point, shapes (n,)."""
        return self._moments(self.s1, self.s2)

    def _moments(self, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = s1 / self.n_trees
        var = s2 / self.n_trees - mu * mu
        return mu, np.sqrt(np.maximum(var, 0.0))

    def peek_mean(self, leaves: np.ndarray) -> np.ndarray:
        """The mean alone of :meth:`peek` (what a believer's lie needs)."""
        return self.mean[leaves].sum(axis=0) / self.n_trees

    def peek(self, leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of other points (their leaf ids, shape
        (n_trees, m)) under the current statistics, without adding them."""
        return self._moments(self.mean[leaves].sum(axis=0), self.second[leaves].sum(axis=0))

    def extend(self, leaves: np.ndarray) -> None:
        """Append points (their leaf ids, shape (n_trees, m)) to the view."""
        self.leaves = np.hstack([self.leaves, leaves])
        self._adds, self._index = 0, None
        self.s1 = np.concatenate([self.s1, self.mean[leaves].sum(axis=0)])
        self.s2 = np.concatenate([self.s2, self.second[leaves].sum(axis=0)])

    def add(self, point_leaves: np.ndarray, y: float, weight: float = 1.0, spread: bool = True,
            track: bool = True) -> None:
        """Fold an observation ``y`` at a point into its leaves (one per tree).

        Args:
            point_leaves: the point's global leaf ids, shape (n_trees,).
            y: the value it is assumed (a lie) or known to have.
            weight: how many samples it counts for.
            spread: count ``y``'s distance from the leaf mean as spread
                (an observation). False moves the mean only and shrinks the
                spread as one more sample would (a lie: a pending point makes
                its leaves less uncertain, not more).
            track: also update the tracked points' sums; False leaves them
                stale (read points with :meth:`fresh_at` then): one fold of a
                long batch costs a few small array operations, not a pass
                over every tracked point that shares a leaf.
        """
        n = self.count[point_leaves]
        m = self.mean[point_leaves]
        s = self.second[point_leaves]
        n_new, m_new, s_new = _merged(n, m, s, weight, weight * y, weight * y * y, spread)
        self.mean[point_leaves] = m_new
        self.second[point_leaves] = s_new
        self.count[point_leaves] = n_new
        if len(self) and track:
            self._adds += 1
            if self._adds <= _DENSE_ADDS:
                hit = self.leaves == point_leaves[:, None]  # (n_trees, n_points)
                self.s1 += (m_new - m) @ hit
                self.s2 += (s_new - s) @ hit
            else:  # a long batch: look the point's leaves up in an index of the tracked points
                pts, trees = self._sharing(point_leaves)
                if len(pts):
                    n_pts = len(self)
                    self.s1 += np.bincount(pts, weights=(m_new - m)[trees], minlength=n_pts)
                    self.s2 += np.bincount(pts, weights=(s_new - s)[trees], minlength=n_pts)

    def _sharing(self, point_leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The tracked points that share a leaf with a point, and in which tree
        (one entry per tree and point), from an index sorted by leaf id: built
        once the tracked points stop changing, then each lookup costs a
        binary search instead of a pass over every tracked point."""
        if self._index is None:
            flat = self.leaves.ravel()  # entry t * n + p: tree t, point p
            order = np.argsort(flat, kind="stable")
            self._index = (flat[order], order)
        ids, order = self._index
        lo = np.searchsorted(ids, point_leaves, side="left")
        counts = np.searchsorted(ids, point_leaves, side="right") - lo
        total = int(counts.sum())
        if not total:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
        entries = order[starts]
        return entries % len(self), np.repeat(np.arange(len(point_leaves)), counts)

    def add_many(self, leaves: np.ndarray, y: np.ndarray | float, spread: bool = True) -> None:
        """Fold many observations at once: the same statistics as calling
        :meth:`add` for each point in turn, in one vectorized pass.

        Args:
            leaves: the points' global leaf ids, shape (n_trees, m).
            y: their values, shape (m,), or one value for all.
            spread: as for :meth:`add`.
        """
        if leaves.size == 0:
            return
        m = leaves.shape[1]
        y = np.broadcast_to(np.asarray(y, dtype=float), (m,))
        flat = leaves.ravel()
        yy = np.tile(y, leaves.shape[0])
        # Counts over the node ids themselves (no sort): linear in the points
        # and the forest's size, which matters with thousands of pending points.
        size = len(self.mean)
        counts = np.bincount(flat, minlength=size)
        nodes = np.flatnonzero(counts)
        k = counts[nodes].astype(float)
        s1 = np.bincount(flat, weights=yy, minlength=size)[nodes]
        s2 = np.bincount(flat, weights=yy * yy, minlength=size)[nodes] if spread else None  # (a lie: unused)
        n_new, m_new, s_new = _merged(self.count[nodes], self.mean[nodes], self.second[nodes], k, s1, s2, spread)
        self.mean[nodes] = m_new
        self.second[nodes] = s_new
        self.count[nodes] = n_new
        if len(self):
            self.s1 = self.mean[self.leaves].sum(axis=0)
            self.s2 = self.second[self.leaves].sum(axis=0)
