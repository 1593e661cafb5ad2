"""Architecture search for a multilayer perceptron on scikit-learn's bundled
8x8 digits (64 pixels, 10 classes; nothing is downloaded).

The space is a chain of up to 4 dense layers (ambs.nas.space) of 16 to 256
units, each with an activation, and from the third layer on an optional skip
connection from an earlier layer; then a linear read-out. Training: Adam with a cosine
learning-rate schedule, batch 64, seeded (problems/_nas.py).

Two objectives: the validation accuracy, maximized (the one a
single-objective search optimizes; chance is 0.1), and the number of
weights, minimized (``ambs analyze pareto`` draws the front). The second is
known before training too, for ``--method lemonade``. With ``$AMBS_CHECKPOINT_DIR`` set (``--method
morphism`` sets it), children start from their parent's weights.

The budget is the number of epochs (1 to 8): ``run(config)`` trains 6.
Needs torch (``pip install torch``). ``python -m problems.nas_mlp_digits``
trains the starting point (the smallest network).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ambs.nas.space import ArchSpec, arch_problem, count_parameters

if __package__:  # imported as problems.nas_mlp_digits
    from . import _nas, _torch
else:  # loaded from its path: the helpers sit beside it
    sys.path.append(str(Path(__file__).resolve().parent))
    import _nas
    import _torch

torch = _torch.require("nas_mlp_digits")

SPEC = ArchSpec(kind="vector", input_shape=(64,), n_outputs=10, max_layers=4,
                widths=(16, 32, 64, 128, 256), activations=("relu", "tanh", "elu", "gelu"))
EPOCHS = 6

problem = arch_problem(SPEC, name="nas_mlp_digits")
problem.set_budget(1, 8, "epochs", default=EPOCHS)
problem.add_objective("accuracy", "max")  # on the validation set
problem.add_objective("parameters", "min", cheap=lambda config: count_parameters(config, SPEC))
problem.add_metadata("test_accuracy", "epochs", "train_seconds",
                     "inherited", "device")


def run(config: dict, budget: float | None = None) -> dict:
    """Train for ``budget`` epochs (6 if None); validation accuracy and weights."""
    epochs = problem.budget.whole(budget)  # EPOCHS if None
    dev = _torch.device()
    gen = _torch.seed_everything()
    d = _torch.digits()
    data = {}
    for k in ("train", "valid", "test"):
        X, y = _torch.tensors(dev, *d[k])
        data[k] = (X.reshape(-1, *SPEC.input_shape), y)
    return _nas.train(config, SPEC, epochs, data, dev, gen)


if __name__ == "__main__":
    out = run(problem.starting_points[0])
    print(f"nas_mlp_digits: starting point {problem.starting_points[0]}\nresult {out}")
