"""Hyperparameter declarations: checked without ConfigSpace, built with it.

:class:`ambs.problem.Problem` checks each declaration here at once (a bad
range is a one-line error where it is written) and builds the ConfigSpace
object from it, now or, in a worker process after :func:`defer_spaces`, when
something first reads the space.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from ambs.errors import SpaceError

__all__ = ["DeferredHyperparameter", "build", "declaration", "defer_spaces", "deferring", "is_configspace"]

_PRIORS = {"uniform": False, "log-uniform": True, "loguniform": True, "log": True}
_DEFER = False


def defer_spaces(on: bool = True) -> None:
    """Make the problems declared from now on in this process record their
    hyperparameters and build the space on first use (worker processes)."""
    global _DEFER
    _DEFER = on


def deferring() -> bool:
    """Defer unless ConfigSpace is loaded anyway (a problem module that uses it)."""
    return _DEFER and "ConfigSpace" not in sys.modules


def is_configspace(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "ConfigSpace"


class DeferredHyperparameter:
    """What :meth:`Problem.add_hyperparameter` returns while the space is
    deferred (worker processes): reading an attribute builds the space and
    reads it from the ConfigSpace object."""

    def __init__(self, problem: Any, name: str) -> None:
        self._problem, self.name = problem, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._problem.space[self.name], attr)

    def __repr__(self) -> str:
        return f"DeferredHyperparameter({self.name!r})"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def build(kind: str, args: tuple, kw: dict, name: str | None = None) -> Any:
    """The ConfigSpace object of a checked declaration."""
    import ConfigSpace as CS

    make = {"int": CS.UniformIntegerHyperparameter, "float": CS.UniformFloatHyperparameter,
            "ordinal": CS.OrdinalHyperparameter, "categorical": CS.CategoricalHyperparameter}[kind]
    try:
        return make(*args, **kw)
    except Exception as exc:  # ConfigSpace raises ValueError/TypeError with details
        raise SpaceError(f"hyperparameter {name or args[0]!r}: {exc}") from None

def declaration(value: Any, name: str, ordered: bool) -> tuple[str, tuple, dict]:
    """Check a declaration without ConfigSpace; its kind and arguments."""
    if isinstance(value, tuple):
        if len(value) not in (2, 3):
            raise SpaceError(
                f"hyperparameter {name!r}: a range is (low, high) or (low, high, prior), "
                f"got {value!r}"
            )
        low, high = value[0], value[1]
        prior = value[2] if len(value) == 3 else "uniform"
        if prior not in _PRIORS:
            raise SpaceError(
                f"hyperparameter {name!r}: unknown prior {prior!r} "
                f"(use 'uniform' or 'log-uniform')"
            )
        for b in (low, high):
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b):
                raise SpaceError(f"hyperparameter {name!r}: bounds must be finite numbers, got {value!r}")
        if not low < high:
            raise SpaceError(f"hyperparameter {name!r}: low must be below high, got {value!r}")
        log = _PRIORS[prior]
        if log and low <= 0:
            raise SpaceError(f"hyperparameter {name!r}: a log-uniform range needs low > 0, got {value!r}")
        if _is_int(low) and _is_int(high):
            return "int", (name, low, high), {"log": log}
        return "float", (name, float(low), float(high)), {"log": log}
    if isinstance(value, (list, Sequence)) and not isinstance(value, (str, bytes)):
        choices = list(value)
        if not choices:
            raise SpaceError(f"hyperparameter {name!r}: the list of choices is empty")
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(f"hyperparameter {name!r}: the choices repeat a value")
        return ("ordinal" if ordered else "categorical"), (name, choices), {}
    raise SpaceError(
        f"hyperparameter {name!r}: cannot declare from {value!r} "
        "(use (low, high), (low, high, 'log-uniform') or a list of choices)"
    )
