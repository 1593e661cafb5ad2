"""Names a package exports but imports on first use (PEP 562), so that importing
the package (a worker's start, the command line's parser) does not pay for
scikit-learn, ConfigSpace or torch before something needs them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_getattr", "on_call"]


def lazy_getattr(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``table`` maps each name to the
    module that defines it; the first lookup imports it and keeps it in the package."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(table[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


def on_call(module: str, name: str, **fixed: Any) -> Callable[..., Any]:
    """A factory that imports ``module.name`` when first called and calls it with
    ``fixed`` and the call's own keyword arguments."""

    def make(**kw: Any) -> Any:
        return getattr(import_module(module), name)(**fixed, **kw)

    return make
