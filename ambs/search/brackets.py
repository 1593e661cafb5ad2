"""The rungs of successive halving: budgets per rung, and one bracket's state
(who was asked, who finished, who is due for promotion) under the
synchronous rule (a rung full before promotions) or the asynchronous ones
(``sha``: top ``1/eta`` so far; ``median``: at least the rung's median).

With several objectives a rung's results are loss vectors, ranked by
:func:`ambs.pareto.pareto_order` (front, then crowding): "top" and "median"
are positions in that order."""

from __future__ import annotations

import math

import numpy as np

from ambs.pareto import pareto_order

__all__ = ["RULES", "Bracket", "hyperband_brackets", "s_max_for"]

RULES = ("sha", "median")  # promotion rules of the asynchronous search


def s_max_for(ratio: float, eta: int) -> int:
    """``floor(log_eta(ratio))``, exact for powers of ``eta`` (no float log)."""
    s = 0
    while eta ** (s + 1) <= ratio * (1 + 1e-9):
        s += 1
    return s


def hyperband_brackets(R: float, eta: int = 3) -> list[list[tuple[int, float]]]:
    """The brackets of Hyperband (Li et al., Algorithm 1), ``s = s_max .. 0``.

    Each bracket is its successive-halving rungs ``(n_i, r_i)``:
    ``n = ceil(B/R * eta^s / (s+1))`` with ``B = (s_max+1) R``, ``r = R eta^-s``,
    ``n_i = floor(n eta^-i)``, ``r_i = r eta^i`` for ``i = 0..s``. Budgets are
    in units of the smallest budget (``r_0`` of the last bracket is ``R``).
    """
    if eta < 2 or int(eta) != eta:
        raise ValueError(f"eta must be a whole number >= 2, got {eta}")
    eta = int(eta)
    if not R >= 1:
        raise ValueError(f"R must be at least 1, got {R}")
    s_max = s_max_for(R, eta)
    out = []
    for s in range(s_max, -1, -1):
        n = -(-((s_max + 1) * eta**s) // (s + 1))  # ceil in integers
        out.append([(n // eta**i, R / eta ** (s - i)) for i in range(s + 1)])
    return out


def _ok(loss: float | np.ndarray) -> bool:
    """A told loss (one, or one per objective) that counts: every entry finite."""
    return bool(np.isfinite(loss).all())


class Bracket:
    """The rungs of one successive-halving run: who was asked at which budget,
    and the losses told (NaN: failed; a failure is never promoted); a loss is
    a vector of the objectives' losses when the problem declares several.

    With ``sizes`` (synchronous successive halving) rung ``i`` takes
    ``sizes[i]`` configurations, and rung ``i+1`` starts only when every result
    of rung ``i`` is in (the rung barrier): its top ``sizes[i+1]`` are promoted.
    Without (asynchronous), rung 0 is unbounded and a result is promoted as
    soon as the rule allows, with no barrier.
    """

    def __init__(self, budgets: list[float], sizes: list[int] | None, eta: int, rule: str = "sha") -> None:
        self.budgets = budgets
        self.sizes = sizes
        self.eta = eta
        self.rule = rule
        self.results: list[dict[str, float | np.ndarray]] = [{} for _ in budgets]  # key -> loss, in told order
        self._ranked: dict[int, list[str]] = {}  # rung -> its finite results' keys, best first
        self.asked: list[set[str]] = [set() for _ in budgets]  # keys handed out at each rung
        self.due: list[list[str]] = [[] for _ in budgets]  # median rule: promotions decided, not yet asked
        self.closed = False  # no new configuration can be drawn (finite space used up)
        self.retired: set[str] = set()  # keys left behind at a completed rung, handed out as retired

    @property
    def top(self) -> int:
        return len(self.budgets) - 1

    def rung_of(self, budget: float) -> int | None:
        for i, b in enumerate(self.budgets):
            if math.isclose(b, budget, rel_tol=1e-9):
                return i
        return None

    def best(self, rung: int, k: int) -> list[str]:
        """The keys of a rung's ``k`` best finite results: lowest loss first, or
        in Pareto order for several objectives (ties by told order)."""
        return self.ranked(rung)[: max(k, 0)]

    def ranked(self, rung: int) -> list[str]:
        """A rung's finite results' keys, best first (kept until the rung changes)."""
        if rung not in self._ranked:
            items = [(key, loss) for key, loss in self.results[rung].items() if _ok(loss)]
            if items and np.ndim(items[0][1]):
                order = pareto_order(np.array([loss for _, loss in items]))
                self._ranked[rung] = [items[i][0] for i in order]
            else:
                ranks = sorted(range(len(items)), key=lambda j: (items[j][1], j))
                self._ranked[rung] = [items[j][0] for j in ranks]
        return self._ranked[rung]

    # ------------------------------------------------------------ synchronous
    def complete(self, i: int) -> bool:
        """Every configuration rung ``i`` will get was asked and told."""
        assert self.sizes is not None
        if i == 0:
            full = len(self.asked[0]) >= self.sizes[0] or self.closed
        else:
            full = self.complete(i - 1) and set(self.promotions(i)) <= self.asked[i]
        return full and len(self.results[i]) == len(self.asked[i])

    def promotions(self, i: int) -> list[str]:
        """SHA: the top ``n_i = floor(n_{i-1}/eta)`` of rung ``i-1`` (Li et al., top_k)."""
        assert self.sizes is not None
        return self.best(i - 1, self.sizes[i])

    @property
    def done(self) -> bool:
        if self.sizes is None:
            return False
        return self.complete(self.top)

    # ---------------------------------------------------------------- common
    def next_job(self) -> tuple[int, str | None] | None:
        """(rung, key) of the next promotion, (0, None) for a new configuration, or None."""
        for i in range(self.top, 0, -1):
            if self.sizes is not None:
                if not self.complete(i - 1):
                    continue
                due = [k for k in self.promotions(i) if k not in self.asked[i]]
            elif self.rule == "median":
                due = [k for k in self.due[i] if k not in self.asked[i]]
            else:
                # ASHA (Li et al. 2020, get_job): the top 1/eta of the rung so far.
                n = len(self.results[i - 1])
                due = [k for k in self.best(i - 1, n // self.eta) if k not in self.asked[i]]
            if due:
                return i, due[0]
        if self.closed:
            return None
        if self.sizes is None or len(self.asked[0]) < self.sizes[0]:
            return 0, None
        return None

    def record(self, rung: int, key: str, loss: float | np.ndarray) -> None:
        self.asked[rung].add(key)
        self.results[rung][key] = loss
        self._ranked.pop(rung, None)
        if self.sizes is None and self.rule == "median" and rung < self.top and _ok(loss):
            # Median stopping: continue when at least as good as the median of
            # the rung's results so far (itself included), that is in the
            # better half of them; decided once, now.
            if np.ndim(loss):
                ranked = self.ranked(rung)
                better_half = key in ranked[: -(-len(ranked) // 2)]
            else:
                better_half = loss <= np.median([v for v in self.results[rung].values() if _ok(v)])
            if better_half:
                self.due[rung + 1].append(key)
