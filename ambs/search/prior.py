"""Earlier runs' results as a prior of AMBS (``--warm-start``).

Told as data, the results of an earlier, related task pin a forest to their
optimum: its leaves of one result keep predicting the earlier values next to
the earlier points however many new results disagree, and the local search
starts from the earlier best. Here a forest fitted once on the earlier
results predicts, at any point, what the earlier runs saw there, and that
prediction becomes one more input feature of every fit on the new results.
The trees split on it where the new results agree with it and split it away
where they do not: a model of the earlier task stacked under the model of
the new one, as Vizier's transfer learning stacks its Gaussian processes
(Golovin et al., "Google Vizier", KDD 2017, section 3.3), with the new
forest deciding how far to trust the prior instead of fitting residuals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ambs.objectives import nondominated
from ambs.surrogate import SURROGATES, Surrogate, transform_targets

__all__ = ["WarmPrior"]


class WarmPrior:
    """Forests of the earlier results (one per objective), and their ranking.

    Args:
        space: the search's space (encodes the vectors).
        X: the earlier results' vectors (k, dim), finite ones only.
        losses: their losses (k,), or (k, m) for several objectives.
        options: the AMBS options (the forests' settings, the target transform).
        seed: seed of the forests.
    """

    def __init__(self, space: Any, X: np.ndarray, losses: np.ndarray, options: Any, seed: int) -> None:
        self.space = space
        self.X = np.asarray(X)
        L = np.asarray(losses, dtype=float)
        if L.ndim == 2:
            # Several objectives: each normalized to [0, 1]; the front first, then
            # the smallest sum of normalized losses.
            span = np.ptp(L, axis=0)
            N = (L - L.min(axis=0)) / np.where(span > 0, span, 1.0)
            targets = list(N.T)
            self.order = np.lexsort((N.sum(axis=1), ~nondominated(L)))
        else:
            targets = [transform_targets(L, options.y_transform, options.y_eps)[0]]
            self.order = np.argsort(L, kind="stable")
        self.models: list[Surrogate] = []
        if len(L) >= 2:
            E = space.encode(self.X)
            rng = np.random.default_rng(seed)
            self.models = [SURROGATES["et"].build(options, space, int(rng.integers(2**31))).fit(E, t)
                           for t in targets]

    def __len__(self) -> int:
        return len(self.X)

    def best(self, k: int) -> np.ndarray:
        """The ``k`` best distinct earlier configurations, best first, shape (<= k, dim)."""
        X = self.X[self.order]
        _, first = np.unique(self.space.keys(X), return_index=True)
        return X[np.sort(first)[: max(int(k), 0)]]

    def features(self, E: np.ndarray) -> np.ndarray:
        """The encoded points ``E`` with the prior's predictions there as extra columns."""
        if not self.models or not len(E):
            return E
        return np.hstack([E] + [np.asarray(m.predict(E), dtype=E.dtype)[:, None] for m in self.models])
