"""Does ``ambs simulate`` predict a real run? The same search, once on real
workers whose evaluations sleep, once on simulated ones.

For each worker count it runs AMBS on ``bench/sleep_problem.py`` (an
evaluation sleeps a lognormal time and uses no CPU) twice with the same
seed, settings and evaluation-time distribution:

* real: the process evaluator with W worker processes on this machine, its
  fits in a background thread (as ``ambs search`` by default) or, with
  ``--fit process``, in a process of their own;
* simulated: the simulated evaluator (the same search and driver, the
  workers on a virtual clock, the master's compute measured).

Both are scored from their results.csv by the same function: utilization
while there is work to hand out (busy worker time over W times the span from
the first to the last submission), and the master's milliseconds per result
(writing rows, telling, asking, submitting: the driver's phases). The real
run also reports the master's busy share of its wall time.

With ``--pin`` both runs give the master's main thread a core of its own, as
a cluster node gives rank 0, and the simulator assumes: it runs on CPU 0,
everything else the run starts (worker processes and ranks, their
evaluations, the fitting process, the master's other threads) on the other
CPUs. Without it, everything shares every core of this machine.

    .venv/bin/python bench/sim_vs_real.py [--workers 32 64] [--duration lognormal:1.5,0.5]
        [--waves 10] [--seed 1] [--pin] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ambs.runner import run_search  # noqa: E402

MASTER_PHASES = ("record", "tell", "ask", "submit")
# The process evaluator's messages go through a pipe: measured here with a
# ping-pong of a pickled job between two Python processes (multiprocessing
# Pipe): 23.5 us one way, 0.40 GB/s for 10 MB.
PIPE = "2.35e-5,4e8"


class Pinning:
    """The calling thread on CPU 0; its process's other threads and its descendants on the rest.

    Linux sets affinity per thread and a child inherits its creator's, so a
    watcher moves every thread and descendant that is not the pinned thread
    off CPU 0 as they appear (every 50 ms). The watcher is a process of its
    own (this script run with ``--pin-watch``), on the other CPUs, so that it
    takes neither CPU 0 nor the master's interpreter lock.
    """

    def __init__(self) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs two CPUs or more")
        self.master, self.rest = {cpus[0]}, set(cpus[1:])
        self.watcher: subprocess.Popen | None = None

    def __enter__(self) -> Pinning:
        tid = threading.get_native_id()
        self.watcher = subprocess.Popen([sys.executable, __file__, "--pin-watch", str(os.getpid()), str(tid),
                                         ",".join(map(str, sorted(self.rest)))])
        os.sched_setaffinity(0, self.master)  # this thread only (Linux)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watcher is not None:
            self.watcher.terminate()
            self.watcher.wait()
        os.sched_setaffinity(0, self.master | self.rest)


def watch(pid: int, keep: int, rest: set[int]) -> None:
    """Move every thread of process ``pid`` but ``keep``, and of its descendants, to CPUs ``rest``,
    until killed or ``pid`` is gone."""
    os.sched_setaffinity(0, rest)
    while os.path.exists(f"/proc/{pid}"):
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                except OSError:
                    continue
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(d))
        mine, todo = [], [pid]
        while todo:
            p = todo.pop()
            mine.append(p)
            todo.extend(children.get(p, []))
        for p in mine:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
            except OSError:
                continue
            for t in tids:
                if t == keep:
                    continue
                try:
                    if os.sched_getaffinity(t) != rest:
                        os.sched_setaffinity(t, rest)
                except OSError:  # gone meanwhile
                    pass
        time.sleep(0.05)


def utilization(csv_path: Path, workers: int) -> dict[str, float]:
    """Busy share of the workers from the first to the last submission, from a results.csv."""
    with open(csv_path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    sub = [float(r["submitted"]) for r in rows]
    t0, t1 = min(sub), max(sub)
    busy = sum(max(min(float(r["finished"]), t1) - max(float(r["started"]), t0), 0.0) for r in rows)
    return {"utilization": busy / (workers * (t1 - t0)), "span": t1 - t0, "evaluations": len(rows),
            "asks": len(set(sub)), **idle_gaps(rows)}


def idle_gaps(rows: list[dict[str, str]]) -> dict[str, float]:
    """Where a worker's time between two evaluations goes, mean ms: from its
    result to the master's submission of its next job (``response_ms``: the
    result's way back, the master's queue, telling and asking) and from that
    submission to the job's start (``start_ms``: the job's way out, the
    worker picking it up)."""
    by: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by.setdefault(r["worker"], []).append(r)
    response, start = [], []
    for runs in by.values():
        runs.sort(key=lambda r: float(r["started"]))
        for a, b in zip(runs, runs[1:]):
            response.append(float(b["submitted"]) - float(a["finished"]))
            start.append(float(b["started"]) - float(b["submitted"]))
    mean = lambda v: 1e3 * sum(v) / len(v) if v else float("nan")  # noqa: E731
    return {"response_ms": mean(response), "start_ms": mean(start)}


def one(evaluator: str, workers: int, duration: str, evals: int, seed: int, out: Path, fit: str = "background",
        message_cost: str = "none", live_fits: bool = False, idle_sleep: float = 0.0, polling: bool = True,
        **method_options: object) -> dict[str, float]:
    options = ({"duration": duration, "message_cost": message_cost, "live_fits": live_fits, "idle_sleep": idle_sleep,
                "polling": polling} if evaluator == "simulated" else {})
    if evaluator == "mpi":  # the simulator hands a worker its next job only when it is free
        options = {"prefetch": 0}
    # The real workers sleep; the simulated ones take their time on the virtual clock only.
    os.environ["AMBS_BENCH_SLEEP"] = "0" if evaluator == "simulated" else duration
    t = time.perf_counter()
    res = run_search(str(HERE / "sleep_problem.py"), "ambs", evaluator, max_evals=evals, output=out,
                     workers=None if evaluator == "mpi" else workers, seed=seed, quiet=True, evaluator_options=options, fit=fit,
                     **method_options)
    wall = time.perf_counter() - t
    if res is None:  # an MPI worker rank, done serving
        return {}
    ph = res.summary.phases
    n = max(res.summary.evaluations, 1)
    row = utilization(out / "results.csv", workers)
    row["master_ms"] = sum(ph[k] for k in MASTER_PHASES) / n * 1e3
    row["phases_ms"] = {k: ph[k] / n * 1e3 for k in (*MASTER_PHASES, "wait")}
    if evaluator != "simulated":
        row["master_busy"] = 1.0 - ph["wait"] / max(res.summary.elapsed, 1e-9)
    row["real_seconds"] = wall
    row["fits"] = res.fitter.fits if res.fitter is not None else 0
    row["fit_s"] = res.fitter.fit_seconds / max(row["fits"], 1) if res.fitter is not None else 0.0
    row["fold_ms"] = getattr(res.search, "fold_seconds", 0.0) / n * 1e3
    return row


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--pin-watch":
        return watch(int(sys.argv[2]), int(sys.argv[3]), {int(c) for c in sys.argv[4].split(",")})
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
    ap.add_argument("--workers", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--duration", default="lognormal:1.5,0.5")
    ap.add_argument("--waves", type=int, default=10, help="evaluations per worker")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--evaluator", default="process", choices=["process", "mpi"],
                    help="the real run's evaluator; mpi: run this script under mpiexec -n W+1")
    ap.add_argument("--fit", default="background", choices=["background", "process"],
                    help="where the real run fits: a thread (default, as ambs search) or a process of its own")
    ap.add_argument("--message-cost", default=PIPE,
                    help="the simulated messages' cost (as ambs simulate --message-cost); default: a pipe "
                         f"between two processes of this machine, {PIPE}")
    ap.add_argument("--live-fits", action="store_true",
                    help="the simulated run's fits run for real beside its master (ambs simulate --live-fits)")
    ap.add_argument("--fit-jobs", type=int, default=None,
                    help="threads for the background fit (default: as ambs search, the cores, at most 4)")
    ap.add_argument("--idle-sleep", type=float, default=0.0, metavar="SECONDS",
                    help="the simulated master sleeps its waits for results in real time, up to this long each "
                         "(ambs simulate --idle-sleep)")
    ap.add_argument("--no-polling", action="store_true",
                    help="with --evaluator mpi: the simulated master and workers see messages the instant they "
                         "arrive, not at their next probe (the simulator before it modelled the MPI backoff)")
    ap.add_argument("--pin", action="store_true",
                    help="the master's main thread on CPU 0, all else the runs start on the other CPUs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.evaluator == "mpi":  # the ranks there are: one master, the rest workers
        size = int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1")))
        args.workers = [size - 1]
    if rank == 0:
        print(f"{'workers':>7} {'run':>9} {'evals':>5} {'util':>7} {'master ms/result':>16} "
              f"{'record':>7} {'tell':>6} {'ask':>7} {'submit':>6} {'real s':>7} {'asks':>5} {'fits':>5} {'fit s':>6} "
              f"{'fold':>6} {'response':>8} {'start':>8}", flush=True)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            for ev in (args.evaluator, "simulated"):
                with Pinning() if args.pin and rank == 0 else contextlib.nullcontext():
                    if args.pin and rank > 0:  # a worker rank, and what it starts
                        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[1:]))
                    r = one(ev, w, args.duration, w * args.waves, args.seed, Path(tmp) / f"{ev}-{w}", args.fit,
                            args.message_cost, args.live_fits, args.idle_sleep,
                            polling=args.evaluator == "mpi" and not args.no_polling,  # the process pool's pipes wake
                            **({"fit_jobs": args.fit_jobs} if args.fit_jobs else {}))
                if not r:
                    return  # a worker rank: the master prints
                p = r["phases_ms"]
                print(f"{w:>7} {ev:>9} {r['evaluations']:>5} {r['utilization']:>7.2%} {r['master_ms']:>16.2f} "
                      f"{p['record']:>7.3f} {p['tell']:>6.3f} {p['ask']:>7.2f} {p['submit']:>6.3f} "
                      f"{r['real_seconds']:>7.0f} {r['asks']:>5} {r['fits']:>5} {r['fit_s']:>6.3f} {r['fold_ms']:>6.2f} "
                      f"{r['response_ms']:>8.2f} {r['start_ms']:>8.2f}", flush=True)
                out.append({"workers": w, "evaluator": ev, "duration": args.duration, **r})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
