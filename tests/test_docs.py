"""The README and the packaging agree with the code: what ``pip install -e .``
installs, the problem templates, and the options of the commands."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _setup_keywords() -> dict[str, Any]:
    """The literal keyword arguments of the setup() call in setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            out = {}
            for kw in node.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    pass
            return out
    raise AssertionError("no setup() call in setup.py")


def test_plain_install_brings_matplotlib() -> None:
    """`ambs analyze plot` works after the README's first command, `pip install -e .`."""
    kw = _setup_keywords()
    assert any(r.replace(" ", "").startswith("matplotlib>=3.7") for r in kw["install_requires"])
    assert "analysis" in kw["extras_require"]  # old instructions still install
    quick_start = README.read_text().split("## Writing a problem")[0]
    assert "pip install -q -e ." in quick_start and "matplotlib" in quick_start.split("The first")[1]
