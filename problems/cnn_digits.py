"""A convolutional network trained with torch on scikit-learn's bundled 8x8
digit images (1,797 images, 10 classes; nothing is downloaded).

``layers`` blocks of convolution ("same" padding; the block ``i`` has
``filters * 2**i`` channels), ReLU and optional pooling (which halves the
image while it is at least 2x2), then dropout and a linear read-out. The
images are split 60/20/20 into train/valid/test with a fixed seed, as in
mlp_digits. The objective is the validation accuracy (higher is better;
chance is 0.1); the test accuracy is reported as metadata.

The budget is the number of epochs (1 to 15): ``run(config)`` trains 15.
``run`` reports the validation accuracy after each epoch and stops when told
to (``ambs search --stop-rule``); a promotion of a multi-fidelity method
continues from its checkpoint (``report.checkpoint``) instead of retraining.
Training is seeded, so a configuration gives the same objective twice on the
same device. Needs torch (``pip install torch``).

Run ``python -m problems.cnn_digits`` to train the default configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ambs import Problem

if __package__:  # imported as problems.cnn_digits
    from . import _torch
else:  # loaded from its path (ambs search problems/cnn_digits.py): the helpers sit beside it
    sys.path.append(str(Path(__file__).resolve().parent))
    import _torch

torch = _torch.require("cnn_digits")
nn = torch.nn

problem = Problem(name="cnn_digits")
problem.add_hyperparameter((4, 32, "log-uniform"), "filters", default_value=16)
problem.add_hyperparameter([1, 3, 5], "kernel_size", default_value=3, ordered=True)
problem.add_hyperparameter((1, 3), "layers", default_value=2)
problem.add_hyperparameter(["max", "avg", "none"], "pooling", default_value="max")
problem.add_hyperparameter((0.0, 0.6), "dropout", default_value=0.2)
problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr", default_value=2e-3)
problem.add_hyperparameter([16, 32, 64, 128, 256], "batch_size", default_value=32, ordered=True)
problem.set_budget(1, 15, "epochs")
problem.add_metadata("test_accuracy", "epochs", "epochs_trained", "train_seconds", "n_parameters", "device")

_POOL = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def build(config: dict, side: int = 8, n_out: int = 10) -> nn.Module:
    """Conv blocks, then dropout and a linear read-out of the flattened maps."""
    blocks: list[nn.Module] = []
    channels = 1
    for i in range(config["layers"]):
        width = config["filters"] * 2**i
        blocks += [nn.Conv2d(channels, width, config["kernel_size"], padding="same"), nn.ReLU()]
        if config["pooling"] in _POOL and side >= 2:
            blocks.append(_POOL[config["pooling"]](2))
            side //= 2
        channels = width
    blocks += [nn.Flatten(), nn.Dropout(config["dropout"]), nn.Linear(channels * side * side, n_out)]
    return nn.Sequential(*blocks)


def run(config: dict, budget: float | None = None, report: Callable[[int, float], bool] | None = None) -> dict:
    """Train for ``budget`` epochs (all 15 if None); validation accuracy.
    ``report``: called with (epoch, validation accuracy) after each epoch."""
    epochs = problem.budget.whole(budget)
    dev = _torch.device()
    gen = _torch.seed_everything()
    data = _torch.digits()
    X_train, y_train, X_valid, y_valid, X_test, y_test = _torch.tensors(
        dev, *data["train"], *data["valid"], *data["test"])
    X_train, X_valid, X_test = (X.reshape(-1, 1, 8, 8) for X in (X_train, X_valid, X_test))
    model = build(config).to(dev)
    opt = _torch.optimizer("adam", model.parameters(), config["lr"])
    trained = _torch.train(model, opt, nn.functional.cross_entropy, X_train, y_train, epochs,
                           config["batch_size"], gen, report=report,
                           score=lambda: (_torch.predict(model, X_valid) == y_valid).float().mean().item())
    valid = (_torch.predict(model, X_valid) == y_valid).float().mean().item()
    test = (_torch.predict(model, X_test) == y_test).float().mean().item()
    return {"objective": valid, "test_accuracy": test, **trained,
            "n_parameters": _torch.n_parameters(model), "device": str(dev)}


if __name__ == "__main__":
    _torch.main(problem, run)
