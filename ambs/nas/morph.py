"""Network morphisms (Elsken et al.): children that start with their parent's function.

A morphism changes a configuration of an :func:`ambs.nas.space.arch_problem`
space so that the child network, with weights inherited from the parent by
:func:`inherit`, computes exactly what the parent computed before any
training:

* **widen** layer ``i`` to the next width: the new channels get fresh
  incoming weights, and every weight that *reads* them starts at zero;
* **grow** a convolution's kernel to the next size: the old kernel sits in the centre of the
  new one, zeros around it;
* **deepen**: insert after layer ``p - 1`` a conv/dense layer initialized to
  the identity with a ReLU, where ``h_{p-1} >= 0`` (after a ReLU, or the
  nonnegative input), so that ``relu(I h) = h``;
* **skip**: add a skip from layer ``j`` to ``i`` whose projection starts at zero.

Checkpoints (:func:`save_checkpoint`, :func:`find_parent`) let a worker start
a child from its parent's weights: each trained network is stored as
``<dir>/<key>.pt`` (torch state dict) with ``<dir>/<key>.json`` (its
configuration and objective), ``key`` a hash of the configuration. A child
looks for the best stored network one morphism away from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ambs.nas.space import WEIGHTED_OPS, ArchSpec, layers_of

__all__ = ["Morph", "morphisms", "inherit", "find_parent", "save_checkpoint", "load_checkpoint",
           "checkpoint_key", "CHECKPOINT_VAR"]

CHECKPOINT_VAR = "AMBS_CHECKPOINT_DIR"  # where NAS problems store and look up trained weights
_LAYER_KEYS = ("op", "width", "kernel", "act", "skip")


@dataclass(frozen=True)
class Morph:
    """A child configuration and how its layers map to the parent's.

    ``layer_map[i]`` is the parent layer that child layer ``i`` inherits
    from, or None for an inserted identity layer.
    """

    kind: str
    child: dict[str, Any]
    layer_map: tuple[int | None, ...]


def _key(config: dict[str, Any]) -> str:
    return repr(sorted(config.items()))


def _layer(config: dict[str, Any], i: int) -> dict[str, Any]:
    return {k: config[f"l{i}_{k}"] for k in _LAYER_KEYS if f"l{i}_{k}" in config}


def _assemble(n_layers: int, layers: list[dict[str, Any]], spec: ArchSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"n_layers": n_layers}
    for i, layer in enumerate(layers):
        for k, v in layer.items():
            if k == "skip" and (i < 2 or not spec.skips):
                continue
            out[f"l{i}_{k}"] = v
        if spec.skips and i >= 2 and f"l{i}_skip" not in out:
            out[f"l{i}_skip"] = "none"
    return out


def _next(values: tuple[int, ...], v: int) -> int | None:
    bigger = [x for x in values if x > v]
    return bigger[0] if bigger else None


def morphisms(config: dict[str, Any], spec: ArchSpec) -> list[Morph]:
    """Every one-step morphism of ``config`` that stays in the space, in a fixed order."""
    n = int(config["n_layers"])
    resolved = layers_of(config, spec)
    layers = [_layer(config, i) for i in range(n)]
    identity = tuple(range(n))
    out: list[Morph] = []
    for i, layer in enumerate(resolved):
        if layer.op in WEIGHTED_OPS:
            w = _next(spec.widths, layer.width)
            if w is not None:
                new = [dict(x) for x in layers]
                new[i]["width"] = w
                out.append(Morph("widen", _assemble(n, new, spec), identity))
        if spec.kind == "image" and layer.op in WEIGHTED_OPS:  # a wider pooling window is not a morphism
            k = _next(spec.kernels, layer.kernel)
            if k is not None:
                new = [dict(x) for x in layers]
                new[i]["kernel"] = k
                out.append(Morph("grow", _assemble(n, new, spec), identity))
    if n < spec.max_layers:
        for p in range(n + 1):
            width = resolved[p - 1].width if p > 0 else spec.in_width
            nonneg = resolved[p - 1].act == "relu" if p > 0 else spec.nonnegative_input
            if not nonneg or width not in spec.widths or "relu" not in spec.activations:
                continue
            op = "conv" if spec.kind == "image" else "dense"
            if op not in spec.op_choices:
                continue
            for k in (spec.kernels if spec.kind == "image" else (1,)):
                inserted: dict[str, Any] = {"width": width, "act": "relu"}
                if len(spec.op_choices) > 1:
                    inserted["op"] = op
                if spec.kind == "image":
                    inserted["kernel"] = k
                new = [dict(x) for x in layers[:p]] + [inserted] + [dict(x) for x in layers[p:]]
                for q in range(p + 1, n + 1):
                    s = new[q].get("skip", "none")
                    if s != "none" and int(s) >= p:
                        new[q]["skip"] = str(int(s) + 1)
                lm = tuple(list(range(p)) + [None] + list(range(p, n)))
                out.append(Morph("deepen", _assemble(n + 1, new, spec), lm))
    if spec.skips:
        for i in range(2, n):
            if layers[i].get("skip", "none") == "none":
                for j in range(i - 1):
                    new = [dict(x) for x in layers]
                    new[i]["skip"] = str(j)
                    out.append(Morph("skip", _assemble(n, new, spec), identity))
    return out


def inherit(child: Any, parent_state: dict[str, Any], morph: Morph, spec: ArchSpec) -> None:
    """Load the parent's weights into ``child`` (a fresh :func:`build_model`) in place.

    Each child tensor takes the parent's tensor of the layer it maps to: the
    overlapping block is copied (kernels centred), input slices the parent
    did not have are zeroed (nothing reads new channels), new output rows
    keep their fresh initialization; a new skip projection starts at zero;
    an inserted layer starts as the identity.
    """
    import torch

    state = child.state_dict()
    new_state = {}
    for name, tensor in state.items():
        t = tensor.clone()
        parts = name.split(".")
        src = None
        if parts[0] in ("ops", "acts", "skips"):
            j = morph.layer_map[int(parts[1])]
            if j is not None:
                src = parent_state.get(".".join([parts[0], str(j)] + parts[2:]))
            elif parts[0] == "ops":
                t = _identity_like(t)
        else:
            src = parent_state.get(name)
        if src is None:
            if parts[0] == "skips":
                t.zero_()
            new_state[name] = t
            continue
        src = src.to(t.dtype)
        if t.dim() >= 2:
            if t.shape[1] > src.shape[1]:
                t[:, src.shape[1]:] = 0
            if t.dim() > 2:
                t[: src.shape[0]] = 0  # old rows: zero around the (centred) old kernel
        idx: list[slice] = []
        for d in range(t.dim()):
            if d >= 2:
                off = (t.shape[d] - src.shape[d]) // 2
                idx.append(slice(off, off + src.shape[d]))
            else:
                idx.append(slice(0, src.shape[d]))
        t[tuple(idx)] = src
        new_state[name] = t
    with torch.no_grad():
        child.load_state_dict(new_state)


def _identity_like(t: Any) -> Any:
    """An identity map in a conv ([c, c, k, k], centre tap) or dense ([c, c]) weight; zero bias."""
    t = t.clone().zero_()
    if t.dim() >= 2:
        c = min(t.shape[0], t.shape[1])
        for ch in range(c):
            if t.dim() == 4:
                t[ch, ch, t.shape[2] // 2, t.shape[3] // 2] = 1.0
            else:
                t[ch, ch] = 1.0
    return t


# ------------------------------------------------------------- checkpoints
def checkpoint_key(config: dict[str, Any]) -> str:
    """File stem of a configuration's checkpoint: a hash of its canonical form."""
    return hashlib.sha1(_key(config).encode()).hexdigest()[:16]


def save_checkpoint(directory: str | Path, config: dict[str, Any], objective: float, model: Any) -> Path:
    """Store a trained model; the .json sidecar is written last, so a reader sees only whole ones."""
    import torch

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_key(config)
    pt, meta = d / f"{stem}.pt", d / f"{stem}.json"
    tmp = d / f".{stem}.{os.getpid()}.tmp"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, pt)
    tmp.write_text(json.dumps({"config": config, "objective": objective}))
    os.replace(tmp, meta)
    return pt


def load_checkpoint(directory: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The stored state dict of ``config``.

    Weights only (``weights_only=True``): a checkpoint directory is shared by
    the workers of a search, and unpickling anything else from it could run
    code. A file holding more than tensors and plain containers raises ValueError.
    """
    import pickle

    import torch

    path = Path(directory) / f"{checkpoint_key(config)}.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"refusing checkpoint {path}: it holds more than weights ({first})") from None


def find_parent(directory: str | Path, child: dict[str, Any], spec: ArchSpec) -> tuple[dict[str, Any], Morph] | None:
    """The best stored network (highest objective) one morphism away from ``child``, or None."""
    d = Path(directory)
    if not d.is_dir():
        return None
    target = _key(child)
    best: tuple[float, str, dict[str, Any], Morph] | None = None
    for meta in sorted(d.glob("*.json")):
        try:
            doc = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        obj = doc.get("objective")
        score = float(obj) if isinstance(obj, (int, float)) and math.isfinite(obj) else -math.inf
        if best is not None and score <= best[0]:
            continue
        for m in morphisms(doc["config"], spec):
            if _key(m.child) == target:
                best = (score, meta.stem, doc["config"], m)
                break
    return None if best is None else (best[2], best[3])
