"""A Gaussian-process surrogate: Matern 5/2 with one length scale per feature.

scikit-learn's :class:`~sklearn.gaussian_process.GaussianProcessRegressor`
fits the kernel's hyperparameters (marginal likelihood, a few restarts); the
:class:`GPBelief` then keeps that kernel fixed and conditions on the values
constant liar assumes at running evaluations, exactly as on observations:
the posterior mean passes near the lie and the spread there collapses, so a
batch spreads out without refitting the hyperparameters once per point.

The features are :meth:`ambs.space.Space.encode`'s, in [0, 1] (one-hot for
categoricals, -1 for an inactive value): a stationary kernel on that cube is
the usual choice of GP-based hyperparameter search for mixed spaces.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

__all__ = ["GPSurrogate", "GPBelief"]

_JITTER = 1e-8


class GPSurrogate:
    """Gaussian process regression with a fitted Matern 5/2 kernel and noise.

    Args:
        n_restarts: restarts of the marginal-likelihood optimizer beyond the first.
        random_state: seed for those restarts.
    """

    def __init__(self, n_restarts: int = 2, random_state: int | None = None) -> None:
        self.n_restarts = int(n_restarts)
        self.random_state = random_state
        self.kernel_: Any = None
        self._X = np.empty((0, 0))
        self._y = np.empty(0)
        self._shift, self._scale = 0.0, 1.0

    def fit(self, X: np.ndarray, y: np.ndarray) -> GPSurrogate:
        """Fit on encoded points ``X`` (n, d) and targets ``y`` (n,) to minimize."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self._shift = float(y.mean())
        self._scale = float(y.std()) or 1.0
        d = max(X.shape[1], 1)
        kernel = (ConstantKernel(1.0, (1e-2, 1e2))
                  * Matern(length_scale=np.full(d, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
                  + WhiteKernel(1e-4, (1e-8, 1e-1)))
        gp = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=self.n_restarts,
                                      random_state=self.random_state)
        with warnings.catch_warnings():
            # A bound reached by a length scale is common (an irrelevant
            # feature) and harmless here.
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(X if X.shape[1] else np.zeros((len(X), 1)), (y - self._shift) / self._scale)
        self.kernel_ = gp.kernel_
        self._X, self._y = X, y
        return self

    def belief(self) -> GPBelief:
        """An empty belief over the fitted data (see :class:`GPBelief`)."""
        assert self.kernel_ is not None, "fit() first"
        return GPBelief(self.kernel_, self._X, (self._y - self._shift) / self._scale, self._shift, self._scale)

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Mean (n,) and, with ``return_std``, standard deviation (n,)."""
        mu, sd = self.belief().peek(np.asarray(X, dtype=float))
        return (mu, sd) if return_std else mu


class GPBelief:
    """The GP's posterior, conditioned on its data plus the values folded in.

    Handles are the encoded points themselves. Folding a value appends it
    to the conditioning set (the kernel stays fixed) and refactors: a batch
    adds a few points to a few hundred, which costs milliseconds.
    """

    def __init__(self, kernel: Any, X: np.ndarray, z: np.ndarray, shift: float, scale: float) -> None:
        self.kernel = kernel
        self._X = np.asarray(X, dtype=float)
        self._z = np.asarray(z, dtype=float)
        self._shift, self._scale = shift, scale
        self._C = np.empty((0, self._X.shape[1]))
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        self._factor()

    def _features(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return X if X.shape[1] else np.zeros((len(X), 1))

    def _factor(self) -> None:
        K = self.kernel(self._features(self._X)) + _JITTER * np.eye(len(self._X))
        self._L = cholesky(K, lower=True)
        self._alpha = cho_solve((self._L, True), self._z)
        self._cache = None

    def locate(self, X: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(X, dtype=float))

    def __len__(self) -> int:
        return len(self._C)

    def extend(self, handles: np.ndarray) -> None:
        self._C = np.vstack([self._C, handles])
        self._cache = None

    def peek(self, handles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        C = self._features(handles)
        if not len(C):
            return np.empty(0), np.empty(0)
        Ks = self.kernel(C, self._features(self._X))
        mu = Ks @ self._alpha
        v = solve_triangular(self._L, Ks.T, lower=True)
        var = self.kernel.diag(C) - np.einsum("ij,ij->j", v, v)
        return mu * self._scale + self._shift, np.sqrt(np.maximum(var, 0.0)) * self._scale

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            self._cache = self.peek(self._C)
        return self._cache

    def mean_at(self, i: int) -> float:
        return float(self.mean_std()[0][i])

    def add_at(self, i: int, y: float, spread: bool = True) -> None:
        self.add_many(self._C[i : i + 1], y, spread)

    def add_many(self, handles: np.ndarray, y: np.ndarray | float, spread: bool = True) -> None:
        """Condition on values ``y`` at points ``handles``. ``spread`` has no
        effect: a GP's spread at a point it conditions on shrinks either way."""
        H = self.locate(handles)
        if not len(H):
            return
        z = (np.broadcast_to(np.asarray(y, dtype=float), (len(H),)) - self._shift) / self._scale
        self._X = np.vstack([self._X, H])
        self._z = np.concatenate([self._z, z])
        self._factor()
