"""Value types of the command line's options: each turns a string into the
value or raises argparse's error, which the parser prints in one line."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["eta", "gpus", "nonneg_float", "nonneg_int", "numbers", "positive_float", "positive_int", "seconds"]


def number(text: str, cast: type, ok: Any, bound: str) -> Any:
    """``text`` as ``cast`` (int or float) that ``ok`` accepts, else a one-line argparse error."""
    try:
        v = cast(text)
    except ValueError:
        what = "a whole number" if cast is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
    return v


def positive_int(text: str) -> int:
    return number(text, int, lambda v: v >= 1, "at least 1")


def nonneg_int(text: str) -> int:
    return number(text, int, lambda v: v >= 0, "0 or more")


def nonneg_float(text: str) -> float:
    return number(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def positive_float(text: str) -> float:
    return number(text, float, lambda v: math.isfinite(v) and v > 0, "more than 0")


def eta(text: str) -> int:
    return number(text, int, lambda v: v >= 2, "at least 2")


def seconds(text: str) -> float:
    """A duration, read as every command reads one (see ambs.walltime)."""
    from ambs.walltime import parse_walltime

    try:
        return parse_walltime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def gpus(text: str) -> str:
    """``--gpus``: a count (4) or GPU indices (0,1,3), checked here, read by the evaluator."""
    from ambs.evaluator.placement import parse_gpus

    try:
        parse_gpus(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def numbers(text: str) -> list[float]:
    """A comma-separated list of numbers (``--reference 0.1,5000``)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}")
    return values
