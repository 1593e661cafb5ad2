"""Problems: a search space plus a ``run(config)`` function, loaded from a module.

A problem module defines ``problem`` (a :class:`Problem`) and ``run(config)``
returning the objective to *maximize* (a number, or a dict with ``objective``
and extra metadata). It is named by a dotted module name (``problems.ackley``)
or a file path (``problems/ackley.py``).

Worker processes only run configurations: they never read the space. After
:func:`defer_spaces` (the worker start-up calls it), a :class:`Problem`
records its declarations and builds the ConfigSpace objects on first use of
``problem.space``, so that a worker does not import ConfigSpace (and
scipy.stats with it: about 2 s of CPU per process here, far more on a
many-core node reading a shared file system). A problem module that imports
ConfigSpace itself gets the objects at once, as in any other process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambs.declare import DeferredHyperparameter, build, declaration, defer_spaces, deferring, is_configspace
from ambs.errors import ProblemError, SpaceError
from ambs.objectives import DIRECTIONS, Objective

if TYPE_CHECKING:
    from ConfigSpace import ConfigurationSpace

    from ambs.space import Space

__all__ = ["Budget", "DeferredHyperparameter", "Problem", "LoadedProblem", "defer_spaces", "load_problem"]

@dataclass(frozen=True)
class Budget:
    """The range of a problem's training budget (epochs, data fraction, ...)."""

    name: str
    low: float
    high: float
    default: float | None = None  # what run(config) trains with, when not high

    @property
    def unbudgeted(self) -> float:
        """The budget ``run(config)``, called without one, trains with."""
        return float(self.high if self.default is None else self.default)

    def whole(self, budget: float | None) -> int:
        """The whole-number budget (epochs, trees, ...) to train with: the one
        of ``run(config)`` for None, else the nearest whole number within ``[low, high]``."""
        if budget is None:
            return int(round(self.unbudgeted))
        return int(min(max(round(float(budget)), self.low), self.high))

    def as_dict(self) -> dict[str, Any]:
        """The budget for run.json."""
        return {"name": self.name, "low": self.low, "high": self.high, "default": self.unbudgeted}


class Problem:
    """A search space declared hyperparameter by hyperparameter.

    Example:
        >>> problem = Problem()
        >>> problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr")
        >>> problem.add_hyperparameter((8, 512), "units")
        >>> problem.add_hyperparameter(["relu", "tanh", "elu"], "activation")

    Declarations:
        * ``(low, high)``: integers if both bounds are ints, else uniform reals;
        * ``(low, high, "log-uniform")``: the same on a log scale;
        * ``[a, b, c]``: categorical (unordered), or ordinal with ``ordered=True``;
        * a ConfigSpace hyperparameter object, used as it is.

    Args:
        name: a short name for logs and run directories.
        seed: the seed of the underlying ConfigSpace (not of the search).
    """

    def __init__(self, name: str | None = None, seed: int | None = None) -> None:
        self.name = name
        self._seed = seed
        self._space: ConfigurationSpace | None = None
        self._pending: list[Callable[[], Any]] = []  # declarations not yet applied (deferred)
        self._names: list[str] = []  # the hyperparameters declared through this object
        if not deferring():
            self.space  # noqa: B018 - build it now, as every process but a worker does
        self.starting_points: list[dict[str, Any]] = []
        self.metadata: list[str] = []
        self.budget: Budget | None = None
        self.objectives: list[Objective] = []  # declared objectives; none: one, ``objective``
        # An architecture space (ambs.nas.space.arch_problem sets it): the network
        # a configuration describes, for the morphism search.
        self.arch: Any = None
        self._cheap: Callable[[dict[str, Any]], float] | None = None

    @property
    def space(self) -> ConfigurationSpace:
        """The ConfigSpace ``ConfigurationSpace`` (built here on first use when deferred)."""
        if self._space is None:
            from ConfigSpace import ConfigurationSpace

            self._space = ConfigurationSpace(seed=self._seed)
            pending, self._pending = self._pending, []
            for apply in pending:
                apply()
        return self._space

    @space.setter
    def space(self, cs: ConfigurationSpace) -> None:
        self._space, self._pending, self._names = cs, [], list(cs.keys())

    def _declared(self, name: str) -> bool:
        return name in self._names or (self._space is not None and name in self._space)

    def _later(self) -> bool:
        """Record a declaration instead of applying it (see :func:`defer_spaces`)."""
        return self._space is None and deferring()

    # ------------------------------------------------------------ declaring
    def add_hyperparameter(
        self,
        value: Any,
        name: str,
        default_value: Any = None,
        ordered: bool = False,
    ) -> Any:
        """Declare one hyperparameter; returns the ConfigSpace object made for it
        (a :class:`DeferredHyperparameter` in a worker process)."""
        if not isinstance(name, str) or not name:
            raise SpaceError(f"hyperparameter name must be a non-empty string, got {name!r}")
        if self._declared(name):
            raise SpaceError(f"hyperparameter {name!r} is declared twice")
        if is_configspace(value):  # the module imported ConfigSpace: nothing to defer
            if getattr(value, "name", None) != name:
                raise SpaceError(f"hyperparameter object is named {getattr(value, 'name', None)!r}, not {name!r}")
            return self._add(value, name)
        kind, args, kw = declaration(value, name, ordered)
        if default_value is not None:
            kw["default_value"] = default_value
        if self._later():
            self._pending.append(lambda: self._add(build(kind, args, kw, name), name))
            self._names.append(name)
            return DeferredHyperparameter(self, name)
        return self._add(build(kind, args, kw, name), name)

    def _add(self, hp: Any, name: str) -> Any:
        try:
            self.space.add(hp)
        except Exception as exc:  # ConfigSpace raises ValueError/TypeError with details
            raise SpaceError(f"hyperparameter {name!r}: {exc}") from None
        if name not in self._names:
            self._names.append(name)
        return hp

    def add_condition(self, child: str, parent: str, values: Any) -> None:
        """Make ``child`` active only when ``parent`` takes one of ``values``."""
        for n in (child, parent):
            if not self._declared(n):
                raise SpaceError(f"condition names unknown hyperparameter {n!r}")
        vals = list(values) if isinstance(values, (list, tuple, set)) else [values]
        if self._later():
            self._pending.append(lambda: self._condition(child, parent, vals))
            return
        self._condition(child, parent, vals)

    def _condition(self, child: str, parent: str, vals: list) -> None:
        import ConfigSpace as CS

        try:
            if len(vals) == 1:
                cond = CS.EqualsCondition(self.space[child], self.space[parent], vals[0])
            else:
                cond = CS.InCondition(self.space[child], self.space[parent], vals)
            self.space.add(cond)
        except Exception as exc:
            raise SpaceError(f"condition {child!r} on {parent!r}: {exc}") from None

    def add_starting_point(self, **config: Any) -> None:
        """A configuration that model-based searches evaluate first."""
        self.starting_points.append(dict(config))

    def set_budget(self, low: float, high: float, name: str = "epochs", default: float | None = None) -> None:
        """Declare a training budget: ``run(config, budget)`` accepts any value in
        [low, high] (epochs, a training fraction, ...), ``high`` being a full
        training. Multi-fidelity methods give smaller budgets; every other
        method calls ``run(config)``, which trains with ``default`` (``high``
        unless given): the budget recorded for those evaluations
        (``run(config, B)`` under ``ambs search --max-budget B``).
        """
        if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and 0 < low <= high):
            raise SpaceError(f"budget needs 0 < low <= high, got ({low!r}, {high!r})")
        if default is not None and not (isinstance(default, (int, float)) and low <= default <= high):
            raise SpaceError(f"budget default must lie in [{low!r}, {high!r}], got {default!r}")
        self.budget = Budget(name=name, low=low, high=high, default=default)

    def add_objective(self, name: str, direction: str = "max",
                      cheap: Callable[[dict[str, Any]], float] | None = None) -> None:
        """Declare one of several objectives, maximized (``"max"``) or
        minimized (``"min"``); ``run`` then returns a dict holding each by
        name, and the results CSV gets an ``o:<name>`` column for each.

        ``cheap``: a function of the configuration alone that gives this
        objective before training (a parameter count), used by LEMONADE.
        Declare two or more; with none, ``run`` returns one objective, maximized.
        """
        if not isinstance(name, str) or not name.strip() or name != name.strip() or "\n" in name:
            raise SpaceError(f"objective name must be a non-empty string without surrounding spaces, got {name!r}")
        if name in ("objective", "objectives") or name in self.objective_names:
            raise SpaceError(f"objective name {name!r} is reserved or declared twice")
        if direction not in DIRECTIONS:
            raise SpaceError(f"objective {name!r}: direction must be 'max' or 'min', got {direction!r}")
        if cheap is not None and not callable(cheap):
            raise SpaceError(f"objective {name!r}: cheap must be a function of a configuration")
        self.objectives.append(Objective(name, direction, cheap))

    def set_objective_names(self, *names: str) -> None:
        """Declare several maximized objectives at once, in the order ``run``
        returns them (a dict by name, or a list under ``objectives``)."""
        if len(names) < 2 or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise SpaceError(f"objective names are two or more distinct non-empty strings, got {names!r}")
        self.objectives = []
        for n in names:
            self.add_objective(n, "max")

    @property
    def objective_names(self) -> list[str]:
        """The declared objectives' names ([] for a problem with one objective)."""
        return [o.name for o in self.objectives]

    @property
    def multi_objective(self) -> bool:
        """True when the problem declares two or more objectives."""
        return len(self.objectives) >= 2

    @property
    def cheap_objective(self) -> Callable[[dict[str, Any]], float] | None:
        """A cheap objective of a configuration, maximized, for LEMONADE: the
        one set here, else the first declared objective with a ``cheap``
        function (oriented so that larger is better), else None."""
        if self._cheap is not None:
            return self._cheap
        for o in self.objectives:
            if o.cheap is not None:
                fn, sign = o.cheap, o.sign
                return lambda config: sign * float(fn(config))
        return None

    @cheap_objective.setter
    def cheap_objective(self, fn: Callable[[dict[str, Any]], float] | None) -> None:
        self._cheap = fn

    def add_metadata(self, *names: str) -> None:
        """Declare extra result keys that ``run`` returns; each gets a ``m:<name>`` column."""
        for n in names:
            if n in ("objective",) or n in self.metadata:
                raise SpaceError(f"metadata name {n!r} is reserved or declared twice")
            self.metadata.append(n)

    # ------------------------------------------------------------- reading
    @property
    def hyperparameter_names(self) -> list[str]:
        return list(self._names) if self._space is None else list(self.space.keys())

    @property
    def default_configuration(self) -> dict[str, Any]:
        from ambs.space import Space

        return Space(self.space).to_dicts(Space(self.space).default_vector())[0]

    def validate(self) -> None:
        """Check the problem is usable; raises SpaceError with the cause."""
        if len(self.space) == 0:
            raise SpaceError("the search space has no hyperparameters")
        if len(self.objectives) == 1:
            raise SpaceError(f"the problem declares one objective ({self.objectives[0].name!r}); declare two or "
                             "more, or none and return one number (negate one you would minimize)")
        clash = set(self.objective_names) & set(self.metadata)
        if clash:
            raise SpaceError(f"{sorted(clash)[0]!r} is declared both as an objective and as metadata")
        from ambs.space import Space

        space = Space(self.space)
        for point in self.starting_points:
            try:
                space.to_vectors([point])
            except Exception as exc:
                raise SpaceError(f"starting point {point!r} is not in the space: {exc}") from None

    def fingerprint(self) -> str:
        """A short hash of the space, to refuse resuming a run of another space."""
        text = json.dumps(self.space.to_serialized_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Problem(name={self.name!r}, hyperparameters={self.hyperparameter_names})"


@dataclass
class LoadedProblem:
    """A problem module after loading: its space, run function and origin."""

    ref: str
    name: str
    problem: Problem
    run: Callable[..., Any]
    module: Any = field(repr=False)

    @property
    def space(self) -> Space:
        from ambs.space import Space

        return Space(self.problem.space)


def module_file(ref: str) -> Path | None:
    """The file a problem reference names (resolved; it may not exist), or None
    for a dotted module name."""
    path = Path(ref)
    return path.resolve() if ref.endswith(".py") or os.sep in ref or path.is_file() else None


def module_name(path: Path) -> str:
    """The name a problem file is imported under: the same in every process
    that loads it, so a result holding an instance of a class it defines
    unpickles in any process that imports the file under that name."""
    return "ambs_problem_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]


def _import(ref: str) -> Any:
    """Import a module by file path or dotted name; the caller maps errors."""
    path = module_file(ref)
    if path is not None:
        if not path.is_file():
            raise ProblemError(f"problem file not found: {ref}")
        modname = module_name(path)
        if modname in sys.modules:
            return sys.modules[modname]
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ProblemError(f"cannot load {ref} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(modname, None)
            raise
        return module
    # A dotted name resolves from the working directory too, as `python -m` does.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(ref)


def _describe(exc: BaseException) -> str:
    """One line naming an exception raised while importing a problem module."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, line {exc.lineno})"
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    if tb:
        last = tb[-1]
        where = f" ({Path(last.filename).name}, line {last.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def load_problem(ref: str, check: bool = True) -> LoadedProblem:
    """Load and check a problem module; raises ProblemError or SpaceError with one line.

    ``check=False`` (a worker, whose master checked the problem) leaves the
    space unread, so that a deferred one is not built."""
    if not ref or not isinstance(ref, str):
        raise ProblemError("no problem given")
    try:
        module = _import(ref)
    except (ProblemError, SpaceError):
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (ref == exc.name or ref.startswith(exc.name + ".")):
            raise ProblemError(f"problem module {ref!r} not found (give a dotted name or a .py path)") from None
        raise ProblemError(f"cannot import problem {ref!r}: {_describe(exc)}") from None
    except SystemExit as exc:
        raise ProblemError(f"problem {ref!r} called exit({exc.code}) while importing") from None
    except Exception as exc:
        raise ProblemError(f"cannot import problem {ref!r}: {_describe(exc)}") from None
    problem = getattr(module, "problem", None)
    if problem is None:
        raise ProblemError(f"problem module {ref!r} defines no `problem` (an ambs.Problem)")
    if is_configspace(problem) and type(problem).__name__ == "ConfigurationSpace":
        wrapped = Problem()
        wrapped.space = problem
        problem = wrapped
    if not isinstance(problem, Problem):
        raise ProblemError(
            f"`problem` in {ref!r} is a {type(problem).__name__}, not an ambs.Problem"
        )
    run = getattr(module, "run", None)
    if run is None:
        raise ProblemError(f"problem module {ref!r} defines no `run(config)` function")
    if not callable(run):
        raise ProblemError(f"`run` in {ref!r} is not callable")
    if check:
        problem.validate()
    name = problem.name or Path(ref).stem if ref.endswith(".py") else (problem.name or ref.rsplit(".", 1)[-1])
    return LoadedProblem(ref=ref, name=name, problem=problem, run=run, module=module)
