"""Gradient-boosted trees on scikit-learn's bundled Wisconsin breast-cancer
data (569 tumours, 30 features, benign or malignant; nothing is downloaded).

The objective is the mean accuracy of a 5-fold cross-validation, stratified
and shuffled with a fixed seed (higher is better; always answering
"benign" scores 0.627); each fold is scored on tumours the model did not
see. The boosting is seeded too (row and feature subsampling), so a
configuration gives the same objective twice.

The budget is the number of boosting stages (10 to 200): ``run(config)``
fits 200.

Run ``python -m problems.gb_breast_cancer`` to evaluate the default configuration.
"""

from __future__ import annotations

import time

from ambs import Problem

SEED = 2024

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


def run(config: dict, budget: float | None = None) -> dict:
    """Cross-validated accuracy with ``budget`` boosting stages (200 if None)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    stages = problem.budget.whole(budget)
    X, y = _data()
    model = GradientBoostingClassifier(
        n_estimators=stages,
        learning_rate=config["learning_rate"],
        max_depth=config["max_depth"],
        min_samples_leaf=config["min_samples_leaf"],
        subsample=config["subsample"],
        max_features=None if config["max_features"] == "all" else config["max_features"],
        loss=config["loss"],
        random_state=SEED,
    )
    t = time.perf_counter()
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    acc = cross_val_score(model, X, y, cv=folds)
    return {"objective": float(acc.mean()), "n_estimators": stages,
            "fit_seconds": time.perf_counter() - t, "accuracy_std": float(acc.std())}


if __name__ == "__main__":
    t0 = time.perf_counter()
    out = run(problem.default_configuration)
    print(f"gb_breast_cancer: default configuration {problem.default_configuration}")
    print(f"objective {out['objective']:.4f} in {time.perf_counter() - t0:.2f} s ({out})")
