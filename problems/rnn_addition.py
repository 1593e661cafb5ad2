"""A sequence-to-sequence recurrent network (LSTM or GRU) trained with torch to
add two numbers written as strings of digits, as in DeepHyper's rnn1 and the
Keras "addition RNN" example. Nothing is downloaded: the data is generated.

The generator: with numpy's ``default_rng(SEED)``, draw 12,000 distinct
ordered pairs (a, b) uniformly from 0..999 x 0..999; the question is the
string ``"a+b"`` padded with spaces to 7 characters (``"12+345 "``), the
answer is ``str(a + b)`` padded to 4 (``"357 "``). Characters are one-hot
over ``"0123456789+ "``. The pairs are split 8,000/2,000/2,000 into
train/valid/test, so no validation question is seen in training.

The model: an encoder RNN reads the question (reversed if ``reverse``, which
puts the low-order digits, whose sum comes first, next to the decoder); a
decoder RNN, started from the encoder's state, reads the encoder's last
output once per answer position; a linear layer gives each position's
character. The objective is the per-character accuracy of the validation
answers (higher is better; always answering the most frequent character of
each position scores about 0.31); the exact-match accuracy of whole answers
and the test per-character accuracy are reported as metadata.

The budget is the number of epochs (1 to 20): ``run(config)`` trains 20.
Training is seeded, so a configuration gives the same objective twice on the
same device. Needs torch (``pip install torch``).

Run ``python -m problems.rnn_addition`` to train the default configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ambs import Problem

if __package__:  # imported as problems.rnn_addition
    from . import _torch
else:  # loaded from its path (ambs search problems/rnn_addition.py): the helpers sit beside it
    sys.path.append(str(Path(__file__).resolve().parent))
    import _torch

torch = _torch.require("rnn_addition")
nn = torch.nn

DIGITS = 3  # the largest operand has this many digits
QUESTION_LEN = 2 * DIGITS + 1  # "999+999"
ANSWER_LEN = DIGITS + 1  # "1998"
CHARS = "0123456789+ "
N_TRAIN, N_VALID, N_TEST = 8000, 2000, 2000

problem = Problem(name="rnn_addition")
problem.add_hyperparameter(["lstm", "gru"], "cell", default_value="lstm")
problem.add_hyperparameter((16, 256, "log-uniform"), "units", default_value=128)
problem.add_hyperparameter((1, 2), "layers", default_value=1)
problem.add_hyperparameter([True, False], "reverse", default_value=True)
problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr", default_value=1e-2)
problem.add_hyperparameter([32, 64, 128, 256], "batch_size", default_value=64, ordered=True)
problem.add_hyperparameter(["adam", "rmsprop", "sgd"], "optimizer", default_value="adam")
problem.set_budget(1, 20, "epochs")
problem.add_metadata("sequence_accuracy", "test_accuracy", "epochs", "epochs_trained", "train_seconds", "n_parameters",
                     "device")


def generate(seed: int = _torch.SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Questions and answers as character indices, split train/valid/test (see the module doc)."""
    rng = np.random.default_rng(seed)
    top = 10**DIGITS
    pairs = rng.choice(top * top, size=N_TRAIN + N_VALID + N_TEST, replace=False)
    index = {c: i for i, c in enumerate(CHARS)}
    questions = np.empty((len(pairs), QUESTION_LEN), dtype=np.int64)
    answers = np.empty((len(pairs), ANSWER_LEN), dtype=np.int64)
    for row, p in enumerate(pairs):
        a, b = divmod(int(p), top)
        questions[row] = [index[c] for c in f"{a}+{b}".ljust(QUESTION_LEN)]
        answers[row] = [index[c] for c in str(a + b).ljust(ANSWER_LEN)]
    cut = np.cumsum([N_TRAIN, N_VALID])
    return {name: (q, a) for name, q, a in zip(("train", "valid", "test"),
                                                np.split(questions, cut), np.split(answers, cut))}


_DATA: dict | None = None


def _data() -> dict:
    global _DATA
    if _DATA is None:
        _DATA = generate()
    return _DATA


class Seq2Seq(nn.Module):
    """Encoder RNN over the one-hot question; decoder RNN over the repeated encoding."""

    def __init__(self, cell: str, units: int, layers: int) -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.encoder = rnn(len(CHARS), units, num_layers=layers, batch_first=True)
        self.decoder = rnn(units, units, num_layers=layers, batch_first=True)
        self.readout = nn.Linear(units, len(CHARS))

    def forward(self, x):  # x: (batch, QUESTION_LEN) character indices
        onehot = nn.functional.one_hot(x, len(CHARS)).float()
        out, state = self.encoder(onehot)
        repeated = out[:, -1:, :].expand(-1, ANSWER_LEN, -1)
        decoded, _ = self.decoder(repeated, state)
        return self.readout(decoded)  # (batch, ANSWER_LEN, len(CHARS)) logits


def _loss(logits, target):
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def run(config: dict, budget: float | None = None, report: Callable[[int, float], bool] | None = None) -> dict:
    """Train for ``budget`` epochs (all 20 if None); validation per-character accuracy.
    ``report``: called with (epoch, validation per-character accuracy) after each
    epoch; a promotion continues from ``report.checkpoint``."""
    epochs = problem.budget.whole(budget)
    dev = _torch.device()
    gen = _torch.seed_everything()
    data = _data()
    X_train, y_train, X_valid, y_valid, X_test, y_test = _torch.tensors(
        dev, *data["train"], *data["valid"], *data["test"])
    if config["reverse"]:
        X_train, X_valid, X_test = (X.flip(1) for X in (X_train, X_valid, X_test))
    model = Seq2Seq(config["cell"], config["units"], config["layers"]).to(dev)
    opt = _torch.optimizer(config["optimizer"], model.parameters(), config["lr"])
    trained = _torch.train(model, opt, _loss, X_train, y_train, epochs, config["batch_size"], gen,
                           report=report, clip_norm=1.0,
                           score=lambda: (_torch.predict(model, X_valid) == y_valid).float().mean().item())
    right = _torch.predict(model, X_valid) == y_valid
    test = (_torch.predict(model, X_test) == y_test).float().mean().item()
    return {"objective": right.float().mean().item(), "sequence_accuracy": right.all(1).float().mean().item(),
            "test_accuracy": test, **trained,
            "n_parameters": _torch.n_parameters(model), "device": str(dev)}


if __name__ == "__main__":
    _torch.main(problem, run)
