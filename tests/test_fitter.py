"""Fitting off the dispatch path: the background fitter and the search's fit tasks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ambs import AMBS, Problem
from ambs.fitter import BackgroundFitter
from ambs.search import RandomSearch


def _problem() -> Problem:
    p = Problem()
    p.add_hyperparameter((-5.0, 5.0), "x")
    p.add_hyperparameter((-5.0, 5.0), "y")
    return p


def _f(c: dict) -> float:
    return -(c["x"] - 1) ** 2 - (c["y"] + 2) ** 2


def test_only_model_based_searches_fit_in_background():
    from ambs.search import ASHA

    assert AMBS(_problem(), random_state=0).fits_in_background
    assert not RandomSearch(_problem(), random_state=0).fits_in_background
    assert RandomSearch(_problem(), random_state=0).fit_task() is None
    budgeted = _problem()
    budgeted.set_budget(1, 9)
    # ASHA fits in the background exactly when its sampler does.
    assert ASHA(budgeted, random_state=0, sampler=AMBS(budgeted, random_state=0)).fits_in_background
    assert not ASHA(budgeted, random_state=0).fits_in_background


def test_ask_does_not_fit_when_a_driver_fits():
    search = AMBS(_problem(), random_state=0, n_initial_points=5)
    for c in search.ask(5):
        search.tell([(c, _f(c))])
    search.ask(1)  # the first model is fitted in ask: there is none to use yet
    assert search.n_fits == 1
    search.background_fit = True
    for _ in range(5):
        (c,) = search.ask(1)
        search.tell([(c, _f(c))])
    assert search.n_fits == 1, "ask fitted although a driver runs the fits"
    # ...and the results told since the fit shape the proposals all the same.
    view, _, best = search._lied_view(np.empty((0, 2)))
    assert best == pytest.approx(float(search._tf(-max(_f(c) for c in _told(search)))))


def _told(search: AMBS) -> list[dict]:
    return search.space.to_dicts(np.asarray(search._X))


def test_fit_task_is_handed_out_once_per_state():
    search = AMBS(_problem(), random_state=0, n_initial_points=4)
    assert search.fit_task() is None  # nothing told
    for c in search.ask(4):
        search.tell([(c, _f(c))])
    task = search.fit_task()
    assert task is not None and task.n_told == 4
    assert search.fit_task() is None  # same data: no second task
    (c,) = search.ask(1)
    search.tell([(c, _f(c))])
    assert search.fit_task() is not None


def test_a_late_old_fit_does_not_replace_a_newer_model():
    search = AMBS(_problem(), random_state=0, n_initial_points=4)
    for c in search.ask(4):
        search.tell([(c, _f(c))])
    old = search.fit_task()
    for c in search.ask(2):
        search.tell([(c, _f(c))])
    new = search.fit_task()
    search.install(new.run())
    search.install(old.run())
    assert search.model is new.model and search._fitted_on == 6


def test_background_fitter_installs_fits_while_asks_go_on():
    search = AMBS(_problem(), random_state=0, n_initial_points=5, n_estimators=64)
    fitter = BackgroundFitter(search)
    try:
        asked = 0
        for _ in range(30):
            for c in search.ask(2):
                search.tell([(c, _f(c))])
                asked += 1
            fitter.poll()
        deadline = time.monotonic() + 30
        while fitter._future is not None and time.monotonic() < deadline:
            time.sleep(0.01)
            fitter.poll()
        fitter.poll()
    finally:
        fitter.close()
    assert asked == 60
    assert fitter.fits >= 2
    # The newest data were fitted once the fitter caught up.
    assert search._fitted_on == search.n_told
    assert search.best()[1] > -2.0  # it is still a working search


def test_refit_lie_mode_spreads_a_batch_like_the_fold_mode():
    """Both forms of constant liar keep a batch from collapsing on one point."""
    for mode in ("fold", "refit"):
        search = AMBS(_problem(), random_state=3, n_initial_points=6, lie_mode=mode, n_estimators=16)
        for c in search.ask(6):
            search.tell([(c, _f(c))])
        batch = search.ask(6)
        pts = np.array([[c["x"], c["y"]] for c in batch])
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))[np.triu_indices(6, 1)]
        assert len({(c["x"], c["y"]) for c in batch}) == 6
        assert d.max() > 0.5, f"{mode}: the batch collapsed on one spot"


def test_unknown_lie_mode_is_refused():
    with pytest.raises(ValueError, match="lie_mode"):
        AMBS(_problem(), lie_mode="guess")
