"""Stop signals that arrive before the search is ready to handle them.

A scheduler's warning signal (Slurm ``--signal``, a forwarded SIGTERM) can
come while the interpreter is still importing numpy and scikit-learn. Left to
the default action, SIGUSR1 would kill the process and lose the clean stop the
signal asks for. :func:`catch` installs a handler that only records the
signal; it is called first thing by the command line, and the driver takes
what was recorded (:func:`take`) when it installs its own handlers.

Standard library only: importing this must cost nothing.
"""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["catch", "ignore", "take"]

_caught: list[str] = []


def _record(signum: int, _frame: Any) -> None:
    _caught.append(signal.Signals(signum).name)


def catch() -> None:
    """Record SIGTERM and SIGUSR1 from now on, instead of dying of them."""
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        try:
            signal.signal(sig, _record)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass


def take() -> str | None:
    """The name of the first stop signal recorded so far (and forget them), or None."""
    first = _caught[0] if _caught else None
    _caught.clear()
    return first


def ignore() -> None:
    """Ignore SIGTERM and SIGUSR1 from now on: the work is done, the process is exiting.

    At exit the interpreter puts Python-level handlers back to the default
    action, which for these signals is to die: a scheduler's warning that
    lands while MPI shuts down would turn a clean finish into a failed job.
    """
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            pass
