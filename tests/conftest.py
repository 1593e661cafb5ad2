"""Shared fixtures: small problem modules written into temporary directories,
a ready-made mixed search space, and helpers to run the ``ambs`` command."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import NoReturn

import pytest

from ambs import Problem

MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPI_MISSING = "the mpi extra is not installed here (pip install -e '.[mpi]' brings mpi4py and mpiexec)"


def unavailable(what: str, why: str) -> NoReturn:
    """A test needs something this machine lacks (a scheduler, a database, a
    site MPI): skip it saying what is missing and how to set it up, except
    under CI (``$CI`` set), where every test must run and a missing piece fails."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run {what}, but {why}")
    pytest.skip(f"{what} skipped: {why}")


#: Test modules whose tests drive the one-node local Slurm cluster.
SLURM_MODULES = ("tests/test_submit.py", "tests/test_cluster_matrix.py")


def shared_service(nodeid: str) -> str | None:
    """The service a test shares with others, which must not run two at a time:
    ``"slurm"`` (the local cluster's one node), ``"balsam"`` (one PostgreSQL
    database, whose schema each module migrates), else None."""
    if nodeid.startswith(SLURM_MODULES):
        return "slurm"
    if nodeid.startswith("tests/test_balsam.py") or "balsam" in nodeid.rpartition("::")[2]:
        return "balsam"
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under pytest-xdist (``-n N``): every test on its own, but those of one
    shared service one after another on one worker."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedServiceScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_service(nodeid) or nodeid

    return SharedServiceScheduling(config, log)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``mpi`` need the mpiexec of the mpi extra."""
    if item.get_closest_marker("mpi") is not None and not MPIEXEC.exists():
        unavailable("the MPI tests", MPI_MISSING)

# Problem modules, formatted with str.format (so literal braces are doubled).
TEMPLATES: dict[str, str] = {
    # Two reals and a categorical: a smooth objective, instant to evaluate.
    "quadratic": """
        from ambs import Problem

        problem = Problem(name="quadratic")
        problem.add_hyperparameter((0.0, 1.0), "x")
        problem.add_hyperparameter((0.0, 1.0), "y")
        problem.add_hyperparameter(["a", "b"], "c")


        def run(config):
            shift = 0.0 if config["c"] == "a" else 0.1
            return -((config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2) - shift
    """,
    # A finite space of 3 x {high} configurations (12 by default).
    "discrete": """
        import time

        from ambs import Problem

        problem = Problem(name="discrete")
        problem.add_hyperparameter(["a", "b", "c"], "cat")
        problem.add_hyperparameter((1, {high}), "n")


        def run(config):
            time.sleep({sleep})
            return config["n"] + "abc".index(config["cat"]) / 10
    """,
    # Every evaluation sleeps, so a search takes visible time.
    "sleepy": """
        import time

        from ambs import Problem

        problem = Problem(name="sleepy")
        problem.add_hyperparameter((0.0, 1.0), "x")
        problem.add_hyperparameter(["a", "b", "c"], "cat")


        def run(config):
            time.sleep({sleep})
            return -abs(config["x"] - 0.5)
    """,
    # The configuration picks what goes wrong.
    "faulty": """
        import math
        import os
        import time

        from ambs import Problem

        problem = Problem(name="faulty")
        problem.add_hyperparameter(["ok", "sleep", "abort", "raise", "nan"], "mode")
        problem.add_metadata("pid")


        def run(config):
            mode = config["mode"]
            if mode == "sleep":
                time.sleep(60)
            if mode == "abort":
                os.abort()
            if mode == "raise":
                raise KeyError("boom")
            if mode == "nan":
                return math.nan
            return {{"objective": 1.0, "pid": os.getpid()}}
    """,
    # Every kind of hyperparameter, a conditional one, declared metadata.
    "mixed": """
        from ambs import Problem

        problem = Problem(name="mixed")
        problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr")
        problem.add_hyperparameter((1, 8), "layers")
        problem.add_hyperparameter(["relu", "tanh"], "act")
        problem.add_hyperparameter([True, False], "flag")
        problem.add_hyperparameter([16, 32, 64], "batch", ordered=True)
        problem.add_hyperparameter(["adam", "sgd"], "opt")
        problem.add_hyperparameter((0.0, 0.9), "momentum")
        problem.add_condition("momentum", "opt", "sgd")
        problem.add_metadata("layers_seen")


        def run(config):
            bonus = config.get("momentum", 0.0)
            return {{"objective": -config["lr"] + bonus, "layers_seen": config["layers"]}}
    """,
}


def write_problem(directory: Path, template: str, name: str | None = None, **params: object) -> Path:
    """Write the problem module ``template`` (see TEMPLATES) into ``directory``."""
    defaults = {"sleep": 0.0, "high": 4}
    defaults.update(params)
    path = Path(directory) / f"{name or template}.py"
    path.write_text(textwrap.dedent(TEMPLATES[template].format(**defaults)).lstrip())
    return path


@pytest.fixture(scope="session")
def problem_writer():
    """``write(directory, template, name=None, **params) -> Path`` for module-scoped fixtures."""
    return write_problem


@pytest.fixture
def make_problem(tmp_path):
    """``make(template, name=None, **params) -> Path``: a problem module in tmp_path."""

    def make(template: str, name: str | None = None, **params: object) -> Path:
        return write_problem(tmp_path, template, name, **params)

    return make


@pytest.fixture
def write_module(tmp_path):
    """``write(name, source) -> Path``: any module source, dedented, in tmp_path."""

    def write(name: str, source: str) -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip())
        return path

    return write


def build_mixed_problem() -> Problem:
    """The same space as the "mixed" template, built in process."""
    problem = Problem(name="mixed")
    problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr")
    problem.add_hyperparameter((1, 8), "layers")
    problem.add_hyperparameter(["relu", "tanh"], "act")
    problem.add_hyperparameter([True, False], "flag")
    problem.add_hyperparameter([16, 32, 64], "batch", ordered=True)
    problem.add_hyperparameter(["adam", "sgd"], "opt")
    problem.add_hyperparameter((0.0, 0.9), "momentum")
    problem.add_condition("momentum", "opt", "sgd")
    problem.add_metadata("layers_seen")
    return problem


@pytest.fixture
def mixed_problem() -> Problem:
    return build_mixed_problem()


@pytest.fixture(scope="session")
def new_mixed_problem():
    """``new() -> Problem``: a fresh copy of the mixed problem at each call."""
    return build_mixed_problem


@pytest.fixture
def discrete_problem() -> Problem:
    """3 x 4 = 12 configurations."""
    problem = Problem(name="discrete")
    problem.add_hyperparameter(["a", "b", "c"], "cat")
    problem.add_hyperparameter((1, 4), "n")
    return problem


class AmbsCLI:
    """Runs ``python -m ambs`` (the interpreter running the tests) in a given directory;
    with ``ranks``, as ``ranks`` MPI ranks under the mpiexec beside that interpreter."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.env.pop("PYTHONWARNINGS", None)
        # One math thread per process: several processes share a small CI machine.
        self.env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

    @staticmethod
    def command(*args: str, ranks: int | None = None) -> list[str]:
        launcher = [str(MPIEXEC), "-n", str(ranks)] if ranks else []
        return [*launcher, sys.executable, "-m", "ambs", *map(str, args)]

    def run(self, *args: str, cwd: Path, timeout: float = 120,
            ranks: int | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args, ranks=ranks), cwd=cwd, capture_output=True, text=True, timeout=timeout,
            env=self.env,
        )

    def popen(self, *args: str, cwd: Path, ranks: int | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args, ranks=ranks), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=self.env,
        )


@pytest.fixture(scope="session")
def ambs_cli() -> AmbsCLI:
    return AmbsCLI()


@pytest.fixture
def ambs_main(monkeypatch, tmp_path):
    """``main(*args) -> exit code``: the ambs command in this process, run in tmp_path.

    An argparse error comes back as its exit code too; any other exception
    (a traceback, from the command line) propagates and fails the test.
    """
    from ambs import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)

    def main(*args: str) -> int:
        try:
            return cli.main([str(a) for a in args])
        except SystemExit as exc:
            return exc.code

    return main


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def rows():
    """``rows(path) -> list[dict]``: the rows of a results CSV, by column name."""
    return read_rows
