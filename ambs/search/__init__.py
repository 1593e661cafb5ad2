"""Search methods behind one ask/tell contract, chosen by name.

``METHODS`` maps each name to its class; a class is imported the first time
it is looked up, so that the command line can list the names without
importing every method (and scikit-learn, torch, ...). A new method is one
line in ``_REGISTRY``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ambs.search.ambs import AMBS
    from ambs.search.base import Search
    from ambs.search.evolution import AgingEvolution, Lemonade
    from ambs.search.grid import GridSearch
    from ambs.search.morphism import MorphismSearch
    from ambs.search.random import RandomSearch
    from ambs.search.reinforce import Reinforce

# name -> (module, class), in the order the command line lists them.
_REGISTRY: dict[str, tuple[str, str]] = {
    "ambs": ("ambs.search.ambs", "AMBS"),
    "random": ("ambs.search.random", "RandomSearch"),
    "grid": ("ambs.search.grid", "GridSearch"),
    "evolution": ("ambs.search.evolution", "AgingEvolution"),
    "lemonade": ("ambs.search.evolution", "Lemonade"),
    "reinforce": ("ambs.search.reinforce", "Reinforce"),
    "morphism": ("ambs.search.morphism", "MorphismSearch"),
}
_CLASSES = {cls: mod for mod, cls in _REGISTRY.values()} | {"Search": "ambs.search.base"}


class _Methods(Mapping):
    """Read-only name -> search class mapping that imports a class on first use."""

    def __getitem__(self, name: str) -> type[Search]:
        mod, cls = _REGISTRY[name]
        return getattr(importlib.import_module(mod), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


METHODS: Mapping[str, type[Search]] = _Methods()


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module 'ambs.search' has no attribute {name!r}")


__all__ = ["AMBS", "AgingEvolution", "GridSearch", "Lemonade", "METHODS", "MorphismSearch", "RandomSearch",
           "Reinforce", "Search"]
