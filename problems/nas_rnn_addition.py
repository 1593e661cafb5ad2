"""Architecture search for the sequence-to-sequence addition task of
problems/rnn_addition.py (questions ``"12+345 "``, answers ``"357 "``), on its
generated data (same generator and seed; nothing is downloaded).

The encoder is a chain of 1 to 3 layers over the reversed one-hot question.
Layer ``i`` is an LSTM, a GRU or a dense layer applied at every position
(``l{i}_op``) of ``l{i}_units`` units, a recurrent layer bidirectional or
not (``l{i}_bidirectional``: its output is then twice as wide), then dropout
(``l{i}_dropout``); from the second layer on, an optional residual skip
(``l{i}_skip``) adds a learned projection of the layer's input::

    h_i = dropout_i(layer_i(h_{i-1}) + P_i h_{i-1})     (P_i only with a skip)

The decoder, an LSTM or GRU (``decoder``) as wide as the last encoder layer,
reads the encoder's last output once per answer position, and a linear layer
gives each position's character. Conditions on ``n_layers`` make unused
layers inactive. Training: Adam at 1e-2, batch 64, gradients clipped at 1,
seeded (problems/_torch.py).

Two objectives: the validation per-character accuracy, maximized (the one a
single-objective search optimizes; answering each position's most frequent
character scores about 0.31), and the number of weights, minimized (known
before training too, for ``--method lemonade``).
The budget is the number of epochs (1 to 10): ``run(config)`` trains 6.
Needs torch. ``python -m problems.nas_rnn_addition`` trains the default
configuration (one LSTM layer of 64 units).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ambs import Problem

if __package__:  # imported as problems.nas_rnn_addition
    from . import _torch, rnn_addition
else:  # loaded from its path: the helpers sit beside it
    sys.path.append(str(Path(__file__).resolve().parent))
    import _torch
    import rnn_addition

torch = _torch.require("nas_rnn_addition")
nn = torch.nn

CHARS, ANSWER_LEN = rnn_addition.CHARS, rnn_addition.ANSWER_LEN
MAX_LAYERS = 3
OPS = ("lstm", "gru", "dense")
UNITS = (16, 32, 64, 128)
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
EPOCHS = 6
LR = 1e-2
BATCH_SIZE = 64

problem = Problem(name="nas_rnn_addition")
problem.add_hyperparameter(list(range(1, MAX_LAYERS + 1)), "n_layers", default_value=1, ordered=True)
for _i in range(MAX_LAYERS):
    problem.add_hyperparameter(list(OPS), f"l{_i}_op", default_value="lstm")
    problem.add_hyperparameter(list(UNITS), f"l{_i}_units", default_value=64, ordered=True)
    problem.add_hyperparameter([False, True], f"l{_i}_bidirectional", default_value=False)
    problem.add_hyperparameter(list(DROPOUTS), f"l{_i}_dropout", default_value=0.0, ordered=True)
    problem.add_condition(f"l{_i}_bidirectional", f"l{_i}_op", ["lstm", "gru"])
    if _i > 0:
        problem.add_hyperparameter(["none", "residual"], f"l{_i}_skip", default_value="none")
        deeper = list(range(_i + 1, MAX_LAYERS + 1))
        for _hp in ("op", "units", "dropout", "skip"):
            problem.add_condition(f"l{_i}_{_hp}", "n_layers", deeper if len(deeper) > 1 else deeper[0])
problem.add_hyperparameter(["lstm", "gru"], "decoder", default_value="lstm")
problem.set_budget(1, 10, "epochs", default=EPOCHS)
problem.add_objective("accuracy", "max")  # per character, on the validation set
problem.add_objective("parameters", "min", cheap=lambda config: n_parameters(config))
problem.add_metadata("sequence_accuracy", "test_accuracy", "epochs",
                     "train_seconds", "device")


class _Layer(nn.Module):
    """One encoder layer: recurrent (uni- or bidirectional) or dense per position."""

    def __init__(self, op: str, n_in: int, units: int, bidirectional: bool) -> None:
        super().__init__()
        self.recurrent = op != "dense"
        if self.recurrent:
            rnn = nn.LSTM if op == "lstm" else nn.GRU
            self.body = rnn(n_in, units, batch_first=True, bidirectional=bidirectional)
        else:
            self.body = nn.Sequential(nn.Linear(n_in, units), nn.ReLU())
        self.width = units * (2 if self.recurrent and bidirectional else 1)

    def forward(self, x: Any) -> Any:
        return self.body(x)[0] if self.recurrent else self.body(x)


class NASSeq2Seq(nn.Module):
    """The encoder chain of a configuration, the decoder and the read-out (see the module doc)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.drops = nn.ModuleList()
        self.skips = nn.ModuleDict()
        width = len(CHARS)
        for i in range(int(config["n_layers"])):
            layer = _Layer(config[f"l{i}_op"], width, int(config[f"l{i}_units"]),
                           bool(config.get(f"l{i}_bidirectional", False)))
            if config.get(f"l{i}_skip", "none") == "residual":
                self.skips[str(i)] = nn.Linear(width, layer.width)
            self.layers.append(layer)
            self.drops.append(nn.Dropout(float(config[f"l{i}_dropout"])))
            width = layer.width
        rnn = nn.LSTM if config["decoder"] == "lstm" else nn.GRU
        self.decoder = rnn(width, width, batch_first=True)
        self.readout = nn.Linear(width, len(CHARS))

    def forward(self, x: Any) -> Any:  # x: (batch, question length) character indices
        h = nn.functional.one_hot(x, len(CHARS)).float()
        for i, (layer, drop) in enumerate(zip(self.layers, self.drops)):
            z = layer(h)
            if str(i) in self.skips:
                z = z + self.skips[str(i)](h)
            h = drop(z)
        decoded, _ = self.decoder(h[:, -1:, :].expand(-1, ANSWER_LEN, -1))
        return self.readout(decoded)  # (batch, ANSWER_LEN, len(CHARS)) logits


def n_parameters(config: dict[str, Any]) -> int:
    """Trainable weights of a configuration's network (built, not trained)."""
    return _torch.n_parameters(NASSeq2Seq(config))




def run(config: dict, budget: float | None = None) -> dict:
    """Train for ``budget`` epochs (6 if None); [validation per-character accuracy, -weights]."""
    epochs = problem.budget.whole(budget)  # EPOCHS if None
    dev = _torch.device()
    gen = _torch.seed_everything()
    data = rnn_addition._data()
    X_train, y_train, X_valid, y_valid, X_test, y_test = _torch.tensors(
        dev, *data["train"], *data["valid"], *data["test"])
    # Reversed questions put the low-order digits, whose sum comes first, next to the decoder.
    X_train, X_valid, X_test = (X.flip(1) for X in (X_train, X_valid, X_test))
    model = NASSeq2Seq(config).to(dev)
    opt = _torch.optimizer("adam", model.parameters(), LR)
    seconds, _ = _torch.fit(model, opt, rnn_addition._loss, X_train, y_train, epochs, BATCH_SIZE, gen,
                            clip_norm=1.0)
    right = _torch.predict(model, X_valid) == y_valid
    test = (_torch.predict(model, X_test) == y_test).float().mean().item()
    acc = right.float().mean().item()
    n = _torch.n_parameters(model)
    return {"accuracy": acc, "parameters": n, "sequence_accuracy": right.all(1).float().mean().item(),
            "test_accuracy": test, "epochs": epochs, "train_seconds": seconds,
            "device": str(dev)}


if __name__ == "__main__":
    default = problem.default_configuration
    result = run(default)
    print(f"nas_rnn_addition: default configuration {default}")
    print(f"validation accuracy {result['accuracy']:.4f}, {result['parameters']} weights, "
          f"{result['epochs']} epochs in {result['train_seconds']:.1f} s")
