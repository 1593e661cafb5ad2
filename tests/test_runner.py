"""run_search: one path for a run, from a module or a Python callable, on every evaluator."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ambs import Problem, run_search
from ambs.errors import AmbsError
from ambs.evaluator import EVALUATORS
from tests.conftest import MPIEXEC
from tests.test_balsam import balsam_site, launcher  # noqa: F401 - the balsam evaluator's fixtures

ROOT = Path(__file__).resolve().parents[1]


def paraboloid(config: dict) -> float:
    """A run function at the top level of an importable module (tests.test_runner)."""
    return -(config["x"] - 0.3) ** 2 - (config["y"] - 0.7) ** 2


def _problem() -> Problem:
    p = Problem(name="paraboloid")
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((0.0, 1.0), "y")
    return p


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


# Evaluators that run in this process's test without a service: the others
# (mpi under mpiexec, balsam with its database) have tests of their own below
# and in tests/test_balsam.py.
LOCAL = [name for name in EVALUATORS if name not in ("mpi", "balsam")] + ["simulated"]


@pytest.mark.parametrize("evaluator", LOCAL)
def test_a_callable_on_every_local_evaluator(evaluator, tmp_path):
    options = {"duration": "const:1"} if evaluator == "simulated" else {}
    workers = None if evaluator == "serial" else 2
    result = run_search(_problem(), run=paraboloid, method="random", evaluator=evaluator, max_evals=6,
                        workers=workers, seed=1, output=tmp_path / "run", quiet=True, evaluator_options=options)
    rows = _rows(tmp_path / "run")
    assert [r["status"] for r in rows] == ["ok"] * 6
    best = max(float(r["objective"]) for r in rows)
    assert result.best_objective == pytest.approx(best)
    assert len(result.results()) == 6
    # the run directory names the callable it ran
    assert "tests.test_runner:paraboloid" in (tmp_path / "run" / "run.json").read_text()


def test_resume_through_run_search(tmp_path):
    out = tmp_path / "run"
    run_search(_problem(), run=paraboloid, method="random", evaluator="serial", max_evals=4, seed=3,
               output=out, quiet=True)
    result = run_search(_problem(), run=paraboloid, method="random", evaluator="serial", max_evals=9, seed=3,
                        output=out, resume=True, quiet=True)
    ids = [int(r["job_id"]) for r in _rows(out)]
    assert ids == list(range(9)) and result.previous == 4 and result.summary.evaluations == 5


def test_the_command_line_and_run_search_write_the_same_rows(tmp_path, ambs_cli, make_problem):
    """One path: a seeded search with the fit in ask gives the same configurations either way."""
    path = make_problem("quadratic")
    cli_dir, py_dir = tmp_path / "cli", tmp_path / "py"
    proc = ambs_cli.run("search", str(path), "--evaluator", "serial", "--max-evals", "14", "--seed", "5",
                        "--fit", "sync", "-o", str(cli_dir), "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_search(str(path), evaluator="serial", max_evals=14, seed=5, fit="sync", output=py_dir, quiet=True)
    names = ["p:x", "p:y", "p:c", "objective"]
    assert [[r[n] for n in names] for r in _rows(cli_dir)] == [[r[n] for n in names] for r in _rows(py_dir)]


def test_a_lambda_for_other_processes_is_one_line(tmp_path):
    with pytest.raises(AmbsError, match="top level of an importable module") as info:
        run_search(_problem(), run=lambda c: c["x"], evaluator="process", max_evals=2,
                   output=tmp_path / "run", quiet=True)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()  # nothing half-made


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"kapa": 2.0}, "method ambs takes no option kapa"),
    ({"method": "random", "kappa": 2.0}, "method random takes no option kappa"),
    ({"method": "asha"}, "--method asha needs a problem that declares a budget"),
    ({"method": "nope"}, "unknown method 'nope'"),
    ({"evaluator": "process", "evaluator_options": {"eval_timout": 3}},
     "the process evaluator takes no option eval_timout"),
    ({"evaluator": "gpu"}, "unknown evaluator 'gpu'"),
])
def test_options_a_method_or_evaluator_does_not_take_are_errors(kwargs, words, tmp_path):
    kwargs = {"evaluator": "serial", **kwargs}
    with pytest.raises(AmbsError, match=words.replace("(", r"\(")):
        run_search(_problem(), run=paraboloid, max_evals=2, output=tmp_path / "run", quiet=True, **kwargs)
    assert not (tmp_path / "run" / "results.csv").exists()


def _readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    for block in text.split("```python\n")[1:]:
        code = block.split("```", 1)[0]
        if marker in code:
            return textwrap.dedent(code)
    raise AssertionError(f"no python block with {marker!r} in the README")


def test_the_readmes_from_python_example_runs_as_printed(tmp_path):
    script = tmp_path / "paraboloid.py"
    script.write_text(_readme_block("run_search("))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = _rows(tmp_path / "runs" / "paraboloid")
    assert len(rows) == 30 and all(r["status"] == "ok" for r in rows)
    best = max(float(r["objective"]) for r in rows)
    assert proc.stdout.split()[0] == repr(best) or float(proc.stdout.split()[0]) == pytest.approx(best)


@pytest.mark.mpi
def test_a_script_under_mpiexec_searches_on_rank_0(tmp_path):
    """Every rank calls run_search; rank 0 gets the result, the others serve and get None."""
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from ambs import run_search
        from tests.test_runner import _problem, paraboloid

        if __name__ == "__main__":
            result = run_search(_problem(), run=paraboloid, method="random", evaluator="mpi", max_evals=8,
                                seed=2, output={str(tmp_path / "run")!r}, quiet=True)
            print("result" if result is not None else "served", flush=True)
    """))
    proc = subprocess.run([str(MPIEXEC), "-n", "3", sys.executable, str(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == ["result", "served", "served"]
    rows = _rows(tmp_path / "run")
    assert len(rows) == 8 and {r["worker"] for r in rows} <= {"1", "2"}


def test_a_callable_through_balsam(balsam_site, launcher, tmp_path):  # noqa: F811 - fixtures
    """Balsam's jobs load the callable by reference (module:function) in their own processes."""
    (tmp_path / "funcs.py").write_text(textwrap.dedent("""
        from ambs import Problem

        problem = Problem(name="paraboloid")
        problem.add_hyperparameter((0.0, 1.0), "x")
        problem.add_hyperparameter((0.0, 1.0), "y")


        def paraboloid(config):
            return -(config["x"] - 0.3) ** 2 - (config["y"] - 0.7) ** 2
    """))
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(f"""
        from ambs import run_search
        from funcs import paraboloid, problem

        if __name__ == "__main__":
            result = run_search(problem, run=paraboloid, method="random", evaluator="balsam", max_evals=3,
                                workers=2, seed=4, output="run", quiet=True,
                                evaluator_options={{"balsam_workflow": "{launcher}-callable"}})
            print(result.summary.by_status)
    """))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**balsam_site, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    rows = _rows(tmp_path / "run")
    assert len(rows) == 3 and all(r["status"] == "ok" and r["m:balsam_job_id"] for r in rows)
    for r in rows:
        assert float(r["objective"]) == pytest.approx(-(float(r["p:x"]) - 0.3) ** 2 - (float(r["p:y"]) - 0.7) ** 2)


@pytest.mark.parametrize("fit, kind", [("auto", "BackgroundFitter"), ("background", "BackgroundFitter"),
                                       ("process", "ProcessFitter"), ("sync", None)])
def test_where_fits_run(fit, kind, tmp_path):
    """--fit picks the fitter; auto leaves it to the evaluator: a thread for the
    local ones, a process of its own under MPI (whose master has a node's cores)."""
    from ambs.evaluator.mpi import MPIEvaluator
    from ambs.evaluator.serial import SerialEvaluator

    result = run_search(_problem(), run=paraboloid, method="ambs", evaluator="serial", max_evals=14,
                        seed=1, output=tmp_path / "run", quiet=True, fit=fit, n_initial_points=4)
    assert type(result.fitter).__name__ == kind if kind else result.fitter is None
    if kind:
        assert result.fitter.fits >= 1 or kind == "ProcessFitter"  # a process may still be starting
    assert len(_rows(tmp_path / "run")) == 14
    assert (SerialEvaluator.default_fit, MPIEvaluator.default_fit) == ("background", "process")
    with pytest.raises(AmbsError, match="fit must be"):
        run_search(_problem(), run=paraboloid, evaluator="serial", max_evals=2, output=tmp_path / "bad",
                   quiet=True, fit="thread")


_NEEDS_BUDGET = '''
from ambs import Problem

problem = Problem(name="needs_budget")
problem.add_hyperparameter((-5.0, 5.0), "x")
problem.set_budget(1, 9)


def run(config, budget):
    return -config["x"] ** 2 - 1.0 / budget
'''


@pytest.mark.parametrize("command", ["search", "simulate"])
def test_a_run_that_needs_its_budget_is_refused_in_one_line_where_it_would_get_none(
        ambs_main, capfd, tmp_path, command):
    """``run(config, budget)`` without a default, under a one-budget method without
    --max-budget, would fail every evaluation with the same TypeError: refused
    before anything runs; with --max-budget, or under ASHA, it runs."""
    (tmp_path / "needs_budget.py").write_text(_NEEDS_BUDGET)
    extra = ["--workers", "2", "--duration", "5"] if command == "simulate" else ["--evaluator", "serial"]
    assert ambs_main(command, "needs_budget.py", "--max-evals", "4", "-q", *extra) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "no default for 'budget'" in err and "--max-budget" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    for more in (["--max-budget", "3"], ["--method", "asha"]):
        assert ambs_main(command, "needs_budget.py", "--max-evals", "4", "-q", *extra, *more) == 0
