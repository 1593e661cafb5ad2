"""Warm starts: how many evaluations AMBS saves when it is told an earlier run of a related problem.

A warm-started search is AMBS with its defaults whose first action is
``search.warm(observations)``, the observations being what
:func:`ambs.warmstart.load_warm_start` reads back from the earlier run's
directory (the path ``ambs search --warm-start RUN_DIR`` takes). The earlier
run is a real run directory: an AMBS run of the same length, written through
:class:`ambs.recorder.Recorder`. Told observations are not evaluations: every
search below gets ``--evals`` evaluations of its own, proposed in batches of
``--batch`` through ask/tell (the batch path of ``bench/quality.py``: a fit
before each batch, so that a run is a pure function of its seed).

Problems, each new task next to the earlier one it is warm-started from:

* ``<function>`` (a test function of ``problems/``): the new task is the
  function shifted by 5% of each dimension's range, f(x - delta) (delta
  points away from the upper bound where the optimum would leave the box;
  the optimum value is unchanged); the earlier run is on the unshifted
  function. "Unrelated": an earlier run on a random-looking function (a sum
  of random cosines) over the same names and bounds, its values mapped onto
  the same range as the function's (5th and 95th percentiles of uniform
  samples), so that its results weigh as much as real ones would.
* ``svm``: an SVC on scikit-learn's bundled digits (C, gamma, kernel, degree
  as in ``problems/digits_svm.py``), objective the accuracy on a stratified
  half held out for validation; the new task splits with seed ``s``, the
  earlier run used split seed ``s + 100``. "Unrelated": the earlier run
  tuned the same space on the breast-cancer data (standardized). Run for
  ``--learning-evals`` evaluations (each fit takes 0.05 to 0.25 s). The SVM
  is saturated: cold runs reach their split's best after about 25.
* ``tree``: a regression tree on scikit-learn's diabetes data (the decision
  tree space of ``bench/tasks.py``), objective the R^2 on a random half held
  out; the earlier run on split ``s + 100``; "unrelated": a classification
  tree on breast cancer over the same space.
* ``tree-cv``: the same space on a new version of the data: a random 90% of
  diabetes' rows (version ``s``), objective the mean 5-fold cross-validated
  R^2 (folds shuffled with ``s``); the earlier run on version ``s + 100``
  (another 90%, other folds); "unrelated": a classification tree on a
  version of breast cancer. A half split's validation score on 221 rows is
  mostly noise (random configurations' scores on two splits agree with
  Spearman's rho 0.07 to 0.53), so ``tree`` says little about what an
  earlier run can pass on; cross-validated versions agree with rho 0.71 to 0.80.

Methods: ``cold`` (no earlier run); ``warm`` (``AMBS.warm`` with the related
earlier run and AMBS's defaults: a forest of the earlier results becomes an
input of every fit, seen by half of the new forest's trees, and the earlier
best configurations take half of the initial design);
``warm-all`` (the same, the earlier best taking all of the design:
``warm_design=1.0``); ``warm-prior`` (none of it: ``warm_design=0``);
``warm-sighted`` (every tree sees the prior: ``warm_blind=0``, the default
before 0.5); ``tell`` (the earlier behaviour: the earlier results
told as data, the initial design dropped); the same three with
``-unrelated`` after an unrelated earlier run; and ``initial-best`` /
``initial-best-unrelated``: nothing told, the earlier run's 10 best
configurations evaluated first (``--initial-configs``; they count as
evaluations), then AMBS as in a cold run.

Seeds: the new search uses seed ``s``; the related earlier run ``1000 + s``,
the unrelated one ``2000 + s``. Regret: the optimum minus the best objective
so far (for ``svm``: the best validation accuracy any run of that seed
reached on its split minus the best so far). Reported: median regret over
seeds at 25, 50, 100 and 200 evaluations; the first evaluation count at
which a method's median regret reaches cold's median at the end of the run;
for the unrelated earlier runs, the difference of the final medians against
cold beside the seed spread (interquartile ranges, and a one-sided
Mann-Whitney p-value for "worse than cold").

    .venv/bin/python bench/warmstart.py [--functions hartmann6 ackley levy svm] [--seeds 10]
        [--evals 200] [--learning-evals 100] [--save bench/results/warmstart] [--reuse] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ambs import AMBS, Problem  # noqa: E402
from ambs.recorder import Recorder, RunInfo, columns_for  # noqa: E402
from ambs.result import Evaluation, Status  # noqa: E402
from ambs.warmstart import load_initial_configs, load_warm_start  # noqa: E402

# Where each test function's maximum lies (to keep the shifted optimum inside the box).
ARGMAX: dict[str, list[float]] = {
    "hartmann6": [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573],
    "ackley": [0.0] * 5,
    "levy": [1.0] * 10,
    "griewank": [0.0] * 8,
    "rosenbrock": [1.0] * 5,
}
LEARNING = ["svm", "tree", "tree-cv"]
PROBLEMS = list(ARGMAX) + LEARNING
METHODS = ["cold", "warm", "warm-all", "warm-prior", "warm-sighted", "tell", "initial-best", "warm-unrelated",
           "warm-all-unrelated", "warm-prior-unrelated", "warm-sighted-unrelated", "tell-unrelated",
           "initial-best-unrelated"]
WARM_DESIGN = {"warm-all": 1.0, "warm-prior": 0.0}  # the earlier best's share of the design (else the default)
WARM_BLIND = {"warm-sighted": 0.0}  # the share of trees blind to the prior (else the default, 0.5)
N_BEST = 10  # configurations of the earlier run that initial-best evaluates first
CHECKPOINTS = (25, 50, 100, 200)
SHIFT = 0.05  # of each dimension's range
OLD_SEED, UNRELATED_SEED = 1000, 2000  # added to the seed of the new search
SPLIT_OFFSET = 100  # the earlier run's split seed, added to the new one's
VERSION_SHARE = 0.9  # tree-cv: the share of the rows in a version of the data


@dataclass
class Task:
    """A search space and the function that scores a configuration (higher is better)."""

    name: str
    problem: Problem
    run: Callable[[dict[str, Any]], float]
    optimum: float | None = None


# ------------------------------------------------------------------ test functions
def _box(problem: Problem) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, lower and upper bounds of a space of real hyperparameters."""
    names = list(problem.space.keys())
    lo = np.array([problem.space[n].lower for n in names], dtype=float)
    hi = np.array([problem.space[n].upper for n in names], dtype=float)
    return names, lo, hi


def function_task(function: str) -> Task:
    """A shipped test function as it is."""
    mod = importlib.import_module(f"problems.{function}")
    return Task(function, mod.problem, lambda c: float(mod.run(c)), float(mod.OPTIMUM))


def shifted_task(function: str, fraction: float = SHIFT) -> Task:
    """The function moved by ``fraction`` of each range: f(x - delta); delta
    is negative along a dimension where the optimum would leave the box."""
    base = function_task(function)
    names, lo, hi = _box(base.problem)
    delta = fraction * (hi - lo)
    delta = np.where(np.asarray(ARGMAX[function]) + delta > hi, -delta, delta)

    def run(config: dict[str, Any]) -> float:
        return base.run({n: float(config[n]) - d for n, d in zip(names, delta)})

    return Task(f"{function}-shifted", base.problem, run, base.optimum)


def unrelated_task(function: str, terms: int = 32, samples: int = 4096) -> Task:
    """A random-looking function over the same names and bounds (a sum of
    random cosines, about two periods across the box), its values mapped
    onto the function's range (5th and 95th percentiles of uniform samples)."""
    base = function_task(function)
    names, lo, hi = _box(base.problem)
    d = len(names)
    rng = np.random.default_rng([0x3A7, d])
    w = rng.normal(0.0, 2.5 / d, size=(terms, d)) * 2 * np.pi
    b = rng.uniform(0.0, 2 * np.pi, size=terms)

    def raw(u: np.ndarray) -> np.ndarray:
        return np.cos(u @ w.T + b).sum(axis=-1) / math.sqrt(terms)

    u = rng.random((samples, d))
    g = raw(u)
    f = np.array([base.run(dict(zip(names, lo + x * (hi - lo)))) for x in u])
    (g5, g95), (f5, f95) = np.percentile(g, [5, 95]), np.percentile(f, [5, 95])
    scale = (f95 - f5) / (g95 - g5)

    def run(config: dict[str, Any]) -> float:
        x = np.array([float(config[n]) for n in names])
        return float(f5 + scale * (raw((x - lo) / (hi - lo)) - g5))

    return Task(f"{function}-unrelated", base.problem, run, None)


# ------------------------------------------------------------------ learning problem
_DATA: dict[tuple[str, int], tuple[np.ndarray, ...]] = {}


@functools.cache
def _bundled(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """A data set bundled with scikit-learn (digits, diabetes, breast_cancer),
    digits' pixels scaled to [0, 1], the others as shipped."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

    loader = {"digits": load_digits, "diabetes": load_diabetes, "breast_cancer": load_breast_cancer}[dataset]
    X, y = loader(return_X_y=True)
    return (X / 16.0 if dataset == "digits" else X), y


def _split(dataset: str, seed: int) -> tuple[np.ndarray, ...]:
    """A half-and-half train/validation split of a bundled data set (stratified for classes),
    breast cancer's features standardized, digits' scaled to [0, 1], diabetes' as shipped."""
    key = (dataset, seed)
    if key not in _DATA:
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        X, y = _bundled(dataset)
        Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.5, stratify=None if dataset == "diabetes" else y,
                                          random_state=seed)
        if dataset == "breast_cancer":  # digits: scaled by _bundled; diabetes: scaled as shipped
            scaler = StandardScaler().fit(Xt)
            Xt, Xv = scaler.transform(Xt), scaler.transform(Xv)
        _DATA[key] = (Xt, Xv, yt, yv)
    return _DATA[key]


def svm_problem() -> Problem:
    """The space of ``problems/digits_svm.py`` without ``shrinking`` (which
    changes the fit time, not the model)."""
    problem = Problem(name="svm_split")
    problem.add_hyperparameter((1e-2, 1e3, "log-uniform"), "C", default_value=1.0)
    problem.add_hyperparameter((1e-5, 1e-1, "log-uniform"), "gamma", default_value=1e-3)
    problem.add_hyperparameter(["rbf", "poly", "sigmoid"], "kernel", default_value="rbf")
    problem.add_hyperparameter((2, 5), "degree", default_value=3)
    problem.add_condition("degree", "kernel", "poly")
    return problem


def svm_task(dataset: str, split_seed: int) -> Task:
    """Validation accuracy of an SVC on one split of ``dataset`` (digits or breast_cancer)."""

    def run(config: dict[str, Any]) -> float:
        from sklearn.svm import SVC

        Xt, Xv, yt, yv = _split(dataset, split_seed)
        model = SVC(C=config["C"], gamma=config["gamma"], kernel=config["kernel"],
                    degree=config.get("degree", 3))
        return float(model.fit(Xt, yt).score(Xv, yv))

    return Task(f"svm-{dataset}-split{split_seed}", svm_problem(), run, None)


def tree_problem() -> Problem:
    """A decision tree's space as in the real-task suite (``bench/tasks.py``: Bayesmark's ranges)."""
    problem = Problem(name="tree_split")
    problem.add_hyperparameter((1, 15), "max_depth")
    problem.add_hyperparameter((0.01, 0.99, "log-uniform"), "min_samples_split")
    problem.add_hyperparameter((0.01, 0.49, "log-uniform"), "min_samples_leaf")
    problem.add_hyperparameter((0.01, 0.49, "log-uniform"), "min_weight_fraction_leaf")
    problem.add_hyperparameter((0.01, 0.99, "log-uniform"), "max_features")
    problem.add_hyperparameter((0.0, 0.5), "min_impurity_decrease")
    return problem


def tree_task(dataset: str, split_seed: int) -> Task:
    """Validation score of a decision tree on one split of ``dataset``: R^2 of a
    regression tree on diabetes, accuracy of a classification tree on breast_cancer."""

    def run(config: dict[str, Any]) -> float:
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        Xt, Xv, yt, yv = _split(dataset, split_seed)
        kind = DecisionTreeRegressor if dataset == "diabetes" else DecisionTreeClassifier
        return float(kind(random_state=0, **config).fit(Xt, yt).score(Xv, yv))

    return Task(f"tree-{dataset}-split{split_seed}", tree_problem(), run, None)


@functools.cache
def _version(dataset: str, seed: int, share: float = VERSION_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """A version of a bundled data set: a random ``share`` of its rows (seeded),
    as a data set grows or is cleaned between searches."""
    X, y = _bundled(dataset)
    rows = np.random.default_rng([0x5EED, seed]).permutation(len(y))[: int(share * len(y))]
    return X[rows], y[rows]


def tree_cv_task(dataset: str, version: int) -> Task:
    """Mean 5-fold cross-validated score of a decision tree on one version of
    ``dataset`` (folds shuffled with the version's seed): R^2 on diabetes,
    accuracy on breast_cancer. Two versions' scores of random configurations
    agree with Spearman's rho 0.71 to 0.80 on diabetes (300 random configurations,
    versions 0-2 against 100-102), against 0.07 to 0.53 for ``tree``'s
    half-and-half validation splits."""

    def run(config: dict[str, Any]) -> float:
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        X, y = _version(dataset, version)
        regression = dataset == "diabetes"
        kind = DecisionTreeRegressor if regression else DecisionTreeClassifier
        folds = (KFold if regression else StratifiedKFold)(5, shuffle=True, random_state=version)
        return float(cross_val_score(kind(random_state=0, **config), X, y, cv=folds).mean())

    return Task(f"tree-cv-{dataset}-v{version}", tree_problem(), run, None)


def tasks_for(problem: str, seed: int) -> tuple[Task, Task, Task]:
    """The new task, the related earlier one and the unrelated earlier one."""
    if problem == "tree-cv":
        return (tree_cv_task("diabetes", seed), tree_cv_task("diabetes", seed + SPLIT_OFFSET),
                tree_cv_task("breast_cancer", seed))
    if problem == "tree":
        return (tree_task("diabetes", seed), tree_task("diabetes", seed + SPLIT_OFFSET),
                tree_task("breast_cancer", seed))
    if problem == "svm":
        return (svm_task("digits", seed), svm_task("digits", seed + SPLIT_OFFSET),
                svm_task("breast_cancer", seed))
    return shifted_task(problem), function_task(problem), unrelated_task(problem)


# ------------------------------------------------------------------ runs
def search_run(task: Task, seed: int, evals: int, batch: int,
               observations: list[tuple[dict[str, Any], float]] | None = None, how: str = "warm",
               initial: list[dict[str, Any]] | None = None, recorder: Recorder | None = None) -> dict[str, Any]:
    """One AMBS run of ``evals`` evaluations in batches: the objectives in
    the order evaluated, and the seconds spent inside tell and ask.

    ``observations`` are given first (``how``: ``warm`` or ``warm-all``,
    through ``AMBS.warm``; ``tell``: told as data); ``initial`` configurations
    are evaluated first and counted (``--initial-configs``: held by the search,
    the rest of their batches asked)."""
    t = time.perf_counter()
    settings = {k: v for k, v in (("warm_design", WARM_DESIGN.get(how)), ("warm_blind", WARM_BLIND.get(how)))
                if v is not None}  # the rest: AMBS's defaults
    search = AMBS(task.problem, random_state=seed, **settings)
    if observations and how == "tell":
        search.tell(observations)
        search.initial = search.initial[:0]
    elif observations:
        search.warm(observations)
    queue = list(initial or [])
    search.hold(queue)
    spent = time.perf_counter() - t
    values: list[float] = []
    while len(values) < evals:
        n = min(batch, evals - len(values))
        configs, queue = queue[:n], queue[n:]
        t = time.perf_counter()
        configs += search.ask(n - len(configs))
        spent += time.perf_counter() - t
        results = [(c, task.run(c)) for c in configs]
        t = time.perf_counter()
        search.tell(results)
        spent += time.perf_counter() - t
        for c, v in results:
            if recorder is not None:
                ok = math.isfinite(v)
                recorder.append(Evaluation(job_id=len(values), config=c, objective=v if ok else math.nan,
                                           status=Status.OK if ok else Status.FAILED))
            values.append(v)
    return {"values": values, "seconds": spent, "told": len(observations or [])}


def earlier_run(task: Task, seed: int, evals: int, batch: int, run_dir: Path) -> list[tuple[dict[str, Any], float]]:
    """Write an AMBS run of ``task`` to ``run_dir`` as a run directory, and
    read it back the way ``--warm-start`` does."""
    info = RunInfo(problem=f"bench/warmstart.py:{task.name}", problem_name=task.name,
                   fingerprint=task.problem.fingerprint(), method="ambs",
                   columns=columns_for(task.problem.hyperparameter_names, []),
                   settings={"method": "ambs", "seed": seed, "max_evals": evals, "batch": batch},
                   space=task.problem.space)
    recorder = Recorder(run_dir, info)
    try:
        search_run(task, seed, evals, batch, recorder=recorder)
    finally:
        recorder.close()
    ws = load_warm_start([run_dir], task.problem.space)
    if ws.dropped or ws.read != evals:
        raise RuntimeError(f"{task.name}: {ws.summary([str(run_dir)])} (expected all {evals} told)")
    return ws.observations


def _trace(values: list[float]) -> list[float]:
    """Best objective so far after each evaluation (NaN until a finite one)."""
    best, out = -math.inf, []
    for v in values:
        if math.isfinite(v) and v > best:
            best = v
        out.append(best if math.isfinite(best) else math.nan)
    return out


def _run_file(save: str | None, problem: str, evals: int, batch: int, method: str, seed: int) -> Path | None:
    if not save:
        return None
    return Path(save) / "runs" / f"{problem}-{evals}x{batch}" / f"{method}-seed{seed}.json"


def runs_of_seed(problem: str, seed: int, evals: int, batch: int, methods: list[str], save: str | None,
                 reuse: bool) -> dict[str, dict[str, Any]]:
    """Every method's run on the new task of ``seed`` (from ``--save`` with ``--reuse``)."""
    out: dict[str, dict[str, Any]] = {}
    todo = []
    for m in methods:
        path = _run_file(save, problem, evals, batch, m, seed)
        if reuse and path is not None and path.exists():
            out[m] = json.loads(path.read_text())
        else:
            todo.append(m)
    if not todo:
        return out
    new, related, unrelated = tasks_for(problem, seed)
    earlier: dict[str, list[tuple[dict[str, Any], float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if any(m != "cold" and "unrelated" not in m for m in todo):
            earlier["related"] = earlier_run(related, OLD_SEED + seed, evals, batch, Path(tmp) / "related")
        if any("unrelated" in m for m in todo):
            earlier["unrelated"] = earlier_run(unrelated, UNRELATED_SEED + seed, evals, batch,
                                               Path(tmp) / "unrelated")
    for m in todo:
        obs = None if m == "cold" else earlier["unrelated" if "unrelated" in m else "related"]
        if m.startswith("initial-best"):
            assert obs is not None
            best = [c for c, _ in sorted(obs, key=lambda o: -o[1])[:N_BEST]]
            run = search_run(new, seed, evals, batch, initial=load_initial_configs(best, new.problem.space))
        else:
            run = search_run(new, seed, evals, batch, obs, how=m.removesuffix("-unrelated"))
        run = {"trace": _trace(run["values"]), "seconds": run["seconds"], "told": run["told"]}
        out[m] = run
        path = _run_file(save, problem, evals, batch, m, seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_path = path.with_suffix(".tmp")
            tmp_path.write_text(json.dumps(run))
            os.replace(tmp_path, path)
    return out


# ------------------------------------------------------------------ summary
def _first_reach(curve: np.ndarray, target: float) -> int | None:
    """The first evaluation count (1-based) at which ``curve`` is at or below ``target``."""
    hit = np.nonzero(curve <= target)[0]
    return int(hit[0]) + 1 if len(hit) else None


def _iqr(values: np.ndarray) -> float:
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1)


def summarize(problem: str, runs: dict[int, dict[str, dict[str, Any]]], methods: list[str],
              evals: int) -> dict[str, Any]:
    """Median regret curves, checkpoints, evaluations to reach cold's final
    median, and the unrelated earlier runs against cold."""
    seeds = sorted(runs)
    optimum = function_task(problem).optimum if problem not in LEARNING else None
    regret: dict[str, np.ndarray] = {}
    reference = {}
    for s in seeds:
        # Without a known optimum: the best any run of this seed reached on its task.
        reference[s] = optimum if optimum is not None else max(r["trace"][-1] for r in runs[s].values())
    for m in methods:
        regret[m] = np.array([[reference[s] - v for v in runs[s][m]["trace"]] for s in seeds])
    checkpoints = [c for c in CHECKPOINTS if c < evals] + [evals]
    cold_final = float(np.median(regret["cold"][:, -1])) if "cold" in regret else None
    out: dict[str, Any] = {"problem": problem, "seeds": len(seeds), "evals": evals, "methods": {}}
    for m in methods:
        r = regret[m]
        median = np.median(r, axis=0)
        row: dict[str, Any] = {
            "at": {str(c): float(median[c - 1]) for c in checkpoints},
            "final": [float(v) for v in r[:, -1]],
            "final_iqr": _iqr(r[:, -1]),
            "seconds": float(np.median([runs[s][m]["seconds"] for s in seeds])),
            "told": int(np.median([runs[s][m]["told"] for s in seeds])),
            "median_curve": [float(v) for v in median],
        }
        if cold_final is not None:
            row["evals_to_cold_final"] = _first_reach(median, cold_final)
            per_seed = [_first_reach(r[i], cold_final) for i in range(len(seeds))]
            row["per_seed_evals_to_cold_final"] = per_seed
            reached = sorted(n for n in per_seed if n is not None)
            row["seeds_reaching"] = len(reached)
            # Median over seeds, a seed that never reaches it counted as after the end.
            row["per_seed_median"] = float(np.median([n if n is not None else math.inf for n in per_seed]))
        out["methods"][m] = row
    if cold_final is not None:
        from scipy.stats import mannwhitneyu

        for m in methods:
            if "unrelated" not in m:
                continue
            a, c = regret[m][:, -1], regret["cold"][:, -1]
            out["methods"][m]["against_cold"] = {
                "difference": float(np.median(a) - np.median(c)),
                "cold_iqr": _iqr(c), "iqr": _iqr(a),
                "within_noise": bool(np.median(a) - np.median(c) <= _iqr(c)),
                "p_worse": float(mannwhitneyu(a, c, alternative="greater").pvalue),
            }
    return out


def _g(v: float | None) -> str:
    if v is None:
        return "never"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return f"{v:.4g}"


def tables(summaries: list[dict[str, Any]]) -> str:
    """The markdown tables of all problems."""
    lines = []
    for s in summaries:
        checkpoints = list(s["methods"][next(iter(s["methods"]))]["at"])
        lines += [f"**{s['problem']}** (median regret over {s['seeds']} seeds, {s['evals']} evaluations "
                  f"in batches)", "",
                  "| method | told | " + " | ".join(f"@{c}" for c in checkpoints)
                  + f" | evals to cold's @{s['evals']} median | seeds reaching it (median evals) | opt s/run |",
                  "|---|---|" + "---|" * len(checkpoints) + "---|---|---|"]
        for m, row in s["methods"].items():
            cells = " | ".join(_g(row["at"][c]) for c in checkpoints)
            reach = _g(row.get("evals_to_cold_final"))
            seeds = f"{row.get('seeds_reaching', '')}/{s['seeds']} ({_g(row.get('per_seed_median'))})"
            lines.append(f"| {m} | {row['told']} | {cells} | {reach} | {seeds} | {row['seconds']:.2f} |")
        lines.append("")
    rows = [(s, m, row["against_cold"]) for s in summaries for m, row in s["methods"].items()
            if "against_cold" in row]
    if rows:
        lines += ["**Unrelated earlier runs against cold** (final regret: medians over seeds, interquartile "
                  "ranges in brackets; within noise: the difference is at most cold's IQR)", "",
                  "| problem | method | cold | warm from unrelated | difference | within seed noise | "
                  "p (worse, Mann-Whitney) |", "|---|---|---|---|---|---|---|"]
        for s, m, a in rows:
            cold = s["methods"]["cold"]
            lines.append(f"| {s['problem']} | {m} | {_g(cold['at'][str(s['evals'])])} [{_g(a['cold_iqr'])}] | "
                         f"{_g(s['methods'][m]['at'][str(s['evals'])])} [{_g(a['iqr'])}] | "
                         f"{a['difference']:+.4g} | {'yes' if a['within_noise'] else 'no'} | {a['p_worse']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", nargs="+", default=["hartmann6", "ackley", "levy", "svm"], choices=PROBLEMS,
                    help="test functions of problems/ (shifted); svm (the digits SVM on another split), tree "
                         "(a regression tree on diabetes, on another split) and tree-cv (the same "
                         "cross-validated on another version of the data)")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=200, help="evaluations of each test-function run")
    ap.add_argument("--learning-evals", type=int, default=100, help="evaluations of each svm and tree(-cv) run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--save", default=None, metavar="DIR",
                    help="write each run's trace to DIR/runs/<problem>-<evals>x<batch>/<method>-seed<k>.json, "
                         "and table.md to DIR")
    ap.add_argument("--reuse", action="store_true", help="take the runs already in --save instead of rerunning them")
    ap.add_argument("--json", default=None, metavar="FILE")
    args = ap.parse_args()
    if args.reuse and not args.save:
        ap.error("--reuse needs --save")
    methods = list(dict.fromkeys(["cold", *args.methods]))  # cold is every comparison's baseline
    t0 = time.perf_counter()
    summaries = []
    for problem in args.functions:
        evals = args.learning_evals if problem in LEARNING else args.evals
        runs = {}
        for seed in range(args.seeds):
            t = time.perf_counter()
            runs[seed] = runs_of_seed(problem, seed, evals, args.batch, methods, args.save, args.reuse)
            print(f"{problem} seed {seed}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        summaries.append(summarize(problem, runs, methods, evals))
        print(tables(summaries[-1:]), flush=True)
    text = tables(summaries)
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        (Path(args.save) / "table.md").write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "problems": summaries}, indent=1))


if __name__ == "__main__":
    main()
