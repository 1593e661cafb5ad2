"""The torch problems (mlp_digits, cnn_digits, rnn_addition): they learn,
are reproducible, honour their budget, run under ``ambs search``, and fail to
load in one line when torch is missing.

Small budgets keep each training to a second or two on a 2-core machine.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed: pip install torch (or pip install -e '.[test]')")

from ambs.problem import Budget, load_problem  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TORCH_PROBLEMS = ["mlp_digits", "cnn_digits", "rnn_addition"]
# name: (small budget, an objective the default configuration must beat with it)
SMALL = {
    "mlp_digits": (3, 0.7),  # 10 classes: chance is 0.1
    "cnn_digits": (3, 0.7),
    "rnn_addition": (2, 0.38),  # per character: the most frequent character per position scores 0.31
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    return env


@pytest.fixture(scope="module", autouse=True)
def one_cpu_thread():
    """Train on the CPU with one thread, as a search's workers do on a small machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMBS_TORCH_DEVICE", "cpu")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def loaded():
    """Each problem loaded the way `ambs search problems/<name>.py` loads it."""
    return {name: load_problem(str(ROOT / "problems" / f"{name}.py")) for name in TORCH_PROBLEMS}


_FIRST: dict[str, dict] = {}  # the first small-budget result of each problem


def _small_run(loaded, name: str) -> dict:
    if name not in _FIRST:
        p = loaded[name]
        _FIRST[name] = p.run(p.problem.default_configuration, SMALL[name][0])
    return _FIRST[name]


@pytest.mark.parametrize("name", TORCH_PROBLEMS)
def test_space_budget_and_metadata(loaded, name):
    problem = loaded[name].problem
    hps = list(problem.space.values())
    assert 5 <= len(hps) <= 10
    kinds = {type(hp).__name__ for hp in hps}
    assert "UniformIntegerHyperparameter" in kinds
    assert "CategoricalHyperparameter" in kinds
    assert any(type(hp).__name__ == "UniformFloatHyperparameter" and hp.log for hp in hps)
    assert problem.budget is not None and problem.budget.name == "epochs"
    assert {"epochs", "train_seconds", "n_parameters", "device", "test_accuracy"} <= set(problem.metadata)


@pytest.mark.parametrize("name", TORCH_PROBLEMS)
def test_default_configuration_learns(loaded, name):
    budget, floor = SMALL[name]
    out = _small_run(loaded, name)
    assert out["objective"] > floor
    assert 0.0 <= out["objective"] <= 1.0
    assert set(out) - {"objective"} == set(loaded[name].problem.metadata)
    assert out["epochs"] == budget
    assert out["device"] == "cpu"
    assert out["n_parameters"] > 0 and out["train_seconds"] > 0


@pytest.mark.parametrize("name", TORCH_PROBLEMS)
def test_same_configuration_same_objective(loaded, name):
    first = _small_run(loaded, name)
    p = loaded[name]
    again = p.run(p.problem.default_configuration, SMALL[name][0])
    assert again["objective"] == first["objective"]
    assert again["test_accuracy"] == first["test_accuracy"]


def test_mlp_run_without_budget_trains_the_full_budget(loaded):
    p = loaded["mlp_digits"]
    out = p.run(p.problem.default_configuration)
    assert out["epochs"] == p.problem.budget.high == 20
    assert out["objective"] > 0.9


@pytest.mark.parametrize("name", ["cnn_digits", "rnn_addition"])
def test_run_without_budget_uses_the_high_end(loaded, name, monkeypatch):
    # The full budgets take tens of seconds here: shrink the declared range instead.
    problem = loaded[name].problem
    monkeypatch.setattr(problem, "budget", Budget(problem.budget.name, 1, 1))
    out = loaded[name].run(problem.default_configuration)
    assert out["epochs"] == 1


def test_rnn_addition_data_is_fixed_and_disjoint(loaded):
    module = loaded["rnn_addition"].module
    a, b = module.generate(), module.generate()
    chars = list(module.CHARS)
    for split in ("train", "valid", "test"):
        assert (a[split][0] == b[split][0]).all() and (a[split][1] == b[split][1]).all()
    questions = {tuple(q) for q in a["train"][0]}
    assert not questions & {tuple(q) for q in a["valid"][0]}
    q, ans = a["valid"][0][0], a["valid"][1][0]
    x, y = "".join(chars[i] for i in q).strip().split("+")
    assert int("".join(chars[i] for i in ans).strip()) == int(x) + int(y)


NO_TORCH = """
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NoTorch())
    from ambs.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def test_missing_torch_is_one_line(tmp_path):
    script = tmp_path / "no_torch.py"
    script.write_text(textwrap.dedent(NO_TORCH))
    proc = subprocess.run(
        [sys.executable, str(script), "search", "problems/mlp_digits.py", "--max-evals", "2",
         "-o", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env(),
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ambs: error:") and "pip install torch" in lines[0]


def test_module_runs_on_its_own():
    proc = subprocess.run([sys.executable, "-m", "problems.mlp_digits"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "objective 0." in proc.stdout and " s (" in proc.stdout


def test_search_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "ambs", "search", "problems/mlp_digits.py", "--evaluator", "process",
         "--workers", "2", "--max-evals", "6", "--seed", "0", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert [r["status"] for r in rows] == ["ok"] * 6, [r["error"] for r in rows]
    assert all(0.0 <= float(r["objective"]) <= 1.0 for r in rows)
    assert {r["m:device"] for r in rows} == {"cpu"}
    assert "best objective: 0." in proc.stdout
