"""Seconds per ask as the history grows: what a freed worker waits for.

For each history size N, tell an AMBS search N evaluated random
configurations of a problem, then time:

- ``fit``: one surrogate fit on the N results (in ``ambs search`` it runs in
  a background thread, off the dispatch path);
- ``ask(1)``, ``ask(8)``: proposals from the fitted model, with 64 pending
  evaluations folded in as lies (what the dispatch path pays);
- ``sync ask(8)``: a fit followed by ``ask(8)`` (``--fit sync``);
- optionally DeepHyper's CBO ``ask(8)`` at the same N, in the same run, from
  another virtualenv (``--peer-python``), as its own process.

Medians over ``--reps`` repetitions.

    .venv/bin/python bench/ask_latency.py [--sizes 100 1000 5000 10000] [--reps 5]
        [--peer-python bench/.venv-peers/bin/python] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ambs import AMBS  # noqa: E402
from ambs.problem import load_problem  # noqa: E402

PEER_SCRIPT = r"""
import json, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from deephyper.hpo import CBO, HpProblem
n, reps, dim = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
problem = HpProblem()
for i in range(dim):
    problem.add_hyperparameter((-32.768, 32.768), f"x{i}")
rng = np.random.default_rng(0)
def f(c):
    x = np.array([c[f"x{i}"] for i in range(dim)])
    return float(20 * np.exp(-0.2 * np.sqrt((x * x).mean())) + np.exp(np.cos(2 * np.pi * x).mean()) - 20 - np.e)
search = CBO(problem, random_state=0, log_dir=tempfile.mkdtemp(), surrogate_model="RF", acq_func="UCB",
             acq_func_kwargs={"kappa": 1.96}, acq_optimizer="sampling",
             acq_optimizer_kwargs={"n_points": 10000}, multi_point_strategy="cl_max",
             checkpoint_history_to_csv=False)
configs = [{f"x{i}": float(v) for i, v in enumerate(rng.uniform(-32.768, 32.768, dim))} for _ in range(n)]
search.tell([(c, f(c)) for c in configs])
times = []
for _ in range(reps):
    t = time.perf_counter()
    batch = search.ask(8)
    times.append(time.perf_counter() - t)
    search.tell([(c, f(c)) for c in batch])
print(json.dumps({"ask8": float(np.median(times))}))
"""


def evaluate(run, configs):
    return [(c, float(run(c))) for c in configs]


def _load(ref: str):
    """A problem reference (``problems.ackley``, a path), or a task of
    bench/tasks.py (``ackley-50``: Ackley in 50 dimensions)."""
    try:
        return load_problem(ref)
    except Exception:  # noqa: BLE001 - not a module: try the benchmark's tasks
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import tasks

        return tasks.load(ref)


def measure(problem_ref: str, n: int, reps: int) -> dict[str, float]:
    loaded = _load(problem_ref)
    search = AMBS(loaded.problem, random_state=0)
    rng = np.random.default_rng(n)
    X = search.space.sample(n, rng)
    search.tell(evaluate(loaded.run, search.space.to_dicts(X)))
    out: dict[str, list[float]] = {"fit": [], "ask1": [], "ask8": [], "sync_ask8": []}
    # Warm-up, and 64 evaluations left pending: a busy master has lies to fold.
    search.fit()
    search.background_fit = True
    search.ask(64)
    for _ in range(reps):
        t = time.perf_counter()
        search.fit()
        out["fit"].append(time.perf_counter() - t)
        t = time.perf_counter()
        search.ask(1)
        out["ask1"].append(time.perf_counter() - t)
        t = time.perf_counter()
        search.ask(8)
        out["ask8"].append(time.perf_counter() - t)
        out["sync_ask8"].append(out["fit"][-1] + out["ask8"][-1])
    return {k: float(np.median(v)) for k, v in out.items()}


def peer(python: str, n: int, reps: int) -> float | None:
    res = subprocess.run([python, "-c", PEER_SCRIPT, str(n), str(reps), "5"], capture_output=True,
                         text=True, timeout=3600)
    if res.returncode != 0:
        print(f"peer failed: {res.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])["ask8"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="problems.ackley",
                    help="a problem (problems.ackley) or a bench/tasks.py name (ackley-50)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000, 10000])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--peer-python", default=None, help="a python with deephyper 0.13.2 (CBO, same run)")
    ap.add_argument("--peer-sizes", type=int, nargs="+", default=[1000])
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    rows = []
    print(f"{'N':>6} {'fit s':>8} {'ask(1) s':>9} {'ask(8) s':>9} {'sync ask(8) s':>14} {'CBO ask(8) s':>13}")
    for n in args.sizes:
        r = measure(args.problem, n, args.reps)
        r["n"] = n
        if args.peer_python and n in args.peer_sizes:
            r["cbo_ask8"] = peer(args.peer_python, n, args.reps)
        cbo = r.get("cbo_ask8")
        print(f"{n:>6} {r['fit']:>8.3f} {r['ask1']:>9.4f} {r['ask8']:>9.4f} {r['sync_ask8']:>14.3f} "
              f"{(f'{cbo:.3f}' if cbo else '-'):>13}", flush=True)
        rows.append(r)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
