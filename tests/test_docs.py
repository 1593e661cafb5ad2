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


def _python_blocks() -> list[tuple[int, str]]:
    """The README's ```python blocks, dedented, with their first line number."""
    blocks, current, start, indent = [], None, 0, 0
    for n, line in enumerate(README.read_text().splitlines(), start=1):
        stripped = line.strip()
        if current is None and stripped == "```python":
            current, start, indent = [], n + 1, len(line) - len(line.lstrip())
        elif current is not None and stripped == "```":
            blocks.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


def _new_style_unions(tree: ast.Module) -> list[int]:
    """Lines of annotations with ``X | Y``, which Python 3.9 evaluates and rejects
    unless the module has ``from __future__ import annotations``."""
    if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
           any(a.name == "annotations" for a in n.names) for n in tree.body):
        return []
    lines = []
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations = [a.annotation for a in node.args.args + node.args.kwonlyargs] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        for ann in annotations:
            if ann is not None and any(isinstance(x, ast.BinOp) and isinstance(x.op, ast.BitOr)
                                       for x in ast.walk(ann)):
                lines.append(node.lineno)
    return lines


def test_readme_python_blocks_run_on_python_3_9(tmp_path: Path) -> None:
    """Every python block compiles and runs on the oldest supported Python (3.9):
    no ``X | Y`` annotation without the __future__ import. A block that defines a
    problem is a problem module ambs loads."""
    from ambs.problem import load_problem

    blocks = _python_blocks()
    problems = 0
    for line, code in blocks:
        tree = ast.parse(code, filename=f"README.md:{line}")
        compile(tree, f"README.md:{line}", "exec")
        assert not _new_style_unions(tree), f"README.md, block at line {line}: fails on Python 3.9"
        if "Problem(" in code:
            path = tmp_path / f"readme_{line}.py"
            path.write_text(code)
            loaded = load_problem(str(path))
            assert callable(loaded.run) and loaded.problem.hyperparameter_names
            problems += 1
    assert problems >= 1


def _help(capsys: Any, *argv: str) -> str:
    import pytest

    from ambs.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_readme_search_synopsis_matches_the_help(capsys: Any) -> None:
    """Every long option of `ambs search --help` is in the README's synopsis, and the
    synopsis names no other; its methods are the command's."""
    import re

    help_text = _help(capsys, "search")
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text)) - {"--help"}
    synopsis = README.read_text().split("## Searching", 1)[1].split("```", 2)[1]
    in_readme = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", synopsis))
    assert sorted(options - in_readme) == [], "options of `ambs search --help` missing from the README"
    assert sorted(in_readme - options) == [], "README options that `ambs search` does not have"
    methods = re.search(r"--method \{([^}]*)\}", help_text).group(1).split(",")
    assert re.search(r"\[--method ([\w|]+)\]", synopsis).group(1).split("|") == methods


def test_readme_names_every_analyze_command(capsys: Any) -> None:
    """The README's post-processing section names each `ambs analyze` subcommand."""
    import re

    help_text = _help(capsys, "analyze")
    listing = help_text.split("WHAT\n", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"^    ([a-z]+) ", listing, flags=re.M)
    assert {"summary", "plot", "compare", "pareto", "report"} <= set(names)
    section = README.read_text().split("### Post-processing", 1)[1].split("\n## ", 1)[0]
    missing = [n for n in names if f"ambs analyze {n}" not in section]
    assert missing == [], f"the README's post-processing section does not name {missing}"
    mentioned = set(re.findall(r"ambs analyze ([a-z]+)", README.read_text()))
    assert mentioned <= set(names), f"the README names analyze commands that do not exist: {mentioned - set(names)}"


def test_ci_runs_the_readme_test_command_then_the_oldest_versions() -> None:
    """.ci/run runs the README's test command (the second quick-start line) as it
    stands, then scripts/test-oldest-deps.sh, which the README's testing paragraph names."""
    readme = README.read_text()
    quick_start = readme.split("## Quick start")[1].split("```bash")[1].split("```")[0]
    test_command = [line for line in quick_start.splitlines() if line.strip()][1]
    assert "pytest" in test_command
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command.strip() in ci
    assert ci.index("bash scripts/test-oldest-deps.sh") > ci.index(test_command.strip())
    assert "scripts/test-oldest-deps.sh" in readme.split("## Writing a problem")[0]


def test_readme_architecture_methods_are_the_flagged_ones() -> None:
    """The methods the README's architecture-search section lists are those whose
    class says ``architecture_search`` (the user-path suite runs each on a NAS problem)."""
    import re

    from ambs.search import ALL_METHODS

    section = README.read_text().split("## Architecture search", 1)[1].split("\n## ", 1)[0]
    in_readme = re.findall(r"^\* `--method ([a-z]+)`", section, flags=re.M)
    assert in_readme == [m for m in ALL_METHODS if ALL_METHODS[m].architecture_search]
    assert in_readme == ["evolution", "lemonade", "reinforce", "morphism"]
