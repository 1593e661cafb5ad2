"""Rosenbrock function in 5 dimensions on [-5, 10]^5 (minimum 0 at (1, ..., 1)).

A long, narrow, curved valley: easy to find, hard to follow to its end.
Values span many orders of magnitude. The objective is the negated function
value (maximum 0).
"""

from __future__ import annotations

import numpy as np

from ambs import Problem

OPTIMUM = 0.0
DIM = 5
problem = Problem(name="rosenbrock")
for i in range(DIM):
    problem.add_hyperparameter((-5.0, 10.0), f"x{i}")


def rosenbrock(x: np.ndarray) -> float:
    """Rosenbrock value: sum(100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2)."""
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def run(config: dict) -> float:
    """Negated Rosenbrock value (higher is better)."""
    return -rosenbrock(np.array([config[f"x{i}"] for i in range(DIM)]))


if __name__ == "__main__":
    print(run(problem.default_configuration))
