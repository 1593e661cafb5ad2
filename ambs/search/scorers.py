"""What AMBS's acquisition optimizer scores candidates with (pure numpy, no I/O).

A scorer scores points on a lied surrogate, lower is better (``scores``
for the points it tracks, ``peek`` for others), and folds a proposed
point's lie (``take``) before the next point of a batch is chosen:

* :class:`LcbScorer`: one objective (or one scalarization of several),
  the acquisition function (LCB by default) on one leaf view;
* :class:`FrontScorer`: several objectives, the hypervolume improvement of
  each objective's lower confidence bound.

Several objectives, one acquisition:
A forest per objective, or one grown on all objectives at once and read once
per objective (:class:`ambs.search.fit_task.FitTask`,
:meth:`ambs.surrogate.ForestSurrogate.target_views`), gives every candidate a
mean and a spread per objective from one leaf lookup. The candidate's optimistic point ``mu - kappa * sigma`` is scored by
the hypervolume it would add to the front (the results told so far and the
pending points at their predicted means, normalized as the forest's targets
were); a candidate whose optimistic point the front already dominates is
scored by how far it would have to move to leave it (the additive epsilon
distance). This is the S-metric selection of SMS-EGO (Ponweiser, Wagner,
Biermann and Vincze, PPSN 2008), with the forest's spread in place of a
Gaussian process's and the pending points believed as in Ginsbourger et
al.'s kriging believer. Unlike a random scalarization per point, every
proposal pulls the whole front toward the ideal point, so the terms that
all objectives share (DTLZ2's distance variables) are driven down.

With two objectives the improvement is exact (a staircase sum, vectorized
over candidates), with three too (slices of the third objective, each swept
along the first); with more it is estimated on a fixed quasi-random sample
of the box between the front and the reference point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import qmc

from ambs.objectives import nondominated

__all__ = ["REFERENCE", "FrontScorer", "LcbScorer", "dominance_order", "front_distance", "hv_improvement"]

REFERENCE = 1.1  # the reference point in every normalized objective (the worst result is 1)
REFERENCE_MARGIN = 0.1  # or the front's nadir plus this share of its extent (see reference_point)
N_SAMPLES = 4096  # quasi-random points estimating the improvement with four or more objectives
GAIN_TOL = 1e-12  # improvements smaller than this (normalized volume) count as none
MARGIN = 0.25  # how far below the front (normalized units) the estimate's box reaches


def front_distance(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """How far each point (N, m) must move down in every objective to leave
    the region ``front`` (k, m) dominates: min over the front of the largest
    coordinate gap; <= 0 for a point no member of the front dominates."""
    if not len(front):
        return np.full(len(points), -np.inf)
    gaps = (points[:, None, :] - front[None, :, :]).max(axis=2)
    return gaps.min(axis=1)


def hv_improvement(points: np.ndarray, front: np.ndarray, ref: np.ndarray,
                   samples: np.ndarray | None = None, volume: float = 1.0) -> np.ndarray:
    """The hypervolume each point (N, m) adds to ``front`` (k, m, minimized,
    non-dominated) up to ``ref``: exact for m = 2 and 3; for m > 3 ``volume``
    times the share of ``samples`` (points of the box not dominated by the
    front) that the point dominates."""
    P = np.minimum(np.asarray(points, dtype=float), ref)
    m = P.shape[1]
    if m == 2:
        box = np.prod(np.maximum(ref - P, 0.0), axis=1)
        F = front[(front < ref).all(axis=1)]
        if not len(F):
            return box
        F = F[np.argsort(F[:, 0], kind="stable")]
        Qx = np.maximum(P[:, :1], F[None, :, 0])
        Qy = np.maximum(P[:, 1:2], F[None, :, 1])
        prev = np.concatenate([np.full((len(P), 1), ref[1]), Qy[:, :-1]], axis=1)
        covered = ((ref[0] - Qx) * np.maximum(prev - Qy, 0.0)).sum(axis=1)
        return np.maximum(box - covered, 0.0)
    if m == 3:
        return _hvi3(P, front[(front < ref).all(axis=1)], ref)
    assert samples is not None, "four or more objectives: pass the free samples"
    if not len(samples):
        return np.zeros(len(P))
    out = np.empty(len(P))
    for lo in range(0, len(P), 256):  # (chunk, samples, m) booleans at a time
        chunk = P[lo:lo + 256]
        out[lo:lo + 256] = (chunk[:, None, :] <= samples[None, :, :]).all(axis=2).sum(axis=1)
    return out * (volume / N_SAMPLES)


def _hvi3(P: np.ndarray, F: np.ndarray, ref: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Exact improvements with three objectives: the box between each point and
    ``ref`` less the part of it the front dominates, that part's volume summed
    over slices of the third objective, each slice's area swept along the
    first (vectorized over points; points the front dominates skip it)."""
    out = np.zeros(len(P))
    box = np.prod(np.maximum(ref - P, 0.0), axis=1)
    if not len(F):
        return box
    todo = np.flatnonzero((box > 0) & ~front_dominates(F, P))
    k = len(F)
    for lo in range(0, len(todo), chunk):
        idx = todo[lo:lo + chunk]
        Q = np.maximum(P[idx, None, :], F[None, :, :])  # (c, k, 3): the front clipped to each box
        Q = np.take_along_axis(Q, np.argsort(Q[:, :, 2], axis=1)[:, :, None], axis=1)  # by the third objective
        xo = np.argsort(Q[:, :, 0], axis=1)  # (c, k): the sweep order along the first
        dx = _gaps(np.take_along_axis(Q[:, :, 0], xo, axis=1), ref[0])
        y = np.take_along_axis(Q[:, :, 1], xo, axis=1)
        # Slice j holds the points 0..j (by the third objective): y where present, else ref.
        present = xo[:, None, :] <= np.arange(k)[None, :, None]  # (c, j, t)
        Y = np.where(present, y[:, None, :], ref[1])
        area = (dx[:, None, :] * (ref[1] - np.minimum.accumulate(Y, axis=2))).sum(axis=2)  # (c, j)
        out[idx] = np.maximum(box[idx] - (_gaps(Q[:, :, 2], ref[2]) * area).sum(axis=1), 0.0)
    return out


def _gaps(v: np.ndarray, end: float) -> np.ndarray:
    """Per row of sorted values ``v`` (c, k): each value's distance to the next, the last's to ``end``."""
    return np.diff(v, axis=1, append=np.full((len(v), 1), end))


class LcbScorer:
    """One objective (or one scalarization of several): ``score(mu, sigma,
    best, kappa)`` of the points of a lied leaf view; a proposed point's lie is
    ``lie``, or its own predicted mean (the believer) when ``lie`` is None."""

    def __init__(self, view: Any, lie: float | None, best: float,
                 score: Callable[[np.ndarray, np.ndarray, float, float | None], np.ndarray]) -> None:
        self.view, self.lie, self.best, self._score = view, lie, best, score

    def locate(self, E: np.ndarray) -> Any:
        return self.view.locate(E)

    def extend(self, leaves: Any) -> None:
        self.view.extend(leaves)

    def scores(self, kappa: float | None = None) -> np.ndarray:
        return self._score(*self.view.mean_std(), self.best, kappa)

    def peek(self, leaves: Any) -> np.ndarray:
        return self._score(*self.view.peek(leaves), self.best, None)

    def take(self, i: int, spread: bool = False, track: bool = True, mean: float | None = None) -> None:
        """Fold point ``i``'s lie; ``track=False``: without updating the other
        points' scores (read them with :meth:`scores_at`); ``mean``: its
        predicted mean when the caller has it fresh."""
        lie = self.lie if self.lie is not None else mean
        if lie is None:
            lie = self.view.mean_at(i) if track else float(self.view.fresh_at(i)[0])
        if track:
            self.view.add_at(i, lie, spread=spread)
        else:
            self.view.add_at(i, lie, spread=spread, track=False)

    @property
    def lazy(self) -> bool:
        """Whether the view folds without updating its points (a forest's does)."""
        return hasattr(self.view, "fresh_at")

    def scores_at(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scores, and predicted means, of points ``idx`` from the leaf
        statistics as they are now."""
        mu, sd = self.view.fresh_at(idx)
        return self._score(mu, sd, self.best, None), mu


def dominance_order(losses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``losses`` (k, m) by how many others dominate each (the
    front first), ties in random order: where the local search starts. The
    order does not depend on the order the results were told in (the random
    keys go to the rows sorted by their values)."""
    L = np.asarray(losses, dtype=float)
    beaten = np.array([((L <= p).all(axis=1) & (L < p).any(axis=1)).sum() for p in L], dtype=int)
    keys = np.empty(len(L))
    keys[np.lexsort(L.T[::-1])] = rng.random(len(L))
    return np.lexsort((keys, beaten))


class FrontScorer:
    """The acquisition of several objectives on the lied per-objective views
    of one forest: what :meth:`ambs.search.AMBS._acquire_for` needs of a scorer.

    Args:
        views: one leaf view per objective, all of the same forest (so one
            leaf lookup serves them all), with the results and lies folded in.
        known: the normalized losses (k, m) of the results told, and of the
            pending points at their believed means (the front is made of them).
        kappa: the confidence bound's weight.
        believer: whether a chosen point's lie is its own predicted mean
            (else ``lies``, one constant per objective).
    """

    def __init__(self, views: list, known: np.ndarray, kappa: float, believer: bool = True,
                 lies: np.ndarray | None = None, seed: int = 0, reference: str = "worst",
                 rows: list[slice] | None = None) -> None:
        self.views = views
        # The rows of a leaf lookup each view reads (separate trees per objective), or all of them.
        self.rows = rows or [slice(None)] * len(views)
        self.kappa = float(kappa)
        self.believer = believer
        self.lies = lies
        self.m = len(views)
        known = np.asarray(known, dtype=float).reshape(-1, self.m)
        self.ref = reference_point(known) if reference == "front" else np.full(self.m, REFERENCE)
        self._sobol = (qmc.Sobol(self.m, scramble=True, seed=seed).random(N_SAMPLES)
                       if self.m > 3 else None)
        self._set_front(known)

    @classmethod
    def on_forest(cls, model: Any, normalize: Callable[[np.ndarray], np.ndarray], fitted: np.ndarray,
                  recent: np.ndarray | None, recent_losses: np.ndarray, pending_leaves: np.ndarray | None,
                  kappa: float, believer: bool, constant: Callable[[np.ndarray], float], spread: bool,
                  seed: int = 0, reference: str = "worst") -> FrontScorer:
        """A forest fitted on several objectives (``fitted``: the losses it
        was fitted on, ``normalize``: how), one view per objective
        (:meth:`ambs.surrogate.ForestSurrogate.target_views`),
        with results told since (``recent``: encoded points, and their losses)
        and pending points (``pending_leaves``: their leaf ids, (n_trees, n);
        their lie: the believed means, or ``constant(column)`` of each
        objective's values) folded in."""
        known = normalize(fitted)
        views, rows = zip(*model.target_views(known))
        if recent is not None and len(recent):
            Z = normalize(recent_losses)
            leaves = model.leaves(recent)
            for j, view in enumerate(views):
                view.add_many(leaves[rows[j]], Z[:, j])
            known = np.vstack([known, Z])
        lies = np.array([constant(known[:, j]) for j in range(known.shape[1])])
        if pending_leaves is not None and pending_leaves.shape[1]:
            leaves = pending_leaves
            believed = np.column_stack([v.peek(leaves[r])[0] for v, r in zip(views, rows)])
            lie = believed if believer else np.broadcast_to(lies, believed.shape)
            for j, view in enumerate(views):
                view.add_many(leaves[rows[j]], lie[:, j], spread=spread)
            known = np.vstack([known, lie])
        return cls(list(views), known, kappa, believer, lies, seed, reference, rows=list(rows))

    def _set_front(self, known: np.ndarray) -> None:
        self.known = known
        ok = np.isfinite(known).all(axis=1)
        F = known[ok]
        self.front = F[nondominated(F)] if len(F) else F
        if self._sobol is not None:
            lo = (self.front.min(axis=0) if len(self.front) else np.zeros(self.m)) - MARGIN
            lo = np.minimum(lo, self.ref - 1e-9)
            S = lo + self._sobol * (self.ref - lo)
            free = ~front_dominates(self.front, S)
            self.samples, self.volume = S[free], float(np.prod(self.ref - lo))
        else:
            self.samples, self.volume = None, 1.0

    def locate(self, E: np.ndarray) -> np.ndarray:
        return self.views[0].locate(E)

    def extend(self, leaves: np.ndarray) -> None:
        for v, r in zip(self.views, self.rows):
            v.extend(leaves[r])

    def _score(self, stats: list[tuple[np.ndarray, np.ndarray]], kappa: float | None = None) -> np.ndarray:
        k = self.kappa if kappa is None else kappa
        bound = np.column_stack([mu - k * sd for mu, sd in stats])
        gain = hv_improvement(bound, self.front, self.ref, self.samples, self.volume)
        # Below GAIN_TOL a gain is rounding in the leaves' sums (folded results
        # and lies): counted as none, so that it cannot decide a proposal.
        return np.where(gain > GAIN_TOL, -gain, np.maximum(front_distance(bound, self.front), 0.0))

    def scores(self, kappa: float | None = None) -> np.ndarray:
        """The acquisition (lower is better) of every tracked point."""
        return self._score([v.mean_std() for v in self.views], kappa)

    def peek(self, leaves: np.ndarray) -> np.ndarray:
        """The acquisition of other points (their leaves), without tracking them."""
        return self._score([v.peek(leaves[r]) for v, r in zip(self.views, self.rows)])

    def take(self, i: int, spread: bool = False) -> None:
        """Tracked point ``i`` is proposed: fold its lie into every view and
        put it on the front at its believed losses."""
        means = np.array([v.mean_at(i) for v in self.views])
        lie = means if self.believer or self.lies is None else self.lies
        for v, y in zip(self.views, lie):
            v.add_at(i, float(y), spread=spread)
        self._set_front(np.vstack([self.known, lie]))


def reference_point(known: np.ndarray) -> np.ndarray:
    """The front's nadir (its worst value in each objective) plus REFERENCE_MARGIN
    of its extent: the improvement then counts where the front is, not out
    where the worst results lie."""
    F = known[np.isfinite(known).all(axis=1)]
    if len(F) < 2:
        return np.full(known.shape[1], REFERENCE)
    F = F[nondominated(F)]
    lo, hi = F.min(axis=0), F.max(axis=0)
    return np.where(hi > lo, hi + REFERENCE_MARGIN * (hi - lo), REFERENCE)


def front_dominates(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Mask of the ``points`` (N, m) that some member of ``front`` weakly dominates."""
    if not len(front) or not len(points):
        return np.zeros(len(points), dtype=bool)
    out = np.zeros(len(points), dtype=bool)
    for p in front:
        out |= (p <= points).all(axis=1)
    return out
