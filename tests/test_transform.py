"""The loss transforms before a fit (ambs.surrogate.transform)."""

from __future__ import annotations

import numpy as np
import pytest

from ambs.surrogate.transform import TRANSFORMS, transform_targets


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_every_transform_keeps_the_order_and_maps_further_values(kind: str) -> None:
    y = np.array([3.0, 1.0, 2.0, 10.0, 1.5])
    t, f = transform_targets(y, kind)
    assert list(np.argsort(t)) == list(np.argsort(y))
    assert np.allclose(f(y), t)
    assert f(np.array([0.5]))[0] <= t.min()  # beyond the best: at the best end or past it


def test_auto_ranks_distinct_values() -> None:
    y = np.random.default_rng(0).normal(size=40)
    assert np.array_equal(transform_targets(y, "auto")[0], transform_targets(y, "rank")[0])


def test_auto_keeps_magnitudes_on_plateaus() -> None:
    """Accuracies one fold-average apart (a plateau at -0.9888 and its neighbour
    at -0.9887) stay near each other under "auto", as under "log"; the rank
    transform puts a block of 20 ties as far from its neighbour as from anything."""
    y = -np.array([0.9888] * 20 + [0.9887] * 10 + [0.9719] * 6 + [0.3989] * 4)
    auto, _ = transform_targets(y, "auto")
    assert np.array_equal(auto, transform_targets(y, "log")[0])
    rank, _ = transform_targets(y, "rank")

    def gap(t: np.ndarray) -> float:  # the plateaus' gap over the spread of the values
        return float((t[20] - t[0]) / (t.max() - t.min()))

    assert gap(auto) < 0.01
    assert gap(rank) > 0.3
