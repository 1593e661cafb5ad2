"""The ``ambs`` command: every user mistake is one line on stderr, never a traceback.

The commonest mistakes run ``python -m ambs`` in subprocesses, a few side by
side (they spend most of their time importing); the others call the same
``main()`` in this process, where a traceback would be an uncaught exception.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from ambs.problem import load_problem
from ambs.recorder import RESULTS, SETTINGS, Recorder, RunInfo, columns_for
from ambs.result import Evaluation

MODULES = {
    "noproblem": """
        def run(config):
            return 1.0
    """,
    "norun": """
        from ambs import Problem

        problem = Problem()
        problem.add_hyperparameter((0.0, 1.0), "x")
    """,
    "runnotcallable": """
        from ambs import Problem

        problem = Problem()
        problem.add_hyperparameter((0.0, 1.0), "x")
        run = 42
    """,
    "raises": """
        raise RuntimeError("the data are not there\\nsecond line of the message")
    """,
    "badspace": """
        from ambs import Problem

        problem = Problem()
        problem.add_hyperparameter((1.0, 0.0), "x")


        def run(config):
            return 1.0
    """,
    "twoconditions": """
        from ambs import Problem

        problem = Problem()
        problem.add_hyperparameter(["a", "b"], "parent")
        problem.add_hyperparameter((0.0, 1.0), "x")
        problem.add_condition("x", "parent", "a")
        problem.add_condition("x", "parent", "b")


        def run(config):
            return 1.0
    """,
}

# case id -> (arguments after `ambs`, words the error line must contain).
# These run as real processes: the mistakes a user makes most.
ERRORS: dict[str, tuple[list[str], list[str]]] = {
    "missing-module": (["search", "no_such_problem_module_xyz"], ["not found"]),
    "no-problem": (["search", "noproblem.py"], ["defines no `problem`"]),
    "no-run": (["search", "norun.py"], ["defines no `run(config)`"]),
    "invalid-space": (["search", "badspace.py"], ["'x'", "low must be below high"]),
    "max-evals-0": (["search", "quadratic.py", "--max-evals", "0"], ["--max-evals", "at least 1"]),
    "kappa-negative": (["search", "quadratic.py", "--kappa", "-1"], ["--kappa", ">= 0"]),
    "workers-0": (["search", "quadratic.py", "--workers", "0"], ["--workers", "at least 1"]),
    "walltime-text": (["search", "quadratic.py", "--walltime", "abc"], ["--walltime", "HH:MM:SS"]),
    "unknown-method": (["search", "quadratic.py", "--method", "bayes"], ["--method", "invalid choice"]),
    "run-exists": (["search", "quadratic.py", "-o", "held"], ["already holds a run", "--resume"]),
    "resume-missing-dir": (["search", "quadratic.py", "--resume", "-o", "fresh"], ["nothing to resume"]),
    "resume-other-problem": (["search", "discrete.py", "--resume", "-o", "held"], ["another search space"]),
}

# More mistakes, checked in this process (an uncaught exception fails the test).
MORE_ERRORS: dict[str, tuple[list[str], list[str]]] = {
    "missing-file": (["search", "nowhere/problem.py"], ["problem file not found"]),
    "run-not-callable": (["search", "runnotcallable.py"], ["`run`", "not callable"]),
    "import-fails": (["search", "raises.py"], ["RuntimeError", "the data are not there second line"]),
    "invalid-condition": (["search", "twoconditions.py"], ["condition 'x' on 'parent'", "ambiguous"]),
    "max-evals-text": (["search", "quadratic.py", "--max-evals", "ten"], ["--max-evals", "whole number"]),
    "seed-negative": (["search", "quadratic.py", "--seed", "-3"], ["--seed", "0 or more"]),
    "walltime-zero": (["search", "quadratic.py", "--walltime", "0"], ["--walltime", "more than 0"]),
    "eval-timeout-bad": (["search", "quadratic.py", "--eval-timeout", "1:2:3:4"], ["--eval-timeout"]),
    "grace-negative": (["search", "quadratic.py", "--grace", "-5"], ["--grace"]),
    "unknown-flag": (["search", "quadratic.py", "--speed", "11"], ["unrecognized arguments"]),
    "no-command": ([], ["required"]),
    "balsam-flag-elsewhere": (["search", "quadratic.py", "--balsam-nodes", "2"],
                              ["--balsam-nodes", "--evaluator balsam"]),
    "balsam-eval-memory": (["search", "quadratic.py", "--evaluator", "balsam", "--eval-memory", "100"],
                           ["--eval-memory", "Balsam"]),
    "resume-empty-dir": (["search", "quadratic.py", "--resume", "-o", "emptydir"], ["nothing to resume"]),
    "resume-other-method": (["search", "quadratic.py", "--resume", "-o", "held", "--method", "random"],
                            ["--method ambs, not random"]),
    "resume-without-output": (["search", "quadratic.py", "--resume"], ["--resume needs --output"]),
    "serial-with-workers": (["search", "quadratic.py", "--evaluator", "serial", "--workers", "3"],
                            ["serial evaluator"]),
    "serial-with-timeout": (["search", "quadratic.py", "--evaluator", "serial", "--eval-timeout", "5"],
                            ["--eval-timeout"]),
    "output-is-a-file": (["search", "quadratic.py", "-o", "quadratic.py"], ["cannot create run directory"]),
}


def make_workdir(d: Path, problem_writer) -> Path:
    """Problem modules, good and bad, and an existing run in ``held``."""
    for name, source in MODULES.items():
        (d / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    problem_writer(d, "quadratic")
    problem_writer(d, "discrete")
    (d / "emptydir").mkdir()
    # A run of the quadratic problem with the default method, one row long.
    loaded = load_problem(str(d / "quadratic.py"))
    info = RunInfo(
        problem="quadratic.py", problem_name=loaded.name, fingerprint=loaded.problem.fingerprint(),
        method="ambs", columns=columns_for(loaded.problem.hyperparameter_names, loaded.problem.metadata),
    )
    rec = Recorder(d / "held", info)
    rec.append(Evaluation(0, {"x": 0.5, "y": 0.5, "c": "a"}, objective=-0.04, finished=1.0))
    rec.close()
    return d


def check_error_line(stderr: str, words: list[str]) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("ambs") and "error" in line, line
    for w in words:
        assert w in line, line


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, problem_writer) -> Path:
    return make_workdir(tmp_path_factory.mktemp("cli"), problem_writer)


@pytest.fixture(scope="module")
def results(workdir, ambs_cli) -> dict[str, tuple[int, str, str]]:
    """Every case's (exit code, stdout, stderr), a few processes side by side."""
    held = {p.name: p.read_bytes() for p in (workdir / "held").iterdir()}
    cases = {name: args for name, (args, _) in ERRORS.items()}
    cases["version"] = ["--version"]
    queue = list(cases.items())
    running: dict[str, object] = {}
    out = {}
    width = max(2, min(4, os.cpu_count() or 2))
    try:
        while queue or running:
            while queue and len(running) < width:
                name, args = queue.pop(0)
                running[name] = ambs_cli.popen(*args, cwd=workdir)
            name = next(iter(running))
            proc = running.pop(name)
            stdout, stderr = proc.communicate(timeout=120)
            out[name] = (proc.returncode, stdout, stderr)
    finally:
        for proc in running.values():
            proc.kill()
            proc.communicate()
    # No case touched the existing run.
    assert {p.name: p.read_bytes() for p in (workdir / "held").iterdir()} == held
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_is_one_line(case, results):
    code, stdout, stderr = results[case]
    assert code == 2, (code, stderr)
    assert "Traceback" not in stdout + stderr
    check_error_line(stderr, ERRORS[case][1])


@pytest.mark.parametrize("case", sorted(MORE_ERRORS))
def test_more_errors_are_one_line(case, ambs_main, tmp_path, problem_writer, capfd):
    make_workdir(tmp_path, problem_writer)
    args, words = MORE_ERRORS[case]
    assert ambs_main(*args) == 2
    captured = capfd.readouterr()
    check_error_line(captured.err, words)


@pytest.mark.slow
def test_refused_resume_creates_no_directory(results, workdir):
    assert results["resume-missing-dir"][0] == 2
    assert not (workdir / "fresh").exists()
    assert list((workdir / "emptydir").iterdir()) == []


@pytest.mark.slow
def test_existing_run_is_left_alone(results, workdir, rows):
    assert results["run-exists"][0] == 2
    table = rows(workdir / "held" / RESULTS)
    assert len(table) == 1 and table[0]["objective"] == "-0.04"
    assert (workdir / "held" / SETTINGS).exists()


@pytest.mark.slow
def test_version(results):
    code, stdout, stderr = results["version"]
    assert code == 0 and stdout.strip().startswith("ambs ")


def test_help(ambs_main, capfd):
    assert ambs_main("search", "--help") == 0
    out = capfd.readouterr().out
    assert "--max-evals" in out and "--resume" in out and "--walltime" in out


def test_a_small_search_succeeds(ambs_main, make_problem, rows, capfd, tmp_path):
    path = make_problem("mixed")
    assert ambs_main("search", path.name, "--evaluator", "serial", "--max-evals", "12", "--seed", "1",
                     "-o", "out", "--quiet") == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "evaluations: 12 in out/results.csv (12 ok)" in captured.out
    assert "best objective:" in captured.out and "best configuration:" in captured.out
    table = rows(tmp_path / "out" / RESULTS)
    assert len(table) == 12
    assert all(r["m:layers_seen"] == r["p:layers"] for r in table)
    assert all((r["p:momentum"] == "") == (r["p:opt"] == "adam") for r in table)
    assert {r["p:flag"] for r in table} <= {"True", "False"}


SLEEPY = """
import time
from ambs import Problem
problem = Problem(name="sleepy")
problem.add_hyperparameter((0.0, 1.0), "x")
def run(config):
    time.sleep(0.25)
    return config["x"]
"""


def test_resume_keeps_the_runs_max_evals(ambs_main, tmp_path, rows):
    """--resume without --max-evals continues to the run's own --max-evals (run.json), not 100."""
    (tmp_path / "quick.py").write_text(SLEEPY.replace("time.sleep(0.25)", "pass"))
    assert ambs_main("search", "quick.py", "--method", "random", "--max-evals", "5", "--evaluator", "serial",
                     "-q", "-o", "out") == 0
    path = tmp_path / "out" / RESULTS
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]))  # an interrupted run: 2 of 5 evaluations
    assert ambs_main("search", "quick.py", "--method", "random", "--evaluator", "serial", "-q",
                     "--resume", "-o", "out") == 0
    assert len(rows(path)) == 5


def test_stop_message_gives_a_command_that_resumes(ambs_main, tmp_path, rows, capfd):
    """A run stopped by its walltime says how to continue it, and that command works."""
    import shlex

    (tmp_path / "sleepy.py").write_text(SLEEPY)
    assert ambs_main("search", "sleepy.py", "--method", "random", "--max-evals", "8", "--evaluator", "serial",
                     "--walltime", "0.6", "-q", "-o", "out") == 0
    out = capfd.readouterr().out
    assert "stopped by walltime" in out, out
    command = shlex.split(out.split("continue with: ")[1].splitlines()[0])
    assert command[:3] == ["ambs", "search", "sleepy.py"] and "--method" in command
    assert len(rows(tmp_path / "out" / RESULTS)) < 8
    assert ambs_main(*command[1:], "-q") == 0
    assert len(rows(tmp_path / "out" / RESULTS)) == 8


def test_population_options_reach_evolution_and_lemonade(mixed_problem) -> None:
    """--population-size and --sample-size are lemonade's too: the same evolution,
    with parents from a Pareto front."""
    from ambs import cli

    for method in ("evolution", "lemonade"):
        args = cli.build_parser().parse_args(
            ["search", "x", "--method", method, "--population-size", "4", "--sample-size", "3"])
        search = cli._make_search(args, mixed_problem)
        assert (search.population_size, search.sample_size) == (4, 3), method


def test_front_acquisition_reaches_ambs() -> None:
    """--front-acquisition picks how AMBS aims at the front of several objectives
    (default hvi); the job script of ambs submit carries a non-default choice."""
    from ambs import cli
    from ambs.cli import commands
    from ambs.problem import load_problem

    zdt1 = load_problem(str(Path(__file__).resolve().parents[1] / "problems" / "zdt1.py")).problem
    parser = cli.build_parser()
    for extra, want in (([], "hvi"), (["--front-acquisition", "chebyshev"], "chebyshev")):
        search = cli._make_search(parser.parse_args(["search", "x", *extra]), zdt1)
        assert search.options.front_acquisition == want
    assert commands._option_words("front_acquisition", "chebyshev") == ["--front-acquisition", "chebyshev"]


def test_max_fit_rows_reaches_ambs(mixed_problem) -> None:
    """--max-fit-rows bounds the rows AMBS fits on (default 10,000; 0: all);
    ambs submit's job script carries it."""
    from ambs import cli
    from ambs.cli import commands

    parser = cli.build_parser()
    for extra, want in (([], 10_000), (["--max-fit-rows", "0"], 0), (["--max-fit-rows", "500"], 500)):
        search = cli._make_search(parser.parse_args(["search", "x", *extra]), mixed_problem)
        assert search.options.max_fit_rows == want
    assert commands._option_words("max_fit_rows", 500) == ["--max-fit-rows", "500"]


def test_y_transform_reaches_ambs(mixed_problem) -> None:
    """--y-transform picks the targets' transform (default auto); ambs submit's
    job script carries it."""
    from ambs import cli
    from ambs.cli import commands

    parser = cli.build_parser()
    for extra, want in (([], "auto"), (["--y-transform", "rank"], "rank"), (["--y-transform", "log"], "log")):
        search = cli._make_search(parser.parse_args(["search", "x", *extra]), mixed_problem)
        assert search.options.y_transform == want == search.y_transform
    assert commands._option_words("y_transform", "log") == ["--y-transform", "log"]
