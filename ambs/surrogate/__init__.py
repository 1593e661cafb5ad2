"""Surrogate models: ``fit(X, y)``, ``predict(X, return_std=True)`` and leaf views."""

from __future__ import annotations

from ambs.surrogate.forest import ForestSurrogate, LeafView
from ambs.surrogate.transform import TRANSFORMS, transform_targets

SURROGATES = {"rf": "random forest", "et": "extra trees"}

__all__ = ["ForestSurrogate", "LeafView", "SURROGATES", "TRANSFORMS", "make_surrogate", "transform_targets"]


def make_surrogate(name: str, random_state: int | None = None, **kw) -> ForestSurrogate:
    """Build a surrogate by its command-line name."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r} (choose from {', '.join(SURROGATES)})")
    return ForestSurrogate(kind=name, random_state=random_state, **kw)
