"""What workers evaluate: a problem module's ``run``, or a Python callable.

Every evaluator takes a :class:`RunTarget`. A module reference (a dotted
name or a ``.py`` path) is loaded on each worker, which imports the module
once. A callable travels to the workers by reference (pickle): it must be a
function defined at the top level of a module the workers can import, as for
:mod:`multiprocessing`; a function of the script that ``mpiexec`` or the
process pool runs (``__main__``) works when the script guards its search with
``if __name__ == "__main__":``. The serial evaluator runs any callable.

A backend that starts workers by command line (Balsam) names a callable as
``module:function`` or ``/path/script.py:function`` (:meth:`RunTarget.portable_ref`).
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ambs.errors import AmbsError

__all__ = ["RunTarget", "as_target"]


@dataclass(frozen=True)
class RunTarget:
    """The run function of a search, by module reference or as a callable.

    Exactly one of ``ref`` and ``func`` is set.
    """

    ref: str | None = None
    func: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if (self.ref is None) == (self.func is None):
            raise ValueError("a run target is a module reference or a callable, exactly one of them")
        if self.func is not None and not callable(self.func):
            raise AmbsError(f"run must be callable, not a {type(self.func).__name__}")

    def load(self, check: bool = True) -> Callable[..., Any]:
        """The run function (imports the problem module for a reference);
        ``check=False`` leaves a problem module's space unchecked (a worker's)."""
        if self.func is not None:
            return self.func
        from ambs.problem import _import, load_problem

        module, _, name = self.ref.rpartition(":")  # type: ignore[union-attr]
        if not (module and all(part.isidentifier() for part in name.split("."))):
            return load_problem(self.ref, check=check).run  # type: ignore[arg-type]
        obj: Any = _import(module)
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise AmbsError(f"{module} has no {name}")
        if not callable(obj):
            raise AmbsError(f"{self.ref} is not callable")
        return obj

    def portable_ref(self) -> str:
        """A reference another program can load: the module reference, or
        ``module:function`` (``/path/script.py:function`` for a script's own)."""
        if self.ref is not None:
            return self.ref
        module = getattr(self.func, "__module__", None)
        name = getattr(self.func, "__qualname__", "")
        if not module or not name or "<" in name:
            raise AmbsError(f"{self.describe()} is not a top-level function, which another program could load")
        if module == "__main__":
            path = getattr(sys.modules.get("__main__"), "__file__", None)
            if not path:
                raise AmbsError(f"{self.describe()} is defined interactively; define it in a file")
            from pathlib import Path

            module = str(Path(path).resolve())
        return f"{module}:{name}"

    def check_portable(self, evaluator: str) -> None:
        """Raise a one-line AmbsError when the callable cannot reach other
        processes (a lambda, a closure, a method of a local class)."""
        if self.func is None:
            return
        try:
            pickle.dumps(self.func)
        except Exception as exc:  # noqa: BLE001 - pickle raises several kinds
            raise AmbsError(
                f"the {evaluator} evaluator runs {self.describe()} in other processes, which need a "
                f"function defined at the top level of an importable module ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); define it there, or use the serial "
                "evaluator") from None

    def describe(self) -> str:
        """The reference, or ``module:qualified_name`` of the callable."""
        if self.ref is not None:
            return self.ref
        func = self.func
        module = getattr(func, "__module__", None) or "?"
        name = getattr(func, "__qualname__", None) or type(func).__name__
        return f"{module}:{name}"

    def __str__(self) -> str:
        return self.describe()


def as_target(target: RunTarget | str | Callable[..., Any]) -> RunTarget:
    """A :class:`RunTarget` from a target, a module reference or a callable."""
    if isinstance(target, RunTarget):
        return target
    if isinstance(target, str):
        return RunTarget(ref=target)
    return RunTarget(func=target)
