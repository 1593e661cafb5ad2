"""MPI evaluator throughput and worker utilization against mpi4py.futures.

For each evaluation time (0 s, 0.1 s, 1 s) it runs, under ``mpiexec -n 4``
(one master, three workers):

* ``ambs search bench/sleep_problem.py --evaluator mpi`` (random search, and
  AMBS), timing from the first submission to the last finish in results.csv;
* ``MPIPoolExecutor.map`` of the same sleep over the same ranks (the floor).

Utilization is busy time / (workers x wall time). Usage:
``python bench/mpi_throughput.py [--evals N] [--methods random,ambs]``.
By default 0 s evaluations run 6,000 times (a run of 600 lasts a tenth of a
second, which this shared machine's noise swamps), 600 for AMBS, whose
master refits its model as results arrive (about 50 results/s here).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIEXEC = str(BIN / "mpiexec")


def ambs_run(method: str, sleep: float, n: int, workdir: Path, prefetch: str = "auto") -> dict[str, float]:
    out = workdir / f"{method}-{sleep}"
    env = dict(os.environ, AMBS_BENCH_SLEEP=str(sleep))
    cmd = [MPIEXEC, "-n", "4", str(BIN / "python"), "-m", "ambs", "search",
           str(HERE / "sleep_problem.py"), "--evaluator", "mpi", "--method", method,
           "--max-evals", str(n), "--seed", "0", "-q", "-o", str(out), "--prefetch", prefetch]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=1200)
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    t_first = min(float(r["started"]) for r in rows)
    t_last = max(float(r["finished"]) for r in rows)
    wall = t_last - t_first
    busy = sum(float(r["finished"]) - float(r["started"]) for r in rows)
    workers = len({r["worker"] for r in rows})
    return {"tasks": len(rows), "wall": wall, "busy": busy, "workers": workers}


def pool_run(sleep: float, n: int) -> dict[str, float]:
    cmd = [MPIEXEC, "-n", "4", str(BIN / "python"), "-m", "mpi4py.futures",
           str(HERE / "pool_floor.py"), str(n), str(sleep)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1200)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=0, help="evaluations per run (default: by sleep)")
    ap.add_argument("--methods", default="random,ambs")
    ap.add_argument("--sleeps", default="0,0.1,1")
    ap.add_argument("--prefetch", default="auto", help="ambs's --prefetch (auto: its default)")
    args = ap.parse_args()
    methods = args.methods.split(",")
    print(f"{'evaluation':>10} {'runner':>18} {'evals':>6} {'wall s':>8} {'evals/s':>8} "
          f"{'util':>6} {'vs floor':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for sleep in (float(s) for s in args.sleeps.split(",")):
            n = args.evals or {0.0: 6000, 0.1: 150}.get(sleep, 30)
            floor = pool_run(sleep, n)
            rows = [("MPIPoolExecutor.map", floor)]
            for m in methods:
                m_n = n if args.evals or sleep > 0 or m != "ambs" else 600
                rows.append((f"ambs mpi ({m})", ambs_run(m, sleep, m_n, Path(tmp), args.prefetch)))
            f_rate = floor["tasks"] / floor["wall"]
            f_util = floor["busy"] / (floor["workers"] * floor["wall"])
            for name, r in rows:
                rate = r["tasks"] / r["wall"]
                util = r["busy"] / (r["workers"] * r["wall"])
                ratio = (rate / f_rate) if sleep == 0 else (util / f_util)
                print(f"{sleep:>9g}s {name:>18} {r['tasks']:>6} {r['wall']:>8.2f} {rate:>8.1f} "
                      f"{util:>6.1%} {ratio:>8.2f}x", flush=True)
    print("vs floor: evals/s ratio for 0 s evaluations, utilization ratio otherwise")


if __name__ == "__main__":
    main()
