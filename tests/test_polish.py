"""AMBS's polish step: a local GP around the best result (ambs.search.polish)."""

from __future__ import annotations

import numpy as np
import pytest

from ambs import Problem
from ambs.search.ambs import AMBS
from ambs.search.polish import polish_step


def _bowl(c: dict) -> float:
    """A smooth bowl whose minimum (loss 0) is at x = 0.3, y = 0.6, with kind "b"."""
    return (c["x"] - 0.3) ** 2 + (c["y"] - 0.6) ** 2 + (0.0 if c["kind"] == "b" else 0.5)


def _problem() -> Problem:
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((0.0, 1.0), "y")
    p.add_hyperparameter(["a", "b"], "kind")
    return p


def test_the_step_goes_downhill_from_the_best_result() -> None:
    """A forest cannot say which way is down within its best leaf; the local GP can:
    from 30 results near the optimum, its step lands closer than any of them."""
    space = AMBS(_problem(), random_state=0).space
    rng = np.random.default_rng(0)
    near = np.array([0.3, 0.6]) + rng.uniform(-0.15, 0.15, (30, 2))
    X = space.to_vectors([{"x": a, "y": b, "kind": "b"} for a, b in near])
    y = np.array([_bowl(c) for c in space.to_dicts(X)])
    x = polish_step(space, X, y, np.empty((0, space.dim)), np.random.default_rng(1))
    assert x is not None
    (config,) = space.to_dicts(x[None, :])
    assert config["kind"] == "b"  # the best result's categorical value is kept
    assert _bowl(config) < y.min() / 4, (config, y.min())


def test_too_few_results_give_no_step() -> None:
    space = AMBS(_problem(), random_state=0).space
    X = space.sample(5, np.random.default_rng(0))
    y = np.arange(5.0)
    assert polish_step(space, X, y, np.empty((0, space.dim)), np.random.default_rng(0)) is None


@pytest.mark.parametrize("every", [0, 3])
def test_every_kth_model_based_proposal_is_a_polish_step(every: int, monkeypatch) -> None:
    from ambs.search import polish

    calls = []
    real = polish.polish_step

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(polish, "polish_step", counted)
    search = AMBS(_problem(), random_state=0, polish_every=every, n_initial_points=10)
    asked = 0
    for _ in range(8):
        configs = search.ask(4)
        asked += len(configs)
        search.tell([(c, -_bowl(c)) for c in configs])
    assert asked == 32
    assert len(calls) == ((32 - 10) // every if every else 0)
    assert search.best()[1] > -0.01


def test_the_step_runs_on_one_blas_thread(monkeypatch) -> None:
    """A threaded BLAS on matrices of a few dozen rows costs more than it saves:
    with the BLAS set to two threads around it, the step's fit sees one."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from ambs.search import polish

    seen = []
    real = polish._fit

    def spy(*args):
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return real(*args)

    monkeypatch.setattr(polish, "_fit", spy)
    space = AMBS(_problem(), random_state=0).space
    X = space.sample(30, np.random.default_rng(0))
    y = np.array([_bowl(c) for c in space.to_dicts(X)])
    with threadpool_limits(2, user_api="blas"):
        outside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        polish_step(space, X, y, np.empty((0, space.dim)), np.random.default_rng(0))
    assert outside and set(outside) == {2}
    assert seen and set(seen) == {1}


def _two_objectives(c: dict) -> dict:
    """ZDT1-like: the front is y = 0.5 for every x (f1 = x against f2 = 1 - sqrt(x))."""
    g = 1.0 + 9.0 * (c["y"] - 0.5) ** 2
    return {"f1": c["x"], "f2": g * (1.0 - np.sqrt(c["x"] / g))}


@pytest.mark.parametrize("every", [0, 2])
def test_with_several_objectives_the_step_polishes_toward_the_front(every: int, monkeypatch) -> None:
    """Each step polishes a random scalarization of the objectives: its
    proposals land nearer the front (y = 0.5) than the results it starts from."""
    from ambs.search import polish

    steps = []
    real = polish.polish_step

    def kept(*args, **kwargs):
        x = real(*args, **kwargs)
        if x is not None:
            steps.append(x)
        return x

    monkeypatch.setattr(polish, "polish_step", kept)
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((0.0, 1.0), "y")
    p.add_objective("f1", "min")
    p.add_objective("f2", "min")
    search = AMBS(p, random_state=0, polish_every=every, n_initial_points=10)
    told = []
    for _ in range(10):
        configs = search.ask(4)
        search.tell([(c, _two_objectives(c)) for c in configs])
        told += configs
    if not every:
        assert not steps
        return
    assert len(steps) >= 10
    off = [abs(c["y"] - 0.5) for c in search.space.to_dicts(np.array(steps))]
    assert np.median(off) < np.median([abs(c["y"] - 0.5) for c in told[:20]]) / 4


def test_only_the_main_thread_limits_the_blas() -> None:
    """The limit is the process's: a fit in a background thread leaves it
    alone, so that a training in the main thread (the serial evaluator) keeps
    its threads, and no two threads set and restore it at once."""
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    from ambs.surrogate.base import one_blas_thread

    @one_blas_thread
    def threads() -> set:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen: dict = {}
    with threadpool_limits(2, user_api="blas"):
        seen["main"] = threads()
        worker = threading.Thread(target=lambda: seen.setdefault("thread", threads()))
        worker.start()
        worker.join()
        seen["after"] = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert seen == {"main": {1}, "thread": {2}, "after": {2}}


@pytest.mark.parametrize("d, ard", [(1, True), (3, True), (12, False)])
def test_the_likelihood_is_scikit_learns(d: int, ard: bool) -> None:
    """The kernel's fit runs on polish.matern_likelihood: the same value and
    gradient as scikit-learn's GP for this kernel, ARD or one length scale."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    from ambs.search.polish import matern_likelihood

    rng = np.random.default_rng(d)
    U = rng.random((30, d))
    t = np.sin(3 * U.sum(axis=1)) + 0.05 * rng.normal(size=30)
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(d, 0.5) if ard else 0.5, (1e-2, 1e2), nu=2.5)
              + WhiteKernel(1e-4, (1e-8, 1e-1)))
    gp = GaussianProcessRegressor(kernel, optimizer=None).fit(U, t)
    for _ in range(3):
        theta = kernel.theta + rng.normal(0.0, 0.5, len(kernel.theta))
        want, want_grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
        got, got_grad = matern_likelihood(theta, U, t)
        assert got == pytest.approx(-want, rel=1e-9)
        assert np.allclose(-got_grad, want_grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("d, ard", [(2, True), (12, False)])
def test_the_local_gp_is_scikit_learns(d: int, ard: bool) -> None:
    """The step's GP fits the kernel scikit-learn's would from the same start
    and bounds, and predicts the same mean and standard deviation, also once
    conditioned on running evaluations."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    from ambs.search.polish import _fit

    rng = np.random.default_rng(d)
    U = rng.random((25, d))
    t = np.sin(3 * U.sum(axis=1)) + 0.05 * rng.normal(size=25)
    t = (t - t.mean()) / t.std()
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(d, 0.5) if ard else 0.5, (1e-2, 1e2), nu=2.5)
              + WhiteKernel(1e-4, (1e-8, 1e-1)))
    want = GaussianProcessRegressor(kernel, random_state=0).fit(U, t)
    got = _fit(U, t, d)
    assert np.allclose(got.theta, want.kernel_.theta, atol=1e-3)
    C = rng.random((200, d))
    UP, tP = np.vstack([U, C[:5]]), np.concatenate([t, got.mean(C[:5])])

    def fixed() -> GaussianProcessRegressor:
        return GaussianProcessRegressor(want.kernel_.clone_with_theta(got.theta), optimizer=None)

    for gp, ref in ((got, fixed().fit(U, t)), (got.conditioned(UP, tP), fixed().fit(UP, tP))):
        mu, sd = gp.mean_std(C)
        ref_mu, ref_sd = ref.predict(C, return_std=True)
        assert np.allclose(mu, ref_mu, rtol=1e-8, atol=1e-10)
        assert np.allclose(sd, ref_sd, rtol=1e-6, atol=1e-8)
