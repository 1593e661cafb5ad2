"""The asynchronous loop: gather, record, tell, ask, submit; and the stop rules.

The driver owns the loop and nothing else: the search proposes, the
evaluator runs, the recorder writes. A worker that frees up gets a new
configuration as soon as its result is recorded; nothing waits for a batch.

Every search is asked for (configuration, budget) jobs (``ask_jobs``) and
told the finished evaluations (``tell``); the budget of a multi-fidelity
search (see :mod:`ambs.search.multifidelity`) travels in the :class:`Job` to the worker, which calls
``run(config, budget)``, and comes back on the :class:`Evaluation`. Every
evaluation, a promotion at a larger budget included, counts toward
``max_evals``.

Hardware-aware assignment (``assigner``, ``ambs search --assign shadho``):
when the evaluator's workers are of more than one kind (GPU and CPU ranks),
the driver asks for a few configurations more than there are free workers,
holds them, and lets :class:`ambs.nas.hardware.ShadhoAssigner` decide which
free worker gets which, so that complex configurations go to the capable
workers. Held configurations count toward ``max_evals`` like running ones.

About 430 lines: the dispatch loop and what it waits on (holds, stops,
the walltime) are one concern; the progress line is :mod:`ambs.progress`.
"""

from __future__ import annotations

import gc
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ambs import stopsignals
from ambs.checkpoints import CheckpointStore
from ambs.evaluator.base import Evaluator
from ambs.fitter import Fitter
from ambs.objectives import Front
from ambs.progress import Progress
from ambs.result import Evaluation, Job
from ambs.search.base import Search, config_key

__all__ = ["Assigner", "Driver", "Progress", "RowSink", "RunSummary", "StopRules"]

# Free workers in one dispatch from which the driver asks ahead: it asks for
# twice as many proposals again as it hands out (at most as many as are
# running) and keeps them; the next dispatch hands those out before it asks. On
# thousands of workers an ask takes a good part of a second (every pending
# point's lie folded into a fresh model's leaves, the local search), and the
# workers that free up meanwhile then get work as soon as their results are
# recorded, not after the next ask (16,384 simulated workers with 5-second
# evaluations: 93.7-94.2% busy without, 95.1-96.0% with; bench/README.md).
ASK_AHEAD_FROM = 64

Jobs = list[tuple[dict[str, Any], "float | None"]]


class RowSink(Protocol):
    """Where finished evaluations go (:class:`ambs.recorder.Recorder`, or
    :class:`ambs.simulate.MemoryRecorder`)."""

    def append(self, ev: Evaluation) -> None: ...

    def close(self) -> None: ...


class Assigner(Protocol):
    """Hands held jobs to workers of different kinds (see
    :class:`ambs.nas.hardware.ShadhoAssigner`)."""

    n_held: int

    def tell(self, results: list[tuple[dict[str, Any], float | None]]) -> None: ...

    def active(self, fleet: list[str]) -> bool: ...

    def pool_size(self, fleet: list[str]) -> int: ...

    def hold(self, jobs: Jobs) -> None: ...

    def take(self, free: list[str], fleet: list[str], limit: int) -> list[tuple[dict[str, Any], float | None, str]]: ...

    def release(self, k: int) -> Jobs: ...


@dataclass
class StopRules:
    """When the search stops handing out work; each rule is one small check.

    Args:
        max_evals: finished evaluations of the run (resumed ones included).
        walltime: seconds since this process started the run.
        grace: seconds running evaluations may still finish after a stop
            by walltime or signal, before they are cancelled.
    """

    max_evals: int
    walltime: float | None = None
    grace: float = 30.0
    signalled: str | None = None
    urgent: bool = False  # a second interrupt: cancel running evaluations now

    def max_evals_reached(self, n_done: int) -> bool:
        return n_done >= self.max_evals

    def walltime_reached(self, elapsed: float) -> bool:
        return self.walltime is not None and elapsed >= self.walltime

    def reason(self, n_done: int, elapsed: float) -> str | None:
        if self.signalled:
            return f"signal {self.signalled}"
        if self.walltime_reached(elapsed):
            return "walltime"
        if self.max_evals_reached(n_done):
            return "max-evals"
        return None


@dataclass
class RunSummary:
    """What a run did, for the final report."""

    evaluations: int = 0  # finished in this process
    total: int = 0  # in the CSV, resumed ones included
    by_status: dict[str, int] = field(default_factory=dict)
    best_objective: float = math.nan
    best_config: dict[str, Any] | None = None
    elapsed: float = 0.0
    stop_reason: str = ""
    cancelled: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # the master's seconds by phase (Driver.phase_seconds)


class Driver:
    """Runs a search on an evaluator until a stop rule fires.

    Args:
        search: the ask/tell search.
        evaluator: where evaluations run.
        recorder: where finished evaluations go, one row each.
        rules: the stop rules.
        t0: the origin of the CSV's times as ``time.time()`` (on resume, set
            so that times continue from the previous job's).
        previous: evaluations already in the CSV (resume): told to the
            search, counted toward ``max_evals``, never run again.
        progress: live progress display, or None.
        on_result: called with each finished evaluation (after it is written).
        fitter: fits the search's surrogate off the dispatch path (see
            :mod:`ambs.fitter`); polled after results are told. None: the
            search fits when it is asked, if it needs to.
        clock: the time source, ``time.time`` unless a simulation runs the
            driver on a virtual clock.
        assigner: hands configurations to worker kinds (see
            :class:`ambs.nas.hardware.ShadhoAssigner`); used only while the
            evaluator's workers are of more than one kind. None: the first
            free worker gets the next configuration.
        checkpoints: hands each budgeted job the file its training may
            continue from, and removes the files of configurations that can
            no longer be promoted (see :mod:`ambs.checkpoints`); None: none.
        first_id: the lowest job id to hand out (above any id the run
            directory already used).
        initial: configurations to evaluate before the search proposes any
            (those among ``previous`` are not run again).
        told: what the search is told about an evaluation (a stopped one's
            value from its stop rule, :meth:`ambs.reports.CurveBook.told`);
            None: the evaluation as recorded.
    """

    def __init__(
        self,
        search: Search,
        evaluator: Evaluator,
        recorder: RowSink,
        rules: StopRules,
        t0: float,
        previous: list[Evaluation] | None = None,
        progress: Progress | None = None,
        on_result: Callable[[Evaluation], None] | None = None,
        fitter: Fitter | None = None,
        clock: Callable[[], float] = time.time,
        assigner: Assigner | None = None,
        checkpoints: CheckpointStore | None = None,
        first_id: int = 0,
        initial: list[dict[str, Any]] | None = None,
        told: Callable[[Evaluation], Evaluation] | None = None,
    ) -> None:
        self.search = search
        self.evaluator = evaluator
        self.recorder = recorder
        self.rules = rules
        self.t0 = t0
        self.clock = clock
        self.fitter = fitter
        self.started = clock()  # walltime and rates count from here
        self.progress = progress
        self.on_result = on_result
        self.summary = RunSummary()
        # Where the master's time goes (seconds): writing rows, telling, asking, submitting.
        # (``wait``: in the evaluator's wait, receiving results or idle.)
        self.phase_seconds = {"record": 0.0, "tell": 0.0, "ask": 0.0, "submit": 0.0, "wait": 0.0}
        previous = previous or []
        self.n_done = len(previous)
        # Ids of evaluations that started but never finished (a killed run) are
        # not reused: their reports and logs are on disk under them.
        self.next_id = max(max((e.job_id for e in previous), default=-1) + 1, first_id)
        declared = search.problem.budget
        # The declared objectives travel with every job: the worker reads them from run's dict.
        self.objective_specs = tuple(o.spec() for o in search.problem.objectives) if search.problem.multi_objective else ()
        # For the progress line: the front of each budget; it shows the highest
        # budget's, as the end of the run and ``ambs analyze`` rank that one.
        self.fronts: dict[float, Front] | None = {} if self.objective_specs else None
        # What run(config) trains with (the declared default, else high): recorded as
        # the budget of a job without one (a search's train_budget is its jobs' budget).
        self.full_budget: float | None = float(declared.unbudgeted) if declared is not None else None
        self._budgets: dict[int, float | None] = {}  # job id -> budget, while it runs
        self.assigner = assigner
        self.checkpoints = checkpoints
        self.told = told
        ran = {config_key(e.config) for e in previous}
        self.initial = [c for c in (initial or []) if config_key(c) not in ran]  # evaluated first
        self._ahead: Jobs = []  # jobs asked ahead of need (see ASK_AHEAD_FROM)
        for e in previous:
            self._count(e)
        if previous:
            self._tell(previous)

    # ----------------------------------------------------------- signals
    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}

        def handler(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self.rules.signalled and signum == signal.SIGINT:
                self.rules.urgent = True
            self.rules.signalled = self.rules.signalled or name

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            old[sig] = signal.signal(sig, handler)
        # A scheduler's signal that came while the program was still loading.
        early = stopsignals.take()
        if early:
            self.rules.signalled = self.rules.signalled or early
        return old

    @staticmethod
    def _restore_signals(old: dict[int, Any]) -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    # -------------------------------------------------------------- loop
    def _count(self, ev: Evaluation) -> None:
        s = self.summary
        s.by_status[ev.status.value] = s.by_status.get(ev.status.value, 0) + 1
        if ev.ok and not (ev.objective <= s.best_objective):
            s.best_objective, s.best_config = ev.objective, dict(ev.config)
        if self.fronts is not None and ev.ok and ev.objectives is not None:
            front = self.fronts.setdefault(math.inf if ev.budget is None else float(ev.budget), Front())
            front.add([v if d == "min" else -v for v, (_, d) in zip(ev.objectives, self.objective_specs)])

    def _tell(self, evs: list[Evaluation]) -> None:
        if self.told is not None:
            evs = [self.told(ev) for ev in evs]
        if self.assigner is not None:
            self.assigner.tell([(ev.config, ev.objective if ev.ok else None) for ev in evs])
        self.search.tell(evs)

    def _record(self, evs: list[Evaluation]) -> None:
        t = time.perf_counter()
        for ev in evs:
            # An evaluator's own records (timeout, crash, cancel) do not carry the budget.
            budget = self._budgets.pop(ev.job_id, None)
            if ev.budget is None:
                ev.budget = budget if budget is not None else self.full_budget
            self.recorder.append(ev)
            self.n_done += 1
            self.summary.evaluations += 1
            self._count(ev)
            if self.on_result:
                self.on_result(ev)
        if evs:
            t1 = time.perf_counter()
            self.phase_seconds["record"] += t1 - t
            self._tell(evs)
            self.phase_seconds["tell"] += time.perf_counter() - t1
            if self.checkpoints is not None:
                for ev in evs:
                    self.checkpoints.finished(ev.config, ev.budget)
                self.checkpoints.retire(self.search.retired())

    def elapsed(self) -> float:
        """Seconds since this process started the (possibly resumed) run."""
        return self.clock() - self.started

    def run(self) -> RunSummary:
        """Run until a stop rule fires and every running evaluation is settled."""
        old = self._install_signals()
        # What exists before the loop (the libraries, the problem, the search)
        # lives as long as the run: kept out of the garbage collector's full
        # passes, which otherwise walk it again and again while results stream
        # in (about 2 points of utilization at 16,384 simulated workers).
        frozen = gc.get_freeze_count() == 0  # (not when the caller froze its own)
        if frozen:
            gc.freeze()
        if self.fitter is not None:
            self.fitter.poll()
        stop_at: float | None = None  # when running evaluations get cancelled
        reason: str | None = None
        try:
            while True:
                reason = reason if reason else self.rules.reason(self.n_done, self.elapsed())
                if reason is None:
                    self._dispatch()
                    if self.evaluator.n_running == 0:
                        reason = "space exhausted" if self.search.exhausted else "nothing to run"
                running = self.evaluator.n_running
                if reason is not None:
                    if running == 0:
                        break
                    if reason != "max-evals" and stop_at is None:
                        stop_at = time.monotonic() + self.rules.grace
                    if self.rules.urgent or (stop_at is not None and time.monotonic() >= stop_at):
                        self.summary.cancelled += len(self.evaluator.cancel())
                        break
                timeout = 0.5
                if stop_at is not None:
                    timeout = max(0.0, min(timeout, stop_at - time.monotonic()))
                if self.rules.walltime is not None and reason is None:
                    timeout = max(0.0, min(timeout, self.rules.walltime - self.elapsed()))
                t = time.perf_counter()
                done = self.evaluator.wait(timeout)
                self.phase_seconds["wait"] += time.perf_counter() - t
                self._record(done)
                if self.fitter is not None:
                    self.fitter.poll()
                self._show()
                if reason is None and self.rules.signalled:
                    reason = self.rules.reason(self.n_done, self.elapsed())
        except BaseException:
            # Whatever went wrong, what finished is already on disk; stop workers.
            try:
                self.evaluator.cancel()
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        finally:
            if frozen:
                gc.unfreeze()
            self._restore_signals(old)
            self._show(force=True)
            if self.progress:
                self.progress.close()
        self.summary.stop_reason = reason or ""
        self.summary.total = self.n_done
        self.summary.elapsed = self.elapsed()
        self.summary.phases = dict(self.phase_seconds)
        return self.summary

    def _ask(self, k: int) -> Jobs:
        """``k`` (configuration, budget) jobs from the search (budget None: the full one)."""
        if k <= 0:
            return []
        t = time.perf_counter()
        first, self.initial = self.initial[:k], self.initial[k:]
        self.search.hold(first)
        budget = self.search.train_budget
        jobs = [(c, budget) for c in first] + (list(self.search.ask_jobs(k - len(first))) if k > len(first) else [])
        self.phase_seconds["ask"] += time.perf_counter() - t
        return jobs

    def _dispatch(self) -> None:
        """Give every free worker a configuration, within the evaluation budget."""
        room = self.rules.max_evals - self.n_done - self.evaluator.n_running
        k = min(self.evaluator.n_free, room)
        if k <= 0:
            return
        fleet = self.evaluator.worker_kinds() if self.assigner is not None else []
        if self.assigner is not None and self.assigner.active(fleet):
            # Held jobs are within the room already: ask only for what the pool lacks.
            want = min(max(self.assigner.pool_size(fleet), k), room)
            self.assigner.hold(self._ask(want - self.assigner.n_held))
            self._submit(self.assigner.take(self.evaluator.free_kinds(), fleet, limit=k))
            return
        held = self.assigner.release(k) if self.assigner is not None else []  # kinds became alike
        ready, self._ahead = self._ahead[: k - len(held)], self._ahead[k - len(held):]
        self._submit([(c, b, None) for c, b in held + ready])  # before an ask keeps anyone waiting
        need = k - len(held) - len(ready)
        if need > 0:  # (then nothing asked ahead is left)
            # Asking ahead (see ASK_AHEAD_FROM): 2k more, for the workers that free up next.
            ahead = min(2 * k, room - k, self.evaluator.n_running) if k >= ASK_AHEAD_FROM else 0
            jobs = self._ask(need + ahead)
            self._ahead = jobs[need:]
            self._submit([(c, b, None) for c, b in jobs[:need]])

    def _submit(self, jobs: list[tuple[dict[str, Any], float | None, str | None]]) -> None:
        """Hand ``jobs`` (configuration, budget, worker kind) to the evaluator."""
        if not jobs:
            return
        now = self.clock() - self.t0
        t = time.perf_counter()
        for config, budget, kind in jobs:
            self._budgets[self.next_id] = budget
            path = self.checkpoints.path_for(config, budget) if self.checkpoints is not None else None
            self.evaluator.submit(Job(self.next_id, config, submitted=now, budget=budget, kind=kind, checkpoint=path,
                                      objectives=self.objective_specs))
            self.next_id += 1
        self.phase_seconds["submit"] += time.perf_counter() - t

    def _front_size(self) -> int | None:
        """The size of the front at the highest budget so far (None: one objective)."""
        if self.fronts is None:
            return None
        return len(self.fronts[max(self.fronts)]) if self.fronts else 0

    def _show(self, force: bool = False) -> None:
        if self.progress:
            self.progress.update(
                self.n_done, self.summary.best_objective, self.evaluator.n_running,
                self.elapsed(), self.summary.evaluations, force=force,
                front=self._front_size(),
            )

