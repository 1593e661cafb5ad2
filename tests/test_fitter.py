"""Fitting off the dispatch path: the background fitter and the search's fit tasks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ambs import AMBS, Problem
from ambs.fitter import BackgroundFitter, ProcessFitter
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


@pytest.mark.parametrize("share", [0.0, 0.25])
def test_background_fits_wait_for_a_share_of_new_results(share):
    """With the fit in the background, the next fit starts once ``refit_share``
    of the results came after the last one (at least one); in between, the
    new results are folded into the model, and they shape the proposals."""
    search = AMBS(_problem(), random_state=0, n_initial_points=4, refit_share=share)
    search.background_fit = True
    fitted_at = []
    for _ in range(40):
        task = search.fit_task()
        if task is not None:
            search.install(task.run())
            fitted_at.append(search.n_told)
        for c in search.ask(1):
            search.tell([(c, _f(c))])
    gaps = np.diff(fitted_at)
    if share == 0:
        assert list(gaps) == [1] * len(gaps)  # after every result
    else:
        assert all(g == max(1, int(np.ceil(share * n))) for g, n in zip(gaps, fitted_at[1:]))
        assert len(fitted_at) < 15
    # Results told since the last fit count all the same: the best is the newest best.
    view, _, best = search._lied_view(np.empty((0, 2)))
    assert best == pytest.approx(float(search._tf(-max(_f(c) for c in _told(search)))))


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


@pytest.mark.parametrize("kind", [BackgroundFitter, ProcessFitter])
def test_background_fitter_installs_fits_while_asks_go_on(kind):
    # refit_share=0: a fit after every result, so that the last one is on all of them.
    search = AMBS(_problem(), random_state=0, n_initial_points=5, n_estimators=64, refit_share=0)
    fitter = kind(search)
    try:
        _settle(fitter)  # a fitting process has started
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
    if kind is BackgroundFitter:  # (the process variant proposes what this one does: see below)
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


def _settle(fitter) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 60
    while fitter._future is not None and time.monotonic() < deadline:
        time.sleep(0.01)
        fitter.poll()


def test_a_fit_in_a_process_is_the_fit_in_a_thread():
    """The model a fit sends back from its process proposes exactly what the
    same fit made in the search's own process does."""
    proposals = []
    for kind in (BackgroundFitter, ProcessFitter):
        search = AMBS(_problem(), random_state=4, n_initial_points=6)
        fitter = kind(search)
        try:
            _settle(fitter)  # the process fitter's first answer is its start-up (no data: nothing to fit)
            assert fitter.fits == 0
            search.tell([(c, _f(c)) for c in search.ask(6)])
            fitter.poll()
            assert isinstance(fitter, BackgroundFitter) or fitter._bridge is None  # fitted in the process
            _settle(fitter)
            fitter.poll()
        finally:
            fitter.close()
        assert fitter.fits == 1 and search._fitted_on == 6
        proposals.append(search.ask(3))
    assert proposals[0] == proposals[1]


def _slow_start() -> bool:
    time.sleep(4)
    return True


def test_while_the_fitting_process_starts_fits_run_in_a_thread():
    """A fitting process that takes long to start (scikit-learn imported from a
    busy parallel file system) leaves no search without a model: until it is
    ready, fits run in a thread; then the process takes over."""
    search = AMBS(_problem(), random_state=1, n_initial_points=5)
    search.tell([(c, _f(c)) for c in search.ask(5)])
    fitter = ProcessFitter(search, warm=_slow_start)
    try:
        deadline = time.monotonic() + 3
        while fitter.fits == 0 and time.monotonic() < deadline:
            fitter.poll()
            time.sleep(0.01)
        assert fitter.fits == 1 and fitter._warming and search._fitted_on == 5  # the thread's fit
        deadline = time.monotonic() + 60
        while fitter._warming and time.monotonic() < deadline:
            fitter.poll()
            time.sleep(0.01)
        for c in search.ask(2):
            search.tell([(c, _f(c))])
        while search._fitted_on < 7 and time.monotonic() < deadline:
            fitter.poll()
            time.sleep(0.01)
        assert search._fitted_on == 7 and not fitter._warming and fitter._bridge is None  # the process's fit
        assert fitter.fits == 2
    finally:
        fitter.close()


def test_a_dead_fitting_process_falls_back_to_a_thread(capfd):
    """Should the fitting process die (killed, out of memory), the search
    says so once and goes on fitting in a thread."""
    import os
    import signal

    search = AMBS(_problem(), random_state=0, n_initial_points=5)
    search.tell([(c, _f(c)) for c in search.ask(5)])
    fitter = ProcessFitter(search)
    try:
        _settle(fitter)  # started
        for pid in list(fitter._pool._processes):  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        for _ in range(3):
            for c in search.ask(2):
                search.tell([(c, _f(c))])
            fitter.poll()
            _settle(fitter)
            fitter.poll()
            _settle(fitter._thread if fitter._thread is not None else fitter)
    finally:
        fitter.close()
    err = capfd.readouterr().err
    assert err.count("the fitting process died") == 1
    assert fitter._thread is not None and fitter.fits >= 1
    assert search._fitted_on == search.n_told
