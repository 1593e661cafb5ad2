"""ambs.acquisition: lcb, ei and pi on the loss scale, where lower scores are better."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from ambs.acquisition import ACQUISITIONS, ei, lcb, pi, score

MU = np.linspace(-2.0, 2.0, 41)
BEST = 0.0


def test_lcb_formula_and_shape():
    sigma = np.full(41, 0.5)
    out = lcb(MU, sigma, kappa=2.0)
    assert out.shape == (41,)
    assert np.allclose(out, MU - 1.0)
    assert np.array_equal(lcb(MU, sigma, kappa=0.0), MU)


@pytest.mark.parametrize("name", ["lcb", "ei", "pi"])
def test_lower_mean_scores_better(name):
    sigma = np.full(41, 0.3)
    s = score(name, MU, sigma, BEST, kappa=1.96, xi=0.01)
    assert s.shape == (41,)
    assert np.all(np.diff(s) >= 0)  # non-decreasing in mu
    assert s[0] < s[-1]


@pytest.mark.parametrize("kappa", [0.5, 1.96, 5.0])
def test_lcb_higher_sigma_scores_better(kappa):
    sigma = np.linspace(0.0, 2.0, 21)
    mu = np.zeros(21)
    assert np.all(np.diff(lcb(mu, sigma, kappa)) < 0)


def test_ei_higher_sigma_scores_better():
    sigma = np.linspace(0.01, 2.0, 50)
    for mu in (-1.0, 0.0, 1.0):
        s = ei(np.full(50, mu), sigma, BEST, xi=0.0)
        assert np.all(np.diff(s) <= 0)  # flat only where the improvement is already certain
        assert s[-1] < s[0]


def test_ei_matches_the_closed_form():
    mu = np.array([-1.0, 0.2, 0.5])
    sigma = np.array([0.5, 1.0, 0.1])
    xi = 0.05
    imp = BEST - xi - mu
    z = imp / sigma
    expected = -(imp * norm.cdf(z) + sigma * norm.pdf(z))
    assert np.allclose(ei(mu, sigma, BEST, xi), expected)
    assert np.all(ei(mu, sigma, BEST, xi) <= 0)


def test_ei_without_uncertainty_is_the_plain_improvement():
    mu = np.array([-1.0, -0.5, 0.5])
    s = ei(mu, np.zeros(3), BEST, xi=0.0)
    assert np.allclose(s, [-1.0, -0.5, 0.0])
    assert np.all(np.isfinite(s))


def test_pi_is_a_negative_probability():
    sigma = np.full(41, 0.4)
    s = pi(MU, sigma, BEST, xi=0.0)
    assert np.all((s >= -1) & (s <= 0))
    assert s[20] == pytest.approx(-0.5)  # mu == best: even odds
    assert np.allclose(s, -norm.cdf((BEST - MU) / 0.4))
    # Without uncertainty: certain improvement or none.
    assert np.array_equal(pi(np.array([-1.0, 1.0]), np.zeros(2), BEST, 0.0), [-1.0, 0.0])


def test_xi_demands_a_larger_improvement():
    mu, sigma = np.array([-0.1]), np.array([0.2])
    assert ei(mu, sigma, BEST, xi=0.5)[0] > ei(mu, sigma, BEST, xi=0.0)[0]
    assert pi(mu, sigma, BEST, xi=0.5)[0] > pi(mu, sigma, BEST, xi=0.0)[0]


def test_score_dispatch():
    mu, sigma = np.array([0.3, -0.2]), np.array([0.1, 0.4])
    assert np.array_equal(score("lcb", mu, sigma, 0.0, 1.5, 0.01), lcb(mu, sigma, 1.5))
    assert np.array_equal(score("ucb", mu, sigma, 0.0, 1.5, 0.01), lcb(mu, sigma, 1.5))
    assert np.array_equal(score("ei", mu, sigma, 0.0, 1.5, 0.01), ei(mu, sigma, 0.0, 0.01))
    assert np.array_equal(score("pi", mu, sigma, 0.0, 1.5, 0.01), pi(mu, sigma, 0.0, 0.01))
    assert set(ACQUISITIONS) == {"lcb", "ucb", "ei", "pi"}
    with pytest.raises(ValueError, match="unknown acquisition 'foo'"):
        score("foo", mu, sigma, 0.0, 1.5, 0.01)
