"""Searches that begin from earlier runs: warm starts and initial configurations.

``--warm-start RUN_DIR ...`` reads the finished results of earlier runs and
tells them to the new search as observations before it asks for anything;
they are not written to the new results.csv and do not count toward
``--max-evals``; a search re-runs none of them, except that AMBS puts the
best few in its initial design (``warm_design``), evaluated anew. The
earlier runs' hyperparameters are matched by name with the new space:

* a hyperparameter the new space lacks is ignored (its column is dropped,
  the row kept: the model sees the result averaged over it);
* a hyperparameter new to the space takes the space's default value in the
  old rows;
* a row whose values are outside the new space (out of new bounds, a value
  a categorical no longer has, forbidden, or active where the new conditions
  make it inactive and the other way round) is dropped;
* only rows that ended ``ok`` with a finite objective are used, and of a
  multi-fidelity run only those at its full budget (the largest in its
  results): a lower budget is a cheaper, noisier objective.

What was kept and dropped is one line on stderr. ``--initial-configs FILE``
(a CSV with one column per hyperparameter, ``p:`` prefixes allowed, or a JSON
list of objects) lists configurations the run evaluates first, before the
search proposes; on ``--resume`` those already in results.csv are not run
again. Both are recorded in run.json, and a resumed run reads its warm-start
sources again from there.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ambs.errors import AmbsError
from ambs.runinfo import read_run

__all__ = ["WarmStart", "load_initial_configs", "load_warm_start"]


class WarmStart:
    """Observations from earlier runs, and what was dropped on the way."""

    def __init__(self) -> None:
        self.observations: list[tuple[dict[str, Any], Any]] = []  # (config, objective or {name: value})
        self.read = 0  # ok rows read
        self.dropped = 0  # of them, outside the new space
        self.ignored: set[str] = set()  # hyperparameters the new space lacks
        self.defaulted: set[str] = set()  # hyperparameters new to the space, at their default
        self.low_budget = 0  # ok rows trained with less than their run's full budget, left out
        self.no_objectives = 0  # ok rows without a value of every declared objective, left out
        self.other_problems: set[str] = set()  # the earlier runs' problem names, where not the new one's

    def summary(self, sources: list[str]) -> str:
        what = f"ambs: warm start from {len(sources)} run(s): {len(self.observations)} of {self.read} results told"
        if self.dropped:
            what += f", {self.dropped} outside the new space dropped"
        if self.low_budget:
            what += f", {self.low_budget} at a lower budget than their run's full one left out"
        if self.no_objectives:
            what += f", {self.no_objectives} without every declared objective (o: columns) left out"
        if self.ignored:
            what += f"; ignored (not in the space): {', '.join(sorted(self.ignored))}"
        if self.defaulted:
            what += f"; at their default (new): {', '.join(sorted(self.defaulted))}"
        if self.other_problems:  # allowed (a variant of the problem), but worth a word
            what += f"; runs of another problem: {', '.join(sorted(self.other_problems))}"
        return what


def _float(text: Any) -> float | None:
    try:
        f = float(text)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _number(text: str) -> Any:
    try:
        f = float(text)
    except ValueError:
        return text
    return int(f) if f.is_integer() and "." not in text and "e" not in text.lower() else f


def _coerce(space: Any, name: str, value: Any) -> Any:
    """A cell as the hyperparameter's type (a CSV holds text)."""
    from ConfigSpace import CategoricalHyperparameter, OrdinalHyperparameter

    hp = space[name]
    if isinstance(value, str) and isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
        choices = list(hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence)
        for c in choices:  # a choice written as text: 32 for the int 32, True for the bool
            if str(c) == value:
                return c
        return value
    if isinstance(value, str):
        value = _number(value)
    # JSON's 0 for a real one, a CSV's 3.0 for an integer one: as the space would propose them.
    from ConfigSpace.hyperparameters import FloatHyperparameter, IntegerHyperparameter

    if isinstance(hp, FloatHyperparameter) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hp, IntegerHyperparameter) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _configure(space: Any, row: dict[str, Any], ws: WarmStart | None) -> dict[str, Any] | None:
    """The configuration of the new space a row of another run stands for, or None."""
    from ConfigSpace.util import deactivate_inactive_hyperparameters

    names = list(space.keys())
    values: dict[str, Any] = {}
    for name, value in row.items():
        if name not in names:
            if ws is not None and value not in ("", None):
                ws.ignored.add(name)
            continue
        if value in ("", None) or isinstance(value, float) and math.isnan(value):
            continue  # inactive in the old run
        values[name] = _coerce(space, name, value)
    for name in names:
        if name not in row and name not in values:
            values[name] = space[name].default_value
            if ws is not None:
                ws.defaulted.add(name)
    try:
        # Fill the new space's inactive ones away: a value the conditions switch
        # off was active in the old run only if it was given there.
        config = deactivate_inactive_hyperparameters(values, space)
        config.check_valid_configuration()
    except Exception:  # noqa: BLE001 - out of bounds, unknown choice, forbidden
        return None
    out = {n: values[n] for n in dict(config)}  # the values as written, not as ConfigSpace rounds them
    given = {n for n in values if n in row}
    if any(n not in out for n in given):
        return None  # active in the old run, inactive under the new conditions
    return out


def _rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return list(reader), list(reader.fieldnames or [])
    except OSError as exc:
        raise AmbsError(f"cannot read {path}: {exc.strerror}") from None


def load_warm_start(sources: list[str | Path], space: Any, objectives: list[str] | None = None,
                    problem: str | None = None) -> WarmStart:
    """The ok results of the runs in ``sources`` (run directories or their
    results.csv) as (configuration, objective) observations of ``space``;
    for a problem with several declared ``objectives``, (configuration,
    {name: value}) from the earlier runs' ``o:<name>`` columns. ``problem``:
    the new run's problem name, to say which earlier runs were of another."""
    ws = WarmStart()
    for source in sources:
        path = Path(source)
        csv_path = path / "results.csv" if path.is_dir() else path
        if not csv_path.exists():
            raise AmbsError(f"--warm-start {source}: no results.csv there")
        name = read_run(csv_path.parent).get("problem_name")
        if problem is not None and isinstance(name, str) and name and name != problem:
            ws.other_problems.add(name)
        rows, fields = _rows(csv_path)
        if "objective" not in fields or not any(f.startswith("p:") for f in fields):
            raise AmbsError(f"--warm-start {source}: {csv_path.name} is not a results file of ambs "
                            "(no objective and p: columns)")
        budgets = [_float(r.get("budget")) for r in rows]
        full = max((b for b in budgets if b is not None), default=None)
        for row, budget in zip(rows, budgets):
            if row.get("status", "ok") != "ok":
                continue
            if full is not None and budget is not None and budget < full * (1 - 1e-9):
                ws.low_budget += 1  # a multi-fidelity run's cheaper, noisier objective
                continue
            try:
                objective = float(row["objective"])
            except (TypeError, ValueError):
                continue
            if not math.isfinite(objective):
                continue
            ws.read += 1
            if objectives:
                values = {n: _float(row.get(f"o:{n}")) for n in objectives}
                if any(v is None for v in values.values()):
                    ws.no_objectives += 1
                    continue
            config = _configure(space, {k[2:]: v for k, v in row.items() if k.startswith("p:")}, ws)
            if config is None:
                ws.dropped += 1
                continue
            ws.observations.append((config, values if objectives else objective))
    return ws


def load_initial_configs(source: str | Path | list[dict[str, Any]], space: Any) -> list[dict[str, Any]]:
    """The configurations of a CSV or JSON file (or a list of dicts), each
    completed with the space's defaults; a configuration outside the space is
    an error naming it."""
    if isinstance(source, list):
        items = source
    else:
        path = Path(source)
        if not path.exists():
            raise AmbsError(f"--initial-configs {source}: no such file")
        if path.suffix.lower() == ".json":
            try:
                items = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise AmbsError(f"--initial-configs {source}: not readable as JSON ({exc})") from None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise AmbsError(f"--initial-configs {source}: expected a JSON list of objects")
        else:
            rows, _ = _rows(path)
            items = [{(k[2:] if k.startswith("p:") else k): v for k, v in r.items()} for r in rows]
    names = set(space.keys())
    out = []
    for i, item in enumerate(items, start=1):
        unknown = sorted(k for k in item if k not in names and item[k] not in ("", None))
        if unknown and not isinstance(source, list) and Path(source).suffix.lower() != ".json":
            # A results.csv has other columns too; only p: columns and plain names that match count.
            item = {k: v for k, v in item.items() if k in names}
            unknown = []
        if unknown:
            raise AmbsError(f"--initial-configs: configuration {i} has hyperparameters the space lacks: "
                            f"{', '.join(unknown)}")
        config = _configure(space, {k: v for k, v in item.items() if k in names}, None)
        if config is None:
            raise AmbsError(f"--initial-configs: configuration {i} is not in the search space: {item}")
        out.append(config)
    return out
