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
That process fits with one core fewer than the master may use
(:func:`process_threads`), so that proposals never wait for a core.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ambs.search.base import Search

__all__ = ["FITS", "BackgroundFitter", "Fitter", "ProcessFitter", "fitting_process", "ready", "run_fit"]

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

    @property
    def busy(self) -> bool:
        """Whether a fit is running (or done and not yet installed)."""
        return self._future is not None

    def poll(self, start: bool = True) -> None:
        """Install a finished fit; start a new one when there is new data (and ``start``)."""
        if self._future is not None:
            if not self._future.done():
                return
            task = self._future.result()  # an exception in the fit surfaces here
            self._future = None
            self.search.install(task)
            self.fits += 1
            self.fit_seconds += task.seconds
        if not start:
            return
        task = self.search.fit_task()
        if task is not None:
            self._future = self._pool.submit(task.run)

    def close(self) -> None:
        """Wait for a running fit to end (it cannot be interrupted) and stop the thread."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._future = None


_THREADS: int | None = None  # the fitting process's cap on fit threads, set as it starts


def usable_cores() -> int:
    """The cores this process may run on (the launcher's binding)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def process_threads() -> int:
    """Threads for a fit in a process of its own: the cores this process may
    run on but one, which the master keeps to propose on (1 to 4). On a
    2-core machine a fit with both cores took a quarter of the master's
    time per result (its proposals waited for a core)."""
    return max(1, min(usable_cores() - 1, 4))


def _child_init(threads: int | None = None) -> None:
    global _THREADS
    _THREADS = threads
    # The master decides when the run stops (a first Ctrl-C or a scheduler's
    # signal lets running evaluations finish); the fitting process waits for it.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)


def fitting_process() -> ProcessPoolExecutor:
    """A process of its own for fits, one at a time (spawned: safe under MPI and
    threads), fitting with :func:`process_threads` threads and deaf to the
    signals the master handles."""
    return ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"), initializer=_child_init,
                               initargs=(process_threads(),))


def ready() -> bool:
    """What a fitting process runs first: it loads scikit-learn and the surrogates."""
    import ambs.search.ambs  # noqa: F401 - scikit-learn and the surrogates, loaded before the first fit

    return True


def run_fit(task: Any) -> Any:
    """What a fitting process runs for each task: the fit, with its cap on threads."""
    return task.run(threads=_THREADS)


class ProcessFitter:
    """Runs a search's fits in a child process, one at a time, the newest data first.

    The same contract as :class:`BackgroundFitter`. The child is started
    (spawned: safe under MPI and threads) and loads scikit-learn when the
    fitter is made; until it is ready (a second or two), fits run in a thread
    of the search's process, so that a short search is not left without a
    model. Should the child die, the fitter says so once on stderr and goes
    on in a thread.

    Args:
        search: a search whose ``fits_in_background`` is true.
        warm: what the child runs first (a picklable function; the default
            imports the search and the surrogates).
    """

    def __init__(self, search: Search, warm: Callable[[], Any] | None = None) -> None:
        self.search = search
        search.background_fit = True
        self._pool: ProcessPoolExecutor | None = fitting_process()
        self._future: Future | None = self._pool.submit(warm or ready)
        self._warming = True
        self._bridge: BackgroundFitter | None = None  # fits while the child loads
        self._thread: BackgroundFitter | None = None  # fits after the child died
        self.fits = 0
        self.fit_seconds = 0.0

    def _in_thread(self, thread: BackgroundFitter, start: bool = True) -> None:
        """Poll a thread fitter, counting its fits as this fitter's."""
        fits, seconds = thread.fits, thread.fit_seconds
        thread.poll(start)
        self.fits += thread.fits - fits
        self.fit_seconds += thread.fit_seconds - seconds

    def poll(self) -> None:
        """Install a finished fit; start a new one when there is new data."""
        if self._thread is not None:
            self._in_thread(self._thread)
            return
        if self._warming:
            assert self._future is not None
            if not self._future.done():  # the child is still loading: fit in a thread meanwhile
                self._bridge = self._bridge or BackgroundFitter(self.search)
                self._in_thread(self._bridge)
                return
            try:
                self._future.result()
            except BrokenProcessPool:
                self._fall_back()
                return
            self._future, self._warming = None, False
        if self._bridge is not None:  # the child is ready: hand over once the thread's fit is in
            self._in_thread(self._bridge, start=False)
            if self._bridge.busy:
                return
            self._bridge.close()
            self._bridge = None
        if self._future is not None:
            if not self._future.done():
                return
            try:
                task = self._future.result()  # an exception in the fit surfaces here
            except BrokenProcessPool:
                self._fall_back()
                return
            self._future = None
            self.search.install(task)
            self.fits += 1
            self.fit_seconds += task.seconds
        task = self.search.fit_task()
        if task is not None:
            assert self._pool is not None
            try:
                self._future = self._pool.submit(run_fit, task)
            except BrokenProcessPool:
                self._fall_back()

    def _fall_back(self) -> None:
        print("ambs: note: the fitting process died; fits go on in a thread of the search's process",
              file=sys.stderr, flush=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool, self._future = None, None
        self._thread, self._bridge = self._bridge or BackgroundFitter(self.search), None
        self._in_thread(self._thread)

    def close(self) -> None:
        """Wait for a running fit to end and stop the child."""
        for thread in (self._thread, self._bridge):
            if thread is not None:
                thread.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._future = None, None
