"""Architecture search: chain spaces, morphisms, evolution, REINFORCE, hill climbing,
several objectives and Pareto fronts, hardware-aware assignment.

The generic ask/tell contract of evolution, lemonade, reinforce and morphism
is in tests/test_search.py (parametrized over METHODS).
"""

from __future__ import annotations

import math
from pathlib import Path

import ConfigSpace as CS
import numpy as np
import pytest

from ambs import Problem
from ambs.nas.hardware import assign, complexity, domain_complexity, priority
from ambs.nas.space import ArchSpec, arch_problem, count_parameters, layers_of
from ambs.pareto import dominates, pareto_mask
from ambs.problem import load_problem
from ambs.result import Status, normalize_multi, normalize_output
from ambs.search import AgingEvolution, Lemonade, MorphismSearch, Reinforce
from ambs.search.base import config_key
from ambs.search.evolution import mutate_one
from ambs.space import Space

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

IMAGE = ArchSpec(kind="image", input_shape=(1, 8, 8), n_outputs=10, max_layers=4)
VECTOR = ArchSpec(kind="vector", input_shape=(12,), n_outputs=3, max_layers=4, widths=(4, 8, 16))
ROOT = Path(__file__).resolve().parents[1]


def sample_configs(spec: ArchSpec, n: int, seed: int = 0) -> list[dict]:
    space = Space(arch_problem(spec).space)
    return space.to_dicts(space.sample(n, np.random.default_rng(seed)))


# ------------------------------------------------------------------ the space


@pytest.mark.parametrize("spec", [IMAGE, VECTOR], ids=["image", "vector"])
def test_layers_beyond_the_depth_are_inactive(spec):
    for c in sample_configs(spec, 40):
        n = c["n_layers"]
        assert all(not k.startswith(f"l{i}_") for k in c for i in range(n, spec.max_layers))
        assert all(f"l{i}_act" in c for i in range(n))
        for i in range(n):
            if c.get(f"l{i}_op") == "maxpool":
                assert f"l{i}_width" not in c  # pooling keeps its input's width
        CS.Configuration(arch_problem(spec).space, values=c).check_valid_configuration()


@pytest.mark.parametrize("spec", [IMAGE, VECTOR], ids=["image", "vector"])
def test_build_model_runs_and_the_parameter_count_is_exact(spec):
    from ambs.nas.space import build_model

    for c in sample_configs(spec, 15, seed=1):
        model = build_model(c, spec)
        out = model(torch.rand(3, *spec.input_shape))
        assert out.shape == (3, spec.n_outputs)
        assert sum(p.numel() for p in model.parameters()) == count_parameters(c, spec)


def test_skips_come_from_earlier_layers_and_starting_point_is_smallest():
    p = arch_problem(IMAGE)
    assert p.space["l2_skip"].choices == ("none", "0")
    assert p.space["l3_skip"].choices == ("none", "0", "1")
    start = p.starting_points[0]
    assert start["n_layers"] == 1 and start["l0_width"] == 8
    layers = layers_of({"n_layers": 3, "l0_op": "conv", "l0_width": 16, "l0_kernel": 3, "l0_act": "relu",
                        "l1_op": "maxpool", "l1_kernel": 3, "l1_act": "tanh",
                        "l2_op": "sepconv", "l2_width": 8, "l2_kernel": 1, "l2_act": "elu", "l2_skip": "0"},
                       IMAGE)
    assert [(la.in_width, la.width, la.skip) for la in layers] == [(1, 16, None), (16, 16, None), (16, 8, 0)]


def test_a_torch_problem_without_torch_is_one_line(monkeypatch):
    import problems._torch as helpers

    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(helpers.TorchMissing, match="pip install torch"):
        helpers.require("nas_cnn_digits")


# ------------------------------------------------------------------ morphisms


@pytest.mark.parametrize("spec", [IMAGE, VECTOR], ids=["image", "vector"])
def test_every_morphism_keeps_the_function(spec):
    """Before any training, a child computes what its parent computes (within 1e-5)."""
    from ambs.nas.morph import inherit, morphisms
    from ambs.nas.space import build_model

    space = Space(arch_problem(spec).space)
    kinds = set()
    torch.manual_seed(0)
    x = torch.rand(4, *spec.input_shape)  # nonnegative, as the spec says
    for c in sample_configs(spec, 12, seed=2) + [arch_problem(spec).starting_points[0]]:
        parent = build_model(c, spec)
        with torch.no_grad():
            y = parent(x)
        for m in morphisms(c, spec):
            space.to_vectors([m.child])  # the child is in the space
            child = build_model(m.child, spec)
            inherit(child, parent.state_dict(), m, spec)
            with torch.no_grad():
                assert (child(x) - y).abs().max().item() < 1e-5, (m.kind, c, m.child)
            assert config_key(m.child) != config_key(c)
            kinds.add(m.kind)
    assert kinds >= {"widen", "deepen", "skip"}


def test_checkpoints_find_the_best_parent_one_morphism_away(tmp_path):
    from ambs.nas.morph import find_parent, load_checkpoint, morphisms, save_checkpoint
    from ambs.nas.space import build_model

    start = arch_problem(VECTOR).starting_points[0]
    model = build_model(start, VECTOR)
    save_checkpoint(tmp_path, start, 0.5, model)
    child = next(m for m in morphisms(start, VECTOR) if m.kind == "widen")
    other = dict(start, l0_act="tanh")  # also one widening away from the child? no: another activation
    save_checkpoint(tmp_path, other, 0.9, build_model(other, VECTOR))
    found = find_parent(tmp_path, child.child, VECTOR)
    assert found is not None and found[0] == start and found[1].kind == "widen"
    state = load_checkpoint(tmp_path, start)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert find_parent(tmp_path / "missing", child.child, VECTOR) is None
    assert not list(tmp_path.glob(".*tmp"))


def test_a_nas_problem_child_inherits_its_parents_weights(tmp_path, monkeypatch):
    from ambs.nas.morph import CHECKPOINT_VAR, morphisms
    from ambs.problem import load_problem

    monkeypatch.setenv(CHECKPOINT_VAR, str(tmp_path))
    loaded = load_problem(str(ROOT / "problems" / "nas_mlp_digits.py"))
    start = loaded.problem.starting_points[0]
    first = loaded.run(start, 1)
    assert first["inherited"] == ""
    specs = tuple(o.spec() for o in loaded.problem.objectives)
    objective, status, _, meta, values = normalize_multi(first, specs)
    assert specs == (("accuracy", "max"), ("parameters", "min"))
    assert status is Status.OK and values == (objective, float(first["parameters"])) and "accuracy" not in meta
    deeper = next(m.child for m in morphisms(start, loaded.module.SPEC) if m.kind == "deepen")
    second = loaded.run(deeper, 1)
    assert second["inherited"] == "deepen"
    assert len(list(tmp_path.glob("*.pt"))) == 2


# ------------------------------------------------------------------ evolution


def cat_problem(n: int = 4) -> Problem:
    p = Problem()
    for i in range(n):
        p.add_hyperparameter(list("abcd"), f"c{i}")
    return p


def score(c: dict) -> float:
    return float(sum(v == "a" for k, v in c.items()))


def test_aging_removes_the_oldest_not_the_worst():
    search = AgingEvolution(cat_problem(), random_state=0, population_size=3, sample_size=2)
    configs = search.ask(4)
    values = [10.0, 1.0, 2.0, 3.0]  # the oldest is by far the best
    for c, v in zip(configs, values):
        search.tell([(c, v)])
    members = [search.space.to_dicts(x)[0] for x, _ in search.population]
    assert [config_key(c) for c in members] == [config_key(c) for c in configs[1:]]
    assert [-y for _, y in search.population] == [1.0, 2.0, 3.0]


def test_evolution_is_random_until_the_population_is_full_then_mutates_one_choice():
    search = AgingEvolution(cat_problem(6), random_state=1, population_size=8, sample_size=3)
    first = search.ask(8)  # the whole initial population, nothing told
    assert len({config_key(c) for c in first}) == 8
    search.tell([(c, score(c)) for c in first])
    children = search.ask(6)
    members = [search.space.to_dicts(x)[0] for x, _ in search.population]
    for child in children:
        diffs = [sum(child[k] != m[k] for k in child) for m in members]
        assert min(diffs) == 1  # one choice away from a member (its parent)


def test_mutate_one_changes_exactly_one_active_choice():
    space = Space(cat_problem(5).space)
    rng = np.random.default_rng(0)
    x = space.sample(1, rng)[0]
    for _ in range(50):
        y = mutate_one(space, x, rng)
        assert int((y != x).sum()) == 1


def test_evolution_beats_its_random_start():
    search = AgingEvolution(cat_problem(8), random_state=0, population_size=10, sample_size=4)
    initial = search.ask(10)
    search.tell([(c, score(c)) for c in initial])
    for _ in range(40):
        c = search.ask(2)
        search.tell([(x, score(x)) for x in c])
    assert search.best()[1] > max(score(c) for c in initial)
    assert search.best()[1] >= 6


def test_lemonade_keeps_the_pareto_front_of_objective_and_cheap_objective():
    problem = cat_problem(4)
    problem.cheap_objective = lambda c: -float(sum(v == "a" for v in c.values()))  # "a" is costly
    search = Lemonade(problem, random_state=0, population_size=6, sample_size=3)
    for _ in range(8):
        configs = search.ask(3)
        search.tell([(c, score(c)) for c in configs])
    front = search.pareto_front()
    assert front
    told = [(search.space.to_dicts(x)[0], -y) for x, y in zip(search._X, search._y)]
    for config, obj, cheap in front:
        assert cheap == problem.cheap_objective(config)
        assert not any(dominates([o, problem.cheap_objective(c)], [obj, cheap]) for c, o in told)


# ------------------------------------------------------------------ REINFORCE


def test_reinforce_moves_probability_toward_rewarded_choices():
    search = Reinforce(cat_problem(4), random_state=0, lr=0.05)
    before = search.probabilities()[0][0]  # P(c0 = "a")
    for _ in range(12):
        configs = search.ask(8)
        search.tell([(c, 1.0 if c["c0"] == "a" else 0.0) for c in configs])
    after = search.probabilities()[0][0]
    assert before == pytest.approx(0.25, abs=0.1)
    assert after > 0.6 > before
    assert search.n_updates == 12


def test_reinforce_is_deterministic_and_ignores_failures():
    def run(seed: int) -> tuple[list[str], list[float]]:
        search = Reinforce(cat_problem(3), random_state=seed)
        keys = []
        for i in range(4):
            configs = search.ask(3)
            keys += [config_key(c) for c in configs]
            search.tell([(c, None if i == 1 else score(c)) for c in configs])
        return keys, search.probabilities()[1].tolist()

    assert run(5) == run(5)
    search = Reinforce(cat_problem(2), random_state=0)
    search.tell([(c, None) for c in search.ask(4)])
    assert search.n_updates == 0


def test_reinforce_discretizes_reals_and_integers():
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter((1, 100), "k")
    p.add_hyperparameter((1, 3), "small")
    search = Reinforce(p, random_state=0, n_bins=4)
    actions = dict(zip(search.space.names, search.n_actions))
    assert actions == {"x": 4, "k": 4, "small": 3}  # bins of reals and wide integers, or every value
    configs = search.ask(20)
    acts, active = search._to_actions(search.space.to_vectors(configs))
    assert active.all() and (acts.max(axis=0) < np.array(search.n_actions)).all()
    assert {c["small"] for c in configs} <= {1, 2, 3}


# ------------------------------------------------------------------ morphism hill climbing


def test_morphism_search_proposes_children_of_the_best_network():
    from ambs.nas.morph import morphisms

    problem = arch_problem(VECTOR)
    search = MorphismSearch(problem, random_state=0)
    start = problem.starting_points[0]
    first = search.ask(3)
    assert config_key(first[0]) == config_key(start)
    kids = {config_key(m.child) for m in morphisms(start, VECTOR)}
    assert all(config_key(c) in kids for c in first[1:])
    search.tell([(first[0], 0.5), (first[1], 0.7), (first[2], 0.6)])
    nxt = search.ask(4)
    grandkids = {config_key(m.child) for m in morphisms(first[1], VECTOR)}
    assert len(grandkids) == 2  # widen, deepen: then one-choice mutations of the parent
    assert {config_key(c) for c in nxt[:2]} == grandkids


# ------------------------------------------------------------------ several objectives


def test_pareto_mask_on_known_points():
    pts = np.array([[1, 5], [2, 4], [2, 2], [0, 5], [3, 1], [3, 1], [np.nan, 9], [1, 4]])
    assert pareto_mask(pts).tolist() == [True, True, False, False, True, True, False, False]
    assert pareto_mask(np.array([[1.0], [3.0], [2.0]])).tolist() == [False, True, False]
    assert dominates([2, 2], [2, 1]) and not dominates([2, 2], [2, 2])


def test_several_objectives_in_the_run_output():
    assert normalize_output({"objective": (0.9, -10)})[::3] == (0.9, {"objectives": [0.9, -10.0]})
    assert normalize_output({"objectives": [1, 2], "x": 3})[3] == {"objectives": [1.0, 2.0], "x": 3}
    _, status, error, _ = normalize_output({"objective": [0.5, math.inf]})
    assert status is Status.FAILED and "non-finite" in error
    assert normalize_output({"objective": []})[1] is Status.FAILED
    assert normalize_output([0.5, 1.0])[1] is Status.FAILED  # a bare list stays an error


def test_analysis_pareto_front_from_the_csv(tmp_path):
    from ambs import analysis
    from ambs.recorder import Recorder, RunInfo, columns_for
    from ambs.result import Evaluation

    problem = Problem(name="two")
    problem.add_hyperparameter((0.0, 1.0), "x")
    problem.add_metadata("objectives")
    info = RunInfo(problem="two", problem_name="two", fingerprint=problem.fingerprint(), method="random",
                   columns=columns_for(["x"], ["objectives"]))
    rec = Recorder(tmp_path, info)
    points = [(0.9, -50.0), (0.8, -10.0), (0.7, -20.0), (0.95, -80.0), (0.6, -5.0)]
    for i, (a, b) in enumerate(points):
        obj, status, err, meta = normalize_output({"objective": [a, b]})
        rec.append(Evaluation(job_id=i, config={"x": i / 10}, objective=obj, status=status, metadata=meta,
                              submitted=i, started=i, finished=i + 1))
    rec.append(Evaluation(job_id=5, config={"x": 0.9}, status=Status.FAILED, error="boom",
                          submitted=5, started=5, finished=6))
    rec.close()
    run = analysis.load_run(tmp_path)
    front = analysis.pareto_front(run)
    assert sorted(front.loc[front["pareto"], "job_id"].tolist()) == [0, 1, 3, 4]
    assert len(front) == 5  # the failure is not there
    by_column = analysis.pareto_front(run, ["objective"])
    assert by_column.loc[by_column["pareto"], "job_id"].tolist() == [3]
    assert analysis.plot_pareto(run, tmp_path / "p.png").stat().st_size > 0


# ------------------------------------------------------------------ hardware-aware assignment


def test_shadho_complexity_and_priority_follow_the_formulas():
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_hyperparameter(list("abcd"), "c")
    p.add_hyperparameter((0.0, 1.0), "y")
    p.add_condition("y", "c", "a")
    space = Space(p.space)
    assert domain_complexity(space, space.names.index("x")) == pytest.approx(2.99)
    assert domain_complexity(space, space.names.index("c")) == pytest.approx(2 - 1 / 4)
    c = complexity(space, [{"x": 0.5, "c": "b"}, {"x": 0.5, "c": "a", "y": 0.1}])
    assert c.tolist() == pytest.approx([2.99 * 1.75, 2.99 * 1.75 * 2.99])
    assert priority([0.5, 0.25, 0.1]) == pytest.approx(1 / 0.1 - 1 / 0.5)
    assert priority([0.3]) == 0.0
    with pytest.raises(ValueError):
        priority([0.0, 1.0])


def test_shadho_assignment_gives_the_top_of_the_ranking_to_the_strong_class():
    scores = [1.0, 9.0, 3.0, 7.0, 5.0, 2.0, 8.0, 4.0]
    out = assign(scores, [("gpu", 2), ("cpu", 6)])
    assert [s for s, k in zip(scores, out) if k == "gpu"] == [9.0, 8.0]
    assert out.count("cpu") == 6
    assert assign([1.0, 2.0, 3.0], [("gpu", 1), ("cpu", 1)]).count("gpu") in (1, 2)
    # Deeper chains are more complex, so they go to the GPUs.
    space = Space(arch_problem(IMAGE).space)
    configs = sample_configs(IMAGE, 20, seed=4)
    where = assign(complexity(space, configs), [("gpu", 1), ("cpu", 3)])
    depth = {k: np.mean([c["n_layers"] for c, w in zip(configs, where) if w == k]) for k in ("gpu", "cpu")}
    assert depth["gpu"] > depth["cpu"]


@pytest.mark.parametrize("name", ["nas_mlp_digits", "nas_cnn_digits", "nas_rnn_addition"])
def test_nas_problems_declare_what_run_config_trains(name):
    """run(config) trains EPOCHS, fewer than the budget's high: the declared default,
    which the CSV's budget column records for methods that are not multi-fidelity."""
    loaded = load_problem(str(Path(__file__).resolve().parent.parent / "problems" / f"{name}.py"))
    budget = loaded.problem.budget
    assert budget.unbudgeted == loaded.module.EPOCHS < budget.high
    assert budget.whole(None) == loaded.module.EPOCHS
