"""What a run directory records about its problem, for the analysis.

``space.json`` is the search space in ConfigSpace's JSON format, written by
the recorder when a run is created (:func:`ambs.recorder.write_space`): plots
take axis scales (log-uniform or uniform) and the order of categorical levels
from it instead of guessing them from the values. ``run.json`` names the
budget (``"budget": {"name": "epochs", ...}``) and, for problems with several
objectives, the objectives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ambs.recorder import SPACE

__all__ = ["read_space", "is_textual", "is_number", "budget_name", "budget_text", "at_budget", "objective_names"]

_NUMERIC = ("uniform_float", "uniform_int", "normal_float", "normal_int", "beta_float", "beta_int")


def _geometric(seq: Sequence[float]) -> bool:
    """Positive, increasing values with a constant ratio above 1.5 (16, 32, 64, ...)."""
    if len(seq) < 3 or any(v <= 0 for v in seq):
        return False
    ratios = [b / a for a, b in zip(seq, seq[1:])]
    return min(ratios) > 1.5 and max(ratios) / min(ratios) < 1.01


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_space(run_dir: Path) -> dict[str, dict[str, Any]] | None:
    """Per hyperparameter of ``run_dir/space.json``: ``type`` (ConfigSpace's),
    ``log`` (a log scale) and ``order`` (the levels as the CSV writes them, in
    declaration order; None for ranges). None when there is no readable file."""
    try:
        doc = json.loads((Path(run_dir) / SPACE).read_text())
        hps = doc["hyperparameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out: dict[str, dict[str, Any]] = {}
    for hp in hps if isinstance(hps, list) else []:
        if not isinstance(hp, dict) or not isinstance(hp.get("name"), str):
            continue
        kind = str(hp.get("type", ""))
        values = hp.get("choices") or hp.get("sequence")
        if kind == "constant":
            values = [hp.get("value")]
        info: dict[str, Any] = {"type": kind, "log": False, "order": None}
        if kind in _NUMERIC:
            info["log"] = bool(hp.get("log", False))
        elif isinstance(values, list):
            info["order"] = [str(v) for v in values]
            if kind == "ordinal" and all(is_number(v) for v in values):
                info["log"] = _geometric([float(v) for v in values])
        out[hp["name"]] = info
    return out


def is_textual(info: dict[str, Any] | None) -> bool:
    """A declared hyperparameter with a level that is not a number ("none", "relu"):
    its CSV cells stay strings even where the active ones look like numbers."""
    if info is None or not info.get("order"):
        return False
    for level in info["order"]:
        try:
            float(level)
        except ValueError:
            return True
    return False


def budget_name(settings: dict[str, Any]) -> str:
    """The budget's name from run.json (``epochs``, ``n_estimators``), else ``budget``."""
    b = settings.get("budget")
    name = b.get("name") if isinstance(b, dict) else None
    return name if isinstance(name, str) and name else "budget"


def budget_text(value: float) -> str:
    """A budget as a person reads it: ``66.67``, not ``66.6667`` (a rung of
    ``--eta 3`` below 200 trees); two decimals at most, four significant
    digits below 1, no trailing zeros (``2``, ``0.5``)."""
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return f"{v:g}"
    text = f"{v:.2f}" if abs(v) >= 1 else f"{v:.4g}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def at_budget(settings: dict[str, Any], value: float | None) -> str:
    """`` at 8 epochs`` (`` at budget 8`` for an unnamed budget), the name from
    run.json's settings; empty for None."""
    return budget_phrase(budget_name(settings), value)


def budget_phrase(name: str, value: float | None) -> str:
    """`` at 8 epochs`` for a budget called ``name`` (`` at budget 8`` for ``budget``); empty for None."""
    if value is None:
        return ""
    text = budget_text(value)
    return f" at budget {text}" if name == "budget" else f" at {text} {name}"


def objective_names(settings: dict[str, Any], width: int) -> list[str]:
    """Names for ``width`` objectives: the problem's (run.json), else objective_1, ..."""
    names = settings.get("objectives")
    if (isinstance(names, list) and len(names) == width and len(set(map(str, names))) == width
            and all(isinstance(n, str) and n and n not in ("job_id", "pareto") for n in names)):
        return list(names)
    return [f"objective_{k + 1}" for k in range(width)]
