"""Architecture search spaces: a variable-length chain of layers as an ambs Problem.

A network is ``n_layers`` layers in a chain, then a linear read-out. Layer
``i`` has an operation ``l{i}_op``, a width ``l{i}_width`` (channels or
units; pooling keeps its input's width), a kernel size ``l{i}_kernel``
(image chains), an activation ``l{i}_act``, and from the third layer on an
optional skip connection ``l{i}_skip`` from an earlier layer ``j <= i - 2``
("none" or ``str(j)``). Conditions make every hyperparameter of a layer
beyond ``n_layers`` inactive, so a configuration holds only the layers it
uses. With ``h_{-1}`` the input and ``h_i`` the output of layer ``i``::

    h_i = act_i(op_i(h_{i-1}) + P_i h_j)        (P_i a 1x1 projection, only with a skip)

The skip enters before the activation, and is always a learned projection
(even between equal widths), so that adding one initialized to zero keeps
the network's function (see :mod:`ambs.nas.morph`). Image chains keep the
spatial size ("same" padding, stride 1); the read-out flattens channel-major.

torch is imported only by :func:`build_model`; the space, the parameter
count and the morphisms are plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ambs.problem import Problem

__all__ = ["ArchSpec", "Layer", "arch_problem", "layers_of", "count_parameters", "build_model"]

IMAGE_OPS = ("conv", "sepconv", "maxpool")
VECTOR_OPS = ("dense",)
WEIGHTED_OPS = ("conv", "sepconv", "dense")  # ops with their own width


@dataclass(frozen=True)
class ArchSpec:
    """What a chain may hold and what it reads and predicts.

    Args:
        kind: "image" (input channels x height x width, conv-like ops) or
            "vector" (input features, dense layers).
        input_shape: (channels, height, width) or (features,).
        n_outputs: width of the read-out (classes).
        max_layers: the longest chain.
        ops: operations to choose from (``IMAGE_OPS`` or ``VECTOR_OPS`` by default).
        widths: channel or unit counts to choose from, ascending.
        kernels: odd kernel sizes (image chains), ascending.
        activations: from ``relu``, ``tanh``, ``elu``, ``gelu``, ``sigmoid``.
        skips: whether layers may take a skip connection.
        nonnegative_input: the input is >= 0 (pixels in [0, 1]): a ReLU
            identity layer can then be inserted first (a deepening morphism).
    """

    kind: str = "image"
    input_shape: tuple[int, ...] = (1, 8, 8)
    n_outputs: int = 10
    max_layers: int = 4
    ops: tuple[str, ...] = ()
    widths: tuple[int, ...] = (8, 16, 32, 64)
    kernels: tuple[int, ...] = (1, 3, 5)
    activations: tuple[str, ...] = ("relu", "tanh", "elu")
    skips: bool = True
    nonnegative_input: bool = True
    _ops: tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        if self.kind not in ("image", "vector"):
            raise ValueError(f"unknown architecture kind {self.kind!r} (image or vector)")
        ops = self.ops or (IMAGE_OPS if self.kind == "image" else VECTOR_OPS)
        allowed = IMAGE_OPS if self.kind == "image" else VECTOR_OPS
        if any(o not in allowed for o in ops):
            raise ValueError(f"{self.kind} chains take ops from {allowed}, got {ops}")
        if self.max_layers < 1:
            raise ValueError("max_layers must be at least 1")
        if list(self.widths) != sorted(set(self.widths)) or any(k % 2 == 0 for k in self.kernels):
            raise ValueError("widths must be distinct and ascending, kernels odd")
        object.__setattr__(self, "_ops", tuple(ops))

    @property
    def op_choices(self) -> tuple[str, ...]:
        return self._ops

    @property
    def in_width(self) -> int:
        return int(self.input_shape[0])

    @property
    def pixels(self) -> int:
        """Spatial positions per channel (1 for vector chains)."""
        n = 1
        for s in self.input_shape[1:]:
            n *= int(s)
        return n


@dataclass(frozen=True)
class Layer:
    """One layer of a chain, resolved from a configuration."""

    op: str
    width: int  # output width
    in_width: int
    kernel: int
    act: str
    skip: int | None  # index of the earlier layer, or None


def arch_problem(spec: ArchSpec, name: str | None = None) -> Problem:
    """The search space of ``spec`` as a Problem; ``problem.arch`` holds the spec.

    The starting point (for hill climbing) is the smallest network: one layer
    of the narrowest width, the smallest kernel above 1, ReLU.
    """
    p = Problem(name=name)
    p.arch = spec
    p.add_hyperparameter(list(range(1, spec.max_layers + 1)), "n_layers", ordered=True)
    for i in range(spec.max_layers):
        deeper = list(range(i + 1, spec.max_layers + 1))
        has_op = len(spec.op_choices) > 1
        if has_op:
            p.add_hyperparameter(list(spec.op_choices), f"l{i}_op")
        p.add_hyperparameter(list(spec.widths), f"l{i}_width", ordered=True)
        if spec.kind == "image":
            p.add_hyperparameter(list(spec.kernels), f"l{i}_kernel", ordered=True)
        p.add_hyperparameter(list(spec.activations), f"l{i}_act")
        if spec.skips and i >= 2:
            p.add_hyperparameter(["none"] + [str(j) for j in range(i - 1)], f"l{i}_skip")
        for hp in ("op", "width", "kernel", "act", "skip"):
            if f"l{i}_{hp}" in p.hyperparameter_names and i > 0 and not (hp == "width" and has_op):
                p.add_condition(f"l{i}_{hp}", "n_layers", deeper if len(deeper) > 1 else deeper[0])
        if has_op:
            weighted = [o for o in spec.op_choices if o in WEIGHTED_OPS]
            p.add_condition(f"l{i}_width", f"l{i}_op", weighted if len(weighted) > 1 else weighted[0])
    start: dict[str, Any] = {"n_layers": 1, "l0_width": spec.widths[0], "l0_act": spec.activations[0]}
    if len(spec.op_choices) > 1:
        start["l0_op"] = spec.op_choices[0]
    if spec.kind == "image":
        start["l0_kernel"] = next((k for k in spec.kernels if k > 1), spec.kernels[0])
    p.add_starting_point(**start)
    return p


def layers_of(config: dict[str, Any], spec: ArchSpec) -> list[Layer]:
    """The chain a configuration describes, with every layer's input width."""
    layers: list[Layer] = []
    width = spec.in_width
    default_op = spec.op_choices[0]
    for i in range(int(config["n_layers"])):
        op = config.get(f"l{i}_op", default_op)
        out = int(config[f"l{i}_width"]) if op in WEIGHTED_OPS else width
        skip = config.get(f"l{i}_skip", "none")
        layers.append(Layer(
            op=op, width=out, in_width=width, kernel=int(config.get(f"l{i}_kernel", 1)),
            act=config[f"l{i}_act"], skip=None if skip == "none" else int(skip),
        ))
        width = out
    return layers


def count_parameters(config: dict[str, Any], spec: ArchSpec) -> int:
    """Trainable weights of the network, without building it (a cheap objective).

    conv: k^2 c_in c_out + c_out; sepconv: k^2 c_in + c_in + c_in c_out + c_out;
    dense: c_in c_out + c_out; a skip from j: w_j w_i + w_i; read-out:
    w_last * pixels * n_outputs + n_outputs.
    """
    layers = layers_of(config, spec)
    total = 0
    for layer in layers:
        cin, cout, k = layer.in_width, layer.width, layer.kernel
        if layer.op == "conv":
            total += k * k * cin * cout + cout
        elif layer.op == "sepconv":
            total += k * k * cin + cin + cin * cout + cout
        elif layer.op == "dense":
            total += cin * cout + cout
        if layer.skip is not None:
            total += layers[layer.skip].width * cout + cout
    last = layers[-1].width if layers else spec.in_width
    return total + last * spec.pixels * spec.n_outputs + spec.n_outputs


def build_model(config: dict[str, Any], spec: ArchSpec) -> Any:
    """The torch module of a configuration (imports torch)."""
    import torch
    from torch import nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}
    layers = layers_of(config, spec)

    def op_module(layer: Layer) -> nn.Module:
        cin, cout, k = layer.in_width, layer.width, layer.kernel
        if layer.op == "conv":
            return nn.Conv2d(cin, cout, k, padding=k // 2)
        if layer.op == "sepconv":
            return nn.Sequential(nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin), nn.Conv2d(cin, cout, 1))
        if layer.op == "maxpool":
            return nn.MaxPool2d(k, stride=1, padding=k // 2)
        return nn.Linear(cin, cout)

    def projection(cin: int, cout: int) -> nn.Module:
        return nn.Conv2d(cin, cout, 1) if spec.kind == "image" else nn.Linear(cin, cout)

    class ChainNet(nn.Module):
        """h_i = act_i(op_i(h_{i-1}) + P_i h_j); then flatten and a linear read-out."""

        def __init__(self) -> None:
            super().__init__()
            self.layers = layers
            self.ops = nn.ModuleList(op_module(layer) for layer in layers)
            self.acts = nn.ModuleList(acts[layer.act]() for layer in layers)
            self.skips = nn.ModuleDict({
                str(i): projection(layers[layer.skip].width, layer.width)
                for i, layer in enumerate(layers) if layer.skip is not None
            })
            last = layers[-1].width if layers else spec.in_width
            self.head = nn.Linear(last * spec.pixels, spec.n_outputs)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outs: list[torch.Tensor] = []
            h = x
            for i, layer in enumerate(self.layers):
                z = self.ops[i](h)
                if layer.skip is not None:
                    z = z + self.skips[str(i)](outs[layer.skip])
                h = self.acts[i](z)
                outs.append(h)
            return self.head(h.flatten(1))

    return ChainNet()
