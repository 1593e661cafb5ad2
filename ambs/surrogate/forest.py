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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

__all__ = ["ForestSurrogate", "LeafView"]


LEAF = np.int32  # the type of global leaf ids


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
        rotate: share of the trees that split a random rotation of the
            features in ``rotate_features`` instead of the features
            themselves. Axis-aligned splits fit separable responses well and
            diagonal valleys (Rosenbrock) badly; a forest that mixes both kinds
            of trees covers both, and its averaged prediction is smoother.
        rotate_features: indices of the features a rotation may mix (the
            unconditional numerical ones; one-hot blocks and values that can
            be inactive keep their axes). None: all of them.
        random_state: seed for the trees.
        n_jobs: threads for fitting.
        blind_from, blind_share: the share of the trees that never see the
            features from column ``blind_from`` on (fitted with them held
            constant, so those trees cannot split on them): a warm start's
            prior columns (:mod:`ambs.search.prior`), which the rest of the
            forest may follow and these trees check.
        per_target: with several targets, grow ``n_estimators`` trees on each
            target alone instead of trees split on all of them at once (see
            :meth:`target_views`).
    """

    def __init__(
        self,
        kind: str = "rf",
        n_estimators: int = 100,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        bootstrap: bool | None = None,
        rotate: float = 0.0,
        rotate_features: np.ndarray | None = None,
        random_state: int | None = None,
        n_jobs: int = 1,
        blind_from: int | None = None,
        blind_share: float = 0.0,
        per_target: bool = False,
    ) -> None:
        if kind not in ("rf", "et"):
            raise ValueError(f"unknown forest kind {kind!r}")
        if not 0.0 <= rotate <= 1.0:
            raise ValueError(f"rotate must be in [0, 1], got {rotate}")
        if bootstrap is None:
            bootstrap = kind == "rf"
        self.kind = kind
        self.n_estimators = int(n_estimators)
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bool(bootstrap)
        self.rotate = float(rotate)
        self.rotate_features = None if rotate_features is None else np.asarray(rotate_features, dtype=np.int64)
        self.random_state = random_state
        self.n_jobs = max(int(n_jobs), 1)
        self.blind_from = blind_from
        self.blind_share = float(blind_share)
        self.per_target = bool(per_target)
        self._blocks = 1  # per_target: how many targets the trees are grown on, n_estimators each
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._trees: list = []
        self._rotations: list[np.ndarray | None] = []
        self.estimators_: list = []

    def _rotated(self, X: np.ndarray, R: np.ndarray | None) -> np.ndarray:
        if R is None:
            return X
        cols = self.rotate_features if self.rotate_features is not None else np.arange(X.shape[1])
        out = X.copy()
        out[:, cols] = (X[:, cols] - 0.5) @ R
        return out

    def fit(self, X: np.ndarray, y: np.ndarray) -> ForestSurrogate:
        """Fit on features ``X`` (n, d) and targets ``y`` (n,) to minimize."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=float)
        n, d = X.shape
        rng = np.random.default_rng(self.random_state)
        cls = DecisionTreeRegressor if self.kind == "rf" else ExtraTreeRegressor
        n_rot = int(round(self.rotate * self.n_estimators))
        n_blind = int(round(self.blind_share * self.n_estimators)) if self.blind_from is not None else 0
        Xb = None
        if n_blind:
            Xb = X.copy()
            Xb[:, self.blind_from :] = 0.0
        k = len(self.rotate_features) if self.rotate_features is not None else d
        self._blocks = y.shape[1] if y.ndim == 2 and self.per_target else 1
        plans = []
        for i in range(self.n_estimators * self._blocks):
            i %= self.n_estimators
            seed = int(rng.integers(2**31))
            weight = np.bincount(rng.integers(0, n, n), minlength=n).astype(float) if self.bootstrap else None
            R = None
            if i < n_rot and k >= 2:
                # A uniformly random rotation (QR of a Gaussian matrix, signs fixed).
                q, r = np.linalg.qr(rng.standard_normal((k, k)))
                R = (q * np.sign(np.diag(r))).astype(np.float32)
            plans.append((seed, weight, R, Xb if i >= self.n_estimators - n_blind else X))

        per_tree = self.n_estimators

        def fit_one(i_plan):
            i, (seed, weight, R, Xt) = i_plan
            tree = cls(min_samples_leaf=self.min_samples_leaf, max_features=self.max_features,
                       random_state=seed)
            yt = y[:, i // per_tree] if self._blocks > 1 else y  # per_target: block i // n of the trees
            if weight is not None:
                keep = weight > 0  # what sklearn's forests do: out-of-bag rows carry no weight
                return tree.fit(self._rotated(Xt[keep], R), yt[keep], sample_weight=weight[keep])
            return tree.fit(self._rotated(Xt, R), yt)

        if self.n_jobs > 1 and self.n_estimators > 1:
            with ThreadPoolExecutor(min(self.n_jobs, self.n_estimators)) as pool:
                self.estimators_ = list(pool.map(fit_one, enumerate(plans)))
        else:
            self.estimators_ = [fit_one(p) for p in enumerate(plans)]
        self._rotations = [p[2] for p in plans]
        # Several targets (multi-output trees, split on all of them): keep
        # which weighted training rows reach each node, so that the node
        # statistics of any one target can be had later (belief_for).
        self._paths = self._node_rows(X, [p[1] for p in plans], n) if y.ndim == 2 and self._blocks == 1 else None
        # Flatten all trees' node statistics into one array, addressed by
        # offset[t] + node, so the leaf view can update them vectorized.
        means, second, counts, offsets = [], [], [], [0]
        self._trees = []
        for est in self.estimators_:
            t = est.tree_
            self._trees.append(t)
            m = t.value[:, 0, 0].astype(float)  # several targets: the first
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

    def _node_rows(self, X: np.ndarray, weights: list, n: int) -> Any:
        """The (n, all nodes) sparse matrix of each training row's weight in each node."""
        from scipy import sparse

        blocks = []
        for est, R, w in zip(self.estimators_, self._rotations, weights):
            path = est.decision_path(self._rotated(X, R)).tocsr().astype(float)
            blocks.append(path if w is None else sparse.diags(w) @ path)
        return sparse.hstack(blocks).tocsc()

    def belief_for(self, y: np.ndarray) -> LeafView:
        """An empty leaf view whose node statistics are those of target ``y``
        (n,) over the training rows: trees grown on several targets at once,
        read for one combination of them (a scalarization)."""
        assert self._paths is not None, "fit() on several targets (y of shape (n, m)) first"
        y = np.asarray(y, dtype=float)
        A = self._paths
        count = np.asarray(A.sum(axis=0)).ravel()
        safe = np.where(count > 0, count, 1.0)
        mean = (A.T @ y) / safe
        second = (A.T @ (y * y)) / safe
        return LeafView(np.empty((self.n_trees, 0), dtype=LEAF), mean, second, count, locate=self.leaves)

    def target_views(self, Y: np.ndarray) -> list[tuple[LeafView, slice]]:
        """One empty leaf view per column of ``Y`` (n, m), the targets the
        forest was fitted on, each with the rows of :meth:`leaves` it reads:
        with ``per_target``, the block of trees grown on that target alone
        (what the others split on does not blur it); otherwise every tree,
        read for that target (:meth:`belief_for`)."""
        Y = np.asarray(Y, dtype=float)
        m = Y.shape[1]
        if self._blocks == 1:
            return [(self.belief_for(Y[:, j]), slice(None)) for j in range(m)]
        assert self._blocks == m and self._flat is not None, "fitted on another number of targets"
        mean, second, count, _ = self._flat
        T = self.n_estimators
        out = []
        for j in range(m):
            # All nodes' statistics are copied; the block's trees read only their own.
            out.append((LeafView(np.empty((T, 0), dtype=LEAF), mean.copy(), second.copy(), count.copy(),
                                 locate=self.leaves), slice(j * T, (j + 1) * T)))
        return out

    @property
    def n_trees(self) -> int:
        return len(self._trees)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global leaf ids of each point in each tree, shape (n_trees, n), as
        32-bit integers (a forest has far fewer than 2**31 nodes; thousands of
        pending points' leaves are kept between proposals)."""
        assert self._flat is not None, "fit() first"
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=np.float32)
        out = np.empty((len(self._trees), len(X)), dtype=LEAF)
        if not len(X):
            return out
        # The trees' own apply(), without a per-call thread pool: the
        # acquisition optimizer looks up many small sets of points.
        for i, (t, R) in enumerate(zip(self._trees, self._rotations)):
            out[i] = t.apply(self._rotated(X, R))
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
            leaves = np.empty((self.n_trees, 0), dtype=LEAF)
        else:
            leaves = self.leaves(X)
        return LeafView(leaves, mean.copy(), second.copy(), count.copy(), locate=self.leaves)

    def belief(self) -> LeafView:
        """An empty leaf view (the :class:`ambs.surrogate.base.Belief` of a forest)."""
        return self.view()


def _merged(n, m, s, k, s1, s2, spread: bool):
    """Leaf statistics after adding ``k`` samples with sum ``s1`` and sum of
    squares ``s2`` to leaves of weight ``n``, mean ``m`` and second moment ``s``.

    With ``spread`` the samples count as observations (their distance from the
    mean adds to the variance); without, only the mean moves and the variance
    shrinks as ``k`` more samples at the mean would make it.

    Returns:
        the new weight, mean and second moment.
    """
    n_new = n + k
    m_new = (n * m + s1) / n_new
    if spread:
        s_new = (n * s + s2) / n_new
    else:
        s_new = np.maximum(s - m * m, 0.0) * (n / n_new) + m_new * m_new
    return n_new, m_new, s_new


# Folds into a view whose tracked points have not changed, past which a fold
# uses a sorted index of their leaves (its sort costs about as much as this
# many passes over every tracked point).
_DENSE_ADDS = 32


class LeafView:
    """Mean and variance of a set of points under updatable leaf statistics.

    Args:
        leaves: global leaf ids, shape (n_trees, n_points).
        mean, second, count: per-node mean, second moment and weight (copies;
            updates do not touch the fitted forest).
        locate: points to their leaf ids (the forest's :meth:`ForestSurrogate.leaves`).
    """

    def __init__(
        self, leaves: np.ndarray, mean: np.ndarray, second: np.ndarray, count: np.ndarray,
        locate: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self._locate = locate
        self.leaves = leaves
        self.mean = mean
        self.second = second
        self.count = count
        self.n_trees = leaves.shape[0]
        self.s1 = mean[leaves].sum(axis=0)
        self.s2 = second[leaves].sum(axis=0)
        self._adds = 0  # adds since the tracked points last changed
        self._index: tuple[np.ndarray, np.ndarray] | None = None  # tracked (tree, point) entries by leaf id

    def __len__(self) -> int:
        return self.leaves.shape[1]

    def locate(self, X: np.ndarray) -> np.ndarray:
        """Leaf ids of encoded points ``X``: the handles the other methods take."""
        assert self._locate is not None, "a view made without its forest"
        return self._locate(X)

    def mean_at(self, i: int) -> float:
        """The mean of tracked point ``i``."""
        return float(self.s1[i]) / self.n_trees

    def add_at(self, i: int, y: float, spread: bool = True, track: bool = True) -> None:
        """Fold ``y`` at tracked point ``i`` (see :meth:`add`)."""
        self.add(self.leaves[:, i], y, spread=spread, track=track)

    def fresh_at(self, idx: Any) -> tuple[Any, Any]:
        """Mean and standard deviation of tracked point(s) ``idx`` from the leaf
        statistics themselves (right after folds made with ``track=False``)."""
        return self.peek(np.ascontiguousarray(self.leaves[:, idx]))  # (contiguous: summed as peek sums)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of every point, shapes (n,)."""
        return self._moments(self.s1, self.s2)

    def _moments(self, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = s1 / self.n_trees
        var = s2 / self.n_trees - mu * mu
        return mu, np.sqrt(np.maximum(var, 0.0))

    def peek_mean(self, leaves: np.ndarray) -> np.ndarray:
        """The mean alone of :meth:`peek` (what a believer's lie needs)."""
        return self.mean[leaves].sum(axis=0) / self.n_trees

    def peek(self, leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of other points (their leaf ids, shape
        (n_trees, m)) under the current statistics, without adding them."""
        return self._moments(self.mean[leaves].sum(axis=0), self.second[leaves].sum(axis=0))

    def extend(self, leaves: np.ndarray) -> None:
        """Append points (their leaf ids, shape (n_trees, m)) to the view."""
        self.leaves = np.hstack([self.leaves, leaves])
        self._adds, self._index = 0, None
        self.s1 = np.concatenate([self.s1, self.mean[leaves].sum(axis=0)])
        self.s2 = np.concatenate([self.s2, self.second[leaves].sum(axis=0)])

    def add(self, point_leaves: np.ndarray, y: float, weight: float = 1.0, spread: bool = True,
            track: bool = True) -> None:
        """Fold an observation ``y`` at a point into its leaves (one per tree).

        Args:
            point_leaves: the point's global leaf ids, shape (n_trees,).
            y: the value it is assumed (a lie) or known to have.
            weight: how many samples it counts for.
            spread: count ``y``'s distance from the leaf mean as spread
                (an observation). False moves the mean only and shrinks the
                spread as one more sample would (a lie: a pending point makes
                its leaves less uncertain, not more).
            track: also update the tracked points' sums; False leaves them
                stale (read points with :meth:`fresh_at` then): one fold of a
                long batch costs a few small array operations, not a pass
                over every tracked point that shares a leaf.
        """
        n = self.count[point_leaves]
        m = self.mean[point_leaves]
        s = self.second[point_leaves]
        n_new, m_new, s_new = _merged(n, m, s, weight, weight * y, weight * y * y, spread)
        self.mean[point_leaves] = m_new
        self.second[point_leaves] = s_new
        self.count[point_leaves] = n_new
        if len(self) and track:
            self._adds += 1
            if self._adds <= _DENSE_ADDS:
                hit = self.leaves == point_leaves[:, None]  # (n_trees, n_points)
                self.s1 += (m_new - m) @ hit
                self.s2 += (s_new - s) @ hit
            else:  # a long batch: look the point's leaves up in an index of the tracked points
                pts, trees = self._sharing(point_leaves)
                if len(pts):
                    n_pts = len(self)
                    self.s1 += np.bincount(pts, weights=(m_new - m)[trees], minlength=n_pts)
                    self.s2 += np.bincount(pts, weights=(s_new - s)[trees], minlength=n_pts)

    def _sharing(self, point_leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The tracked points that share a leaf with a point, and in which tree
        (one entry per tree and point), from an index sorted by leaf id: built
        once the tracked points stop changing, then each lookup costs a
        binary search instead of a pass over every tracked point."""
        if self._index is None:
            flat = self.leaves.ravel()  # entry t * n + p: tree t, point p
            order = np.argsort(flat, kind="stable")
            self._index = (flat[order], order)
        ids, order = self._index
        lo = np.searchsorted(ids, point_leaves, side="left")
        counts = np.searchsorted(ids, point_leaves, side="right") - lo
        total = int(counts.sum())
        if not total:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
        entries = order[starts]
        return entries % len(self), np.repeat(np.arange(len(point_leaves)), counts)

    def add_many(self, leaves: np.ndarray, y: np.ndarray | float, spread: bool = True) -> None:
        """Fold many observations at once: the same statistics as calling
        :meth:`add` for each point in turn, in one vectorized pass.

        Args:
            leaves: the points' global leaf ids, shape (n_trees, m).
            y: their values, shape (m,), or one value for all.
            spread: as for :meth:`add`.
        """
        if leaves.size == 0:
            return
        m = leaves.shape[1]
        y = np.broadcast_to(np.asarray(y, dtype=float), (m,))
        flat = leaves.ravel()
        yy = np.tile(y, leaves.shape[0])
        # Counts over the node ids themselves (no sort): linear in the points
        # and the forest's size, which matters with thousands of pending points.
        size = len(self.mean)
        counts = np.bincount(flat, minlength=size)
        nodes = np.flatnonzero(counts)
        k = counts[nodes].astype(float)
        s1 = np.bincount(flat, weights=yy, minlength=size)[nodes]
        s2 = np.bincount(flat, weights=yy * yy, minlength=size)[nodes] if spread else None  # (a lie: unused)
        n_new, m_new, s_new = _merged(self.count[nodes], self.mean[nodes], self.second[nodes], k, s1, s2, spread)
        self.mean[nodes] = m_new
        self.second[nodes] = s_new
        self.count[nodes] = n_new
        if len(self):
            self.s1 = self.mean[self.leaves].sum(axis=0)
            self.s2 = self.second[self.leaves].sum(axis=0)
