"""Learning-curve extrapolation for the ``lce`` stop rules (:mod:`ambs.stopping`):
parametric curve families fitted to a partial curve by least squares, and
the value they predict at the final step with its spread."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["extrapolate"]


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
