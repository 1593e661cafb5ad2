"""The floor to compare the MPI evaluator with: mpi4py.futures.MPIPoolExecutor.map
over the same function and ranks. Run as
``mpiexec -n 4 python -m mpi4py.futures bench/pool_floor.py N SLEEP`` (3 workers).
Prints one JSON line: tasks, wall seconds, busy seconds, workers.
"""

from __future__ import annotations

import argparse
import json
import time


def task(sleep: float) -> tuple[float, float]:
    t = time.time()
    if sleep > 0:
        time.sleep(sleep)
    return t, time.time()


def main() -> None:
    ap = argparse.ArgumentParser(description="mpi4py.futures' floor: N tasks that sleep SLEEP seconds")
    ap.add_argument("n", type=int, help="tasks")
    ap.add_argument("sleep", type=float, help="seconds each task sleeps")
    args = ap.parse_args()
    n, sleep = args.n, args.sleep
    from mpi4py.futures import MPIPoolExecutor

    with MPIPoolExecutor() as pool:
        workers = pool.num_workers
        list(pool.map(task, [0.0] * workers * 4))  # start-up and warm-up, not timed
        t0 = time.time()
        spans = list(pool.map(task, [sleep] * n))
        wall = time.time() - t0
    busy = sum(f - s for s, f in spans)
    print(json.dumps({"tasks": n, "wall": wall, "busy": busy, "workers": workers}))


if __name__ == "__main__":
    main()
