"""In-training early stopping: best validation accuracy against the training epochs spent.

On the torch problems ``mlp_digits`` (20 epochs a full training) and
``cnn_digits`` (15), every method gets the same total of training epochs
(``--epochs``, by default 20 full trainings' worth) and one evaluation runs at
a time, so that the x-axis is epochs, not wall time. A run stops once its
epochs are spent; an evaluation that ends past the budget does not count.

Methods of this package, each through :func:`ambs.run_search` with the serial
evaluator (read back from the run's ``results.csv`` in finish order):

* ``random``, ``ambs``: every configuration trained in full, no stop rule.
* ``ambs-median``, ``ambs-lce``: AMBS with ``stop_rule="median"`` / ``"lce"``
  (:mod:`ambs.stopping`), on the reports ``run`` makes after each epoch.
* ``ambs-<variant>``: AMBS with a stop rule made with other settings, and
  AMBS's own settings, as ``VARIANTS`` lists them (what the search is told about
  a stopped evaluation, what the median rule compares with, kappa).
* ``asha-retrain``: ASHA (eta 3, the problem's budget range) where a promotion
  trains again from scratch (``checkpoints=False``).
* ``asha-continue``: ASHA where a promotion continues from the checkpoint of
  the rung below and trains only the extra epochs (``checkpoints=True``; needs
  a ``run_search`` that takes ``checkpoints``).

AMBS fits before each proposal (``fit="sync"``), so that a seed reproduces;
with one evaluation at a time a background fit that keeps up sees the same.

Peers, run by another interpreter that has them (``--peer-python``; they are
benchmark-only dependencies, as for ``bench/quality.py``), on the very same
``run`` of the shipped problem, whose ``report(step, value)`` callback is
adapted to each peer's pruning interface, so that the trainings are identical:

* ``optuna-tpe-median``: Optuna's TPESampler with MedianPruner (defaults).
* ``optuna-tpe-hyperband``: TPESampler with HyperbandPruner (resources 1 to
  the full epochs, reduction factor 3).
* ``dh-cbo-lce``: DeepHyper's CBO (random forest, UCB kappa 1.96, cl_max,
  10,000 sampled candidates, as in ``bench/quality.py``) with its
  learning-curve stopper ``LCModelStopper`` (the mmf4 model, fitted by MCMC
  with numpyro: jax and numpyro must be in the peers' environment), checked at
  epochs 1, 3 and 9 (``reduction_factor=3``; the first two by its outlier test
  against the others at that epoch, epoch 9 by the extrapolation) besides its
  patience rule (a quarter of the epochs without improvement). Its default,
  the extrapolation after every epoch, costs 3 to 4 s of MCMC per epoch on a
  shared 2-core machine, several times the epoch itself: 327 s for a
  100-epoch run of mlp_digits, against 61 s with ``reduction_factor=3``.

Epochs spent by an evaluation: ``m:epochs_trained`` where the problem reports
it (a continued training counts only its own epochs), else ``m:epochs``, the
last epoch reached (a stopped training reports where it stopped). A stopped
evaluation's objective (the validation accuracy where it stopped; for a pruned
Optuna trial its last reported value) counts toward the best so far, for this
package and the peers alike.

Reported per problem and method, over the seeds (search seeds 0 to n-1; the
trainings are seeded on their own): the median best accuracy at 25, 50 and
100 % of the budget; the epochs to reach target A (the median final best of
``random``) and target B (that of ``ambs``), the median over seeds where a
majority of the seeds reached it ("—" otherwise), with the number of seeds
that did; target B's epochs over the budget; the median number of evaluations
and of those that ended before the full training (stopped, pruned, or ASHA's
lower rungs); the median wall seconds of a run.

    nice -n 15 .venv/bin/python bench/stopping.py [--problems mlp_digits cnn_digits] [--methods ...]
        [--seeds 3] [--epochs mlp_digits=400 cnn_digits=300] [--peer-python bench/.venv-peers/bin/python]
        [--save DIR [--reuse]] [--json FILE] [--table FILE]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

BUDGETS = {"mlp_digits": 400, "cnn_digits": 300}  # default epochs per run: 20 full trainings
# AMBS with a stop rule made with other settings than its defaults, and AMBS's own
# settings: ambs-<variant> -> (rule, its settings, AMBS's settings).
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "median-worst": ("median", {"tell": "worst"}, {}),
    "median-scaled": ("median", {"tell": "scaled"}, {}),
    "median-finished": ("median", {"against": "finished"}, {}),
    "median-finished-worst": ("median", {"against": "finished", "tell": "worst"}, {}),
    "median-finished-k2": ("median", {"against": "finished"}, {"kappa": 1.96}),
    "median-vizier": ("median", {"against": "finished", "vizier": True}, {}),
    "asha": ("asha", {"tell": "value"}, {}),
    "asha-scaled": ("asha", {"tell": "scaled"}, {}),
    "asha-scaled-eta2": ("asha", {"tell": "scaled", "eta": 2}, {}),
    "asha-scaled-from2": ("asha", {"tell": "scaled", "min_step": 2}, {}),
    "asha-scaled-eta4": ("asha", {"tell": "scaled", "eta": 4}, {}),
    "asha-lce-scaled": ("asha-lce", {"tell": "scaled"}, {}),
    "asha-lce-scaled-p20": ("asha-lce", {"tell": "scaled", "threshold": 0.2}, {}),
    "lce-worst": ("lce", {"tell": "worst"}, {}),
    "lce-scaled": ("lce", {"tell": "scaled"}, {}),
}
OWN = ["random", "ambs", "ambs-median", "ambs-lce", "asha-retrain", "asha-continue",
       *(f"ambs-{v}" for v in VARIANTS)]
PEERS = ["optuna-tpe-median", "optuna-tpe-hyperband", "dh-cbo-lce"]
MARKS = (0.25, 0.5, 1.0)
TARGETS = {"A": "random", "B": "ambs"}  # target: the median final best of this method
ENV = {"OMP_NUM_THREADS": "1", "AMBS_TORCH_DEVICE": "cpu", "JAX_PLATFORMS": "cpu",
       "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


class BudgetSpent(Exception):
    """Raised from a run's result callback once its epochs are spent: ends the run."""


def _number(cell: Any) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return math.nan


def spent_by(meta: dict[str, Any]) -> int:
    """Epochs an evaluation trained: ``epochs_trained`` when given, else ``epochs``."""
    for key in ("epochs_trained", "epochs"):
        v = _number(meta.get(key))
        if v == v:
            return int(v)
    return 0


def _full_epochs(problem: str) -> int:
    mod = importlib.import_module(f"problems.{problem}")
    return mod.problem.budget.whole(None)


# ------------------------------------------------------------------ own methods
def _own_options(method: str, problem: str) -> dict[str, Any]:
    """run_search's arguments for one of this package's methods."""
    if method == "random":
        return {"method": "random"}
    if method.startswith("ambs"):
        rule = method.partition("-")[2] or None
        if rule in VARIANTS:
            from ambs.stopping import make_rule

            name, settings, search = VARIANTS[rule]
            rule = make_rule(name, final_step=_full_epochs(problem), **settings)
            return {"method": "ambs", "fit": "sync", "fit_jobs": 1, "stop_rule": rule, **search}
        return {"method": "ambs", "fit": "sync", "fit_jobs": 1, "stop_rule": rule}
    from ambs import run_search

    if "checkpoints" not in inspect.signature(run_search).parameters:
        if method == "asha-continue":
            raise RuntimeError("asha-continue needs run_search(checkpoints=...), which this ambs lacks")
        return {"method": "asha"}  # no checkpoints: every promotion retrains
    return {"method": "asha", "checkpoints": method == "asha-continue"}


def run_own(method: str, problem: str, seed: int, budget: int) -> dict[str, Any]:
    """One run of this package's method until ``budget`` epochs are spent."""
    import pandas as pd

    from ambs import run_search

    spent = [0]

    def count(ev: Any) -> None:
        spent[0] += spent_by(ev.metadata)
        if spent[0] >= budget:
            raise BudgetSpent

    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        try:
            res = run_search(f"problems.{problem}", evaluator="serial", max_evals=100_000, output=out, seed=seed,
                             quiet=True, on_result=count, **_own_options(method, problem))
        except BudgetSpent:
            pass
        else:  # a signal, or a search out of configurations, ended it first
            reason = res.summary.stop_reason if res is not None else "no result"
            raise RuntimeError(f"the run ended after {spent[0]} epochs: {reason}")
        data = pd.read_csv(os.path.join(out, "results.csv"))
    seconds = time.perf_counter() - t
    col = "m:epochs_trained" if "m:epochs_trained" in data else "m:epochs"
    ok = data["status"] == "ok"
    return {"epochs": [int(v) if v == v else 0 for v in data[col].map(_number)],
            "reached": [int(v) if v == v else 0 for v in data["m:epochs"].map(_number)],
            "values": [float(v) if k else math.nan for v, k in zip(data["objective"].map(_number), ok)],
            "seconds": seconds}


# ------------------------------------------------------------------------ peers
def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value the problem's ``run`` expects."""
    return v.item() if hasattr(v, "item") else v


def _optuna(method: str, mod: Any, seed: int, budget: int, full: int) -> dict[str, list]:
    import optuna
    from quality import _optuna_params

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if method == "optuna-tpe-median":
        pruner: Any = optuna.pruners.MedianPruner()
    else:
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=full, reduction_factor=3)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=pruner)
    rows: dict[str, list] = {"epochs": [], "reached": [], "values": []}
    while sum(rows["epochs"]) < budget:
        trial = study.ask()
        params = _optuna_params(trial, mod.problem.space)
        pruned = [False]

        def report(step: int, value: float, trial: Any = trial, pruned: list = pruned) -> bool:
            trial.report(value, step)
            pruned[0] = trial.should_prune()
            return pruned[0]

        out = mod.run(params, None, report)
        v = float(out["objective"])
        if pruned[0]:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, v if v == v else None, state=None if v == v else optuna.trial.TrialState.FAIL)
        rows["epochs"].append(spent_by(out))
        rows["reached"].append(int(out["epochs"]))
        rows["values"].append(v)
    return rows


def _deephyper(mod: Any, seed: int, budget: int, full: int, tmp: str) -> dict[str, list]:
    from deephyper.evaluator import Evaluator
    from deephyper.evaluator.callback import Callback
    from deephyper.hpo import CBO, HpProblem
    from deephyper.stopper import LCModelStopper

    space = mod.problem.space
    rows: dict[str, list] = {"epochs": [], "reached": [], "values": []}

    class Spent(Callback):
        """Ends the search once the epochs are spent (checked after each gather)."""

        search_stopped = False

        def on_done(self, job: Any) -> None:
            self.search_stopped = sum(rows["epochs"]) >= budget

    async def run(job: Any) -> dict[str, Any]:
        params = {k: _plain(v) for k, v in job.parameters.items() if k in space and v == v}

        def report(step: int, value: float) -> bool:
            job.record(step, value)
            return bool(job.stopped())

        out = mod.run(params, None, report)
        rows["epochs"].append(spent_by(out))
        rows["reached"].append(int(out["epochs"]))
        rows["values"].append(float(out["objective"]))
        return {"objective": float(out["objective"]), "metadata": {"epochs": int(out["epochs"])}}

    evaluator = Evaluator.create(run, method="serial", method_kwargs={"num_workers": 1, "callbacks": [Spent()]})
    search = CBO(HpProblem(config_space=space), random_state=seed, log_dir=tmp, surrogate_model="RF",
                 acq_func="UCB", acq_func_kwargs={"kappa": 1.96}, acq_optimizer="sampling",
                 acq_optimizer_kwargs={"n_points": 10000}, multi_point_strategy="cl_max",
                 checkpoint_history_to_csv=False,
                 stopper=LCModelStopper(max_steps=full, reduction_factor=3, random_state=seed))
    search.search(evaluator, max_evals=-1)
    return rows


def run_peer(method: str, problem: str, seed: int, budget: int) -> dict[str, Any]:
    """Runs inside the peers' interpreter (optuna, deephyper, jax and numpyro installed)."""
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, HERE)  # bench/quality.py's space adapter
    mod = importlib.import_module(f"problems.{problem}")
    full = _full_epochs(problem)
    t = time.perf_counter()
    if method.startswith("optuna"):
        rows = _optuna(method, mod, seed, budget, full)
    elif method == "dh-cbo-lce":
        with tempfile.TemporaryDirectory() as tmp:
            rows = _deephyper(mod, seed, budget, full, tmp)
    else:
        raise ValueError(f"unknown peer {method!r}")
    return {**rows, "seconds": time.perf_counter() - t}


def _peer_subprocess(python: str, method: str, problem: str, seed: int, budget: int) -> dict[str, Any]:
    env = {**os.environ, **ENV, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([python, os.path.abspath(__file__), "--peer-worker", method, problem, str(seed),
                          str(budget)], capture_output=True, text=True, cwd=ROOT, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{method} on {problem}: {res.stderr.strip().splitlines()[-3:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- traces
def best_at(run: dict[str, Any], epochs: float) -> float:
    """The best accuracy among the evaluations finished within ``epochs`` epochs (NaN: none)."""
    best, spent = -math.inf, 0
    for e, v in zip(run["epochs"], run["values"]):
        spent += e
        if spent > epochs:
            break
        if v == v:
            best = max(best, v)
    return best if best > -math.inf else math.nan


def epochs_to(run: dict[str, Any], target: float, budget: int) -> float:
    """Epochs spent when an evaluation first reached ``target`` (inf: not within ``budget``)."""
    spent = 0
    for e, v in zip(run["epochs"], run["values"]):
        spent += e
        if spent > budget:
            break
        if v == v and v >= target - 1e-9:
            return float(spent)
    return math.inf


def within(run: dict[str, Any], budget: int) -> int:
    """Evaluations that finished within the budget."""
    return int(np.searchsorted(np.cumsum(run["epochs"]), budget, side="right"))


def summarize(problem: str, budget: int, full: int, runs: dict[str, list[dict]]) -> dict[str, Any]:
    """The table's rows for one problem: ``runs`` maps a method to its runs (one per seed)."""
    targets = {}
    for name, method in TARGETS.items():
        if runs.get(method):
            targets[name] = float(np.median([best_at(r, budget) for r in runs[method]]))
    rows = []
    for method, rs in runs.items():
        if not rs:
            continue
        row: dict[str, Any] = {"method": method, "seeds": len(rs)}
        for m in MARKS:
            row[f"at{int(m * 100)}"] = float(np.median([best_at(r, m * budget) for r in rs]))
        for name, target in targets.items():
            reach = [epochs_to(r, target, budget) for r in rs]
            hits = sum(math.isfinite(x) for x in reach)
            med = float(np.median(reach)) if hits * 2 > len(rs) else None
            row[f"to{name}"], row[f"hits{name}"] = med, hits
        if row.get("toB") is not None:
            row["ratioB"] = row["toB"] / budget
        n = [within(r, budget) for r in rs]
        row["evals"] = float(np.median(n))
        row["short"] = float(np.median([sum(x < full for x in r["reached"][:k]) for r, k in zip(rs, n)]))
        row["seconds"] = float(np.median([r["seconds"] for r in rs]))
        rows.append(row)
    return {"problem": problem, "budget": budget, "full_epochs": full, "targets": targets, "rows": rows}


def markdown(table: dict[str, Any]) -> str:
    """One problem's table in markdown."""
    b, t = table["budget"], table["targets"]
    names = ["method", *(f"@{int(m * b)}" for m in MARKS), *(f"epochs to {k} ({t[k]:.4f})" for k in t),
             *(["B / budget"] if "B" in t else []), "evals", "ended early", "s/run"]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for r in table["rows"]:
        cells = [f"{v:.4f}" if (v := r[f"at{int(m * 100)}"]) == v else "—" for m in MARKS]  # NaN: none finished
        for k in t:
            n = f"({r[f'hits{k}']}/{r['seeds']})"
            cells.append(f"{r[f'to{k}']:.0f} {n}" if r[f"to{k}"] is not None else f"— {n}")
        if "B" in t:
            cells.append(f"{r['ratioB']:.2f}" if r.get("ratioB") is not None else "—")
        cells += [f"{r['evals']:.0f}", f"{r['short']:.0f}", f"{r['seconds']:.0f}"]
        lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _budgets(specs: list[str], problems: list[str]) -> dict[str, int]:
    """``--epochs``: ``NAME=N`` per problem, or one ``N`` for all."""
    out = {p: BUDGETS.get(p, 400) for p in problems}
    for spec in specs:
        name, sep, n = spec.rpartition("=")
        for p in ([name] if sep else problems):
            out[p] = int(n)
    return out


def _saved(save: str | None, problem: str, budget: int, method: str, seed: int) -> str | None:
    return os.path.join(save, f"{problem}-{budget}", f"{method}-seed{seed}.json") if save else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    ap.add_argument("--methods", nargs="+", default=OWN, choices=OWN + PEERS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", nargs="+", default=[], metavar="[PROBLEM=]N",
                    help="training epochs each run may spend (default: mlp_digits=400 cnn_digits=300)")
    ap.add_argument("--peer-python", default=None, help="interpreter with optuna, deephyper, jax and numpyro")
    ap.add_argument("--save", default=None, metavar="DIR",
                    help="write each run to DIR/<problem>-<epochs>/<method>-seed<k>.json")
    ap.add_argument("--reuse", action="store_true", help="take the runs already in --save instead of rerunning")
    ap.add_argument("--json", default=None, metavar="FILE", help="every run's trace and the tables")
    ap.add_argument("--table", default=None, metavar="FILE", help="the tables in markdown")
    ap.add_argument("--peer-worker", nargs=4, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    for k, v in ENV.items():
        os.environ.setdefault(k, v)
    if args.peer_worker:
        m, p, s, b = args.peer_worker
        print(json.dumps(run_peer(m, p, int(s), int(b))))
        return
    if any(m in PEERS for m in args.methods) and not args.peer_python:
        ap.error("peers need --peer-python")
    if args.reuse and not args.save:
        ap.error("--reuse needs --save")
    try:
        budgets = _budgets(args.epochs, args.problems)
    except ValueError:
        ap.error("--epochs takes N or PROBLEM=N")
    tables, traces = [], []
    for problem in args.problems:
        budget, full = budgets[problem], _full_epochs(problem)
        runs: dict[str, list[dict]] = {}
        for method in args.methods:
            for seed in range(args.seeds):
                path = _saved(args.save, problem, budget, method, seed)
                if args.reuse and path and os.path.exists(path):
                    with open(path) as fh:
                        out = json.load(fh)
                else:
                    try:
                        if method in PEERS:
                            out = _peer_subprocess(args.peer_python, method, problem, seed, budget)
                        else:
                            out = run_own(method, problem, seed, budget)
                    except RuntimeError as exc:
                        print(f"{problem} {method} seed {seed}: not run: {exc}", file=sys.stderr, flush=True)
                        break
                    if path:
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        with open(path + ".tmp", "w") as fh:
                            json.dump(out, fh)
                        os.replace(path + ".tmp", path)
                print(f"{problem} {method} seed {seed}: best {best_at(out, budget):.4f}, "
                      f"{within(out, budget)} evaluations, {out['seconds']:.0f} s", file=sys.stderr, flush=True)
                runs.setdefault(method, []).append(out)
                traces.append({"problem": problem, "method": method, "seed": seed, "budget": budget, **out})
        table = summarize(problem, budget, full, runs)
        tables.append(table)
        print(f"\n{problem}: {budget} epochs per run ({budget // full} full trainings of {full}), "
              f"medians over {args.seeds} seeds\n\n{markdown(table)}\n", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"tables": tables, "runs": traces}, fh, indent=1)
    if args.table:
        with open(args.table, "w") as fh:
            for table in tables:
                b, f = table["budget"], table["full_epochs"]
                fh.write(f"### {table['problem']}: {b} epochs per run ({b // f} full trainings of {f}), "
                         f"medians over {args.seeds} seeds\n\n{markdown(table)}\n\n")


if __name__ == "__main__":
    main()
