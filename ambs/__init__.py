"""ambs: asynchronous model-based hyperparameter search, from a laptop to a supercomputer.

The public names load on first use, so that ``import ambs`` (and the start of
every worker and of the command line) does not pay for numpy, scikit-learn and
ConfigSpace before it needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ambs._lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "AMBS": "ambs.search",
    "AmbsError": "ambs.errors",
    "Evaluation": "ambs.result",
    "GridSearch": "ambs.search",
    "Problem": "ambs.problem",
    "RandomSearch": "ambs.search",
    "RunResult": "ambs.runner",
    "Search": "ambs.search",
    "Status": "ambs.result",
    "load_problem": "ambs.problem",
    "run_search": "ambs.runner",
}

__all__ = [
    "AMBS",
    "AmbsError",
    "Evaluation",
    "GridSearch",
    "Problem",
    "RandomSearch",
    "RunResult",
    "Search",
    "Status",
    "load_problem",
    "run_search",
    "__version__",
]

if TYPE_CHECKING:  # for type checkers and editors
    from ambs.errors import AmbsError
    from ambs.problem import Problem, load_problem
    from ambs.result import Evaluation, Status
    from ambs.runner import RunResult, run_search
    from ambs.search import AMBS, GridSearch, RandomSearch, Search


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
