"""Asynchronous model-based search: a tree-ensemble surrogate, an acquisition
function, and constant-liar proposals for every free worker.

One ``ask(n)``:

1. While the initial design lasts (starting points, then a Latin hypercube
   or random sample), hand out its next unseen points.
2. Otherwise fit the surrogate on the finite results (failures are left out,
   not fed as numbers) if anything new was told since the last fit.
3. Score a candidate pool: random samples of the space plus local moves
   around the best results. Pending points (asked, not told) enter the
   surrogate's leaves with the liar's value, so proposals spread out.
4. Take the best-scoring unseen candidate, fold its lie into the leaves,
   repeat ``n`` times: ``n`` points for the price of one fit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace
from scipy.stats import qmc

from ambs.acquisition import ACQUISITIONS, score
from ambs.problem import Problem
from ambs.search.base import Search
from ambs.surrogate import SURROGATES, ForestSurrogate, make_surrogate

__all__ = ["AMBS", "LIARS"]

LIARS = ("cl_max", "cl_mean", "cl_min")


class AMBS(Search):
    """Model-based search with a random-forest surrogate and constant liar.

    Args:
        problem: the search space (an ``ambs.Problem`` or ConfigSpace space).
        random_state: seed; the same seed and results give the same proposals.
        surrogate: ``"rf"`` (random forest) or ``"et"`` (extra trees).
        acquisition: ``"lcb"`` (= ``"ucb"`` on the maximized objective), ``"ei"`` or ``"pi"``.
        kappa: LCB exploration weight (1.96: a 95% optimistic bound).
        xi: EI/PI improvement margin, in objective units.
        liar: the value assumed for pending points, on the loss scale
            (``-objective``): ``"cl_max"`` (the worst result seen, default),
            ``"cl_mean"`` or ``"cl_min"`` (the best). The pessimistic
            ``cl_max`` pushes proposals away from running evaluations most
            strongly, which keeps many workers from crowding one basin.
        n_initial_points: size of the initial design (starting points included).
        initial_design: ``"lhs"`` (Latin hypercube) or ``"random"``.
        n_candidates: random candidates scored per ask.
        n_local: local moves scored around each of the best results.
        n_estimators, min_samples_leaf, max_features, n_jobs: surrogate settings.
    """

    def __init__(
        self,
        problem: Problem | ConfigurationSpace,
        random_state: int | None = None,
        surrogate: str = "rf",
        acquisition: str = "lcb",
        kappa: float = 1.96,
        xi: float = 0.01,
        liar: str = "cl_max",
        n_initial_points: int = 10,
        initial_design: str = "lhs",
        n_candidates: int = 2000,
        n_local: int = 100,
        n_estimators: int = 64,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(problem, random_state)
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r} (choose from {', '.join(SURROGATES)})")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r} (choose from {', '.join(ACQUISITIONS)})")
        if liar not in LIARS:
            raise ValueError(f"unknown liar {liar!r} (choose from {', '.join(LIARS)})")
        if initial_design not in ("lhs", "random"):
            raise ValueError(f"unknown initial design {initial_design!r} (choose lhs or random)")
        if kappa < 0 or not math.isfinite(kappa):
            raise ValueError(f"kappa must be a finite number >= 0, got {kappa}")
        if n_initial_points < 1:
            raise ValueError(f"n_initial_points must be at least 1, got {n_initial_points}")
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be at least 1, got {n_candidates}")
        self.surrogate_name = surrogate
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self.xi = float(xi)
        self.liar = liar
        self.n_initial_points = int(n_initial_points)
        self.n_candidates = int(n_candidates)
        self.n_local = int(n_local)
        self.surrogate_kw: dict[str, Any] = dict(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            n_jobs=n_jobs,
        )
        self.initial = self._initial_design(initial_design)
        self.model: ForestSurrogate | None = None
        self._fitted_on = -1  # n_told at the last fit
        self.n_fits = 0

    # ------------------------------------------------------------ initial
    def _initial_design(self, kind: str) -> np.ndarray:
        """Starting points first, then a space-filling sample, shape (k, dim)."""
        rng = np.random.default_rng([self.random_state, 0x1A1])
        rows = []
        if self.problem.starting_points:
            rows.append(self.space.to_vectors(self.problem.starting_points))
        n = max(self.n_initial_points - sum(len(r) for r in rows), 0)
        if n:
            if kind == "lhs" and self.space.dim > 0:
                u = qmc.LatinHypercube(d=self.space.dim, seed=rng).random(n)
                rows.append(self.space.from_unit(u, rng))
            else:
                rows.append(self.space.sample(n, rng))
        return np.vstack(rows) if rows else np.empty((0, self.space.dim))

    # -------------------------------------------------------------- model
    def _finite(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._y:
            return np.empty((0, self.space.dim)), np.empty(0)
        y = np.asarray(self._y, dtype=float)
        ok = np.isfinite(y)
        return np.asarray(self._X)[ok], y[ok]

    def fit(self) -> None:
        """Fit the surrogate on every finite result told so far."""
        X, y = self._finite()
        seed = int(np.random.default_rng([self.random_state, self.n_told, 0xF17]).integers(2**31))
        model = make_surrogate(self.surrogate_name, random_state=seed, **self.surrogate_kw)
        model.fit(self.space.encode(X), y)
        self.model = model
        self._fitted_on = self.n_told
        self.n_fits += 1

    def _lie(self, y: np.ndarray) -> float:
        if self.liar == "cl_min":
            return float(y.min())
        if self.liar == "cl_mean":
            return float(y.mean())
        return float(y.max())

    # ------------------------------------------------------------ propose
    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out: list[np.ndarray] = []
        # 1. the initial design, in order, skipping what was already seen
        if len(self.initial):
            fresh = self.initial[self._is_new(self.initial)]
            out.extend(fresh[:n])
        need = n - len(out)
        if need <= 0:
            return np.array(out)
        _, y = self._finite()
        if len(y) < 2:
            # Too little to model yet (results pending or failed): explore.
            extra = self._random_unseen(need, rng)
            return np.vstack([np.array(out).reshape(-1, self.space.dim), extra])
        # 2. (re)fit only when something new was told
        if self.model is None or self._fitted_on != self.n_told:
            self.fit()
        chosen = self._acquire(need, rng, y, np.array(out).reshape(-1, self.space.dim))
        return np.vstack([np.array(out).reshape(-1, self.space.dim), chosen])

    def _candidates(self, rng: np.random.Generator) -> np.ndarray:
        """Random samples plus local moves around the best results, all unseen."""
        parts = [self.space.sample(self.n_candidates, rng)]
        X, y = self._finite()
        if self.n_local > 0 and len(y):
            top = X[np.argsort(y)[:5]]
            half = max(self.n_local // 2, 1)
            parts.append(self.space.neighbors(top, half, rng, scale=0.1))
            parts.append(self.space.neighbors(top, half, rng, scale=0.02))
        C = np.vstack(parts)
        return C[self._is_new(C)]

    def _acquire(
        self, n: int, rng: np.random.Generator, y: np.ndarray, extra_pending: np.ndarray
    ) -> np.ndarray:
        assert self.model is not None
        C = self._candidates(rng)
        if len(C) < n:
            C = np.vstack([C, self._random_unseen(n - len(C), rng)])
            C = C[self._is_new(C)]
        if not len(C):
            return np.empty((0, self.space.dim))
        view = self.model.view(self.space.encode(C))
        lie = self._lie(y)
        # Results told since the fit enter as known values, pending points as lies.
        if self._fitted_on < self.n_told:
            for x, loss in zip(self._X[self._fitted_on :], self._y[self._fitted_on :]):
                if math.isfinite(loss):
                    view.add(self.model.leaves(self.space.encode(x))[:, 0], loss)
        pend = np.vstack([self.pending, extra_pending]) if len(extra_pending) else self.pending
        if len(pend):
            for leaves in self.model.leaves(self.space.encode(pend)).T:
                view.add(leaves, lie)
        best = float(y.min())
        taken = np.zeros(len(C), dtype=bool)
        chosen = []
        for _ in range(min(n, len(C))):
            mu, sigma = view.mean_std()
            s = score(self.acquisition, mu, sigma, best, self.kappa, self.xi)
            s[taken] = np.inf
            # Ties (flat regions of the forest) are broken at random.
            s = s + rng.random(len(s)) * 1e-12
            i = int(np.argmin(s))
            taken[i] = True
            chosen.append(i)
            view.add(view.leaves[:, i], lie)
        return C[chosen]
