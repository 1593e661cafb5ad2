"""Random search: configurations drawn from the space's distributions."""

from __future__ import annotations

import numpy as np

from ambs.search.base import Search

__all__ = ["RandomSearch"]


class RandomSearch(Search):
    """Independent random samples, never repeating a configuration."""

    multi_objective = True  # it ignores the objectives, whatever their number
    learns_from_results = False

    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._random_unseen(n, rng)
