"""Random-forest and extra-trees surrogates with a predictive mean and spread.

The spread is the law of total variance over the trees: each tree predicts
the mean and variance of the training targets in the leaf a point falls
into, and ``var = mean_t(var_t + mean_t**2) - mean**2``.

:class:`ambs.surrogate.leaves.LeafView` keeps those leaf statistics for a set of candidate points,
so that a constant-liar "lie" (or a new observation) can be folded into the
leaves it lands in without refitting: the lie joins one leaf per tree, and
only the candidates that share such a leaf change. This is what makes
multipoint proposals cost O(trees x candidates) per point instead of one
forest fit per point. Candidates can be appended to a view at any time
(:meth:`LeafView.extend`); they are scored under the lies folded so far, which
is what lets the acquisition optimizer search locally on the lied model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

from ambs.surrogate.leaves import LEAF, LeafView

__all__ = ["LEAF", "ForestSurrogate", "LeafView"]


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
            # The inputs were checked once, below; per tree, scikit-learn's
            # checks of them and of the tree's settings cost more than growing
            # the tree on a few hundred rows (its own forests skip them too).
            # The setting is per thread, so it is made here.
            with config_context(skip_parameter_validation=True):
                if weight is not None:
                    keep = weight > 0  # what sklearn's forests do: out-of-bag rows carry no weight
                    Xk = np.ascontiguousarray(self._rotated(Xt[keep], R))
                    return tree.fit(Xk, yt[keep], sample_weight=weight[keep], check_input=checks)
                return tree.fit(np.ascontiguousarray(self._rotated(Xt, R)), yt, check_input=checks)

        checks = not bool(np.isfinite(X).all())  # missing values: scikit-learn's own path
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
