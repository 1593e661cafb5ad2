"""How one value becomes a cell of results.csv, how large a cell may be, and
how the cells of the file are read back.

What ambs writes, ambs reads back: a cell holds at most ``MAX_ERROR_CHARS``
characters of error text and ``MAX_CELL_CHARS`` of anything else (a longer
value is cut, ending in a ``[cut: N characters in all]`` marker), well within
the field limit that every reader of a results CSV sets with
:func:`allow_large_fields` (which also reads CSVs written before the caps).
:func:`read_table` is the one reader of the file, for ``--resume``
(:func:`ambs.recorder.read_results`) and for :mod:`ambs.analysis`; the value
of a ``p:`` cell is :func:`hp_value`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAX_CELL_CHARS", "MAX_ERROR_CHARS", "Table", "allow_large_fields", "cap_text", "cell", "first_line",
           "hp_cell", "hp_text", "hp_value", "parse_hp_cell", "read_table", "relative_path", "to_json"]

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


def relative_path(path: str, run_dir: str | Path) -> str:
    """The cell of a file's path (an evaluation's log): relative to the run directory."""
    if not path:
        return ""
    base = os.fspath(run_dir)
    if os.path.isabs(path) and os.path.isabs(base) and path.startswith(base.rstrip(os.sep) + os.sep) \
            and os.sep + ".." not in path and "/./" not in path:
        rel = path[len(base.rstrip(os.sep)) + 1:]  # the usual case, without a syscall
        return rel if os.sep == "/" else Path(rel).as_posix()
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(run_dir).resolve())).as_posix()
    except ValueError:  # on another drive: as it is
        return path


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


def hp_value(text: str) -> str | None:
    """The value text of a ``p:`` cell as read: None for the empty cell (inactive)."""
    return None if text == "" else hp_text(text)


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


# ---------------------------------------------------------------- reading the file
@dataclass
class Table:
    """The cells of a results CSV as they are written (text), in file order.

    ``header`` is the first line; ``rows`` are the complete rows after it
    (blank lines left out) and ``lines`` the line each of them starts on.
    ``dropped`` says that a half-written last line (fewer or more fields than
    the header, no newline after it: a run still writing, or a crash) was left
    out; ``complete``, that the file ends with a newline.
    """

    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    complete: bool = True
    dropped: bool = False

    @property
    def last_cut(self) -> bool:
        """The last row kept is on a line without a newline (it may be cut short)."""
        return bool(self.rows) and not self.complete and not self.dropped

    def check_widths(self, path: str | Path) -> None:
        """ValueError naming the first row with another number of fields than the header."""
        for row, line in zip(self.rows, self.lines):
            if len(row) != len(self.header):
                raise ValueError(f"{path}, line {line}: {len(row)} fields, expected {len(self.header)}")


def read_table(path: str | Path) -> Table:
    """Read a results CSV into a :class:`Table`; a file with nothing but
    whitespace has no header and no rows.

    Raises ValueError, with a message that names the file, for a file that
    cannot be read or is not text. Rows keep their number of fields: the
    caller checks them with :meth:`Table.check_widths` once it knows the file
    is one it reads. Warns about nothing: the caller says what a dropped last
    line means.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a results CSV (not a text file)") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a results CSV") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return Table([], [], [])
    if "\x00" in text:
        raise ValueError(f"{path} is not a results CSV (binary content)")
    complete = text.endswith("\n")
    allow_large_fields()  # the long cells ambs writes, and those of CSVs written before its caps
    reader = csv.reader(io.StringIO(text))
    rows, lines, start = [], [], 1
    try:
        for row in reader:
            if row:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValueError(f"{path} is not a readable CSV ({exc})") from None
    header, rows, lines = rows[0], rows[1:], lines[1:]
    dropped = False
    if rows and not complete and len(rows[-1]) != len(header):
        rows.pop()
        lines.pop()
        dropped = True
    return Table(header, rows, lines, complete, dropped)
