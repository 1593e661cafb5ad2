"""Per-evaluation logs: each evaluation's stdout and stderr in a file of its own.

Around one evaluation the process that runs it points file descriptors 1
and 2 (and ``sys.stdout``/``sys.stderr``) at ``RUN_DIR/logs/<job id>.log``,
so what ``run`` prints, what the programs it starts print and what C code
writes all land there, and none of it in the search's own output. The
``log`` column of results.csv names the file; a failed evaluation's
``error`` cell ends with the last lines of it (:func:`with_tail`).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LOGS", "TAIL_CHARS", "TAIL_LINES", "captured", "log_name", "tail", "with_tail"]

LOGS = "logs"  # the folder of the run directory that holds the logs
TAIL_LINES = 20  # what a failed evaluation's error cell keeps of its log
TAIL_CHARS = 2000


def log_name(job_id: int) -> str:
    """The file name of job ``job_id``'s log (zero-padded, so they sort by job)."""
    return f"{job_id:06d}.log"


def _flush_all() -> None:
    """Flush Python's streams and C's stdio buffers (printf output not yet written)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


@contextmanager
def captured(path: str | None) -> Iterator[bool]:
    """Send this process's fds 1 and 2 to ``path`` (created or emptied) inside
    the block, and put them back after; yields False, and redirects nothing,
    when there is no path or the file cannot be opened."""
    if not path:
        yield False
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    except OSError:
        yield False
        return
    _flush_all()
    saved = (os.dup(1), os.dup(2))
    streams = sys.stdout, sys.stderr
    # One line-buffered stream for both: their lines stay in the order written.
    stream = open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = stream
        yield True
    finally:
        _flush_all()
        sys.stdout, sys.stderr = streams
        try:
            stream.close()
        except (OSError, ValueError):
            pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def tail(path: str | Path, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last ``lines`` lines of a log, at most ``chars`` characters ("" if none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - 4 * chars, 0))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").rstrip()
    text = "\n".join(text.splitlines()[-lines:])
    return text[-chars:] if len(text) > chars else text


def with_tail(error: str, path: str | None) -> str:
    """``error``, then the last lines of the log at ``path`` under a line that names it."""
    if not path:
        return error
    last = tail(path)
    if not last:
        return error
    name = "/".join(Path(path).parts[-2:])
    return f"{error}\n--- last lines of {name} ---\n{last}"
