"""Where AMBS's pending points fall in its forest, kept between proposals.

Every proposal round folds a lie for each pending point into the forest's
leaves; with thousands of workers, finding those leaves is most of the
round's fixed cost. The leaves of a point in one model never change, so they
are looked up once per model and kept: by the fit itself for the points
pending when it began (off the dispatch path, :class:`ambs.search.fit_task.FitTask`),
by the master for those asked since.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

__all__ = ["PendingLeaves"]


class PendingLeaves:
    """Leaf ids of pending points in one model, by configuration key: the
    columns of one growing matrix, so that a round gathers them in one step."""

    def __init__(self) -> None:
        self.model: Any = None
        self._reset()

    def _reset(self) -> None:
        self.pos: dict[Hashable, int] = {}  # key -> its column of mat
        self.mat: np.ndarray | None = None  # (n_trees, capacity); columns past n unused
        self.n = 0

    def seed(self, model: Any, keys: list[Hashable], leaves: np.ndarray) -> None:
        """Take the leaves (n_trees, len(keys)) a fit looked up for ``model``."""
        self.model = model
        self._reset()
        if len(keys):  # the fit's own array, full: the first new point grows it
            self.mat, self.n = leaves, len(keys)
            self.pos.update(zip(keys, range(self.n)))

    def _append(self, keys: list[Hashable], leaves: np.ndarray) -> None:
        m = len(keys)
        if not m:
            return
        if self.mat is None or self.n + m > self.mat.shape[1]:
            # A quarter to spare: with tens of thousands pending, a doubled matrix
            # is tens of megabytes of the master's memory that are never used.
            need = self.n + m
            grown = np.empty((leaves.shape[0], max(need + need // 4, 64)), dtype=leaves.dtype)
            if self.mat is not None:
                grown[:, : self.n] = self.mat[:, : self.n]
            self.mat = grown
        self.mat[:, self.n : self.n + m] = leaves
        self.pos.update(zip(keys, range(self.n, self.n + m)))
        self.n += m

    def locate(self, model: Any, find: Callable[[np.ndarray], np.ndarray], pending: Mapping[Hashable, np.ndarray],
               encode: Callable[[np.ndarray], np.ndarray], extra: np.ndarray) -> np.ndarray:
        """Leaf ids (n_trees, n) of the ``pending`` points (key -> vector, in
        order), then of the vectors ``extra``, looking up only what is new;
        ``find``: encoded points to their leaves in ``model``."""
        if self.model is not model:
            self.model = model
            self._reset()
        keys = list(pending)
        new = [k for k in keys if k not in self.pos]
        if new:
            self._append(new, find(encode(np.array([pending[k] for k in new]))))
        parts = []
        if keys:
            assert self.mat is not None
            idx = np.fromiter((self.pos[k] for k in keys), dtype=np.intp, count=len(keys))
            parts.append(self.mat[:, idx])
            if self.n > 2 * len(keys) + 64:  # told points leave: keep only the pending ones
                self.mat, self.n = parts[0].copy(), len(keys)
                self.pos = dict(zip(keys, range(len(keys))))
        if len(extra):
            parts.append(find(encode(extra)))
        return np.hstack(parts)
