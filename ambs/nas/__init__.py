"""Neural architecture search: chain spaces, network morphisms, hardware-aware assignment.

Nothing here imports torch until a model is built.
"""

from __future__ import annotations

from ambs.nas.space import ArchSpec, arch_problem, build_model, count_parameters, layers_of

__all__ = ["ArchSpec", "arch_problem", "build_model", "count_parameters", "layers_of"]
