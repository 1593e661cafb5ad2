"""The MPI evaluator's queue depth per rank (ambs.evaluator.prefetch): when
``auto`` queues ahead, and the one-line errors for bad settings. The ranks
themselves are exercised under mpiexec in test_mpi.py and test_mpi_faults.py."""

from __future__ import annotations

import pytest

from ambs.errors import AmbsError
from ambs.evaluator.prefetch import MAX_DEPTH, Prefetch, parse_prefetch
from ambs.result import Evaluation


def _ev(job_id: int, started: float, finished: float) -> Evaluation:
    return Evaluation(job_id, {}, started=started, finished=finished)


def _feed(p: Prefetch, duration: float, gap: float, n: int = 8, queued: bool = False) -> None:
    """``n`` results of one rank, each started ``gap`` after the previous ended."""
    t = 0.0
    for i in range(n):
        p.observe(1, _ev(i, t, t + duration), queued=queued)
        t += duration + gap


def test_auto_queues_ahead_when_ranks_would_wait_for_the_master():
    p = Prefetch()
    assert p.depth == 0  # nothing measured yet
    _feed(p, duration=0.001, gap=0.003)  # millisecond evaluations, a 3 ms round trip
    assert p.depth == 3  # as many as fit in one round trip


@pytest.mark.parametrize("duration,gap,depth", [(0.01, 0.0005, 1), (0.001, 0.0015, 2), (0.0, 0.002, MAX_DEPTH),
                                                (1e-5, 0.002, MAX_DEPTH), (0.0005, 0.002, 4)])
def test_auto_depth_covers_one_round_trip(duration, gap, depth):
    p = Prefetch()
    _feed(p, duration=duration, gap=gap)
    assert p.depth == depth


def test_auto_leaves_long_evaluations_alone():
    p = Prefetch()
    _feed(p, duration=1.0, gap=0.003)  # 0.3% of a rank's time waiting
    assert p.depth == 0


def test_queued_jobs_say_nothing_about_the_round_trip_and_longer_evaluations_turn_it_off():
    p = Prefetch()
    _feed(p, duration=0.001, gap=0.003)
    assert p.depth == 3
    # Jobs that waited on their rank start right after the last one ended: no gap learned from them.
    gaps = len(p.gaps)
    _feed(p, duration=0.001, gap=0.0, queued=True)
    assert len(p.gaps) == gaps and p.depth == 3
    # Evaluations grow (a multi-fidelity search's larger budgets): no longer worth it.
    _feed(p, duration=2.0, gap=0.0, n=80, queued=True)
    assert p.depth == 0


def test_fixed_depth_and_unusable_times():
    p = Prefetch(2)
    _feed(p, duration=10.0, gap=0.0)
    assert p.depth == 2
    auto = Prefetch()
    auto.observe(1, Evaluation(0, {}, started=float("nan"), finished=1.0), queued=False)
    assert not auto.durations


@pytest.mark.parametrize("text,depth", [("auto", None), (None, None), ("AUTO", None), ("0", 0), ("1", 1),
                                        (str(MAX_DEPTH), MAX_DEPTH)])
def test_parse(text, depth):
    assert parse_prefetch(text) == depth


@pytest.mark.parametrize("text", ["-1", "x", "1.5", str(MAX_DEPTH + 1)])
def test_parse_refuses_with_one_line(text):
    with pytest.raises(AmbsError, match="--prefetch takes 'auto' or a number") as err:
        parse_prefetch(text)
    assert "\n" not in str(err.value)


def test_auto_leaves_searches_that_learn_without_a_queue():
    """A search whose proposals learn from results (AMBS, evolution, promotions)
    gets no queued jobs from ``auto``: a proposal made before its rank's last
    result was measured worse; random and grid search do get them."""
    from ambs.search import ALL_METHODS

    # Every method says, from the registry: only those that ignore results do not learn.
    assert {m for m, cls in ALL_METHODS.items() if not cls.learns_from_results} == {"random", "grid"}
    auto = Prefetch(learning=True)
    _feed(auto, duration=0.001, gap=0.003)
    assert auto.depth == 0
    forced = Prefetch(1, learning=True)
    assert forced.depth == 1


def test_poll_cap_follows_the_evaluations():
    """An idle side sleeps at most 2% of a typical evaluation between probes, from 0.1 to 2 ms."""
    from ambs.comm import POLL_MAX, POLL_MIN, poll_cap

    assert poll_cap(None) == poll_cap(float("nan")) == POLL_MAX
    assert poll_cap(0.0) == POLL_MIN and poll_cap(60.0) == POLL_MAX
    assert poll_cap(0.05) == pytest.approx(1e-3)
    p = Prefetch()
    assert p.typical is None
    _feed(p, duration=0.01, gap=0.001)
    assert p.typical == pytest.approx(0.01) and poll_cap(p.typical) == pytest.approx(2e-4)
