"""Branin function on [-5, 10] x [0, 15] (three global minima of 0.397887).

The objective is the negated function value, so the maximum is -0.397887.
"""

from __future__ import annotations

import math

from ambs import Problem

OPTIMUM = -0.397887357729738

problem = Problem(name="branin")
problem.add_hyperparameter((-5.0, 10.0), "x0")
problem.add_hyperparameter((0.0, 15.0), "x1")


def branin(x0: float, x1: float) -> float:
    """Branin-Hoo function value."""
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return (x1 - b * x0**2 + c * x0 - r) ** 2 + s * (1 - t) * math.cos(x0) + s


def run(config: dict) -> float:
    """Negated Branin value (higher is better)."""
    return -branin(config["x0"], config["x1"])


if __name__ == "__main__":
    print(run(problem.default_configuration))
