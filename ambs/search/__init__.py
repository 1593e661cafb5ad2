"""Search methods behind one ask/tell contract, chosen by name.

``METHODS`` maps each name to its class (searches of configurations);
``MULTI_FIDELITY`` the searches that propose (configuration, budget) pairs
(see :mod:`ambs.search.multifidelity`); ``ALL_METHODS`` both. In each, a class is imported the first time
it is looked up, so that the command line can list the names without
importing every method (and scikit-learn, torch, ...). A new method is one
line in ``_REGISTRY``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ambs._lazy import lazy_getattr

if TYPE_CHECKING:
    from ambs.search.ambs import AMBS
    from ambs.search.base import Search
    from ambs.search.evolution import AgingEvolution, Lemonade
    from ambs.search.grid import GridSearch
    from ambs.search.morphism import MorphismSearch
    from ambs.search.multifidelity import ASHA, Hyperband, MultiFidelitySearch, SuccessiveHalving
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
# Multi-fidelity methods: they need a budget, and repeat a configuration at larger budgets.
_MF_REGISTRY: dict[str, tuple[str, str]] = {
    "sha": ("ambs.search.multifidelity", "SuccessiveHalving"),
    "hyperband": ("ambs.search.multifidelity", "Hyperband"),
    "asha": ("ambs.search.multifidelity", "ASHA"),
}
_CLASSES = {cls: mod for mod, cls in (*_REGISTRY.values(), *_MF_REGISTRY.values())} | {
    "Search": "ambs.search.base", "MultiFidelitySearch": "ambs.search.multifidelity"}


class _Methods(Mapping):
    """Read-only name -> search class mapping that imports a class on first use."""

    def __init__(self, registry: dict[str, tuple[str, str]]) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> type[Search]:
        mod, cls = self._registry[name]
        return getattr(importlib.import_module(mod), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)


METHODS: Mapping[str, type[Search]] = _Methods(_REGISTRY)
MULTI_FIDELITY: Mapping[str, type[MultiFidelitySearch]] = _Methods(_MF_REGISTRY)  # type: ignore[assignment]
ALL_METHODS: Mapping[str, type[Search]] = _Methods(_REGISTRY | _MF_REGISTRY)


__getattr__ = lazy_getattr(__name__, _CLASSES)


__all__ = ["ALL_METHODS", "AMBS", "ASHA", "AgingEvolution", "GridSearch", "Hyperband", "Lemonade", "METHODS",
           "MULTI_FIDELITY", "MorphismSearch", "MultiFidelitySearch", "RandomSearch", "Reinforce", "Search",
           "SuccessiveHalving"]
