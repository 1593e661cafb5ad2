"""Constant liar: the model AMBS proposes with, the pending points folded
into it at their lies (step 3 of :mod:`ambs.search.ambs`).

A mixin of :class:`ambs.search.ambs.AMBS`, whose state it reads: the
installed model and its targets (``model``, ``_tf``, ``_yt``, ``_fitted_on``),
the results told since that fit (``_X``, ``_y``, ``_L``, ``_told_keys``), the
pending points and their leaves (``_pending``, ``_leaves``) and the liar's
options (``liar``, ``lie_spread``, and the acquisition's: ``acquisition``,
``kappa``, ``xi``). The results told since the fit enter as
known values, the pending points as lies: by default each point's predicted
mean (``believer``), or one constant (``cl_min``, ``cl_mean``, ``cl_max``);
``lie_mode="refit"`` refits with the lies as data instead, once a point.
Pure numpy, no I/O.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ambs.acquisition import score
from ambs.objectives import Scalarizer
from ambs.search.scorers import FrontScorer, LcbScorer
from ambs.surrogate import ForestSurrogate, transform_targets

__all__ = ["LiedModel"]


class LiedModel:
    """The lied model: a belief of the installed surrogate with recent results and lies folded in."""

    def _lie(self, y: np.ndarray) -> float:
        if self.liar == "cl_min":
            return float(y.min())
        if self.liar == "cl_mean":
            return float(y.mean())
        return float(y.max())

    def _propose_refit(self, n: int, rng: np.random.Generator, extra_pending: np.ndarray) -> np.ndarray:
        """Constant liar the textbook way: refit with the lies as data, once a point."""
        if self.objectives:
            self._scal = self._draw_scalarizer()  # the one every fit of this ask uses
        _, y = self._finite()
        yt, _ = transform_targets(y, self.y_transform, self.y_eps)
        lie: np.ndarray | float = self._lie(y)  # on the loss scale, chosen as the fold mode chooses it
        believe = None
        if self.liar == "believer":
            # The believer's lie: the prediction of the forest fitted on the
            # results alone, taken back to the loss scale through the results.
            self._launched_on = -1
            task = self.fit_task()
            assert task is not None and task.run().model is not None
            believe, order = task.model, np.argsort(task.yt, kind="stable")
            yt_sorted, y_sorted = task.yt[order], y[order]
        chosen = np.empty((0, self.space.dim))
        for _ in range(n):
            pend = np.vstack([self.pending, extra_pending, chosen])
            if believe is not None and len(pend):
                lie = np.interp(believe.predict(self._enc(pend)), yt_sorted, y_sorted)
            task = self.fit_task(extra=(pend, lie))
            assert task is not None
            self.install(task.run())
            self._fitted_on = self.n_told
            self._yt = yt
            one = self._acquire(1, rng, np.empty((0, self.space.dim)), lies=False)
            if not len(one):
                break
            chosen = np.vstack([chosen, one])
            self._seen.update(self.space.keys(one))
        return chosen

    def _lied_view(self, extra_pending: np.ndarray, lies: bool = True, scal: Scalarizer | None = None):
        """An empty belief with the results told since the fit, and the
        pending points' lies, folded in (into the leaves of a forest).
        ``scal``: the scalarization of several objectives to read the model
        for (a model fitted on all of them, see :class:`FitTask`)."""
        assert self.model is not None and self._tf is not None
        t = time.perf_counter()
        tf, yt = self._tf, self._yt
        if scal is not None:
            yt, tf = transform_targets(scal(self._front), self.y_transform, self.y_eps)
            view = self.model.belief_for(yt)  # type: ignore[attr-defined]
        else:
            view = self.model.belief()
        # Results told since the model was fitted (a background fit lags
        # behind) enter as known values.
        recent = np.asarray(self._y[self._fitted_on :], dtype=float)
        if self.objectives and len(recent):
            recent = (scal or self._scal or self._draw_scalarizer())(
                np.asarray(self._L[self._fitted_on :], dtype=float))
        ok = np.isfinite(recent)
        if ok.any():
            vals = np.asarray(tf(recent[ok]), dtype=float)
            view.add_many(self._recent_leaves(view, ok), vals)
            yt = np.concatenate([yt, vals])
        lie = self._lie(yt)
        if lies and (self.n_pending or len(extra_pending)):
            L = self._pending_leaves(view, extra_pending)
            view.add_many(L, self._believed(view, L) if self.liar == "believer" else lie, spread=self.lie_spread)
        self.fold_seconds += time.perf_counter() - t
        return view, lie, float(yt.min())

    def _recent_leaves(self, view: Any, ok: np.ndarray) -> Any:
        """Where the results told since the fit (those ``ok`` selects) fall in the
        model: kept from when they were pending (the fit looked up the points
        pending when it began), looked up for the rest. A forest's handles are
        leaf ids (trees, points), a GP's the points: only the view indexes them."""
        start, end = self._fitted_on, self.n_told
        if end <= start:
            return view.locate(self._enc(np.empty((0, self.space.dim))))
        X = np.asarray(self._X[start:end])
        keys = self._told_keys[start - self._told_from:] if start >= self._told_from else []
        kept = self._leaves
        if len(keys) != end - start or kept.model is not self.model or kept.mat is None \
                or not isinstance(self.model, ForestSurrogate):
            return view.locate(self._enc(X[ok]))
        idx = np.fromiter((kept.pos.get(k, -1) for k in keys), dtype=np.intp, count=len(keys))
        found = idx >= 0
        out = np.empty((kept.mat.shape[0], len(keys)), dtype=kept.mat.dtype)
        out[:, found] = kept.mat[:, idx[found]]
        if not found.all():
            out[:, ~found] = view.locate(self._enc(X[~found]))
        return out[:, ok]

    @staticmethod
    def _believed(view: Any, leaves: Any) -> np.ndarray:
        """The believer's lies: each point's predicted mean."""
        peek_mean = getattr(view, "peek_mean", None)
        return peek_mean(leaves) if peek_mean is not None else view.peek(leaves)[0]

    def _pending_leaves(self, view: Any, extra: np.ndarray) -> Any:
        """Where the pending points, then ``extra``, fall in the model."""
        if not isinstance(self.model, ForestSurrogate):
            return view.locate(self._enc(np.vstack([self.pending, extra])))
        return self._leaves.locate(self.model, view.locate, self._pending, self._enc, extra)

    def _lcb_scorer(self, extra_pending: np.ndarray, lies: bool, scal: Scalarizer | None = None) -> LcbScorer:
        view, lie, best = self._lied_view(extra_pending, lies, scal)
        return LcbScorer(view, lie if self.liar != "believer" else None, best, self._score)

    def _score(self, mu: np.ndarray, sigma: np.ndarray, best: float, kappa: float | None = None) -> np.ndarray:
        """The acquisition function of the options (kappa: this point's, default the options')."""
        return score(self.acquisition, mu, sigma, best, self.kappa if kappa is None else kappa, self.xi)

    def _front_scorer(self, extra_pending: np.ndarray, lies: bool, rng: np.random.Generator) -> FrontScorer:
        """The installed forest read per objective, with the results told since
        its fit and (``lies``) the pending points folded in (their leaves kept
        between proposals as for one objective; the time counts as the fold)."""
        assert self.model is not None and self._scal is not None and self._front is not None
        t = time.perf_counter()
        recent = np.asarray(self._L[self._fitted_on:], dtype=float).reshape(-1, len(self.objectives))
        ok = np.isfinite(recent).all(axis=1)
        pending = None
        if lies and (self.n_pending or len(extra_pending)):
            pending = self._leaves.locate(self.model, self.model.leaves, self._pending, self._enc, extra_pending)
        scorer = FrontScorer.on_forest(
            self.model, self._scal.normalize, self._front,
            self._enc(np.asarray(self._X[self._fitted_on:])[ok]) if ok.any() else None, recent[ok],
            pending, self.options.front_kappa, self.liar == "believer", self._lie,
            self.lie_spread, seed=int(rng.integers(2**31)), reference=self.options.front_reference)
        self.fold_seconds += time.perf_counter() - t
        return scorer
