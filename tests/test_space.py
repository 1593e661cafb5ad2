"""ambs.space: sampling, repair, conversion, encoding and grids of a ConfigSpace space."""

from __future__ import annotations

import itertools
import math

import ConfigSpace as CS
import numpy as np
import pytest

from ambs import Problem
from ambs.space import Space


def assert_valid(space: Space, X: np.ndarray) -> None:
    """Every row is a legal ConfigSpace vector (conditions and forbiddens included)."""
    assert X.ndim == 2 and X.shape[1] == space.dim
    for v in X:
        CS.Configuration(space.cs, vector=v).check_valid_configuration()


def col(space: Space, X: np.ndarray, name: str) -> np.ndarray:
    return X[:, space.names.index(name)]


@pytest.fixture
def space(mixed_problem) -> Space:
    return Space(mixed_problem.space)


def test_layout(space):
    assert space.dim == 7
    assert sorted(space.names) == sorted(["lr", "layers", "act", "flag", "batch", "opt", "momentum"])
    # Categoricals become one-hot blocks: act(2) flag(2) opt(2), one column for the rest.
    assert space.n_features == 4 + 2 + 2 + 2
    assert not space.is_finite and space.size == math.inf
    assert space.has_conditions


def test_sample_gives_valid_configurations(space):
    X = space.sample(300, np.random.default_rng(0))
    assert X.shape == (300, space.dim)
    assert_valid(space, X)
    assert space.sample(0, np.random.default_rng(0)).shape == (0, space.dim)


def test_inactive_conditionals_are_nan(space):
    X = space.sample(300, np.random.default_rng(1))
    sgd = space.hps[space.names.index("opt")].choices.index("sgd")
    opt = col(space, X, "opt")
    momentum = col(space, X, "momentum")
    assert np.array_equal(np.isnan(momentum), opt != sgd)
    # Both branches occur, and active values are inside the unit interval.
    assert 0 < np.isnan(momentum).sum() < len(X)
    assert np.all((momentum[~np.isnan(momentum)] >= 0) & (momentum[~np.isnan(momentum)] <= 1))
    for c in space.to_dicts(X):
        assert ("momentum" in c) == (c["opt"] == "sgd")


def test_sampling_is_seeded(space):
    a = space.sample(20, np.random.default_rng(5))
    b = space.sample(20, np.random.default_rng(5))
    c = space.sample(20, np.random.default_rng(6))
    assert np.array_equal(a, b, equal_nan=True)
    assert not np.array_equal(a, c, equal_nan=True)


def test_to_dicts_values_are_native_and_in_range(space):
    configs = space.to_dicts(space.sample(200, np.random.default_rng(2)))
    for c in configs:
        assert type(c["layers"]) is int and 1 <= c["layers"] <= 8
        assert type(c["lr"]) is float and 1e-4 <= c["lr"] <= 1e-1
        assert c["act"] in ("relu", "tanh")
        assert type(c["flag"]) is bool
        assert c["batch"] in (16, 32, 64)
        if "momentum" in c:
            assert 0.0 <= c["momentum"] <= 0.9
    # The log scale: about as many draws below 3e-3 (the log midpoint) as above.
    below = np.mean([c["lr"] < math.sqrt(1e-4 * 1e-1) for c in configs])
    assert 0.3 < below < 0.7


def test_round_trip_dicts_vectors(space):
    X = space.sample(100, np.random.default_rng(3))
    back = space.to_vectors(space.to_dicts(X))
    # Log-scaled reals come back to within float noise, everything else exactly.
    assert np.allclose(back, X, equal_nan=True, rtol=0, atol=1e-7)
    exact = [i for i, n in enumerate(space.names) if n not in ("lr", "momentum")]
    assert np.array_equal(back[:, exact], X[:, exact], equal_nan=True)
    assert space.to_vectors([]).shape == (0, space.dim)


def test_to_vectors_rejects_invalid_configuration(space):
    config = space.to_dicts(space.sample(1, np.random.default_rng(0)))[0]
    with pytest.raises(ValueError):
        space.to_vectors([{**config, "layers": 99}])
    with pytest.raises(ValueError):
        space.to_vectors([{**config, "act": "gelu"}])


def test_encode(space):
    X = space.sample(200, np.random.default_rng(4))
    F = space.encode(X)
    assert F.shape == (200, space.n_features)
    # Walk the feature layout hyperparameter by hyperparameter.
    j = 0
    for i, hp in enumerate(space.hps):
        x = X[:, i]
        active = np.isfinite(x)
        if isinstance(hp, CS.CategoricalHyperparameter):
            block = F[:, j : j + len(hp.choices)]
            assert set(np.unique(block)) <= {0.0, 1.0}
            assert np.all(block[active].sum(axis=1) == 1)
            assert np.all(block[active].argmax(axis=1) == x[active].astype(int))
            assert np.all(block[~active] == 0)
            j += len(hp.choices)
        else:
            f = F[:, j]
            assert np.all((f[active] >= 0) & (f[active] <= 1))
            assert np.all(f[~active] == -1)
            j += 1
    assert j == space.n_features
    # The conditional momentum is inactive in some rows: -1 there.
    m = space.names.index("momentum")
    assert (~np.isfinite(X[:, m])).any()


def test_encode_ordinal_spans_unit_interval():
    p = Problem()
    p.add_hyperparameter([16, 32, 64], "batch", ordered=True)
    s = Space(p.space)
    F = s.encode(np.array([[0.0], [1.0], [2.0]]))
    assert F[:, 0].tolist() == [0.0, 0.5, 1.0]


def feature_blocks(space: Space) -> dict[str, slice]:
    """Which encoded columns belong to each hyperparameter."""
    out, j = {}, 0
    for hp in space.hps:
        width = len(hp.choices) if isinstance(hp, CS.CategoricalHyperparameter) else 1
        out[hp.name] = slice(j, j + width)
        j += width
    return out


def test_encode_inactive_categorical_is_all_zero():
    p = Problem()
    p.add_hyperparameter(["a", "b"], "parent")
    p.add_hyperparameter(["x", "y", "z"], "child")
    p.add_condition("child", "parent", "b")
    s = Space(p.space)
    F = s.encode(s.to_vectors([{"parent": "a"}, {"parent": "b", "child": "z"}]))
    blocks = feature_blocks(s)
    assert F.shape == (2, 5)
    assert F[0, blocks["child"]].tolist() == [0.0, 0.0, 0.0]
    assert F[1, blocks["child"]].tolist() == [0.0, 0.0, 1.0]
    assert F[0, blocks["parent"]].tolist() == [1.0, 0.0]
    assert F[1, blocks["parent"]].tolist() == [0.0, 1.0]


def test_neighbors_stay_valid(space):
    rng = np.random.default_rng(7)
    X = space.sample(20, rng)
    N = space.neighbors(X, 10, rng)
    assert 0 < len(N) <= 200 and N.shape[1] == space.dim
    assert_valid(space, N)
    # Local moves: most neighbours differ from their origin in few coordinates.
    assert len(set(space.keys(N)) - set(space.keys(X))) > 100


def test_neighbors_of_a_discrete_space_move_to_other_values(discrete_problem):
    s = Space(discrete_problem.space)
    X = s.to_vectors([{"cat": "b", "n": 2}])
    N = s.neighbors(X, 50, np.random.default_rng(0))
    assert_valid(s, N)
    configs = s.to_dicts(N)
    assert all(c != {"cat": "b", "n": 2} for c in configs)


def test_from_unit_and_repair(space):
    rng = np.random.default_rng(8)
    X = space.from_unit(rng.random((50, space.dim)), rng)
    assert X.shape == (50, space.dim)
    assert_valid(space, X)
    # repair() fills missing active values and blanks inactive ones.
    raw = rng.random((30, space.dim)) * 3 - 1
    raw[:, space.names.index("lr")] = np.nan
    fixed = space.repair(raw, rng)
    assert len(fixed) == 30
    assert_valid(space, fixed)


def test_forbidden_clauses_are_respected():
    p = Problem()
    p.add_hyperparameter(["a", "b", "c"], "opt")
    p.add_hyperparameter((1, 4), "n")
    p.space.add(
        CS.ForbiddenAndConjunction(
            CS.ForbiddenEqualsClause(p.space["opt"], "a"), CS.ForbiddenEqualsClause(p.space["n"], 1)
        )
    )
    s = Space(p.space)
    X = s.sample(500, np.random.default_rng(0))
    assert len(X) == 500
    assert_valid(s, X)
    assert not any(c == {"opt": "a", "n": 1} for c in s.to_dicts(X))
    grid = s.to_dicts(s.grid(10))
    assert len(grid) == 11 and {"opt": "a", "n": 1} not in grid


def test_default_vector(mixed_problem):
    s = Space(mixed_problem.space)
    v = s.default_vector()
    assert v.shape == (s.dim,)
    assert s.to_dicts(v)[0] == mixed_problem.default_configuration


def test_keys_identify_configurations(space):
    X = space.sample(50, np.random.default_rng(9))
    keys = space.keys(X)
    assert len(set(keys)) == 50
    assert space.keys(X.copy()) == keys
    assert space.keys(X[:1])[0] == keys[0]


def _all_configs(s: Space) -> list[dict]:
    return s.to_dicts(s.grid(1000))


def test_grid_enumerates_a_discrete_space_exactly_once():
    p = Problem()
    p.add_hyperparameter(["a", "b", "c"], "cat")
    p.add_hyperparameter((1, 4), "n")
    p.add_hyperparameter([16, 32], "batch", ordered=True)
    p.add_hyperparameter(["x", "y"], "sub")
    p.add_condition("sub", "cat", "b")
    s = Space(p.space)
    assert s.is_finite and s.size == 3 * 4 * 2 * 2  # an upper bound with conditions
    configs = _all_configs(s)
    expected = []
    for cat, n, batch in itertools.product("abc", range(1, 5), (16, 32)):
        subs = ("x", "y") if cat == "b" else (None,)
        for sub in subs:
            c = {"cat": cat, "n": n, "batch": batch}
            if sub:
                c["sub"] = sub
            expected.append(c)
    canon = sorted(repr(sorted(c.items())) for c in configs)
    assert canon == sorted(repr(sorted(c.items())) for c in expected)
    assert len(canon) == len(set(canon)) == 32
    assert_valid(s, s.grid(1000))


def test_grid_with_enough_steps_has_every_integer_even_on_a_log_scale():
    p = Problem()
    p.add_hyperparameter((1, 100, "log-uniform"), "k")
    p.add_hyperparameter((3, 9), "j")
    s = Space(p.space)
    configs = _all_configs(s)
    assert sorted({c["k"] for c in configs}) == list(range(1, 101))
    assert sorted({c["j"] for c in configs}) == list(range(3, 10))
    assert len(configs) == 100 * 7


def test_grid_steps_on_numerical_axes():
    p = Problem()
    p.add_hyperparameter((0.0, 10.0), "x")
    p.add_hyperparameter((1, 100), "k")
    p.add_hyperparameter(["a", "b"], "c")
    s = Space(p.space)
    configs = s.to_dicts(s.grid(3))
    assert sorted({c["x"] for c in configs}) == pytest.approx([0.0, 5.0, 10.0])
    ks = sorted({c["k"] for c in configs})
    assert len(ks) == 3 and ks[0] == 1 and ks[-1] == 100
    assert len(configs) == 3 * 3 * 2
    with pytest.raises(ValueError, match="lower the number of steps"):
        s.grid(100_000)


def test_recombine_stays_valid_and_mixes_coordinates(space):
    rng = np.random.default_rng(3)
    top = space.sample(6, rng)
    C = space.recombine(top, 300, rng)
    assert 0 < len(C) <= 300
    assert_valid(space, C)
    # Categorical coordinates come from the top rows; mixing makes new rows.
    for name in ("act", "flag", "opt", "batch"):
        assert set(col(space, C, name)) <= set(col(space, top, name))
    assert len(set(space.keys(C)) - set(space.keys(top))) > 200


def test_recombine_draws_near_the_values_of_good_points():
    problem = Problem()
    for i in range(4):
        problem.add_hyperparameter((0.0, 1.0), f"x{i}")
    space = Space(problem.space)
    rng = np.random.default_rng(0)
    # Good points agree on x0 (about 0.2) and differ on the rest.
    top = rng.random((8, 4))
    top[:, 0] = 0.2 + 0.01 * rng.normal(size=8)
    C = space.recombine(top, 2000, rng, bandwidth=0.5, floor=0.01)
    assert np.abs(C[:, 0] - 0.2).max() < 0.1
    assert C[:, 1].std() > 0.15
    # Coordinates are drawn independently: x1 and x2 of a candidate come from
    # the same top row about 1/8 of the time, so they are nearly uncorrelated
    # even where the top rows make them perfectly correlated.
    top[:, 2] = top[:, 1]
    C = space.recombine(top, 4000, rng, bandwidth=0.0, floor=1e-6)
    assert abs(np.corrcoef(C[:, 1], C[:, 2])[0, 1]) < 0.3
