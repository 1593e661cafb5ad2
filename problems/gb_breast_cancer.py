"""Gradient-boosted trees on scikit-learn's bundled Wisconsin breast-cancer
data (569 tumours, 30 features, benign or malignant; nothing is downloaded).

The objective is the mean accuracy of a 5-fold cross-validation, stratified
and shuffled with a fixed seed (higher is better; always answering
"benign" scores 0.627); each fold is scored on tumours the model did not
see. The boosting is seeded too (row and feature subsampling), so a
configuration gives the same objective twice.

The budget is the number of boosting stages (10 to 200): ``run(config)``
fits 200. The five models grow 10 stages at a time (``warm_start``), and
``run`` reports the cross-validated accuracy after each 10 and stops when
told to (``ambs search --stop-rule``); ``n_estimators`` records the stages
it reached.

Run ``python -m problems.gb_breast_cancer`` to evaluate the default configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ambs import Problem

SEED = 2024
CHUNK = 10  # boosting stages between reports

problem = Problem(name="gb_breast_cancer")
problem.add_hyperparameter((1e-3, 1.0, "log-uniform"), "learning_rate", default_value=0.1)
problem.add_hyperparameter((1, 8), "max_depth", default_value=3)
problem.add_hyperparameter((1, 50, "log-uniform"), "min_samples_leaf", default_value=1)
problem.add_hyperparameter((0.3, 1.0), "subsample", default_value=1.0)
problem.add_hyperparameter(["sqrt", "log2", "all"], "max_features", default_value="all")
problem.add_hyperparameter(["log_loss", "exponential"], "loss", default_value="log_loss")
problem.set_budget(10, 200, "n_estimators")
problem.add_metadata("n_estimators", "fit_seconds", "accuracy_std")

_DATA = None


def _data():
    global _DATA
    if _DATA is None:
        from sklearn.datasets import load_breast_cancer

        _DATA = load_breast_cancer(return_X_y=True)
    return _DATA


def run(config: dict, budget: float | None = None, report: Callable[[int, float], bool] | None = None) -> dict:
    """Cross-validated accuracy with ``budget`` boosting stages (200 if None).
    ``report``: called with (stages, cross-validated accuracy) every 10 stages;
    boosting stops when it returns True."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    stages = problem.budget.whole(budget)
    X, y = _data()
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED).split(X, y))
    models = [GradientBoostingClassifier(
        n_estimators=0,
        learning_rate=config["learning_rate"],
        max_depth=config["max_depth"],
        min_samples_leaf=config["min_samples_leaf"],
        subsample=config["subsample"],
        max_features=None if config["max_features"] == "all" else config["max_features"],
        loss=config["loss"],
        random_state=SEED,
        warm_start=True,  # each fit adds stages to the ones already there
    ) for _ in folds]
    t = time.perf_counter()
    done, acc = 0, np.zeros(len(folds))
    while done < stages:  # in steps of CHUNK stages, with or without reports: the same model
        done = min(done + CHUNK, stages)
        for i, (model, (train, test)) in enumerate(zip(models, folds)):
            model.set_params(n_estimators=done).fit(X[train], y[train])
            acc[i] = model.score(X[test], y[test])
        if report is not None and report(done, float(acc.mean())):
            break
    return {"objective": float(acc.mean()), "n_estimators": done,
            "fit_seconds": time.perf_counter() - t, "accuracy_std": float(acc.std())}

if __name__ == "__main__":
    t0 = time.perf_counter()
    out = run(problem.default_configuration)
    print(f"gb_breast_cancer: default configuration {problem.default_configuration}")
    print(f"objective {out['objective']:.4f} in {time.perf_counter() - t0:.2f} s ({out})")
