"""A synthetic mixed space: integers, log-scaled reals, categoricals, an ordinal
and a conditional hyperparameter, with a known optimum.

It mimics a training run's response: a log learning rate with a sweet spot
near 3e-3, a width that saturates, an activation and optimizer that matter,
and a momentum that exists only for SGD. The maximum is 0 at
lr=3e-3, units=256, activation="relu", optimizer="adam", batch_size=64.
"""

from __future__ import annotations

import math

from ambs import Problem

OPTIMUM = 0.0

problem = Problem(name="mixed")
problem.add_hyperparameter((1e-5, 1e-1, "log-uniform"), "lr", default_value=1e-3)
problem.add_hyperparameter((8, 1024, "log-uniform"), "units", default_value=64)
problem.add_hyperparameter((1, 8), "layers", default_value=2)
problem.add_hyperparameter(["relu", "tanh", "sigmoid"], "activation", default_value="relu")
problem.add_hyperparameter(["adam", "sgd", "rmsprop"], "optimizer", default_value="sgd")
problem.add_hyperparameter((0.0, 0.99), "momentum")
problem.add_condition("momentum", "optimizer", "sgd")
problem.add_hyperparameter([16, 32, 64, 128, 256], "batch_size", default_value=32, ordered=True)
problem.add_metadata("penalty_lr")

_ACT = {"relu": 0.0, "tanh": 0.4, "sigmoid": 1.2}
_OPT = {"adam": 0.0, "rmsprop": 0.3, "sgd": 0.6}


def run(config: dict) -> dict:
    """Negated loss of the synthetic response (higher is better)."""
    lr_pen = (math.log10(config["lr"]) - math.log10(3e-3)) ** 2
    units_pen = (math.log2(config["units"]) - 8) ** 2 / 8
    layers_pen = 0.05 * (config["layers"] - 3) ** 2
    opt_pen = _OPT[config["optimizer"]]
    if config["optimizer"] == "sgd":
        opt_pen -= 0.5 * config["momentum"]  # momentum helps SGD, never beats adam
    bs_pen = (math.log2(config["batch_size"]) - 6) ** 2 / 10
    loss = lr_pen + units_pen + layers_pen + _ACT[config["activation"]] + opt_pen + bs_pen
    return {"objective": -loss, "penalty_lr": lr_pen}


if __name__ == "__main__":
    print(run(problem.default_configuration))
