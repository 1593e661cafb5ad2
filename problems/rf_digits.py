"""A random forest on scikit-learn's bundled 8x8 digits (1,797 images of 64
pixels, 10 classes; nothing is downloaded).

The objective is the mean accuracy of a 3-fold cross-validation, stratified
and shuffled with a fixed seed (higher is better; chance is 0.1); each fold's
accuracy is measured on images the forest did not see. The forest is seeded
too, so a configuration gives the same objective twice.

The budget is the number of trees (10 to 200): ``run(config)`` grows 200.

Run ``python -m problems.rf_digits`` to evaluate the default configuration.
"""

from __future__ import annotations

import time

from ambs import Problem

SEED = 2024

problem = Problem(name="rf_digits")
problem.add_hyperparameter((2, 40, "log-uniform"), "max_depth", default_value=20)
problem.add_hyperparameter((2, 20), "min_samples_split", default_value=2)
problem.add_hyperparameter((1, 10), "min_samples_leaf", default_value=1)
problem.add_hyperparameter((0.02, 1.0, "log-uniform"), "max_features", default_value=0.125)
problem.add_hyperparameter(["gini", "entropy", "log_loss"], "criterion", default_value="gini")
problem.add_hyperparameter([True, False], "bootstrap", default_value=True)
problem.add_hyperparameter(["none", "balanced", "balanced_subsample"], "class_weight", default_value="none")
problem.set_budget(10, 200, "n_estimators")
problem.add_metadata("n_estimators", "fit_seconds", "accuracy_std")

_DATA = None


def _data():
    global _DATA
    if _DATA is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        _DATA = (X / 16.0, y)
    return _DATA


def run(config: dict, budget: float | None = None) -> dict:
    """Cross-validated accuracy of a forest of ``budget`` trees (200 if None)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    trees = problem.budget.whole(budget)
    X, y = _data()
    model = RandomForestClassifier(
        n_estimators=trees,
        max_depth=config["max_depth"],
        min_samples_split=config["min_samples_split"],
        min_samples_leaf=config["min_samples_leaf"],
        max_features=config["max_features"],
        criterion=config["criterion"],
        bootstrap=config["bootstrap"],
        class_weight=None if config["class_weight"] == "none" else config["class_weight"],
        random_state=SEED,
        n_jobs=1,
    )
    t = time.perf_counter()
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=SEED)
    acc = cross_val_score(model, X, y, cv=folds)
    return {"objective": float(acc.mean()), "n_estimators": trees,
            "fit_seconds": time.perf_counter() - t, "accuracy_std": float(acc.std())}


if __name__ == "__main__":
    t0 = time.perf_counter()
    out = run(problem.default_configuration)
    print(f"rf_digits: default configuration {problem.default_configuration}")
    print(f"objective {out['objective']:.4f} in {time.perf_counter() - t0:.2f} s ({out})")
