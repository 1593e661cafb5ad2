"""ambs.problem: declaring a search space, and loading problem modules."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import ConfigSpace as CS
import pytest
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    OrdinalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)

from ambs import Problem, load_problem
from ambs.errors import AmbsError, ProblemError, SpaceError

# ---------------------------------------------------------------- declaring


def test_integer_range():
    p = Problem()
    hp = p.add_hyperparameter((8, 512), "units")
    assert isinstance(hp, UniformIntegerHyperparameter)
    assert (hp.lower, hp.upper, hp.log) == (8, 512, False)
    assert p.space["units"] is hp


def test_float_range_when_any_bound_is_float():
    p = Problem()
    hp = p.add_hyperparameter((0, 1.5), "x")
    assert isinstance(hp, UniformFloatHyperparameter)
    assert (hp.lower, hp.upper, hp.log) == (0.0, 1.5, False)


@pytest.mark.parametrize("prior", ["log-uniform", "loguniform", "log"])
def test_log_uniform_range(prior):
    p = Problem()
    real = p.add_hyperparameter((1e-4, 1e-1, prior), "lr")
    integer = p.add_hyperparameter((1, 1024, prior), "units")
    assert isinstance(real, UniformFloatHyperparameter) and real.log
    assert isinstance(integer, UniformIntegerHyperparameter) and integer.log


def test_uniform_prior_is_linear():
    hp = Problem().add_hyperparameter((1.0, 2.0, "uniform"), "x")
    assert not hp.log


def test_categorical_and_ordinal():
    p = Problem()
    cat = p.add_hyperparameter(["relu", "tanh", "elu"], "act")
    ordinal = p.add_hyperparameter([16, 32, 64], "batch", ordered=True)
    flag = p.add_hyperparameter([True, False], "flag")
    assert isinstance(cat, CategoricalHyperparameter)
    assert list(cat.choices) == ["relu", "tanh", "elu"]
    assert isinstance(ordinal, OrdinalHyperparameter)
    assert list(ordinal.sequence) == [16, 32, 64]
    assert list(flag.choices) == [True, False]


def test_configspace_object_used_as_is():
    p = Problem()
    obj = CS.UniformFloatHyperparameter("q", 0.0, 2.0)
    assert p.add_hyperparameter(obj, "q") is obj
    assert p.hyperparameter_names == ["q"]


def test_defaults_are_kept_and_make_the_default_configuration():
    p = Problem()
    p.add_hyperparameter((1, 10), "n", default_value=3)
    p.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr", default_value=1e-2)
    p.add_hyperparameter(["a", "b", "c"], "c", default_value="b")
    p.add_hyperparameter([1, 2, 4], "o", default_value=4, ordered=True)
    config = p.default_configuration
    assert config["n"] == 3 and isinstance(config["n"], int)
    assert config["lr"] == pytest.approx(1e-2)
    assert config["c"] == "b"
    assert config["o"] == 4


def test_default_configuration_leaves_inactive_out():
    p = Problem()
    p.add_hyperparameter(["adam", "sgd"], "opt", default_value="adam")
    p.add_hyperparameter((0.0, 0.9), "momentum")
    p.add_condition("momentum", "opt", "sgd")
    assert p.default_configuration == {"opt": "adam"}


def test_conditions_equals_and_in():
    p = Problem()
    p.add_hyperparameter(["a", "b", "c"], "parent")
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((0.0, 1.0), "y")
    p.add_condition("x", "parent", "a")
    p.add_condition("y", "parent", ["a", "b"])
    conds = {c.child.name: c for c in p.space.conditions}
    assert isinstance(conds["x"], CS.EqualsCondition) and conds["x"].value == "a"
    assert isinstance(conds["y"], CS.InCondition) and set(conds["y"].values) == {"a", "b"}


def test_starting_points_are_kept_and_validated():
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter(["a", "b"], "c")
    p.add_starting_point(x=0.25, c="b")
    p.validate()
    assert p.starting_points == [{"x": 0.25, "c": "b"}]


@pytest.mark.parametrize(
    "point, match",
    [({"x": 5.0, "c": "a"}, "not in the space"), ({"x": 0.5, "c": "zzz"}, "not in the space")],
)
def test_invalid_starting_point(point, match):
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter(["a", "b"], "c")
    p.add_starting_point(**point)
    with pytest.raises(SpaceError, match=match):
        p.validate()


def test_metadata_names():
    p = Problem()
    p.add_metadata("fit_seconds", "memory")
    assert p.metadata == ["fit_seconds", "memory"]
    with pytest.raises(SpaceError, match="reserved or declared twice"):
        p.add_metadata("memory")
    with pytest.raises(SpaceError, match="reserved"):
        p.add_metadata("objective")


@pytest.mark.parametrize(
    "value, match",
    [
        ((5, 1), "low must be below high"),
        ((1.0, 1.0), "low must be below high"),
        ((0, 1, "log-uniform"), "log-uniform range needs low > 0"),
        ((-1.0, 1.0, "log"), "log-uniform range needs low > 0"),
        ((1, 2, "normal"), "unknown prior 'normal'"),
        ([], "list of choices is empty"),
        (["a", "b", "a"], "choices repeat a value"),
        ((1, 2, 3, 4), r"a range is \(low, high\)"),
        ((float("inf"), 2.0), "finite numbers"),
        ((float("nan"), 2.0), "finite numbers"),
        ((True, 5), "finite numbers"),
        (("a", "z"), "finite numbers"),
        ("abc", "cannot declare"),
        ({"a": 1}, "cannot declare"),
        (3.5, "cannot declare"),
    ],
)
def test_invalid_declarations_raise_space_error(value, match):
    p = Problem()
    with pytest.raises(SpaceError, match=match) as info:
        p.add_hyperparameter(value, "h")
    assert "'h'" in str(info.value)  # the message names the hyperparameter
    assert "h" not in p.space  # nothing half-declared stays behind


def test_space_error_is_a_user_facing_value_error():
    with pytest.raises(ValueError):
        Problem().add_hyperparameter((2, 1), "h")
    assert issubclass(SpaceError, AmbsError)


def test_duplicate_name():
    p = Problem()
    p.add_hyperparameter((0, 10), "n")
    with pytest.raises(SpaceError, match="'n' is declared twice"):
        p.add_hyperparameter(["a"], "n")


@pytest.mark.parametrize("name", ["", None, 3])
def test_bad_name(name):
    with pytest.raises(SpaceError, match="non-empty string"):
        Problem().add_hyperparameter((0, 1), name)


def test_bad_default_value():
    p = Problem()
    with pytest.raises(SpaceError, match="'n'"):
        p.add_hyperparameter((1, 5), "n", default_value=7)
    with pytest.raises(SpaceError, match="'c'"):
        p.add_hyperparameter(["a", "b"], "c", default_value="z")


def test_configspace_object_with_other_name():
    with pytest.raises(SpaceError, match="named 'q', not 'r'"):
        Problem().add_hyperparameter(CS.UniformFloatHyperparameter("q", 0, 1), "r")


@pytest.fixture
def with_parent():
    p = Problem()
    p.add_hyperparameter(["a", "b"], "parent")
    p.add_hyperparameter((0.0, 1.0), "x")
    return p


@pytest.mark.parametrize(
    "child, parent, values, match",
    [
        ("x", "nope", "a", "unknown hyperparameter 'nope'"),
        ("nope", "parent", "a", "unknown hyperparameter 'nope'"),
        ("x", "parent", "zzz", "condition 'x' on 'parent'"),
        ("x", "parent", ["a", "zzz"], "condition 'x' on 'parent'"),
        ("x", "x", 0.5, "condition 'x' on 'x'"),
    ],
)
def test_bad_condition(with_parent, child, parent, values, match):
    with pytest.raises(SpaceError, match=match):
        with_parent.add_condition(child, parent, values)
    assert not with_parent.space.conditions


def test_second_condition_on_one_child(with_parent):
    with_parent.add_condition("x", "parent", "a")
    with pytest.raises(SpaceError, match="condition 'x' on 'parent'"):
        with_parent.add_condition("x", "parent", "b")


def test_empty_space_is_invalid():
    with pytest.raises(SpaceError, match="no hyperparameters"):
        Problem().validate()


def test_fingerprint_identifies_the_space(mixed_problem, new_mixed_problem):
    same = new_mixed_problem()
    assert mixed_problem.fingerprint() == same.fingerprint()
    # The name and the sampling seed are not part of the space.
    renamed = Problem(name="other", seed=7)
    renamed.space = same.space
    assert renamed.fingerprint() == mixed_problem.fingerprint()
    same.add_hyperparameter((0, 3), "extra")
    assert same.fingerprint() != mixed_problem.fingerprint()
    wider = Problem()
    wider.add_hyperparameter((0.0, 1.0), "x")
    narrower = Problem()
    narrower.add_hyperparameter((0.0, 0.5), "x")
    assert wider.fingerprint() != narrower.fingerprint()


def test_hyperparameter_names_and_repr(mixed_problem):
    names = mixed_problem.hyperparameter_names
    assert sorted(names) == sorted(["lr", "layers", "act", "flag", "batch", "opt", "momentum"])
    assert "mixed" in repr(mixed_problem)


# ------------------------------------------------------------------ loading

GOOD = textwrap.dedent(
    """
    from ambs import Problem

    problem = Problem()
    problem.add_hyperparameter((0.0, 1.0), "x")


    def run(config):
        return config["x"]
    """
)


def test_load_by_file_path(write_module):
    path = write_module("good_by_path", GOOD)
    loaded = load_problem(str(path))
    assert loaded.name == "good_by_path"  # the file's stem when the problem has no name
    assert loaded.problem.hyperparameter_names == ["x"]
    assert loaded.run({"x": 0.25}) == 0.25
    assert loaded.space.names == ["x"]


def test_load_by_dotted_name(write_module, tmp_path, monkeypatch):
    name = "ambs_test_dotted_problem"
    write_module(name, GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loaded = load_problem(name)
        assert loaded.name == name
        assert loaded.run({"x": 0.5}) == 0.5
        assert loaded.module.__name__ == name
    finally:
        sys.modules.pop(name, None)


def test_load_shipped_problem_by_dotted_name_and_path():
    by_name = load_problem("problems.branin")
    assert by_name.name == "branin"
    assert by_name.problem.hyperparameter_names == ["x0", "x1"]
    assert by_name.run({"x0": math.pi, "x1": 2.275}) == pytest.approx(-0.397887, abs=1e-5)
    import problems

    path = Path(problems.__file__).parent / "mixed.py"
    by_path = load_problem(str(path))
    assert by_path.name == "mixed"
    assert by_path.problem.metadata == ["penalty_lr"]


def test_problem_may_be_a_configuration_space(write_module):
    path = write_module(
        "cs_problem",
        """
        import ConfigSpace as CS

        problem = CS.ConfigurationSpace()
        problem.add(CS.UniformIntegerHyperparameter("k", 1, 5))


        def run(config):
            return config["k"]
        """,
    )
    loaded = load_problem(str(path))
    assert isinstance(loaded.problem, Problem)
    assert loaded.problem.hyperparameter_names == ["k"]


@pytest.mark.parametrize(
    "source, error, match",
    [
        ("raise RuntimeError('cannot reach the data')\n", ProblemError,
         r"RuntimeError: cannot reach the data \(broken\.py, line 1\)"),
        ("def run(config:\n    return 1\n", ProblemError, "SyntaxError"),
        ("import ambs_no_such_dependency_xyz\n", ProblemError,
         "cannot import problem .*ModuleNotFoundError.*ambs_no_such_dependency_xyz"),
        ("import sys\nsys.exit(3)\n", ProblemError, r"exit\(3\)"),
        ("def run(config):\n    return 1.0\n", ProblemError, "defines no `problem`"),
        ("problem = {'x': (0, 1)}\ndef run(config):\n    return 1.0\n", ProblemError,
         "is a dict, not an ambs.Problem"),
        (GOOD.replace("def run(config):", "def other(config):"), ProblemError, "defines no `run"),
        (GOOD + "\nrun = 3\n", ProblemError, "`run` in .* is not callable"),
        ("from ambs import Problem\nproblem = Problem()\nproblem.add_hyperparameter((1, 0), 'x')\n"
         "def run(config):\n    return 1.0\n", SpaceError, "low must be below high"),
        ("from ambs import Problem\nproblem = Problem()\ndef run(config):\n    return 1.0\n",
         SpaceError, "no hyperparameters"),
        (GOOD + "\nproblem.add_starting_point(x=2.0)\n", SpaceError, "starting point"),
    ],
    ids=["raises", "syntax", "missing-dependency", "exit", "no-problem", "not-a-problem",
         "no-run", "run-not-callable", "invalid-space", "empty-space", "bad-starting-point"],
)
def test_load_errors(write_module, source, error, match):
    path = write_module("broken", source)
    with pytest.raises(error, match=match):
        load_problem(str(path))


def test_failed_import_is_not_cached(write_module):
    path = write_module("flaky", "raise RuntimeError('first try')\n")
    with pytest.raises(ProblemError, match="first try"):
        load_problem(str(path))
    path.write_text(GOOD)
    assert load_problem(str(path)).problem.hyperparameter_names == ["x"]


@pytest.mark.parametrize("ref", ["ambs_no_such_problem_module", "no_such_pkg_xyz.sub"])
def test_missing_dotted_module(ref):
    with pytest.raises(ProblemError, match="not found"):
        load_problem(ref)


def test_missing_file(tmp_path):
    with pytest.raises(ProblemError, match="problem file not found"):
        load_problem(str(tmp_path / "nothing_here.py"))


def test_no_problem_given():
    with pytest.raises(ProblemError, match="no problem given"):
        load_problem("")


def test_budget_whole_rounds_and_clips():
    problem = Problem()
    problem.add_hyperparameter((0.0, 1.0), "x")
    problem.set_budget(1, 20, "epochs")
    assert problem.budget.whole(None) == 20
    assert problem.budget.whole(2.6) == 3
    assert problem.budget.whole(0.2) == 1
    assert problem.budget.whole(99) == 20


# ------------------------------------------------------------ worker start-up
_WORKER_VIEW = """
import json, sys
from ambs.evaluator import worker
from ambs.target import RunTarget

run, why = worker.load(RunTarget(sys.argv[1]))
module = next(m for k, m in sys.modules.items() if k.startswith("ambs_problem_"))
problem = module.problem
view = {"loaded": why == "" and run({"x": 2.0}) == 2.0,
        "imported": "ConfigSpace" in sys.modules or "scipy.stats" in sys.modules,
        "names": problem.hyperparameter_names, "pending": len(problem._pending)}
view["lower"] = module.lower()  # reads the DeferredHyperparameter: builds the space
view.update(fingerprint=problem.fingerprint(), conditions=len(problem.space.conditions))
print(json.dumps(view))
"""

_DECLARED = """
from ambs import Problem

problem = Problem(name="declared")
x = problem.add_hyperparameter((0.5, 4.0, "log-uniform"), "x")
problem.add_hyperparameter(["a", "b"], "kind")
problem.add_hyperparameter((1, 9), "depth", default_value=3)
problem.add_condition("depth", "kind", "b")


def run(config):
    return config["x"]


def lower():
    return x.lower
"""


def test_a_worker_loads_a_problem_without_configspace_and_builds_the_same_space_on_use(tmp_path):
    """Workers only run configurations: they record the declarations instead of
    importing ConfigSpace (and scipy.stats, about 2 s per process); the space
    they build when something reads it is the master's, fingerprint and all."""
    import json
    import subprocess

    module = tmp_path / "declared.py"
    module.write_text(_DECLARED)
    out = subprocess.run([sys.executable, "-c", _WORKER_VIEW, str(module)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout.strip().splitlines()[-1])
    assert view["loaded"] and not view["imported"]
    assert view["names"] == ["x", "kind", "depth"] and view["pending"] == 4
    assert view["lower"] == 0.5 and view["conditions"] == 1
    master = load_problem(str(module)).problem
    assert view["fingerprint"] == master.fingerprint()
    assert isinstance(master.space["x"], UniformFloatHyperparameter) and master.space["x"].log


def test_the_command_line_starts_without_scikit_learn_or_configspace():
    """``ambs --help``, ``ambs analyze`` and MPI worker ranks parse the command
    line; the models and the space load where a search is made."""
    import subprocess

    code = ("import sys, ambs.cli; ambs.cli.build_parser(); "
            "print(sorted(m for m in ('sklearn', 'ConfigSpace', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
