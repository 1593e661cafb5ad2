"""Messages between the MPI master (the search) and its worker ranks.

Every message is a pickled Python object sent with one of these tags. A side
that waits probes for messages and sleeps between probes (MPICH's blocking
receive spins, and would keep a core busy that evaluations could use): the
sleeps double from 20 microseconds up to :func:`poll_cap`, and each wake-up
probes twice (:func:`probe`).
"""

from __future__ import annotations

import enum
import math
from typing import Any

__all__ = ["POLL_MAX", "POLL_MIN", "Tag", "poll_cap", "probe"]

POLL_MIN, POLL_MAX = 1e-4, 2e-3  # the longest sleep between probes: its bounds, in seconds
POLL_SHARE = 0.02  # of a typical evaluation's duration


class Tag(enum.IntEnum):
    INIT = 1  # master -> worker: run settings (problem, t0, timeout, placement options)
    READY = 2  # worker -> master: the worker loaded the problem; its placement
    JOB = 3  # master -> worker: one Job to run
    RESULT = 4  # worker -> master: the Evaluation of the job it ran
    CANCEL = 5  # master -> worker: abandon the running job (no RESULT follows)
    STOP = 6  # master -> worker: leave the loop and exit
    FATAL = 7  # worker -> master: the worker cannot go on (text of the cause)
    REPORT = 8  # worker -> master: (job_id, step, value), one in-training report (ambs.reports)
    HALT = 9  # master -> worker: job_id, that evaluation should stop (relayed to its process)


def poll_cap(duration: float | None) -> float:
    """The longest sleep between two probes when evaluations take ``duration``
    seconds (None: not known yet): 2% of it, from 0.1 to 2 ms. A result or a
    job then waits for its reader at most about 2% of an evaluation (the
    ranks' time lost to it), and a master whose evaluations last seconds
    wakes 500 times a second, not thousands."""
    if duration is None or not math.isfinite(duration):
        return POLL_MAX
    return min(max(POLL_SHARE * duration, POLL_MIN), POLL_MAX)


def probe(comm: Any, source: int, tag: int, status: Any) -> bool:
    """``comm.Iprobe``, once more at once when it finds nothing.

    A message that arrived while this side slept is not always matched by the
    first probe after it: MPICH's probe looks for a match before it moves what
    has arrived into its queues, so only the next probe finds it. Probing once
    per wake-up made a result wait one and a half sleeps on average instead of
    half a sleep (2.8 ms against 0.9 ms with sleeps of 2 ms, between two ranks
    of this machine; ``bench/README.md``); the second probe costs about a
    microsecond."""
    return bool(comm.Iprobe(source=source, tag=tag, status=status)
                or comm.Iprobe(source=source, tag=tag, status=status))
