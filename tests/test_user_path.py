"""Every path a user takes: ``ambs search`` on a shipped problem, every
``ambs analyze`` subcommand on the run, then ``ambs search --resume`` with a
larger ``--max-evals``, each through the command line.

The matrix is generated, never listed by hand, so that a new method, problem,
evaluator or analyze subcommand is covered without editing this file:

* problems: ``problems/*.py`` but the private modules (``_torch.py``, ``_nas.py``, ``__init__.py``);
  the architecture problems are ``problems/nas_*.py`` (and any ``ambs.nas`` space);
* methods: :data:`ambs.search.ALL_METHODS`, the registry behind ``--method``; the
  architecture methods are those whose class says ``architecture_search``;
* evaluators: :data:`ambs.evaluator.EVALUATORS`, the choices of ``--evaluator``.
  ``balsam`` needs a Balsam database (tests/test_balsam.py runs it against
  PostgreSQL); ``mpi`` needs ``mpiexec`` and has cells of its own (every method
  once, see :func:`mpi_cells`, marked ``mpi``); every other evaluator
  (``serial``, ``process``) is local and runs in the covering design below;
* analyze subcommands: the subparsers of ``ambs analyze`` in :func:`ambs.cli.build_parser`.

Whether a method accepts a problem is the command line's own decision: the
cells call :func:`ambs.cli._make_search`, the function ``ambs search`` builds
its search with (multi-fidelity methods refuse a problem without a budget;
grid refuses a grid of more than 5e6 points). For every method some problem
refuses, a refusal cell checks that ``ambs search`` says so in one line, the
same line, exit 2, and leaves no run directory (on the problems without a
budget: on one with a budget, a method that takes no small budget is left
out, not refused).

Budgets. A cell runs ``FIRST`` evaluations, then resumes to ``TOTAL``. On a
problem that declares a budget (epochs, trees), a cell trains at the cheapest
budget a user can ask for: the multi-fidelity methods (and ambs with
``--stopper sha``) two rungs, ``--max-budget`` twice the low end and ``--eta
2``; every other method ``--max-budget`` at the low end, which it trains every
configuration with (one epoch of an architecture search, where ``run(config)``
trains 4 to 6). The command line decides which options a method takes, as above.

Every shipped problem meets every method that accepts it: the covering design
below, plus one cell for each pair it leaves out (:func:`pair_cells`, about 110
of 140 pairs), searched under the serial evaluator in this process (through
the command's entry point, :func:`ambs.cli.main`: no interpreter start, torch
imported once per test process), then analyzed and resumed as every cell is.
The product with the evaluators as well (twice as many local cells, each
starting processes) would take far beyond what this suite may add to CI on
2 cores, so the evaluators meet the problems and methods in the covering
design, built greedily (see :func:`covering_design`):
each architecture method on an architecture problem and each of those with
one, a pairing; every problem without torch under every local evaluator; every
torch problem once, under serial (one process imports torch, where a pool
imports it in every worker: about 4 s of CPU per process, twice per cell with
the resume) unless a pair it runs is missing; each cell with the method used
least so far under that evaluator, options no cell passed yet first, so that
every method runs under every local evaluator. Cells on the torch problems are
marked ``slow``; ``.ci/run`` runs them all the same.

Checks of every cell: exit 0; stderr holds nothing but the progress lines and
``ambs:`` notes (no traceback, no warning, no error); results.csv's header is
run.json's columns, every row has as many fields, every status is valid and
every evaluation of a shipped problem is ``ok``, job ids are unique, the
resume appends to the rows it found and reaches ``TOTAL``; every analyze
subcommand exits 0 without a warning and writes what it says it wrote
(non-empty PNG files, the HTML report): in every local cell, and in one MPI
cell (``MPI_ANALYZED``; the others check ``summary --json``). ``pareto`` on a run with one
objective refuses in one line, then runs on ``--objectives objective,-finished``.

The analyze subcommands run in this process, through :func:`ambs.cli.main`
(the ``ambs`` command's entry point), which saves an interpreter start and
the import of matplotlib per command; Python warnings are recorded there, and
pyproject.toml's filters turn pandas', numpy's and scikit-learn's deprecations
into errors. ``test_analyze_subcommands_as_commands`` runs them all once as
``python -m ambs analyze`` processes as well.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ambs import cli
from ambs.errors import AmbsError
from ambs.evaluator import EVALUATORS
from ambs.problem import LoadedProblem, load_problem
from ambs.result import Status
from ambs.search import ALL_METHODS

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
PNG = b"\x89PNG\r\n\x1a\n"
FIRST, TOTAL = 3, 5  # evaluations of the first search, then of the resumed run
SEED = 7
TIMEOUT = 600  # seconds for one command; a cell takes seconds, a torch cell under a minute

# Evaluators that do not run in the local design, and why.
NOT_LOCAL = {
    "mpi": "launched by mpiexec: see mpi_cells",
    "balsam": "needs a Balsam database (PostgreSQL): tests/test_balsam.py runs it",
}
LOCAL_EVALUATORS = [e for e in EVALUATORS if e not in NOT_LOCAL]
EVALUATOR_OPTIONS = {"process": ["--workers", "2"]}
# A few evaluations exercise a method's own machinery: the model of ambs after
# two initial points, the mutations of evolution once its population is full.
METHOD_OPTIONS = {
    "ambs": ["--n-initial-points", "2"],
    "evolution": ["--population-size", "2", "--sample-size", "2"],
    "lemonade": ["--population-size", "2", "--sample-size", "2"],
}
# The methods meant for network architectures, by their classes' own word.
ARCHITECTURE_METHODS = [m for m in ALL_METHODS if ALL_METHODS[m].architecture_search]
MPI_RANKS = 3  # MPI cells (see mpi_cells): the master and two workers

# What stderr may hold: the progress lines and the command's notes.
PROGRESS = re.compile(r"\[\d+/\d+\] (best \S+|front \d+) \| running \d+ \| .* \| \d+:\d\d:\d\d")
NOTE = re.compile(r"ambs: (?!error|warning)\S.*")
FORBIDDEN = re.compile(r"traceback|warning|error|exception", re.IGNORECASE)
PARSER = cli.build_parser()  # the command line's parser; parse_args leaves it as it is
# Categories Python does not show a user by default (outside __main__).
HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


# ---------------------------------------------------------------- the matrix
@dataclass
class Shipped:
    """A shipped problem, loaded here as ``ambs search`` loads it."""

    path: Path
    loaded: LoadedProblem | None = None
    missing: str | None = None  # why it cannot load here (a package not installed)
    options: dict[str, list[str] | None] = field(default_factory=dict)  # per method; None: not cheap
    refused: dict[str, str] = field(default_factory=dict)  # method -> the command line's refusal

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def torch(self) -> bool:
        return "torch" in self.path.read_text()

    @property
    def architecture(self) -> bool:
        """An architecture search: ``problems/nas_*.py`` (the README's table of them),
        or any space of :func:`ambs.nas.space.arch_problem` (``problem.arch``)."""
        arch = getattr(self.loaded.problem, "arch", None) if self.loaded is not None else None
        return self.name.startswith("nas_") or arch is not None

    @property
    def budgeted(self) -> bool:
        return self.loaded is not None and self.loaded.problem.budget is not None


def refusal(path: Path, loaded: LoadedProblem, options: list[str]) -> str | None:
    """The one line ``ambs search`` refuses these options with, or None if it takes them.

    Calls what ``ambs search`` calls: its parser, then ``_make_search``, which
    checks the options and builds the search with :func:`ambs.search.factory.make_search`,
    as :func:`ambs.run_search` does."""
    args = PARSER.parse_args(["search", str(path), *options])
    try:
        cli._make_search(args, loaded.problem)
    except (AmbsError, ValueError) as exc:
        return cli._one_line(exc)
    return None


def promotes(options: list[str]) -> bool:
    """Whether ``ambs search`` runs a multi-fidelity search with these options."""
    return cli._is_multi_fidelity(PARSER.parse_args(["search", "x", *options]))


def cheap_budgets(loaded: LoadedProblem) -> list[tuple[list[str], bool]]:
    """The cheapest budget options a user can pass, each with whether it is meant for
    a search that promotes (multi-fidelity): two rungs, the declared low end and twice
    it, for those; ``--max-budget`` at the low end (one epoch) for the others, which
    train every configuration with it."""
    low = loaded.problem.budget.low
    two_rungs = ["--max-budget", f"{2 * low:g}", "--eta", "2"]
    return [(two_rungs, True), ([*two_rungs, "--stopper", "sha"], True), (["--max-budget", f"{low:g}"], False)]


def discover() -> list[Shipped]:
    problems = [Shipped(p) for p in sorted((ROOT / "problems").glob("*.py")) if not p.name.startswith("_")]
    for shipped in problems:
        try:
            shipped.loaded = load_problem(str(shipped.path))
        except ImportError as exc:  # ProblemError too: torch is not installed here
            shipped.missing = str(exc)
            continue
        for method in ALL_METHODS:
            plain = ["--method", method, *METHOD_OPTIONS.get(method, [])]
            if shipped.loaded.problem.budget is None:
                why = refusal(shipped.path, shipped.loaded, plain)
                if why is None:
                    shipped.options[method] = plain
                else:
                    shipped.refused[method] = why
                continue
            shipped.options[method] = None  # no cheap budget: left out, not refused
            for extra, multi_fidelity in cheap_budgets(shipped.loaded):
                if (promotes(plain + extra) == multi_fidelity
                        and refusal(shipped.path, shipped.loaded, plain + extra) is None):
                    shipped.options[method] = plain + extra
                    break
    return problems


@dataclass(frozen=True)
class Cell:
    problem: Shipped
    method: str
    evaluator: str
    options: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.problem.name}-{self.method}-{self.evaluator}"


def covering_design(problems: list[Shipped]) -> list[Cell]:
    """The local cells, greedily: (1) the architecture methods on the architecture
    problems, paired until every one of each met one of the other; (2) every problem
    without torch under every local evaluator, with the method used least there;
    (3) every torch problem that did not run yet, once, under the evaluator and
    with the method that cover what is still missing: a (method, evaluator) pair,
    an option no cell passed, torch under some evaluator; else under the first evaluator (serial: one process
    imports torch, where a pool imports it in every worker). Torch cells of (1) run
    under the first evaluator too."""
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    uses: Counter = Counter()
    cells: list[Cell] = []

    def add(shipped: Shipped, method: str, evaluator: str) -> None:
        uses[method, evaluator] += 1
        uses[method, shipped.budgeted] += 1
        uses[method] += 1
        uses["torch" if shipped.torch else "plain", evaluator] += 1
        cells.append(Cell(shipped, method, evaluator, tuple(shipped.options[method])))

    def new_flags(shipped: Shipped, method: str) -> int:
        """How many of the method's options on this problem no cell passed yet (--stopper)."""
        seen = {o for c in cells for o in c.options if o.startswith("--")}
        return len({o for o in shipped.options[method] if o.startswith("--")} - seen)

    def least_used(shipped: Shipped, method: str, evaluator: str) -> tuple[int, ...]:
        """Used least under this evaluator, then with options no cell passed yet,
        then on a problem with (or without) a budget, then overall."""
        return (uses[method, evaluator], -new_flags(shipped, method), uses[method, shipped.budgeted],
                uses[method], order[method])

    def runnable(shipped: Shipped) -> list[str]:
        return [m for m, opts in shipped.options.items() if opts is not None]

    # (1) Architecture methods x architecture problems: a covering pairing, no product.
    arch_problems = [p for p in problems if p.architecture and any(p.options.get(m) for m in ARCHITECTURE_METHODS)]
    arch_methods = [m for m in ARCHITECTURE_METHODS if any(p.options.get(m) for p in arch_problems)]
    todo_problems, todo_methods = list(arch_problems), list(arch_methods)
    while todo_problems or todo_methods:
        if todo_problems:
            shipped = todo_problems.pop(0)
            method = min((m for m in arch_methods if shipped.options.get(m)),
                         key=lambda m: (m not in todo_methods, uses[m], order[m]))
        else:
            method = todo_methods[0]
            shipped = min((p for p in arch_problems if p.options.get(method)),
                          key=lambda p: sum(c.problem is p for c in cells))
        if method in todo_methods:
            todo_methods.remove(method)
        add(shipped, method, LOCAL_EVALUATORS[0])
    # (2) Problems without torch: every local evaluator.
    for shipped in problems:
        if shipped.torch or not runnable(shipped):
            continue
        ran = {c.evaluator for c in cells if c.problem is shipped}
        for evaluator in [e for e in LOCAL_EVALUATORS if e not in ran]:
            add(shipped, min(runnable(shipped), key=lambda m: least_used(shipped, m, evaluator)), evaluator)
    # (3) Torch problems that did not run: once each, where coverage is missing.
    for shipped in problems:
        if not shipped.torch or not runnable(shipped) or any(c.problem is shipped for c in cells):
            continue
        evaluator, method = min(
            ((e, m) for e in LOCAL_EVALUATORS for m in runnable(shipped)),
            key=lambda em: (uses[em[1], em[0]] > 0, -new_flags(shipped, em[1]), uses["torch", em[0]] > 0,
                            LOCAL_EVALUATORS.index(em[0]), least_used(shipped, em[1], em[0])))
        add(shipped, method, evaluator)
    return cells


def mpi_cells(problems: list[Shipped]) -> list[Cell]:
    """Every method once under mpiexec, on a problem it runs on: one without torch
    where it can (three ranks start in seconds), the problems taking turns."""
    loaded = [p for p in problems if p.loaded is not None]
    uses: Counter = Counter()
    cells = []
    for method in ALL_METHODS:
        runnable = [p for p in loaded if p.options.get(method)]
        if not runnable:
            continue  # refused by every problem: see REFUSAL_CELLS
        shipped = min(runnable, key=lambda p: (p.torch, uses[p.name], loaded.index(p)))
        uses[shipped.name] += 1
        cells.append(Cell(shipped, method, "mpi", tuple(shipped.options[method])))
    return cells


def refusal_cells(problems: list[Shipped]) -> list[tuple[Shipped, str]]:
    """For every method some problem refuses, the first such problem."""
    cells = []
    for method in ALL_METHODS:
        shipped = next((p for p in problems if method in p.refused), None)
        if shipped is not None:
            cells.append((shipped, method))
    return cells


def pair_cells(problems: list[Shipped], covered: list[Cell]) -> list[Cell]:
    """Every (problem, method) pair a user can run that ``covered`` leaves out,
    under the serial evaluator: with the covering design, the full product of
    shipped problems and the methods that accept them."""
    have = {(c.problem.name, c.method) for c in covered}
    return [Cell(p, m, "serial", tuple(p.options[m])) for p in problems for m in ALL_METHODS
            if p.options.get(m) and (p.name, m) not in have]


def analysis_kind(cell: Cell) -> tuple[Any, ...]:
    """What the analysis of a run depends on besides its values: the method (rungs,
    promotions), whether the problem has a budget, several objectives, an architecture."""
    problem = cell.problem.loaded.problem if cell.problem.loaded is not None else None
    objectives = len(getattr(problem, "objectives", None) or ()) > 1
    return cell.method, cell.problem.budgeted, objectives, cell.problem.architecture, "--stopper" in cell.options


def first_of_kind(cells: list[Cell], covered: list[Cell]) -> set[str]:
    """Ids of the ``cells`` that are the first of their analysis kind, the ``covered`` cells counted first."""
    seen = {analysis_kind(c) for c in covered}
    out = set()
    for c in cells:
        if analysis_kind(c) not in seen:
            seen.add(analysis_kind(c))
            out.add(c.id)
    return out


PROBLEMS = discover()
LOCAL_CELLS = covering_design(PROBLEMS)
PAIR_CELLS = pair_cells(PROBLEMS, LOCAL_CELLS)
# Pair cells run every analyze subcommand only for a kind of run the design's cells
# (which all do) have not analyzed: the analysis depends on the run's kind, not its values.
PAIR_ANALYZED = first_of_kind(PAIR_CELLS, LOCAL_CELLS)
MPI_CELLS = mpi_cells(PROBLEMS)
REFUSAL_CELLS = refusal_cells(PROBLEMS)


def _param(cell: Cell, *marks: Any) -> Any:
    if cell.problem.torch:
        marks = (*marks, pytest.mark.slow)
    return pytest.param(cell, id=cell.id, marks=marks)


def analyze_subcommands() -> dict[str, argparse.ArgumentParser]:
    """``ambs analyze``'s subcommands, by name, from the command line's parser."""

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    return subparsers(subparsers(cli.build_parser())["analyze"])


# ------------------------------------------------------------------- checks
def check_stderr(stderr: str) -> None:
    """Only progress lines and ``ambs:`` notes: no traceback, warning or error."""
    for line in stderr.splitlines():
        if not line.strip():
            continue
        assert PROGRESS.fullmatch(line) or NOTE.fullmatch(line), f"unexpected stderr line {line!r}:\n{stderr}"
        assert not FORBIDDEN.search(line), f"stderr line {line!r}:\n{stderr}"


def check_results(run_dir: Path, expected: int) -> list[list[str]]:
    """results.csv is well formed, with ``expected`` successful evaluations; its rows."""
    columns = json.loads((run_dir / "run.json").read_text())["columns"]
    with open(run_dir / "results.csv", newline="", encoding="utf-8") as fh:
        header, *body = list(csv.reader(fh))
    assert header == columns
    assert all(len(row) == len(header) for row in body), body
    assert len(body) == expected
    rows = [dict(zip(header, row)) for row in body]
    assert {r["status"] for r in rows} <= {s.value for s in Status}
    assert all(r["status"] == "ok" for r in rows), [(r["status"], r["error"]) for r in rows]
    assert all(r["objective"] not in ("", "nan") for r in rows)
    job_ids = [r["job_id"] for r in rows]
    assert len(set(job_ids)) == len(job_ids), job_ids
    return body


def check_written(stdout: str) -> list[Path]:
    """Every file a ``wrote PATH`` line names exists and is not empty (PNGs are PNGs)."""
    paths = [Path(line[len("wrote "):]) for line in stdout.splitlines() if line.startswith("wrote ")]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG), path
        if path.suffix == ".html":
            assert "<img" in path.read_text(), path
    return paths


def search_command(cell: Cell, run_dir: Path, max_evals: int, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "ambs", "search", str(cell.problem.path), *cell.options,
            "--evaluator", cell.evaluator, *EVALUATOR_OPTIONS.get(cell.evaluator, []),
            "--seed", str(SEED), "--max-evals", str(max_evals), "--output", str(run_dir), *extra]
    if cell.evaluator == "mpi":
        args = [str(MPIEXEC), "-n", str(MPI_RANKS), *args]
    return args


def search(cell: Cell, run_dir: Path, max_evals: int, ambs_cli: Any, *extra: str) -> None:
    """``ambs search`` as its own process; with ``ambs_cli`` a pair ``(ambs_main, capsys)``,
    in this process through the command's entry point (the serial evaluator: the
    evaluations run here too, and torch is imported once per test process)."""
    argv = search_command(cell, run_dir, max_evals, *extra)
    if isinstance(ambs_cli, tuple):
        assert cell.evaluator == "serial", cell.id
        code, out, err = analyze_in_process(argv[argv.index("search") + 1:], *ambs_cli, command="search")
    else:
        res = subprocess.run(argv, cwd=run_dir.parent, capture_output=True, text=True, timeout=TIMEOUT,
                             env=ambs_cli.env)
        code, out, err = res.returncode, res.stdout, res.stderr
    assert code == 0, err
    check_stderr(err)
    assert f"evaluations: {max_evals} in " in out, out


def analyze_argv(name: str, sub: argparse.ArgumentParser, run_dir: Path, other: Path) -> list[str]:
    """The subcommand on the run: a RUN_DIR argument, or two for a command that takes several."""
    argv = [name]
    for action in sub._actions:
        if not action.option_strings and action.dest != "help":
            argv += [str(run_dir), str(other)] if action.nargs in ("+", "*") else [str(run_dir)]
    return argv


def several_objectives(run_dir: Path) -> bool:
    return len(json.loads((run_dir / "run.json").read_text()).get("objectives") or []) >= 2


def check_refusal(code: int, stderr: str, words: str = "") -> None:
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("ambs: error: "), stderr
    assert "Traceback" not in stderr and words in stderr, stderr


def analyze_in_process(argv: list[str], ambs_main: Any, capsys: Any, command: str = "analyze") -> tuple[int, str, str]:
    """``ambs COMMAND ARGV`` in this process: exit code, stdout, stderr; no warning a user would see."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("default", append=True)  # and reset every module's once-registry
        code = ambs_main(command, *argv)
    out, err = capsys.readouterr()
    shown = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
             for w in caught if not issubclass(w.category, HIDDEN)]
    assert not shown, shown
    return code, out, err


def analyze_everything(run_dir: Path, other: Path, run: Any) -> None:
    """Every analyze subcommand on ``run_dir``; ``run(argv) -> (code, stdout, stderr)``."""
    written: dict[str, list[Path]] = {}
    for name, sub in analyze_subcommands().items():
        argv = analyze_argv(name, sub, run_dir, other)
        code, out, err = run(argv)
        if name == "pareto" and not several_objectives(run_dir):
            check_refusal(code, err, "objective")
            code, out, err = run([*argv, "--objectives", "objective,-finished"])
        assert code == 0, (argv, err)
        check_stderr(err)
        written[name] = check_written(out)
    assert any(p.suffix == ".png" for p in written.get("plot", [])), written
    assert all(written[name] for name in ("plot", "compare", "pareto", "report") if name in written), written


# -------------------------------------------------------------------- tests
def test_the_design_covers_every_method_problem_and_local_evaluator() -> None:
    """Every problem that loads runs under every local evaluator (a torch problem
    under one, an architecture problem as often as the pairing below needs); every
    method runs under every local evaluator (where torch is missing, at least once),
    or is refused by every problem; every kind of budget options runs."""
    assert LOCAL_EVALUATORS and "serial" in LOCAL_EVALUATORS and "process" in LOCAL_EVALUATORS
    assert {p.name for p in PROBLEMS} >= {"ackley", "mixed", "rf_digits"}
    ran = {(c.problem.name, c.evaluator) for c in LOCAL_CELLS}
    for shipped in PROBLEMS:
        if shipped.loaded is not None and not shipped.torch:
            assert {(shipped.name, e) for e in LOCAL_EVALUATORS} <= ran, shipped.name
        elif shipped.loaded is not None and not shipped.architecture:
            assert sum(c.problem is shipped for c in LOCAL_CELLS) == 1, shipped.name
        elif shipped.loaded is not None:
            assert any(c.problem is shipped for c in LOCAL_CELLS), shipped.name
    if all(p.loaded is not None for p in PROBLEMS):  # every kind of budget options runs
        on_budget = [c.options for c in LOCAL_CELLS if c.problem.budgeted]
        assert any("--stopper" in o for o in on_budget), on_budget  # ambs, promoted by a stopper
        assert any("--max-budget" in o and "--eta" not in o for o in on_budget), on_budget  # one budget
    if any(p.torch and p.loaded is not None for p in PROBLEMS):
        assert {c.evaluator for c in LOCAL_CELLS if c.problem.torch} == set(LOCAL_EVALUATORS)
    used = {(c.method, c.evaluator) for c in LOCAL_CELLS}
    refused = {m for _, m in REFUSAL_CELLS}
    everything_loads = all(p.loaded is not None for p in PROBLEMS)
    for method in ALL_METHODS:
        if not any(p.options.get(method) for p in PROBLEMS):  # reinforce where torch is missing
            assert method in refused, method
        elif everything_loads:
            assert {(method, e) for e in LOCAL_EVALUATORS} <= used, method
        else:  # fewer problems with a budget than pairs of a multi-fidelity method and an evaluator
            assert any(m == method for m, _ in used), method


def test_every_problem_meets_every_method_it_accepts() -> None:
    """The full product of shipped problems and methods, less the pairs the command
    line refuses: each pair in the covering design (where it may meet both local
    evaluators) or, once, as a pair cell."""
    design = {(c.problem.name, c.method) for c in LOCAL_CELLS}
    extra = [(c.problem.name, c.method) for c in PAIR_CELLS]
    assert len(extra) == len(set(extra)) and not design & set(extra)
    accepted = {(p.name, m) for p in PROBLEMS for m, opts in p.options.items() if opts}
    assert design | set(extra) == accepted
    refused = {(p.name, m) for p in PROBLEMS for m in p.refused}
    assert not refused & accepted
    if all(p.loaded is not None for p in PROBLEMS):
        assert len(accepted) + len(refused) + sum(o is None for p in PROBLEMS for o in p.options.values()) \
            == len(PROBLEMS) * len(ALL_METHODS)


def test_every_architecture_method_meets_an_architecture_problem() -> None:
    """Each method whose class says ``architecture_search`` runs on an architecture
    problem (``problems/nas_*.py``), and each of those with such a method, at the
    cheapest budget a user can ask for (``--max-budget`` at the declared low end)."""
    assert {"evolution", "morphism"} <= set(ARCHITECTURE_METHODS)
    assert {p.name for p in PROBLEMS if p.architecture} >= {"nas_cnn_digits", "nas_mlp_digits"}
    arch = [p for p in PROBLEMS if p.architecture and p.loaded is not None]
    assert arch, "the architecture problems did not load (they need the torch extra: pip install -e '.[test]')"
    met = [c for c in LOCAL_CELLS if c.problem.architecture and c.method in ARCHITECTURE_METHODS]
    assert {c.problem.name for c in met} == {p.name for p in arch}
    assert {c.method for c in met} == set(ARCHITECTURE_METHODS)
    for c in met:
        assert c.options[-2:] == ("--max-budget", f"{c.problem.loaded.problem.budget.low:g}"), c.id
    assert len(met) == max(len(arch), len(ARCHITECTURE_METHODS))  # a pairing, not the product


def test_every_method_runs_under_mpiexec() -> None:
    """One MPI cell per method that some problem takes, on a problem without torch
    where one takes it."""
    runnable = [m for m in ALL_METHODS if any(p.options.get(m) for p in PROBLEMS)]
    assert [c.method for c in MPI_CELLS] == runnable
    for c in MPI_CELLS:
        if any(not p.torch and p.options.get(c.method) for p in PROBLEMS):
            assert not c.problem.torch, c.id


def test_evaluator_choices_are_the_registry() -> None:
    """``--evaluator`` offers what the registry holds, so the matrix sees every evaluator."""
    action = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    evaluator = next(a for a in action.choices["search"]._actions if a.dest == "evaluator")
    assert list(evaluator.choices) == list(EVALUATORS)


def test_every_shipped_problem_loads_or_needs_a_package() -> None:
    for shipped in PROBLEMS:
        if shipped.missing is not None:
            assert shipped.torch and "torch" in shipped.missing, (shipped.name, shipped.missing)


def _run_cell(cell: Cell, tmp_path: Path, ambs_cli: Any, ambs_main: Any, capsys: Any,
              analyze: bool = True) -> None:
    """Search, every analyze subcommand (unless ``analyze`` is False), resume, summary."""
    run_dir, copy = tmp_path / "run", tmp_path / "copy"
    search(cell, run_dir, FIRST, ambs_cli)
    first = check_results(run_dir, FIRST)
    if analyze:
        shutil.copytree(run_dir, copy)
        analyze_everything(run_dir, copy, lambda argv: analyze_in_process(argv, ambs_main, capsys))
    search(cell, run_dir, TOTAL, ambs_cli, "--resume")
    rows = check_results(run_dir, TOTAL)
    assert rows[:FIRST] == first  # appended to, never rewritten
    code, out, err = analyze_in_process(["summary", str(run_dir), "--json"], ambs_main, capsys)
    assert code == 0 and json.loads(out)["evaluations"] == TOTAL, err


@pytest.mark.parametrize("cell", [_param(c) for c in LOCAL_CELLS])
def test_search_analyze_resume(cell: Cell, tmp_path: Path, ambs_cli: Any, ambs_main: Any, capsys: Any) -> None:
    _run_cell(cell, tmp_path, ambs_cli, ambs_main, capsys)


@pytest.mark.parametrize("cell", [_param(c) for c in PAIR_CELLS])
def test_every_problem_with_every_method(cell: Cell, tmp_path: Path, ambs_main: Any, capsys: Any) -> None:
    """The pairs the covering design leaves out, each searched, resumed and summarized
    in this process (search through the command's entry point); analyzed with every
    subcommand when the run is of a kind no earlier cell analyzed (see PAIR_ANALYZED)."""
    _run_cell(cell, tmp_path, (ambs_main, capsys), ambs_main, capsys, analyze=cell.id in PAIR_ANALYZED)


# The MPI cell that runs every analyze subcommand: the analysis reads an MPI run's
# worker, host and rank columns once; its other columns depend on the problem and
# the method, which the local cells cover.
MPI_ANALYZED = next((c for c in MPI_CELLS if c.problem.budgeted), MPI_CELLS[0] if MPI_CELLS else None)


@pytest.mark.parametrize("cell", [_param(c, pytest.mark.mpi) for c in MPI_CELLS])
def test_search_analyze_resume_under_mpiexec(cell: Cell, tmp_path: Path, ambs_cli: Any, ambs_main: Any,
                                             capsys: Any) -> None:
    _run_cell(cell, tmp_path, ambs_cli, ambs_main, capsys, analyze=cell is MPI_ANALYZED)


@pytest.mark.parametrize("shipped, method", [pytest.param(p, m, id=f"{p.name}-{m}") for p, m in REFUSAL_CELLS])
def test_a_method_a_problem_refuses_is_one_line(shipped: Shipped, method: str, tmp_path: Path,
                                                 ambs_cli: Any) -> None:
    run_dir = tmp_path / "run"
    res = ambs_cli.run("search", shipped.path, "--method", method, *METHOD_OPTIONS.get(method, []),
                       "--evaluator", "serial", "--max-evals", FIRST, "--output", run_dir, cwd=tmp_path)
    check_refusal(res.returncode, res.stderr)
    assert res.stderr == f"ambs: error: {shipped.refused[method]}\n"
    assert not run_dir.exists()


def test_a_problem_whose_package_is_missing_is_one_line(tmp_path: Path, ambs_cli: Any) -> None:
    """A problem that imports a package this machine lacks: one line naming it, no run
    directory. Always on a module made here, and on the shipped ones that cannot load
    (the torch problems in an environment without torch)."""
    made = tmp_path / "needs_pkg.py"
    made.write_text("import ambs_package_that_is_not_installed\nproblem = None\n")
    cases = [(made, "ambs_package_that_is_not_installed")]
    cases += [(p.path, "torch") for p in PROBLEMS if p.missing is not None]
    for path, words in cases:
        run_dir = tmp_path / Path(path).stem
        res = ambs_cli.run("search", path, "--max-evals", FIRST, "--output", run_dir, cwd=tmp_path)
        check_refusal(res.returncode, res.stderr, words)
        assert not run_dir.exists()


def test_analyze_subcommands_as_commands(tmp_path: Path, ambs_cli: Any) -> None:
    """Every analyze subcommand as its own ``python -m ambs analyze`` process, on the first cell's run."""
    cell = next(c for c in LOCAL_CELLS if not c.problem.torch)
    run_dir, copy = tmp_path / "run", tmp_path / "copy"
    search(cell, run_dir, FIRST, ambs_cli)
    shutil.copytree(run_dir, copy)

    def run(argv: list[str]) -> tuple[int, str, str]:
        res = ambs_cli.run("analyze", *argv, cwd=tmp_path, timeout=TIMEOUT)
        return res.returncode, res.stdout, res.stderr

    analyze_everything(run_dir, copy, run)
