"""Evaluators, one backend per module, chosen by name and imported only when used."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from ambs.errors import AmbsError
from ambs.evaluator.base import Evaluator
from ambs.target import RunTarget

# name -> (module, class); a backend's module (and its dependencies, e.g.
# mpi4py or Balsam) is imported only when that backend is chosen. A new
# backend is one line here: the command line, run_search and the contract
# tests take their choices from this table.
EVALUATORS: dict[str, tuple[str, str]] = {
    "serial": ("ambs.evaluator.serial", "SerialEvaluator"),
    "process": ("ambs.evaluator.process", "ProcessEvaluator"),
    "mpi": ("ambs.evaluator.mpi", "MPIEvaluator"),
    "balsam": ("ambs.evaluator.balsam", "BalsamEvaluator"),
}
# Backends for what-if runs, not for real evaluations (ambs simulate).
SIMULATED: dict[str, tuple[str, str]] = {"simulated": ("ambs.simulate", "SimulatedEvaluator")}

__all__ = ["EVALUATORS", "SIMULATED", "Evaluator", "evaluator_class", "evaluator_options", "make_evaluator"]


def evaluator_class(name: str) -> type[Evaluator]:
    """The class of the evaluator ``name``; AmbsError for an unknown name."""
    table = EVALUATORS | SIMULATED
    if name not in table:
        raise AmbsError(f"unknown evaluator {name!r} (choose from {', '.join(table)})")
    module, cls = table[name]
    return getattr(importlib.import_module(module), cls)


def evaluator_options(name: str) -> list[str]:
    """The options the evaluator ``name`` takes, from its constructor."""
    params = inspect.signature(evaluator_class(name).__init__).parameters
    return [p for p in params if p not in ("self", "target", "t0")]


def make_evaluator(name: str, target: RunTarget | str | Callable[..., Any], t0: float, **options: Any) -> Evaluator:
    """Create the evaluator ``name`` for a problem module or a run callable;
    an option it does not take is a one-line AmbsError, not ignored."""
    cls = evaluator_class(name)
    takes = evaluator_options(name)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise AmbsError(f"the {name} evaluator takes no option {unknown[0]} (it takes {', '.join(takes)})")
    try:
        return cls(target, t0, **options)
    except ValueError as exc:
        raise AmbsError(str(exc)) from None
