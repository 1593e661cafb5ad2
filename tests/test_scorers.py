"""The hypervolume-improvement acquisition of several objectives (ambs.search.scorers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambs import AMBS
from ambs.objectives import hypervolume, nondominated
from ambs.problem import load_problem
from ambs.search.scorers import (
    N_SAMPLES,
    front_distance,
    front_dominates,
    hv_improvement,
    reference_point,
)

points2 = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(front=points2, cand=points2)
def test_two_objectives_improvement_is_exact(front, cand) -> None:
    """With two objectives the improvement equals HV(front + point) - HV(front)."""
    F = np.array(front)
    F = F[nondominated(F)]
    C = np.array(cand)
    ref = np.array([1.1, 1.1])
    got = hv_improvement(C, F, ref)
    want = [hypervolume(np.vstack([F, c]), ref) - hypervolume(F, ref) for c in C]
    np.testing.assert_allclose(got, want, atol=1e-12)


points3 = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(front=points3, cand=points3)
def test_three_objectives_improvement_is_exact(front, cand) -> None:
    """With three objectives too the improvement equals HV(front + point) - HV(front),
    for points anywhere (on the front, behind it, past the reference)."""
    F = np.array(front)
    F = F[nondominated(F)]
    C = np.vstack([np.array(cand) * 1.3 - 0.1, F])
    ref = np.full(3, 1.1)
    got = hv_improvement(C, F, ref)
    want = [hypervolume(np.vstack([F, np.minimum(c, ref)]), ref) - hypervolume(F, ref) for c in C]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_four_objectives_improvement_is_estimated_closely() -> None:
    """With four objectives the quasi-random estimate is within 2% of the box of the exact value."""
    rng = np.random.default_rng(0)
    F = rng.random((15, 4))
    F = F[nondominated(F)]
    ref = np.full(4, 1.1)
    lo = F.min(axis=0) - 0.25
    from scipy.stats import qmc

    S = lo + qmc.Sobol(4, scramble=True, seed=1).random(N_SAMPLES) * (ref - lo)
    free = S[~front_dominates(F, S)]
    volume = float(np.prod(ref - lo))
    C = rng.random((20, 4)) * 0.8
    got = hv_improvement(C, F, ref, free, volume)
    want = np.array([hypervolume(np.vstack([F, c]), ref) - hypervolume(F, ref) for c in C])
    assert np.abs(got - want).max() <= 0.02 * volume
    assert np.corrcoef(got, want)[0, 1] > 0.99


def test_front_distance_is_negative_off_the_front_and_positive_behind_it() -> None:
    F = np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])
    d = front_distance(np.array([[0.1, 0.1], [0.6, 0.6], [0.5, 0.5]]), F)
    assert d[0] < 0  # dominates part of the front
    assert d[1] == pytest.approx(0.1)  # 0.1 in both objectives behind (0.5, 0.5)
    assert d[2] == pytest.approx(0.0)  # on it


def test_reference_point_sits_past_the_front_nadir() -> None:
    known = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.9]])
    np.testing.assert_allclose(reference_point(known), [1.1, 1.1])
    known = np.array([[0.2, 0.4], [0.4, 0.2], [1.0, 1.0]])  # the worst result is not on the front
    np.testing.assert_allclose(reference_point(known), [0.42, 0.42])


class _FixedView:
    """A leaf view whose points have fixed means and no spread (what FrontScorer reads)."""

    def __init__(self, mu: np.ndarray) -> None:
        self.mu = np.asarray(mu, dtype=float)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mu, np.zeros_like(self.mu)


@pytest.mark.parametrize("reference", ["worst", "front"])
def test_a_front_squeezed_to_one_end_can_grow_back_out_with_the_worst_reference(reference) -> None:
    """The front found so far covers the first objective from 0 to 0.1 only (the
    results elsewhere are far worse); a candidate that extends it to 0.6 at a
    lower second objective improves the hypervolume past the worst result's
    reference, and nothing inside the box the front's own nadir sets."""
    from ambs.search.scorers import FrontScorer

    known = np.array([[0.0, 0.2], [0.05, 0.15], [0.1, 0.12], [0.7, 1.0], [1.0, 0.8]])
    cand = np.array([[0.6, 0.05], [0.02, 0.3]])  # extends the front; behind it
    views = [_FixedView(cand[:, j]) for j in range(2)]
    scores = FrontScorer(views, known, kappa=0.0, reference=reference).scores()
    assert scores[1] > 0  # dominated: no gain either way
    if reference == "worst":
        assert scores[0] < 0  # a gain
        assert -scores[0] == pytest.approx(hypervolume(np.vstack([known[:3], cand[:1]]), np.full(2, 1.1))
                                           - hypervolume(known[:3], np.full(2, 1.1)))
    else:
        assert scores[0] >= 0  # out of the box: scored as no gain


# The shipped ZDT1 problem (two minimized objectives, six variables).
ZDT1 = load_problem(str(Path(__file__).resolve().parents[1] / "problems" / "zdt1.py"))


@pytest.mark.parametrize("front_model", ["joint", "separate"])
def test_ambs_with_hvi_proposes_distinct_points_toward_the_front(front_model) -> None:
    """Batches of new points, none repeated, pending points believed; after 60
    evaluations the front is better than the initial design's."""
    search = AMBS(ZDT1.problem, random_state=3, front_acquisition="hvi", n_initial_points=10,
                  front_model=front_model)
    seen, losses = set(), []
    while len(losses) < 60:
        batch = search.ask(6)
        assert len(batch) == 6
        keys = {tuple(sorted(c.items())) for c in batch}
        assert len(keys) == 6 and not keys & seen
        seen |= keys
        out = [(c, ZDT1.run(c)) for c in batch]
        search.tell(out)
        losses += [[v["f1"], v["f2"]] for _, v in out]
    L = np.array(losses)
    ref = [1.1, 10.1]
    assert hypervolume(L, ref) > hypervolume(L[:10], ref)
    assert search.n_fits > 0


def test_ambs_with_hvi_under_a_background_fit_folds_recent_results() -> None:
    """A model fitted earlier still proposes after more results came in (the driver's case)."""
    search = AMBS(ZDT1.problem, random_state=1, front_acquisition="hvi", n_initial_points=6)
    search.background_fit = True
    batch = search.ask(6)
    search.tell([(c, ZDT1.run(c)) for c in batch])
    search.fit()
    more = search.ask(4)
    search.tell([(c, ZDT1.run(c)) for c in more[:2]])  # two told since the fit, two pending
    nxt = search.ask(3)
    assert len(nxt) == 3
    assert not {tuple(sorted(c.items())) for c in nxt} & {tuple(sorted(c.items())) for c in batch + more}


def test_unknown_front_acquisition_is_refused() -> None:
    with pytest.raises(ValueError, match="front acquisition"):
        AMBS(ZDT1.problem, front_acquisition="nsga")


@pytest.mark.parametrize("per_target", [False, True])
def test_each_objective_view_passes_through_its_own_results(per_target) -> None:
    """A forest on two targets, joint or one block of trees per target: each
    objective's view reads back that objective at the training points (leaves
    of one result), from its own rows of the leaf lookup."""
    from ambs.surrogate import ForestSurrogate

    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    Y = np.column_stack([X[:, 0], (X[:, 1] - 0.5) ** 2 + X[:, 2]])
    forest = ForestSurrogate(kind="et", n_estimators=8, random_state=0, per_target=per_target).fit(X, Y)
    views = forest.target_views(Y)
    leaves = forest.leaves(X)
    assert leaves.shape[0] == 8 * (2 if per_target else 1)
    for j, (view, rows) in enumerate(views):
        assert view.n_trees == 8
        mu, sd = view.peek(leaves[rows])
        np.testing.assert_allclose(mu, Y[:, j], atol=1e-9)
        np.testing.assert_allclose(sd, 0.0, atol=1e-6)


def test_separate_forests_are_a_setting_of_the_hvi_acquisition_only() -> None:
    """The Chebyshev form reads one forest for any scalarization: it keeps the joint one."""
    from ambs.surrogate import SURROGATES

    def model(**kw):
        search = AMBS(ZDT1.problem, random_state=0, **kw)
        return SURROGATES["et"].build(search.options, search.space, 0)

    assert model().per_target  # the default
    assert not model(front_acquisition="chebyshev").per_target
    assert not model(front_model="joint").per_target
    with pytest.raises(ValueError, match="front model"):
        AMBS(ZDT1.problem, front_model="both")
    with pytest.raises(ValueError, match="front_starts"):
        AMBS(ZDT1.problem, front_starts=-1)
