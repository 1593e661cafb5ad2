"""Vector view of a ConfigSpace search space: sampling, repair, encoding.

The search works on the ConfigSpace *vector* representation: one float per
hyperparameter, in [0, 1] for numerical ones (already on the log scale for
log hyperparameters), the index for categorical and ordinal ones, NaN where
a conditional hyperparameter is inactive. Everything here is vectorized over
rows so that a search can score thousands of candidates per proposal.

For the surrogate, vectors are *encoded* into features: numerical and ordinal
values in [0, 1], categoricals one-hot (no false order), inactive values -1
(or an all-zero one-hot block), so trees can split inactive ones apart.

Longer than most modules (about 440 lines) on purpose: it is the one class
that knows the vector layout, and every method of it (sampling, repair,
encoding, local moves, grids) reads and writes that layout; split, each part
would have to know it too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    Constant,
    FloatHyperparameter,
    IntegerHyperparameter,
    OrdinalHyperparameter,
)

__all__ = ["Space"]

_KIND_NUMERIC, _KIND_INTEGER, _KIND_CATEGORICAL, _KIND_ORDINAL, _KIND_CONSTANT = range(5)


def _native(value: Any) -> Any:
    """Convert numpy scalars to plain Python values (for JSON, CSV, user code)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


_INACTIVE = object()  # a cell of to_dicts' columns: no value (the hyperparameter is inactive)


def _natives(values: Any) -> list[Any]:
    """Plain Python values of an array or sequence of values (see :func:`_native`)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biufU":
        return values.tolist()
    return [_native(v) for v in values]


def _reflect(u: np.ndarray) -> np.ndarray:
    """Unit-scale values moved past a bound, reflected back into [0, 1]
    (rather than piling mass on the bounds as clipping would)."""
    u = np.where(u < 0, -u, u)
    u = np.where(u > 1, 2 - u, u)
    return np.clip(u, 0.0, 1.0)


def _legacy(rng: np.random.Generator) -> np.random.RandomState:
    """ConfigSpace's samplers take the legacy RandomState; derive one from ``rng``."""
    return np.random.RandomState(int(rng.integers(2**32 - 1)))


class Space:
    """Vectorized operations over a ConfigSpace ``ConfigurationSpace``.

    Args:
        cs: the configuration space; its hyperparameter order is the column
            order of every vector this class produces.
    """

    def __init__(self, cs: ConfigurationSpace) -> None:
        self.cs = cs
        self.hps = list(cs.values())
        self.names = [hp.name for hp in self.hps]
        self.dim = len(self.hps)
        kinds, sizes = [], []
        for hp in self.hps:
            if isinstance(hp, Constant):
                kinds.append(_KIND_CONSTANT)
                sizes.append(1)
            elif isinstance(hp, CategoricalHyperparameter):
                kinds.append(_KIND_CATEGORICAL)
                sizes.append(len(hp.choices))
            elif isinstance(hp, OrdinalHyperparameter):
                kinds.append(_KIND_ORDINAL)
                sizes.append(len(hp.sequence))
            elif isinstance(hp, IntegerHyperparameter):
                kinds.append(_KIND_INTEGER)
                sizes.append(int(hp.size))
            elif isinstance(hp, FloatHyperparameter):
                kinds.append(_KIND_NUMERIC)
                sizes.append(0)
            else:  # pragma: no cover - ConfigSpace adds a new type
                raise TypeError(f"unsupported hyperparameter type {type(hp).__name__}")
        self.kinds = np.array(kinds)
        self.sizes = np.array(sizes)
        self.categorical = self.kinds == _KIND_CATEGORICAL
        self.discrete_index = np.isin(self.kinds, (_KIND_CATEGORICAL, _KIND_ORDINAL, _KIND_CONSTANT))
        self.continuous = self.kinds == _KIND_NUMERIC
        self.is_finite = bool(not self.continuous.any())
        self.has_conditions = bool(cs.conditions) or bool(cs.forbidden_clauses)
        # Feature layout for the surrogate.
        self.n_features = int(sum(s if k == _KIND_CATEGORICAL else 1 for k, s in zip(kinds, sizes)))

    # ------------------------------------------------------------------ size
    @property
    def size(self) -> float:
        """Number of distinct configurations (inf with a continuous dimension).

        An upper bound when conditions or forbidden clauses prune the product.
        """
        if not self.is_finite:
            return math.inf
        return float(np.prod(self.sizes.astype(float)))

    # --------------------------------------------------------------- sampling
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sample ``n`` valid vectors from the space's distributions, shape (n, dim)."""
        if n <= 0:
            return np.empty((0, self.dim))
        return self.repair(self._sample_full(n, rng), rng)

    def from_unit(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Map points of the unit hypercube (e.g. a Latin hypercube) to valid vectors."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        x = u.copy()
        idx = self.discrete_index
        x[:, idx] = np.minimum(np.floor(u[:, idx] * self.sizes[idx]), self.sizes[idx] - 1)
        return self.repair(x, rng)

    def repair(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Make complete vectors valid: snap to legal values, set inactive to NaN.

        ``x`` may hold NaN for any hyperparameter; an active one without a value
        is filled by sampling. Rows that violate a forbidden clause are
        resampled (up to a bound) and dropped if they stay forbidden.
        """
        x = np.array(x, dtype=float, copy=True)
        if x.ndim == 1:
            x = x[None, :]
        if not len(x):
            return x
        rng = rng if rng is not None else np.random.default_rng(0)
        missing = np.isnan(x)
        if missing.any():
            rs = _legacy(rng)
            for i in np.flatnonzero(missing.any(axis=0)):
                rows = missing[:, i]
                x[rows, i] = self.hps[i]._vector_dist.sample_vector(n=int(rows.sum()), seed=rs)
        x = self._snap(x)
        if self.has_conditions:
            x = self._apply_conditions(x)
            bad = self._forbidden(x)
            tries = 0
            while bad.any() and tries < 20:
                x[bad] = self._apply_conditions(self._snap(self._sample_full(int(bad.sum()), rng)))
                bad = self._forbidden(x)
                tries += 1
            x = x[~bad]
        return x

    def _sample_full(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rs = _legacy(rng)
        out = np.empty((self.dim, n))
        for i, hp in enumerate(self.hps):
            out[i] = hp._vector_dist.sample_vector(n=n, seed=rs)
        return out.T

    def _snap(self, x: np.ndarray) -> np.ndarray:
        """Round discrete columns to legal vector values and clip to bounds."""
        for i, hp in enumerate(self.hps):
            col = x[:, i]
            finite = np.isfinite(col)
            if not finite.any():
                continue
            kind = self.kinds[i]
            if kind == _KIND_NUMERIC:
                col[finite] = np.clip(col[finite], 0.0, 1.0)
            elif kind == _KIND_INTEGER:
                v = np.clip(col[finite], 0.0, 1.0)
                col[finite] = hp.to_vector(hp.to_value(v))
            else:
                col[finite] = np.clip(np.rint(col[finite]), 0, self.sizes[i] - 1)
        return x

    def _apply_conditions(self, x: np.ndarray) -> np.ndarray:
        """Set hyperparameters whose conditions fail to NaN, in topological order."""
        cols = x.T.copy()  # ConfigSpace evaluates conditions over (dim, n) arrays
        for cnode in self.cs._dag.minimum_conditions:
            ok = cnode.condition.satisfied_by_vector_array(cols)
            cols[np.ix_(cnode.children_indices, ~ok)] = np.nan
        return cols.T.copy()

    def _forbidden(self, x: np.ndarray) -> np.ndarray:
        bad = np.zeros(len(x), dtype=bool)
        if self.cs.forbidden_clauses:
            cols = x.T
            for clause in self.cs._dag.unconditional_forbiddens + self.cs._dag.conditional_forbiddens:
                bad |= clause.is_forbidden_vector_array(cols)
        return bad

    # ------------------------------------------------------------- neighbours
    def neighbors(
        self,
        x: np.ndarray,
        n: int,
        rng: np.random.Generator,
        scale: float = 0.1,
        return_parents: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Random local moves around each row of ``x``: ``n`` neighbours per row.

        Each neighbour changes one or more hyperparameters (mostly one):
        numerical ones by a Gaussian step of ``scale`` on the unit scale
        (reflected at the bounds), integers by at least one unit, categorical
        and ordinal ones to another value. Hyperparameters that a move
        activates are sampled afresh; neighbours that break a forbidden clause
        are dropped, so fewer than ``n`` per row may come back.

        Args:
            x: vectors, shape (k, dim) or (dim,).
            n: neighbours per row.
            rng: the random generator.
            scale: standard deviation of numerical steps, in [0, 1] units.
            return_parents: also return, for each neighbour, the row of ``x``
                it was drawn around.

        Returns:
            Vectors, shape (m, dim) with m <= k * n, and with
            ``return_parents`` the parent indices, shape (m,).
        """
        x = np.atleast_2d(np.asarray(x, dtype=float))
        parents = np.repeat(np.arange(len(x)), n)
        base = x[parents]
        m = len(base)
        if m == 0 or self.dim == 0:
            out = np.empty((0, self.dim))
            return (out, parents[:0]) if return_parents else out
        # How many coordinates each neighbour moves: mostly one, sometimes more.
        n_moves = np.minimum(rng.geometric(0.6, size=m), self.dim)
        prob = n_moves[:, None] / self.dim
        move = rng.random((m, self.dim)) < prob
        none = ~move.any(axis=1)
        move[none, rng.integers(0, self.dim, size=int(none.sum()))] = True
        out = base.copy()
        cont = self.continuous | (self.kinds == _KIND_INTEGER)
        step = rng.normal(0.0, scale, size=(m, self.dim))
        sel = move & cont[None, :]
        out[sel] = out[sel] + step[sel]
        out = _reflect(out)
        # Integers: a step that rounds back to the same value moves one unit.
        for i in np.flatnonzero(self.kinds == _KIND_INTEGER):
            rows = np.flatnonzero(move[:, i] & np.isfinite(base[:, i]))
            if not len(rows) or self.sizes[i] < 2:
                continue
            hp = self.hps[i]
            old = np.asarray(hp.to_value(base[rows, i]), dtype=np.int64)
            new = np.asarray(hp.to_value(out[rows, i]), dtype=np.int64)
            same = new == old
            if same.any():
                up = np.where(step[rows, i] >= 0, 1, -1)
                cand = old + up
                cand = np.where((cand < hp.lower) | (cand > hp.upper), old - up, cand)
                new = np.where(same, cand, new)
            out[rows, i] = hp.to_vector(new)
        # Categorical and ordinal: another value.
        disc = move & self.discrete_index[None, :]
        if disc.any():
            rows, cols = np.nonzero(disc)
            sizes = self.sizes[cols]
            shift = rng.integers(1, np.maximum(sizes, 2), size=len(cols))
            old = np.nan_to_num(base[rows, cols], nan=0.0)
            out[rows, cols] = np.mod(old + shift, np.maximum(sizes, 1))
        # Moved inactive entries (NaN) and any value a move activates are
        # sampled; conditions then deactivate what no longer applies.
        out[move & np.isnan(base)] = np.nan
        missing = np.isnan(out)
        if missing.any():
            rs = _legacy(rng)
            for i in np.flatnonzero(missing.any(axis=0)):
                r = missing[:, i]
                out[r, i] = self.hps[i]._vector_dist.sample_vector(n=int(r.sum()), seed=rs)
        out = self._snap(out)
        if self.has_conditions:
            out = self._apply_conditions(out)
            keep = ~self._forbidden(out)
            out, parents = out[keep], parents[keep]
        return (out, parents) if return_parents else out

    def recombine(
        self, top: np.ndarray, n: int, rng: np.random.Generator, bandwidth: float = 0.5,
        floor: float = 0.01,
    ) -> np.ndarray:
        """Candidates drawn from the per-hyperparameter values of good points.

        Each coordinate of a candidate comes from a randomly chosen row of
        ``top``, independently of the other coordinates; numerical values are
        then blurred by a Gaussian whose width is ``bandwidth`` times the
        spread of that coordinate among ``top`` (at least ``floor`` on the
        unit scale). Many responses are close to separable (sums over the
        hyperparameters, or one that matters most), and there a good value
        of one coordinate stays good next to the good values of the others,
        so these candidates are often better than any of the rows they mix.

        Args:
            top: vectors of good points, shape (k, dim), k >= 1.
            n: how many candidates.
            rng: the random generator.
            bandwidth: blur, as a multiple of the per-coordinate spread.
            floor: the least blur, in [0, 1] units.

        Returns:
            Valid vectors, shape (m, dim), m <= n (forbidden ones dropped).
        """
        top = np.atleast_2d(np.asarray(top, dtype=float))
        if n <= 0 or not len(top) or self.dim == 0:
            return np.empty((0, self.dim))
        pick = rng.integers(0, len(top), size=(n, self.dim))
        out = top[pick, np.arange(self.dim)[None, :]]
        cont = self.continuous | (self.kinds == _KIND_INTEGER)
        if cont.any():
            with np.errstate(all="ignore"):
                spread = np.nan_to_num(np.nanstd(top[:, cont], axis=0), nan=0.0)
            width = np.maximum(bandwidth * spread, floor)
            step = rng.normal(0.0, 1.0, size=(n, int(cont.sum()))) * width[None, :]
            out[:, cont] = _reflect(out[:, cont] + step)
        return self.repair(out, rng)

    # ------------------------------------------------------------ conversion
    def to_dicts(self, x: np.ndarray) -> list[dict[str, Any]]:
        """Vectors to configurations as plain dicts (inactive keys left out).
        Column by column (one conversion per hyperparameter, not per value):
        the master turns thousands of proposals a second into jobs."""
        x = np.atleast_2d(x)
        if not self.hps:
            return [{} for _ in range(len(x))]
        cols: list[list[Any]] = []
        complete = True
        for i, hp in enumerate(self.hps):
            col = x[:, i]
            finite = np.isfinite(col)
            if finite.all():
                cols.append(_natives(hp.to_value(col)))
                continue
            complete = False
            vals: list[Any] = [_INACTIVE] * len(col)
            if finite.any():
                for r, v in zip(np.flatnonzero(finite).tolist(), _natives(hp.to_value(col[finite]))):
                    vals[r] = v
            cols.append(vals)
        names = self.names
        if complete:
            return [dict(zip(names, row)) for row in zip(*cols)]
        return [{n: v for n, v in zip(names, row) if v is not _INACTIVE} for row in zip(*cols)]

    def to_vectors(self, configs: list[dict[str, Any]]) -> np.ndarray:
        """Configurations (dicts) to vectors; raises ValueError for invalid ones.

        ConfigSpace checks each configuration, but it rounds float values to
        10 decimals first, which moves a small value (a weight decay of 1e-7)
        to another vector: a configuration read back from the CSV on resume
        would then not be recognized as the one proposed, and be proposed
        again. Float columns are therefore encoded from the exact value.
        """
        if not configs:
            return np.empty((0, self.dim))
        rows = []
        floats = np.flatnonzero(self.continuous)
        for c in configs:
            values = {k: v for k, v in c.items() if k in self.cs}
            row = np.asarray(Configuration(self.cs, values=values).get_array(), dtype=float)
            for i in floats:
                if np.isfinite(row[i]):
                    exact = np.asarray([float(values[self.names[i]])])
                    row[i] = float(np.clip(self.hps[i].to_vector(exact)[0], 0.0, 1.0))
            rows.append(row)
        return np.array(rows, dtype=float)

    def default_vector(self) -> np.ndarray:
        """The space's default configuration as a vector."""
        return self.cs.get_default_configuration().get_array().astype(float)

    # --------------------------------------------------------------- encoding
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Vectors to surrogate features, shape (n, n_features).

        Numerical and ordinal values go to [0, 1], categoricals to one-hot
        blocks, inactive values to -1 (numerical) or all zeros (one-hot).
        """
        x = np.atleast_2d(x)
        cols = []
        for i in range(self.dim):
            col = x[:, i]
            kind = self.kinds[i]
            if kind == _KIND_CATEGORICAL:
                k = int(self.sizes[i])
                block = np.zeros((len(col), k))
                finite = np.isfinite(col)
                block[np.flatnonzero(finite), col[finite].astype(int)] = 1.0
                cols.append(block)
            else:
                if kind in (_KIND_ORDINAL, _KIND_CONSTANT):
                    col = col / max(self.sizes[i] - 1, 1)
                cols.append(np.where(np.isfinite(col), col, -1.0)[:, None])
        if not cols:
            return np.empty((len(x), 0))
        return np.hstack(cols)

    def rotatable_features(self) -> np.ndarray:
        """Feature indices (columns of :meth:`encode`) of the numerical
        hyperparameters that are always active: the ones a surrogate may
        combine linearly (rotate) without mixing in one-hot blocks or the -1
        of an inactive value."""
        out, j = [], 0
        for i, hp in enumerate(self.hps):
            width = int(self.sizes[i]) if self.kinds[i] == _KIND_CATEGORICAL else 1
            numeric = self.kinds[i] in (_KIND_NUMERIC, _KIND_INTEGER)
            if numeric and not self.cs.parent_conditions_of[hp.name]:
                out.append(j)
            j += width
        return np.array(out, dtype=np.int64)

    def keys(self, x: np.ndarray) -> list[bytes]:
        """Hashable identity of each vector, for duplicate detection."""
        x = np.atleast_2d(x)
        r = np.round(np.where(np.isnan(x), -1.0, x) if x.dtype.kind == "f" else x, 9)
        return [row.tobytes() for row in r]

    def grid(self, steps: int) -> np.ndarray:
        """All combinations of discrete values and ``steps`` points per numerical axis."""
        return self.grid_points(self.grid_axes(steps))

    def grid_axes(self, steps: int) -> list[np.ndarray]:
        """The values of each axis of :meth:`grid`; a ValueError when their product
        is more than 5e6 points (cheap: nothing is enumerated)."""
        axes = []
        for i in range(self.dim):
            if self.kinds[i] == _KIND_NUMERIC:
                axes.append(np.linspace(0.0, 1.0, steps))
            elif self.kinds[i] == _KIND_INTEGER:
                hp = self.hps[i]
                if steps >= self.sizes[i]:
                    # Every value; evenly spaced vectors would skip some on a log scale.
                    axes.append(np.asarray(hp.to_vector(np.arange(hp.lower, hp.upper + 1)), dtype=float))
                else:
                    axes.append(np.unique(hp.to_vector(hp.to_value(np.linspace(0.0, 1.0, steps)))))
            else:
                axes.append(np.arange(self.sizes[i], dtype=float))
        total = float(np.prod([len(a) for a in axes])) if axes else 1.0
        if total > 5e6:
            raise ValueError(f"grid has {total:.3g} points; lower the number of steps")
        return axes

    def grid_points(self, axes: list[np.ndarray]) -> np.ndarray:
        """Every combination of ``axes`` (see :meth:`grid_axes`) that is a distinct
        valid configuration, inactive values repaired."""
        mesh = np.meshgrid(*axes, indexing="ij") if axes else []
        x = np.stack([m.ravel() for m in mesh], axis=1) if axes else np.empty((1, 0))
        x = self.repair(x)
        # Conditions turn many grid points into the same configuration.
        _, first = np.unique(np.array(self.keys(x)), return_index=True)
        return x[np.sort(first)]
