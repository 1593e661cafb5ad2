"""Hartmann function in 6 dimensions on [0, 1]^6 (minimum -3.32237).

The objective is the negated function value, so the maximum is 3.32237.
"""

from __future__ import annotations

import numpy as np

from ambs import Problem

OPTIMUM = 3.32236801141551

ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)

problem = Problem(name="hartmann6")
for i in range(6):
    problem.add_hyperparameter((0.0, 1.0), f"x{i}")


def hartmann6(x: np.ndarray) -> float:
    """Hartmann-6 function value."""
    x = np.asarray(x, dtype=float)
    return float(-np.sum(ALPHA * np.exp(-np.sum(A * (x - P) ** 2, axis=1))))


def run(config: dict) -> float:
    """Negated Hartmann-6 value (higher is better)."""
    return -hartmann6(np.array([config[f"x{i}"] for i in range(6)]))


if __name__ == "__main__":
    print(run(problem.default_configuration))
