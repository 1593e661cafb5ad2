"""Properties that must hold for any space, batch size or history (hypothesis):
encode/decode round trips, no duplicate proposal while unseen ones remain,
and a resumed search proposing what the uninterrupted one would."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambs import Problem
from ambs.recorder import Recorder, RunInfo, columns_for, read_results
from ambs.result import Evaluation, Status
from ambs.search import AMBS, GridSearch, RandomSearch
from ambs.space import Space

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

_finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def integer_hp(draw) -> tuple[Any, dict]:
    low = draw(st.integers(-1000, 1000))
    high = draw(st.integers(low + 1, low + 2000))
    return (low, high), {}


@st.composite
def real_hp(draw) -> tuple[Any, dict]:
    low = draw(_finite)
    width = draw(st.floats(1e-2, 1e4))
    return (low, low + width), {}


@st.composite
def log_real_hp(draw) -> tuple[Any, dict]:
    low = draw(st.floats(1e-8, 1e3))
    factor = draw(st.floats(1.5, 1e6))
    return (low, low * factor, "log-uniform"), {}


_choice = st.one_of(st.text("abcxyz_", min_size=1, max_size=6), st.integers(-50, 50))


@st.composite
def categorical_hp(draw) -> tuple[Any, dict]:
    return draw(st.lists(_choice, min_size=1, max_size=6, unique_by=str)), {}


@st.composite
def ordinal_hp(draw) -> tuple[Any, dict]:
    values = draw(st.lists(st.integers(-100, 100), min_size=2, max_size=6, unique=True))
    return sorted(values), {"ordered": True}


HP_KINDS = {
    "integer": integer_hp(),
    "real": real_hp(),
    "log-real": log_real_hp(),
    "categorical": categorical_hp(),
    "ordinal": ordinal_hp(),
}


@st.composite
def problems(draw, conditional: bool = False) -> Problem:
    """A space of 1 to 4 hyperparameters of any kind; with ``conditional``,
    each may exist only for one value of a categorical parent."""
    p = Problem()
    names = []
    if conditional:
        p.add_hyperparameter(["on", "off", "other"], "parent")
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(HP_KINDS)))
        value, kw = draw(HP_KINDS[kind])
        name = f"{kind}{i}"
        p.add_hyperparameter(value, name, **kw)
        names.append(name)
        if conditional and draw(st.booleans()):
            p.add_condition(name, "parent", draw(st.sampled_from(["on", "off"])))
    return p


def _same_config(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float) or isinstance(w, float):
            if not math.isclose(v, w, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif v != w or type(v) is not type(w):
            return False
    return True


# --------------------------------------------------------- encode/decode round trips


@FAST
@given(problem=problems(), seed=st.integers(0, 2**31))
def test_vectors_and_dicts_round_trip(problem, seed):
    _check_round_trip(problem, seed)


@FAST
@given(problem=problems(conditional=True), seed=st.integers(0, 2**31))
def test_conditional_spaces_round_trip(problem, seed):
    _check_round_trip(problem, seed)


def _check_round_trip(problem: Problem, seed: int) -> None:
    space = Space(problem.space)
    X = space.sample(12, np.random.default_rng(seed))
    assert X.shape == (12, space.dim)
    configs = space.to_dicts(X)
    # Vectors -> dicts -> vectors: the same points, inactive entries NaN.
    back = space.to_vectors(configs)
    assert np.allclose(back, X, equal_nan=True, rtol=1e-9, atol=1e-12)
    assert (np.isnan(back) == np.isnan(X)).all()
    # Dicts -> vectors -> dicts: the same values and types; inactive keys absent.
    again = space.to_dicts(back)
    assert all(_same_config(a, b) for a, b in zip(configs, again))
    for c, x in zip(configs, X):
        assert set(c) == {n for n, v in zip(space.names, x) if not math.isnan(v)}
        for name, value in c.items():
            hp = problem.space[name]
            if hasattr(hp, "choices"):
                assert value in hp.choices
            elif hasattr(hp, "sequence"):
                assert value in hp.sequence
            else:
                assert hp.lower <= value <= hp.upper
                assert isinstance(value, int) == ("Integer" in type(hp).__name__)
    # Encoding: one feature per numerical/ordinal value, a one-hot block per
    # categorical; inactive values are -1 (numerical) or all zeros (one-hot).
    F = space.encode(X)
    assert F.shape == (12, space.n_features) and np.isfinite(F).all()
    col = 0
    for i, hp in enumerate(space.hps):
        active = ~np.isnan(X[:, i])
        if hasattr(hp, "choices"):
            block = F[:, col : col + len(hp.choices)]
            assert set(np.unique(block)) <= {0.0, 1.0}
            assert (block.sum(axis=1) == active).all()
            assert (block[active].argmax(axis=1) == X[active, i]).all()
            col += len(hp.choices)
        else:
            f = F[:, col]
            assert ((f >= 0) & (f <= 1))[active].all() and (f[~active] == -1).all()
            col += 1
    assert col == space.n_features


@FAST
@given(data=st.data())
def test_values_round_trip_through_the_vector_form(data):
    """A value the user could write in a starting point comes back as itself."""
    problem = data.draw(problems())
    space = Space(problem.space)
    config = {}
    for hp in space.hps:
        if hasattr(hp, "choices"):
            config[hp.name] = data.draw(st.sampled_from(list(hp.choices)))
        elif hasattr(hp, "sequence"):
            config[hp.name] = data.draw(st.sampled_from(list(hp.sequence)))
        elif "Integer" in type(hp).__name__:
            config[hp.name] = data.draw(st.integers(int(hp.lower), int(hp.upper)))
        else:
            config[hp.name] = data.draw(st.floats(hp.lower, hp.upper))
    [back] = space.to_dicts(space.to_vectors([config]))
    assert _same_config(config, back), (config, back)


# ------------------------------------------------ no duplicate while unseen remain


@st.composite
def discrete_problems(draw) -> Problem:
    """A finite space of 2 to 36 configurations, maybe with a conditional."""
    p = Problem()
    p.add_hyperparameter(draw(st.lists(st.sampled_from("abcdef"), min_size=2, max_size=4, unique=True)), "cat")
    p.add_hyperparameter((1, draw(st.integers(2, 4))), "n")
    if draw(st.booleans()):
        p.add_hyperparameter([8, 16, 32], "size", ordered=True)
        if draw(st.booleans()):
            p.add_condition("size", "cat", p.space["cat"].choices[0])
    return p


def _all_configs(space: Space) -> set[str]:
    return {repr(sorted(c.items())) for c in space.to_dicts(space.grid(8))}


@SLOW
@given(problem=discrete_problems(), seed=st.integers(0, 1000), data=st.data())
def test_constant_liar_never_proposes_a_duplicate_while_unseen_remain(problem, seed, data):
    search = AMBS(problem, random_state=seed, n_initial_points=2)
    universe = _all_configs(search.space)
    seen: set[str] = set()
    pending: list[dict] = []
    while len(seen) < len(universe):
        k = data.draw(st.integers(1, 5), label="batch size")
        batch = search.ask(k)
        keys = [repr(sorted(c.items())) for c in batch]
        assert len(batch) == min(k, len(universe) - len(seen)), "fewer proposals than unseen configurations"
        assert len(set(keys)) == len(keys) and not set(keys) & seen, "a configuration was proposed twice"
        assert set(keys) <= universe
        seen.update(keys)
        pending += batch
        # Tell some of the running ones (a random subset, in random order), some as failures.
        told = data.draw(st.lists(st.sampled_from(range(len(pending))), unique=True), label="told")
        results = [(pending[i], None if (i + seed) % 5 == 0 else float(sum(map(ord, repr(pending[i])))))
                   for i in told]
        search.tell(results)
        pending = [c for i, c in enumerate(pending) if i not in told]
    assert search.ask(3) == [] and search.exhausted


# ------------------------------------------------- resume proposes what a run would


def _objective(config: dict) -> float | None:
    """A deterministic objective that sometimes fails."""
    h = sum(ord(ch) for ch in repr(sorted(config.items())))
    return None if h % 7 == 0 else -((h % 97) / 97.0)


METHODS = {
    "random": lambda p, s: RandomSearch(p, random_state=s),
    "grid": lambda p, s: GridSearch(p, random_state=s, steps=4),
    "ambs": lambda p, s: AMBS(p, random_state=s, n_initial_points=6),
}


@pytest.mark.parametrize("method", sorted(METHODS))
@SLOW
@given(problem=problems(conditional=True), seed=st.integers(0, 1000), data=st.data())
def test_resumed_search_proposes_what_the_uninterrupted_one_would(method, problem, seed, data, tmp_path_factory):
    """The same seed and the same results, read back from the CSV as on
    ``--resume``, give the same next proposals as the search that never stopped."""
    make = METHODS[method]
    run = make(problem, seed)
    told: list[tuple[dict, float | None]] = []
    for _ in range(data.draw(st.integers(1, 4), label="rounds")):
        batch = run.ask(data.draw(st.integers(1, 4), label="batch"))
        order = data.draw(st.permutations(range(len(batch))), label="finish order")
        results = [(batch[i], _objective(batch[i])) for i in order]
        run.tell(results)
        told += results
    k = data.draw(st.integers(1, 4), label="next batch")
    # The results go through the CSV and back, as a resumed run reads them.
    out = tmp_path_factory.mktemp("resume")
    info = RunInfo(problem="p.py", problem_name="p", fingerprint=problem.fingerprint(), method=method,
                   columns=columns_for(problem.hyperparameter_names, problem.metadata))
    rec = Recorder(out, info)
    for i, (c, y) in enumerate(told):
        rec.append(Evaluation(i, c, objective=math.nan if y is None else y,
                              status=Status.OK if y is not None else Status.FAILED))
    rec.close()
    previous = read_results(out / "results.csv", Space(problem.space))
    resumed = make(problem, seed)
    resumed.tell([(e.config, e.objective if e.ok else None) for e in previous])
    expected = run.ask(k)
    got = resumed.ask(k)
    assert len(got) == len(expected)
    assert all(_same_config(a, b) for a, b in zip(expected, got)), (expected, got)
    assert not any(_same_config(a, b) for a in got for b, _ in told), "a told configuration was proposed again"


def test_resume_recognizes_small_log_scale_values(tmp_path):
    """ConfigSpace rounds float values to 10 decimals; a weight decay of 1e-7
    read back from the CSV must still be the configuration that was proposed."""
    p = Problem()
    p.add_hyperparameter((1e-9, 1e-3, "log-uniform"), "wd")
    p.add_hyperparameter((0.0, 1.0), "x")
    first = AMBS(p, random_state=1, n_initial_points=10).ask(4)
    resumed = AMBS(p, random_state=1, n_initial_points=10)
    resumed.tell([(c, 0.5) for c in first])
    again = resumed.ask(4)
    assert not any(_same_config(a, b) for a in again for b in first)
    space = Space(p.space)
    assert np.array_equal(space.to_vectors(first), space.to_vectors(space.to_dicts(space.to_vectors(first))))
