"""Search quality: simple regret of AMBS, random search and peers on test functions.

Two paths, chosen with ``--paths``:

* ``batch``: each run proposes ``--evals`` configurations in batches of
  ``--batch`` through ask/tell (ask a batch, evaluate it, tell it), as a
  master with ``--batch`` free workers would if they all finished at once.
* ``async`` (what ``ambs search`` users get): this package's methods run
  through the real driver (:func:`ambs.simulate.simulate`, as ``ambs
  simulate`` does) with ``--batch`` simulated workers whose evaluations take
  ``--duration`` (lognormal by default), the background fitter on the
  virtual clock and the master's real compute on it; a freed worker is
  answered at once, while the others are still pending. Peers run the same
  protocol in their own interpreter: a heap of finishing times, ``tell`` the
  earliest, ``ask`` one, their own compute on the clock. The best-so-far
  trace is in the order results come back. Measured compute makes that
  order, and so the trace, differ a little from run to run;
  ``--master-cost STEP,FIT`` puts fixed seconds on the clock instead (per
  master step and per background fit; a peer's ask or tell counts as a
  step), and the same seed then repeats a run exactly.

``--verify DIR`` runs again what DIR holds (written by ``--save``) and says
whether every trace is reproduced exactly (to 1e-12 relative: numpy versions
differ in the last bit of a test function's value): the batch path, random search and
the async path with a fixed master cost must be; a change meant to keep
behaviour (a refactor) is checked this way. Simple regret = the function's optimum minus the best
objective found (objectives are maximized, so regret >= 0, lower is better).
Reported: the median over seeds at 50, 100 and 200 evaluations, and the
median optimizer seconds per run (time inside ask and tell).

What is searched (``--functions``, see ``bench/tasks.py``): the shipped test
functions and problems, the dimension-generic ones in any dimension
(``ackley-20``, ``rosenbrock-50``), and real tuning tasks, scikit-learn
models on bundled datasets (``sk-svm-wine``; ``suite``: the 10 of
``tasks.SUITE``). On tasks without a known optimum the table gives the
median best value, and, with random search in the run, the NeurIPS 2020
black-box optimization challenge's normalized score (0: random search's
mean, 100: the best any run found), the suite's protocol being 16 batches
of 8 (``--evals 128 --batch 8 --paths batch``). ``--compare A B`` adds the
difference of two methods' mean scores with a bootstrap interval over the
seeds: whether a lead is more than seed noise.

Methods of this package: ``ambs`` (defaults; fitted before each batch),
``ambs-lag`` (the model one batch behind, as a background fit leaves it),
``ambs-refit`` (constant liar by refitting the forest once per lie, the
textbook form), ``random``. Peers, run with another interpreter that has
them (``--peer-python``; optuna and deephyper are benchmark-only
dependencies): ``optuna-tpe`` (TPESampler, constant liar), ``optuna-gp``
(GPSampler), ``dh-cbo`` (DeepHyper CBO: random forest, UCB kappa 1.96,
cl_max, 10,000 sampled candidates), ``hebo`` (HEBO, the challenge's winner;
spaces without conditions).

    .venv/bin/python bench/quality.py [--functions ...] [--methods ...] [--seeds 10]
        [--paths batch async] [--peer-python bench/.venv-peers/bin/python] [--jobs 2] [--json FILE]
        [--master-cost measured|STEP,FIT] [--save DIR | --verify DIR] [--compare A B]
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FUNCTIONS = ["ackley", "branin", "griewank", "hartmann6", "levy", "rosenbrock", "mixed"]
OWN = ["ambs", "ambs-lag", "ambs-refit", "ambs-gp", "random"]
PEERS = ["optuna-tpe", "optuna-gp", "dh-cbo", "hebo"]
PATHS = ["batch", "async"]
BATCH_ONLY = {"ambs-lag"}  # emulates the background fitter's lag; the async path has the real one
CHECKPOINTS = (50, 100, 200)
DURATION = "lognormal:60,0.5"


def _objective(out) -> float:
    if isinstance(out, dict):
        out = out["objective"]
    try:
        v = float(out)
    except (TypeError, ValueError):
        return float("nan")
    return v if np.isfinite(v) else float("nan")


def _trace(values: list[float]) -> list[float]:
    """Best objective so far after each evaluation (NaN until a finite one)."""
    best, out = -np.inf, []
    for v in values:
        if v == v and v > best:
            best = v
        out.append(best if np.isfinite(best) else float("nan"))
    return out


# ------------------------------------------------------------------ own methods
def run_own(method: str, function: str, seed: int, evals: int, batch: int, options: dict | None = None) -> dict:
    mod = tasks.load(function)
    search = _make_own(method, mod.problem, seed, options)
    lag = method == "ambs-lag"
    values: list[float] = []
    spent = 0.0
    task = None
    while len(values) < evals:
        t = time.perf_counter()
        if lag:
            # The background fitter's view: the fit started after the previous
            # batch came back is installed only now, a batch behind.
            search.background_fit = True
            if task is not None:
                search.install(task.run())
            task = search.fit_task()
        configs = search.ask(min(batch, evals - len(values)))
        spent += time.perf_counter() - t
        if not configs:
            break
        results = [(c, _objective(mod.run(c))) for c in configs]
        t = time.perf_counter()
        search.tell([(c, v if v == v else None) for c, v in results])
        spent += time.perf_counter() - t
        values += [v for _, v in results]
    return {"trace": _trace(values), "seconds": spent}


def _make_own(method: str, problem, seed: int, options: dict | None):
    from ambs import AMBS, RandomSearch

    options = dict(options or {})
    if method == "random":
        return RandomSearch(problem, random_state=seed)
    if method == "ambs-refit":
        return AMBS(problem, random_state=seed, lie_mode="refit", **options)
    if method == "ambs-gp":
        return AMBS(problem, random_state=seed, **{"surrogate": "gp", **options})
    return AMBS(problem, random_state=seed, **options)


def run_own_async(method: str, function: str, seed: int, evals: int, workers: int, duration: str,
                  options: dict | None = None, fit: str = "background", cost: str = "measured") -> dict:
    """One run through the real driver against ``workers`` simulated workers (``ambs simulate``'s path)."""
    from ambs.simulate import MemoryRecorder, parse_duration, parse_master_cost, simulate

    mod = tasks.load(function)
    search = _make_own(method, mod.problem, seed, options)
    rec = MemoryRecorder()
    report = simulate(search, mod.run, rec, workers, parse_duration(duration), evals, seed=seed,
                      background_fit=fit == "background", master_cost=parse_master_cost(cost))
    values = [e.objective if e.ok else float("nan") for e in rec.rows]
    return {"trace": _trace(values), "seconds": report.master_seconds + report.fit_seconds,
            "utilization": report.utilization}


# ------------------------------------------------------------------------ peers
def _optuna_params(trial, space) -> dict:
    """Suggest every active hyperparameter of a ConfigSpace space (conditions
    in topological order, as ConfigSpace keeps them) through an Optuna trial."""
    from ConfigSpace import (
        CategoricalHyperparameter,
        Constant,
        EqualsCondition,
        InCondition,
        OrdinalHyperparameter,
        UniformFloatHyperparameter,
        UniformIntegerHyperparameter,
    )

    params: dict = {}
    for hp in space.values():
        conds = space.parent_conditions_of[hp.name]
        active = True
        for c in conds:
            if isinstance(c, EqualsCondition):
                active &= params.get(c.parent.name, object()) == c.value
            elif isinstance(c, InCondition):
                active &= params.get(c.parent.name, object()) in c.values
            else:
                raise NotImplementedError(f"condition {type(c).__name__}")
        if not active:
            continue
        if isinstance(hp, UniformFloatHyperparameter):
            params[hp.name] = trial.suggest_float(hp.name, hp.lower, hp.upper, log=hp.log)
        elif isinstance(hp, UniformIntegerHyperparameter):
            params[hp.name] = trial.suggest_int(hp.name, hp.lower, hp.upper, log=hp.log)
        elif isinstance(hp, CategoricalHyperparameter):
            params[hp.name] = trial.suggest_categorical(hp.name, list(hp.choices))
        elif isinstance(hp, OrdinalHyperparameter):
            params[hp.name] = trial.suggest_categorical(hp.name, list(hp.sequence))
        elif isinstance(hp, Constant):
            params[hp.name] = hp.value
        else:
            raise NotImplementedError(type(hp).__name__)
    return params


class _PeerAdapter:
    """One peer optimizer behind ``ask(n) -> [(handle, params)]`` and ``tell(handle, params, value)``."""

    def __init__(self, method: str, space, seed: int, tmp: str) -> None:
        self.method, self.space = method, space
        if method.startswith("optuna"):
            import optuna

            optuna.logging.set_verbosity(optuna.logging.ERROR)
            if method == "optuna-tpe":
                sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
            else:
                sampler = optuna.samplers.GPSampler(seed=seed)
            self.optuna = optuna
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
        elif method == "dh-cbo":
            from deephyper.hpo import CBO, HpProblem

            hp = HpProblem(config_space=space)
            self.search = CBO(hp, random_state=seed, log_dir=tmp, surrogate_model="RF", acq_func="UCB",
                              acq_func_kwargs={"kappa": 1.96}, acq_optimizer="sampling",
                              acq_optimizer_kwargs={"n_points": 10000}, multi_point_strategy="cl_max",
                              checkpoint_history_to_csv=False)
        elif method == "hebo":
            self.hebo = _Hebo(space, seed)
        else:
            raise ValueError(f"unknown peer {method!r}")

    def ask(self, n: int) -> list[tuple]:
        if self.method.startswith("optuna"):
            trials = [self.study.ask() for _ in range(n)]
            return [(tr, _optuna_params(tr, self.space)) for tr in trials]
        if self.method == "dh-cbo":
            # Inactive conditional hyperparameters come back as NaN.
            return [(c, {k: v for k, v in c.items() if k in self.space and v == v})
                    for c in self.search.ask(n)]
        return self.hebo.ask(n)

    def tell(self, handle, params: dict, v: float) -> None:
        if self.method.startswith("optuna"):
            self.study.tell(handle, v if v == v else None,
                            state=None if v == v else self.optuna.trial.TrialState.FAIL)
        elif self.method == "dh-cbo":
            self.search.tell([(handle, v if v == v else "F")])
        else:
            self.hebo.tell(handle, v)


class _Hebo:
    """HEBO (the NeurIPS 2020 black-box optimization challenge's winner) on a
    ConfigSpace space without conditions: reals, integers, categoricals."""

    def __init__(self, space, seed: int) -> None:
        import pandas as pd
        from ConfigSpace import (
            CategoricalHyperparameter,
            OrdinalHyperparameter,
            UniformFloatHyperparameter,
            UniformIntegerHyperparameter,
        )
        from hebo.design_space.design_space import DesignSpace
        from hebo.optimizers.hebo import HEBO

        if space.conditions:
            raise NotImplementedError("hebo: conditional spaces")
        dims = []
        for hp in space.values():
            if isinstance(hp, UniformFloatHyperparameter):
                dims.append({"name": hp.name, "type": "pow" if hp.log else "num", "lb": hp.lower, "ub": hp.upper})
            elif isinstance(hp, UniformIntegerHyperparameter):
                dims.append({"name": hp.name, "type": "pow_int" if hp.log else "int", "lb": hp.lower,
                             "ub": hp.upper})
            elif isinstance(hp, CategoricalHyperparameter):
                dims.append({"name": hp.name, "type": "cat", "categories": list(hp.choices)})
            elif isinstance(hp, OrdinalHyperparameter):
                dims.append({"name": hp.name, "type": "cat", "categories": list(hp.sequence)})
            else:
                raise NotImplementedError(type(hp).__name__)
        np.random.seed(seed)
        import torch

        torch.manual_seed(seed)
        self.pd = pd
        self.ints = {hp.name for hp in space.values() if isinstance(hp, UniformIntegerHyperparameter)}
        self.opt = HEBO(DesignSpace().parse(dims), scramble_seed=seed)

    def ask(self, n: int) -> list[tuple]:
        df = self.opt.suggest(n_suggestions=n)
        out = []
        for i in range(len(df)):
            row = df.iloc[[i]]
            params = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].to_dict().items()}
            params = {k: int(round(v)) if k in self.ints else v for k, v in params.items()}  # HEBO hands floats
            out.append((row, params))
        return out

    def tell(self, row, v: float) -> None:
        # HEBO minimizes; a failure is told as nothing.
        if v == v:
            self.opt.observe(row, np.array([[-v]]))


def run_peer(method: str, function: str, seed: int, evals: int, batch: int, path: str = "batch",
             duration: str = DURATION, cost: str = "measured") -> dict:
    """Runs inside the peer interpreter (optuna, deephyper, HEBO installed)."""
    import heapq
    import warnings

    warnings.filterwarnings("ignore")
    mod = tasks.load(function)
    values: list[float] = []
    spent = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        peer = _PeerAdapter(method, mod.problem.space, seed, tmp)
        spent += time.perf_counter() - t
        if path == "batch":
            while len(values) < evals:
                t = time.perf_counter()
                asked = peer.ask(min(batch, evals - len(values)))
                spent += time.perf_counter() - t
                results = [(h, p, _objective(mod.run(p))) for h, p in asked]
                t = time.perf_counter()
                for h, p, v in results:
                    peer.tell(h, p, v)
                spent += time.perf_counter() - t
                values += [v for _, _, v in results]
        else:
            # Asynchronous: ``batch`` workers, the earliest finisher told and
            # answered with one new configuration; compute on the clock.
            from ambs.simulate import parse_duration, parse_master_cost

            dist = parse_duration(duration)
            fixed = parse_master_cost(cost)
            rng = np.random.default_rng([seed, 0x51])
            now, heap, k = 0.0, [], 0

            def submit(n: int) -> None:
                nonlocal now, spent, k
                t = time.perf_counter()
                asked = peer.ask(n)
                dt = time.perf_counter() - t
                spent += dt
                now += dt if fixed is None else fixed.step
                for h, p in asked:
                    heapq.heappush(heap, (now + dist.sample(rng), k, h, p))
                    k += 1

            submit(min(batch, evals))
            while heap:
                finish, _, h, p = heapq.heappop(heap)
                now = max(now, finish)
                v = _objective(mod.run(p))
                values.append(v)
                t = time.perf_counter()
                peer.tell(h, p, v)
                dt = time.perf_counter() - t
                spent += dt
                now += dt if fixed is None else fixed.step
                if k < evals:
                    submit(1)
    return {"trace": _trace(values), "seconds": spent}


def _peer_subprocess(python: str, method: str, function: str, seed: int, evals: int, batch: int,
                     path: str, duration: str, cost: str = "measured") -> dict:
    res = subprocess.run([python, os.path.abspath(__file__), "--peer-worker", method, function, str(seed),
                          str(evals), str(batch), path, duration, cost], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"{method} on {function}: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _result_path(save: str | None, method: str, function: str, seed: int, evals: int, batch: int,
                 path: str = "batch", duration: str = DURATION, cost: str = "measured") -> str | None:
    if not save:
        return None
    if path == "batch":
        folder = f"{function}-{evals}x{batch}"
    else:
        folder = f"{function}-{evals}w{batch}-async-{duration.replace(':', '_').replace(',', '_')}"
        if cost != "measured":  # fixed master seconds: runs that repeat exactly, kept apart
            folder += f"-cost_{cost.replace(',', '_')}"
    return os.path.join(save, folder, f"{method}-seed{seed}.json")


def _base(method: str) -> str:
    """The method a run name stands for (a name may carry ``--label`` after it)."""
    if method in OWN or method in PEERS:
        return method
    return max((m for m in OWN if method.startswith(m)), key=len)


def _one(job: tuple) -> tuple:
    method, function, seed, evals, batch, peer_python, save, reuse, options, kind, duration, fit, cost = job
    path = _result_path(save, method, function, seed, evals, batch, kind, duration, cost)
    if reuse and path and os.path.exists(path):
        with open(path) as fh:
            return method, function, kind, seed, json.load(fh)
    if reuse == "only":
        return method, function, kind, seed, None
    run_as = _base(method)
    if run_as in PEERS:
        out = _peer_subprocess(peer_python, run_as, function, seed, evals, batch, kind, duration, cost)
    elif kind == "async":
        out = run_own_async(run_as, function, seed, evals, batch, duration, options, fit, cost)
    else:
        out = run_own(run_as, function, seed, evals, batch, options)
    if len(out["trace"]) < evals:  # stopped early (a signal to the run): not a result to keep
        raise RuntimeError(f"{method} on {function}, seed {seed}: {len(out['trace'])} of {evals} evaluations")
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            json.dump(out, fh)
        os.replace(path + ".tmp", path)
    return method, function, kind, seed, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", nargs="+", default=FUNCTIONS,
                    help="shipped problems (ackley, ...), test functions in D dimensions (ackley-20, "
                         "rosenbrock-50), scikit-learn tasks (sk-svm-wine), or suite (bench/tasks.py)")
    ap.add_argument("--methods", nargs="+", default=["ambs", "random"])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time")
    ap.add_argument("--peer-python", default=None, help="interpreter with optuna and deephyper")
    ap.add_argument("--json", default=None)
    ap.add_argument("--save", default=None, metavar="DIR",
                    help="write each run's trace to DIR/<function>-<evals>x<batch>/<method>-seed<k>.json")
    ap.add_argument("--reuse", nargs="*", default=None, metavar="METHOD",
                    help="take these methods' runs (all, without names) from --save instead of running them "
                         "(deterministic per seed: the peers, to rerun only this package's methods)")
    ap.add_argument("--saved-only", action="store_true",
                    help="never run the --reuse methods: their medians are over the seeds saved")
    ap.add_argument("--ambs", nargs="+", default=[], metavar="KEY=VALUE",
                    help="options for the ambs methods, e.g. kappa=1.0 liar=cl_min (values parsed as Python literals)")
    ap.add_argument("--label", default=None,
                    help="name the ambs methods' runs METHOD+LABEL in the table and --save (runs with --ambs options)")
    ap.add_argument("--paths", nargs="+", default=["batch", "async"], choices=PATHS,
                    help="batch: ask/tell in batches; async: the real driver with --batch simulated "
                         "workers (default: both)")
    ap.add_argument("--duration", default=DURATION,
                    help=f"the async path's evaluation times, as for ambs simulate (default: {DURATION})")
    ap.add_argument("--fit", default="background", choices=["background", "sync"],
                    help="the async path's fits: in the background as ambs search does (default), or before "
                         "each proposal (ambs search --fit sync); label runs with sync fits")
    ap.add_argument("--master-cost", default="measured", metavar="COST",
                    help="the async path's master time: measured (default), or STEP,FIT fixed seconds per "
                         "master step and per fit, which makes runs repeat exactly (as ambs simulate --master-cost)")
    ap.add_argument("--verify", default=None, metavar="DIR",
                    help="run again and compare every trace with the one DIR holds (from --save): exit 1 "
                         "when one differs or is missing")
    ap.add_argument("--compare", nargs=2, default=None, metavar=("A", "B"),
                    help="with random search among --methods: the difference of A's and B's mean normalized "
                         "scores, with a bootstrap interval over the seeds")
    ap.add_argument("--peer-worker", nargs=8, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.functions = tasks.expand(args.functions)
    if args.peer_worker:
        m, f, s, e, b, kind, dur, cost = args.peer_worker
        print(json.dumps(run_peer(m, f, int(s), int(e), int(b), kind, dur, cost)))
        return
    if args.verify and (args.save or args.reuse is not None):
        ap.error("--verify runs everything again: it takes neither --save nor --reuse")
    if any(m in PEERS for m in args.methods) and not args.peer_python:
        ap.error("peers need --peer-python")
    if args.reuse is not None and not args.save:
        ap.error("--reuse needs --save")
    if args.compare and not {"random", *args.compare} <= set(args.methods):
        ap.error("--compare A B needs random, A and B among --methods")
    # A labelled run name (ambs+rank) stands for saved runs: tables side by side.
    unknown = [m for m in args.methods if m not in OWN + PEERS
               and not (args.saved_only and "+" in m and m.split("+")[0] in OWN)]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)} (choose from {', '.join(OWN + PEERS)})")

    def reused(m: str) -> bool:
        return args.reuse is not None and (not args.reuse or m in args.reuse)

    from ambs.errors import AmbsError
    from ambs.search.ambs_options import AMBSOptions
    from ambs.simulate import parse_duration, parse_master_cost

    try:
        parse_duration(args.duration)
        parse_master_cost(args.master_cost)
    except AmbsError as exc:
        ap.error(str(exc))
    known = {f.name for f in dataclasses.fields(AMBSOptions)}
    options = {}
    for kv in args.ambs:
        key, sep, value = kv.partition("=")
        if not sep:
            ap.error(f"--ambs takes KEY=VALUE, got {kv!r}")
        if key not in known:
            ap.error(f"--ambs: AMBS has no option {key!r} (options: {', '.join(sorted(known))})")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value

    def name(m: str) -> str:
        return m + args.label if args.label and m.startswith("ambs") else m

    jobs = [(name(m), f, s, args.evals, args.batch, args.peer_python, args.save,
             ("only" if args.saved_only else True) if reused(m) else False,
             options, kind, args.duration, args.fit, args.master_cost)
            for f in args.functions for m in args.methods for kind in args.paths for s in range(args.seeds)
            if not (kind == "async" and m in BATCH_ONLY)]
    results: dict[tuple[str, str, str], list[dict]] = {}
    differ = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for job, (method, function, kind, _seed, out) in zip(jobs, pool.map(_one, jobs)):
            runs = results.setdefault((function, method, kind), [])
            if out is not None:
                runs.append(out)
            if args.verify:
                differ += _verify(job, out, args.verify)
    if args.verify:
        print(f"{len(jobs) - len(differ)} of {len(jobs)} traces reproduced exactly"
              + "".join(f"\n  differs: {d}" for d in differ))
    checkpoints = [c for c in CHECKPOINTS if c < args.evals] + [args.evals]
    head = " ".join(f"{'@' + str(c):>10}" for c in checkpoints)
    print(f"median simple regret (best objective where no optimum is known) over {args.seeds} seeds, "
          f"{args.evals} evaluations; batch: batches of {args.batch}; async: {args.batch} workers, {args.duration}")
    print(f"{'function':<11} {'method':<16} {'path':<6} {'seeds':>5} {head} {'opt s/run':>9}")
    table = []
    for function in args.functions:
        optimum = getattr(tasks.load(function), "OPTIMUM", None)
        for method in args.methods:
            for kind in args.paths:
                runs = results.get((function, name(method), kind))
                if not runs:
                    continue
                row = {"function": function, "method": name(method), "path": kind, "seeds": len(runs),
                       "seconds": float(np.median([r["seconds"] for r in runs]))}
                cells = []
                for c in checkpoints:
                    best = np.array([_at(r, c) for r in runs])
                    val = float(np.median(optimum - best)) if optimum is not None else float(np.median(best))
                    row[f"at{c}"] = val
                    cells.append(f"{val:>10.4g}")
                table.append(row)
                print(f"{function:<11} {name(method):<16} {kind:<6} {len(runs):>5} {' '.join(cells)} "
                      f"{row['seconds']:>9.2f}", flush=True)
    scores = normalized_scores(results, args.functions, [name(m) for m in args.methods], args.paths, checkpoints)
    if scores:
        print(f"normalized score (0: random search's mean best, 100: the best any run found), mean over "
              f"{len(scores['tasks'])} tasks without a known optimum, at {', '.join(map(str, checkpoints))} evaluations")
        for (method, kind), row in scores["methods"].items():
            print(f"  {method:<16} {kind:<6} " + " ".join(f"{row.get(c, float('nan')):>7.1f}" for c in checkpoints))
        for kind in args.paths if args.compare else ():
            a, b = ((name(m), kind) for m in args.compare)
            if a not in scores["per_seed"] or b not in scores["per_seed"]:
                continue
            for c in checkpoints:
                d, lo, hi, ahead = difference_interval(scores, a, b, c)
                print(f"  {a[0]} - {b[0]} ({kind}) @{c}: {d:+.1f}, 90% interval {lo:+.1f} to {hi:+.1f} "
                      f"(seeds resampled), {a[0]} ahead in {ahead:.0%} of 4000 draws")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table if not scores else {"rows": table, "normalized": _jsonable(scores)}, fh, indent=1)
    if differ:
        sys.exit(1)


def _at(run: dict, c: int) -> float:
    """The best value after ``c`` evaluations; a run that ended sooner (a finite
    space exhausted: k-NN's 100 configurations) keeps its last best."""
    trace = run["trace"]
    return trace[min(c, len(trace)) - 1]


def normalized_scores(results: dict, functions: list[str], methods: list[str], paths: list[str],
                      checkpoints: list[int]) -> dict | None:
    """The NeurIPS 2020 black-box optimization challenge's score on the tasks
    without a known optimum: per task, a run's best after c evaluations as
    100 * (best - R) / (B - R), R the mean over seeds of random search's best
    after c evaluations, B the best value any run of any method reached;
    averaged over seeds, then over tasks (a task where R is already B has no
    score at c). None without random search's runs."""
    scored = [f for f in functions if getattr(tasks.load(f), "OPTIMUM", None) is None]
    per: dict = {}  # (method, path) -> checkpoint -> task -> score
    seeds: dict = {}  # the same -> each seed's score (for difference_interval)
    for f in scored:
        for kind in paths:
            rand = results.get((f, "random", kind))
            mine = {m: results.get((f, m, kind)) for m in methods}
            if not rand or not all(mine.values()):
                continue
            top = max(max(r["trace"][-1] for r in runs) for runs in mine.values())
            for c in checkpoints:
                base = float(np.mean([_at(r, c) for r in rand]))
                span = top - base
                if span <= 1e-9 * max(1.0, abs(top)):
                    continue  # random search's mean is already the best: no score
                for m, runs in mine.items():
                    each = np.array([100 * (_at(r, c) - base) / span for r in runs])
                    per.setdefault((m, kind), {}).setdefault(c, {})[f] = float(each.mean())
                    seeds.setdefault((m, kind), {}).setdefault(c, {})[f] = each
    if not per:
        return None
    return {"tasks": sorted({f for row in per.values() for byc in row.values() for f in byc}),
            "methods": {k: {c: float(np.mean(list(v.values()))) for c, v in row.items()} for k, row in per.items()},
            "per_task": per, "per_seed": seeds}


def difference_interval(scores: dict, a: tuple, b: tuple, c: int, draws: int = 4000,
                        seed: int = 0) -> tuple[float, float, float, float]:
    """How far apart the mean normalized scores of ``a`` and ``b`` ((method,
    path) keys of :func:`normalized_scores`) are at ``c`` evaluations, beyond
    seed noise: each task's seeds of both resampled (a bootstrap; random
    search's mean stays the origin). Returns the difference, its 90% interval
    and the share of draws in which ``a`` is ahead."""
    rng = np.random.default_rng(seed)
    per = scores["per_seed"]
    tasks_ = [t for t in per[a][c] if t in per[b][c]]
    diff = np.zeros(draws)
    for t in tasks_:
        x, y = per[a][c][t], per[b][c][t]
        diff += x[rng.integers(0, len(x), (draws, len(x)))].mean(axis=1)
        diff -= y[rng.integers(0, len(y), (draws, len(y)))].mean(axis=1)
    diff /= len(tasks_)
    point = float(np.mean([per[a][c][t].mean() - per[b][c][t].mean() for t in tasks_]))
    lo, hi = np.percentile(diff, [5, 95])
    return point, float(lo), float(hi), float(np.mean(diff > 0))


def _jsonable(scores: dict) -> dict:
    return {"tasks": scores["tasks"],
            "methods": {f"{m} {k}": row for (m, k), row in scores["methods"].items()},
            "per_task": {f"{m} {k}": {str(c): v for c, v in row.items()} for (m, k), row in scores["per_task"].items()}}


def _verify(job: tuple, out: dict | None, saved_in: str) -> list[str]:
    """``[]`` when the run's trace equals the saved one, else what differs."""
    method, function, seed, evals, batch, _, _, _, _, kind, duration, _, cost = job
    path = _result_path(saved_in, method, function, seed, evals, batch, kind, duration, cost)
    where = f"{method} {function} {kind} seed {seed}"
    if not path or not os.path.exists(path):
        return [f"{where}: nothing saved at {path}"]
    with open(path) as fh:
        saved = json.load(fh)["trace"]
    got = out["trace"] if out else None

    def same(a: float, b: float) -> bool:  # NaN equals NaN; the last bits of a library's math may differ
        return (a != a and b != b) or abs(a - b) <= 1e-12 * max(abs(a), abs(b))

    if got is not None and len(got) == len(saved) and all(same(a, b) for a, b in zip(got, saved)):
        return []
    first = next((i for i, (a, b) in enumerate(zip(got or [], saved)) if not same(a, b)), None)
    return [f"{where}: first differs at evaluation {first + 1 if first is not None else '?'}"]


if __name__ == "__main__":
    main()
