"""problems/nas_rnn_addition.py: architecture search on the generated addition task."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed: pip install torch (or pip install -e '.[test]')")

from ambs.problem import load_problem  # noqa: E402
from ambs.search import RandomSearch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHANCE = 0.31  # answering each position's most frequent character


@pytest.fixture(scope="module")
def nas():
    """The problem loaded as `ambs search problems/nas_rnn_addition.py` loads it, on one CPU thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AMBS_TORCH_DEVICE", "cpu")
        yield load_problem(str(ROOT / "problems" / "nas_rnn_addition.py"))
    torch.set_num_threads(threads)


def test_default_configuration_beats_chance_with_a_small_budget(nas):
    problem = nas.problem
    config = problem.default_configuration
    assert config["n_layers"] == 1 and config["l0_op"] == "lstm" and "l1_op" not in config
    assert problem.budget.low == 1 and problem.budget.high == 10
    out = nas.run(config, 2)
    acc, weights = out["accuracy"], out["parameters"]
    assert acc > CHANCE + 0.05, out
    assert 0.0 <= out["sequence_accuracy"] <= acc
    assert out["test_accuracy"] > CHANCE
    assert -weights == problem.cheap_objective(config)  # LEMONADE maximizes minus the weights
    assert out["epochs"] == 2
    assert problem.objective_names == ["accuracy", "parameters"]
    assert {"sequence_accuracy", "test_accuracy"} <= set(problem.metadata)


def test_every_sampled_architecture_builds_and_predicts_each_answer_character(nas):
    module = sys.modules[nas.run.__module__]
    questions = torch.from_numpy(module.rnn_addition.generate()["valid"][0][:5])
    configs = RandomSearch(nas.problem, random_state=0).ask(30)
    assert {c["n_layers"] for c in configs} == {1, 2, 3}
    assert {c.get("l1_skip") for c in configs} >= {None, "none", "residual"}
    for config in configs:
        n = config["n_layers"]
        assert all(f"l{i}_op" in config for i in range(n)) and f"l{n}_op" not in config
        for i in range(n):  # bidirectional only for a recurrent layer
            assert (f"l{i}_bidirectional" in config) == (config[f"l{i}_op"] != "dense")
        logits = module.NASSeq2Seq(config)(questions)
        assert logits.shape == (5, module.ANSWER_LEN, len(module.CHARS))


def test_width_doubles_with_a_bidirectional_layer_and_a_skip_adds_a_projection(nas):
    module = sys.modules[nas.run.__module__]
    base = {"n_layers": 2, "l0_op": "gru", "l0_units": 16, "l0_bidirectional": False, "l0_dropout": 0.0,
            "l1_op": "dense", "l1_units": 32, "l1_dropout": 0.1, "l1_skip": "none", "decoder": "gru"}
    gru = 3 * (16 * 12 + 16 * 16 + 2 * 16)  # torch's GRU: three gates, two biases each
    dense = 16 * 32 + 32
    decoder = 3 * (32 * 32 + 32 * 32 + 2 * 32)
    readout = 32 * 12 + 12
    assert module.n_parameters(base) == gru + dense + decoder + readout
    assert module.n_parameters({**base, "l1_skip": "residual"}) == gru + dense + decoder + readout + dense
    bi = module.n_parameters({**base, "l0_bidirectional": True})
    assert bi == 2 * gru + (32 * 32 + 32) + decoder + readout


@pytest.mark.slow
def test_module_runs_on_its_own():
    env = dict(os.environ, OMP_NUM_THREADS="1", AMBS_TORCH_DEVICE="cpu")
    proc = subprocess.run([sys.executable, "-m", "problems.nas_rnn_addition"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "nas_rnn_addition: default configuration" in proc.stdout
