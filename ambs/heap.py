"""The master's heap: large blocks go back to the system when they are freed.

glibc's malloc serves a block of at least its mmap threshold (128 KiB at
start) from a mapping of its own, returned to the system on free; but each
time such a block is freed it raises the threshold to that block's size (up
to 32 MiB). The master frees large blocks all the time: every fit's model
arrives as a new forest (a megabyte of nodes per tree at 10,000 results),
and every ask of thousands of points builds arrays of candidates and leaves.
After the first of them, blocks of that size come from the main heap, where
the holes they leave between longer-lived objects are kept: with 65,536
points pending and 12,000 results the search held 775 MB, of which Python
and numpy had 212 MB and the forest about 120 MB (381 MB with the threshold
fixed), and ``ambs simulate`` with 65,536 workers peaked at 1.2 GB (1.0).

A fixed threshold (what ``MALLOC_MMAP_THRESHOLD_`` sets, and ``mallopt``
here, for the rest of the master's process) keeps large blocks on their own
mappings. Evaluations do not inherit it: the process evaluator's workers and
the fitting process are spawned, MPI ranks are processes of their own, and
the serial evaluator, which trains in the master's process, is left alone (a
training loop that allocates large tensors would pay a mapping for each).
The simulated evaluator calls ``run`` in the master too, but only to score
its simulated evaluations (test functions, not trainings).
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["MMAP_THRESHOLD", "keep_large_blocks_apart"]

MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large get a mapping of their own
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def keep_large_blocks_apart(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process.

    Returns whether it was set: not with another C library, nor when the
    environment sets a threshold already (``MALLOC_MMAP_THRESHOLD_``, or
    ``glibc.malloc.mmap_threshold`` in ``GLIBC_TUNABLES``: the user's choice).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))
