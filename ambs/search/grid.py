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

    multi_objective = True  # it ignores the objectives, whatever their number
    learns_from_results = False

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
        self._axes = self.space.grid_axes(steps)  # a grid too large is refused here
        self.shuffle = shuffle
        self._grid: np.ndarray | None = None
        self._keys: list[bytes] = []
        self._cursor = 0  # everything before it was proposed or told

    @property
    def grid(self) -> np.ndarray:
        """Every point, in visiting order. Enumerated at the first use (up to 5e6
        points, seconds): a search made only to check its options costs nothing."""
        if self._grid is None:
            grid = self.space.grid_points(self._axes)
            if self.shuffle:
                grid = grid[np.random.default_rng(self.random_state).permutation(len(grid))]
            self._grid, self._keys = grid, self.space.keys(grid)
        return self._grid

    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        grid = self.grid
        rows = []
        i = self._cursor
        while len(rows) < n and i < len(grid):
            if self._keys[i] not in self._seen:
                rows.append(i)
            i += 1
        self._cursor = i
        return grid[rows]

    @property
    def exhausted(self) -> bool:
        grid = self.grid
        while self._cursor < len(grid) and self._keys[self._cursor] in self._seen:
            self._cursor += 1
        return self._cursor >= len(grid)
