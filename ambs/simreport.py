"""What a simulated run reports (:mod:`ambs.simulate`): utilization, the
master's time by phase, and its memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ambs.result import Evaluation

if TYPE_CHECKING:
    from ambs.simulate import SimulatedEvaluator

__all__ = ["RssSampler", "SimulationReport", "breakdown", "report", "rss_mb", "rss_peak_mb"]


@dataclass
class SimulationReport:
    """What ``ambs simulate`` prints."""

    workers: int
    duration: str
    evaluations: int
    utilization: float
    utilization_total: float
    makespan: float
    master_seconds: float
    master_seconds_per_result: float
    best_objective: float
    fits: int
    fit_seconds: float
    stop_reason: str
    rss_mb: dict[int, float]
    rss_peak_mb: float = 0.0  # the most the master held at any moment (transients too)
    master_breakdown: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def rss_mb() -> float:
    """This process's resident memory, in MiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_peak_mb() -> float:
    """This process's peak resident memory so far, in MiB (VmHWM; 0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class RssSampler:
    """The master's resident memory at every tenth of the evaluations."""

    def __init__(self, max_evals: int) -> None:
        self.step = max(max_evals // 10, 1)
        self.n = 0
        self.rss: dict[int, float] = {0: rss_mb()}

    def on_result(self, _ev: Evaluation) -> None:
        self.n += 1
        if self.n % self.step == 0:
            self.rss[self.n] = rss_mb()


def breakdown(phases: dict[str, float], search: Any, master_seconds: float,
              pickled: float = 0.0, unpickled: float = 0.0, off_clock: float = 0.0) -> dict[str, float]:
    """The master's seconds by what it did: writing rows (``record``), telling
    the search, folding results and lies into the surrogate (``fold``, AMBS),
    the rest of proposing (``acquisition``), handing jobs out (``submit``),
    pickling jobs and unpickling results (``messages``), and the loop around
    them (``other``: polling, progress, installing fits)."""
    fold = float(getattr(search, "fold_seconds", 0.0) or getattr(getattr(search, "sampler", None), "fold_seconds", 0.0))
    ask = phases.get("ask", 0.0)
    out = {"record": phases.get("record", 0.0), "tell": phases.get("tell", 0.0), "fold": min(fold, ask),
           "acquisition": max(ask - fold, 0.0), "submit": max(phases.get("submit", 0.0) - pickled - off_clock, 0.0),
           "messages": pickled + unpickled}  # (jobs are pickled in submit; off_clock: the workers' part there)
    out["other"] = max(master_seconds - sum(out.values()), 0.0)
    return out


def report(evaluator: SimulatedEvaluator, fitter: Any, search: Any, summary: Any, rss: RssSampler) -> SimulationReport:
    """Utilization, master time and memory of a finished simulated run."""
    clock, workers, t0 = evaluator.virtual, evaluator.workers, evaluator.t0
    makespan = clock.now - t0
    n = summary.evaluations
    util_total = evaluator.busy / (workers * makespan) if makespan > 0 else 0.0
    # Utilization while there was work to hand out: up to the last dispatch.
    # After it, workers run dry because the budget is spent, not because the
    # master is slow; that drain is in utilization_total.
    horizon = evaluator.last_submit - t0
    if horizon > 0 and evaluator.intervals:
        iv = np.asarray(evaluator.intervals)
        busy = np.clip(np.minimum(iv[:, 1], horizon) - iv[:, 0], 0.0, None).sum()
        util = float(busy / (workers * horizon))
    else:
        util = util_total
    rss.rss[n] = rss_mb()
    return SimulationReport(
        master_breakdown=breakdown(summary.phases, search, clock.master_seconds, evaluator.pickle_seconds,
                                   evaluator.unpickle_seconds, evaluator.worker_seconds),
        workers=workers, duration=str(evaluator.duration), evaluations=n, utilization=util,
        utilization_total=util_total, makespan=makespan,
        master_seconds=clock.master_seconds, master_seconds_per_result=clock.master_seconds / max(n, 1),
        best_objective=summary.best_objective, fits=(fitter.fits if fitter else search.n_fits),
        fit_seconds=(fitter.fit_seconds if fitter else 0.0), stop_reason=summary.stop_reason, rss_mb=rss.rss,
        rss_peak_mb=rss_peak_mb(),
    )
