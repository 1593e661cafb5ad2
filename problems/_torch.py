"""Helpers shared by the torch problems (mlp_digits, cnn_digits, rnn_addition).

The leading underscore keeps this module out of problem listings. It imports
torch only when a helper is called, so that a torch problem without torch
installed fails to load with one line saying what to install (the problem
calls :func:`require` at import time) instead of a traceback.

Everything here is deterministic for a given seed on a given device: a
configuration trained twice on the CPU gives the same objective.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable

import numpy as np

from ambs.errors import ProblemError

SEED = 2024  # every torch problem trains from this seed (weights, shuffling, dropout)
DEVICE_VAR = "AMBS_TORCH_DEVICE"  # force "cpu" (or "cuda:1", ...) instead of the automatic choice


class TorchMissing(ProblemError, ImportError):
    """torch is not installed: one line for `ambs search`, an ImportError for Python."""


def require(problem: str) -> Any:
    """Import torch, or raise :class:`TorchMissing` naming what to install.

    Also caps torch at one intra-op thread unless OMP_NUM_THREADS is set
    (``--threads-per-worker`` sets it, and the evaluator then calls
    torch.set_num_threads itself): these models are small, a search runs one
    worker per core, and torch's spinning thread pool on a busy core makes an
    epoch up to ten times slower than one thread does.
    """
    try:
        import torch
    except ImportError:
        raise TorchMissing(
            f"problem {problem} trains with PyTorch, which is not installed: "
            "pip install torch (or pip install 'ambs[torch]')"
        ) from None
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    return torch


def device() -> Any:
    """cuda when a GPU is visible (under the MPI evaluator, the worker's own GPU
    from CUDA_VISIBLE_DEVICES), else cpu; $AMBS_TORCH_DEVICE overrides."""
    import torch

    forced = os.environ.get(DEVICE_VAR)
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def seed_everything(seed: int = SEED) -> Any:
    """Seed python, numpy and torch (every device); returns a CPU generator for shuffling."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CUDA generators too
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def n_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def optimizer(name: str, params: Any, lr: float, weight_decay: float = 0.0) -> Any:
    """adam, adamw, rmsprop, or sgd (Nesterov momentum 0.9)."""
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def fit(
    model: Any,
    opt: Any,
    loss_fn: Callable[[Any, Any], Any],
    X: Any,
    y: Any,
    epochs: int,
    batch_size: int,
    generator: Any,
    clip_norm: float | None = None,
    after_epoch: Callable[[int], bool] | None = None,
    first_epoch: int = 0,
) -> tuple[float, float]:
    """Minibatch training on tensors already on the model's device.

    Shuffles with ``generator`` each epoch. Stops early once the loss is not
    finite (a diverged configuration: its accuracy says so), or when
    ``after_epoch(epoch)`` (epochs counted from 1) returns True: an
    in-training report told it to stop. ``first_epoch``: epochs already
    trained (a training continued from a checkpoint). Returns (seconds, last
    epoch's mean loss).
    """
    import torch

    n = X.shape[0]
    t = time.perf_counter()
    loss_mean = float("nan")
    for epoch in range(first_epoch + 1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(X.device)
        total = torch.zeros((), device=X.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            if clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            opt.step()
            total += loss.detach() * idx.shape[0]
        loss_mean = float(total) / n
        if not np.isfinite(loss_mean):
            break
        if after_epoch is not None and after_epoch(epoch):
            break
    if X.device.type == "cuda":
        torch.cuda.synchronize(X.device)
    return time.perf_counter() - t, loss_mean


def save_state(path: Any, model: Any, opt: Any, generator: Any, epoch: int) -> None:
    """Write what continuing this training needs (weights, optimizer state, the
    random generators, the epoch) to ``path``, atomically: a reader sees the
    old file or the new one, never half of one."""
    import torch

    state = {"epoch": int(epoch), "model": model.state_dict(), "optimizer": opt.state_dict(),
             "shuffle": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Any, model: Any, opt: Any, generator: Any, epochs: int) -> int:
    """Continue from the state at ``path`` when it holds at most ``epochs``
    epochs; returns the epochs it holds (0: none, train from scratch).

    Loaded with ``weights_only=True``: tensors and plain values only, no
    pickled objects run. With the generators restored too, a training
    continued from epoch 3 to 9 gives what 9 epochs from scratch give.
    """
    import torch

    if path is None or not os.path.exists(path):
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    epoch = int(state["epoch"])
    if not 0 < epoch <= epochs:
        return 0  # trained further than asked now: start afresh
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
    generator.set_state(state["shuffle"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    return epoch


def train(model: Any, opt: Any, loss_fn: Callable[[Any, Any], Any], X: Any, y: Any, epochs: int,
          batch_size: int, generator: Any, report: Callable[[int, float], bool] | None = None,
          score: Callable[[], float] | None = None, clip_norm: float | None = None) -> dict[str, Any]:
    """:func:`fit` for a problem's ``run``: continues from ``report.checkpoint``
    when it holds an earlier epoch of this configuration, calls
    ``report(epoch, score())`` after each epoch and stops when told, and saves
    the state to ``report.checkpoint`` at the end.

    Returns the metadata of the training: ``epochs`` (the last one reached),
    ``epochs_trained`` (by this call: a continued training counts only its
    own), ``train_seconds``.
    """
    ckpt = getattr(report, "checkpoint", None)
    start = load_state(ckpt, model, opt, generator, epochs) if ckpt is not None else 0
    reached = [start]

    def after_epoch(epoch: int) -> bool:
        reached[0] = epoch
        return bool(report(epoch, score())) if report is not None and score is not None else False

    seconds, loss = fit(model, opt, loss_fn, X, y, epochs, batch_size, generator, clip_norm=clip_norm,
                        after_epoch=after_epoch, first_epoch=start)
    if not np.isfinite(loss) and reached[0] < epochs:
        reached[0] += 1  # the epoch whose loss diverged ran too
    if ckpt is not None and reached[0] > start:
        save_state(ckpt, model, opt, generator, reached[0])
    return {"epochs": reached[0], "epochs_trained": reached[0] - start, "train_seconds": seconds}


def predict(model: Any, X: Any, batch_size: int = 2048) -> Any:
    """Arg-max class of the last dimension of the model's output, in eval mode."""
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(X[i:i + batch_size]).argmax(-1) for i in range(0, X.shape[0], batch_size)])


def digits(seed: int = SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's bundled 8x8 digits (1,797 images, nothing downloaded),
    pixels scaled to [0, 1], split 60/20/20 into train/valid/test, stratified
    and fixed by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, stratify=y, random_state=seed)
    X_valid, X_test, y_valid, y_test = train_test_split(
        X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed)
    return {"train": (X_train, y_train), "valid": (X_valid, y_valid), "test": (X_test, y_test)}


def tensors(dev: Any, *arrays: np.ndarray) -> list[Any]:
    """numpy arrays as torch tensors on ``dev`` (floats as float32, ints as int64)."""
    import torch

    out = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a))
        t = t.float() if t.is_floating_point() else t.long()
        out.append(t.to(dev))
    return out


def main(problem: Any, run: Callable[..., dict]) -> None:
    """``python -m problems.<name>``: train the default configuration, print the objective."""
    config = problem.default_configuration
    t0 = time.perf_counter()
    out = run(config)
    took = time.perf_counter() - t0
    extra = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in out.items() if k != "objective")
    print(f"{problem.name}: default configuration {config}")
    print(f"objective {out['objective']:.4f} in {took:.2f} s ({extra})")
