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
"""

from __future__ import annotations

import math
import statistics
import warnings
from typing import Any

import numpy as np

__all__ = ["RULES", "TELLS", "LearningCurveRule", "MedianRule", "PatienceRule", "RungRule", "StopRule", "make_rule"]


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


def _pow3(x: Any, c: float, a: float, alpha: float) -> Any:
    return c - a * np.power(x, -alpha)


def _exp3(x: Any, c: float, a: float, b: float) -> Any:
    return c - a * np.exp(-b * x)


def _log2(x: Any, c: float, a: float) -> Any:
    return c + a * np.log(x)


def _linear_start(x: Any, y: Any, basis: Any, shapes: Any) -> list[float]:
    """A starting point for ``c - a * basis(x, shape)``: for each shape on a grid,
    ``c`` and ``a >= 0`` by linear least squares; the shape that fits best."""
    best = None
    for shape in shapes:
        g = basis(x, shape)
        design = np.column_stack([np.ones_like(g), -g])
        (c, a), *_ = np.linalg.lstsq(design, y, rcond=None)
        if a < 0:
            c, a = float(np.mean(y)), 0.0
        sse = float(np.sum((y - (c - a * g)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, [float(c), float(a), float(shape)])
    assert best is not None
    return best[1]


def _log_start(x: Any, y: Any) -> list[float]:
    (c, a), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), np.log(x)]), y, rcond=None)
    return [float(c), float(a)]


# name -> (function, starting point from (x, y), lower bounds, upper bounds). The start
# solves the linear parameters for a grid of the shape parameter, so that a curve still
# rising steadily (exp3 near its linear limit: small b, large a) is fitted too.
_FAMILIES: dict[str, tuple[Any, Any, list[float], list[float]]] = {
    "pow3": (_pow3, lambda x, y: _linear_start(x, y, lambda x, al: np.power(x, -al), np.geomspace(1e-3, 5.0, 40)),
             [-np.inf, 0.0, 1e-3], [np.inf, np.inf, 5.0]),
    "exp3": (_exp3, lambda x, y: _linear_start(x, y, lambda x, b: np.exp(-b * x),
                                               np.clip(np.geomspace(1e-3, 30.0, 40) / x[-1], 1e-6, 10.0)),
             [-np.inf, 0.0, 1e-6], [np.inf, np.inf, 10.0]),
    "log2": (_log2, _log_start, [-np.inf, -np.inf], [np.inf, np.inf]),
}


def _gradient(func: Any, at: np.ndarray, params: np.ndarray) -> np.ndarray:
    """d func(at) / d params, by central differences: one row per point of ``at``."""
    grad = np.empty((len(at), len(params)))
    for i in range(len(params)):
        h = 1e-6 * max(abs(params[i]), 1.0)
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        grad[:, i] = (func(at, *up) - func(at, *down)) / (2 * h)
    return grad


def _spread_at(func: Any, params: np.ndarray, cov: np.ndarray, final: float, x: np.ndarray, noise: float) -> float:
    """The standard deviation of ``func(final)`` from the parameters' covariance
    (the delta method, with a numerical gradient). Where the fit left the
    covariance unknown (a flat curve: pow3's exponent does nothing when its
    amplitude is 0), it is ``noise^2 pinv(J'J)`` over the parameters the data
    determine; inf where even that is not finite."""
    if not np.all(np.isfinite(cov)):
        jac = _gradient(func, x, params)
        cov = noise ** 2 * np.linalg.pinv(jac.T @ jac)
    grad = _gradient(func, np.asarray([final], float), params)[0]
    var = float(grad @ cov @ grad)
    return math.sqrt(var) if math.isfinite(var) and var >= 0 else math.inf


def extrapolate(steps: list[float], values: list[float], final: float) -> tuple[float, float] | None:
    """The value a curve reaches at step ``final``, as (mean, standard deviation),
    from least-squares fits of pow3, exp3 and log2 weighted by their BIC; None
    when no family could be fitted. A family's spread at ``final`` comes from its
    residuals through its parameters' covariance, so it grows with the distance
    extrapolated; the families' disagreement adds to it."""
    from scipy.optimize import curve_fit

    x, y = np.asarray(steps, float), np.asarray(values, float)
    n = len(x)
    fits = []
    for func, init, low, high in _FAMILIES.values():
        p0 = np.clip(init(x, y), np.array(low) + 1e-9, np.array(high) - 1e-9)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, cov = curve_fit(func, x, y, p0=p0, bounds=(low, high), maxfev=200)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((y - func(x, *params)) ** 2))
        k = len(params)
        bic = n * math.log(max(sse / n, 1e-12)) + k * math.log(n)
        pred = float(func(np.asarray([final], float), *params)[0])
        if math.isfinite(pred):
            noise = math.sqrt(sse / max(n - k, 1))
            fits.append((bic, pred, math.hypot(noise, _spread_at(func, params, cov, final, x, noise))))
    if not fits:
        return None
    best_bic = min(b for b, _, _ in fits)
    weights = np.array([math.exp(-(b - best_bic) / 2) for b, _, _ in fits])
    weights /= weights.sum()
    preds = np.array([p for _, p, _ in fits])
    mean = float(weights @ preds)
    spread = float(weights @ (preds - mean) ** 2)
    noise = float(weights @ np.array([s ** 2 for _, _, s in fits]))
    return mean, math.sqrt(spread + noise)


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

    def _place(self, job_id: int, step: float, value: float) -> float | None:
        """Record the value at the highest new rung ``step`` reached; the cutoff
        of that rung before it (None: no new rung, or nobody there yet)."""
        k, top = self._next.get(job_id, 0), None
        while self.min_step * self.eta ** k <= step and self.min_step * self.eta ** k < self.final_step:
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


RULES: dict[str, type[StopRule]] = {"median": MedianRule, "patience": PatienceRule, "lce": LearningCurveRule,
                                    "asha": RungRule}


def make_rule(name: str, final_step: float | None = None, tell: str | None = None, **options: Any) -> StopRule:
    """The rule called ``name``, telling the search ``tell`` about a stopped
    evaluation (None: the rule's default); ValueError with one line for an
    unknown one or a missing final step."""
    if name not in RULES:
        raise ValueError(f"unknown stop rule {name!r} (choose from {', '.join(RULES)})")
    if tell is not None and tell not in TELLS:
        raise ValueError(f"unknown value to tell of a stopped evaluation {tell!r} (choose from {', '.join(TELLS)})")
    if name in ("lce", "asha"):
        rule: StopRule = RULES[name](final_step=final_step, **options)  # type: ignore[call-arg]
    else:
        rule = RULES[name](**options)
    if tell is not None:
        rule.tell = tell
    return rule
