"""ZDT1 with 6 variables: two objectives to minimize, a convex Pareto front.

A standard multi-objective test function (Zitzler, Deb and Thiele, 2000):
``f1 = x0``, ``f2 = g (1 - sqrt(f1 / g))`` with ``g = 1 + 9 mean(x1..x5)``.
The front is ``f2 = 1 - sqrt(f1)`` for ``f1`` in [0, 1], reached where
x1..x5 are 0; it dominates a hypervolume of 1.21 - 1/3 (about 0.8767) up
to the reference point (1.1, 1.1), :data:`FRONT_HYPERVOLUME`.
"""

from __future__ import annotations

import numpy as np

from ambs import Problem

DIM = 6
REFERENCE = (1.1, 1.1)  # the hypervolume's reference point (f1, f2)
# Area between the front f2 = 1 - sqrt(f1), f1 in [0, 1], and the reference point.
FRONT_HYPERVOLUME = REFERENCE[0] * REFERENCE[1] - 1.0 / 3.0
problem = Problem(name="zdt1")
for i in range(DIM):
    problem.add_hyperparameter((0.0, 1.0), f"x{i}")
problem.add_objective("f1", "min")
problem.add_objective("f2", "min")


def zdt1(x: np.ndarray) -> tuple[float, float]:
    """(f1, f2) of a point of [0, 1]^DIM."""
    x = np.asarray(x, dtype=float)
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return f1, g * (1.0 - np.sqrt(f1 / g))


def run(config: dict) -> dict:
    """Both objectives of the configuration."""
    f1, f2 = zdt1(np.array([config[f"x{i}"] for i in range(DIM)]))
    return {"f1": f1, "f2": float(f2)}


if __name__ == "__main__":
    print(run(problem.default_configuration))
