"""Search methods behind one ask/tell contract, chosen by name."""

from __future__ import annotations

from ambs.search.ambs import AMBS
from ambs.search.base import Search
from ambs.search.grid import GridSearch
from ambs.search.random import RandomSearch

METHODS: dict[str, type[Search]] = {"ambs": AMBS, "random": RandomSearch, "grid": GridSearch}

__all__ = ["AMBS", "GridSearch", "METHODS", "RandomSearch", "Search"]
