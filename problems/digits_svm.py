"""A real learning problem: an RBF support-vector classifier on scikit-learn's
bundled 8x8 digits (1,797 images, 10 classes; nothing is downloaded).

The objective is the mean 3-fold cross-validated accuracy (higher is
better); the fit time is reported as metadata.
"""

from __future__ import annotations

import time

from ambs import Problem

problem = Problem(name="digits_svm")
problem.add_hyperparameter((1e-2, 1e3, "log-uniform"), "C", default_value=1.0)
problem.add_hyperparameter((1e-5, 1e-1, "log-uniform"), "gamma", default_value=1e-3)
problem.add_hyperparameter(["rbf", "poly", "sigmoid"], "kernel", default_value="rbf")
problem.add_hyperparameter((2, 5), "degree", default_value=3)
problem.add_condition("degree", "kernel", "poly")
problem.add_hyperparameter([True, False], "shrinking", default_value=True)
problem.add_metadata("fit_seconds")

_DATA = None


def _data():
    global _DATA
    if _DATA is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        _DATA = (X / 16.0, y)
    return _DATA


def run(config: dict) -> dict:
    """Cross-validated accuracy of an SVC with this configuration."""
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    X, y = _data()
    t = time.perf_counter()
    model = SVC(
        C=config["C"], gamma=config["gamma"], kernel=config["kernel"],
        degree=config.get("degree", 3), shrinking=config["shrinking"],
    )
    acc = cross_val_score(model, X, y, cv=3).mean()
    return {"objective": float(acc), "fit_seconds": time.perf_counter() - t}


if __name__ == "__main__":
    t0 = time.perf_counter()
    out = run(problem.default_configuration)
    print(f"objective {out['objective']:.4f} in {time.perf_counter() - t0:.2f} s")
