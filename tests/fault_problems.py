"""Problem modules that go wrong on purpose, shared by the fault tests of the
process and MPI evaluators, and what each fault must leave in results.csv."""

from __future__ import annotations

import textwrap
from pathlib import Path

# Every way a `run` can go wrong, picked by the `mode` hyperparameter; `rep`
# makes each mode run twice, so a worker that survives a fault is seen to
# take the next job.
FAULTS = """
import ctypes
import math
import os
import sys
import threading
import time

import numpy as np

from ambs import Problem

problem = Problem(name="faults")
problem.add_hyperparameter({modes!r}, "mode")
problem.add_hyperparameter((1, 2), "rep")


class BadFloat:
    def __float__(self):
        raise RuntimeError("no float")


class BadEverything(BadFloat):
    def __repr__(self):
        raise RuntimeError("no repr")

    @property
    def shape(self):
        raise RuntimeError("no shape")


def run(config):
    mode = config["mode"]
    if mode == "raise":
        raise RuntimeError("bad configuration")
    if mode == "huge":
        return 10**400
    if mode == "badfloat":
        return BadFloat()
    if mode == "badeverything":
        return {{"objective": BadEverything()}}
    if mode == "nan":
        return math.nan
    if mode == "inf":
        return -math.inf
    if mode == "none":
        return None
    if mode == "string":
        return "0.5"
    if mode == "list":
        return [1.0, 2.0]
    if mode == "array":
        return np.array([1.0, 2.0])
    if mode == "nokey":
        return {{"accuracy": 0.5}}
    if mode == "unpicklable":
        return {{"objective": 1.0, "lock": threading.Lock()}}
    if mode == "hang":
        time.sleep(600)
    if mode == "abort":
        os.abort()
    if mode == "segfault":
        ctypes.string_at(0)
    if mode == "exit":
        sys.exit(3)
    if mode == "exitnone":
        sys.exit()
    if mode == "killed":  # what the kernel's OOM killer does
        os.kill(os.getpid(), 9)
    if mode == "memory":
        # Far beyond the limit, and never touched: harmless if the limit failed.
        return float(len(bytearray(8 * 1024**3)))
    return float(config["rep"])
"""

# mode -> (status, words the error text must contain).
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "ok": ("ok", []),
    "raise": ("failed", ["RuntimeError: bad configuration"]),
    "huge": ("failed", ["not a finite number (OverflowError"]),
    "badfloat": ("failed", ["not a finite number (RuntimeError: no float)"]),
    "badeverything": ("failed", ["cannot be read (RuntimeError: no shape)"]),
    "nan": ("failed", ["non-finite objective (nan)"]),
    "inf": ("failed", ["non-finite objective (-inf)"]),
    "none": ("failed", ["run returned None, not a number"]),
    "string": ("failed", ["run returned '0.5', not a number"]),
    "list": ("failed", ["run returned [1.0, 2.0], not a number"]),
    "array": ("failed", ["array of shape (2,)"]),
    "nokey": ("failed", ["without an 'objective' key"]),
    "unpicklable": ("failed", ["cannot be sent back to the master"]),
    "hang": ("timeout", ["exceeded the timeout of 2 s"]),
    "abort": ("crashed", ["killed by SIGABRT"]),
    "segfault": ("crashed", ["killed by SIGSEGV"]),
    "exit": ("failed", ["SystemExit: 3", "run called sys.exit"]),
    "exitnone": ("failed", ["SystemExit", "run called sys.exit"]),
    "killed": ("crashed", ["killed by SIGKILL (out of memory?)"]),
    "memory": ("failed", ["MemoryError", "memory limit of 256 MB"]),
}

# Options every fault run uses (the timeout and memory limit EXPECTED names).
FAULT_OPTIONS = ["--method", "grid", "--eval-timeout", "2", "--eval-memory", "256", "--seed", "0"]


def write_faults(directory: Path, modes: list[str] | None = None) -> Path:
    """Write the faults problem module (every mode of EXPECTED by default)."""
    path = Path(directory) / "faults.py"
    path.write_text(FAULTS.format(modes=list(modes or EXPECTED)).lstrip())
    return path


def check_fault_rows(rows: list[dict[str, str]], modes: list[str] | None = None) -> None:
    """Every mode ran twice and left the status and error text it should."""
    modes = list(modes or EXPECTED)
    assert sorted((r["p:mode"], r["p:rep"]) for r in rows) == sorted(
        (m, str(rep)) for m in modes for rep in (1, 2)
    )
    for r in rows:
        status, words = EXPECTED[r["p:mode"]]
        assert r["status"] == status, r
        # One line of error text; with a log, the last lines the evaluation wrote follow it.
        summary, _, tail = r["error"].partition(f"\n--- last lines of {r.get('log') or '-'} ---\n")
        for w in words:
            assert w in summary, r
        if status == "ok":
            assert r["objective"] == str(float(r["p:rep"])) and r["error"] == ""
        else:
            assert r["objective"] == "", r
        assert "\n" not in summary, r
        assert not tail or r.get("log"), r


# A finite space whose `run` writes each configuration it finished to a side
# log, so a test counts how often each was really executed.
LEDGER = """
import time
from pathlib import Path

from ambs import Problem

problem = Problem(name="ledger")
problem.add_hyperparameter(["a", "b", "c"], "cat")
problem.add_hyperparameter((1, 40), "n")
LOG = Path(__file__).with_name("executed.log")


def run(config):
    time.sleep({sleep})
    with open(LOG, "a") as fh:
        fh.write(f"{{config['cat']}},{{config['n']}}\\n")
    return config["n"] / 40 + "abc".index(config["cat"]) / 10
"""


def write_ledger(directory: Path, sleep: float = 0.1) -> Path:
    """Write the ledger problem module (3 x 40 configurations)."""
    path = Path(directory) / "ledger.py"
    path.write_text(textwrap.dedent(LEDGER.format(sleep=sleep)).lstrip())
    return path


# Results with cells far beyond csv's default field limit (131,072 characters):
# an exception message, declared metadata, undeclared metadata.
BIG_FIELDS = """
from ambs import Problem

problem = Problem(name="bigfields")
problem.add_hyperparameter(["raise", "meta", "extra"], "mode")
problem.add_hyperparameter((1, 2), "rep")
problem.add_metadata("blob")


def run(config):
    if config["mode"] == "raise":
        raise RuntimeError("x" * 200_000)
    if config["mode"] == "meta":
        return {"objective": 1.0, "blob": "y" * 200_000}
    return {"objective": 2.0, "other": "z" * 200_000}
"""


def write_module(directory: Path, name: str, source: str) -> Path:
    """Write a problem module ``name``.py with ``source`` into ``directory``."""
    path = Path(directory) / f"{name}.py"
    path.write_text(textwrap.dedent(source).lstrip())
    return path


# Results the master could not write (metadata with tuple or mixed keys, a
# value whose str() raises) or not even read back from a worker (unpickling
# raises). mode -> {evaluator: (status, words the error must contain)}; an ok
# row keeps its objective.
UNWRITABLE = """
from ambs import Problem

problem = Problem(name="unwritable")
problem.add_hyperparameter(["tuplekey", "mixedkeys", "badstr", "unloadable"], "mode")
problem.add_metadata("info")


class BadStr:
    def __str__(self):
        raise RuntimeError("no text")

    __repr__ = __str__


class Unloadable:
    def __reduce__(self):  # pickles; unpickling calls int("x"), which raises
        return (int, ("x",))


def run(config):
    mode = config["mode"]
    if mode == "tuplekey":
        return {"objective": 1.0, "info": {(1, 2): "a"}}
    if mode == "mixedkeys":
        return {"objective": 2.0, "other": {1: "a", "b": 2}}
    if mode == "badstr":
        return {"objective": 3.0, "info": BadStr(), "more": BadStr()}
    return {"objective": 4.0, "other": Unloadable()}
"""

UNWRITABLE_EXPECTED: dict[str, dict[str, tuple[str, list[str]]]] = {
    "tuplekey": {e: ("ok", ["metadata 'info' not written (TypeError"]) for e in ("serial", "process", "mpi")},
    "mixedkeys": {e: ("ok", []) for e in ("serial", "process", "mpi")},
    "badstr": {e: ("ok", ["metadata 'info' not written (RuntimeError: no text)",
                          "metadata 'more' not written"]) for e in ("serial", "process", "mpi")},
    # The serial evaluator never pickles a result. An MPI worker rank reads
    # its evaluation process's result as the process evaluator's master does.
    "unloadable": {"serial": ("ok", []),
                   **{e: ("failed", ["cannot be sent back to the master (ValueError"]) for e in ("process", "mpi")}},
}


# Empty strings (and strings of double quotes) among the choices, and a
# conditional hyperparameter that may be inactive or the empty string:
# 4 x (1 + 2) = 12 configurations.
EMPTY_CHOICES = """
from ambs import Problem

problem = Problem(name="emptychoices")
problem.add_hyperparameter(["", "a", '""', '"'], "s")
problem.add_hyperparameter(["x", "y"], "opt")
problem.add_hyperparameter(["", "b"], "sub")
problem.add_condition("sub", "opt", "y")


def run(config):
    return float(len(config["s"])) + len(config.get("sub", "zz"))
"""


# `run` forks, and the child returns into ambs code as the parent does
# (ambs must end it at once: no second row, no second search).
FORKER = """
import os

from ambs import Problem

problem = Problem(name="forker")
problem.add_hyperparameter((1, 100), "n")


def run(config):
    os.fork()  # parent and child both return: only the parent's result counts
    return float(config["n"])
"""

# `run` starts processes that outlive it unless ambs ends them: a `sleep`
# through Popen, and a forked child that ignores SIGTERM (it execs a
# sleeping Python, which keeps SIG_IGN). Both carry MARK on their command
# line, so a test finds them in /proc/*/cmdline.
SPAWNS = """
import os
import signal
import subprocess
import sys
import time

from ambs import Problem

problem = Problem(name="spawns")
problem.add_hyperparameter((1, 100), "n")
MARK = "{mark}"


def run(config):
    subprocess.Popen(["sleep", "1000", MARK])
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(1000)", MARK])
    time.sleep({sleep})
    return float(config["n"])
"""


def write_spawns(directory: Path, sleep: float = 0.1) -> tuple[Path, str]:
    """Write the spawns problem module; returns it and its marker (a number
    `sleep` takes as a further duration: 0.<digits>)."""
    import random

    mark = "0.000" + "".join(random.choice("123456789") for _ in range(12))
    path = Path(directory) / "spawns.py"
    path.write_text(textwrap.dedent(SPAWNS.format(mark=mark, sleep=sleep)).lstrip())
    return path, mark


def marked_processes(mark: str) -> list[int]:
    """PIDs of the live processes (not zombies) with ``mark`` among their arguments."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if mark.encode() in args and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def rank_pid(cwd: Path, rank: int) -> int | None:
    """The pid of MPI rank ``rank`` of an ambs search running in ``cwd`` (not
    the evaluation processes it started, which share its PMI_RANK)."""
    import os

    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            here = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in environ and b"-m\0ambs\0" in cmdline and Path(here) == cwd:
            return int(entry)
    return None
