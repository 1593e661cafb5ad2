"""The master's heap (ambs.heap): large blocks go back to the system when freed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

import ambs.runner
from ambs.runner import run_search

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc",
    reason="ambs fixes the mmap threshold only where Python runs on glibc (GNU/Linux, as on clusters); "
           "with another C library it leaves the heap alone, which "
           "test_another_c_library_is_left_as_it_is checks here")

# Frees a 4 MiB block (glibc then serves blocks up to 4 MiB from the heap),
# allocates 100 blocks of 2 MiB with a small object kept after each, frees the
# blocks, and prints how many MB of them the process still holds.
_HOLES = """
import sys
import numpy as np
if sys.argv[1] == "apart":
    from ambs.heap import keep_large_blocks_apart
    assert keep_large_blocks_apart()
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) // 1024
big = np.ones((4 << 20) // 8)
del big
base = rss()
keep, blocks = [], []
for _ in range(100):
    blocks.append(np.ones((2 << 20) // 8))
    keep.append(bytearray(1000))
del blocks
print(rss() - base)
"""


def _held_mb(mode: str) -> int:
    # glibc's defaults: no allocator settings from this environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _HOLES, mode], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout)


@glibc
def test_freed_large_blocks_leave_the_process_once_their_threshold_is_fixed():
    assert _held_mb("default") >= 150  # glibc's moving threshold keeps the 200 MB freed
    assert _held_mb("apart") <= 20


@pytest.mark.parametrize("name, value", [("MALLOC_MMAP_THRESHOLD_", "65536"),
                                         ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")])
def test_a_threshold_the_environment_sets_is_left_as_it_is(monkeypatch, name, value):
    import ambs.heap

    called = []
    monkeypatch.setattr(ambs.heap.ctypes, "CDLL", lambda *a: called.append(a))
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setenv(name, value)
    assert ambs.heap.keep_large_blocks_apart() is False
    assert called == []


def test_another_c_library_is_left_as_it_is(monkeypatch):
    import ambs.heap

    called = []
    monkeypatch.setattr(ambs.heap.ctypes, "CDLL", lambda *a: called.append(a))
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setattr(ambs.heap.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert ambs.heap.keep_large_blocks_apart() is False
    assert called == []


@pytest.mark.parametrize("evaluator, expected", [("process", 1), ("serial", 0)])
def test_the_master_fixes_it_unless_evaluations_run_in_its_process(tmp_path, monkeypatch, evaluator, expected):
    calls = []
    monkeypatch.setattr(ambs.runner, "keep_large_blocks_apart", lambda: calls.append(1) or True)
    out = run_search("problems.ackley", method="random", evaluator=evaluator, max_evals=4, output=tmp_path / "run",
                     quiet=True, seed=1, workers=2)
    assert len(out.results()) == 4
    assert len(calls) == expected
