"""The MPI launcher of a job script, and whether it belongs to mpi4py's MPI.

A launcher from one MPI with an mpi4py built against another starts ranks
that each think they are alone; the job then fails in the queue, hours later.
``ambs submit`` compares the two families at submit time instead: mpi4py's
``MPI.Get_library_version()`` against ``LAUNCHER --version``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from ambs.errors import AmbsError

__all__ = ["LAUNCHERS", "check_launcher", "custom_words", "family", "library_version", "resolve"]

LAUNCHERS = ("srun", "mpiexec", "mpirun", "custom")
_NAMES = {"mpich": "MPICH", "openmpi": "Open MPI", "intel": "Intel MPI", "cray": "Cray MPICH"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def family(text: str) -> str | None:
    """``mpich``, ``openmpi``, ``intel`` or ``cray`` from a library or ``--version`` text, else None."""
    if re.search(r"Intel\(R\) MPI|Intel MPI", text, re.IGNORECASE):
        return "intel"
    if re.search(r"CRAY MPICH", text, re.IGNORECASE):
        return "cray"
    if re.search(r"Open MPI|OpenRTE|Open RTE", text, re.IGNORECASE):
        return "openmpi"
    if re.search(r"HYDRA|MPICH", text, re.IGNORECASE):
        return "mpich"
    return None


def library_version(timeout: float = 30.0) -> str | None:
    """mpi4py's ``MPI.Get_library_version()``, read in a child process (which
    neither initialises MPI nor loads it into this one); None when unknown."""
    code = ("import mpi4py; mpi4py.rc.initialize = False; mpi4py.rc.finalize = False\n"
            "from mpi4py import MPI; print(MPI.Get_library_version())")
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def _launcher_version(path: str, timeout: float = 20.0) -> str | None:
    try:
        res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (res.stdout + res.stderr).strip() or None


def resolve(name: str) -> str | None:
    """The absolute path of ``mpiexec``/``mpirun``: the one beside this Python
    (the virtualenv's, whose MPI mpi4py may come with) first, then PATH's."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    return str(Path(found).absolute()) if found else None


def custom_words(command: str) -> list[str]:
    """``--launcher-command``'s words: one line of shell words, as written."""
    if _CONTROL.search(command):
        raise AmbsError(f"--launcher-command {command!r} holds a control character (a newline, tab, ...), "
                        "which cannot go into a job script")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise AmbsError(f"--launcher-command {command!r}: {exc}") from None
    if not words:
        raise AmbsError("--launcher-command is empty")
    return words


def check_launcher(path: str) -> str | None:
    """Refuse a launcher of another MPI than mpi4py's (one line naming both);
    warn and go on when either cannot be told. Returns mpi4py's MPI family."""
    lib = library_version()
    if lib is None:
        warnings.warn("cannot tell which MPI mpi4py uses (is mpi4py installed?): the launcher "
                      f"{path} is not checked", stacklevel=2)
        return None
    lib_family = family(lib)
    version = _launcher_version(path)
    run_family = family(version) if version else None
    first = lib.splitlines()[0].strip()
    if lib_family is None or run_family is None:
        what = f"mpi4py's MPI ({first})" if lib_family is None else f"the MPI of {path}"
        warnings.warn(f"cannot tell {what}: the launcher is not checked", stacklevel=2)
        return lib_family
    if lib_family != run_family:
        raise AmbsError(
            f"{path} is {_NAMES[run_family]}'s launcher but mpi4py was built with {_NAMES[lib_family]} "
            f"({first}): every rank would run alone; pick the matching one with --launcher, or "
            "--no-launcher-check")
    return lib_family
