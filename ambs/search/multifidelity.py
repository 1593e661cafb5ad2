"""Multi-fidelity searches: successive halving, Hyperband and ASHA.

These searches propose (configuration, budget) pairs: a configuration is first
trained with a small budget (few epochs), and only the best of those results
are *promoted*, the same configuration trained again with ``eta`` times the
budget. A promotion is not a duplicate: the pair (configuration, budget) is
what is never proposed twice.

The ask/tell contract, extended:

* ``ask_jobs(n) -> list[(config, budget)]``: up to ``n`` jobs; the driver puts
  each budget in its :class:`ambs.result.Job`, and the worker calls
  ``run(config, budget)``.
* ``ask(n) -> list[config]``: the same jobs without their budgets (the
  budgets stay pending in the search).
* ``tell([(config, objective)], budgets=None)``: ``budgets[i]`` is the budget
  result ``i`` trained with; ``None`` (for the list or an entry) means the
  budget it was asked with, or the full budget for a result that was never
  asked (an evaluation made elsewhere). A result told without being asked
  (a resumed run replaying its CSV, in the order it was written) is placed in
  the rung of its budget, so that the rungs are rebuilt as they were.

Budgets follow Li et al., *Hyperband* (JMLR 2018), with ``R`` the ratio of
the largest to the smallest budget: ``s_max = floor(log_eta R)`` and rung
``i`` of a bracket ``s`` trains with ``r_i = max_budget * eta^(i - s)``, so that
the top rung always trains with the full budget.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any, ClassVar

import numpy as np
from ConfigSpace import ConfigurationSpace

from ambs.problem import Problem
from ambs.search.base import Result, Search, config_key
from ambs.search.brackets import RULES, Bracket, hyperband_brackets, s_max_for

__all__ = ["ASHA", "Hyperband", "MultiFidelitySearch", "RULES", "SuccessiveHalving", "hyperband_brackets",
           "s_max_for"]


class MultiFidelitySearch(Search):
    """Base of the searches that propose (configuration, budget) pairs.

    Args:
        problem: the search space; its declared budget (``set_budget``) gives
            the default ``min_budget`` and ``max_budget``.
        random_state: seed.
        min_budget, max_budget: the budget range (epochs, ...).
        eta: the halving rate: each rung keeps the best ``1/eta`` and trains
            them with ``eta`` times the budget.
    """

    multi_fidelity: ClassVar[bool] = True
    multi_objective: ClassVar[bool] = True  # rungs ranked by Pareto order (ambs.search.brackets)

    def __init__(
        self,
        problem: Problem | ConfigurationSpace,
        random_state: int | None = None,
        min_budget: float | None = None,
        max_budget: float | None = None,
        eta: int = 3,
    ) -> None:
        super().__init__(problem, random_state)
        declared = self.problem.budget
        if (min_budget is None or max_budget is None) and declared is None:
            raise ValueError(
                f"{type(self).__name__} needs a budget: the problem declares none "
                "(problem.set_budget(low, high)) and no min/max budget was given"
            )
        lo = float(min_budget if min_budget is not None else declared.low)  # type: ignore[union-attr]
        hi = float(max_budget if max_budget is not None else declared.high)  # type: ignore[union-attr]
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
            raise ValueError(f"budgets need 0 < min_budget <= max_budget, got {lo} and {hi}")
        if int(eta) != eta or eta < 2:
            raise ValueError(f"eta must be a whole number >= 2, got {eta}")
        self.min_budget, self.max_budget, self.eta = lo, hi, int(eta)
        self.s_max = s_max_for(hi / lo, self.eta)
        self._vec: dict[Hashable, np.ndarray] = {}  # config key -> vector
        self._pending_budget: dict[str, float] = {}  # config key -> budget asked (one at a time)
        self.told_budgets: list[float] = []  # the budget of each told result, in told order
        self._configs: dict[str, dict[str, Any]] = {}  # config key -> configuration
        self._where: dict[str, Bracket] = {}  # config key -> its bracket
        self._retired: list[str] = []  # keys no bracket will promote, not yet handed out by retired()

    def retired(self) -> list[dict[str, Any]]:
        out = [self._configs[k] for k in self._retired if k in self._configs]
        self._retired = []
        return out

    def ladder(self, s: int | None = None) -> list[float]:
        """Rung budgets of a bracket ``s`` (default ``s_max``): ``max_budget * eta^(i - s)``."""
        s = self.s_max if s is None else s
        return [self.max_budget / self.eta ** (s - i) for i in range(s + 1)]

    # --------------------------------------------------------------- contract
    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Up to ``n`` configurations; their budgets stay pending (see :meth:`ask_jobs`)."""
        return [config for config, _ in self.ask_jobs(n)]

    def ask_jobs(self, n: int = 1) -> list[tuple[dict[str, Any], float]]:
        """Up to ``n`` (configuration, budget) jobs: promotions first, then new configurations."""
        out: list[tuple[dict[str, Any], float]] = []
        for _ in range(max(int(n), 0)):
            job = self._next_job()
            if job is None:
                break
            config, budget = job
            key = config_key(config)
            x = self._vec.get(key)
            if x is None:
                x = self.space.to_vectors([config])[0]
                self._vec[key] = x
            self._pending[f"{key}@{budget!r}"] = x
            self._pending_budget[key] = budget
            self._seen.add(self.space.keys(x)[0])
            out.append((config, budget))
        return out

    def tell(
        self,
        results: Iterable[Result],
        budgets: Iterable[float | None] | None = None,
    ) -> None:
        """Record finished jobs. An :class:`ambs.result.Evaluation` carries its
        budget; for ``(config, objective)`` pairs, ``budgets`` gives them in the
        same order. A job told without a budget was at the one it was asked at
        (or ``max_budget``, for one never asked)."""
        unpacked = [self._outcome(r) for r in results]
        blist = list(budgets) if budgets is not None else [b for _, _, b, _ in unpacked]
        if len(blist) != len(unpacked):
            raise ValueError(f"{len(unpacked)} results but {len(blist)} budgets")
        for (config, objective, _, values), budget in zip(unpacked, blist):
            key = config_key(config)
            asked = self._pending_budget.get(key)
            if budget is None:
                budget = asked if asked is not None else self.max_budget
            budget = float(budget)
            x = self._pending.pop(f"{key}@{budget!r}", None)
            was_asked = x is not None
            if was_asked:
                self._pending_budget.pop(key, None)
            else:
                x = self._vec.get(key)
                if x is None:
                    x = self.space.to_vectors([config])[0]
            self._vec[key] = x
            loss: float | np.ndarray = self._record(x, objective, values)
            if self.objectives:  # the rungs rank the objectives' losses, a sampler is told their values
                loss, objective = self._L[-1], values
            self.told_budgets.append(budget)
            self._on_result(key, dict(config), budget, loss, objective, was_asked)

    # ------------------------------------------------------------ subclasses
    def _take(self, b: Bracket, job: tuple[int, str | None]) -> tuple[dict[str, Any], float] | None:
        """The configuration and budget of bracket ``b``'s ``job``; an open slot
        (key None) gets a new configuration. None, and ``b`` closed, when the
        space has no new configuration left."""
        rung, key = job
        if key is None:
            config = self._new_config()
            if config is None:
                b.closed = True
                return None
            key = config_key(config)
            self._configs[key] = config
            self._where[key] = b
        b.asked[rung].add(key)
        return self._configs[key], b.budgets[rung]

    def _next_job(self) -> tuple[dict[str, Any], float] | None:
        raise NotImplementedError

    def _on_result(self, key: str, config: dict[str, Any], budget: float, loss: float | np.ndarray,
                   objective: Any, was_asked: bool) -> None:
        """Place a told result in its rung: ``loss`` (NaN: failed) and
        ``objective`` as told; with several objectives, their losses' vector
        and their values (None: failed)."""
        raise NotImplementedError

    def _propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._random_unseen(n, rng)

    def _new_config(self) -> dict[str, Any] | None:
        """One configuration never proposed before, or None when the space is used up."""
        X = self._random_unseen(1, self._rng())
        if not len(X):
            return None
        config = self.space.to_dicts(X)[0]
        self._vec[config_key(config)] = X[0]
        return config

    def front_budget(self) -> float | None:
        b = np.asarray(self.told_budgets, dtype=float)
        ok = np.isfinite(np.asarray(self._y, dtype=float))
        return float(b[ok].max()) if ok.any() else None

    def _front_rows(self) -> np.ndarray:
        top = self.front_budget()
        if top is None:
            return np.empty(0, dtype=np.int64)
        ok = np.isfinite(np.asarray(self._y, dtype=float))
        return np.flatnonzero(ok & np.isclose(np.asarray(self.told_budgets, dtype=float), top, rtol=1e-9))

    def best_at_full_budget(self) -> tuple[dict[str, Any], float] | None:
        """Best configuration among the results at ``max_budget``, or None."""
        best = None
        for x, y, b in zip(self._X, self._y, self.told_budgets):
            if math.isfinite(y) and math.isclose(b, self.max_budget, rel_tol=1e-9) and (best is None or y < best[1]):
                best = (x, y)
        if best is None:
            return None
        return self.space.to_dicts(best[0])[0], -best[1]


class Hyperband(MultiFidelitySearch):
    """Hyperband (Li et al. 2018): successive-halving brackets ``s = s_max .. 0``
    in turn, from the most aggressive (many configurations at the smallest
    budget) to plain random search at the full budget.

    Within a bracket, rung ``i+1`` waits for every result of rung ``i`` (the
    paper's synchronous top_k). So that free workers do not idle at that
    barrier, the next bracket starts when no running bracket has a job to
    give; each bracket keeps the paper's ``n_i`` and ``r_i``.
    """

    def __init__(self, problem: Problem | ConfigurationSpace, random_state: int | None = None,
                 min_budget: float | None = None, max_budget: float | None = None, eta: int = 3) -> None:
        super().__init__(problem, random_state, min_budget, max_budget, eta)
        R = self.max_budget / self.min_budget
        # Budgets of each bracket in the problem's units; the top rung is max_budget.
        self.brackets_table = [
            [(n, self.max_budget * r / R) for n, r in rungs] for rungs in hyperband_brackets(R, self.eta)
        ]
        self._active: list[Bracket] = []
        self._opened = 0

    def _bracket_index(self, j: int) -> int:
        """Which row of ``brackets_table`` the ``j``-th bracket opened uses."""
        return j % len(self.brackets_table)

    def _open(self) -> Bracket:
        rungs = self.brackets_table[self._bracket_index(self._opened)]
        self._opened += 1
        b = Bracket([r for _, r in rungs], [n for n, _ in rungs], self.eta)
        self._active.append(b)
        return b

    def _next_job(self) -> tuple[dict[str, Any], float] | None:
        self._active = [b for b in self._active if not b.done]
        # The running brackets first, oldest first; then (None) new ones, one
        # cycle of them at most: a new bracket has a job unless the space is used up.
        for b in list(self._active) + [None] * len(self.brackets_table):
            if b is None:
                if self.exhausted:
                    return None
                b = self._open()
            job = b.next_job()
            taken = self._take(b, job) if job is not None else None
            if taken is not None:
                return taken
        return None

    def _on_result(self, key: str, config: dict[str, Any], budget: float, loss: float | np.ndarray,
                   objective: Any, was_asked: bool) -> None:
        self._configs.setdefault(key, config)
        b = self._where.get(key)
        if b is None:
            b = self._adopt(key, budget)
            if b is None:
                return  # a budget no bracket uses: kept for best(), not in the rungs
        rung = b.rung_of(budget)
        if rung is not None:
            b.record(rung, key, loss)
            if rung < b.top and b.sizes is not None and b.complete(rung):
                # The rung barrier passed: who was not promoted never will be.
                promoted = set(b.promotions(rung + 1))
                left = [k for k in b.results[rung] if k not in promoted and k not in b.retired]
                b.retired.update(left)
                self._retired += left

    def _adopt(self, key: str, budget: float) -> Bracket | None:
        """Place a result told without being asked (resume) in the first bracket
        whose bottom rung has this budget and room, opening brackets in order."""
        for b in self._active:
            if b.rung_of(budget) == 0 and b.sizes is not None and len(b.asked[0]) < b.sizes[0]:
                self._where[key] = b
                return b
        if not any(math.isclose(rungs[0][1], budget, rel_tol=1e-9) for rungs in self.brackets_table):
            return None
        for _ in range(len(self.brackets_table)):
            b = self._open()
            if b.rung_of(budget) == 0:
                self._where[key] = b
                return b
        return None


class SuccessiveHalving(Hyperband):
    """Synchronous successive halving: Hyperband's most aggressive bracket
    (``n = eta^s_max`` configurations at ``max_budget / eta^s_max``), repeated.

    Rung ``i+1`` starts only when every result of rung ``i`` is in, and takes
    its top ``floor(n_i / eta)``. A new bracket starts when the running ones
    have nothing to hand out, so workers do not wait at the barrier.
    """

    def _bracket_index(self, j: int) -> int:
        return 0


class ASHA(MultiFidelitySearch):
    """Asynchronous successive halving (Li et al., *A system for massively
    parallel hyperparameter tuning*, MLSys 2020), with no rung barrier.

    A freed worker gets a promotion if one is due, from the highest rung
    down; else a new configuration at the bottom rung. Rules:

    * ``"sha"``: a configuration in rung ``k`` is due for rung ``k+1`` when it
      is among the top ``floor(|rung k| / eta)`` results told so far at ``k``;
    * ``"median"``: when its result is told, it continues if at least as good
      as the median of rung ``k``'s results so far (median stopping rule).

    Args:
        sampler: where new configurations come from: None draws them at
            random (ASHA); a search (AMBS) makes it model-based with early
            stopping. The sampler is told each configuration's result at the
            bottom rung only: every configuration has one there, all at one
            budget and so comparable, whereas results at larger budgets exist
            only for configurations the rule already picked (fed to the
            model, they would teach it the rule's choices, not the objective).
            Running bottom-rung jobs are pending in the sampler, so its
            constant liar spreads them out.
        rule: ``"sha"`` or ``"median"``.
    """

    def __init__(self, problem: Problem | ConfigurationSpace, random_state: int | None = None,
                 min_budget: float | None = None, max_budget: float | None = None, eta: int = 3,
                 rule: str = "sha", sampler: Search | None = None) -> None:
        super().__init__(problem, random_state, min_budget, max_budget, eta)
        if rule not in RULES:
            raise ValueError(f"unknown promotion rule {rule!r} (choose from {', '.join(RULES)})")
        self.rule = rule
        self.sampler = sampler
        self.bracket = Bracket(self.ladder(), None, self.eta, rule)

    @property  # type: ignore[override]
    def multi_objective(self) -> bool:
        return self.sampler is None or self.sampler.multi_objective

    # A model-based sampler may fit in the background (ambs.fitter): delegate.
    @property
    def fits_in_background(self) -> bool:
        return self.sampler is not None and self.sampler.fits_in_background

    @property  # type: ignore[override]
    def background_fit(self) -> bool:
        return self.sampler is not None and self.sampler.background_fit

    @background_fit.setter
    def background_fit(self, value: bool) -> None:
        if self.sampler is not None:
            self.sampler.background_fit = value

    def fit_task(self) -> Any | None:
        return self.sampler.fit_task() if self.sampler is not None else None

    def install(self, task: Any) -> None:
        if self.sampler is None:
            super().install(task)
        self.sampler.install(task)  # type: ignore[union-attr]

    def _new_config(self) -> dict[str, Any] | None:
        if self.sampler is None:
            return super()._new_config()
        configs = self.sampler.ask(1)
        return configs[0] if configs else None

    def _next_job(self) -> tuple[dict[str, Any], float] | None:
        b = self.bracket
        while True:
            job = b.next_job()
            if job is None:
                return None
            taken = self._take(b, job)
            if taken is not None:
                return taken

    def _on_result(self, key: str, config: dict[str, Any], budget: float, loss: float | np.ndarray,
                   objective: Any, was_asked: bool) -> None:
        self._configs.setdefault(key, config)
        rung = self.bracket.rung_of(budget)
        if rung is None:
            return  # not a rung budget: kept for best() only
        self.bracket.record(rung, key, loss)
        if rung == 0 and self.sampler is not None:
            self.sampler.tell([(config, objective)])
