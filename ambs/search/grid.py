"""Grid search over discrete values and evenly spaced numerical points."""

from __future__ import annotations

import numpy as np
from ConfigSpace import ConfigurationSpace

from ambs.problem import Problem
from ambs.search.base import Search

__all__ = ["GridSearch"]


class GridSearch(Search):
    """Every combination of a grid, in a seeded random order.

    Args:
        steps: points per numerical axis (integers use at most their range).
        shuffle: visit the grid in random order (a search cut short then
            still covers the whole space coarsely); False keeps lexical order.
    """

    def __init__(
        self,
        problem: Problem | ConfigurationSpace,
        random_state: int | None = None,
        steps: int = 5,
        shuffle: bool = True,
    ) -> None:
        super().__init__(problem, random_state)
        if steps < 2:
            raise ValueError("grid steps must be at least 2")
        grid = self.space.grid(steps)
        if shuffle:
            grid = grid[np.random.default_rng(self.random_state).permutation(len(grid))]
        self.grid = grid
        self._keys = self.space.keys(grid)
        self._cursor = 0  # everything before it was proposed or told

    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = []
        i = self._cursor
        while len(rows) < n and i < len(self.grid):
            if self._keys[i] not in self._seen:
                rows.append(i)
            i += 1
        self._cursor = i
        return self.grid[rows]

    @property
    def exhausted(self) -> bool:
        while self._cursor < len(self.grid) and self._keys[self._cursor] in self._seen:
            self._cursor += 1
        return self._cursor >= len(self.grid)
