"""A search against simulated workers on a virtual clock.

``ambs simulate`` runs the real search and the real driver, but the
evaluator is :class:`SimulatedEvaluator`: each evaluation takes a duration
drawn from a distribution on a virtual clock, and the objective comes from the
problem's ``run`` (cheap for the test functions), computed off the clock. The
master's own work (recording, telling, asking, submitting) is measured in real
seconds and put on the virtual clock, so a slow master shows as idle workers,
exactly as it would on a machine with that many ranks.

Background fits are simulated as running on a core of their own, as
``--fit process`` runs them (the default here, as under MPI): a fit task runs
at once in a fitting process (:class:`ambs.simfit.SimulatedFitter`; what it
allocates is not the master's memory), its real duration is measured, and
its model is installed once the virtual clock has advanced by that duration; the master's side of sending
the task and receiving the pickled model is measured on its clock. (A fit
in a thread, ``--fit background``, also holds the interpreter lock the
master needs; the simulation does not count that, and
``bench/sim_vs_real.py`` measures what it costs.) With ``--live-fits``
(:class:`ambs.simfit.LiveFitter`) the fits really run in a fitting process
beside the master instead, to check a prediction against this machine.

Measured seconds differ from run to run, and so does the order in which
results reach the search. A :class:`MasterCost` replaces the measurements
with fixed virtual seconds per master step and per fit (``ambs simulate
--master-cost STEP,FIT``): the same seed then gives the same run, row for row,
which is what a benchmark's committed traces need to be reproduced exactly.
A :class:`MasterSpeed` (``--master-cost measured:FACTOR``) keeps the
measurements but counts them ``FACTOR`` times over, fits included: a master
node slower than this machine (a KNL core), or this machine on a slower day.

What it answers: how busy ``W`` workers would be, how many evaluations a
budget buys, and how much master time each result costs, before anyone
spends an allocation on it.
"""

from __future__ import annotations

import heapq
import pickle
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ambs.comm import POLL_MAX, poll_cap
from ambs.evaluator.base import Evaluator
from ambs.evaluator.prefetch import WINDOW
from ambs.result import Evaluation, Job, Status, execute
from ambs.simfit import LiveFitter, SimulatedFitter
from ambs.simreport import RssSampler, SimulationReport, breakdown, report, rss_mb, rss_peak_mb
from ambs.simtime import (
    Duration,
    MasterCost,
    MasterSpeed,
    MessageCost,
    noticed_after,
    parse_duration,
    parse_master_cost,
    parse_message_cost,
)
from ambs.target import RunTarget

__all__ = ["Duration", "MasterCost", "MasterSpeed", "MemoryRecorder", "MessageCost", "RssSampler", "SimulatedEvaluator",
           "SimulatedFitter", "SimulationReport", "VirtualClock", "breakdown", "parse_duration", "parse_master_cost",
           "parse_message_cost", "report", "rss_mb", "rss_peak_mb", "simulate"]


class MemoryRecorder:
    """A recorder that keeps the evaluations in memory, in the order they
    finish: a simulation whose rows are only counted or scored (benchmarks,
    tests) needs no CSV."""

    def __init__(self) -> None:
        self.rows: list[Evaluation] = []

    def append(self, ev: Evaluation) -> None:
        self.rows.append(ev)

    def close(self) -> None:
        pass


class VirtualClock:
    """Virtual seconds, advanced by the simulated evaluations and by the
    master's measured compute time.

    The master's time is the real time between the moments the evaluator
    hands control back (``resume``) and takes it again (``pause``), minus
    whatever was explicitly set aside (a simulated background fit).
    """

    def __init__(self, start: float, cost: MasterCost | MasterSpeed | None = None) -> None:
        self.now = start
        # None: measured; ``scale``: measured seconds count this many times over.
        self.scale = cost.scale if isinstance(cost, MasterSpeed) else 1.0
        self.cost = cost if isinstance(cost, MasterCost) else None
        self._mark = time.perf_counter()
        self._excluded = 0.0
        self.master_seconds = 0.0

    def master_elapsed(self) -> float:
        """Master compute since the last resume, in seconds (0 with a fixed cost,
        which :meth:`pause` charges at once)."""
        if self.cost is not None:
            return 0.0
        return self.scale * max(time.perf_counter() - self._mark - self._excluded, 0.0)

    def time(self) -> float:
        """Virtual now, counting the master's compute so far in this step."""
        return self.now + self.master_elapsed()

    def pause(self) -> None:
        """The master hands over: its compute goes on the clock."""
        spent = self.cost.step if self.cost is not None else self.master_elapsed()
        self.master_seconds += spent
        self.now += spent

    def resume(self) -> None:
        self._mark = time.perf_counter()
        self._excluded = 0.0

    def charge(self, seconds: float) -> None:
        """Put real seconds the master spent while the clock was paused on it."""
        self.master_seconds += self.scale * seconds
        self.now += self.scale * seconds

    def exclude(self, seconds: float) -> None:
        """Take real seconds spent on something that is not the master's (a simulated fit)."""
        self._excluded += seconds


@dataclass(order=True)
class _Running:
    arrive: float  # when the result reaches the master (the finish, plus the message's time)
    worker: int = field(compare=False)
    job: Job = field(compare=False)
    start: float = field(compare=False)
    finish: float = field(compare=False)
    result: bytes = field(compare=False, default=b"")  # the evaluation, pickled, when messages cost time


class SimulatedEvaluator(Evaluator):
    """``workers`` simulated workers on a :class:`VirtualClock`.

    Args:
        target: the problem's run function or module (its result is the
            objective; its real duration is not counted anywhere).
        t0: the run's origin on the virtual clock.
        workers: how many workers.
        duration: the distribution of evaluation times (or its text, see
            :func:`parse_duration`).
        seed: for the durations.
        virtual: the virtual clock (default: a new one starting at ``t0``);
            the driver reads it through :meth:`clock`.
        master_cost: fixed seconds for the master's work on a new clock
            (None: measured); see :class:`MasterCost`.
        message_cost: what each job and each result costs in transit (see
            :class:`MessageCost`): a job starts its latency and size after it
            is handed out, a result reaches the master that much after its
            evaluation ends, and the master pickles jobs and unpickles results
            as its own compute. None: messages are free and instant.
        live_fits: fits really run in a fitting process beside the master
            and the virtual clock waits for them (:class:`LiveFitter`), to
            check the simulator against this machine; otherwise each fit
            is measured and given a core of its own (:class:`SimulatedFitter`).
        idle_sleep: where the virtual master waits for a result, sleep that
            wait in real time, up to this many seconds (0: not at all), so
            that its next step is measured as a real master's is, after an
            idle spell (caches cold, the core's clock down).
        polling: the master and the workers see messages as the MPI
            evaluator's do, at their next probe (:func:`noticed_after`: 20 us
            sleeps doubling up to :func:`ambs.comm.poll_cap` of the typical
            evaluation, 2% of it, 0.1 to 2 ms), not the instant they arrive.
            False: at once, as the process evaluator's pipes wake their reader.
    """

    name = "simulated"
    default_fit = "process"  # what it predicts is an MPI master's run (see ambs.evaluator.mpi)

    def __init__(self, target: RunTarget | str | Callable[..., Any], t0: float, workers: int,
                 duration: Duration | str, seed: int = 0, virtual: VirtualClock | None = None,
                 master_cost: MasterCost | MasterSpeed | str | None = None,
                 message_cost: MessageCost | str | None = None, live_fits: bool = False,
                 idle_sleep: float = 0.0, polling: bool = True) -> None:
        super().__init__(target, t0)
        self.polling = bool(polling)
        self._waiting_since: dict[int, float] = {}  # worker -> when it sent its last result
        self._worker_cap: dict[int, float] = {}  # worker -> its longest sleep between probes
        self._durations: deque[float] = deque(maxlen=WINDOW)  # as the MPI master's typical duration
        self.live_fits = live_fits
        self.idle_sleep = float(idle_sleep)
        if not 0.0 <= self.idle_sleep < float("inf"):
            raise ValueError(f"idle_sleep must be a finite number of seconds >= 0, got {idle_sleep}")
        if isinstance(message_cost, str):
            message_cost = parse_message_cost(message_cost)
        self.message_cost = message_cost
        self.run = self.target.load()
        if isinstance(master_cost, str):
            master_cost = parse_master_cost(master_cost)
        self.virtual = virtual if virtual is not None else VirtualClock(t0, master_cost)
        if isinstance(duration, str):
            duration = parse_duration(duration)
        self.workers = workers
        self.duration = duration
        self.rng = np.random.default_rng([seed, 0x51])
        self._heap: list[_Running] = []
        self._free = list(range(workers, 0, -1))
        self.busy = 0.0  # virtual worker-seconds spent evaluating
        self.intervals: list[tuple[float, float]] = []  # (start, finish) of every evaluation
        self.last_submit = 0.0
        self.pickle_seconds = 0.0  # the master's pickling of jobs (in submit)
        self.worker_seconds = 0.0  # the workers' evaluating and pickling, done in submit off the clock
        self.unpickle_seconds = 0.0  # and unpickling of results (charged in wait)

    @property
    def n_workers(self) -> int:
        return self.workers

    @property
    def n_running(self) -> int:
        return len(self._heap)

    def clock(self) -> float:
        return self.virtual.time()

    def fitter_for(self, search: Any, fit: str = "background") -> SimulatedFitter | LiveFitter:
        if self.live_fits:
            return LiveFitter(search, self.virtual)
        return SimulatedFitter(search, self.virtual, transfer=fit == "process")

    def submit(self, job: Job) -> None:
        now = self.virtual.time()
        worker = self._free.pop()
        d = self.duration.sample(self.rng)
        self.last_submit = now
        m = self.message_cost
        if m is None:
            start = self._picked_up(worker, now)
            heapq.heappush(self._heap, _Running(start + d, worker, job, start, start + d))
            return
        t = time.perf_counter()
        data = pickle.dumps(job)  # on the master's time
        self.pickle_seconds += time.perf_counter() - t
        start = self._picked_up(worker, now + m.seconds(len(data)))
        # The worker's side (its evaluation, pickling the result) is not the master's time.
        t = time.perf_counter()
        result = pickle.dumps(self._evaluate(job, worker, start, start + d))
        spent = time.perf_counter() - t
        self.virtual.exclude(spent)
        self.worker_seconds += spent  # in submit, but not the master's (see breakdown)
        heapq.heappush(self._heap, _Running(start + d + m.seconds(len(result)), worker, job, start, start + d, result))

    def wait(self, timeout: float | None = None) -> list[Evaluation]:
        self.virtual.pause()
        try:
            if not self._heap:
                return []
            # Jump to the next result's arrival, and take every one due by then.
            idle = self._heap[0].arrive - self.virtual.now
            if self.polling and idle > 0:  # seen at the master's next probe
                typical = statistics.median(self._durations) if len(self._durations) >= 3 else None
                idle = noticed_after(idle, poll_cap(typical))
            if self.idle_sleep > 0 and idle > 0:
                time.sleep(min(idle, self.idle_sleep))  # off the clock: paused
            if idle > 0:
                self.virtual.now = max(self.virtual.now + idle, self._heap[0].arrive)
            done, unpickled = [], 0.0
            while self._heap and self._heap[0].arrive <= self.virtual.now:
                r = heapq.heappop(self._heap)
                if r.result:
                    t = time.perf_counter()
                    done.append(pickle.loads(r.result))  # noqa: S301 - bytes this process just made
                    unpickled += time.perf_counter() - t
                else:
                    done.append(self._evaluate(r.job, r.worker, r.start, r.finish))
                self._free.append(r.worker)
                self.busy += r.finish - r.start
                self.intervals.append((r.start, r.finish))
                self._waiting_since[r.worker] = r.finish
                self._worker_cap[r.worker] = poll_cap(r.finish - r.start)
                self._durations.append(r.finish - r.start)
            if unpickled and self.virtual.cost is None:  # (a fixed cost charges the step, not this)
                self.virtual.charge(unpickled)
            self.unpickle_seconds += unpickled
            return done
        finally:
            self.virtual.resume()

    def _picked_up(self, worker: int, arrives: float) -> float:
        """When ``worker`` starts a job that reaches it at ``arrives``: at its next
        probe since it began to wait (its last result, or the run's start)."""
        if not self.polling:
            return arrives
        since = self._waiting_since.get(worker, self.t0)
        return since + noticed_after(arrives - since, self._worker_cap.get(worker, POLL_MAX))

    def _evaluate(self, job: Job, worker: int, start: float, finish: float) -> Evaluation:
        ev = execute(self.run, job, 0.0)
        ev.submitted = job.submitted
        ev.started, ev.finished = start - self.t0, finish - self.t0
        ev.worker, ev.host, ev.local_rank = worker, "simulated", worker - 1
        return ev

    def __enter__(self) -> SimulatedEvaluator:
        self.virtual.resume()  # the master's compute counts from here
        return self

    def close(self) -> None:
        self.virtual.pause()

    def cancel(self) -> list[Evaluation]:
        out = []
        now = self.virtual.time()
        while self._heap:
            r = heapq.heappop(self._heap)
            self._free.append(r.worker)
            self.busy += max(now - r.start, 0.0)
            self.intervals.append((r.start, now))
            out.append(Evaluation(r.job.job_id, r.job.config, status=Status.CANCELLED,
                                  error="search stopped before it finished", submitted=r.job.submitted,
                                  started=r.start - self.t0, finished=now - self.t0,
                                  worker=r.worker, host="simulated", local_rank=r.worker - 1))
        return out


def simulate(search: Any, run: Any, recorder: Any, workers: int, duration: Duration, max_evals: int,
             seed: int = 0, background_fit: bool = True, progress: Any = None,
             walltime: float | None = None, master_cost: MasterCost | MasterSpeed | None = None,
             message_cost: MessageCost | None = None, idle_sleep: float = 0.0,
             polling: bool = True) -> SimulationReport:
    """Run ``search`` against simulated workers until ``max_evals`` results.

    Args:
        search: the search (the same objects ``ambs search`` uses).
        run: the problem's run function.
        recorder: where rows go (the CSV's times are virtual seconds).
        workers: simulated workers.
        duration: evaluation times.
        max_evals: evaluations to simulate.
        seed: for the durations.
        background_fit: fit the surrogate off the dispatch path (as
            ``ambs search`` does), or in ``ask`` (to measure the difference).
        progress: a :class:`ambs.driver.Progress`, or None.
        walltime: stop after this many virtual seconds.
        master_cost: fixed seconds for the master's work (None: measured;
            a :class:`MasterSpeed`: measured, scaled),
            for a run that the same seed repeats exactly.
        message_cost: what jobs and results cost in transit (None: nothing).
        idle_sleep: sleep the master's waits in real time, up to this many
            seconds each (see :class:`SimulatedEvaluator`).
        polling: messages are seen at the next probe of the MPI evaluator's
            backoff, not the instant they arrive (see :class:`SimulatedEvaluator`).
    """
    from ambs.runner import drive

    rss = RssSampler(max_evals)
    evaluator = SimulatedEvaluator(run, 0.0, workers, duration, seed, master_cost=master_cost,
                                   message_cost=message_cost, idle_sleep=idle_sleep, polling=polling)
    with evaluator:
        summary, fitter = drive(search, evaluator, recorder, max_evals=max_evals, t0=0.0, walltime=walltime,
                                grace=0.0, fit="background" if background_fit else "sync", progress=progress,
                                on_result=rss.on_result)
    return report(evaluator, fitter, search, summary, rss)
