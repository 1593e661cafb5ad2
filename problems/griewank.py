"""Griewank function in 8 dimensions on [-600, 600]^8 (minimum 0 at the origin).

A wide, gently curved bowl covered in a regular lattice of small local
minima. The objective is the negated function value (maximum 0).
"""

from __future__ import annotations

import numpy as np

from ambs import Problem

OPTIMUM = 0.0
DIM = 8
problem = Problem(name="griewank")
for i in range(DIM):
    problem.add_hyperparameter((-600.0, 600.0), f"x{i}")


def griewank(x: np.ndarray) -> float:
    """Griewank value: 1 + sum(x^2)/4000 - prod(cos(x_i / sqrt(i)))."""
    x = np.asarray(x, dtype=float)
    i = np.arange(1, len(x) + 1)
    return float(1.0 + np.sum(x * x) / 4000.0 - np.prod(np.cos(x / np.sqrt(i))))


def run(config: dict) -> float:
    """Negated Griewank value (higher is better)."""
    return -griewank(np.array([config[f"x{i}"] for i in range(DIM)]))


if __name__ == "__main__":
    print(run(problem.default_configuration))
