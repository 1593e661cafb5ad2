"""Evaluators, one backend per module, chosen by name and imported only when used."""

from __future__ import annotations

import importlib

from ambs.evaluator.base import Evaluator

# name -> (module, class); a backend's module (and its dependencies, e.g.
# mpi4py or Balsam) is imported only when that backend is chosen.
EVALUATORS: dict[str, tuple[str, str]] = {
    "serial": ("ambs.evaluator.serial", "SerialEvaluator"),
    "process": ("ambs.evaluator.process", "ProcessEvaluator"),
    "mpi": ("ambs.evaluator.mpi", "MPIEvaluator"),
    "balsam": ("ambs.evaluator.balsam", "BalsamEvaluator"),
}

__all__ = ["EVALUATORS", "Evaluator", "make_evaluator"]


def make_evaluator(name: str, problem_ref: str, t0: float, **kw) -> Evaluator:
    """Create the evaluator ``name`` for a problem module."""
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r} (choose from {', '.join(EVALUATORS)})")
    module, cls = EVALUATORS[name]
    return getattr(importlib.import_module(module), cls)(problem_ref, t0, **kw)
