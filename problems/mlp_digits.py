"""A multilayer perceptron trained with torch on scikit-learn's bundled 8x8
digits (1,797 images of 64 pixels, 10 classes; nothing is downloaded).

The images are split 60/20/20 into train/valid/test with a fixed seed. The
objective is the accuracy on the validation images (higher is better; chance
is 0.1); the test accuracy, never used by the search, is reported as
metadata, with the training time, the number of weights and the device.

The budget is the number of epochs (1 to 20): ``run(config)`` trains 20.
``run`` reports the validation accuracy after each epoch and stops when
told to (``ambs search --stop-rule``). Under a multi-fidelity method, a
configuration promoted from 3 epochs to 9 continues from its 3-epoch
checkpoint and trains 6 more (``epochs_trained``), with the same result as
9 epochs from scratch.
Training is seeded, so a configuration gives the same objective twice on the
same device. Needs torch (``pip install torch``).

Run ``python -m problems.mlp_digits`` to train the default configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ambs import Problem

if __package__:  # imported as problems.mlp_digits
    from . import _torch
else:  # loaded from its path (ambs search problems/mlp_digits.py): the helpers sit beside it
    sys.path.append(str(Path(__file__).resolve().parent))
    import _torch

torch = _torch.require("mlp_digits")
nn = torch.nn

problem = Problem(name="mlp_digits")
problem.add_hyperparameter((1, 4), "layers", default_value=2)
problem.add_hyperparameter((16, 512, "log-uniform"), "units", default_value=64)
problem.add_hyperparameter(["relu", "tanh", "elu", "gelu"], "activation", default_value="relu")
problem.add_hyperparameter((0.0, 0.6), "dropout", default_value=0.1)
problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr", default_value=1e-3)
problem.add_hyperparameter([16, 32, 64, 128, 256], "batch_size", default_value=32, ordered=True)
problem.add_hyperparameter(["adam", "sgd", "rmsprop"], "optimizer", default_value="adam")
problem.add_hyperparameter((1e-6, 1e-2, "log-uniform"), "weight_decay", default_value=1e-4)
problem.set_budget(1, 20, "epochs")
problem.add_metadata("test_accuracy", "epochs", "epochs_trained", "train_seconds", "n_parameters", "device")

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


def build(config: dict, n_in: int = 64, n_out: int = 10) -> nn.Module:
    """``layers`` blocks of Linear, activation, Dropout; then a linear read-out."""
    blocks: list[nn.Module] = []
    width = n_in
    for _ in range(config["layers"]):
        blocks += [nn.Linear(width, config["units"]), _ACTIVATIONS[config["activation"]](),
                   nn.Dropout(config["dropout"])]
        width = config["units"]
    blocks.append(nn.Linear(width, n_out))
    return nn.Sequential(*blocks)


def run(config: dict, budget: float | None = None, report: Callable[[int, float], bool] | None = None) -> dict:
    """Train for ``budget`` epochs (all 20 if None); validation accuracy.
    ``report``: called with (epoch, validation accuracy) after each epoch;
    training stops when it returns True. A promotion continues from
    ``report.checkpoint`` (see :func:`_torch.train`)."""
    epochs = problem.budget.whole(budget)
    dev = _torch.device()
    gen = _torch.seed_everything()
    data = _torch.digits()
    X_train, y_train, X_valid, y_valid, X_test, y_test = _torch.tensors(
        dev, *data["train"], *data["valid"], *data["test"])
    model = build(config).to(dev)
    opt = _torch.optimizer(config["optimizer"], model.parameters(), config["lr"], config["weight_decay"])
    trained = _torch.train(model, opt, nn.functional.cross_entropy, X_train, y_train, epochs,
                           config["batch_size"], gen, report=report,
                           score=lambda: (_torch.predict(model, X_valid) == y_valid).float().mean().item())
    valid = (_torch.predict(model, X_valid) == y_valid).float().mean().item()
    test = (_torch.predict(model, X_test) == y_test).float().mean().item()
    return {"objective": valid, "test_accuracy": test, **trained,
            "n_parameters": _torch.n_parameters(model), "device": str(dev)}

if __name__ == "__main__":
    _torch.main(problem, run)
