"""A cluster's own ``ambs submit`` settings, so that no job script needs editing.

``--config FILE``, else ``ambs.toml`` in the current directory, else
``$XDG_CONFIG_HOME/ambs/config.toml`` (``~/.config/ambs/config.toml``). Its
``[submit]`` table holds long option names with underscores::

    [submit]
    scheduler = "slurm"
    account = "MYPROJ"
    launcher = "srun"
    mpi = "pmix"
    setup = ["module load cuda", "source ~/venvs/ambs/bin/activate"]
    directive = ["--mail-type=END"]

The file's values are defaults: a value on the command line wins, and lines
of the repeatable options (``setup``, ``directive``) come after the file's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ambs.errors import AmbsError

__all__ = ["config_path", "load_config"]


def config_path(given: str | None, cwd: Path | None = None) -> Path | None:
    """The settings file that applies: ``given``, ``./ambs.toml``, the user's, or None."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise AmbsError(f"--config {given}: no such file")
        return path
    local = (cwd or Path.cwd()) / "ambs.toml"
    if local.is_file():
        return local
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(base) / "ambs" / "config.toml"
    return user if user.is_file() else None


def load_config(path: Path, known: dict[str, Any]) -> dict[str, Any]:
    """The ``[submit]`` table of ``path``, checked against ``known`` (option
    name -> argparse action); every mistake is one line naming the file."""
    try:
        import tomllib  # Python 3.11
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise AmbsError(f"reading {path} needs Python 3.11 or the tomli package") from None
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise AmbsError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AmbsError(f"{path}: not valid TOML: {exc}") from None
    unknown_tables = sorted(set(data) - {"submit"})
    if unknown_tables:
        raise AmbsError(f"{path}: unknown table or key {unknown_tables[0]!r} (only [submit] is read)")
    table = data.get("submit", {})
    if not isinstance(table, dict):
        raise AmbsError(f"{path}: submit must be a table, [submit]")
    values: dict[str, Any] = {}
    for key, value in table.items():
        action = known.get(key)
        if action is None:
            raise AmbsError(f"{path}: unknown key {key!r} in [submit] (keys are `ambs submit` option "
                            "names with underscores, e.g. account, setup, launcher)")
        values[key] = _convert(path, key, value, action)
    return values


def _convert(path: Path, key: str, value: Any, action: Any) -> Any:
    """``value`` as the command line would have given it for ``action``."""
    flag = "--" + key.replace("_", "-")
    if action.nargs == 0:  # a switch, e.g. exclusive = true
        if not isinstance(value, bool):
            raise AmbsError(f"{path}: {key} must be true or false, got {value!r}")
        return value
    if type(action).__name__ == "_AppendAction":
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise AmbsError(f"{path}: {key} must be a string or a list of strings")
        return list(items)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AmbsError(f"{path}: {key} must be a string or a number, got {value!r}")
    text = str(value)
    if action.type is not None:
        try:
            converted = action.type(text)
        except Exception as exc:  # argparse's own type errors, one line
            raise AmbsError(f"{path}: {key} ({flag}): {exc}") from None
    else:
        converted = text
    if action.choices is not None and converted not in action.choices:
        raise AmbsError(f"{path}: {key} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted
