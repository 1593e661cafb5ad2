"""Asynchronous model-based search: a tree-ensemble surrogate, an acquisition
function, and constant-liar proposals for every free worker.

One ``ask(n)``:

1. While the initial design lasts (starting points, then a Latin hypercube
   or random sample), hand out its next unseen points.
2. Otherwise fit the surrogate on the finite results (failures are left out,
   not fed as numbers) if anything new was told since the last fit. The
   losses are log-transformed first (see :mod:`ambs.surrogate.transform`), so
   the trees resolve the good end of the results rather than the tail.
3. Fold every pending point (asked, not told) into the surrogate's leaves
   with the liar's value, so that proposals spread out.
4. Optimize the acquisition on that lied model: score random samples of the
   space, then hill-climb from the best results told so far and from the
   best-scoring random samples, a few rounds of local moves with a
   shrinking step.
5. Take the best-scoring unseen candidate, fold its lie into the leaves,
   repeat ``n`` times: ``n`` points for the price of one fit. A small share
   of the points are random samples instead (interleaved exploration, which
   keeps a misled model from trapping the search).
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
from ambs.surrogate import SURROGATES, TRANSFORMS, ForestSurrogate, make_surrogate, transform_targets

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
        xi: EI/PI improvement margin, on the surrogate's target scale (the
            transformed loss, see ``y_transform``).
        liar: the value assumed for pending points, on the loss scale
            (``-objective``): ``"cl_max"`` (the worst result seen, default),
            ``"cl_mean"`` or ``"cl_min"`` (the best). The pessimistic
            ``cl_max`` pushes proposals away from running evaluations most
            strongly, which keeps many workers from crowding one basin.
        n_initial_points: size of the initial design (starting points included).
        initial_design: ``"lhs"`` (Latin hypercube) or ``"random"``.
        n_candidates: random candidates scored per ask.
        n_local: local moves per starting point and round of the local search
            (0 turns the local search off).
        local_starts: how many of the best results told so far, and how many
            of the best-scoring random candidates, the local search starts from.
        local_scales: step sizes (on the unit scale) of the local-search
            rounds, one round each.
        random_fraction: probability that a proposed point is a random sample
            rather than the acquisition's choice.
        y_transform: ``"log"`` (default), ``"rank"`` or ``"none"``: the
            monotone transform of the loss before fitting.
        n_estimators, min_samples_leaf, max_features, bootstrap, n_jobs:
            surrogate settings.
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
        n_candidates: int = 1000,
        n_local: int = 20,
        local_starts: tuple[int, int] = (5, 5),
        local_scales: tuple[float, ...] = (0.2, 0.1, 0.05, 0.02, 0.01),
        random_fraction: float = 0.0,
        y_transform: str = "log",
        y_eps: float = 0.01,
        n_estimators: int = 32,
        min_samples_leaf: int = 2,
        max_features: float = 1.0,
        bootstrap: bool | None = None,
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
        if y_transform not in TRANSFORMS:
            raise ValueError(f"unknown y_transform {y_transform!r} (choose from {', '.join(TRANSFORMS)})")
        if kappa < 0 or not math.isfinite(kappa):
            raise ValueError(f"kappa must be a finite number >= 0, got {kappa}")
        if n_initial_points < 1:
            raise ValueError(f"n_initial_points must be at least 1, got {n_initial_points}")
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be at least 1, got {n_candidates}")
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
        self.surrogate_name = surrogate
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self.xi = float(xi)
        self.liar = liar
        self.n_initial_points = int(n_initial_points)
        self.n_candidates = int(n_candidates)
        self.n_local = int(n_local)
        self.local_starts = (int(local_starts[0]), int(local_starts[1]))
        self.local_scales = tuple(float(s) for s in local_scales)
        self.random_fraction = float(random_fraction)
        self.y_transform = y_transform
        self.y_eps = float(y_eps)
        self.surrogate_kw: dict[str, Any] = dict(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            bootstrap=bootstrap,
            n_jobs=n_jobs,
        )
        self.initial = self._initial_design(initial_design)
        self.model: ForestSurrogate | None = None
        self._fitted_on = -1  # n_told at the last fit
        self._tf = None  # loss -> surrogate target, from the last fit
        self._yt = np.empty(0)  # transformed targets of the last fit
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
        yt, tf = transform_targets(y, self.y_transform, self.y_eps)
        seed = int(np.random.default_rng([self.random_state, self.n_told, 0xF17]).integers(2**31))
        model = make_surrogate(self.surrogate_name, random_state=seed, **self.surrogate_kw)
        model.fit(self.space.encode(X), yt)
        self.model = model
        self._tf = tf
        self._yt = yt
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
        out = np.empty((0, self.space.dim))
        # 1. the initial design, in order, skipping what was already seen
        if len(self.initial):
            out = self.initial[self._is_new(self.initial)][:n]
        need = n - len(out)
        if need <= 0:
            return out
        # ask() marks all it returns as seen; marking these now keeps the rest
        # of this batch from proposing them a second time.
        self._seen.update(self.space.keys(out))
        _, y = self._finite()
        if len(y) < 2:
            # Too little to model yet (results pending or failed): explore.
            extra = self._random_unseen(need, rng)
            return np.vstack([out, extra])
        # 2. (re)fit only when something new was told
        if self.model is None or self._fitted_on != self.n_told:
            self.fit()
        chosen = self._acquire(need, rng, out)
        return np.vstack([out, chosen])

    def _score(self, mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
        return score(self.acquisition, mu, sigma, best, self.kappa, self.xi)

    def _lied_view(self, extra_pending: np.ndarray):
        """An empty leaf view with recent results and pending lies folded in."""
        assert self.model is not None and self._tf is not None
        model, tf = self.model, self._tf
        view = model.view()
        yt = list(self._yt)
        # Results told since the fit enter as known values (none when the
        # search refits on every new result, as it does now).
        for x, loss in zip(self._X[self._fitted_on :], self._y[self._fitted_on :]):
            if math.isfinite(loss):
                v = float(tf(loss))
                view.add(model.leaves(self.space.encode(x))[:, 0], v)
                yt.append(v)
        yt = np.asarray(yt)
        lie = self._lie(yt)
        pend = np.vstack([self.pending, extra_pending])
        if len(pend):
            for leaves in model.leaves(self.space.encode(pend)).T:
                view.add(leaves, lie)
        return view, lie, float(yt.min())

    def _acquire(self, n: int, rng: np.random.Generator, extra_pending: np.ndarray) -> np.ndarray:
        assert self.model is not None
        model, space = self.model, self.space
        view, lie, best = self._lied_view(extra_pending)

        def leaves(X: np.ndarray) -> np.ndarray:
            return model.leaves(space.encode(X))

        # Random candidates.
        R = space.sample(self.n_candidates, rng)
        pool = [R]
        view.extend(leaves(R))
        s_rand = self._score(*view.mean_std(), best)
        # Local search from the best results and the best random candidates.
        k_obs, k_rand = self.local_starts
        if self.n_local > 0 and self.local_scales and k_obs + k_rand > 0:
            X, y = self._finite()
            starts = [X[np.argsort(y, kind="stable")[:k_obs]]]
            starts.append(R[np.argsort(s_rand + rng.random(len(R)) * 1e-12)[:k_rand]])
            S = np.vstack(starts)
            s_cur = self._score(*view.peek(leaves(S)), best)
            for scale in self.local_scales:
                N, parent = space.neighbors(S, self.n_local, rng, scale=scale, return_parents=True)
                if not len(N):
                    continue
                LN = leaves(N)
                sN = self._score(*view.peek(LN), best) + rng.random(len(N)) * 1e-12
                pool.append(N)
                view.extend(LN)
                # The best neighbour of each start, if better, becomes the start.
                order = np.lexsort((sN, parent))
                par, first = np.unique(parent[order], return_index=True)
                top = order[first]
                better = sN[top] < s_cur[par]
                S[par[better]] = N[top[better]]
                s_cur[par[better]] = sN[top[better]]
        C = np.vstack(pool)
        ok = self._is_new(C)
        n_rand = len(R)
        if ok.sum() < n:
            extra = self._random_unseen(n - int(ok.sum()), rng)
            if len(extra):
                C = np.vstack([C, extra])
                ok = self._is_new(C)
                view.extend(leaves(extra))
        chosen = []
        for _ in range(min(n, int(ok.sum()))):
            if self.random_fraction > 0 and rng.random() < self.random_fraction and ok[:n_rand].any():
                # Interleaved exploration: the next unused random candidate.
                i = int(np.flatnonzero(ok[:n_rand])[0])
            else:
                s = self._score(*view.mean_std(), best)
                # Ties (flat regions of the forest) are broken at random.
                s = s + rng.random(len(s)) * 1e-12
                s[~ok] = np.inf
                i = int(np.argmin(s))
            ok[i] = False
            chosen.append(i)
            view.add(view.leaves[:, i], lie)
        return C[chosen]
