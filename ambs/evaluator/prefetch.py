"""How many jobs an MPI worker rank holds beyond the one it runs.

A rank that finishes a job waits for its next one: the result travels to the
master, which writes its row, tells the search, proposes, and sends a job
back. With evaluations of seconds that round trip is noise; with evaluations
of milliseconds it is most of a rank's time. A rank that already holds its
next job starts it at once, and the master's turnaround overlaps the work.

What it costs: a queued job was proposed before the rank's last result was
known (one more pending point per rank for a model-based search); and a
master killed with SIGKILL loses the results in flight, up to one more per
queued job. Rows are never batched: each is written and flushed
before the master tells the search or proposes from it, so nothing the CSV
holds is lost, and ``--resume`` proposes again what never arrived.

``auto`` (the default) leaves searches that learn from their results
(AMBS, evolution, the multi-fidelity methods) without a queue: measured, AMBS
with queued jobs found worse configurations even at equal wall time (more
evaluations, each proposed before its rank's last result was known). For
the others (random, grid) it queues jobs while the ranks would otherwise
spend more than :data:`WAIT_SHARE` of their time waiting for the master: the
gap between a result's end and the start of the next job handed to that rank
idle, against the evaluations' durations (medians of the last
:data:`WINDOW`, each measured on its rank's own clock). It queues as many
jobs as fit in one gap (``ceil(gap / duration)``, from 1 to
:data:`MAX_DEPTH`): a rank with evaluations of a millisecond and a master
turnaround of two holds two, so that it works through its queue while the
master catches up. While it is on, the gaps are measured only when a rank's
queue runs dry (the master fell behind); durations keep being measured, so
evaluations that grow long (a multi-fidelity search's larger budgets) turn
it off again.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median

from ambs.errors import AmbsError
from ambs.result import Evaluation

__all__ = ["WAIT_SHARE", "WINDOW", "Prefetch", "parse_prefetch"]

WAIT_SHARE = 0.02  # queue ahead when ranks would wait this share of their time or more
WINDOW = 64  # recent gaps and durations the medians are taken over
MAX_DEPTH = 8


def parse_prefetch(text: str | int | None) -> int | None:
    """``auto`` (None) or a number of jobs queued per rank (0 turns it off)."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return None
    try:
        depth = int(text)
    except (TypeError, ValueError):
        depth = -1
    if not 0 <= depth <= MAX_DEPTH:
        raise AmbsError(f"--prefetch takes 'auto' or a number of jobs from 0 to {MAX_DEPTH}, not {text!r}")
    return depth


class Prefetch:
    """The queue depth per rank: fixed, or (``depth=None``) decided from what the ranks wait."""

    def __init__(self, depth: int | None = None, learning: bool = False) -> None:
        self.fixed = depth
        self.learning = learning  # the search learns from results: auto queues nothing
        self.gaps: deque[float] = deque(maxlen=WINDOW)
        self.durations: deque[float] = deque(maxlen=WINDOW)
        self._last_end: dict[int, float] = {}
        self._auto = 0  # what the rule says, worked out once per result (the master asks per job)
        self.typical: float | None = None  # the median duration, once three are known

    @property
    def depth(self) -> int:
        """Jobs a rank may hold beyond the one it runs, now."""
        if self.fixed is not None:
            return self.fixed
        return 0 if self.learning else self._auto

    def observe(self, rank: int, ev: Evaluation, queued: bool) -> None:
        """Learn from a result of ``rank``; ``queued``: its job waited on the
        rank behind another (its start says nothing about the master's turnaround)."""
        start, end = ev.started, ev.finished
        if not (isinstance(start, float | int) and isinstance(end, float | int)
                and math.isfinite(start) and math.isfinite(end) and end >= start):
            return
        self.durations.append(end - start)
        if len(self.durations) >= 3:
            self.typical = median(self.durations)
        prev = self._last_end.get(rank)
        if prev is not None and not queued:
            self.gaps.append(max(start - prev, 0.0))
        self._last_end[rank] = end
        if len(self.gaps) >= 3 and self.typical is not None:
            gap, busy = median(self.gaps), self.typical
            if gap <= WAIT_SHARE * (gap + busy):
                self._auto = 0
            else:
                self._auto = MAX_DEPTH if gap >= MAX_DEPTH * busy else max(1, math.ceil(gap / busy))
