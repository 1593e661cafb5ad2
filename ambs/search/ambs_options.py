"""The settings of :class:`ambs.search.AMBS`, one documented field each.

The defaults are what ``ambs search`` uses; how they were chosen, with the
measurements, is in ``bench/README.md`` (search quality on the asynchronous
path ``ambs search`` takes, and on the ask/tell loop).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ambs.acquisition import ACQUISITIONS
from ambs.surrogate import SURROGATES, TRANSFORMS

__all__ = ["FRONT_ACQUISITIONS", "LIARS", "LIE_MODES", "AMBSOptions"]

LIARS = ("believer", "cl_max", "cl_mean", "cl_min")
LIE_MODES = ("fold", "refit")
FRONT_ACQUISITIONS = ("hvi", "chebyshev")
FRONT_REFERENCES = ("worst", "front")
FRONT_MODELS = ("joint", "separate")


@dataclass(frozen=True)
class AMBSOptions:
    """How AMBS models, acquires and lies.

    Model:
        surrogate: ``"et"`` (a forest of extremely randomized trees, fitted on
            all results with random split thresholds: every tree passes through
            every result, so the spread is zero at the results and grows between
            them, much as a Gaussian process's does) or ``"rf"`` (a classic
            random forest: bootstrap samples, best splits).
        n_estimators, min_samples_leaf, max_features, bootstrap: the forest's
            trees (``bootstrap`` None: the surrogate's own default).
        rotate: the share of trees that split randomly rotated numerical
            features (see :class:`ambs.surrogate.ForestSurrogate`).
        n_jobs: threads for fitting.
        y_transform: ``"rank"`` (normal scores of the ranks: resolves small
            differences among the best results), ``"log"`` (keeps magnitudes,
            for losses spanning orders of magnitude), ``"auto"`` ("rank",
            or "log" when fewer than half the results are distinct values:
            plateaus, see :mod:`ambs.surrogate.transform`) or ``"none"``.
        y_eps: the offset of the ``"log"`` transform, relative to the range.
        refit_share: with the fit in the background (as ``ambs search`` runs
            it), the next fit starts once this share of the results came
            after the last one (at least one result); the results in between
            are folded into the model's leaves as they come. 0: after every
            result. Fits of a growing history cost more each; spacing them
            out in proportion keeps their total near linear in the results.
        max_fit_rows: the most results a fit uses (0: all). Beyond it the
            forest is fitted on the best quarter of that number and a random
            sample of the others, so that its memory and fit time stop growing
            with the history (a forest of 64 trees with leaves of one result
            holds about 30 MB per 1,000 results).

    Acquisition:
        acquisition: ``"lcb"`` (= ``"ucb"`` on the maximized objective), ``"ei"`` or ``"pi"``.
        kappa: LCB exploration weight.
        kappa_sampling: draw each point's weight from an exponential with mean
            ``kappa`` instead (greedy and exploring points in one batch).
        xi: EI/PI improvement margin, on the surrogate's target scale.
        n_candidates: random candidates scored per ask.
        n_local: local moves per start and round of the local search (0: none).
        local_starts: how many of the best results, and of the best-scoring
            random candidates, the local search starts from.
        local_scales: step sizes (unit scale) of its rounds, one round each.
            No step finer than 0.05: the polish step's GP refines below that,
            and finer moves of the forest's search only propose near-copies
            of the best result that its constant leaves cannot tell apart
            (on plateaus every proposal of a batch became one).
        random_fraction: probability that a point is a random sample instead.
        polish_every: every this many model-based proposals, one comes from a
            Gaussian process fitted on the results nearest the best one, in
            the box they span (:mod:`ambs.search.polish`); 0: never. At most
            two between results told, none with more than 256 evaluations in
            flight. With several objectives, each step polishes a random
            augmented Chebyshev scalarization of the normalized objectives.
        n_recombine, top_fraction, top_min, recombine_bandwidth: extra
            candidates whose coordinates come from the best results (see
            :meth:`ambs.space.Space.recombine`); 0 turns them off.

    Several objectives:
        front_acquisition: how a point aims at the Pareto front: ``"hvi"``
            (the hypervolume improvement of the objectives' lower confidence
            bounds, SMS-EGO's; :mod:`ambs.search.scorers`) or ``"chebyshev"``
            (a random augmented Chebyshev scalarization per point, ParEGO's).
        front_kappa: the confidence bounds' weight for ``"hvi"``, on the
            objectives normalized to [0, 1] over the results (``kappa`` is
            on the rank-transformed scale of one objective, about four times wider).
        front_reference: the reference point of ``"hvi"``, on the objectives
            normalized over the results: ``"worst"`` (1.1 in each, past the
            worst result: extending the front to either end counts) or
            ``"front"`` (the front's own nadir plus a tenth of its extent: a
            front that shrank to one end cannot grow far out of that box).
        front_model: with ``"hvi"``, ``"separate"`` (a forest per objective,
            ``n_estimators`` trees each: an objective that depends on a few
            hyperparameters is not split on the others' account, so its
            prediction carries over to where no good result lies yet; a fit
            costs as many forests as objectives) or ``"joint"`` (one forest
            split on all objectives at once, read per objective).
        front_starts: with ``"hvi"``, how many members of the front (ties in
            random order) the local search starts from, in place of the first
            of ``local_starts``: a front is many points, spread out.

    Running evaluations (constant liar):
        liar: the value assumed at a pending point: ``"believer"`` (the
            surrogate's own mean there, the kriging believer of Ginsbourger et
            al., 2010: the trees agree at the point, so it stops attracting
            exploration without pushing proposals out of a good region), or a
            constant on the loss scale, ``"cl_max"`` (the worst result),
            ``"cl_mean"`` or ``"cl_min"`` (the best).
        lie_spread: whether a lie adds to its leaves' spread as an observation
            would (True) or only moves their mean and shrinks their spread
            (False): a lie is not an observation, and counting its distance
            from a lone result as spread draws LCB to the running evaluations.
        lie_mode: ``"fold"`` (add the lie to the statistics of the leaves the
            point falls into, without refitting) or ``"refit"`` (refit with the
            lies as data, once per proposed point: the textbook form, slow).

    Start:
        n_initial_points: size of the initial design (starting points included).
        initial_design: ``"lhs"`` (Latin hypercube) or ``"random"``.
        warm_design: after a warm start, the share of the initial design
            (past the starting points) that the earlier runs' best
            configurations take, best first; the rest stays space-filling.
        warm_blind: after a warm start, the share of a forest's trees that do
            not see the earlier runs' prior (:mod:`ambs.search.prior`): they
            model the new results alone, so the forest's spread stays wide where
            the new task departs from the earlier one (a new version of the
            data, a moved optimum) and the search does not settle where the
            earlier runs did.
    """

    surrogate: str = "et"
    n_estimators: int = 64
    min_samples_leaf: int = 1
    max_features: float = 1.0
    bootstrap: bool | None = None
    rotate: float = 0.0
    n_jobs: int = 1
    y_transform: str = "auto"
    y_eps: float = 0.01
    max_fit_rows: int = 10_000
    refit_share: float = 0.05
    acquisition: str = "lcb"
    kappa: float = 1.0
    kappa_sampling: bool = False
    xi: float = 0.01
    n_candidates: int = 1000
    n_local: int = 20
    local_starts: tuple[int, int] = (5, 5)
    local_scales: tuple[float, ...] = (0.2, 0.1, 0.05)
    random_fraction: float = 0.0
    polish_every: int = 2
    n_recombine: int = 0
    top_fraction: float = 0.15
    top_min: int = 5
    recombine_bandwidth: float = 0.5
    front_acquisition: str = "hvi"
    front_kappa: float = 0.3
    front_reference: str = "worst"
    front_model: str = "separate"
    front_starts: int = 10
    liar: str = "believer"
    lie_spread: bool = False
    lie_mode: str = "fold"
    n_initial_points: int = 10
    initial_design: str = "lhs"
    warm_design: float = 0.5
    warm_blind: float = 0.5

    def __post_init__(self) -> None:
        for name, value, allowed in (("surrogate", self.surrogate, SURROGATES),
                                     ("acquisition", self.acquisition, ACQUISITIONS),
                                     ("liar", self.liar, LIARS), ("initial design", self.initial_design,
                                                                  ("lhs", "random")),
                                     ("y_transform", self.y_transform, TRANSFORMS),
                                     ("lie_mode", self.lie_mode, LIE_MODES),
                                     ("front acquisition", self.front_acquisition, FRONT_ACQUISITIONS),
                                     ("front reference", self.front_reference, FRONT_REFERENCES),
                                     ("front model", self.front_model, FRONT_MODELS)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r} (choose from {', '.join(allowed)})")
        for name in ("kappa", "front_kappa"):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.n_initial_points < 1:
            raise ValueError(f"n_initial_points must be at least 1, got {self.n_initial_points}")
        if self.max_fit_rows != 0 and self.max_fit_rows < 10:
            raise ValueError(f"max_fit_rows must be 0 (all results) or at least 10, got {self.max_fit_rows}")
        if self.front_starts < 0:
            raise ValueError(f"front_starts must be >= 0, got {self.front_starts}")
        if self.n_candidates < 1:
            raise ValueError(f"n_candidates must be at least 1, got {self.n_candidates}")
        if self.polish_every < 0:
            raise ValueError(f"polish_every must be >= 0, got {self.polish_every}")
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {self.random_fraction}")
        for name in ("warm_design", "warm_blind", "refit_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def replace(self, **settings: Any) -> AMBSOptions:
        """A copy with ``settings`` changed; an unknown name is a ValueError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"AMBS has no setting {unknown[0]!r}")
        return dataclasses.replace(self, **settings) if settings else self
