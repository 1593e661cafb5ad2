"""Training shared by the architecture-search problems (nas_cnn_digits, nas_mlp_digits).

A configuration of an :func:`ambs.nas.space.arch_problem` space is built with
:func:`ambs.nas.space.build_model` and trained with Adam and a cosine-annealed
learning rate (Loshchilov and Hutter), from the fixed seed of problems/_torch.py.

Weight inheritance: when ``$AMBS_CHECKPOINT_DIR`` is set (``ambs search
--method morphism`` sets it to ``RUN_DIR/checkpoints``), every trained
network is stored there, and a configuration one network morphism away from
a stored one starts from that parent's weights (function-preserving, see
ambs/nas/morph.py) instead of from scratch.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from ambs.nas.morph import CHECKPOINT_VAR, find_parent, inherit, save_checkpoint
from ambs.nas.space import ArchSpec, build_model, count_parameters

LR = 3e-3
BATCH_SIZE = 64


def train(config: dict, spec: ArchSpec, epochs: int, data: dict, dev: Any, gen: Any) -> dict:
    """Train (inheriting a parent's weights when one is stored); accuracy and sizes.

    ``data`` holds train/valid/test tensors on ``dev``, inputs already shaped
    as ``spec.input_shape``. Returns the run's result dict: the two declared
    objectives ``accuracy`` (validation) and ``parameters``, and metadata.
    """
    import torch

    model = build_model(config, spec)
    inherited = ""
    ckpt = os.environ.get(CHECKPOINT_VAR)
    if ckpt:
        found = find_parent(ckpt, config, spec)
        if found is not None:
            from ambs.nas.morph import load_checkpoint

            parent, morph = found
            inherit(model, load_checkpoint(ckpt, parent), morph, spec)
            inherited = morph.kind
    model = model.to(dev)
    X, y = data["train"]
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * math.ceil(X.shape[0] / BATCH_SIZE)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    t = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(X.shape[0], generator=gen).to(dev)
        for start in range(0, X.shape[0], BATCH_SIZE):
            idx = order[start:start + BATCH_SIZE]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        acc = {k: (model(data[k][0]).argmax(-1) == data[k][1]).float().mean().item() for k in ("valid", "test")}
    n_params = count_parameters(config, spec)
    if ckpt and math.isfinite(acc["valid"]):
        save_checkpoint(ckpt, config, acc["valid"], model)
    return {"accuracy": acc["valid"], "parameters": n_params, "test_accuracy": acc["test"],
            "epochs": epochs, "train_seconds": seconds,
            "inherited": inherited, "device": str(dev)}
