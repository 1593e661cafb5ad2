"""Surrogate fitting off the dispatch path.

A search that can fit in the background (``search.fits_in_background``, as
:class:`ambs.search.AMBS`) hands out fit tasks (``fit_task``, ``install``); :class:`BackgroundFitter`
runs them in a thread while the driver keeps recording results and handing
out configurations, and installs each fitted model between two dispatches.
A freed worker therefore never waits for a fit: at worst it gets a proposal
from a model a few results old, with those results folded into its leaves.

A fit in a thread still shares Python's interpreter lock with the dispatch
path: measured, an ``ask`` took three times as long while a fit ran beside
it, on a machine with a core to spare. :class:`ProcessFitter` runs the fits
in a process of its own instead (``ambs search --fit process``); the master
then pays for receiving each fitted model (about 12 MB and 16 ms for a forest
of 64 trees on 1,000 results) instead of sharing the lock for the whole fit.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ambs.search.base import Search

__all__ = ["FITS", "BackgroundFitter", "Fitter", "ProcessFitter"]

FITS = ("auto", "background", "process", "sync")  # where a search's fits run (ambs search --fit)


class Fitter(Protocol):
    """What the driver asks of a fitter: poll between dispatches, close at the end."""

    fits: int
    fit_seconds: float

    def poll(self) -> None:
        """Install a finished fit, start the next if results came in."""

    def close(self) -> None:
        """Stop fitting; a running fit is waited for."""


class BackgroundFitter:
    """Runs a search's fits in one background thread, the newest data first.

    Call :meth:`poll` from the driver's loop after results are told: it
    installs a finished fit and starts the next one if results came in since.
    One fit runs at a time; while it runs, newer results wait for the next.

    Args:
        search: a search whose ``fits_in_background`` is true.
    """

    def __init__(self, search: Search) -> None:
        self.search = search
        search.background_fit = True
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ambs-fit")
        self._future: Future | None = None
        self.fits = 0
        self.fit_seconds = 0.0

    def poll(self) -> None:
        """Install a finished fit; start a new one when there is new data."""
        if self._future is not None:
            if not self._future.done():
                return
            task = self._future.result()  # an exception in the fit surfaces here
            self._future = None
            self.search.install(task)
            self.fits += 1
            self.fit_seconds += task.seconds
        task = self.search.fit_task()
        if task is not None:
            self._future = self._pool.submit(task.run)

    def close(self) -> None:
        """Wait for a running fit to end (it cannot be interrupted) and stop the thread."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._future = None


def _child_init() -> None:
    # The master decides when the run stops (a first Ctrl-C or a scheduler's
    # signal lets running evaluations finish); the fitting process waits for it.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)


def _ready() -> bool:
    import ambs.search.ambs  # noqa: F401 - scikit-learn and the surrogates, loaded before the first fit

    return True


def _fit(task: Any) -> Any:
    return task.run()


class ProcessFitter:
    """Runs a search's fits in a child process, one at a time, the newest data first.

    The same contract as :class:`BackgroundFitter`. The child is started
    (spawned: safe under MPI and threads) and loads scikit-learn when the
    fitter is made, so the first fit does not wait for it. Should the child
    die, the fitter says so once on stderr and goes on in a thread.
    """

    def __init__(self, search: Search) -> None:
        self.search = search
        search.background_fit = True
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=1, mp_context=mp.get_context("spawn"), initializer=_child_init)
        self._future: Future | None = self._pool.submit(_ready)
        self._warming = True
        self._thread: BackgroundFitter | None = None
        self.fits = 0
        self.fit_seconds = 0.0

    def poll(self) -> None:
        """Install a finished fit; start a new one when there is new data."""
        if self._thread is not None:
            self._thread.poll()
            self.fits, self.fit_seconds = self._thread.fits, self._thread.fit_seconds
            return
        if self._future is not None:
            if not self._future.done():
                return
            try:
                task = self._future.result()  # an exception in the fit surfaces here
            except BrokenProcessPool:
                self._fall_back()
                return
            self._future = None
            if self._warming:
                self._warming = False
            else:
                self.search.install(task)
                self.fits += 1
                self.fit_seconds += task.seconds
        task = self.search.fit_task()
        if task is not None:
            assert self._pool is not None
            try:
                self._future = self._pool.submit(_fit, task)
            except BrokenProcessPool:
                self._fall_back()

    def _fall_back(self) -> None:
        print("ambs: note: the fitting process died; fits go on in a thread of the search's process",
              file=sys.stderr, flush=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool, self._future = None, None
        self._thread = BackgroundFitter(self.search)
        self._thread.fits, self._thread.fit_seconds = self.fits, self.fit_seconds
        self._thread.poll()

    def close(self) -> None:
        """Wait for a running fit to end and stop the child."""
        if self._thread is not None:
            self._thread.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._future = None, None
