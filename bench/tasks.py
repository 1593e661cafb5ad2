"""What ``bench/quality.py`` searches, by name: a shipped problem, a test
function in more dimensions, or a real tuning task.

* ``ackley``, ``levy``, ...: the module ``problems/<name>.py`` as shipped.
* ``ackley-20``, ``rosenbrock-50``, ...: a dimension-generic shipped test
  function (Ackley, Griewank, Levy, Rosenbrock) in that many dimensions, same
  bounds and optimum, to see how the forest and the acquisition optimizer
  scale (issue: 20 and 50 dimensions).
* ``sk-<model>-<dataset>``: a scikit-learn model on a dataset bundled with
  scikit-learn (nothing is downloaded), objective its mean 3-fold
  cross-validated score (accuracy for classifiers, R^2 for regressors;
  higher is better), with the search spaces of the NeurIPS 2020 black-box
  optimization challenge's models (Bayesmark: decision tree, random forest,
  SVM, k-NN, AdaBoost, MLP, lasso, logistic regression), in their ranges.
  :data:`SUITE` is the suite ``quality.py --functions suite`` runs.

Every task is a namespace with ``problem`` (an :class:`ambs.Problem`), ``run``
and ``OPTIMUM`` (None where the optimum is unknown), like a shipped problem
module, so the same code runs them in this interpreter and in the peers'.
"""

from __future__ import annotations

import functools
import importlib
import types
import warnings
from typing import Any

import numpy as np

GENERIC = ("ackley", "griewank", "levy", "rosenbrock")  # test functions defined in any dimension
MODELS = ("dt", "rf", "svm", "knn", "ada", "mlp", "lasso", "logreg")
DATASETS = {  # name -> (loader, classification)
    "iris": ("load_iris", True),
    "wine": ("load_wine", True),
    "breast": ("load_breast_cancer", True),
    "digits": ("load_digits", True),
    "diabetes": ("load_diabetes", False),
}
# The real-task suite: 10 models x datasets, a cross-validated score each,
# chosen so that one evaluation takes well under a second on one core.
SUITE = [
    "sk-dt-wine", "sk-dt-breast", "sk-rf-wine", "sk-svm-breast", "sk-svm-wine",
    "sk-rf-diabetes", "sk-ada-wine", "sk-mlp-iris", "sk-dt-diabetes", "sk-logreg-breast",
]


def load(name: str) -> Any:
    """The task called ``name`` (see the module's docstring)."""
    if name.startswith("sk-"):
        return _sklearn_task(name)
    base, sep, dim = name.rpartition("-")
    if sep and dim.isdigit() and base in GENERIC:
        return _in_dimensions(base, int(dim))
    return importlib.import_module(f"problems.{name}")


def expand(names: list[str]) -> list[str]:
    """``suite`` stands for :data:`SUITE`."""
    out: list[str] = []
    for n in names:
        out += SUITE if n == "suite" else [n]
    return out


@functools.cache
def _in_dimensions(base: str, dim: int) -> types.SimpleNamespace:
    from ambs import Problem

    mod = importlib.import_module(f"problems.{base}")
    hp = mod.problem.space["x0"]
    f = getattr(mod, base)
    problem = Problem(name=f"{base}{dim}")
    for i in range(dim):
        problem.add_hyperparameter((float(hp.lower), float(hp.upper)), f"x{i}")
    names = [f"x{i}" for i in range(dim)]

    def run(config: dict) -> float:
        return -f(np.array([config[k] for k in names]))

    return types.SimpleNamespace(problem=problem, run=run, OPTIMUM=mod.OPTIMUM)


# ------------------------------------------------------------ scikit-learn tasks
def _space(problem: Any, model: str, classification: bool) -> None:
    """Bayesmark's search space for ``model`` (ranges as in its sklearn wrappers)."""
    add = problem.add_hyperparameter
    if model in ("dt", "rf"):
        add((1, 15), "max_depth")
        add((0.01, 0.99, "log-uniform"), "min_samples_split")
        add((0.01, 0.49, "log-uniform"), "min_samples_leaf")
        add((0.01, 0.49, "log-uniform"), "min_weight_fraction_leaf")
        add((0.01, 0.99, "log-uniform"), "max_features")
        add((0.0, 0.5), "min_impurity_decrease")
    elif model == "svm":
        add((1.0, 1e3, "log-uniform"), "C")
        add((1e-4, 1e-3, "log-uniform"), "gamma")
        add((1e-5, 1e-1, "log-uniform"), "tol")
    elif model == "knn":
        add((1, 25), "n_neighbors")
        add((1, 4), "p")
    elif model == "ada":
        add((10, 100), "n_estimators")
        add((1e-4, 1e1, "log-uniform"), "learning_rate")
    elif model == "mlp":
        add((50, 200), "hidden_layer_sizes")
        add((1e-5, 1e1, "log-uniform"), "alpha")
        add((10, 250), "batch_size")
        add((1e-5, 1e-1, "log-uniform"), "learning_rate_init")
        add((1e-5, 1e-1, "log-uniform"), "tol")
        add((0.1, 0.9), "validation_fraction")
        add((0.5, 0.99), "beta_1")
        add((0.9, 1.0 - 1e-6), "beta_2")
        add((1e-9, 1e-6, "log-uniform"), "epsilon")
    elif model == "lasso":
        add((1e-2, 1e2, "log-uniform"), "alpha")
        add([True, False], "fit_intercept")
        add([True, False], "positive")
        add((10, 5000, "log-uniform"), "max_iter")
        add((1e-5, 1e-1, "log-uniform"), "tol")
    elif model == "logreg":
        add((1e-2, 1e2, "log-uniform"), "C")
        add((1e-2, 1e2, "log-uniform"), "intercept_scaling")
        add((1e-5, 1e-1, "log-uniform"), "tol")
    else:
        raise KeyError(model)


def _estimator(model: str, classification: bool, c: dict, seed: int = 0) -> Any:
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree

    if model in ("dt", "rf"):
        kw = {k: c[k] for k in ("max_depth", "min_samples_split", "min_samples_leaf",
                                "min_weight_fraction_leaf", "max_features", "min_impurity_decrease")}
        if model == "dt":
            cls = tree.DecisionTreeClassifier if classification else tree.DecisionTreeRegressor
            return cls(random_state=seed, **kw)
        cls = ensemble.RandomForestClassifier if classification else ensemble.RandomForestRegressor
        return cls(n_estimators=10, random_state=seed, **kw)
    if model == "svm":
        if classification:
            return svm.SVC(C=c["C"], gamma=c["gamma"], tol=c["tol"], kernel="rbf")
        return svm.SVR(C=c["C"], gamma=c["gamma"], tol=c["tol"], kernel="rbf")
    if model == "knn":
        cls = neighbors.KNeighborsClassifier if classification else neighbors.KNeighborsRegressor
        return cls(n_neighbors=c["n_neighbors"], p=c["p"])
    if model == "ada":
        cls = ensemble.AdaBoostClassifier if classification else ensemble.AdaBoostRegressor
        return cls(n_estimators=c["n_estimators"], learning_rate=c["learning_rate"], random_state=seed)
    if model == "mlp":
        cls = neural_network.MLPClassifier if classification else neural_network.MLPRegressor
        return cls(hidden_layer_sizes=(c["hidden_layer_sizes"],), alpha=c["alpha"], batch_size=c["batch_size"],
                   learning_rate_init=c["learning_rate_init"], tol=c["tol"],
                   validation_fraction=c["validation_fraction"], beta_1=c["beta_1"], beta_2=c["beta_2"],
                   epsilon=c["epsilon"], solver="adam", early_stopping=True, max_iter=100, random_state=seed)
    if model == "lasso":
        return linear_model.Lasso(alpha=c["alpha"], fit_intercept=c["fit_intercept"], positive=c["positive"],
                                  max_iter=c["max_iter"], tol=c["tol"], random_state=seed)
    if model == "logreg":
        return linear_model.LogisticRegression(C=c["C"], intercept_scaling=c["intercept_scaling"], tol=c["tol"],
                                               solver="liblinear", random_state=seed)
    raise KeyError(model)


@functools.cache
def _dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets
    from sklearn.preprocessing import StandardScaler

    loader, _ = DATASETS[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    return StandardScaler().fit_transform(X), y  # as Bayesmark does for every model


@functools.cache
def _sklearn_task(name: str) -> types.SimpleNamespace:
    from ambs import Problem

    try:
        _, model, data = name.split("-")
        _, classification = DATASETS[data]
    except (ValueError, KeyError):
        raise KeyError(f"{name!r}: sk-MODEL-DATASET with MODEL in {MODELS} and DATASET in {tuple(DATASETS)}") from None
    wrong_kind = (model == "lasso" and classification) or (model == "logreg" and not classification)
    if model not in MODELS or wrong_kind:
        raise KeyError(f"{name!r}: no such task (lasso is for regression, logreg for classification)")
    problem = Problem(name=name.replace("-", "_"))
    _space(problem, model, classification)

    def run(config: dict) -> float:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

        X, y = _dataset(data)
        folds = (StratifiedKFold if classification else KFold)(3, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", "Got `batch_size`", UserWarning)  # clipped, as intended
            scores = cross_val_score(_estimator(model, classification, config), X, y, cv=folds,
                                     scoring="accuracy" if classification else "r2")
        return float(np.mean(scores))

    return types.SimpleNamespace(problem=problem, run=run, OPTIMUM=None)
