"""The live progress line of a run: an updating line on a terminal, periodic lines in a log."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Live progress: an updating line on a terminal, periodic lines in a log."""

    def __init__(self, max_evals: int, stream: TextIO | None = None, interval: float = 30.0) -> None:
        self.max_evals = max_evals
        self.stream: TextIO | None = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._last_done = -1
        self._width = 0

    def update(self, done: int, best: float, running: int, elapsed: float, rate_n: int, force: bool = False,
               front: int | None = None) -> None:
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last < 0.2:
                return
        else:
            step = max(self.max_evals // 10, 1)
            due = now - self._last >= self.interval or done // step != self._last_done // step
            if done == self._last_done or not (due or force):
                return
        self._last, self._last_done = now, done
        # A rate over less than a second of running says nothing.
        rate_s = f"{rate_n / elapsed * 60:.1f} evals/min" if elapsed >= 1.0 else "- evals/min"
        best_s = f"best {best:.6g}" if math.isfinite(best) else "best -"
        if front is not None:  # several objectives: the size of the Pareto front so far
            best_s = f"front {front}"
        line = (
            f"[{done}/{self.max_evals}] {best_s} | running {running} | "
            f"{rate_s} | {_hms(elapsed)}"
        )
        if self.tty:
            pad = max(self._width - len(line), 0)
            self._write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self._write(line + "\n")

    def close(self) -> None:
        if self.tty and self._width:
            self._write("\n")

    def _write(self, text: str) -> None:
        """Write and flush; a display that went away (``| head``, a closed
        terminal) ends the display, not the search."""
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.stream = None


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
