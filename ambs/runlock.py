"""One search at a time per run directory: the lock file ``RUN_DIR/run.lock``.

Two searches appending to one ``results.csv`` (a ``--resume`` started while
the run still goes on) would interleave their rows and run evaluations
twice. The first search to open a run directory holds its lock until it
ends; another is refused in one line naming the holder (host, PID, batch
job id, since when).

Why a lock *file* and not ``fcntl``/``flock``: run directories live on
shared parallel file systems, where POSIX and BSD locks are not dependable
(Lustre refuses them unless mounted with ``-o flock``, NFS needs a working
``lockd``, and some GPFS setups are local-only); a lock that silently does
nothing is worse than none. Creating a file with ``O_CREAT | O_EXCL`` is
atomic on NFSv3+, Lustre and GPFS, and the file says who holds the lock.

A lock whose holder is gone is *stale*, and the next search (``--resume``)
takes it over with a one-line warning:

* same host: the holder's PID no longer runs (or is another process now:
  its start time differs), or the host rebooted since (another boot id);
  so ``kill -9`` of the holder frees the lock at once;
* another batch job: the holder's job (Slurm or PBS, from ``squeue``/``qstat``)
  has ended, or it is the same job requeued (Slurm's restart count differs);
  so the next job of a chain starts at once after a job killed hard at its
  walltime or on a failed node;
* another host (the holder's node died, or it is unreachable): the holder
  touches the lock file's modification time every :data:`HEARTBEAT`
  seconds (``AMBS_LOCK_HEARTBEAT``), from a thread, so a long evaluation
  on the serial evaluator does not stop it; a lock whose heartbeat is older
  than :data:`STALE_AFTER` seconds (``AMBS_LOCK_STALE``, 300 by default) is
  stale. Its age is measured on the file server's clock (the mtime of a
  file just written there), so clock skew between nodes does not count.

A holder that was suspended longer than :data:`STALE_AFTER` may lose its
lock to a search on another host; keep the timeout well above such pauses.
A holder notices: before it writes a row (at most every :data:`VERIFY_EVERY`
seconds) and at each heartbeat it checks that the file still names it, and a
holder that lost its lock stops with a one-line error instead of writing on
(:meth:`RunLock.lost`), so two searches never append to one CSV. ``ambs analyze`` only reads
and never takes the lock. Deleting ``run.lock`` by hand frees the directory.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

from ambs.errors import RecorderError, RunDirError

__all__ = ["HEARTBEAT", "LOCK", "STALE_AFTER", "RunLock"]

LOCK = "run.lock"
HEARTBEAT = float(os.environ.get("AMBS_LOCK_HEARTBEAT", 30))
STALE_AFTER = float(os.environ.get("AMBS_LOCK_STALE", 300))
VERIFY_EVERY = min(HEARTBEAT, 5.0)  # seconds between two checks that the lock is still ours
_JOB_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "COBALT_JOBID", "LSB_JOBID", "FLUX_JOB_ID")
# Job states in which the holder may still run: anything else has ended (or
# was requeued, which ends the incarnation that took the lock).
_SLURM_LIVE = {"RUNNING", "SUSPENDED", "CONFIGURING", "STOPPED", "SIGNALING", "RESIZING", "STAGE_OUT"}
_PBS_LIVE = {"R", "S", "U", "B"}


def _batch_job() -> tuple[str | None, str | None]:
    """This process's batch job id and scheduler (``slurm``, ``pbs``...), or Nones."""
    for var in _JOB_VARS:
        if os.environ.get(var):
            return os.environ[var], var.split("_")[0].lower()
    return None, None


def _job_ended(job: str, scheduler: str) -> bool | None:
    """Whether batch job ``job`` has ended, by asking its scheduler (None: cannot tell)."""
    import shutil
    import subprocess

    cmd = {"slurm": ["squeue", "-h", "-j", job, "-o", "%T"], "pbs": ["qstat", "-f", job]}.get(scheduler)
    if cmd is None or shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:  # gone from the queue, or the scheduler cannot be reached
        why = (res.stderr or res.stdout).lower()
        return True if any(w in why for w in ("invalid job id", "unknown job id", "has finished")) else None
    if scheduler == "slurm":
        return not res.stdout.strip() or res.stdout.split()[0] not in _SLURM_LIVE
    states = [ln.split("=", 1)[1].strip() for ln in res.stdout.splitlines()
              if ln.strip().startswith("job_state") and "=" in ln]
    return states[0] not in _PBS_LIVE if states else None


def _start_ticks(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot), None if it does not run (or is a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        try:  # no /proc: whether the PID exists at all
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass
        return ""
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def describe(holder: dict[str, Any]) -> str:
    job = f", job {holder['job']}" if holder.get("job") else ""
    return f"host {holder.get('host')}, PID {holder.get('pid')}{job}, since {holder.get('since')}"


class RunLock:
    """The lock of ``run_dir`` (which must exist): :meth:`acquire`, :meth:`release`."""

    _held: weakref.WeakSet[RunLock] = weakref.WeakSet()
    _beat: threading.Thread | None = None

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / LOCK
        self.me: dict[str, Any] = {}
        self._pid = 0
        self._lost: str | None = None
        self._verified = 0.0

    # ------------------------------------------------------------ taking
    def acquire(self) -> None:
        """Take the lock, taking over a stale one with a warning; RunDirError if held."""
        pid = os.getpid()
        job, scheduler = _batch_job()
        self.me = {"host": socket.gethostname(), "pid": pid, "start": _start_ticks(pid), "boot": _boot_id(),
                   "job": job, "scheduler": scheduler, "restart": os.environ.get("SLURM_RESTART_COUNT"),
                   "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            except OSError as exc:  # a read-only or full file system
                raise RecorderError(f"cannot write {self.path}: {exc.strerror}") from None
            try:
                os.write(fd, (json.dumps(self.me) + "\n").encode())
                os.fsync(fd)
            except OSError as exc:
                self.path.unlink(missing_ok=True)
                raise RecorderError(f"cannot write {self.path}: {exc.strerror}") from None
            finally:
                os.close(fd)
            self._pid = pid
            self._finalizer = weakref.finalize(self, _unlink_if_ours, self.path, self.me)
            RunLock._held.add(self)
            _start_heartbeat()
            return
        raise RunDirError(f"cannot lock {self.dir}: {LOCK} keeps changing hands")

    def _read(self) -> tuple[str, dict[str, Any] | None]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return "", {}
        try:
            holder = json.loads(text)
            return text, holder if isinstance(holder, dict) else None
        except ValueError:
            return text, None

    def _take_over_if_stale(self) -> None:
        text, holder = self._read()
        if holder == {}:  # gone meanwhile
            return
        why = self._stale(holder)
        if why is None:
            if holder is None:  # being written right now
                time.sleep(0.1)
                return
            hint = "" if holder.get("host") == self.me["host"] else (
                f"; a lock not renewed for {STALE_AFTER:g} s, or whose batch job has ended, is taken over")
            raise RunDirError(f"{self.dir} is in use by another search ({describe(holder)}){hint}; "
                              "wait for it to end, or choose another --output")
        # Move it aside (only one taker succeeds), and make sure it was the one judged stale.
        aside = self.dir / f".{LOCK}.{self.me['host']}.{self.me['pid']}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            if aside.read_text() != text:  # another search took it over first: put it back
                try:
                    os.link(aside, self.path)
                except OSError:
                    pass
                return
        finally:
            aside.unlink(missing_ok=True)
        who = describe(holder) if holder else "unreadable"
        warnings.warn(f"{self.dir}: took over the lock of a search that is gone ({who}; {why})", stacklevel=4)

    def _stale(self, holder: dict[str, Any] | None) -> str | None:
        """Why the lock of ``holder`` is stale, or None while it is held."""
        if holder is None:
            return "unreadable lock file" if self._age() > 10 else None
        if holder.get("host") == self.me["host"]:
            if holder.get("boot") and holder.get("boot") != self.me["boot"]:
                return "the host rebooted since"
            try:
                pid = int(holder.get("pid"))
            except (TypeError, ValueError):
                return "no PID"
            if pid == os.getpid() and not any(lk.path == self.path and lk._pid == pid for lk in RunLock._held):
                return "released by this process"
            start = _start_ticks(pid)
            if start is None:
                return f"PID {pid} no longer runs"
            if holder.get("start") and start and start != holder.get("start"):
                return f"PID {pid} is another process now"
            return None
        job, scheduler = holder.get("job"), holder.get("scheduler")
        if job and scheduler:
            if job == self.me["job"] and scheduler == self.me["scheduler"]:
                if holder.get("restart") != self.me["restart"]:
                    return f"its job {job} was requeued since"
            elif _job_ended(str(job), str(scheduler)):
                return f"its job {job} has ended"
        age = self._age()
        if age > STALE_AFTER:
            return f"no heartbeat for {age:.0f} s (timeout {STALE_AFTER:g} s)"
        return None

    def _age(self) -> float:
        """Seconds since the lock file was touched, on the file system's own clock."""
        probe = self.dir / f".{LOCK}.probe.{os.getpid()}"
        try:
            mtime = self.path.stat().st_mtime
            probe.write_bytes(b"")
            now = probe.stat().st_mtime
        except OSError:
            return 0.0
        finally:
            probe.unlink(missing_ok=True)
        return now - mtime

    # ------------------------------------------------------------ holding
    def _still_ours(self) -> bool:
        """Whether the lock file still names this holder (False: another took it
        over, or it was deleted); an unreadable file gives the benefit of the doubt."""
        if self._lost is not None:
            return False
        try:
            holder = json.loads(self.path.read_text())
        except FileNotFoundError:
            self._lost = "nobody (run.lock was deleted)"
            return False
        except (OSError, ValueError):
            return True
        if holder != self.me:
            self._lost = describe(holder) if isinstance(holder, dict) else "another search"
            return False
        return True

    def lost(self, force: bool = False) -> str | None:
        """Who holds the lock now if this holder lost it, else None; checks the
        file at most every VERIFY_EVERY seconds unless ``force``."""
        if self._pid != os.getpid():
            return None
        now = time.monotonic()
        if force or self._lost is not None or now - self._verified >= VERIFY_EVERY:
            self._verified = now
            self._still_ours()
        return self._lost

    def beat(self) -> None:
        """Renew the heartbeat (the lock file's mtime), if the lock is still ours."""
        if self._pid == os.getpid() and self.lost(force=True) is None:
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        """Give the lock back (only the process that took it, only if it still holds it)."""
        if self._pid != os.getpid():
            return
        self._pid = 0
        RunLock._held.discard(self)
        self._finalizer()


def _unlink_if_ours(path: Path, me: dict[str, Any]) -> None:
    if os.getpid() != me.get("pid"):
        return  # a forked child: the lock is its parent's
    try:
        if json.loads(path.read_text()) == me:
            path.unlink()
    except (OSError, ValueError):
        pass


def _start_heartbeat() -> None:
    if RunLock._beat is not None and RunLock._beat.is_alive():
        return

    def beat() -> None:
        while True:
            time.sleep(HEARTBEAT)
            for lock in list(RunLock._held):
                lock.beat()

    RunLock._beat = threading.Thread(target=beat, name="ambs-lock-heartbeat", daemon=True)
    RunLock._beat.start()
