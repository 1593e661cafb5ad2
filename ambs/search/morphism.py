"""Hill climbing by network morphisms (Elsken et al. 2018), asynchronous.

The parent is the best network told so far (at first the problem's starting
point, the smallest network). Each free worker gets a child of the parent
one morphism away (widen, grow a kernel, deepen, add a skip; see
:mod:`ambs.nas.morph`), drawn at random among those never proposed. When a
child beats its parent it becomes the next parent. Weight inheritance is
the problem's side: a NAS problem run with ``$AMBS_CHECKPOINT_DIR`` set
(``ambs search --method morphism`` sets it to ``RUN_DIR/checkpoints``)
stores every trained network there and starts each child from its best
stored parent, so a child only needs a short training (cosine annealing).

On a space that is not an architecture space (no ``problem.arch``), or when
the parent has no unseen morphism left, it climbs with one-choice mutations
of the parent instead, and falls back to random configurations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ambs.search.base import Search
from ambs.search.evolution import mutate_one

__all__ = ["MorphismSearch"]


class MorphismSearch(Search):
    """Greedy hill climbing over network morphisms of the best network so far."""

    architecture_search = True

    def __init__(self, problem: Any, random_state: int | None = None) -> None:
        super().__init__(problem, random_state)
        self.arch = self.problem.arch

    def parent(self) -> np.ndarray | None:
        """The current parent: the best told result, else the first starting point."""
        y = np.array(self._y, dtype=float)
        if np.isfinite(y).any():
            return self._X[int(np.nanargmin(y))]
        if self.problem.starting_points:
            return self.space.to_vectors(self.problem.starting_points[:1])[0]
        return None

    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out: list[np.ndarray] = []
        batch: set[bytes] = set()

        def take(x: np.ndarray) -> bool:
            k = self.space.keys(x)[0]
            if k in self._seen or k in batch:
                return False
            batch.add(k)
            out.append(x)
            return True

        parent = self.parent()
        if parent is not None:
            take(parent)  # the starting network, before anything was told
            children: list[np.ndarray] = []
            if self.arch is not None:
                from ambs.nas.morph import morphisms

                config = self.space.to_dicts(parent)[0]
                kids = [m.child for m in morphisms(config, self.arch)]
                if kids:
                    children = list(self.space.to_vectors(kids))
            for i in rng.permutation(len(children)):
                if len(out) >= n:
                    break
                take(children[i])
            tries = 0
            while len(out) < n and tries < 20 * n:
                take(mutate_one(self.space, parent, rng))
                tries += 1
        if len(out) < n:
            extra = self._random_unseen(n - len(out) + len(batch), rng)
            for x in extra:
                if len(out) >= n:
                    break
                take(x)
        return np.array(out[:n]) if out else np.empty((0, self.space.dim))
