"""Surrogate fitting off the dispatch path.

A search that can fit in the background (``search.fits_in_background``, as
:class:`ambs.search.AMBS`) hands out fit tasks (``fit_task``, ``install``); :class:`BackgroundFitter`
runs them in a thread while the driver keeps recording results and handing
out configurations, and installs each fitted model between two dispatches.
A freed worker therefore never waits for a fit: at worst it gets a proposal
from a model a few results old, with those results folded into its leaves.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ambs.search.base import Search

__all__ = ["BackgroundFitter", "Fitter"]


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
