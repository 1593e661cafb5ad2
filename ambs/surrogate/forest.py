"""Random-forest and extra-trees surrogates with a predictive mean and spread.

The spread is the law of total variance over the trees: each tree predicts
the mean and variance of the training targets in the leaf a point falls
into, and ``var = mean_t(var_t + mean_t**2) - mean**2``.

:class:`LeafView` keeps those leaf statistics for a set of candidate points,
so that a constant-liar "lie" (or a new observation) can be folded into the
leaves it lands in without refitting: the lie joins one leaf per tree, and
only the candidates that share such a leaf change. This is what makes
multipoint proposals cost O(trees x candidates) per point instead of one
forest fit per point. Candidates can be appended to a view at any time
(:meth:`LeafView.extend`); they are scored under the lies folded so far, which
is what lets the acquisition optimizer search locally on the lied model.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

__all__ = ["ForestSurrogate", "LeafView"]


class ForestSurrogate:
    """Tree-ensemble regressor with a total-variance uncertainty.

    Args:
        kind: ``"rf"`` (random forest) or ``"et"`` (extra trees).
        n_estimators: number of trees.
        min_samples_leaf: leaf size; 1 interpolates, larger smooths noise and
            gives every leaf a within-leaf variance.
        max_features: fraction of features per split (1.0 = all).
        bootstrap: fit each tree on a bootstrap sample; ``None`` takes the
            kind's usual choice (yes for ``rf``, no for ``et``). Without it,
            random-forest trees with ``max_features=1.0`` are all alike and the
            spread between trees vanishes.
        random_state: seed for the trees.
        n_jobs: threads for fitting.
    """

    def __init__(
        self,
        kind: str = "rf",
        n_estimators: int = 100,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        bootstrap: bool | None = None,
        random_state: int | None = None,
        n_jobs: int = 1,
    ) -> None:
        cls = {"rf": RandomForestRegressor, "et": ExtraTreesRegressor}[kind]
        if bootstrap is None:
            bootstrap = kind == "rf"
        self.kind = kind
        self.model = cls(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            bootstrap=bootstrap,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._trees: list = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> ForestSurrogate:
        """Fit on features ``X`` (n, d) and targets ``y`` (n,) to minimize."""
        self.model.fit(X, y)
        # Flatten all trees' node statistics into one array, addressed by
        # offset[t] + node, so the leaf view can update them vectorized.
        means, second, counts, offsets = [], [], [], [0]
        self._trees = []
        for est in self.model.estimators_:
            t = est.tree_
            self._trees.append(t)
            m = t.value[:, 0, 0].astype(float)
            v = np.maximum(t.impurity.astype(float), 0.0)
            means.append(m)
            second.append(v + m * m)
            counts.append(t.weighted_n_node_samples.astype(float))
            offsets.append(offsets[-1] + t.node_count)
        self._flat = (
            np.concatenate(means),
            np.concatenate(second),
            np.concatenate(counts),
            np.array(offsets[:-1], dtype=np.int64),
        )
        return self

    @property
    def n_trees(self) -> int:
        return len(self._trees)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf ids of each point in each tree, shape (n_trees, n)."""
        assert self._flat is not None, "fit() first"
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=np.float32)
        out = np.empty((len(self._trees), len(X)), dtype=np.int64)
        if not len(X):
            return out
        # The trees' own apply(), without the ensemble's per-call thread pool:
        # the acquisition optimizer looks up many small sets of points.
        for i, t in enumerate(self._trees):
            out[i] = t.apply(X)
        out += self._flat[3][:, None]
        return out

    def predict(self, X: np.ndarray, return_std: bool = False):
        """Mean (n,) and, with ``return_std``, standard deviation (n,)."""
        view = self.view(X)
        mu, std = view.mean_std()
        return (mu, std) if return_std else mu

    def view(self, X: np.ndarray | None = None) -> LeafView:
        """Leaf statistics of the points ``X``, ready for constant-liar updates."""
        assert self._flat is not None, "fit() first"
        mean, second, count, _ = self._flat
        if X is None:
            leaves = np.empty((self.n_trees, 0), dtype=np.int64)
        else:
            leaves = self.leaves(X)
        return LeafView(leaves, mean.copy(), second.copy(), count.copy())


class LeafView:
    """Mean and variance of a set of points under updatable leaf statistics.

    Args:
        leaves: global leaf ids, shape (n_trees, n_points).
        mean, second, count: per-node mean, second moment and weight (copies;
            updates do not touch the fitted forest).
    """

    def __init__(
        self, leaves: np.ndarray, mean: np.ndarray, second: np.ndarray, count: np.ndarray
    ) -> None:
        self.leaves = leaves
        self.mean = mean
        self.second = second
        self.count = count
        self.n_trees = leaves.shape[0]
        self.s1 = mean[leaves].sum(axis=0)
        self.s2 = second[leaves].sum(axis=0)

    def __len__(self) -> int:
        return self.leaves.shape[1]

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of every point, shapes (n,)."""
        return self._moments(self.s1, self.s2)

    def _moments(self, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = s1 / self.n_trees
        var = s2 / self.n_trees - mu * mu
        return mu, np.sqrt(np.maximum(var, 0.0))

    def peek(self, leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of other points (their leaf ids, shape
        (n_trees, m)) under the current statistics, without adding them."""
        return self._moments(self.mean[leaves].sum(axis=0), self.second[leaves].sum(axis=0))

    def extend(self, leaves: np.ndarray) -> None:
        """Append points (their leaf ids, shape (n_trees, m)) to the view."""
        self.leaves = np.hstack([self.leaves, leaves])
        self.s1 = np.concatenate([self.s1, self.mean[leaves].sum(axis=0)])
        self.s2 = np.concatenate([self.s2, self.second[leaves].sum(axis=0)])

    def add(self, point_leaves: np.ndarray, y: float, weight: float = 1.0) -> None:
        """Fold an observation ``y`` at a point into its leaves (one per tree).

        Args:
            point_leaves: the point's global leaf ids, shape (n_trees,).
            y: the value it is assumed (a lie) or known to have.
            weight: how many samples it counts for.
        """
        n = self.count[point_leaves]
        m = self.mean[point_leaves]
        s = self.second[point_leaves]
        n_new = n + weight
        m_new = (n * m + weight * y) / n_new
        s_new = (n * s + weight * y * y) / n_new
        self.mean[point_leaves] = m_new
        self.second[point_leaves] = s_new
        self.count[point_leaves] = n_new
        if len(self):
            hit = self.leaves == point_leaves[:, None]  # (n_trees, n_points)
            self.s1 += (m_new - m) @ hit
            self.s2 += (s_new - s) @ hit

    def add_many(self, leaves: np.ndarray, y: np.ndarray | float) -> None:
        """Fold many observations at once: the same statistics as calling
        :meth:`add` for each point in turn, in one vectorized pass.

        Args:
            leaves: the points' global leaf ids, shape (n_trees, m).
            y: their values, shape (m,), or one value for all.
        """
        if leaves.size == 0:
            return
        m = leaves.shape[1]
        y = np.broadcast_to(np.asarray(y, dtype=float), (m,))
        flat = leaves.ravel()
        yy = np.tile(y, leaves.shape[0])
        nodes, inv = np.unique(flat, return_inverse=True)
        k = np.bincount(inv).astype(float)
        s1 = np.bincount(inv, weights=yy)
        s2 = np.bincount(inv, weights=yy * yy)
        n = self.count[nodes]
        n_new = n + k
        self.mean[nodes] = (n * self.mean[nodes] + s1) / n_new
        self.second[nodes] = (n * self.second[nodes] + s2) / n_new
        self.count[nodes] = n_new
        if len(self):
            self.s1 = self.mean[self.leaves].sum(axis=0)
            self.s2 = self.second[self.leaves].sum(axis=0)
