"""Search quality: simple regret of AMBS, random search and peers on test functions.

Each run proposes ``--evals`` configurations in batches of ``--batch`` through
ask/tell (ask a batch, evaluate it, tell it), as a master with ``--batch``
free workers would. Simple regret = the function's optimum minus the best
objective found (objectives are maximized, so regret >= 0, lower is better).
Reported: the median over seeds at 50, 100 and 200 evaluations, and the
median optimizer seconds per run (time inside ask and tell).

Methods of this package: ``ambs`` (defaults; fitted before each batch),
``ambs-lag`` (the model one batch behind, as a background fit leaves it),
``ambs-refit`` (constant liar by refitting the forest once per lie, the
textbook form), ``random``. Peers, run with another interpreter that has
them (``--peer-python``; optuna and deephyper are benchmark-only
dependencies): ``optuna-tpe`` (TPESampler, constant liar), ``optuna-gp``
(GPSampler), ``dh-cbo`` (DeepHyper CBO: random forest, UCB kappa 1.96,
cl_max, 10,000 sampled candidates).

    .venv/bin/python bench/quality.py [--functions ...] [--methods ...] [--seeds 10]
        [--peer-python bench/.venv-peers/bin/python] [--jobs 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FUNCTIONS = ["ackley", "branin", "griewank", "hartmann6", "levy", "rosenbrock", "mixed"]
OWN = ["ambs", "ambs-lag", "ambs-refit", "random"]
PEERS = ["optuna-tpe", "optuna-gp", "dh-cbo"]
CHECKPOINTS = (50, 100, 200)


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
    from ambs import AMBS, RandomSearch

    mod = importlib.import_module(f"problems.{function}")
    options = dict(options or {})
    if method == "random":
        search = RandomSearch(mod.problem, random_state=seed)
    elif method == "ambs-refit":
        search = AMBS(mod.problem, random_state=seed, lie_mode="refit", **options)
    else:
        search = AMBS(mod.problem, random_state=seed, **options)
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


def run_peer(method: str, function: str, seed: int, evals: int, batch: int) -> dict:
    """Runs inside the peer interpreter (optuna, deephyper installed)."""
    import warnings

    warnings.filterwarnings("ignore")
    mod = importlib.import_module(f"problems.{function}")
    space = mod.problem.space
    values: list[float] = []
    spent = 0.0
    if method.startswith("optuna"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        if method == "optuna-tpe":
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        else:
            sampler = optuna.samplers.GPSampler(seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        while len(values) < evals:
            t = time.perf_counter()
            trials = [study.ask() for _ in range(min(batch, evals - len(values)))]
            params = [_optuna_params(tr, space) for tr in trials]
            spent += time.perf_counter() - t
            for tr, p in zip(trials, params):
                v = _objective(mod.run(p))
                t = time.perf_counter()
                study.tell(tr, v if v == v else None,
                           state=None if v == v else optuna.trial.TrialState.FAIL)
                spent += time.perf_counter() - t
                values.append(v)
    else:
        from deephyper.hpo import CBO, HpProblem

        hp = HpProblem(config_space=space)
        with tempfile.TemporaryDirectory() as tmp:
            search = CBO(hp, random_state=seed, log_dir=tmp, surrogate_model="RF", acq_func="UCB",
                         acq_func_kwargs={"kappa": 1.96}, acq_optimizer="sampling",
                         acq_optimizer_kwargs={"n_points": 10000}, multi_point_strategy="cl_max",
                         checkpoint_history_to_csv=False)
            while len(values) < evals:
                t = time.perf_counter()
                configs = search.ask(min(batch, evals - len(values)))
                spent += time.perf_counter() - t
                # Inactive conditional hyperparameters come back as NaN.
                results = [(c, _objective(mod.run({k: v for k, v in c.items() if k in space and v == v})))
                           for c in configs]
                t = time.perf_counter()
                search.tell([(c, v if v == v else "F") for c, v in results])
                spent += time.perf_counter() - t
                values += [v for _, v in results]
    return {"trace": _trace(values), "seconds": spent}


def _peer_subprocess(python: str, method: str, function: str, seed: int, evals: int, batch: int) -> dict:
    res = subprocess.run([python, os.path.abspath(__file__), "--peer-worker", method, function, str(seed),
                          str(evals), str(batch)], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"{method} on {function}: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _result_path(save: str | None, method: str, function: str, seed: int, evals: int, batch: int) -> str | None:
    if not save:
        return None
    return os.path.join(save, f"{function}-{evals}x{batch}", f"{method}-seed{seed}.json")


def _one(job: tuple) -> tuple:
    method, function, seed, evals, batch, peer_python, save, reuse, options = job
    path = _result_path(save, method, function, seed, evals, batch)
    if reuse and path and os.path.exists(path):
        with open(path) as fh:
            return method, function, seed, json.load(fh)
    if reuse == "only":
        return method, function, seed, None
    if method in PEERS:
        out = _peer_subprocess(peer_python, method, function, seed, evals, batch)
    else:
        out = run_own(method, function, seed, evals, batch, options)
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            json.dump(out, fh)
        os.replace(path + ".tmp", path)
    return method, function, seed, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", nargs="+", default=FUNCTIONS)
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
    ap.add_argument("--peer-worker", nargs=5, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_worker:
        m, f, s, e, b = args.peer_worker
        print(json.dumps(run_peer(m, f, int(s), int(e), int(b))))
        return
    if any(m in PEERS for m in args.methods) and not args.peer_python:
        ap.error("peers need --peer-python")
    if args.reuse is not None and not args.save:
        ap.error("--reuse needs --save")

    def reused(m: str) -> bool:
        return args.reuse is not None and (not args.reuse or m in args.reuse)

    from ambs import AMBS

    known = set(inspect.signature(AMBS).parameters) - {"problem", "random_state"}
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
    jobs = [(m, f, s, args.evals, args.batch, args.peer_python, args.save,
             ("only" if args.saved_only else True) if reused(m) else False, options)
            for f in args.functions for m in args.methods for s in range(args.seeds)]
    results: dict[tuple[str, str], list[dict]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for method, function, _seed, out in pool.map(_one, jobs):
            runs = results.setdefault((function, method), [])
            if out is not None:
                runs.append(out)
    checkpoints = [c for c in CHECKPOINTS if c <= args.evals]
    head = " ".join(f"{'@' + str(c):>10}" for c in checkpoints)
    print(f"median simple regret (best objective where no optimum is known) over {args.seeds} seeds, {args.evals} evaluations in batches of {args.batch}")
    print(f"{'function':<11} {'method':<11} {'seeds':>5} {head} {'opt s/run':>9}")
    table = []
    for function in args.functions:
        optimum = getattr(importlib.import_module(f"problems.{function}"), "OPTIMUM", None)
        for method in args.methods:
            runs = results[(function, method)]
            if not runs:
                continue
            row = {"function": function, "method": method, "seeds": len(runs),
                   "seconds": float(np.median([r["seconds"] for r in runs]))}
            cells = []
            for c in checkpoints:
                best = np.array([r["trace"][c - 1] for r in runs])
                val = float(np.median(optimum - best)) if optimum is not None else float(np.median(best))
                row[f"at{c}"] = val
                cells.append(f"{val:>10.4g}")
            table.append(row)
            print(f"{function:<11} {method:<11} {len(runs):>5} {' '.join(cells)} {row['seconds']:>9.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table, fh, indent=1)


if __name__ == "__main__":
    main()
