"""A local model's step: now and then AMBS proposes from a Gaussian process
fitted on the results nearest its best one, inside the box they span.

Why: a forest's mean is constant within a leaf, so near the best result it
cannot tell which way is down; its local search refines by chance, and on
smooth functions (Hartmann-6) it stalls at a regret a GP passes by orders of
magnitude. A GP on the few dozen nearest results is cheap (milliseconds) and
its mean has a slope. The box shrinks as results gather near the best one, a
trust region as in TuRBO (Eriksson et al., 2019), here used for one proposal
in ``polish_every``, so the forest's global search keeps the others.

With several objectives the caller hands in one random augmented Chebyshev
scalarization of them a step (ParEGO's), so that successive steps polish
different parts of the front.

Only the numeric and integer hyperparameters active at the best result move;
the others keep its values, and the neighbours are the results that share them.
The GP sees at most 64 of them, with one length scale a dimension up to 10
dimensions and one for all beyond, so that a step costs milliseconds in a few
dimensions and well under a second in 50.

Fitting the kernel (maximizing the marginal likelihood with L-BFGS-B, from
scikit-learn's start and within its bounds) is most of a step's cost: about 45
evaluations of the likelihood and its gradient. scikit-learn's general kernel
algebra spends about 1 ms on each for 28 points; :func:`matern_likelihood`
computes the same numbers for this one kernel in a quarter of that, and
:class:`_LocalGP` predicts as scikit-learn's GP would, without its per-call
checks (tests compare both with scikit-learn's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from ambs.surrogate.base import one_blas_thread

__all__ = ["polish_step"]

_MIN_NEIGHBOURS = 12
_MAX_NEIGHBOURS = 64  # the GP's data: its fit grows as the cube of it
_ARD_UP_TO = 10  # one length scale a dimension up to this many, one for all beyond (cheaper to fit)
_JITTER = 1e-10  # scikit-learn's default alpha, added to the kernel's diagonal
_SQRT5 = float(np.sqrt(5.0))


def matern_likelihood(theta: np.ndarray, U: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Minus the log marginal likelihood of ``t`` at ``U``, and its gradient in
    ``theta``, for the kernel ``c * Matern52(l) + White(w)`` with ``theta =
    log([c, l..., w])`` (one length scale, or one a dimension): the objective
    scikit-learn's GP maximizes for this kernel, computed directly."""
    n = len(t)
    c, w, scales = np.exp(theta[0]), np.exp(theta[-1]), np.exp(theta[1:-1])
    Z = U / scales
    S = (Z[:, None, :] - Z[None, :, :]) ** 2  # (n, n, d) squared scaled differences
    r2 = S.sum(axis=-1)
    Km, r, e = _matern_of(r2, c)
    K = Km + np.diag(np.full(n, w + _JITTER))
    try:
        L = np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(theta)
    a = cho_solve((L, True), t, check_finite=False)
    lml = -0.5 * t @ a - np.log(np.diag(L)).sum() - 0.5 * n * np.log(2.0 * np.pi)
    W = np.outer(a, a) - cho_solve((L, True), np.eye(n), check_finite=False)
    dr = W * (c * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e)  # d K / d log l_i is this times S_i
    grad = np.empty_like(theta)
    grad[0] = 0.5 * np.sum(W * Km)
    grad[1:-1] = 0.5 * (np.einsum("ij,ijk->k", dr, S) if len(theta) > 3 else np.sum(dr * r2))
    grad[-1] = 0.5 * w * np.trace(W)
    return -lml, -grad


def _matern_of(r2: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``c * Matern52`` at squared scaled distances ``r2``, with the distances
    and ``exp(-sqrt(5) r)`` (the likelihood's gradient reuses both)."""
    r = np.sqrt(r2)
    e = np.exp(-_SQRT5 * r)
    return c * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * e, r, e


def _matern(A: np.ndarray, B: np.ndarray, scales: np.ndarray, c: float) -> np.ndarray:
    """``c * Matern52`` between the rows of ``A`` and ``B`` (no noise term)."""
    D = (A / scales)[:, None, :] - (B / scales)[None, :, :]
    return _matern_of((D * D).sum(axis=-1), c)[0]


class _LocalGP:
    """The polish step's GP: kernel ``c * Matern52(l) + White(w)`` with ``theta
    = log([c, l..., w])``, conditioned on ``U``, ``t``. What scikit-learn's
    ``GaussianProcessRegressor`` computes for this kernel (zero mean, alpha
    1e-10), without its per-call checks and kernel algebra, which cost more
    than the algebra itself on a few dozen points."""

    def __init__(self, theta: np.ndarray, U: np.ndarray, t: np.ndarray) -> None:
        self.theta, self.U = theta, U
        self.c, self.w, self.scales = float(np.exp(theta[0])), float(np.exp(theta[-1])), np.exp(theta[1:-1])
        K = _matern(U, U, self.scales, self.c)
        K[np.diag_indices_from(K)] += self.w + _JITTER
        self.L = np.linalg.cholesky(K)
        self.alpha = cho_solve((self.L, True), t, check_finite=False)

    def mean(self, C: np.ndarray) -> np.ndarray:
        return _matern(C, self.U, self.scales, self.c) @ self.alpha

    def mean_std(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Ks = _matern(C, self.U, self.scales, self.c)
        V = solve_triangular(self.L, Ks.T, lower=True, check_finite=False)
        var = (self.c + self.w) - np.einsum("ij,ij->j", V, V)
        return Ks @ self.alpha, np.sqrt(np.maximum(var, 0.0))

    def conditioned(self, U: np.ndarray, t: np.ndarray) -> _LocalGP:
        """The same kernel on other data (the running evaluations added)."""
        return _LocalGP(self.theta, U, t)


def _fit(U: np.ndarray, t: np.ndarray, d: int) -> _LocalGP:
    """The kernel fitted by L-BFGS-B on :func:`matern_likelihood` from
    scikit-learn's start and within its bounds (c 1, l 0.5, w 1e-4)."""
    from scipy.optimize import minimize

    k = d if d <= _ARD_UP_TO else 1
    theta0 = np.log(np.concatenate([[1.0], np.full(k, 0.5), [1e-4]]))
    bounds = np.log(np.array([[1e-2, 1e2]] * (k + 1) + [[1e-8, 1e-1]]))
    res = minimize(matern_likelihood, theta0, args=(U, t), method="L-BFGS-B", jac=True, bounds=bounds)
    return _LocalGP(res.x, U, t)


@one_blas_thread
def polish_step(space: Any, X: np.ndarray, y: np.ndarray, pending: np.ndarray, rng: np.random.Generator,
                n_candidates: int = 2000, kappa: float = 1.0) -> np.ndarray | None:
    """One vector (dim,) proposed from a local GP around the best of ``X``
    (losses ``y``), away from ``pending``; None when there is too little to fit.
    Its linear algebra runs on one BLAS thread (see :func:`one_blas_thread`)."""
    if len(y) < _MIN_NEIGHBOURS:
        return None
    best = X[int(np.argmin(y))]
    movable = ~space.discrete_index & np.isfinite(best)  # the active numeric and integer ones
    J = np.flatnonzero(movable)
    if not len(J):
        return None
    fixed = np.flatnonzero(~movable)
    same = np.all((X[:, fixed] == best[fixed]) | (np.isnan(X[:, fixed]) & np.isnan(best[fixed])), axis=1)
    Xs, ys = X[same], y[same]
    d = len(J)
    m = min(len(ys), max(4 * d + 4, 20), _MAX_NEIGHBOURS)
    if m < max(d + 3, _MIN_NEIGHBOURS):
        return None
    Z = Xs[:, J]
    if np.isnan(Z).any():
        keep = ~np.isnan(Z).any(axis=1)
        Z, ys = Z[keep], ys[keep]
        m = min(m, len(ys))
    dist = np.abs(Z - best[J]).max(axis=1)
    near = np.argsort(dist, kind="stable")[:m]
    radius = max(float(dist[near].max()), 1e-4)
    lo, hi = np.clip(best[J] - radius, 0.0, 1.0), np.clip(best[J] + radius, 0.0, 1.0)
    width = np.maximum(hi - lo, 1e-12)
    U = (Z[near] - lo) / width
    t = ys[near]
    t = (t - t.mean()) / (t.std() or 1.0)
    rng.integers(2**31)  # the draw a GP's random state once took: the stream of proposals stays as it was
    gp = _fit(U, t, d)
    P = pending[:, J] if len(pending) else np.empty((0, d))
    P = P[~np.isnan(P).any(axis=1)] if len(P) else P
    if len(P):  # the running evaluations as the model expects them (a kriging believer)
        Pu = (P - lo) / width
        inside = np.all((Pu >= 0) & (Pu <= 1), axis=1)
        if inside.any():
            Pu = Pu[inside]
            gp = gp.conditioned(np.vstack([U, Pu]), np.concatenate([t, gp.mean(Pu)]))
    b = (best[J] - lo) / width
    C = np.vstack([rng.random((n_candidates // 2, d)),
                   np.clip(b + rng.normal(0.0, 0.1, (n_candidates // 2, d)), 0.0, 1.0)])
    mu, sd = gp.mean_std(C)
    u = C[int(np.argmin(mu - kappa * sd))]
    x = best.copy()
    x[J] = lo + u * width
    out = space.repair(x[None, :], rng)
    return out[0] if len(out) else None
