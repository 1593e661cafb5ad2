"""Promotions that continue from a checkpoint (weight inheritance): the store
on the master, retirement by the brackets, the torch problems' save and load,
and ``ambs search`` with and without ``--no-checkpoints``, resumed.

Every evaluator's side of it (``report.checkpoint`` reaching ``run``) is in
``tests/test_contract_evaluators.py``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from ambs.checkpoints import CheckpointStore, checkpoint_name
from ambs.reports import Reporter
from ambs.search import SuccessiveHalving
from ambs.search.base import config_key
from tests.test_contract_evaluators import STEPS
from tests.test_multifidelity import budget_problem, objective

ROOT = Path(__file__).resolve().parents[1]
TORCH_PROBLEMS = ["mlp_digits", "cnn_digits", "rnn_addition"]


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_checkpoint_names_tell_configurations_apart() -> None:
    assert checkpoint_name({"a": 3, "b": "x"}) == checkpoint_name({"b": "x", "a": 3})
    assert checkpoint_name({"a": 3}) != checkpoint_name({"a": 3.0})
    assert checkpoint_name({"a": 1, "c": math.nan}) == checkpoint_name({"a": 1})  # inactive: absent
    assert checkpoint_name({"a": 1}).endswith(".ckpt") and "/" not in checkpoint_name({"a": "../x"})


def test_the_store_hands_out_paths_and_removes_what_no_promotion_needs(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, max_budget=9.0)
    assert store.path_for({"x": 1}, None) is None  # an unbudgeted job has nothing to continue
    low, high = {"x": 1}, {"x": 2}
    for config in (low, high):
        Path(store.path_for(config, 3.0)).write_text("state")
    other = store.dir / "weights.pt"  # a morphism search's file in the same folder
    other.write_text("keep")
    store.finished(low, 3.0)
    assert (store.dir / checkpoint_name(low)).exists(), "removed before its last promotion"
    store.finished(low, 9.0)
    assert not (store.dir / checkpoint_name(low)).exists()
    store.retire([high])
    assert not (store.dir / checkpoint_name(high)).exists()
    Path(store.path_for(low, 1.0)).write_text("state")
    store.clear()
    assert sorted(p.name for p in store.dir.iterdir()) == ["weights.pt"]


def test_successive_halving_retires_who_the_rung_barrier_left_behind() -> None:
    search = SuccessiveHalving(budget_problem(1, 9), random_state=0)  # 9 at 1, 3 at 3, 1 at 9
    first = search.ask_jobs(9)
    search.tell([(c, objective(c, b)) for c, b in first[:8]], budgets=[1.0] * 8)
    assert search.retired() == [], "retired before the rung was complete"
    c, b = first[8]
    search.tell([(c, objective(c, b))], budgets=[b])
    promoted = search.ask_jobs(3)
    retired = {config_key(c) for c in search.retired()}
    assert retired == {config_key(c) for c, _ in first} - {config_key(c) for c, _ in promoted}
    assert len(retired) == 6 and search.retired() == []  # handed out once
    search.tell([(c, objective(c, 3.0)) for c, _ in promoted], budgets=[3.0] * 3)
    (top, _), = search.ask_jobs(1)
    assert {config_key(c) for c in search.retired()} == {config_key(c) for c, _ in promoted} - {config_key(top)}


# ----------------------------------------------------------------- torch
@pytest.fixture
def torch_problems(monkeypatch):
    torch = pytest.importorskip(
        "torch", reason="torch is not installed: pip install torch (or pip install -e '.[test]')")
    monkeypatch.setenv("AMBS_TORCH_DEVICE", "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def _reporter(path: Path | None) -> Reporter:
    r = Reporter(0)
    r.checkpoint = path
    return r


@pytest.mark.parametrize("name", TORCH_PROBLEMS)
def test_a_continued_training_equals_one_from_scratch(name, torch_problems, tmp_path) -> None:
    """3 epochs saved, then 6 more from the checkpoint: the same objective as 9
    epochs from nothing, bit for bit (weights, optimizer and generators are restored)."""
    import importlib

    mod = importlib.import_module(f"problems.{name}")
    config = mod.problem.default_configuration
    ckpt = tmp_path / "c.ckpt"
    first = mod.run(config, 3, _reporter(ckpt))
    assert (first["epochs"], first["epochs_trained"]) == (3, 3) and ckpt.exists()
    continued = mod.run(config, 9, _reporter(ckpt))
    scratch = mod.run(config, 9)
    assert (continued["epochs"], continued["epochs_trained"]) == (9, 6)
    assert scratch["epochs_trained"] == 9
    assert continued["objective"] == scratch["objective"]
    # A checkpoint that trained further than asked now is not used.
    again = mod.run(config, 4, _reporter(ckpt))
    assert again["epochs_trained"] == 4


def test_a_checkpoint_holding_more_than_weights_is_refused(torch_problems, tmp_path) -> None:
    """Checkpoints are loaded with weights_only: a file with a pickled object
    (one another user could have planted) fails the evaluation, runs nothing."""
    from problems import mlp_digits

    ckpt = tmp_path / "c.ckpt"
    torch_problems.save({"epoch": 1, "model": _Planted()}, ckpt)
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|global"):
        mlp_digits.run(mlp_digits.problem.default_configuration, 2, _reporter(ckpt))
    assert not _Planted.loaded


class _Planted:
    loaded = False

    def __setstate__(self, state: dict) -> None:
        type(self).loaded = True


def _epochs(rows: list[dict[str, str]]) -> tuple[int, int]:
    return sum(int(r["m:epochs"]) for r in rows), sum(int(r["m:epochs_trained"]) for r in rows)


@pytest.mark.parametrize("checkpoints", [True, False])
def test_asha_on_mlp_digits_continues_promotions(checkpoints, torch_problems, tmp_path, ambs_cli) -> None:
    """``ambs search`` with ASHA on two process workers: with checkpoints a
    promoted configuration trains only the epochs it lacks; with
    --no-checkpoints every evaluation trains its budget from scratch. Either
    way the checkpoints are gone once the run is complete."""
    out = tmp_path / "run"
    args = ["search", str(ROOT / "problems" / "mlp_digits.py"), "--method", "asha", "--max-evals", "14",
            "--workers", "2", "--seed", "3", "--min-budget", "1", "--max-budget", "9", "-q", "-o", str(out)]
    proc = ambs_cli.run(*args, *([] if checkpoints else ["--no-checkpoints"]), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    promoted = [r for r in rows if float(r["budget"]) > 1]
    assert promoted, "ASHA promoted nothing in 14 evaluations"
    reached, trained = _epochs(rows)
    if checkpoints:
        assert all(int(r["m:epochs_trained"]) < int(r["m:epochs"]) for r in promoted)
        assert trained < reached
    else:
        assert trained == reached
    assert not (out / "checkpoints").exists()
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["no_checkpoints"] is (not checkpoints)


def test_a_run_stopped_by_its_walltime_keeps_checkpoints_for_resume(tmp_path, ambs_cli) -> None:
    """Stopped by --walltime before the promotion, the run keeps its checkpoints;
    the resumed run's promotion continues from the one of the first run."""
    problem = tmp_path / "steps.py"
    problem.write_text(STEPS.format(sleep=1.0))
    out = tmp_path / "run"
    common = ["search", str(problem), "--method", "sha", "--evaluator", "serial", "--max-evals", "4",
              "--seed", "0", "-q", "-o", str(out)]
    proc = ambs_cli.run(*common, "--walltime", "1.5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = _rows(out)
    assert 1 <= len(first) < 4 and all(float(r["budget"]) == 1 for r in first)
    assert list((out / "checkpoints").glob("*.ckpt")), "a run stopped early lost its checkpoints"
    proc = ambs_cli.run(*common, "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    (top,) = [r for r in rows if float(r["budget"]) == 3]
    assert top["m:start"] == "1"
    assert not list((out / "checkpoints").glob("*.ckpt"))
