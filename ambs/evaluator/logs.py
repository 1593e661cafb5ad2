"""Per-evaluation logs: each evaluation's stdout and stderr in a file of its own.

Around one evaluation the process that runs it points file descriptors 1
and 2 (and ``sys.stdout``/``sys.stderr``) at ``RUN_DIR/logs/<job id>.log``,
so what ``run`` prints, what the programs it starts print and what C code
writes all land there, and none of it in the search's own output. The
``log`` column of results.csv names the file; a failed evaluation's
``error`` cell ends with the last lines of it (:func:`with_tail`). An
evaluation that printed nothing keeps no file and an empty ``log`` cell
(its file exists while it runs, and is renamed for the next evaluation).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["LOGS", "TAIL_CHARS", "TAIL_LINES", "Capture", "captured", "log_name", "release", "tail", "with_tail"]

LOGS = "logs"  # the folder of the run directory that holds the logs
TAIL_LINES = 20  # what a failed evaluation's error cell keeps of its log
TAIL_CHARS = 2000


def log_name(job_id: int) -> str:
    """The file name of job ``job_id``'s log (zero-padded, so they sort by job)."""
    return f"{job_id:06d}.log"


_c_fflush: Any = None  # C's fflush, looked up once (a lookup opens the C library)
_made: set[str] = set()  # log folders known to exist
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _flush_all() -> None:
    """Flush Python's streams and C's stdio buffers (printf output not yet written)."""
    global _c_fflush
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:
        if _c_fflush is None:
            _c_fflush = ctypes.CDLL(None).fflush
        _c_fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


def _open_log(path: str) -> int:
    """A descriptor of ``path``, created or emptied, its folder made the first time."""
    folder = os.path.dirname(path) or "."
    if folder in _made:
        try:
            return os.open(path, _LOG_FLAGS, 0o644)
        except FileNotFoundError:  # the folder was removed meanwhile
            pass
    Path(folder).mkdir(parents=True, exist_ok=True)
    _made.add(folder)
    return os.open(path, _LOG_FLAGS, 0o644)


class _Kept:
    """The log file of the last evaluation if it printed nothing: still open,
    so that the next evaluation of this process takes it under its own name
    by a rename instead of creating a file. Measured under ``mpiexec`` with
    0 s evaluations, a creation on this project's ext4 disks cost 20 to 500
    microseconds of CPU, most of an evaluation process's time per job."""

    fd: int = -1
    path: str = ""

    @classmethod
    def take(cls, path: str) -> int:
        """A descriptor of ``path``, empty: the kept file renamed, or a new one."""
        if cls.fd >= 0:
            fd, old, cls.fd, cls.path = cls.fd, cls.path, -1, ""
            try:
                if os.fstat(fd).st_size == 0 and os.path.dirname(old) == os.path.dirname(path):
                    os.rename(old, path)
                    return fd
            except OSError:
                pass
            os.close(fd)
        return _open_log(path)

    @classmethod
    def keep(cls, fd: int, path: str) -> bool:
        """Keep ``fd`` for the next evaluation if its file is empty; True when kept."""
        try:
            empty = os.fstat(fd).st_size == 0
        except OSError:
            empty = False
        if empty:
            cls.fd, cls.path = fd, path
        return empty


def release() -> None:
    """Remove the empty log file this process keeps for its next evaluation
    (call it when the process runs no more evaluations)."""
    if _Kept.fd >= 0:
        fd, path, _Kept.fd, _Kept.path = _Kept.fd, _Kept.path, -1, ""
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass


class Capture:
    """What :func:`captured` yields: true when the output goes to the file;
    after the block, ``empty`` says the evaluation printed nothing, and so
    keeps no log (its ``log`` cell stays empty)."""

    def __init__(self, path: str | None = None) -> None:
        self.path, self.empty = path, False

    def __bool__(self) -> bool:
        return self.path is not None

    def name_in(self, ev: Any) -> None:
        """Name the kept log in ``ev``'s row, and end a failure's error with
        the log's last lines (nothing when no log was kept)."""
        if self.path is None or self.empty:
            return
        ev.log = self.path
        if not ev.ok:
            ev.error = with_tail(ev.error, self.path)


@contextmanager
def captured(path: str | None) -> Iterator[Capture]:
    """Send this process's fds 1 and 2 to ``path`` (created or emptied) inside
    the block, and put them back after; redirects nothing, and yields a false
    :class:`Capture`, when there is no path or the file cannot be opened.

    It runs around every evaluation, so it costs a few system calls: no
    folder check once the folder is known, C's ``fflush`` looked up once,
    and a file that stays empty is not removed but taken, renamed, by the
    next evaluation of the process (:class:`_Kept`, :func:`release`)."""
    if not path:
        yield Capture()
        return
    try:
        fd = _Kept.take(path)
    except OSError:
        yield Capture()
        return
    _flush_all()
    saved = (os.dup(1), os.dup(2))
    streams = sys.stdout, sys.stderr
    # One line-buffered stream for both: their lines stay in the order written.
    stream = open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    capture = Capture(path)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = stream
        yield capture
    finally:
        _flush_all()
        sys.stdout, sys.stderr = streams
        try:
            stream.close()
        except (OSError, ValueError):
            pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in saved:
            os.close(f)
        capture.empty = _Kept.keep(fd, path)
        if not capture.empty:
            os.close(fd)


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
