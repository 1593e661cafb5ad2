"""Random-forest and extra-trees surrogates with a predictive mean and spread.

The spread is the law of total variance over the trees: each tree predicts
the mean and variance of the training targets in the leaf a point falls
into, and ``var = mean_t(var_t + mean_t**2) - mean**2``.

:class:`LeafView` keeps those leaf statistics for a fixed set of candidate
points, so that a constant-liar "lie" (or a new observation) can be folded
into the leaves it lands in without refitting: the lie joins one leaf per
tree, and only the candidates that share such a leaf change. This is what
makes multipoint proposals cost O(trees x candidates) per point instead of
one forest fit per point.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

__all__ = ["ForestSurrogate", "LeafView"]


class ForestSurrogate:
    """Tree-ensemble regressor with a total-variance uncertainty.

    Args:
        kind: ``"rf"`` (random forest, bootstrap) or ``"et"`` (extra trees).
        n_estimators: number of trees.
        min_samples_leaf: leaf size; 1 interpolates, larger smooths noise.
        max_features: fraction of features per split (1.0 = all).
        random_state: seed for the trees.
        n_jobs: threads for fitting and leaf lookup.
    """

    def __init__(
        self,
        kind: str = "rf",
        n_estimators: int = 100,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        random_state: int | None = None,
        n_jobs: int = 1,
    ) -> None:
        cls = {"rf": RandomForestRegressor, "et": ExtraTreesRegressor}[kind]
        self.kind = kind
        self.model = cls(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> ForestSurrogate:
        """Fit on features ``X`` (n, d) and targets ``y`` (n,) to minimize."""
        self.model.fit(X, y)
        # Flatten all trees' node statistics into one array, addressed by
        # offset[t] + node, so the leaf view can update them vectorized.
        means, second, counts, offsets = [], [], [], [0]
        for est in self.model.estimators_:
            t = est.tree_
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

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf ids of each point in each tree, shape (n_trees, n)."""
        assert self._flat is not None, "fit() first"
        return (self.model.apply(X).T + self._flat[3][:, None]).astype(np.int64)

    def predict(self, X: np.ndarray, return_std: bool = False):
        """Mean (n,) and, with ``return_std``, standard deviation (n,)."""
        view = self.view(X)
        mu, std = view.mean_std()
        return (mu, std) if return_std else mu

    def view(self, X: np.ndarray) -> LeafView:
        """Leaf statistics of the points ``X``, ready for constant-liar updates."""
        assert self._flat is not None, "fit() first"
        mean, second, count, _ = self._flat
        return LeafView(self.leaves(X), mean.copy(), second.copy(), count.copy())


class LeafView:
    """Mean and variance of a fixed set of points under updatable leaf statistics.

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

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of every point, shapes (n,)."""
        mu = self.s1 / self.n_trees
        var = self.s2 / self.n_trees - mu * mu
        return mu, np.sqrt(np.maximum(var, 0.0))

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
        hit = self.leaves == point_leaves[:, None]  # (n_trees, n_points)
        self.s1 += (m_new - m) @ hit
        self.s2 += (s_new - s) @ hit
