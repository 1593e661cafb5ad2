"""Stopping rules on in-training reports (``ambs search --stop-rule``).

A rule lives on the master and sees every evaluation's learning curve as it
is reported (:mod:`ambs.reports`): ``decide(job_id, step, value)`` records the
point and says whether that evaluation should stop now; ``finish`` tells it
an evaluation's final objective. Values are maximized, like the objective.
Rules work with every search method; they are not the budget-rung stoppers
of ``--stopper sha|median`` (:mod:`ambs.search.multifidelity`), which retrain
at growing budgets.

* ``median``: stop at step s when the value is below the median of the other
  evaluations' values at step s, once ``min_others`` of them reached s.
* ``patience``: stop when ``patience`` reports in a row did not improve on
  the best value of the evaluation's own curve.
* ``lce``: learning-curve extrapolation: stop when the curve, extrapolated to
  the final step, is unlikely to beat the best finished value.
* ``asha``: asynchronous successive halving on the reported steps: at steps
  1, 3, 9, ... keep going only when in the top third of those that reached it.
* ``asha-lce``: ``asha``'s rungs, then ``lce`` past the last of them.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from ambs.curvefit import extrapolate

__all__ = ["RULES", "TELLS", "LearningCurveRule", "MedianRule", "PatienceRule", "RungCurveRule", "RungRule", "StopRule",
           "extrapolate", "make_rule"]


TELLS = ("value", "worst", "scaled")


class StopRule:
    """The curves so far, and the decision for the latest point of one of them.

    Args:
        grace: reports an evaluation makes before the rule may stop it.

    ``tell`` says what the search is told about a stopped evaluation
    (:meth:`told`): ``"value"``, its objective where it stopped; ``"worst"``,
    no better than the worst evaluation that ran to its end; ``"scaled"``,
    its value plus the median gain the evaluations that ran to their end
    made from that step to their end.
    """

    name = ""
    tell = "value"

    def __init__(self, grace: int = 3) -> None:
        self.grace = int(grace)
        self.curves: dict[int, list[tuple[float, float]]] = {}
        self.finals: dict[int, float] = {}  # every evaluation that ended ok, stopped or not
        self.full: dict[int, float] = {}  # those that ran to their end

    def observe(self, job_id: int, step: float, value: float) -> None:
        """Record one point without deciding (reports read back on resume)."""
        if math.isfinite(value):
            self.curves.setdefault(job_id, []).append((float(step), float(value)))

    def decide(self, job_id: int, step: float, value: float) -> bool:
        """Record the point; True when evaluation ``job_id`` should stop now."""
        self.observe(job_id, step, value)
        if not math.isfinite(value):
            return True  # a diverged training gets no better
        curve = self.curves.get(job_id, [])
        return len(curve) > self.grace and self._stop(job_id, curve)

    def finish(self, job_id: int, objective: float | None, stopped: float | None = None) -> None:
        """An evaluation finished; ``objective`` None when it did not end ok;
        ``stopped`` the step at which it was told to stop (None: it ran to its end)."""
        if objective is not None and math.isfinite(objective):
            self.finals[job_id] = float(objective)
            if stopped is None:
                self.full[job_id] = float(objective)

    def told(self, job_id: int, step: float, value: float) -> float:
        """What the search is told about an evaluation stopped at ``step`` with ``value`` (see ``tell``)."""
        if self.tell == "worst" and self.full:
            return min(value, min(self.full.values()))
        if self.tell == "scaled":
            gains = [final - v for j, final in self.full.items()
                     if (v := _value_at(self.curves.get(j, []), step)) is not None]
            if gains:
                return value + statistics.median(gains)
        return value

    def _stop(self, job_id: int, curve: list[tuple[float, float]]) -> bool:
        raise NotImplementedError


def _value_at(curve: list[tuple[float, float]], step: float) -> float | None:
    """The latest value reported at or before ``step`` by a curve that reached it."""
    if not curve or curve[-1][0] < step:
        return None
    last = None
    for s, v in curve:
        if s > step:
            break
        last = v
    return last


def _mean_to(curve: list[tuple[float, float]], step: float) -> float | None:
    """The mean of a curve's values at or before ``step``, for a curve that reached it."""
    if not curve or curve[-1][0] < step:
        return None
    vals = [v for s, v in curve if s <= step]
    return sum(vals) / len(vals) if vals else None


class MedianRule(StopRule):
    """Median stopping (Golovin et al., Google Vizier, 2017): stop when the value at
    step s is below the median of the others' values at s.

    Args:
        against: ``"all"``, the other curves that reached s, stopped or running;
            ``"finished"``, the curves of the evaluations that ran to their end
            (Vizier's completed trials), so that the curves a rule cut short do
            not leave only the best to compare with.
        vizier: the paper's comparison: the evaluation's best value up to s
            against the median of the others' running means up to s.
    """

    name = "median"

    def __init__(self, grace: int = 3, min_others: int = 3, against: str = "all", vizier: bool = False) -> None:
        super().__init__(grace)
        if against not in ("all", "finished"):
            raise ValueError(f"the median rule compares against all or finished curves, not {against!r}")
        self.min_others, self.against, self.vizier = int(min_others), against, bool(vizier)

    def _stop(self, job_id: int, curve: list[tuple[float, float]]) -> bool:
        step, value = curve[-1]
        ids = self.full if self.against == "finished" else self.curves
        at = _mean_to if self.vizier else _value_at
        others = [v for j in ids if j != job_id and (v := at(self.curves.get(j, []), step)) is not None]
        if self.vizier:
            value = max(v for _, v in curve)
        return len(others) >= self.min_others and value < statistics.median(others)


class PatienceRule(StopRule):
    """Stop when ``patience`` reports in a row did not beat the curve's own best by ``min_delta``."""

    name = "patience"

    def __init__(self, grace: int = 3, patience: int = 5, min_delta: float = 0.0) -> None:
        super().__init__(grace)
        self.patience = int(patience)
        self.min_delta = float(min_delta)

    def _stop(self, job_id: int, curve: list[tuple[float, float]]) -> bool:
        if len(curve) <= self.patience:
            return False
        best_before = max(v for _, v in curve[: -self.patience])
        return max(v for _, v in curve[-self.patience:]) <= best_before + self.min_delta


class LearningCurveRule(StopRule):
    """Learning-curve extrapolation: a simplification of Domhan, Springenberg &
    Hutter, "Speeding up automatic hyperparameter optimization of deep neural
    networks by extrapolation of learning curves" (IJCAI 2015).

    The partial curve is fitted by least squares with three parametric
    families (pow3 ``c - a x^-alpha``, exp3 ``c - a exp(-b x)``, log2
    ``c + a log x``), combined by their BIC weights instead of the paper's
    MCMC over a weighted ensemble of eleven; the value at ``final_step`` is
    taken as normal, its spread from the residuals (through each fit's
    parameter covariance) and the families' disagreement. The evaluation stops when the probability that it beats
    the best finished objective is below ``threshold``.
    """

    name = "lce"

    def __init__(self, grace: int = 4, final_step: float | None = None, threshold: float = 0.05,
                 refit_growth: float = 1.15) -> None:
        super().__init__(grace)
        if final_step is None or not final_step > 0:
            raise ValueError("the lce stop rule needs the final step: the problem's budget, --max-budget "
                             "or --stop-final-step")
        self.final_step = float(final_step)
        self.threshold = float(threshold)
        # A fit costs ~15 ms: refit a curve only once it grew by this factor since its
        # last fit (reports 5, 6, 7, 9, 11, 13, 15, 18, ...: about 20 fits for 100 reports).
        self.refit_growth = float(refit_growth)
        self._fitted_at: dict[int, int] = {}

    def probability(self, curve: list[tuple[float, float]]) -> float | None:
        """P(the curve's value at the final step beats the best finished one); None when unknown."""
        if not self.finals:
            return None
        best = max(self.finals.values())
        steps = [max(s, 1e-9) for s, _ in curve]
        if steps[-1] >= self.final_step:
            return None
        fit = extrapolate(steps, [v for _, v in curve], self.final_step)
        if fit is None:
            return None
        mean, sd = fit
        sd = max(sd, 1e-12)
        return 0.5 * math.erfc((best - mean) / (sd * math.sqrt(2)))

    def _stop(self, job_id: int, curve: list[tuple[float, float]]) -> bool:
        if len(curve) < self._fitted_at.get(job_id, 0) * self.refit_growth:
            return False
        self._fitted_at[job_id] = len(curve)
        p = self.probability(curve)
        return p is not None and p < self.threshold


class RungRule(StopRule):
    """Asynchronous successive halving on reported steps (Li et al., "A system
    for massively parallel hyperparameter tuning", MLSys 2020, used as a
    stopping rule): rungs at steps ``min_step * eta^k``; when an evaluation's
    report first reaches a rung, it stops unless its value is in the top
    ``1/eta`` of the values recorded at that rung before it (the first to
    arrive always goes on), and its value joins the rung. No barrier: a
    decision never waits for other evaluations. Rungs below ``final_step``
    only (the end is no rung).

    A stopped evaluation is told to the search ``"scaled"`` by default (its
    value plus the median gain full trainings made after that step): a value
    at rung 1 or 3 is far below what the configuration would end at, and told
    as it is, it makes the model rank the configurations that reached further
    above better ones cut short (measured in ``bench/stopping.py``)."""

    name = "asha"
    tell = "scaled"

    def __init__(self, grace: int = 0, min_step: float = 1.0, eta: int = 3, final_step: float | None = None) -> None:
        super().__init__(grace)
        if not min_step > 0 or int(eta) != eta or eta < 2:
            raise ValueError(f"the asha stop rule needs min_step > 0 and a whole eta >= 2, got {min_step} and {eta}")
        self.min_step, self.eta = float(min_step), int(eta)
        self.final_step = float(final_step) if final_step else math.inf
        self.rungs: list[dict[int, float]] = []  # rung k: job id -> its value there
        self._next: dict[int, int] = {}  # job id -> the lowest rung it has not reached

    def _is_rung(self, k: int) -> bool:
        """Whether rung ``k`` (at step ``min_step * eta^k``) lies below the final step."""
        return self.min_step * self.eta ** k < self.final_step

    def _place(self, job_id: int, step: float, value: float) -> float | None:
        """Record the value at the highest new rung ``step`` reached; the cutoff
        of that rung before it (None: no new rung, or nobody there yet)."""
        k, top = self._next.get(job_id, 0), None
        while self.min_step * self.eta ** k <= step and self._is_rung(k):
            top, k = k, k + 1
        if top is None:
            return None
        self._next[job_id] = k
        while len(self.rungs) <= top:
            self.rungs.append({})
        before = [v for v in self.rungs[top].values() if math.isfinite(v)]
        self.rungs[top][job_id] = value
        return float(np.quantile(before, 1 - 1 / self.eta)) if before else None

    def observe(self, job_id: int, step: float, value: float) -> None:
        super().observe(job_id, step, value)
        self._place(job_id, float(step), float(value))

    def decide(self, job_id: int, step: float, value: float) -> bool:
        StopRule.observe(self, job_id, step, value)
        if not math.isfinite(value):
            return True
        cutoff = self._place(job_id, float(step), float(value))
        return len(self.curves.get(job_id, [])) > self.grace and cutoff is not None and value < cutoff


class RungCurveRule(RungRule):
    """The ``asha`` rule's rungs, then learning-curve extrapolation (``lce``)
    past the last rung: a training that survived every rung is still stopped
    when its curve, extrapolated to ``final_step``, is unlikely (below
    ``threshold``) to beat the best finished objective. Past its last rung
    ASHA lets a survivor train to the end, and most survivors end below the
    best (``bench/stopping.py``); the extrapolation, with every rung's step
    behind it, has the points it needs there."""

    name = "asha-lce"

    def __init__(self, grace: int = 0, min_step: float = 1.0, eta: int = 3, final_step: float | None = None,
                 threshold: float = 0.05) -> None:
        if final_step is None or not final_step > 0:
            raise ValueError("the asha-lce stop rule needs the final step: the problem's budget, --max-budget "
                             "or --stop-final-step")
        super().__init__(grace, min_step, eta, final_step)
        self._lce = LearningCurveRule(final_step=final_step, threshold=threshold)
        self._lce.curves, self._lce.finals = self.curves, self.finals  # one record of the curves
        k = 0
        while self._is_rung(k + 1):
            k += 1
        self.last_rung = self.min_step * self.eta ** k

    def decide(self, job_id: int, step: float, value: float) -> bool:
        if super().decide(job_id, step, value):
            return True
        curve = self.curves.get(job_id, [])
        return step > self.last_rung and len(curve) > self._lce.grace and self._lce._stop(job_id, curve)


RULES: dict[str, type[StopRule]] = {"median": MedianRule, "patience": PatienceRule, "lce": LearningCurveRule,
                                    "asha": RungRule, "asha-lce": RungCurveRule}


def make_rule(name: str, final_step: float | None = None, tell: str | None = None, **options: Any) -> StopRule:
    """The rule called ``name``, telling the search ``tell`` about a stopped
    evaluation (None: the rule's default); ValueError with one line for an
    unknown one or a missing final step."""
    if name not in RULES:
        raise ValueError(f"unknown stop rule {name!r} (choose from {', '.join(RULES)})")
    if tell is not None and tell not in TELLS:
        raise ValueError(f"unknown value to tell of a stopped evaluation {tell!r} (choose from {', '.join(TELLS)})")
    if name in ("lce", "asha", "asha-lce"):
        rule: StopRule = RULES[name](final_step=final_step, **options)  # type: ignore[call-arg]
    else:
        rule = RULES[name](**options)
    if tell is not None:
        rule.tell = tell
    return rule
