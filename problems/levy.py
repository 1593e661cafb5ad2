"""Levy function in 10 dimensions on [-10, 10]^10 (minimum 0 at (1, ..., 1)).

Rugged along every axis, with a global structure the search can follow.
The objective is the negated function value (maximum 0).
"""

from __future__ import annotations

import numpy as np

from ambs import Problem

OPTIMUM = 0.0
DIM = 10
problem = Problem(name="levy")
for i in range(DIM):
    problem.add_hyperparameter((-10.0, 10.0), f"x{i}")


def levy(x: np.ndarray) -> float:
    """Levy value, with w_i = 1 + (x_i - 1) / 4."""
    w = 1.0 + (np.asarray(x, dtype=float) - 1.0) / 4.0
    head = np.sin(np.pi * w[0]) ** 2
    mid = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    return float(head + mid + tail)


def run(config: dict) -> float:
    """Negated Levy value (higher is better)."""
    return -levy(np.array([config[f"x{i}"] for i in range(DIM)]))


if __name__ == "__main__":
    print(run(problem.default_configuration))
