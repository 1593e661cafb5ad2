"""A search from a method name and options: the one place that knows which
option each method takes, for the command line and :func:`ambs.run_search`.

``OPTIONS`` maps each registered method to the options it takes (the name a
user gives, as ``--kappa`` or ``kappa=``, and the constructor's parameter);
an option a method does not take is an error from Python and is ignored on
the command line, whose flags serve every method.
"""

from __future__ import annotations

from typing import Any

from ambs.errors import AmbsError
from ambs.problem import Problem
from ambs.search import ALL_METHODS, MULTI_FIDELITY
from ambs.search.base import Search

__all__ = ["BUDGET_OPTIONS", "OPTIONS", "make_search", "options_of"]

BUDGET_OPTIONS = ("min_budget", "max_budget", "eta")
_AMBS = ("surrogate", "acquisition", "kappa", "xi", "liar", "front_acquisition", "n_initial_points", "initial_design",
         "max_fit_rows", "polish_every", "y_transform", "fit_jobs")

# method -> the options it takes; a registered method missing here takes none.
OPTIONS: dict[str, tuple[str, ...]] = {
    "ambs": (*_AMBS, "stopper", *BUDGET_OPTIONS),
    "grid": ("grid_steps",),
    "evolution": ("population_size", "sample_size"),
    "lemonade": ("population_size", "sample_size"),
    "sha": BUDGET_OPTIONS,
    "hyperband": BUDGET_OPTIONS,
    "asha": ("stopper", *BUDGET_OPTIONS),
}


def options_of(method: str) -> tuple[str, ...]:
    """The options ``method`` takes. Every method takes ``max_budget``: a search
    that is not multi-fidelity trains every configuration with it
    (``run(config, max_budget)``, e.g. one epoch for a quick trial)."""
    own = OPTIONS.get(method, ())
    return own if "max_budget" in own else (*own, "max_budget")


def fit_cores() -> int:
    """Cores for fitting: those this process may run on (the launcher's binding), at most 4."""
    from ambs.fitter import usable_cores

    return max(1, min(usable_cores(), 4))


def make_search(method: str, problem: Problem, seed: int | None = None, **options: Any) -> Search:
    """The search ``method`` on ``problem``; raises AmbsError (one line) for an
    unknown method, an option it does not take, or a value it refuses."""
    if method not in ALL_METHODS:
        raise AmbsError(f"unknown method {method!r} (choose from {', '.join(ALL_METHODS)})")
    unknown = sorted(set(options) - set(options_of(method)))
    if unknown:
        takes = ", ".join(options_of(method)) or "no options"
        raise AmbsError(f"method {method} takes no option {unknown[0]} (it takes {takes})")
    _check_budget(method, problem, options)
    try:
        search = _make(method, problem, seed, options)
    except ValueError as exc:
        raise AmbsError(str(exc)) from None
    if not search.multi_fidelity and options.get("max_budget") is not None:
        search.train_budget = float(options["max_budget"])
    return search


def _check_budget(method: str, problem: Problem, o: dict[str, Any]) -> None:
    """A multi-fidelity method, or a stopper, needs a budget range to work on;
    another method takes one budget for every configuration (``max_budget``)."""
    stopper = o.get("stopper")
    if method not in MULTI_FIDELITY and stopper is None:
        if o.get("min_budget") is not None:
            raise AmbsError(f"--min-budget applies to multi-fidelity methods (sha, hyperband, asha) and "
                            f"--stopper; --method {method} trains every configuration with one budget "
                            "(--max-budget)")
        if o.get("max_budget") is not None and problem.budget is None:
            raise AmbsError(f"--max-budget needs a problem that declares a budget (problem.set_budget(low, "
                            f"high)); {problem.name or 'this problem'} declares none")
        return
    what = f"--method {method}" if method in MULTI_FIDELITY else f"--stopper {stopper}"
    if problem.budget is None:
        raise AmbsError(f"{what} needs a problem that declares a budget (problem.set_budget(low, high)); "
                        f"{problem.name or 'this problem'} declares none")
    lo = o["min_budget"] if o.get("min_budget") is not None else problem.budget.low
    hi = o["max_budget"] if o.get("max_budget") is not None else problem.budget.high
    if not lo <= hi:
        raise AmbsError(f"--min-budget {lo:g} is above --max-budget {hi:g}")


def _make(method: str, problem: Problem, seed: int | None, o: dict[str, Any]) -> Search:
    mf = {k: o[k] for k in BUDGET_OPTIONS if o.get(k) is not None}
    stopper = o.get("stopper")
    if method == "ambs":
        from ambs.search.ambs import AMBS

        ambs = AMBS(problem, random_state=seed, n_jobs=o.get("fit_jobs") or fit_cores(),
                    **{k: o[k] for k in _AMBS if k != "fit_jobs" and o.get(k) is not None})
        if stopper is None:
            return ambs
        return MULTI_FIDELITY["asha"](problem, random_state=ambs.random_state, rule=stopper, sampler=ambs, **mf)
    if method == "asha":
        return MULTI_FIDELITY["asha"](problem, random_state=seed, rule=stopper or "sha", **mf)
    if method in MULTI_FIDELITY:
        return MULTI_FIDELITY[method](problem, random_state=seed, **mf)
    if method == "grid":
        return ALL_METHODS["grid"](problem, random_state=seed, steps=max(int(o.get("grid_steps") or 5), 2))
    if method in ("evolution", "lemonade"):
        size = int(o.get("population_size") or 20)
        return ALL_METHODS[method](problem, random_state=seed, population_size=size,
                                        sample_size=min(int(o.get("sample_size") or 5), size))
    return ALL_METHODS[method](problem, random_state=seed)
