"""Asynchronous model-based search: a tree-ensemble surrogate, an acquisition
function, and constant-liar proposals for every free worker.

One ``ask(n)``:

1. While the initial design lasts (starting points, then a Latin hypercube
   or random sample), hand out its next unseen points.
2. Otherwise fit the surrogate on the finite results (failures are left out,
   not fed as numbers) if anything new was told since the last fit. The
   losses are replaced by the normal scores of their ranks first, so that
   the tail of bad results neither dominates the spread nor flattens the
   good end the trees must resolve; by a log scale instead when most results
   tie (plateaus, where ranks push near values apart; see
   :mod:`ambs.surrogate.transform`).
3. Fold every pending point (asked, not told) into the surrogate's leaves
   with the liar's value (by default the forest's own prediction there), so
   that the trees agree at running evaluations and proposals spread out.
4. Optimize the acquisition on that lied model: score random samples of the
   space, then hill-climb from the best results told so far and from the
   best-scoring random samples, a few rounds of local moves with a
   shrinking step.
5. Take the best-scoring unseen candidate, fold its lie into the leaves,
   repeat ``n`` times: ``n`` points for the price of one fit. A small share
   of the points are random samples instead (interleaved exploration, which
   keeps a misled model from trapping the search).

One class in several modules: the lied model (step 3) is in
:mod:`ambs.search.lies`, the acquisition optimizer (steps 4 and 5) in
:mod:`ambs.search.acquire`, the options in :mod:`ambs.search.ambs_options`,
the fit (and which rows it takes) in :mod:`ambs.search.fit_task`, the
pending points' leaves in :mod:`ambs.search.pending`, the warm prior in
:mod:`ambs.search.prior`, what candidates are scored with in
:mod:`ambs.search.scorers`, the polish step in :mod:`ambs.search.polish`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace
from scipy.stats import qmc

from ambs.objectives import Scalarizer
from ambs.problem import Problem
from ambs.search.acquire import LAZY_FROM, CandidateSearch
from ambs.search.ambs_options import LIARS, LIE_MODES, AMBSOptions
from ambs.search.base import Result, Search, config_key, unpack
from ambs.search.fit_task import Builder, FitTask, fit_rows
from ambs.search.lies import LiedModel
from ambs.search.pending import PendingLeaves
from ambs.search.prior import WarmPrior
from ambs.search.scorers import dominance_order
from ambs.surrogate import Surrogate
from ambs.surrogate.base import one_blas_thread

POLISH_PER_TELL = 2  # polish steps at most between two tells
# No polish step beyond this many evaluations in flight: its GP would cost the
# master's dispatch path time that thousands of workers wait on, for a share
# of the proposals too small to matter.
POLISH_MAX_PENDING = 256

__all__ = ["AMBS", "AMBSOptions", "FitTask", "LAZY_FROM", "LIARS", "LIE_MODES"]


class AMBS(CandidateSearch, LiedModel, Search):
    """Model-based search with a tree-ensemble surrogate and constant liar.

    For a problem with several declared objectives (each normalized to
    [0, 1]), a forest per objective (``front_model="separate"``; or one grown
    on all of them and read per objective, ``"joint"``): every proposed point
    aims at the hypervolume its objectives' lower confidence bounds would add
    to the front (``front_acquisition="hvi"``,
    :class:`ambs.search.scorers.FrontScorer`), the pending points on the front
    at their believed values; or (``"chebyshev"``) one joint forest is read
    through a random scalarization per point (:class:`ambs.objectives.Scalarizer`,
    ParEGO's augmented Chebyshev function). Constant liar and the background
    fit work as for one objective. A surrogate that cannot be read that way
    (``gp``) is fitted on one random scalarization per fit instead.

    Args:
        problem: the search space (an ``ambs.Problem`` or ConfigSpace space).
        random_state: seed; the same seed and results give the same proposals.
        options: the search's settings (:class:`ambs.search.ambs_options.AMBSOptions`,
            where each is documented); default: the defaults.
        **settings: settings by name, over ``options`` (``AMBS(p, kappa=2.0)``).

    Fitting is separate from proposing (:meth:`fit_task`, :meth:`install`):
    by default ``ask`` refits when results came in since the last fit, which
    makes proposals a pure function of the seed and the results. A driver
    that sets ``background_fit = True`` runs the fits itself, off the
    dispatch path; ``ask`` then proposes with the latest model it was given,
    folding the results told since that fit into its leaves.
    """

    def __init__(
        self,
        problem: Problem | ConfigurationSpace,
        random_state: int | None = None,
        options: AMBSOptions | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(problem, random_state)
        o = (options or AMBSOptions()).replace(**settings)
        self.options = o
        self.surrogate_name = o.surrogate
        self.acquisition = o.acquisition
        self.kappa = float(o.kappa)
        self.xi = float(o.xi)
        self.liar = o.liar
        self.n_initial_points = int(o.n_initial_points)
        self.n_candidates = int(o.n_candidates)
        self.n_local = int(o.n_local)
        self.local_starts = (int(o.local_starts[0]), int(o.local_starts[1]))
        self.local_scales = tuple(float(s) for s in o.local_scales)
        self.random_fraction = float(o.random_fraction)
        self.polish_every = int(o.polish_every)
        self._n_modelled = 0  # model-based proposals so far (every polish_every-th is a polish step)
        self._polished = (-1, 0)  # (n_told, polish steps taken since that many results were told)
        self.kappa_sampling = bool(o.kappa_sampling)
        self.lie_spread = bool(o.lie_spread)
        self.n_recombine = int(o.n_recombine)
        self.top_fraction = float(o.top_fraction)
        self.top_min = int(o.top_min)
        self.recombine_bandwidth = float(o.recombine_bandwidth)
        self.y_transform = o.y_transform
        self.y_eps = float(o.y_eps)
        self.lie_mode = o.lie_mode
        self.background_fit = False
        self.initial = self._initial_design(o.initial_design)
        self.model: Surrogate | None = None
        self._fitted_on = -1  # n_told at the last fit
        self._told_keys: list[Hashable] = []  # config keys of results told, from result _told_from on
        self._told_from = 0
        self._launched_on = -1  # n_told of the newest fit task handed out
        self._tf = None  # loss -> surrogate target, from the last fit
        self._yt = np.empty(0)  # transformed targets of the last fit
        self.n_fits = 0
        self._leaves = PendingLeaves()  # where the pending points fall in the model
        self.fold_seconds = 0.0  # folding recent results and pending lies into the leaves (of ask's time)
        self._finite_cache: tuple[int, np.ndarray, np.ndarray] = (0, np.empty((0, self.space.dim)), np.empty(0))
        self._scal: Scalarizer | None = None  # several objectives: the installed model's scalarization
        self._front: np.ndarray | None = None  # and the losses of a model fitted on all of them
        self.warm_design = float(o.warm_design)
        self._prior: WarmPrior | None = None  # the earlier runs' results (warm)

    multi_objective = True

    @property
    def fits_in_background(self) -> bool:
        return True

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

    def warm(self, results: Iterable[Result]) -> None:
        """Earlier runs' results, as a prior rather than as data
        (:class:`ambs.search.prior.WarmPrior`: a forest of them is an input of
        every fit); their best configurations take ``warm_design`` of the
        initial design (past the starting points), the rest stays space-filling."""
        X, losses = [], []
        for config, objective, _, values in map(self._outcome, results):
            loss, row = self._losses(objective, values)
            if math.isfinite(loss):
                X.append(self.space.to_vectors([config])[0])
                losses.append(loss if row is None else row)
        if not X:
            return
        seed = int(np.random.default_rng([self.random_state, len(X), 0x9A1]).integers(2**31))
        self._prior = WarmPrior(self.space, np.array(X), np.array(losses), self.options, seed)
        self.n_warm = len(X)
        start = len(self.problem.starting_points or [])
        room = max(self.n_initial_points - start, 0)
        best = self._prior.best(math.ceil(room * self.warm_design))
        self.initial = np.vstack([self.initial[:start], best, self.initial[start : start + room - len(best)]])

    def _enc(self, X: np.ndarray) -> np.ndarray:
        """The surrogate's features of ``X``: the space's encoding and, after a
        warm start, the prior's predictions there."""
        E = self.space.encode(X)
        return E if self._prior is None else self._prior.features(E)

    # -------------------------------------------------------------- model
    def _finite(self, scal: Scalarizer | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The results with a finite loss, as arrays; for several objectives,
        their losses scalarized by ``scal`` (default: as the installed model's were)."""
        X, y = self._finite_first()
        if not self.objectives:
            return X, y
        L = self._finite_losses()
        return X, (scal or self._scal or self._draw_scalarizer())(L) if len(L) else np.empty(0)

    def _finite_losses(self) -> np.ndarray:
        """Several objectives: the losses (k, m) of the rows of :meth:`_finite`."""
        ok = np.isfinite(np.asarray(self._y, dtype=float))
        return np.asarray(self._L, dtype=float)[ok] if ok.any() else np.empty((0, len(self.objectives)))

    def _draw_scalarizer(self, losses: np.ndarray | None = None) -> Scalarizer:
        """The scalarization of the next fit: a function of the seed and of what
        was told (``losses``: :meth:`_finite_losses`, when the caller has them)."""
        rng = np.random.default_rng([self.random_state, self.n_told, 0x5CA1])
        return Scalarizer.draw(self._finite_losses() if losses is None else losses, rng)

    def _finite_first(self) -> tuple[np.ndarray, np.ndarray]:
        """The results with a finite loss, as arrays (kept between calls: told results never change)."""
        n = self.n_told
        if self._finite_cache[0] != n:
            if not n:
                X, y = np.empty((0, self.space.dim)), np.empty(0)
            else:
                k, X0, y0 = self._finite_cache
                k = max(k, 0)
                yn = np.asarray(self._y[k:], dtype=float)
                ok = np.isfinite(yn)
                X = np.vstack([X0, np.asarray(self._X[k:])[ok]]) if ok.any() else X0
                y = np.concatenate([y0, yn[ok]])
            self._finite_cache = (n, X, y)
        return self._finite_cache[1], self._finite_cache[2]

    def fit_task(self, extra: tuple[np.ndarray, np.ndarray | float] | None = None) -> FitTask | None:
        """A fit on the results told so far, or None when there is nothing new
        to fit on (a task for this state was already handed out) or too little.

        Args:
            extra: vectors and their values (one for all, or one each) to
                add to the data (the "refit" lie mode's lies, on the loss scale).
        """
        X, y = self._finite_first()
        scal, losses, every = None, None, None  # every: all results' losses (several objectives)
        if self.objectives and len(y):
            every = self._finite_losses()
            scal = self._draw_scalarizer(every)
            losses = every if extra is None else None  # lies have no losses: fit on y
            y = scal(every)
        if len(y) < 2 or (extra is None and self.n_told - self._launched_on < self._refit_gap()):
            return None
        rng = np.random.default_rng([self.random_state, self.n_told, 0x5B5])
        keep = fit_rows(y, self.options.max_fit_rows, rng, every)
        if keep is not None:
            X, y = X[keep], y[keep]
            losses = losses[keep] if losses is not None else None
        if extra is not None and len(extra[0]):
            X = np.vstack([X, extra[0]])
            y = np.concatenate([y, np.broadcast_to(np.asarray(extra[1], dtype=float), (len(extra[0]),))])
        seed = int(np.random.default_rng([self.random_state, self.n_told, len(y), 0xF17]).integers(2**31))
        self._launched_on = self.n_told
        E = self._enc(X)
        blind_from = E.shape[1] - len(self._prior.models) if self._prior is not None else None  # see WarmPrior
        make = Builder(self.surrogate_name, self.options, self.space, seed, blind_from)
        pending = (list(self._pending), self._enc(self.pending)) if self._pending else None
        return FitTask(E, y, self.n_told, self.y_transform, self.y_eps, make, scal, losses, pending)

    def _refit_gap(self) -> int:
        """How many results must come after the last fit for the next one."""
        if not self.background_fit or self.model is None or self._launched_on < 0:
            return 1
        return max(1, math.ceil(self.options.refit_share * self.n_told))

    def install(self, task: FitTask) -> None:
        """Propose with the model that ``task`` fitted from now on."""
        if task.model is None:
            task.run()
        if task.n_told < self._fitted_on:
            return  # an older fit finishing late
        task.targets()
        if task.pending_leaves is not None and task.pending is not None:  # looked up by the fit
            self._leaves.seed(task.model, task.pending[0], task.pending_leaves)
        self.model, self._tf, self._yt = task.model, task.tf, task.yt
        self._scal = task.scalarize
        self._front = task.losses if task.front else None
        self._fitted_on = task.n_told
        self.n_fits += 1
        drop = self._fitted_on - self._told_from  # keys of results the model was fitted on
        if drop > 0:
            del self._told_keys[:drop]
            self._told_from = self._fitted_on

    def tell(self, results: Iterable[Result]) -> None:
        results = list(results)
        super().tell(results)
        # The keys of the results told since the last fit, in order: where they
        # fall in the model was looked up while they were pending (_recent_leaves).
        self._told_keys.extend(config_key(unpack(r)[0]) for r in results)

    def fit(self) -> None:
        """Fit the surrogate on every finite result told so far, now."""
        self._launched_on = -1
        task = self.fit_task()
        if task is not None:
            self.install(task.run())

    # ------------------------------------------------------------ propose
    @one_blas_thread
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
        if self.lie_mode == "refit":
            return np.vstack([out, self._propose_refit(need, rng, out)])
        # 2. (re)fit when something new was told, unless a driver fits in the
        #    background: then the newest model it installed is used.
        if self.model is None or (not self.background_fit and self._fitted_on != self.n_told):
            self.fit()
        polish = self.polish_every and self.n_pending + need <= POLISH_MAX_PENDING
        polished = self._polish(need, rng, out) if polish else out[:0]
        out = np.vstack([out, polished])
        chosen = self._acquire(need - len(polished), rng, out) if need > len(polished) else out[:0]
        return np.vstack([out, chosen])

    def _polish(self, need: int, rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        """The polish steps among the next ``need`` proposals (see :mod:`ambs.search.polish`)."""
        from ambs.search.polish import polish_step

        steps = (self._n_modelled + need) // self.polish_every - self._n_modelled // self.polish_every
        self._n_modelled += need
        # At most POLISH_PER_TELL steps between two tells: with many workers
        # (many proposals a result) the local GP's cost stays off the dispatch path.
        told, done = self._polished
        done = done if told == self.n_told else 0
        steps = min(steps, POLISH_PER_TELL - done)
        if steps <= 0:
            return out[:0]
        self._polished = (self.n_told, done + steps)
        chosen: list[np.ndarray] = []
        X, y = self._finite_first()  # several objectives: y is drawn a step, below
        L = self._finite_losses() if self.objectives else None
        for _ in range(steps):
            if L is not None and len(L):
                # Several objectives: each step polishes the part of the front that
                # a random augmented Chebyshev scalarization of the normalized
                # losses favours (ParEGO's scalarization, one a step).
                y = Scalarizer.draw(L, rng)(L)
            pend = np.vstack([self.pending, out, *chosen]) if len(chosen) else np.vstack([self.pending, out])
            x = polish_step(self.space, X, y, pend, rng)
            if x is None or not self._is_new(x[None, :])[0]:
                continue
            chosen.append(x[None, :])
            self._seen.update(self.space.keys(x[None, :]))
        return np.vstack(chosen) if chosen else out[:0]

    def _acquire(
        self, n: int, rng: np.random.Generator, extra_pending: np.ndarray, lies: bool = True
    ) -> np.ndarray:
        if self._front is None:
            return self._acquire_for(n, rng, self._lcb_scorer(extra_pending, lies), self._ranked())
        if self.options.front_acquisition == "hvi":
            # Several objectives: every point aims at the hypervolume the front gains.
            scorer = self._front_scorer(extra_pending, lies, rng)
            X, _ = self._finite_first()
            return self._acquire_for(n, rng, scorer, X[dominance_order(self._finite_losses(), rng)],
                                     n_starts=self.options.front_starts)
        # Several objectives, a model of them all: each point aims at the
        # front through a scalarization of its own (weights drawn per point).
        chosen = np.empty((0, self.space.dim))
        for _ in range(n):
            scal = Scalarizer.draw(self._front, rng)
            scorer = self._lcb_scorer(np.vstack([extra_pending, chosen]), lies, scal)
            one = self._acquire_for(1, rng, scorer, self._ranked(scal))
            if not len(one):
                break
            chosen = np.vstack([chosen, one])
            self._seen.update(self.space.keys(one))
        return chosen

    def _ranked(self, scal: Scalarizer | None = None) -> np.ndarray:
        """The results with a finite loss, best first (local search starts there)."""
        X, y = self._finite(scal)
        return X[np.argsort(y, kind="stable")]

