"""ambs: asynchronous model-based hyperparameter search, from a laptop to a supercomputer."""

from __future__ import annotations

from ambs.errors import AmbsError
from ambs.problem import Problem, load_problem
from ambs.result import Evaluation, Status
from ambs.search import AMBS, GridSearch, RandomSearch, Search

__version__ = "0.1.0"

__all__ = [
    "AMBS",
    "AmbsError",
    "Evaluation",
    "GridSearch",
    "Problem",
    "RandomSearch",
    "Search",
    "Status",
    "load_problem",
    "__version__",
]
