"""Messages between the MPI master (the search) and its worker ranks.

Every message is a pickled Python object sent with one of these tags.
"""

from __future__ import annotations

import enum

__all__ = ["Tag"]


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
