"""Background fits for the simulator, on its virtual clock.

:class:`SimulatedFitter` (the default) runs each fit at once, measures it and
installs its model once the virtual clock has moved past the fit's start
plus its time: the fit is assumed to have a core of its own, as
``--fit process`` gives it, and nothing it does slows the master.

:class:`LiveFitter` (``ambs simulate --live-fits``) drops that assumption for
checking the simulator against the machine it runs on: the fits really run
in a fitting process beside the simulated master, as in a real run, so that
the master's compute is measured while a fit competes with it for cores,
memory bandwidth and the interpreter lock (the executor's thread that
receives the model). A model is installed when the virtual clock has moved
past the fit's start plus the real seconds the fit took; where the virtual
clock has run ahead of the fit, the simulation waits for it (off the
master's clock). The simulation then goes at the pace of the real fits.
"""

from __future__ import annotations

import math
import pickle
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from ambs.fitter import fitting_process, process_threads, ready, run_fit

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ambs.simulate import VirtualClock

__all__ = ["LiveFitter", "SimulatedFitter"]


_HELD: bytes | None = None  # in a fitting process: the pickled model of its last fit


def fit_and_hold(sent: bytes) -> float:
    """In a fitting process: fit a pickled task and keep the pickled model
    until :func:`take_held`; returns the seconds this took (unpickling the
    task, the fit, pickling the model)."""
    global _HELD
    t = time.perf_counter()
    task = pickle.loads(sent)  # noqa: S301 - bytes the simulating process made for this process
    run_fit(task)
    _HELD = pickle.dumps(task)
    return time.perf_counter() - t


def take_held() -> bytes | None:
    """In a fitting process: hand over the pickled model of the last fit."""
    global _HELD
    held, _HELD = _HELD, None
    return held


class SimulatedFitter:
    """Background fits on a core of their own, on the virtual clock.

    A fit task runs at once (its real time set aside from the master's); its
    model is installed when the virtual clock has moved past its start plus
    that time. One fit at a time, like :class:`ambs.fitter.BackgroundFitter`.

    ``transfer``: the fits run in a process of their own (``--fit process``),
    so the task goes there pickled and the fitted model comes back pickled.
    Here too they run in a fitting process (:func:`ambs.fitter.fitting_process`,
    with the threads that process would have), one at a time while the
    simulation waits, so that what a fit allocates is not counted in the
    master's memory; the model stays there, pickled, until it is due.
    Pickling the task and unpickling the model are the master's compute (in
    the real fitter, its executor's threads do them in the master's
    process), measured and left on its clock; unpickling the task and
    pickling the model are the fitting process's, measured there and added
    to the fit's time. Moving the bytes between the processes is left out
    (in a real run the executor's thread reads them while the master works).
    Should the fitting process die, the fits go on in this process.
    """

    def __init__(self, search: Any, clock: VirtualClock, transfer: bool = False) -> None:
        self.search = search
        self.virtual = clock
        self.transfer = transfer
        search.background_fit = True
        self._pool: ProcessPoolExecutor | None = None
        if transfer:
            t = time.perf_counter()
            self._pool = fitting_process()
            self._pool.submit(ready).result()
            clock.exclude(time.perf_counter() - t)
        self._task: Any = None  # the fitted task (in this process), or True (held by the fitting process)
        self._ready_at = math.inf
        self.fits = 0
        self.fit_seconds = 0.0

    def poll(self) -> None:
        now = self.virtual.time()
        if self._task is not None:
            if now < self._ready_at:
                return
            task, self._task = self._task, None
            if self.transfer:  # the bytes go before the model they hold is installed
                if task is True:
                    task = self._aside(self._call, take_held)
                task = pickle.loads(task)  # noqa: S301 - bytes this process's fitting process made
            self.search.install(task)
            self.fits += 1
        task = self.search.fit_task()
        if task is None:
            return
        if not self.transfer:
            t = time.perf_counter()
            task.run()
            self._start(task, now, time.perf_counter() - t)
            return
        sent = pickle.dumps(task)  # on the master's clock
        if self._pool is not None:
            measured = self._aside(self._call, fit_and_hold, sent)
            if measured is not None:
                self._start(True, now, measured)
                return
        t = time.perf_counter()  # the fitting process died: fit here
        task = pickle.loads(sent)  # noqa: S301 - bytes this process just made
        task.run(threads=process_threads())
        done = pickle.dumps(task)
        self._start(done, now, time.perf_counter() - t)

    def _aside(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` off the master's clock."""
        t = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.virtual.exclude(time.perf_counter() - t)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the fitting process; None if it died."""
        assert self._pool is not None
        try:
            return self._pool.submit(fn, *args).result()
        except BrokenProcessPool:
            print("ambs: note: the simulator's fitting process died; fits go on in the simulating process",
                  file=sys.stderr, flush=True)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return None

    def _start(self, done: Any, now: float, measured: float) -> None:
        """A fit that took ``measured`` real seconds is due that long (or the fixed cost) after ``now``."""
        if done is not True:  # a fit in the fitting process was set aside whole, round trip and all
            self.virtual.exclude(measured)
        spent = measured * self.virtual.scale if self.virtual.cost is None else self.virtual.cost.fit
        self.fit_seconds += spent
        self._task, self._ready_at = done, now + spent

    def close(self) -> None:
        self._task = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class LiveFitter:
    """Fits in a real fitting process beside the simulated master (see the module's text).

    The same contract as :class:`ambs.fitter.ProcessFitter`, whose process
    it uses; the process is started and loaded before the run's clock
    starts. One fit at a time, the newest data first.
    """

    def __init__(self, search: Any, clock: VirtualClock) -> None:
        self.search = search
        self.virtual = clock
        search.background_fit = True
        self._pool = fitting_process()
        self._pool.submit(ready).result()
        self._future: Future | None = None
        self._done = threading.Event()
        self._sent = self._sent_virtual = self._took = 0.0
        self.fits = 0
        self.fit_seconds = 0.0
        self.waited = 0.0  # real seconds the simulation waited for a fit, off the master's clock

    def _finished(self, _future: Future) -> None:  # the executor's thread, as the model arrives
        self._took = time.perf_counter() - self._sent
        self._done.set()

    def _due(self) -> bool:
        """Whether the running fit has ended by virtual now, waiting for it
        where the virtual clock is ahead of the real one."""
        ahead = self.virtual.time() - self._sent_virtual
        if not self._done.is_set():
            behind = ahead - (time.perf_counter() - self._sent)
            if behind <= 0:  # it has run longer than the virtual time since it started
                return False
            t = time.perf_counter()
            self._done.wait(behind)
            waited = time.perf_counter() - t
            self.virtual.exclude(waited)
            self.waited += waited
            if not self._done.is_set():
                return False
        return self._took <= ahead

    def poll(self) -> None:
        """Install a fit that has ended by virtual now; start the next on new data."""
        if self._future is not None:
            if not self._due():
                return
            task = self._future.result()  # an exception in the fit surfaces here
            self._future = None
            self.search.install(task)
            self.fits += 1
            self.fit_seconds += self._took
        task = self.search.fit_task()
        if task is None:
            return
        self._done.clear()
        self._sent, self._sent_virtual = time.perf_counter(), self.virtual.time()
        self._future = self._pool.submit(run_fit, task)
        self._future.add_done_callback(self._finished)

    def close(self) -> None:
        """Stop the fitting process (a running fit is waited for)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._future = None
