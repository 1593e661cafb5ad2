"""The search contract: ``ask(n) -> list[dict]`` and ``tell([(config, objective)])``.

The driver uses one form of it for every search: ``ask_jobs(n)`` gives
(configuration, budget) pairs (budget None: the full training) and
``tell(evaluations)`` takes :class:`ambs.result.Evaluation` objects as they
finish; the base class gives every search both, a multi-fidelity search
overrides them. Users may equally ``tell`` plain ``(config, objective)`` pairs.

A search is pure: no I/O, no MPI, no evaluator. It holds what it was told
and what it has asked for but not yet been told (the *pending* points).
Objectives are maximized by the user's convention; inside, every search
minimizes the loss ``-objective``, converted once here.

Randomness is derived from the seed *and the state* (how many results were
told, how many are pending), not from the history of calls: the same seed
and the same results give the same proposals, whether the results arrived
one by one or were replayed from a CSV on resume.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Union

import numpy as np

from ambs.problem import Problem
from ambs.result import Evaluation

if TYPE_CHECKING:  # imported where a search is made: the command line's help needs neither
    from ConfigSpace import ConfigurationSpace

__all__ = ["Result", "Search", "config_key", "unpack"]

# What tell() takes: a finished Evaluation, or a (configuration, objective) pair.
Result = Union[Evaluation, "tuple[dict[str, Any], float | None]"]


def unpack(result: Result) -> tuple[dict[str, Any], float | None, float | None]:
    """(configuration, objective or None for a failure, budget or None) of a result."""
    if isinstance(result, Evaluation):
        return result.config, (result.objective if result.ok else None), result.budget
    config, objective = result
    return config, objective, None

# Finite spaces up to this size are enumerated, so random proposals never
# repeat a configuration while an unseen one remains.
_ENUMERATE_LIMIT = 200_000


def config_key(config: dict[str, Any]) -> Hashable:
    """Canonical, hashable form of a configuration dict: its sorted items
    (a tuple; their text when a value does not hash)."""
    items = tuple(sorted(config.items()))
    try:
        hash(items)
    except TypeError:
        return repr(items)
    return items


class Search(ABC):
    """Base class of every search method.

    Args:
        problem: an :class:`ambs.Problem` or a ConfigSpace ``ConfigurationSpace``.
        random_state: seed; ``None`` draws one from the operating system.
    """

    # Proposes (configuration, budget) jobs and repeats configurations at
    # larger budgets (see ambs.search.multifidelity).
    multi_fidelity: ClassVar[bool] = False
    #: Searches for the Pareto front of a problem's declared objectives; a
    #: search without it optimizes the first one (see :mod:`ambs.objectives`).
    multi_objective: ClassVar[bool] = False
    #: A method meant for network architectures (the spaces of :mod:`ambs.nas`):
    #: the README's "Architecture search" methods. They work on any space.
    architecture_search: ClassVar[bool] = False
    #: The budget every configuration trains with, ``run(config, budget)``, in a
    #: search that is not multi-fidelity (``ambs search --max-budget B``); None:
    #: ``run(config)``'s own. Multi-fidelity searches choose each job's budget.
    train_budget: float | None = None

    def __init__(self, problem: Problem | ConfigurationSpace, random_state: int | None = None) -> None:
        from ConfigSpace import ConfigurationSpace

        from ambs.space import Space

        if isinstance(problem, ConfigurationSpace):
            wrapped = Problem()
            wrapped.space = problem
            problem = wrapped
        problem.validate()
        self.problem = problem
        self.space = Space(problem.space)
        if random_state is None:
            random_state = int(np.random.SeedSequence().entropy % (2**31))
        self.random_state = int(random_state)
        self._X: list[np.ndarray] = []  # told vectors
        self._y: list[float] = []  # told losses, NaN when the evaluation failed
        # Several declared objectives: each told result's losses (objectives
        # oriented to be minimized), a row of NaN for a failure; _y is the first.
        self.objectives = list(problem.objectives) if problem.multi_objective else []
        self._L: list[np.ndarray] = []
        self._seen: set[bytes] = set()  # vector keys told or pending
        self._pending: dict[Hashable, np.ndarray] = {}  # config key -> vector
        self._enumeration: np.ndarray | None = None

    # --------------------------------------------------------------- contract
    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose up to ``n`` new configurations (fewer only when the space is used up)."""
        if n <= 0:
            return []
        rng = self._rng()
        X = self._propose(int(n), rng)
        configs = self.space.to_dicts(X) if len(X) else []
        for x, c in zip(X, configs):
            self._pending[config_key(c)] = x
        self._seen.update(self.space.keys(X) if len(X) else ())
        return configs

    def ask_jobs(self, n: int = 1) -> list[tuple[dict[str, Any], float | None]]:
        """Up to ``n`` (configuration, budget) jobs; the budget is ``train_budget``
        (None: ``run(config)``, the full training)."""
        return [(config, self.train_budget) for config in self.ask(n)]

    n_warm: int = 0  # results of earlier runs taken in by warm

    def warm(self, results: Iterable[Result]) -> None:
        """Results of earlier runs, told before the first ask (``--warm-start``);
        a model-based search may take them as a prior instead (they are then
        not in ``n_told``: :meth:`ambs.search.ambs.AMBS.warm`)."""
        results = list(results)
        self.tell(results)
        self.n_warm += len(results)

    def hold(self, configs: list[dict[str, Any]]) -> None:
        """Treat ``configs`` as asked: pending until told, never proposed again
        (configurations the run evaluates on its own, ``--initial-configs``)."""
        if not configs:
            return
        for c, x in zip(configs, self.space.to_vectors(configs)):
            self._pending[config_key(c)] = x
            self._seen.add(self.space.keys(x)[0])

    def retired(self) -> list[dict[str, Any]]:
        """Configurations that can no longer be promoted to a larger budget,
        since the last call (their checkpoints can go; see :mod:`ambs.checkpoints`)."""
        return []

    def tell(self, results: Iterable[Result]) -> None:
        """Record finished evaluations (:class:`Evaluation` objects or
        ``(config, objective)`` pairs); a None or non-finite objective, or an
        evaluation that did not end ``ok``, is a failure."""
        for config, objective, _, values in map(self._outcome, results):
            x = self._pending.pop(config_key(config), None)
            if x is None:
                x = self.space.to_vectors([config])[0]
            self._record(x, objective, values)

    def _outcome(self, result: Result) -> tuple[dict[str, Any], float | None, float | None, Any]:
        """(configuration, objective, budget, the declared objectives' values or
        None) of a told result. A pair told for a problem with several
        objectives gives them as a dict by name or a sequence in declared order;
        its objective is then the first, oriented to be maximized."""
        config, objective, budget = unpack(result)
        if not self.objectives:
            return config, objective, budget, None
        if isinstance(result, Evaluation):
            values = result.objectives if result.ok else None
        elif isinstance(objective, dict):
            missing = [o.name for o in self.objectives if o.name not in objective]
            if missing:
                raise ValueError(f"told objectives lack {', '.join(map(repr, missing))}")
            values = tuple(objective[o.name] for o in self.objectives)
        elif isinstance(objective, (list, tuple, np.ndarray)):
            values = tuple(objective)
            if len(values) != len(self.objectives):
                raise ValueError(f"told {len(values)} objectives, the problem declares {len(self.objectives)}")
        else:
            values = None  # a failure (None), or one number where several are declared
        if values is not None:
            objective = self.objectives[0].sign * float(values[0])
        elif not isinstance(result, Evaluation):
            objective = None
        return config, objective, budget, values

    def _losses(self, objective: float | None, values: Any = None) -> tuple[float, np.ndarray | None]:
        """The loss ``-objective`` (NaN for a failure) and, for several
        objectives, their losses (all NaN when one is missing or not finite)."""
        loss = math.nan
        if objective is not None and math.isfinite(float(objective)):
            loss = -float(objective)
        if not self.objectives:
            return loss, None
        row = np.full(len(self.objectives), math.nan)
        if values is not None and math.isfinite(loss):
            row = np.array([-o.sign * float(v) for o, v in zip(self.objectives, values)], dtype=float)
        if not np.isfinite(row).all():  # one objective missing or not finite: a failure
            row[:], loss = math.nan, math.nan
        return loss, row

    def _record(self, x: np.ndarray, objective: float | None, values: Any = None) -> float:
        """Append a told result (its vector, the loss ``-objective``, NaN for a
        failure; the losses of several objectives) and mark it seen; returns the loss."""
        self._seen.add(self.space.keys(x)[0])
        loss, row = self._losses(objective, values)
        if row is not None:
            self._L.append(row)
        self._X.append(x)
        self._y.append(loss)
        return loss

    @abstractmethod
    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Return up to ``n`` unseen vectors, shape (k, dim)."""

    # ------------------------------------------------------- background fit
    @property
    def fits_in_background(self) -> bool:
        """True when the search hands out fit tasks (:meth:`fit_task`), so that
        :class:`ambs.fitter.BackgroundFitter` can fit its model off the
        dispatch path; searches without a model say False."""
        return False

    background_fit: bool = False  # set by a fitter: proposals use the installed model
    # Whether proposals depend on the results told (a model, a population,
    # promotions): a job proposed before its worker's last result is known is
    # then a worse proposal (see ambs.evaluator.prefetch).
    learns_from_results: bool = True
    n_fits: int = 0  # model fits made in ask (none for a search without a model)

    def fit_task(self) -> Any | None:
        """A fit to run off the dispatch path, or None when there is nothing to fit."""
        return None

    def install(self, task: Any) -> None:
        """Use the model a finished :meth:`fit_task` produced."""
        raise TypeError(f"{type(self).__name__} fits no model")

    # ----------------------------------------------------------------- state
    @property
    def n_told(self) -> int:
        return len(self._y)

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    @property
    def pending(self) -> np.ndarray:
        """Vectors asked for and not yet told, shape (n_pending, dim)."""
        if not self._pending:
            return np.empty((0, self.space.dim))
        return np.array(list(self._pending.values()))

    @property
    def exhausted(self) -> bool:
        """True when every configuration of a finite space was asked for."""
        enum = self._enumerate()
        return enum is not None and len(self._seen) >= len(enum)

    def front(self) -> list[tuple[dict[str, Any], tuple[float, ...]]]:
        """The told results no other dominates in the declared objectives:
        (configuration, the objectives' values), [] for one objective."""
        if not self.objectives or not self._L:
            return []
        from ambs.objectives import nondominated

        rows = self._front_rows()
        L = np.array(self._L)
        idx = rows[nondominated(L[rows])] if len(rows) else rows
        configs = self.space.to_dicts(np.array([self._X[i] for i in idx])) if len(idx) else []
        signs = np.array([o.sign for o in self.objectives])
        return [(c, tuple(float(v) for v in -signs * L[i])) for c, i in zip(configs, idx)]

    def front_budget(self) -> float | None:
        """The budget of the results :meth:`front` ranks: for a multi-fidelity
        search the highest a successful result reached (as ``ambs analyze``
        ranks them); None when every result counts."""
        return None

    def _front_rows(self) -> np.ndarray:
        """The indices of the told results :meth:`front` ranks (see :meth:`front_budget`)."""
        return np.arange(len(self._L))

    def best(self) -> tuple[dict[str, Any], float] | None:
        """Best configuration told so far and its objective (maximized), or None."""
        y = np.array(self._y, dtype=float)
        if not np.isfinite(y).any():
            return None
        i = int(np.nanargmin(y))
        return self.space.to_dicts(self._X[i])[0], -float(y[i])

    # --------------------------------------------------------------- helpers
    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.random_state, self.n_told, self.n_pending])

    def _is_new(self, X: np.ndarray) -> np.ndarray:
        """Mask of rows of ``X`` that are neither seen nor repeated earlier in ``X``."""
        keys = self.space.keys(X)
        mask = np.zeros(len(X), dtype=bool)
        batch: set[bytes] = set()
        for i, k in enumerate(keys):
            if k not in self._seen and k not in batch:
                mask[i] = True
                batch.add(k)
        return mask

    def _enumerate(self) -> np.ndarray | None:
        if not self.space.is_finite or self.space.size > _ENUMERATE_LIMIT:
            return None
        if self._enumeration is None:
            # Steps as large as the largest integer range: every value of every axis.
            self._enumeration = self.space.grid(max(2, int(self.space.sizes.max())))
        return self._enumeration

    def _random_unseen(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` random vectors that were never proposed."""
        out = np.empty((0, self.space.dim))
        for _ in range(10):
            need = n - len(out)
            if need <= 0:
                break
            X = self.space.sample(max(2 * need, 16), rng)
            X = np.vstack([out, X])
            out = X[self._is_new_within(X, len(out))][:n]
        if len(out) < n:
            enum = self._enumerate()
            if enum is not None:
                X = np.vstack([out, enum[rng.permutation(len(enum))]])
                out = X[self._is_new_within(X, len(out))][:n]
        return out

    def _is_new_within(self, X: np.ndarray, n_fixed: int) -> np.ndarray:
        """Like _is_new, but the first ``n_fixed`` rows are kept as they are."""
        mask = self._is_new(X)
        mask[:n_fixed] = True
        return mask
