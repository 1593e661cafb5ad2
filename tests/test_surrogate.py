"""ambs.surrogate: tree-ensemble surrogates and the leaf view behind the constant liar."""

from __future__ import annotations

import numpy as np
import pytest

from ambs.surrogate import SURROGATES, ForestSurrogate, GPSurrogate, LeafView, make_surrogate


def data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))
    y = (X[:, 0] - 0.3) ** 2 + (X[:, 1] - 0.7) ** 2 + 0.01 * rng.normal(size=n)
    return X, y


FORESTS = ["et", "rf"]


@pytest.fixture(params=FORESTS)
def fitted(request) -> ForestSurrogate:
    X, y = data()
    return make_surrogate(request.param, random_state=0, n_estimators=24, min_samples_leaf=2).fit(X, y)


def test_make_surrogate():
    assert make_surrogate("rf").kind == "rf"
    assert make_surrogate("et").kind == "et"
    with pytest.raises(ValueError, match="unknown surrogate"):
        make_surrogate("kriging")
    assert isinstance(make_surrogate("gp"), GPSurrogate)


# ------------------------------------------------- the contract, every surrogate
@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_every_surrogate_predicts_a_smooth_bowl(name):
    X, y = data()
    model = SURROGATES[name].make(random_state=0).fit(X, y)
    Xt, yt = data(200, seed=1)
    mu, std = model.predict(Xt, return_std=True)
    assert mu.shape == std.shape == (200,)
    assert np.all(std >= 0)
    assert np.allclose(model.predict(Xt), mu)
    assert np.corrcoef(mu, yt)[0, 1] > 0.8


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_every_surrogates_belief_folds_a_lie_where_it_is_told(name):
    """What constant liar needs: a belief that tracks candidates as predict()
    scores them, and a lie folded at one candidate pulls its mean to the lie
    without adding spread there, while a point far away hardly moves."""
    X, y = data(40)
    model = SURROGATES[name].make(random_state=0).fit(X, y)
    belief = model.belief()
    C = np.array([[0.9, 0.1], [0.92, 0.12], [0.3, 0.7]])
    belief.extend(belief.locate(C))
    assert len(belief) == 3
    mu0, sd0 = belief.mean_std()
    assert np.allclose(mu0, model.predict(C)) and np.allclose(sd0, model.predict(C, return_std=True)[1])
    assert np.allclose(belief.peek(belief.locate(C[:1])), (mu0[:1], sd0[:1]))
    lie = float(y.min())
    belief.add_at(0, lie, spread=False)
    mu1, sd1 = belief.mean_std()
    assert abs(mu1[0] - lie) < abs(mu0[0] - lie)
    assert sd1[0] <= sd0[0] + 1e-12
    assert belief.mean_at(0) == pytest.approx(mu1[0])
    assert abs(mu1[2] - mu0[2]) < abs(mu1[0] - mu0[0])
    # Folding at untracked points: the same as tracking them first.
    other = model.belief()
    other.extend(other.locate(C))
    other.add_many(other.locate(C[:1]), lie, spread=False)
    assert np.allclose(other.mean_std()[0], mu1)


def test_predict_shapes_and_fit_quality(fitted):
    Xt, yt = data(200, seed=1)
    mu, std = fitted.predict(Xt, return_std=True)
    assert mu.shape == std.shape == (200,)
    assert np.all(std >= 0)
    assert np.array_equal(fitted.predict(Xt), mu)
    # A useful model of a smooth bowl: its predictions correlate with the truth.
    assert np.corrcoef(mu, yt)[0, 1] > 0.8


def test_uncertainty_grows_away_from_the_data():
    rng = np.random.default_rng(0)
    X = rng.random((60, 1)) * 0.5  # data only on the left half
    y = np.sin(6 * X[:, 0]) + 0.05 * rng.normal(size=60)
    model = ForestSurrogate("et", n_estimators=32, min_samples_leaf=2, random_state=0).fit(X, y)
    _, std_in = model.predict(np.linspace(0.05, 0.45, 20)[:, None], return_std=True)
    _, std_out = model.predict(np.linspace(0.7, 1.0, 20)[:, None], return_std=True)
    assert std_out.mean() >= std_in.mean()


def test_extra_trees_are_certain_at_the_results_and_uncertain_between():
    # Why AMBS defaults to extra trees: fitted on every result with leaves of
    # one, all trees pass through the results, so the spread vanishes there
    # and grows between them; bootstrap trees that missed a result disagree on it.
    X, y = data(60)
    et = ForestSurrogate("et", n_estimators=32, min_samples_leaf=1, random_state=0).fit(X, y)
    rf = ForestSurrogate("rf", n_estimators=32, min_samples_leaf=1, random_state=0).fit(X, y)
    mu_at, std_at = et.predict(X, return_std=True)
    assert np.allclose(mu_at, y) and std_at.max() < 1e-6  # round-off of the variance
    between = np.random.default_rng(5).random((200, 2))
    assert et.predict(between, return_std=True)[1].mean() > 0.01
    assert rf.predict(X, return_std=True)[1].mean() > 0.01


def test_seeded_fit_is_reproducible():
    X, y = data()
    a = ForestSurrogate("rf", n_estimators=8, random_state=3).fit(X, y).predict(X[:10])
    b = ForestSurrogate("rf", n_estimators=8, random_state=3).fit(X, y).predict(X[:10])
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", FORESTS)
@pytest.mark.parametrize("rotate", [0.0, 0.5])
def test_trees_grown_without_per_tree_checks_are_scikit_learns_own(kind, rotate, monkeypatch):
    """The forest checks its inputs once and grows each tree without
    scikit-learn's per-tree checks: the trees are those of the checked fit."""
    from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

    X, y = data(120, seed=4)
    fast = ForestSurrogate(kind, n_estimators=12, random_state=5, rotate=rotate).fit(X, y)
    for cls in (DecisionTreeRegressor, ExtraTreeRegressor):
        real = cls.fit
        monkeypatch.setattr(cls, "fit", lambda self, *a, _real=real, **k: _real(self, *a, **{**k, "check_input": True}))
    checked = ForestSurrogate(kind, n_estimators=12, random_state=5, rotate=rotate).fit(X, y)
    for a, b in zip(fast.estimators_, checked.estimators_):
        np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
        np.testing.assert_array_equal(a.tree_.feature, b.tree_.feature)
        np.testing.assert_array_equal(a.tree_.value, b.tree_.value)
    Q = np.random.default_rng(6).random((50, 2))
    np.testing.assert_array_equal(fast.predict(Q, return_std=True), checked.predict(Q, return_std=True))


def test_leaves_shape(fitted):
    X, _ = data(30, seed=2)
    leaves = fitted.leaves(X)
    assert leaves.shape == (24, 30)
    # Global ids: distinct trees never share a node id.
    per_tree = [set(row) for row in leaves]
    for i in range(len(per_tree)):
        for j in range(i + 1, len(per_tree)):
            assert not per_tree[i] & per_tree[j]


def test_view_matches_predict(fitted):
    X, _ = data(50, seed=3)
    view = fitted.view(X)
    assert isinstance(view, LeafView)
    mu, std = view.mean_std()
    mu2, std2 = fitted.predict(X, return_std=True)
    assert np.allclose(mu, mu2) and np.allclose(std, std2)


def _recomputed(view: LeafView) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the view's points straight from its node statistics."""
    mu = view.mean[view.leaves].mean(axis=0)
    var = view.second[view.leaves].mean(axis=0) - mu * mu
    return mu, np.sqrt(np.maximum(var, 0.0))


def test_add_moves_points_sharing_the_leaves_toward_the_lie(fitted):
    X, y = data(300, seed=4)
    view = fitted.view(X)
    mu0, _ = view.mean_std()
    i = int(np.argmin(mu0))  # the most promising point, as the liar would take
    lie = float(y.max())  # cl_max: the worst value seen
    point = view.leaves[:, i].copy()
    shares = (view.leaves == point[:, None]).any(axis=0)
    view.add(point, lie)
    mu1, _ = view.mean_std()
    # The point itself and every point sharing one of its leaves move toward the lie ...
    assert mu1[i] > mu0[i]
    assert np.all(mu1[shares] > mu0[shares])
    assert np.all(mu1[shares] <= lie)
    # ... and no other point changes.
    assert np.array_equal(mu1[~shares], mu0[~shares])
    assert (~shares).any()
    # The incremental update agrees with a recomputation from the node statistics.
    mu_r, std_r = _recomputed(view)
    assert np.allclose(mu1, mu_r)
    assert np.allclose(view.mean_std()[1], std_r)


def test_add_of_a_lie_at_the_prediction_reduces_the_spread():
    """A lie at a point's own prediction, given weight, pins it: the mean stays
    there and the standard deviation shrinks toward zero, in every leaf it shares."""
    X, y = data(100, seed=5)
    model = ForestSurrogate("rf", n_estimators=16, min_samples_leaf=3, random_state=0).fit(X, y)
    Xc, _ = data(200, seed=6)
    view = model.view(Xc)
    mu0, std0 = view.mean_std()
    i = int(np.argmax(std0))
    point = view.leaves[:, i].copy()
    shares = (view.leaves == point[:, None]).all(axis=0)  # same leaf in every tree
    # One lie: each leaf's spread and the spread between trees both shrink.
    v = model.view(Xc)
    v.add(point, float(mu0[i]))
    mu1, std1 = v.mean_std()
    assert std1[i] < std0[i]
    assert np.all(std1[shares] < std0[shares])
    assert mu1[i] == pytest.approx(mu0[i], abs=0.2 * std0[i])
    # A heavy lie: the leaves hold (almost) only the lie.
    v = model.view(Xc)
    v.add(point, float(mu0[i]), weight=1e5)
    mu2, std2 = v.mean_std()
    assert std2[i] < 0.05 * std0[i]
    assert mu2[i] == pytest.approx(mu0[i], abs=0.01 * std0[i])


def test_heavy_lie_overrides_the_data(fitted):
    X, _ = data(40, seed=7)
    view = fitted.view(X)
    point = view.leaves[:, 0].copy()
    view.add(point, 5.0, weight=1e6)
    mu, std = view.mean_std()
    assert mu[0] == pytest.approx(5.0, rel=1e-4)
    assert std[0] == pytest.approx(0.0, abs=1e-2)


def test_view_does_not_touch_the_forest(fitted):
    X, _ = data(40, seed=8)
    before = fitted.predict(X, return_std=True)
    view = fitted.view(X)
    for j in range(5):
        view.add(view.leaves[:, j].copy(), 10.0)
    after = fitted.predict(X, return_std=True)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert not np.allclose(view.mean_std()[0], before[0])


def test_successive_lies_accumulate(fitted):
    X, y = data(100, seed=9)
    view = fitted.view(X)
    mu0, _ = view.mean_std()
    point = view.leaves[:, 0].copy()
    lie = float(y.max()) + 1.0
    trace = [mu0[0]]
    for _ in range(4):
        view.add(point, lie)
        trace.append(view.mean_std()[0][0])
    assert all(a < b for a, b in zip(trace, trace[1:]))
    assert trace[-1] < lie


def test_add_many_equals_one_add_per_point():
    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    model = ForestSurrogate(n_estimators=16, min_samples_leaf=2, random_state=0).fit(X, (X**2).sum(1))
    C = rng.random((300, 4))
    one, many = model.view(C), model.view(C)
    P, vals = rng.random((50, 4)), rng.random(50)
    leaves = model.leaves(P)
    for i in range(50):
        one.add(leaves[:, i], vals[i])
    many.add_many(leaves, vals)
    np.testing.assert_allclose(many.mean_std(), one.mean_std(), atol=1e-12)
    np.testing.assert_array_equal(many.count, one.count)
    many.add_many(leaves[:, :0], vals[:0])  # nothing to fold is a no-op
    np.testing.assert_allclose(many.mean_std(), one.mean_std(), atol=1e-12)


def test_a_long_batch_of_folds_through_the_leaf_index_equals_the_dense_folds(monkeypatch):
    """Past a few folds into an unchanged view, a fold finds the tracked points
    sharing its leaves through a sorted index instead of comparing against
    every tracked point: the statistics must be the same (to the last bits:
    the index sums a point's trees in order, the dense fold as BLAS does)."""
    import ambs.surrogate.leaves as leaves_module

    rng = np.random.default_rng(1)
    X = rng.random((300, 3))
    model = ForestSurrogate(n_estimators=32, random_state=0).fit(X, np.sin(6 * X).sum(1))
    C = rng.random((500, 3))
    P, vals = rng.random((80, 3)), rng.random(80)
    leaves = model.leaves(np.vstack([P, C[:20]]))  # some folds land exactly on tracked points
    views = []
    for dense in (10**9, 0, 5):
        monkeypatch.setattr(leaves_module, "_DENSE_ADDS", dense)
        view = model.view(C)
        for i in range(leaves.shape[1]):
            view.add(leaves[:, i], vals[i % 80], spread=bool(i % 2))
            if i == 40:
                view.extend(model.leaves(P[:3]))  # the tracked points change: the index is rebuilt
        views.append(view)
    for other in views[1:]:
        np.testing.assert_allclose(other.s1, views[0].s1, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(other.s2, views[0].s2, rtol=1e-13, atol=1e-12)
    assert views[1]._index is not None and views[0]._index is None


def test_rotated_trees_predict_what_their_trees_predict_on_rotated_inputs():
    X, y = data()
    model = ForestSurrogate("rf", n_estimators=10, rotate=0.5, random_state=3).fit(X, y)
    rotated = [R is not None for R in model._rotations]
    assert sum(rotated) == 5
    T = np.random.default_rng(1).random((30, 2))
    per_tree = [est.predict(model._rotated(T.astype(np.float32), R))
                for est, R in zip(model.estimators_, model._rotations)]
    np.testing.assert_allclose(model.predict(T), np.mean(per_tree, axis=0), rtol=1e-6)
    for R in model._rotations:
        if R is not None:
            np.testing.assert_allclose(R @ R.T, np.eye(2), atol=1e-5)


def test_rotation_leaves_other_features_on_their_axes():
    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    model = ForestSurrogate("rf", n_estimators=4, rotate=1.0, rotate_features=np.array([0, 2]), random_state=0)
    model.fit(X, X[:, 1])
    for R in model._rotations:
        Z = model._rotated(X.astype(np.float32), R)
        np.testing.assert_array_equal(Z[:, 1], X[:, 1].astype(np.float32))
        assert not np.allclose(Z[:, 0], X[:, 0])


def test_rotated_trees_fit_a_diagonal_valley_better():
    # y depends on x0 - x1 only: axis-aligned trees need a staircase of
    # splits, rotated ones can cut across.
    rng = np.random.default_rng(0)
    X = rng.random((150, 2))
    T = rng.random((500, 2))

    def f(Z: np.ndarray) -> np.ndarray:
        return (Z[:, 0] - Z[:, 1]) ** 2

    errors = {}
    for rotate in (0.0, 1.0):
        model = ForestSurrogate("rf", n_estimators=32, min_samples_leaf=2, rotate=rotate, random_state=0)
        errors[rotate] = float(np.mean((model.fit(X, f(X)).predict(T) - f(T)) ** 2))
    assert errors[1.0] < 0.8 * errors[0.0], errors


def test_bad_rotate_is_refused():
    with pytest.raises(ValueError, match="rotate"):
        ForestSurrogate("rf", rotate=1.5)


def test_a_lie_without_spread_moves_the_mean_and_shrinks_the_spread():
    X, y = data()
    model = ForestSurrogate("rf", n_estimators=16, min_samples_leaf=3, random_state=0).fit(X, y)
    point = np.array([[0.3, 0.7]])
    mu0 = model.predict(point)
    leaves = model.leaves(point)[:, 0]
    for spread in (True, False):
        view = model.view(point)
        within0 = view.second[leaves] - view.mean[leaves] ** 2
        view.add(leaves, float(y.max()), spread=spread)
        within = view.second[leaves] - view.mean[leaves] ** 2
        assert view.mean_std()[0][0] > mu0[0]
        # The leaves' own spread: grows with an observation far above their
        # mean, shrinks by n / (n + 1) with a lie that has no spread.
        if spread:
            assert np.all(within > within0)
        else:
            n_new = view.count[leaves]
            np.testing.assert_allclose(within, within0 * (n_new - 1) / n_new, rtol=1e-9, atol=1e-12)
    # add_many agrees with add for spread=False as well.
    P = np.random.default_rng(2).random((5, 2))
    a, b = model.view(P), model.view(P)
    L = model.leaves(P)
    for j in range(5):
        a.add(L[:, j], 1.5, spread=False)
    b.add_many(L, 1.5, spread=False)
    np.testing.assert_allclose(a.mean_std(), b.mean_std(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["et", "rf"])
def test_blind_trees_never_split_on_the_prior_columns(kind):
    """The trees a warm start keeps blind to its prior column fit the space's
    columns only; the others split on the prior when it explains the target."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    y = X[:, 2] * 3 + 0.1 * X[:, 0]  # column 2 (the "prior") explains nearly all of it
    forest = ForestSurrogate(kind=kind, n_estimators=10, random_state=1, blind_from=2, blind_share=0.5).fit(X, y)
    uses = [bool((est.tree_.feature == 2).any()) for est in forest.estimators_]
    assert uses == [True] * 5 + [False] * 5
    assert np.isfinite(forest.predict(X, return_std=True)[1]).all()


def test_folds_without_tracking_leave_what_tracked_folds_give():
    """A long batch folds each lie into the leaves without updating the
    candidates that share them (``track=False``) and works a candidate's score
    out afresh when it needs it: the leaves must end as tracked folds leave
    them, and a fresh read must equal the tracked sums."""
    rng = np.random.default_rng(4)
    X = rng.random((400, 3))
    model = ForestSurrogate(n_estimators=16, random_state=1).fit(X, np.cos(5 * X).sum(1))
    C = rng.random((300, 3))
    tracked, lazy = model.view(C), model.view(C)
    for i in rng.permutation(300)[:120]:
        y = float(rng.normal())
        tracked.add_at(int(i), y, spread=False)
        lazy.add_at(int(i), y, spread=False, track=False)
    np.testing.assert_array_equal(lazy.mean, tracked.mean)
    np.testing.assert_array_equal(lazy.second, tracked.second)
    mu, sd = lazy.fresh_at(np.arange(300))
    np.testing.assert_allclose(mu, tracked.mean_std()[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sd, tracked.mean_std()[1], rtol=1e-9, atol=1e-9)
    assert not np.allclose(lazy.s1, tracked.s1)  # the untracked sums are stale, as documented
    np.testing.assert_array_equal(lazy.peek_mean(lazy.leaves), lazy.fresh_at(np.arange(300))[0])
