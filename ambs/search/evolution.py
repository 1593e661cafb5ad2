"""Aging (regularized) evolution (Real et al.): tournaments over the youngest P results.

The population is the last ``population_size`` evaluations told, in the
order they were told: each new result joins on the right and the oldest
leaves on the left, whatever its objective (aging, not killing the worst).
Each child comes from its own tournament: ``sample_size`` members drawn at
random, the best one the parent, one of its choices mutated. Asynchronous:
``ask(n)`` runs n tournaments, one child per free worker. Until the
population is full (results told plus pending), proposals are random. For
a problem with several declared objectives, a tournament's winner is drawn
from the members no other member of the sample dominates.

:class:`Lemonade` (``--method lemonade``) follows LEMONADE (Elsken et al.
2019) instead, with a *cheap objective* (``problem.cheap_objective(config)
-> float``, maximized, e.g. minus the parameter count, known before
training) next to the told one: parents are drawn from
the Pareto front of (objective, cheap objective) over the population, and of
``n_candidates`` children the ones in sparse regions of the cheap objective
are accepted, with probability proportional to ``1 / p_KDE(f_cheap(child))``,
``p_KDE`` a kernel density estimate over the population's cheap objectives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ambs.objectives import nondominated
from ambs.pareto import pareto_mask
from ambs.search.base import Result, Search
from ambs.space import _KIND_INTEGER, _KIND_NUMERIC

__all__ = ["AgingEvolution", "Lemonade", "mutate_one", "pareto_mask"]


def mutate_one(space: Any, x: np.ndarray, rng: np.random.Generator, scale: float = 0.15) -> np.ndarray:
    """Change exactly one active choice of vector ``x`` (Real et al.'s mutation).

    Categorical and ordinal: another value; integer: one unit up or down;
    real: a Gaussian step of ``scale`` (reflected into [0, 1]). Choices the
    change activates are sampled, those it deactivates dropped.
    """
    out = np.array(x, dtype=float, copy=True)
    active = np.flatnonzero(np.isfinite(out) & (space.sizes != 1))
    if not len(active):
        return space.repair(out[None], rng)[0]
    i = int(rng.choice(active))
    kind = space.kinds[i]
    if kind == _KIND_NUMERIC:
        v = out[i] + rng.normal(0.0, scale)
        v = -v if v < 0 else (2 - v if v > 1 else v)
        out[i] = float(np.clip(v, 0.0, 1.0))
    elif kind == _KIND_INTEGER:
        hp = space.hps[i]
        old = int(hp.to_value(np.array([out[i]]))[0])
        step = 1 if rng.random() < 0.5 else -1
        new = old + step
        if new < hp.lower or new > hp.upper:
            new = old - step
        out[i] = float(hp.to_vector(np.array([new]))[0])
    else:
        size = int(space.sizes[i])
        out[i] = float((int(out[i]) + rng.integers(1, size)) % size)
    # NaN entries are sampled by repair, then conditions keep only the active ones.
    rep = space.repair(out[None], rng)
    return rep[0] if len(rep) else np.array(x, dtype=float, copy=True)


class AgingEvolution(Search):
    """Regularized evolution; LEMONADE-style when given a cheap objective.

    Args:
        problem: the problem or ConfigSpace space.
        random_state: seed.
        population_size: P, how many of the latest results form the population.
        sample_size: S, tournament size (at most P).
        n_candidates: LEMONADE only: children generated per accepted one.
        cheap_objective: a cheap objective of a configuration (maximized): parents
            then come from the Pareto front and children are chosen by density.
    """

    architecture_search = True
    multi_objective = True

    def __init__(
        self,
        problem: Any,
        random_state: int | None = None,
        population_size: int = 20,
        sample_size: int = 5,
        n_candidates: int = 8,
        cheap_objective: Callable[[dict[str, Any]], float] | None = None,
    ) -> None:
        super().__init__(problem, random_state)
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise ValueError("evolution needs population_size >= 2 and 1 <= sample_size <= population_size")
        if n_candidates < 1:
            raise ValueError("n_candidates must be at least 1")
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.n_candidates = int(n_candidates)
        self.cheap_objective = cheap_objective
        # (vector, loss) of the latest results, oldest on the left.
        self.population: deque[tuple[np.ndarray, float]] = deque(maxlen=self.population_size)
        # Several objectives: the members' losses, in the same order.
        self.population_losses: deque[np.ndarray] = deque(maxlen=self.population_size)

    def tell(self, results: Iterable[Result]) -> None:
        results = list(results)
        start = self.n_told
        super().tell(results)
        for i, (x, y) in enumerate(zip(self._X[start:], self._y[start:]), start=start):
            self.population.append((x, y))
            if self.objectives:
                self.population_losses.append(self._L[i])

    # ------------------------------------------------------------ proposing
    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out: list[np.ndarray] = []
        batch: set[bytes] = set()
        n_random = max(0, self.population_size - len(self.population) - self.n_pending)
        losses = np.array([y for _, y in self.population], dtype=float)
        can_evolve = bool(np.isfinite(losses).any())
        for _ in range(n):
            child = None
            if len(out) >= n_random and can_evolve:
                child = self._child(rng, batch)
            if child is None:
                extra = self._random_unseen(1 + len(batch), rng)
                fresh = [x for x in extra if self.space.keys(x)[0] not in batch]
                if not fresh:
                    break
                child = fresh[0]
            batch.add(self.space.keys(child)[0])
            out.append(child)
        return np.array(out) if out else np.empty((0, self.space.dim))

    def _is_unseen(self, x: np.ndarray, batch: set[bytes]) -> bool:
        k = self.space.keys(x)[0]
        return k not in self._seen and k not in batch

    def _child(self, rng: np.random.Generator, batch: set[bytes]) -> np.ndarray | None:
        """A mutated child of a tournament winner that was never proposed, or None."""
        if self.cheap_objective is not None:
            return self._lemonade_child(rng, batch)
        for _ in range(20):
            parent = self._tournament(rng)
            for _ in range(5):
                child = mutate_one(self.space, parent, rng)
                if self._is_unseen(child, batch):
                    return child
        return None

    def _tournament(self, rng: np.random.Generator) -> np.ndarray:
        """The best of ``sample_size`` members drawn without replacement (failures lose)."""
        idx = rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
        if self.objectives:
            L = np.array([self.population_losses[i] for i in idx], dtype=float)
            best = np.flatnonzero(nondominated(L))
            if len(best):
                return self.population[int(idx[int(rng.choice(best))])][0]
        losses = np.array([self.population[i][1] for i in idx], dtype=float)
        losses = np.where(np.isnan(losses), np.inf, losses)
        return self.population[int(idx[int(np.argmin(losses))])][0]

    # ----------------------------------------------------------- LEMONADE
    def _cheap(self, X: list[np.ndarray] | np.ndarray) -> np.ndarray:
        return np.array([float(self.cheap_objective(c)) for c in self.space.to_dicts(np.array(X))])

    def _lemonade_child(self, rng: np.random.Generator, batch: set[bytes]) -> np.ndarray | None:
        members = [x for x, y in self.population if np.isfinite(y)]
        losses = np.array([y for _, y in self.population if np.isfinite(y)])
        cheap = self._cheap(members)
        if self.objectives:  # the declared objectives, the cheap one among them
            L = np.array([v for (_, y), v in zip(self.population, self.population_losses) if np.isfinite(y)])
            front = np.flatnonzero(nondominated(L))
        else:
            front = np.flatnonzero(pareto_mask(np.column_stack([-losses, cheap])))
        # Parents: the front, weighted toward sparse regions of the cheap objective.
        w = 1.0 / _kde(cheap, cheap[front])
        candidates = []
        for _ in range(self.n_candidates * 4):
            parent = members[int(front[rng.choice(len(front), p=w / w.sum())])]
            child = mutate_one(self.space, parent, rng)
            if self._is_unseen(child, batch):
                candidates.append(child)
            if len(candidates) >= self.n_candidates:
                break
        if not candidates:
            return None
        pc = 1.0 / _kde(cheap, self._cheap(candidates))
        return candidates[int(rng.choice(len(candidates), p=pc / pc.sum()))]


class Lemonade(AgingEvolution):
    """LEMONADE-style multi-objective evolution over (objective, cheap objective).

    The cheap objective is ``problem.cheap_objective`` (the NAS problems give
    minus the parameter count); without one, minus the number of active
    hyperparameters, a rough size of the configuration.
    """

    def __init__(self, problem: Any, random_state: int | None = None, **kw: Any) -> None:
        super().__init__(problem, random_state, **kw)
        if self.cheap_objective is None:
            self.cheap_objective = self.problem.cheap_objective or (lambda c: -float(len(c)))

    def pareto_front(self) -> list[tuple[dict[str, Any], float, float]]:
        """(configuration, objective, cheap objective) of every told result no
        other dominates in these two (:meth:`front` for the declared objectives)."""
        ok = [(x, -y) for x, y in zip(self._X, self._y) if np.isfinite(y)]
        if not ok:
            return []
        cheap = self._cheap([x for x, _ in ok])
        mask = pareto_mask(np.column_stack([[o for _, o in ok], cheap]))
        configs = self.space.to_dicts(np.array([x for x, _ in ok]))
        return [(configs[i], ok[i][1], float(cheap[i])) for i in np.flatnonzero(mask)]


def _kde(sample: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``sample`` at ``at`` (Scott's bandwidth), floored above 0."""
    sample = np.asarray(sample, dtype=float)
    sd = float(sample.std()) or 1.0
    h = 1.06 * sd * len(sample) ** (-0.2)
    z = (np.asarray(at, dtype=float)[:, None] - sample[None, :]) / h
    return np.exp(-0.5 * z**2).mean(axis=1) / (h * np.sqrt(2 * np.pi)) + 1e-12
