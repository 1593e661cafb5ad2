"""Multi-objective search: hypervolume of AMBS, random search and peers on problems with known fronts.

Problems (all objectives minimized inside; the hypervolume is of what the
evaluations so far dominate, up to a reference point):

* ``zdt1``, ``zdt2``, ``zdt3`` (Zitzler, Deb and Thiele 2000) and ``dtlz2``
  with 3 objectives (Deb et al. 2002), each in 6 variables on [0, 1]^6
  (the papers use 30 and 12; 6 keeps 200 evaluations meaningful). Reference
  point 1.1 in every objective (ZDT3: (1.1, 1.1) too). The exact front's
  hypervolume is printed beside each table.
* ``nas_mlp_digits`` (``problems/nas_mlp_digits.py``): validation accuracy
  (maximized) against the number of weights (minimized), the losses
  (-accuracy, weights / the largest of 5000 random networks of the space)
  with reference (-0.1, 1.0): chance accuracy and that largest network. Trainings are
  deterministic per configuration, so each is cached on disk (``--save``)
  and shared by every method and seed.

Methods: ``ambs`` and ``random`` (this package, ask/tell in batches of
``--batch`` with a fit before each batch, the path of ``bench/quality.py``),
``evolution`` (aging evolution, winners drawn from the non-dominated members
of each tournament); from the peers' virtualenv in the same run:
``optuna-nsga2`` (NSGAIISampler), ``optuna-motpe`` (TPESampler on several
objectives, constant liar), ``optuna-gp`` (GPSampler: a Gaussian process per
objective, log expected hypervolume improvement, the batch's running trials
by its greedy q-batch form), ``dh-cbo`` (DeepHyper CBO: random forest, UCB,
constant liar, random augmented Chebyshev scalarizations of quantile-scaled
objectives), each asked for a batch at a time as well.

Reported: median hypervolume over seeds at 50, 100 and 200 evaluations (and
its interquartile range at 200), and the median seconds a run spent inside
the optimizer (asking and telling, not evaluating).

    .venv/bin/python bench/multiobjective.py [--problems zdt1 zdt2 zdt3 dtlz2 nas_mlp_digits]
        [--methods ambs random optuna-nsga2 optuna-motpe dh-cbo] [--seeds 10] [--evals 200]
        [--batch 8] [--jobs 2] [--save bench/results/multiobjective] [--reuse] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PROBLEMS = ["zdt1", "zdt2", "zdt3", "dtlz2", "nas_mlp_digits"]
# AMBS with settings other than its defaults, for the table's comparisons.
VARIANTS = {
    "ambs-chebyshev": {"front_acquisition": "chebyshev"},  # a scalarization per point (ParEGO's)
    "ambs-nopolish": {"polish_every": 0},  # the defaults before the polish step had several objectives
    # The defaults before the forest per objective: one forest split on all
    # objectives, the reference point past the front's nadir, 5 starts on the front.
    "ambs-joint": {"front_model": "joint", "front_reference": "front", "front_starts": 5},
    # Measured once (bench/README.md, "Several objectives"): one forest with the
    # reference past the worst result; that with candidates recombined from the
    # front (TPE's idea), with a tenth of the points random too, and with kappa 0;
    # a forest per objective with the nadir's reference; then the defaults with 5
    # and 20 starts on the front, and (5 starts) with recombined candidates, kappa 0.1, 0.6.
    "ambs-ref-worst": {"front_model": "joint", "front_reference": "worst", "front_starts": 5},
    "ambs-ref-worst-rec": {"front_model": "joint", "front_reference": "worst", "front_starts": 5,
                           "n_recombine": 500},
    "ambs-ref-worst-rf-rec": {"front_model": "joint", "front_reference": "worst", "front_starts": 5,
                              "n_recombine": 500, "random_fraction": 0.1},
    "ambs-ref-worst-k0": {"front_model": "joint", "front_reference": "worst", "front_starts": 5, "front_kappa": 0.0},
    "ambs-separate-ref-front": {"front_model": "separate", "front_reference": "front", "front_starts": 5},
    "ambs-starts5": {"front_starts": 5},
    "ambs-starts20": {"front_starts": 20},
    "ambs-rec": {"n_recombine": 500, "front_starts": 5},
    "ambs-k01": {"front_kappa": 0.1, "front_starts": 5},
    "ambs-k06": {"front_kappa": 0.6, "front_starts": 5},
    # The local search's step sizes before they stopped at 0.05.
    "ambs-fine": {"local_scales": (0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)},
}
OWN = ["ambs", *VARIANTS, "random", "evolution"]
PEERS = ["optuna-nsga2", "optuna-motpe", "optuna-gp", "dh-cbo"]
CHECKPOINTS = (50, 100, 200)
DIM = 6
PEER_PYTHON = os.path.join(ROOT, "bench", ".venv-peers", "bin", "python")


# ------------------------------------------------------------------ problems
def _zdt(kind: str, x: np.ndarray) -> list[float]:
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    h = {"zdt1": 1.0 - math.sqrt(f1 / g), "zdt2": 1.0 - (f1 / g) ** 2,
         "zdt3": 1.0 - math.sqrt(f1 / g) - (f1 / g) * math.sin(10 * math.pi * f1)}[kind]
    return [f1, g * h]


def _dtlz2(x: np.ndarray) -> list[float]:
    g = float(np.sum((x[2:] - 0.5) ** 2))
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return [(1 + g) * math.cos(a) * math.cos(b), (1 + g) * math.cos(a) * math.sin(b), (1 + g) * math.sin(a)]


class Task:
    """A problem as every method sees it: a ConfigSpace space, the losses of
    a configuration (minimized), the reference point, and an ambs Problem."""

    def __init__(self, name: str, cache: str | None = None) -> None:
        self.name = name
        from ambs import Problem

        if name == "nas_mlp_digits":
            import importlib

            self.module = importlib.import_module("problems.nas_mlp_digits")
            self.problem = self.module.problem
            self.largest = float(_largest_network(self.module))
            self.reference = [-0.1, 1.0]
            self.directions = ["max", "min"]
            self.names = ["accuracy", "parameters"]
            self.cache_path = cache
            self._cache: dict[str, list[float]] = {}
            if cache and os.path.exists(cache):
                with open(cache) as fh:
                    for line in fh:
                        try:
                            k, v = json.loads(line)
                        except ValueError:
                            continue  # a line cut by a crash
                        if isinstance(k, list):  # written as a JSON list of [name, value] pairs
                            k = repr([tuple(kv) for kv in k])
                        self._cache[k] = v
        else:
            m = 3 if name == "dtlz2" else 2
            self.names = [f"f{i + 1}" for i in range(m)]
            self.directions = ["min"] * m
            self.reference = [1.1] * m
            self.problem = Problem(name=name)
            for i in range(DIM):
                self.problem.add_hyperparameter((0.0, 1.0), f"x{i}")
            for n in self.names:
                self.problem.add_objective(n, "min")
        self.space = self.problem.space

    def values(self, config: dict[str, Any]) -> list[float]:
        """The objectives' values, as the problem's ``run`` returns them."""
        if self.name == "nas_mlp_digits":
            key = repr(sorted(config.items()))  # the text the cache's keys were written as
            if key not in self._cache:
                out = self.module.run(dict(config))
                self._cache[key] = [float(out["accuracy"]), float(out["parameters"])]
                if self.cache_path:
                    with open(self.cache_path, "a") as fh:
                        fh.write(json.dumps([key, self._cache[key]]) + "\n")
            return list(self._cache[key])
        x = np.array([config[f"x{i}"] for i in range(DIM)], dtype=float)
        return _dtlz2(x) if self.name == "dtlz2" else _zdt(self.name, x)

    def losses(self, values: list[float]) -> list[float]:
        """Minimized, scaled form of the values, in which the hypervolume is measured."""
        if self.name == "nas_mlp_digits":
            return [-values[0], values[1] / self.largest]
        return list(values)

    def front_hypervolume(self) -> float | None:
        """The exact front's hypervolume (None where it is not known in closed form)."""
        from ambs.objectives import hypervolume

        t = np.linspace(0.0, 1.0, 20001)
        if self.name == "zdt1":
            return 1.21 - 1.0 / 3.0
        if self.name == "zdt2":
            return 1.21 - 2.0 / 3.0
        if self.name == "zdt3":
            return hypervolume(np.column_stack([t, 1 - np.sqrt(t) - t * np.sin(10 * np.pi * t)]), self.reference)
        if self.name == "dtlz2":
            return 1.1 ** 3 - math.pi / 6
        return None


def _largest_network(module: Any) -> int:
    """The parameter count of the largest of 5000 random networks of the space (seed 0)."""
    from ambs.nas.space import count_parameters
    from ambs.search.factory import make_search

    configs = make_search("random", module.problem, 0).ask(5000)
    return max(count_parameters(c, module.SPEC) for c in configs)


# -------------------------------------------------------------------- runs
def run_own(method: str, task: Task, seed: int, evals: int, batch: int) -> dict:
    from ambs.search.factory import make_search

    spent = 0.0
    t = time.perf_counter()
    if method in VARIANTS:
        from ambs import AMBS

        search = AMBS(task.problem, random_state=seed, **VARIANTS[method])
    else:
        search = make_search(method, task.problem, seed)
    spent += time.perf_counter() - t
    out: list[list[float]] = []
    while len(out) < evals:
        t = time.perf_counter()
        configs = search.ask(min(batch, evals - len(out)))
        spent += time.perf_counter() - t
        results = [(c, task.values(c)) for c in configs]
        t = time.perf_counter()
        search.tell([(c, dict(zip(task.names, v))) for c, v in results])
        spent += time.perf_counter() - t
        out += [task.losses(v) for _, v in results]
    return {"losses": out, "seconds": spent}


def run_peer(method: str, task: Task, seed: int, evals: int, batch: int) -> dict:
    """Runs inside the peers' interpreter."""
    import tempfile
    import warnings

    warnings.filterwarnings("ignore")
    out: list[list[float]] = []
    spent = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if method.startswith("optuna"):
            import optuna

            from bench.quality import _optuna_params

            optuna.logging.set_verbosity(optuna.logging.ERROR)
            sampler = {"optuna-nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
                       "optuna-motpe": lambda: optuna.samplers.TPESampler(seed=seed, constant_liar=True),
                       # logEHVI; the running trials of a batch by qLogEHVI (greedy)
                       "optuna-gp": lambda: optuna.samplers.GPSampler(seed=seed)}[method]()
            study = optuna.create_study(directions=["maximize" if d == "max" else "minimize"
                                                    for d in task.directions], sampler=sampler)
        else:
            from deephyper.hpo import CBO, HpProblem

            # The settings of bench/quality.py's dh-cbo (its acquisition
            # optimizer by sampling: the default genetic one took 5 to 15 s
            # per batch here), with DeepHyper's random augmented Chebyshev
            # scalarizations of quantile-scaled objectives.
            cbo = CBO(HpProblem(config_space=task.space), random_state=seed, log_dir=tmp, surrogate_model="RF",
                      acq_func="UCB", acq_func_kwargs={"kappa": 1.96}, acq_optimizer="sampling",
                      acq_optimizer_kwargs={"n_points": 10000}, multi_point_strategy="cl_max",
                      moo_scalarization_strategy="AugChebyshev", checkpoint_history_to_csv=False)
        spent += time.perf_counter() - t
        while len(out) < evals:
            n = min(batch, evals - len(out))
            t = time.perf_counter()
            if method.startswith("optuna"):
                trials = [study.ask() for _ in range(n)]
                asked = [(tr, _optuna_params(tr, task.space)) for tr in trials]
            else:
                asked = [(c, {k: v for k, v in c.items() if k in task.space and v == v}) for c in cbo.ask(n)]
            spent += time.perf_counter() - t
            results = [(h, p, task.values(p)) for h, p in asked]
            t = time.perf_counter()
            for h, _, v in results:
                if method.startswith("optuna"):
                    study.tell(h, v)
                else:  # DeepHyper maximizes every objective
                    cbo.tell([(h, tuple(x if d == "max" else -x for x, d in zip(v, task.directions)))])
            spent += time.perf_counter() - t
            out += [task.losses(v) for _, _, v in results]
    return {"losses": out, "seconds": spent}


def _path(save: str | None, method: str, problem: str, seed: int, evals: int, batch: int) -> str | None:
    return os.path.join(save, f"{problem}-{evals}x{batch}", f"{method}-seed{seed}.json") if save else None


def _one(job: tuple) -> tuple:
    method, problem, seed, evals, batch, save, reuse, peer_python = job
    path = _path(save, method, problem, seed, evals, batch)
    if reuse and path and os.path.exists(path):
        with open(path) as fh:
            return method, problem, seed, json.load(fh)
    if reuse == "only":
        return method, problem, seed, None
    cache = os.path.join(save, "nas_mlp_digits-cache.jsonl") if save else None
    if method in PEERS:
        res = subprocess.run([peer_python, os.path.abspath(__file__), "--peer-worker", method, problem, str(seed),
                              str(evals), str(batch), cache or ""], capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            raise RuntimeError(f"{method} on {problem}: {res.stderr.strip().splitlines()[-3:]}")
        out = json.loads(res.stdout.strip().splitlines()[-1])
    else:
        out = run_own(method, Task(problem, cache), seed, evals, batch)
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            json.dump(out, fh)
        os.replace(path + ".tmp", path)
    return method, problem, seed, out


def _table(problem: str, reference: list[float], front: float | None, runs: dict[str, list[dict]],
           evals: int) -> list[str]:
    from ambs.objectives import hypervolume

    marks = [c for c in CHECKPOINTS if c <= evals]
    runs = {m: r for m, r in runs.items() if r}
    head = f"### {problem}: median hypervolume over seeds"
    head += f" (reference {tuple(reference)}; the exact front: {front:.4f})" if front is not None else \
        f" (reference {tuple(reference)})"
    lines = [head, "", "| method | seeds | " + " | ".join(f"@{c}" for c in marks) + f" | IQR @{marks[-1]} | optimizer s |",
             "|---|---|" + "---|" * (len(marks) + 2)]
    best = {}
    rows = []
    for method, outs in runs.items():
        hv = np.array([[hypervolume(np.array(o["losses"][:c]), reference) for c in marks] for o in outs])
        med = np.median(hv, axis=0)
        q1, q3 = np.percentile(hv[:, -1], [25, 75])
        secs = float(np.median([o["seconds"] for o in outs]))
        rows.append((method, med, q1, q3, secs))
        best[method] = med[-1]
    top = max(best.values())
    for method, med, q1, q3, secs in rows:
        cells = [f"{v:.4f}" for v in med]
        if med[-1] == top:
            cells[-1] = f"**{cells[-1]}**"
        lines.append(f"| {method} | {len(runs[method])} | " + " | ".join(cells) + f" | {q1:.4f}–{q3:.4f} | {secs:.1f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=PROBLEMS, choices=PROBLEMS)
    ap.add_argument("--methods", nargs="+", default=["ambs", "random", *PEERS], choices=OWN + PEERS)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time")
    ap.add_argument("--peer-python", default=PEER_PYTHON, help="interpreter with optuna and deephyper")
    ap.add_argument("--save", default=None, help="folder for each run's losses (and the NAS trainings' cache)")
    ap.add_argument("--reuse", action="store_true", help="take runs already in --save instead of rerunning them")
    ap.add_argument("--saved-only", action="store_true",
                    help="with --reuse: tabulate the runs in --save, run nothing (a method may have fewer seeds)")
    ap.add_argument("--json", default=None, help="write the medians to this file")
    ap.add_argument("--peer-worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_worker:
        method, problem, seed, evals, batch, cache = args.peer_worker
        out = run_peer(method, Task(problem, cache or None), int(seed), int(evals), int(batch))
        print(json.dumps(out))
        return
    if any(m in PEERS for m in args.methods) and not args.saved_only and not os.path.exists(args.peer_python):
        ap.error(f"peers need --peer-python (no {args.peer_python}; see bench/README.md)")
    reuse = "only" if args.saved_only else args.reuse
    jobs = [(m, p, s, args.evals, args.batch, args.save, reuse, args.peer_python)
            for p in args.problems for s in range(args.seeds) for m in args.methods]
    results: dict[str, dict[str, list[dict]]] = {p: {m: [] for m in args.methods} for p in args.problems}
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for k, (method, problem, seed, out) in enumerate(pool.map(_one, jobs), start=1):
            if out is not None:
                results[problem][method].append(out)
            print(f"[{k}/{len(jobs)}] {problem} {method} seed {seed} ({time.time() - t0:.0f} s)", file=sys.stderr)
    summary = {}
    for p in args.problems:
        task = Task(p) if p != "nas_mlp_digits" else None
        reference = task.reference if task else [-0.1, 1.0]
        front = task.front_hypervolume() if task else None
        print("\n".join(_table(p, reference, front, results[p], args.evals)) + "\n")
        from ambs.objectives import hypervolume

        summary[p] = {m: [float(np.median([hypervolume(np.array(o["losses"][:c]), reference) for o in outs]))
                          for c in CHECKPOINTS if c <= args.evals] for m, outs in results[p].items() if outs}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
