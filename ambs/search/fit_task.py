"""One surrogate fit of AMBS on a snapshot of the results, runnable in any thread."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ambs.objectives import Scalarizer, nondominated
from ambs.surrogate import Surrogate, transform_targets
from ambs.surrogate.base import one_blas_thread

__all__ = ["Builder", "FitTask", "fit_rows"]


def fit_rows(y: np.ndarray, cap: int, rng: np.random.Generator,
             losses: np.ndarray | None = None) -> np.ndarray | None:
    """The rows a fit uses when there are more than ``cap`` (0: no bound):
    the best quarter of the bound always (several objectives, ``losses``:
    the whole front first), the others a random sample; None: all of them."""
    if not cap or len(y) <= cap:
        return None
    order = np.argsort(y, kind="stable")
    n_best = cap // 4
    if losses is not None:
        on = nondominated(losses)[order]
        order = np.concatenate([order[on], order[~on]])
        n_best = min(max(n_best, int(on.sum())), cap)
    best, rest = order[:n_best], order[n_best:]
    return np.sort(np.concatenate([best, rng.choice(rest, cap - len(best), replace=False)]))


@dataclass(frozen=True)
class Builder:
    """Makes the unfitted surrogate of one fit: a plain object, so that a fit
    task can travel to another process (:class:`ambs.fitter.ProcessFitter`)."""

    surrogate: str  # its name in ambs.surrogate.SURROGATES
    options: Any  # the search's AMBSOptions
    space: Any
    seed: int
    blind_from: int | None = None  # a warm start's prior columns (see ambs.search.prior)

    def __call__(self) -> Surrogate:
        from ambs.surrogate import SURROGATES, ForestSurrogate

        model = SURROGATES[self.surrogate].build(self.options, self.space, self.seed)
        if self.blind_from is not None and isinstance(model, ForestSurrogate):
            model.blind_from, model.blind_share = self.blind_from, self.options.warm_blind
        return model


class FitTask:
    """One surrogate fit on a snapshot of the results, runnable in any thread.

    The task holds copies of what it needs, so :meth:`run` touches no state
    of the search: a driver may run it in a background thread while the
    search keeps proposing with the previous model, then hand it back with
    :meth:`ambs.search.ambs.AMBS.install`.

    Several objectives: ``losses`` (n, m) are the results' losses and ``y``
    one scalarization of them (``scalarize``). A surrogate that can read its
    fit for any combination of targets (a forest's ``belief_for``) is fitted
    on all of them at once, each normalized to [0, 1], and every proposed
    point then draws a scalarization of its own (``front`` is True); any
    other is fitted on ``y``.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, n_told: int, transform: str, eps: float,
                 make: Any, scalarize: Scalarizer | None = None, losses: np.ndarray | None = None,
                 pending: tuple[list[str], np.ndarray] | None = None) -> None:
        self.X, self.y, self.n_told = X, y, n_told
        # The points pending when the fit began (keys, encoded vectors): their
        # leaves in the new forest are looked up here, off the dispatch path.
        self.pending = pending
        self.pending_leaves: np.ndarray | None = None
        self.scalarize = scalarize  # several objectives: how their losses became y
        self.losses = losses
        self.transform, self.eps, self._make = transform, eps, make
        self.model: Surrogate | None = None
        self.front = False
        self.tf: Any = None
        self.yt = np.empty(0)
        self.seconds = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # The target map is a closure: a task sent back from another process
        # leaves it behind, and the search makes it again (:meth:`targets`).
        state = self.__dict__.copy()
        state["tf"] = None
        return state

    def targets(self) -> None:
        """Make the target map (and targets) again, after the task travelled."""
        if self.tf is None:
            self.yt, self.tf = transform_targets(self.y, self.transform, self.eps)

    @one_blas_thread
    def run(self, threads: int | None = None) -> FitTask:
        """Fit the surrogate (the expensive part); returns itself. ``threads``:
        at most that many fit threads, whatever the search's ``fit_jobs``."""
        t = time.perf_counter()
        model = self._make()
        if threads and getattr(model, "n_jobs", 0) > threads:
            model.n_jobs = threads
        self.yt, self.tf = transform_targets(self.y, self.transform, self.eps)
        if self.losses is not None and self.scalarize is not None and hasattr(model, "belief_for"):
            # Rows in the order of their values: scikit-learn's multi-output
            # trees can split differently on the same rows in another order,
            # and proposals must depend on the results, not on the order told.
            order = np.lexsort(self.X.T[::-1])
            self.X, self.losses = self.X[order], self.losses[order]
            model.fit(self.X, self.scalarize.normalize(self.losses))
            self.front = True
        else:
            model.fit(self.X, self.yt)
        if self.pending is not None and len(self.pending[0]) and hasattr(model, "leaves"):
            self.pending_leaves = model.leaves(self.pending[1])
        self.model = model
        self.seconds = time.perf_counter() - t
        return self
