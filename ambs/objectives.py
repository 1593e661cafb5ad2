"""Several named objectives: their declaration, how ``run``'s result gives
them, and what a search makes of them (pure numpy, no I/O).

A problem declares objectives with :meth:`ambs.Problem.add_objective`, each
maximized or minimized; ``run`` returns them in a dict by name. Inside,
every search works with *losses*, the objectives oriented so that smaller
is better (a maximized objective negated), as it does for one objective.

:class:`Scalarizer` turns the losses of several objectives into one number:
each objective is normalized to [0, 1] over the results told, then they are
combined by the augmented Chebyshev function of a random weight vector
drawn uniformly from the simplex. This is ParEGO's scalarization (Knowles,
IEEE TEC 2006), drawn anew for every proposed point as in the random
scalarizations of Paria et al. (UAI 2019) and qParEGO (Daulton et al.,
NeurIPS 2020); every minimizer of such a function is Pareto-optimal, and
every point of the front (convex or not) minimizes one of them.

:func:`hypervolume` is the exact dominated hypervolume (the measure of what
a front dominates up to a reference point), by slicing one objective at a
time (While et al., IEEE TEC 2006): fine for the fronts of a few hundred
points a search produces.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Objective", "DIRECTIONS", "read_objectives", "Scalarizer", "hypervolume", "nondominated"]

DIRECTIONS = ("max", "min")
# Weight of the augmented Chebyshev function's linear term. ParEGO's 0.05
# gave a smaller median hypervolume than 0.2 on DTLZ2 and ZDT1 at 100
# evaluations (4 seeds each, bench/multiobjective.py's problems).
RHO = 0.2


@dataclass(frozen=True)
class Objective:
    """One declared objective.

    ``cheap``: a function of a configuration alone that gives this objective
    before training (a parameter count), for searches that can use one
    (LEMONADE); None for an objective only ``run`` can measure.
    """

    name: str
    direction: str = "max"
    cheap: Callable[[dict[str, Any]], float] | None = None

    @property
    def sign(self) -> float:
        """+1 for a maximized objective, -1 for a minimized one: ``sign * value`` is maximized."""
        return 1.0 if self.direction == "max" else -1.0

    def spec(self) -> tuple[str, str]:
        """(name, direction): what travels with a job to the worker."""
        return (self.name, self.direction)


def read_objectives(out: dict[str, Any], specs: Sequence[tuple[str, str]]) -> tuple[list[Any], dict[str, Any], str]:
    """The declared objectives' raw values in ``run``'s dict, the rest as
    metadata, and an error text ("" when every objective is there).

    The values are taken by name; a list under ``objectives`` or
    ``objective`` (in declared order) is accepted too.
    """
    names = [name for name, _ in specs]
    if all(n in out for n in names):
        values = [out[n] for n in names]
        rest = {str(k): v for k, v in out.items() if k not in names}
        return values, rest, ""
    key = "objectives" if "objectives" in out else "objective"
    listed = out.get(key)
    if isinstance(listed, (list, tuple)) or getattr(listed, "ndim", 0) == 1:
        values = list(listed)  # type: ignore[arg-type]
        if len(values) != len(names):
            return [], {}, (f"run returned {len(values)} objectives, the problem declares {len(names)} "
                            f"({', '.join(names)})")
        return values, {str(k): v for k, v in out.items() if k != key}, ""
    missing = [n for n in names if n not in out]
    return [], {}, f"run returned no {', '.join(repr(n) for n in missing)} (declared objective{'s' if len(missing) > 1 else ''})"


def nondominated(losses: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``losses`` (n, m, minimized) that no other row
    dominates; rows with a NaN are never on it, equal rows are all kept."""
    L = np.asarray(losses, dtype=float)
    ok = ~np.isnan(L).any(axis=1)
    mask = ok.copy()
    Q = L[ok]
    for i in np.flatnonzero(ok):
        mask[i] = not ((Q <= L[i]).all(axis=1) & (Q < L[i]).any(axis=1)).any()
    return mask


class Scalarizer:
    """Losses of several objectives -> one loss: each objective normalized
    to [0, 1] over ``reference``, then the augmented Chebyshev function of
    ``weights``.

    Args:
        reference: the finite losses (n, m) that define each objective's
            range (the results a model is fitted on).
        weights: m non-negative weights summing to 1.
        rho: weight of the linear term that breaks the Chebyshev function's
            ties (weakly dominated points score worse than the points that
            dominate them).
        normalization: ``minmax`` (the position between the least and the
            largest loss) or ``rank`` (the mid-rank, blind to scales and
            outliers; measured worse in ``bench/multiobjective.py``).
    """

    NORMALIZATIONS = ("rank", "minmax")

    def __init__(self, reference: np.ndarray, weights: np.ndarray, rho: float = RHO,
                 normalization: str = "minmax") -> None:
        if normalization not in self.NORMALIZATIONS:
            raise ValueError(f"normalization is one of {self.NORMALIZATIONS}, got {normalization!r}")
        ref = np.asarray(reference, dtype=float)
        self.sorted = [np.sort(ref[:, j]) for j in range(ref.shape[1])]
        self.weights = np.asarray(weights, dtype=float)
        self.rho = float(rho)
        self.normalization = normalization

    @classmethod
    def draw(cls, reference: np.ndarray, rng: np.random.Generator, rho: float = RHO,
             normalization: str = "minmax") -> Scalarizer:
        """A scalarizer with weights drawn uniformly from the simplex."""
        m = np.asarray(reference).shape[1]
        return cls(reference, rng.dirichlet(np.ones(m)), rho, normalization)

    def normalize(self, losses: np.ndarray) -> np.ndarray:
        """Each column's mid-rank among the reference, in [0, 1] (values
        beyond the reference's range land at 0 or 1); ``minmax``: its
        position between the reference's least and largest values."""
        L = np.atleast_2d(np.asarray(losses, dtype=float))
        if self.normalization == "minmax":
            lo = np.array([r[0] if len(r) else 0.0 for r in self.sorted])
            hi = np.array([r[-1] if len(r) else 1.0 for r in self.sorted])
            return (L - lo) / np.where(hi > lo, hi - lo, 1.0)
        out = np.empty_like(L)
        for j, ref in enumerate(self.sorted):
            n = len(ref)
            if n == 0:
                out[:, j] = 0.5
                continue
            lo = np.searchsorted(ref, L[:, j], side="left")
            hi = np.searchsorted(ref, L[:, j], side="right")
            out[:, j] = (lo + hi) / (2.0 * n)
        return out

    def __call__(self, losses: np.ndarray) -> np.ndarray:
        """One loss per row of ``losses`` (n, m); a row with a NaN gives NaN."""
        Z = self.normalize(losses) * self.weights
        s = Z.max(axis=1) + self.rho * Z.sum(axis=1)
        s[np.isnan(np.atleast_2d(np.asarray(losses, dtype=float))).any(axis=1)] = math.nan
        return s


def hypervolume(losses: np.ndarray, reference: Sequence[float]) -> float:
    """The volume dominated by the rows of ``losses`` (n, m, minimized) and
    bounded by ``reference``; rows not strictly below the reference in every
    objective, or with a NaN, add nothing."""
    ref = np.asarray(reference, dtype=float)
    L = np.asarray(losses, dtype=float).reshape(-1, len(ref))
    L = L[~np.isnan(L).any(axis=1) & (L < ref).all(axis=1)]
    if not len(L):
        return 0.0
    return float(_hv(L[nondominated(L)], ref))


def _hv(P: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of non-dominated points ``P`` below ``ref`` (slicing the last objective)."""
    m = P.shape[1]
    if m == 1:
        return float(ref[0] - P[:, 0].min())
    if m == 2:
        P = P[np.argsort(P[:, 0], kind="stable")]
        total, y = 0.0, ref[1]
        for x0, y0 in P:
            if y0 < y:
                total += (ref[0] - x0) * (y - y0)
                y = y0
        return total
    P = P[np.argsort(P[:, -1], kind="stable")]
    total = 0.0
    for i in range(len(P)):
        upper = P[i + 1, -1] if i + 1 < len(P) else ref[-1]
        depth = upper - P[i, -1]
        if depth <= 0:
            continue
        S = P[: i + 1, :-1]
        total += depth * _hv(S[nondominated(S)], ref[:-1])
    return total


class Front:
    """The non-dominated set of the losses added so far, kept as they come
    (for a run's progress line: each addition is one pass over the front)."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []

    def add(self, losses: Sequence[float]) -> bool:
        """Add one result's losses; True when it joined the front."""
        p = np.asarray(losses, dtype=float)
        if not np.isfinite(p).all():
            return False
        for q in self.points:
            if (q <= p).all() and (q < p).any():
                return False  # dominated
        self.points = [q for q in self.points if not ((p <= q).all() and (p < q).any())] + [p]
        return True

    def __len__(self) -> int:
        return len(self.points)
