"""Ackley function in 5 dimensions on [-32.768, 32.768]^5 (maximum 0 at the origin).

A standard multimodal test function: a nearly flat outer region full of
local minima around one deep central well. The objective is the negated
function value, so the search maximizes towards 0.
"""

from __future__ import annotations

import numpy as np

from ambs import Problem

OPTIMUM = 0.0  # the maximum of the objective
DIM = 5
problem = Problem(name="ackley")
for i in range(DIM):
    problem.add_hyperparameter((-32.768, 32.768), f"x{i}")


def ackley(x: np.ndarray, a: float = 20.0, b: float = 0.2, c: float = 2 * np.pi) -> float:
    """Ackley function value (minimum 0 at the origin)."""
    x = np.asarray(x, dtype=float)
    d = len(x)
    return float(
        -a * np.exp(-b * np.sqrt(np.sum(x * x) / d)) - np.exp(np.sum(np.cos(c * x)) / d) + a + np.e
    )


def run(config: dict) -> float:
    """Negated Ackley value of the configuration (higher is better)."""
    return -ackley(np.array([config[f"x{i}"] for i in range(DIM)]))


if __name__ == "__main__":
    print(run(problem.default_configuration))
