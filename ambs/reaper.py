"""Ending the processes an evaluation started, when the evaluation ends.

A ``run`` may start processes (a training in a subprocess, data-loader
workers, ``os.fork``) and return without ending them. ambs ends them:

* Each worker of the process evaluator is, on Linux, a *child subreaper*
  (``prctl(PR_SET_CHILD_SUBREAPER)``): a process an evaluation started that
  loses its parent (a double fork, a daemon) is re-parented to the worker,
  not to PID 1, so it stays among the worker's descendants.
* When an evaluation ends, every descendant that did not exist before it
  started gets SIGTERM, then SIGKILL after :data:`GRACE` seconds (a child
  that ignores SIGTERM, or inherited a handler that ignores it, still ends);
  those that are the worker's own children are reaped. Descendants the
  problem module started while it was loaded (a pool kept across
  evaluations) are kept until the worker exits.
* A worker dies with the master (``PR_SET_PDEATHSIG``): it gets
  :data:`MASTER_GONE` and, in its handler, kills its descendants before it
  exits. The serial evaluator runs evaluations in the master's own process:
  it ends what each evaluation started, but a master killed by SIGKILL
  cannot end anything.

Limits: a descendant is found through /proc (Linux); elsewhere only the
worker's process group is killed, on a timeout or crash. A child that calls
``setsid`` leaves the process group but is still found as a descendant
(through the subreaper, also after its parent exited). A worker stuck in C
code that holds the GIL handles :data:`MASTER_GONE` only when that code
returns.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

__all__ = ["GRACE", "MASTER_GONE", "descendants", "die_with_parent", "end", "end_new", "is_subreaper", "subreaper"]

GRACE = 1.0  # seconds between SIGTERM and SIGKILL
MASTER_GONE = signal.SIGUSR2  # what a worker gets when the master dies
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux (glibc)
        return False


def subreaper(on: bool = True) -> bool:
    """Make this process the reaper of its orphaned descendants (Linux)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, int(on))


def is_subreaper() -> bool:
    """Whether this process is a child subreaper already (Linux; False elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        flag = ctypes.c_int(0)
        return libc.prctl(37, ctypes.byref(flag), 0, 0, 0) == 0 and bool(flag.value)  # PR_GET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies."""
    return _prctl(_PR_SET_PDEATHSIG, int(sig))


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process (zombies left out)."""
    out = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and fields[0] not in (b"Z", b"X"):
            out[int(entry)] = int(fields[1])
    return out


_WALL = 0x40000000  # Linux's __WALL: children whatever signal they end with


def _childless(pid: int) -> bool:
    """``pid`` has no child at all (then, as a subreaper, no descendant); False when unknown.

    For this process one system call answers (``waitid`` without waiting or
    reaping fails with ECHILD only when there is no child, of any thread);
    it runs twice per evaluation, so its cost is on every job's path."""
    if pid == os.getpid() and hasattr(os, "waitid"):
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT | _WALL)
        except ChildProcessError:
            return True
        except OSError:  # a kernel without __WALL for waitid: read /proc as below
            pass
        else:
            return False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        return not any(Path(f"/proc/{pid}/task/{t}/children").read_text().strip() for t in tasks)
    except OSError:
        return False


def descendants(pid: int | None = None) -> set[int]:
    """The live descendants of ``pid`` (this process by default)."""
    root = os.getpid() if pid is None else pid
    if _childless(root):  # the common case, without reading every process of the node
        return set()
    children: dict[int, list[int]] = {}
    for p, pp in _parents().items():
        children.setdefault(pp, []).append(p)
    out: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _reap(pids: set[int]) -> None:
    """Collect those of ``pids`` that are this process's exited children (no
    zombies left); never another child's status (multiprocessing waits for its own)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def end(pids: set[int], grace: float = GRACE) -> None:
    """SIGTERM ``pids``, SIGKILL those left after ``grace`` seconds; reap our children."""
    if not pids:
        return
    _signal(pids, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    deadline = time.monotonic() + grace
    while True:
        _reap(pids)
        alive = pids & set(_parents())
        if not alive:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    _signal(alive, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive and time.monotonic() < deadline:
        _reap(alive)
        alive &= set(_parents())
        if alive:
            time.sleep(0.02)


def end_new(before: set[int], grace: float = GRACE) -> None:
    """End this process's descendants that are not in ``before``, and their own."""
    new = descendants() - before
    if new:
        end(new, grace)
