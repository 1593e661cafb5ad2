"""Hyperparameter importance: a random forest (scikit-learn, imported when
called) fitted on a run's successful evaluations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ambs.analysis.load import Run
from ambs.analysis.metrics import param_kinds
from ambs.errors import AnalysisError

__all__ = ["importance"]

_MIN_FOR_IMPORTANCE = 8


def _design(run: Run, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Numeric matrix for a forest: numbers as they are (log10 if log-scaled, a value
    below the range when inactive); categoricals one-hot (inactive is a level).
    Returns the matrix and the columns of each hyperparameter."""
    kinds = param_kinds(run)
    blocks, groups, j = [], {}, 0
    for name in run.params:
        col = frame[f"p:{name}"]
        if kinds[name]["kind"] == "numeric":
            v = col.to_numpy(dtype=float)
            if kinds[name]["log"]:
                v = np.log10(v)
            finite = v[np.isfinite(v)]
            lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
            v = np.where(np.isfinite(v), v, lo - (hi - lo) - 1.0)
            blocks.append(v[:, None])
            groups[name] = [j]
            j += 1
        else:
            dummies = pd.get_dummies(col.astype(object).where(col.notna(), "(inactive)").astype(str))
            blocks.append(dummies.to_numpy(dtype=float))
            groups[name] = list(range(j, j + dummies.shape[1]))
            j += dummies.shape[1]
    return np.hstack(blocks) if blocks else np.zeros((len(frame), 0)), groups


def importance(run: Run, method: str = "permutation", n_estimators: int = 100,
               n_repeats: int = 5, random_state: int = 0) -> pd.DataFrame:
    """Hyperparameter importance from a random forest fitted on the ok evaluations.

    ``permutation`` (default): drop in explained variance when the
    hyperparameter's columns are shuffled on held-out folds (3-fold cross
    fitting), as a fraction of the objective's variance. ``impurity``: the
    forest's impurity importance, one-hot columns summed per hyperparameter.
    Returns columns parameter, importance, std, sorted by importance.
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold

    if method not in ("permutation", "impurity"):
        raise AnalysisError(f"unknown importance method {method!r} (use permutation or impurity)")
    ok = run.ok
    if len(ok) < _MIN_FOR_IMPORTANCE or not run.params:
        raise AnalysisError(f"importance needs at least {_MIN_FOR_IMPORTANCE} successful evaluations "
                            f"and one hyperparameter; {run.source} has {len(ok)}")
    X, groups = _design(run, ok)
    y = ok["objective"].to_numpy(dtype=float)
    var = float(np.var(y))

    def forest() -> Any:
        return RandomForestRegressor(n_estimators=n_estimators, min_samples_leaf=2,
                                     random_state=random_state, n_jobs=1)

    if var == 0:
        scores = {n: [0.0] for n in run.params}
    elif method == "impurity":
        fi = forest().fit(X, y).feature_importances_
        scores = {n: [float(fi[cols].sum())] for n, cols in groups.items()}
    else:
        rng = np.random.default_rng(random_state)
        scores = {n: [] for n in run.params}
        folds = KFold(n_splits=3, shuffle=True, random_state=random_state)
        for train, test in folds.split(X):
            model = forest().fit(X[train], y[train])
            base = np.mean((model.predict(X[test]) - y[test]) ** 2)
            for name, cols in groups.items():
                for _ in range(n_repeats):
                    Xp = X[test].copy()
                    Xp[:, cols] = Xp[rng.permutation(len(test))][:, cols]
                    mse = np.mean((model.predict(Xp) - y[test]) ** 2)
                    scores[name].append((mse - base) / var)
    out = pd.DataFrame({
        "parameter": list(scores),
        "importance": [float(np.mean(v)) for v in scores.values()],
        "std": [float(np.std(v)) for v in scores.values()],
    })
    return out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
