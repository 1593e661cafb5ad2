"""Checkpoints that let a promoted configuration continue its training.

A multi-fidelity search (Hyperband, ASHA, SHA) evaluates a configuration at
a small budget and promotes the best to larger ones. Without checkpoints,
``run(config, 9)`` after ``run(config, 3)`` trains 9 epochs from nothing;
with them it loads what the budget-3 training saved and trains 6 more
(weight inheritance, seed 004).

The master hands each budgeted job a file path, keyed by the configuration
without its budget (:meth:`CheckpointStore.path_for`); the worker's reporter
carries it as ``report.checkpoint`` (a :class:`pathlib.Path`, None when the
job has none). What goes in the file is the problem's business: the torch
problems save the model's and optimizer's state and the random generators'
(``problems/_torch.py``), and load it with ``weights_only=True``. The store
removes a configuration's file once it trained at the full budget (no
promotion is left for it), and the whole lot when the run is complete; a run
stopped by its walltime keeps them for ``--resume``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINTS", "SUFFIX", "CheckpointStore", "checkpoint_name"]

CHECKPOINTS = "checkpoints"  # in the run directory
SUFFIX = ".ckpt"


def _plain(value: Any) -> Any:
    """A JSON-able, type-stable form of a configuration value (numpy scalars included)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return repr(value)  # 3.0 and 3 are different configurations
    return value


def checkpoint_name(config: dict[str, Any]) -> str:
    """The file name of a configuration's checkpoint: a hash of its canonical form."""
    canon = json.dumps({k: _plain(v) for k, v in config.items() if not _missing(v)}, sort_keys=True, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:24] + SUFFIX


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, float) and math.isnan(value)


class CheckpointStore:
    """The master's side: which file each budgeted job may load and save.

    Args:
        run_dir: the run directory; files go in ``run_dir/checkpoints``.
        max_budget: the full budget; a job there gets its configuration's
            file to load, and the file is removed once it finished.
    """

    def __init__(self, run_dir: str | Path, max_budget: float | None) -> None:
        self.dir = Path(run_dir).resolve() / CHECKPOINTS
        self.max_budget = max_budget

    def path_for(self, config: dict[str, Any], budget: float | None) -> str | None:
        """The checkpoint file of a job (None for an unbudgeted one: nothing promotes it)."""
        if budget is None:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        return str(self.dir / checkpoint_name(config))

    def finished(self, config: dict[str, Any], budget: float | None) -> None:
        """A job finished: at the full budget, its configuration's file is no longer needed."""
        if budget is None or self.max_budget is None:
            return
        if budget >= self.max_budget or math.isclose(budget, self.max_budget, rel_tol=1e-9):
            self.retire([config])

    def retire(self, configs: list[dict[str, Any]]) -> None:
        """Remove the files of configurations that can no longer be promoted."""
        for config in configs:
            (self.dir / checkpoint_name(config)).unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every checkpoint of the run (the run is complete)."""
        if not self.dir.is_dir():
            return
        for path in self.dir.glob(f"*{SUFFIX}*"):  # partial writes (name.ckpt.tmp-PID) too
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:  # other files (a morphism search's weights) stay
            pass
