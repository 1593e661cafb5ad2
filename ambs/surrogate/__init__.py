"""Surrogate models behind AMBS, and their registry.

Each one answers the contract of :mod:`ambs.surrogate.base`: ``fit(X, y)``,
``predict(X, return_std=True)`` and ``belief()``, the posterior constant liar
folds its lies into. :data:`SURROGATES` names them for ``--surrogate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ambs._lazy import lazy_getattr, on_call
from ambs.surrogate.base import Belief, Surrogate, SurrogateSpec
from ambs.surrogate.transform import TRANSFORMS, transform_targets

if TYPE_CHECKING:
    from ambs.surrogate.forest import ForestSurrogate, LeafView
    from ambs.surrogate.gp import GPBelief, GPSurrogate

# The models load on first use: scikit-learn takes seconds to import, which the
# command line's parser, `ambs analyze` and MPI worker ranks need not pay.
_FOREST, _GP = "ambs.surrogate.forest", "ambs.surrogate.gp"
__getattr__ = lazy_getattr(__name__, {"ForestSurrogate": _FOREST, "LeafView": _FOREST,
                                      "GPBelief": _GP, "GPSurrogate": _GP})

__all__ = ["Belief", "ForestSurrogate", "GPBelief", "GPSurrogate", "LeafView", "SURROGATES", "Surrogate",
           "SurrogateSpec", "TRANSFORMS", "make_surrogate", "transform_targets"]


def _forest_settings(options: Any, space: Any) -> dict[str, Any]:
    return dict(n_estimators=options.n_estimators, min_samples_leaf=options.min_samples_leaf,
                max_features=options.max_features, bootstrap=options.bootstrap, rotate=options.rotate,
                rotate_features=space.rotatable_features(), n_jobs=options.n_jobs,
                per_target=options.front_model == "separate" and options.front_acquisition == "hvi")


SURROGATES: dict[str, SurrogateSpec] = {
    "et": SurrogateSpec("extremely randomized trees", on_call(_FOREST, "ForestSurrogate", kind="et"),
                        _forest_settings),
    "rf": SurrogateSpec("a bootstrap random forest", on_call(_FOREST, "ForestSurrogate", kind="rf"),
                        _forest_settings),
    "gp": SurrogateSpec("a Gaussian process with a Matern 5/2 kernel (its fit grows as n^3: "
                        "for up to a few hundred evaluations)", on_call(_GP, "GPSurrogate")),
}


def make_surrogate(name: str, random_state: int | None = None, **kw: Any) -> Surrogate:
    """Build a surrogate by its registered name, with its own keyword arguments."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r} (choose from {', '.join(SURROGATES)})")
    return SURROGATES[name].make(random_state=random_state, **kw)
