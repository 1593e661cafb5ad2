"""Hardware-aware assignment in the spirit of SHADHO (Kinnison et al., WACV 2018).

When workers differ (GPU ranks and CPU ranks), the configurations that most
need the strong hardware should go there. SHADHO ranks *models* (subspaces
of the search space) by two heuristics and hands the ranks out to the
compute classes, the most capable class getting the top of the ranking:

* complexity, the aggregate size of a model's hyperparameter domains:
  ``C(s_i) = 2 + |b - a|`` for a continuous domain, ``[a, b]`` the interval
  that holds 99% of its probability, and ``C(s_i) = 2 - 1/|s_i|`` for a
  discrete one of ``|s_i|`` values; a model's complexity is the product
  over its hyperparameters, ``C(M) = prod_i C(s_i)``. Here the model of a
  configuration is the subspace of its *active* hyperparameters (a deeper
  chain has more), and continuous domains are measured on ambs's [0, 1]
  vector scale (uniform or log-uniform: ``|b - a| = 0.99``), so that units
  do not matter.
* priority, from the losses ``L`` a model has had so far (positive, lower
  is better): ``P(L) = 1/min(L) - 1/max(L)``, large when the model's
  performance varies a lot (it is worth exploring further).

:func:`assign` splits a ranking among compute classes in proportion to
their numbers of workers. :class:`ShadhoAssigner` connects it to the driver
(``ambs search --assign shadho``): when an evaluator's workers are of more
than one kind (``gpu`` and ``cpu`` MPI ranks), the driver holds a few
proposed configurations back, ranks them, and the free workers of each kind
take the configurations of their share of the ranking, so the most complex
ones tend to run on the most capable workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ambs.space import _KIND_CONSTANT, _KIND_NUMERIC, Space

__all__ = ["CAPABILITY", "ShadhoAssigner", "assign", "by_capability", "complexity", "domain_complexity",
           "priority"]

COVERAGE = 0.99  # the share of a continuous domain's probability that counts
CAPABILITY = ("gpu", "cpu")  # worker kinds, most capable first; other kinds come after, by name


def domain_complexity(space: Space, i: int) -> float:
    """C(s_i) of hyperparameter ``i``: 2 + |b - a| if continuous, 2 - 1/|s_i| if discrete."""
    if space.kinds[i] == _KIND_NUMERIC:
        return 2.0 + COVERAGE
    size = 1 if space.kinds[i] == _KIND_CONSTANT else int(space.sizes[i])
    return 2.0 - 1.0 / max(size, 1)


def complexity(space: Space, configs: Sequence[dict[str, Any]]) -> np.ndarray:
    """C(M) = prod C(s_i) over the active hyperparameters of each configuration, shape (n,)."""
    X = space.to_vectors(list(configs))
    c = np.array([domain_complexity(space, i) for i in range(space.dim)])
    return np.array([float(np.prod(c[np.isfinite(x)])) for x in X])


def priority(losses: Sequence[float]) -> float:
    """P(L) = 1/min(L) - 1/max(L) of a model's positive losses; 0 with fewer than two."""
    L = np.asarray([v for v in losses if v is not None and math.isfinite(v)], dtype=float)
    if len(L) < 2:
        return 0.0
    if (L <= 0).any():
        raise ValueError("priority needs positive losses (e.g. an error rate, 1 - accuracy)")
    return float(1.0 / L.min() - 1.0 / L.max())


def assign(scores: Sequence[float], classes: Sequence[tuple[str, int]]) -> list[str]:
    """The compute class of each item, by rank of ``scores`` (highest first).

    ``classes`` are (name, number of workers), most capable first. The
    ranking is cut into consecutive shares proportional to the numbers of
    workers (largest remainders), so with 2 GPU and 6 CPU workers the top
    quarter goes to the GPUs. Ties keep the items' order.
    """
    names = [c for c, _ in classes]
    counts = np.array([max(int(n), 0) for _, n in classes], dtype=float)
    if not len(names) or counts.sum() <= 0:
        raise ValueError("assign needs at least one class with workers")
    n = len(scores)
    exact = counts / counts.sum() * n
    share = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - share), kind="stable")[: n - int(share.sum())]:
        share[k] += 1
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    out = [""] * n
    pos = 0
    for name, k in zip(names, share):
        for idx in order[pos:pos + k]:
            out[int(idx)] = name
        pos += k
    return out


def by_capability(kinds: Sequence[str]) -> list[tuple[str, int]]:
    """(kind, number of workers) of ``kinds``, most capable first (see ``CAPABILITY``)."""
    counts: dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1

    def rank(kind: str) -> tuple[int, str]:
        return (CAPABILITY.index(kind) if kind in CAPABILITY else len(CAPABILITY), kind)

    return [(k, counts[k]) for k in sorted(counts, key=rank)]


@dataclass
class _Held:
    """A proposed job waiting for a worker of its share of the ranking."""

    config: dict[str, Any]
    budget: float | None
    cost: float  # C(M), times the budget's share of the full one when it has a budget
    model: tuple[bool, ...]  # which hyperparameters are active: the configuration's subspace
    born: int  # the number of jobs handed out when it was proposed


class ShadhoAssigner:
    """Hands held-back configurations to worker kinds by complexity, then priority.

    With one free worker at a time (the steady state of an asynchronous
    search) there is nothing to rank, so the driver keeps a small pool of
    proposed jobs: :meth:`pool_size` of them, enough that every kind's share
    of the ranking holds at least one (``ceil(workers / workers of the
    rarest kind)``). Each time workers free up, the pool is ranked, highest
    first, by the cost ``C(M)`` (times ``budget / full budget`` for a
    multi-fidelity job: a longer training is more work), ties between
    models of equal cost broken by the priority ``P(L)`` of the model;
    :func:`assign` cuts the ranking into shares by the numbers of workers of
    each kind, and a free worker takes the best job of its kind's share.

    Objectives are maximized, so a model's results ``y`` become the positive
    losses ``L = 1 + (top - y) / span`` (``top`` and ``span`` over every
    result so far), which keeps ``P`` free of the objective's units.

    A job never waits long: one held for ``pool_size`` hand-outs goes first
    to a worker of its kind, and one held for twice that to the next free
    worker of any kind.

    Args:
        space: the search's space (``search.space``).
        full_budget: the full training budget, for multi-fidelity jobs.
    """

    def __init__(self, space: Any, full_budget: float | None = None) -> None:
        self.space = space
        self.full_budget = full_budget
        self._c = np.array([domain_complexity(space, i) for i in range(space.dim)])
        self._held: list[_Held] = []
        self._given = 0
        self._results: dict[tuple[bool, ...], list[float]] = {}

    @staticmethod
    def active(kinds: Sequence[str]) -> bool:
        """Whether workers of these kinds differ, so that assignment matters."""
        return len(set(kinds)) > 1

    @staticmethod
    def pool_size(kinds: Sequence[str]) -> int:
        """Jobs to rank at a time: enough for one in the share of the rarest kind."""
        classes = by_capability(kinds)
        return math.ceil(len(kinds) / min(n for _, n in classes)) if classes else 1

    @property
    def n_held(self) -> int:
        return len(self._held)

    def _models(self, configs: Sequence[dict[str, Any]]) -> list[tuple[tuple[bool, ...], float]]:
        X = self.space.to_vectors(list(configs))
        out = []
        for x in X:
            on = np.isfinite(x)
            out.append((tuple(bool(v) for v in on), float(np.prod(self._c[on]))))
        return out

    def tell(self, results: Sequence[tuple[dict[str, Any], float | None]]) -> None:
        """Record finished (configuration, objective) pairs; failures (None) carry no loss."""
        done = [(c, y) for c, y in results if y is not None and math.isfinite(y)]
        if not done:
            return
        for (model, _), (_, y) in zip(self._models([c for c, _ in done]), done):
            self._results.setdefault(model, []).append(float(y))

    def hold(self, jobs: Sequence[tuple[dict[str, Any], float | None]]) -> None:
        """Add proposed (configuration, budget) jobs to the pool."""
        if not jobs:
            return
        for (config, budget), (model, c) in zip(jobs, self._models([c for c, _ in jobs])):
            if budget is not None and self.full_budget:
                c *= float(budget) / self.full_budget
            self._held.append(_Held(config, budget, c, model, self._given))

    def release(self, n: int) -> list[tuple[dict[str, Any], float | None]]:
        """Take the ``n`` oldest held jobs out of the pool, whatever their rank."""
        out, self._held = self._held[:max(n, 0)], self._held[max(n, 0):]
        self._given += len(out)
        return [(h.config, h.budget) for h in out]

    def priorities(self) -> dict[tuple[bool, ...], float]:
        """P(L) of every model with results, from losses ``1 + (top - y) / span``."""
        ys = [y for v in self._results.values() for y in v]
        if not ys:
            return {}
        top, span = max(ys), (max(ys) - min(ys)) or 1.0
        return {m: priority([1.0 + (top - y) / span for y in v]) for m, v in self._results.items()}

    def _scores(self) -> np.ndarray:
        """Each held job's place in the ranking by (cost, priority), 0 the lowest."""
        prio = self.priorities()
        cost = np.array([h.cost for h in self._held])
        p = np.array([prio.get(h.model, 0.0) for h in self._held])
        ranks = np.empty(len(self._held))
        ranks[np.lexsort((p, cost))] = np.arange(len(self._held))
        return ranks

    def take(
        self, free: Sequence[str], fleet: Sequence[str], limit: int | None = None,
    ) -> list[tuple[dict[str, Any], float | None, str]]:
        """Jobs for the free workers of kinds ``free``, as (configuration, budget, kind).

        ``fleet`` holds the kind of every worker, busy or free: the shares of
        the ranking follow it. The most capable free workers are served
        first; at most one job each and ``limit`` in all, fewer when the
        pool runs dry.
        """
        patience = self.pool_size(fleet)
        out: list[tuple[dict[str, Any], float | None, str]] = []
        limit = len(free) if limit is None else limit
        for kind, n in by_capability(free):
            for _ in range(n):
                if not self._held or len(out) >= limit:
                    return out
                scores = self._scores()
                labels = assign(scores, by_capability(fleet))
                ages = np.array([self._given - h.born for h in self._held])
                mine = [i for i, k in enumerate(labels) if k == kind]
                oldest = int(np.argmax(ages))
                if ages[oldest] >= 2 * patience:
                    i = oldest
                elif mine:
                    aged = [j for j in mine if ages[j] >= patience]
                    i = max(aged, key=lambda j: ages[j]) if aged else max(mine, key=lambda j: scores[j])
                else:
                    i = oldest
                h = self._held.pop(i)
                self._given += 1
                out.append((h.config, h.budget, kind))
        return out
