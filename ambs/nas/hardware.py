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
their numbers of workers. The evaluators do not call this yet: it is a pure
function to schedule with (see the README).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ambs.space import _KIND_CONSTANT, _KIND_NUMERIC, Space

__all__ = ["domain_complexity", "complexity", "priority", "assign"]

COVERAGE = 0.99  # the share of a continuous domain's probability that counts


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
