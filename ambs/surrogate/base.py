"""The surrogate contract AMBS proposes with, and the registry of surrogates.

A surrogate is fitted on encoded points and transformed losses, predicts a
mean and a standard deviation, and opens a :class:`Belief`: a copy of its
posterior into which constant liar folds the values it assumes at running
evaluations (and results told since the fit) without a refit. The forest
folds a value into the leaves a point falls into; the Gaussian process
conditions on it as one more observation. A new surrogate is one module that
implements both and one entry in :data:`SURROGATES`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

__all__ = ["Belief", "Surrogate", "SurrogateSpec", "one_blas_thread"]

F = TypeVar("F", bound=Callable[..., Any])


def one_blas_thread(func: F) -> F:
    """Run ``func`` with the BLAS libraries on one thread.

    A surrogate's and an acquisition's linear algebra is on matrices of tens
    to hundreds of rows, where a threaded BLAS spends more time waking its
    threads than computing: a local GP step took four times as long with
    OpenBLAS's two threads on 2 cores, and more beside other processes.

    The limit is the whole process's: set from a background fit's thread it
    would also cap a training the serial evaluator runs in the main thread,
    and two threads setting and restoring it can leave it capped for good.
    So only the main thread sets it (the master's proposals; a fitting
    process's fits, which run in that process's main thread).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return func(*args, **kwargs)
        with _blas_controller().limit(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """The process's thread pools, looked up once: ``threadpool_limits`` looks
    them up again at every call (0.1 to 0.4 ms, on every proposal of the
    master's dispatch path); a controller's ``limit`` costs about 15 us."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class Belief(Protocol):
    """A posterior that values can be folded into; it tracks candidate points.

    Points enter as *handles* (:meth:`locate`): a forest's leaf ids, a
    Gaussian process's encoded points. Values are on the surrogate's target
    scale (the transformed losses it was fitted on).
    """

    def locate(self, X: np.ndarray) -> Any:
        """Handles of encoded points ``X`` (n, d)."""

    def __len__(self) -> int:
        """How many candidates are tracked."""

    def extend(self, handles: Any) -> None:
        """Track more candidates, scored from now on by :meth:`mean_std`."""

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of every tracked candidate, shapes (n,)."""

    def peek(self, handles: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of other points, without tracking them."""

    def mean_at(self, i: int) -> float:
        """The mean of tracked candidate ``i`` (the kriging believer's lie there)."""

    def add_at(self, i: int, y: float, spread: bool = True) -> None:
        """Fold value ``y`` at tracked candidate ``i``; ``spread`` False: a lie,
        which may move the mean but should not add uncertainty."""

    def add_many(self, handles: Any, y: np.ndarray | float, spread: bool = True) -> None:
        """Fold values ``y`` (one each, or one for all) at other points."""


class Surrogate(Protocol):
    """A regressor with a predictive spread and a foldable posterior."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Surrogate:
        """Fit on encoded points ``X`` (n, d) and targets ``y`` (n,) to minimize."""

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Mean (n,), and with ``return_std`` the standard deviation (n,)."""

    def belief(self) -> Belief:
        """An empty belief over this fit, for constant-liar proposals."""


@dataclass(frozen=True)
class SurrogateSpec:
    """A registered surrogate: what it is, its class, and its settings.

    Args:
        description: one line for ``--help``.
        make: the class (or factory), called as ``make(random_state=seed, **kw)``.
        settings: ``settings(options, space)`` -> ``kw``, read from the search's
            :class:`ambs.search.AMBSOptions` and :class:`ambs.space.Space`.
    """

    description: str
    make: Callable[..., Surrogate]
    settings: Callable[[Any, Any], dict[str, Any]] = lambda options, space: {}

    def build(self, options: Any, space: Any, seed: int | None) -> Surrogate:
        """An unfitted surrogate for a search with ``options`` over ``space``."""
        return self.make(random_state=seed, **self.settings(options, space))
