"""Acquisition functions: pure numpy functions of the surrogate's (mu, sigma).

Everything is on the *minimization* scale (the search minimizes the loss
``-objective``), and every function returns a score where **lower is
better**, so the search takes the argmin whatever the acquisition.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

__all__ = ["ACQUISITIONS", "lcb", "ei", "pi", "score"]


def lcb(mu: np.ndarray, sigma: np.ndarray, kappa: float = 1.96) -> np.ndarray:
    """Lower confidence bound ``mu - kappa * sigma``.

    Args:
        mu, sigma: predicted loss mean and standard deviation, shape (n,).
        kappa: exploration weight; 0 is pure exploitation.

    Returns:
        shape (n,), lower is better.
    """
    return mu - kappa * sigma


def ei(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float = 0.01) -> np.ndarray:
    """Negative expected improvement over ``best`` (the lowest loss seen).

    Returns:
        shape (n,), ``-E[max(best - xi - Y, 0)]``; lower is better.
    """
    sigma = np.maximum(sigma, 1e-12)
    imp = best - xi - mu
    z = imp / sigma
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    return -(imp * ndtr(z) + sigma * pdf)


def pi(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float = 0.01) -> np.ndarray:
    """Negative probability of improving on ``best`` by at least ``xi``.

    Returns:
        shape (n,), ``-P[Y < best - xi]``; lower is better.
    """
    sigma = np.maximum(sigma, 1e-12)
    return -ndtr((best - xi - mu) / sigma)


ACQUISITIONS = ("lcb", "ucb", "ei", "pi")


def score(
    name: str, mu: np.ndarray, sigma: np.ndarray, best: float, kappa: float, xi: float
) -> np.ndarray:
    """Dispatch by name; ``ucb`` on the maximized objective is ``lcb`` on the loss."""
    if name in ("lcb", "ucb"):
        return lcb(mu, sigma, kappa)
    if name == "ei":
        return ei(mu, sigma, best, xi)
    if name == "pi":
        return pi(mu, sigma, best, xi)
    raise ValueError(f"unknown acquisition {name!r} (choose from {', '.join(ACQUISITIONS)})")
