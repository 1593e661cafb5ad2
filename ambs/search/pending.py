"""Where AMBS's pending points fall in its forest, kept between proposals.

Every proposal round folds a lie for each pending point into the forest's
leaves; with thousands of workers, finding those leaves is most of the
round's fixed cost. The leaves of a point in one model never change, so they
are looked up once per model and kept: by the fit itself for the points
pending when it began (off the dispatch path, :class:`ambs.search.fit_task.FitTask`),
by the master for those asked since.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["PendingLeaves"]


class PendingLeaves:
    """Leaf ids of pending points in one model, by configuration key."""

    def __init__(self) -> None:
        self.model: Any = None
        self.cols: dict[str, np.ndarray] = {}

    def seed(self, model: Any, keys: list[str], leaves: np.ndarray) -> None:
        """Take the leaves (n_trees, len(keys)) a fit looked up for ``model``."""
        self.model, self.cols = model, dict(zip(keys, leaves.T))

    def locate(self, model: Any, find: Callable[[np.ndarray], np.ndarray], pending: Mapping[str, np.ndarray],
               encode: Callable[[np.ndarray], np.ndarray], extra: np.ndarray) -> np.ndarray:
        """Leaf ids (n_trees, n) of the ``pending`` points (key -> vector, in
        order), then of the vectors ``extra``, looking up only what is new;
        ``find``: encoded points to their leaves in ``model``."""
        if self.model is not model:
            self.model, self.cols = model, {}
        cols = self.cols
        keys = list(pending)
        new = [k for k in keys if k not in cols]
        if new:
            found = find(encode(np.array([pending[k] for k in new])))
            cols.update(zip(new, found.T))
        if len(cols) > 2 * len(keys) + 64:  # told points leave
            self.cols = cols = {k: cols[k] for k in keys}
        parts = [np.stack([cols[k] for k in keys], axis=1)] if keys else []
        if len(extra):
            parts.append(find(encode(extra)))
        return np.hstack(parts)
