"""How one value becomes a cell of results.csv, and how large a cell may be.

What ambs writes, ambs reads back: a cell holds at most ``MAX_ERROR_CHARS``
characters of error text and ``MAX_CELL_CHARS`` of anything else (a longer
value is cut, ending in a ``[cut: N characters in all]`` marker), well within
the field limit that every reader of a results CSV sets with
:func:`allow_large_fields` (which also reads CSVs written before the caps).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from typing import Any

__all__ = ["MAX_CELL_CHARS", "MAX_ERROR_CHARS", "allow_large_fields", "cap_text", "cell", "first_line",
           "hp_cell", "hp_text", "parse_hp_cell", "to_json"]

MAX_ERROR_CHARS = 10_000  # the error text of a row (a 200 KB exception message is cut)
MAX_CELL_CHARS = 100_000  # any other cell (large metadata is cut)
# What readers accept: far above the caps, so CSVs written before them read too
# (csv's default, 131,072, refused a longer field).
FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


def allow_large_fields() -> None:
    """Raise the csv module's field size limit to FIELD_LIMIT (a process-wide setting)."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in a marker that says it was."""
    if len(text) <= limit:
        return text
    marker = f" ... [cut: {len(text)} characters in all]"
    return text[: max(limit - len(marker), 0)] + marker


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def to_json(v: Any) -> str:
    """JSON of ``v``, keys sorted where they compare (not ``{1: .., "b": ..}``);
    what JSON has no type for becomes its ``str``."""
    try:
        return json.dumps(v, default=str, sort_keys=True)
    except TypeError:
        return json.dumps(v, default=str)


def cell(v: Any) -> str:
    """The CSV text of one value (JSON for containers); raises for what JSON cannot hold."""
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    if hasattr(v, "item") and callable(v.item):  # numpy scalar
        try:
            return cell(v.item())
        except (TypeError, ValueError):
            pass
    return str(v)


# A hyperparameter cell: empty means inactive (a conditional hyperparameter
# whose condition does not hold). A value whose text is empty, or made only of
# double quotes, is written with two more double quotes: "" is the cell of the
# empty string, """" that of '""'. Every other value is its text, as in CSVs
# written before this encoding, which read back the same.
_QUOTES = re.compile('"*')


def hp_cell(value: Any) -> str:
    """The cell of a hyperparameter's value; None (inactive) is the empty cell."""
    if value is None:
        return ""
    text = cell(value)
    return text + '""' if _QUOTES.fullmatch(text) else text


def hp_text(text: str) -> str:
    """The value text of a non-empty hyperparameter cell (undoes :func:`hp_cell`)."""
    return text[:-2] if len(text) >= 2 and _QUOTES.fullmatch(text) else text


def parse_hp_cell(hp: Any, raw: str) -> Any:
    """The value of ConfigSpace hyperparameter ``hp`` that a non-empty ``p:`` cell holds; ValueError if none."""
    from ConfigSpace.hyperparameters import (
        CategoricalHyperparameter,
        Constant,
        IntegerHyperparameter,
        OrdinalHyperparameter,
    )

    if isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
        choices = hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence
        for text in dict.fromkeys((hp_text(raw), raw)):  # the raw text: an older CSV's '""'
            for c in choices:
                if str(c) == text:
                    return c
        raise ValueError(f"{raw!r} is not a choice of {hp.name}")
    if isinstance(hp, Constant):
        return hp.value
    if isinstance(hp, IntegerHyperparameter):
        return int(float(raw))
    return float(raw)
