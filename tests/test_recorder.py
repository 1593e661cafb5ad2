"""ambs.recorder: the append-only results CSV and the run directory."""

from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambs import Problem
from ambs.errors import RunDirError
from ambs.recorder import EXTRA, RESULTS, SETTINGS, Recorder, RunInfo, columns_for, read_results
from ambs.result import Evaluation, Status
from ambs.space import Space


def info_for(problem: Problem, method: str = "ambs", ref: str = "prob.py") -> RunInfo:
    return RunInfo(
        problem=ref, problem_name=problem.name or "prob", fingerprint=problem.fingerprint(),
        method=method, columns=columns_for(problem.hyperparameter_names, problem.metadata),
        settings={"seed": 1},
    )


def evaluation(job_id: int, config: dict, objective: float = 1.0, **kw) -> Evaluation:
    kw.setdefault("submitted", 0.1 * job_id)
    kw.setdefault("started", 0.1 * job_id + 0.01)
    kw.setdefault("finished", 0.1 * job_id + 0.05)
    return Evaluation(job_id=job_id, config=config, objective=objective, **kw)


def lines(path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture
def problem(mixed_problem) -> Problem:
    return mixed_problem


@pytest.fixture
def configs(problem) -> list[dict]:
    """Configurations covering both branches of the condition."""
    space = Space(problem.space)
    out = space.to_dicts(space.sample(40, np.random.default_rng(0)))
    assert any("momentum" in c for c in out) and any("momentum" not in c for c in out)
    return out


def test_columns_for():
    assert columns_for(["a", "b"], ["m1"]) == [
        "job_id", "p:a", "p:b", "objective", "status", "worker", "host", "local_rank", "gpu",
        "submitted", "started", "finished", "error", "log", "stopped", "m:m1", EXTRA,
    ]


def test_header_is_written_at_once(tmp_path, problem):
    rec = Recorder(tmp_path / "run", info_for(problem))
    try:
        header = lines(tmp_path / "run" / RESULTS)
        assert header == [",".join(rec.columns)]
        assert rec.columns[1:8] == [f"p:{n}" for n in problem.hyperparameter_names]
        assert rec.columns[-2:] == ["m:layers_seen", EXTRA]
        settings = json.loads((tmp_path / "run" / SETTINGS).read_text())
        assert settings["fingerprint"] == problem.fingerprint()
        assert settings["method"] == "ambs" and settings["columns"] == rec.columns
        assert settings["settings"] == {"seed": 1} and settings["created"]
    finally:
        rec.close()


def test_rows_are_flushed_while_the_recorder_is_open(tmp_path, problem, configs):
    rec = Recorder(tmp_path, info_for(problem))
    path = tmp_path / RESULTS
    try:
        for i, c in enumerate(configs[:3]):
            rec.append(evaluation(i, c, objective=-i, metadata={"layers_seen": c["layers"]}))
            text = path.read_text()
            assert text.endswith("\n")
            assert len(text.splitlines()) == i + 2
        got = read_results(path, Space(problem.space))
        assert [e.job_id for e in got] == [0, 1, 2]
    finally:
        rec.close()


def test_round_trip(tmp_path, problem, configs):
    space = Space(problem.space)
    evs = []
    for i, c in enumerate(configs):
        status = [Status.OK, Status.FAILED, Status.TIMEOUT, Status.CRASHED][i % 4]
        ok = status is Status.OK
        evs.append(evaluation(
            i, c, objective=float(i) / 3 if ok else math.nan, status=status,
            error="" if ok else f"went wrong, \"badly\"\nat {i}", worker=i % 3, host="node-1",
            metadata={"layers_seen": c["layers"]} if ok else {},
        ))
    with_rec = Recorder(tmp_path, info_for(problem))
    for e in evs:
        with_rec.append(e)
    with_rec.close()
    got = read_results(tmp_path / RESULTS, space)
    assert len(got) == len(evs)
    for a, b in zip(evs, got):
        assert b.config == a.config
        for k, v in a.config.items():
            assert type(b.config[k]) is type(v), k  # bool stays bool, int stays int
        assert b.job_id == a.job_id and b.status is a.status and b.worker == a.worker
        if a.ok:
            assert b.objective == a.objective  # repr() keeps every digit
        else:
            assert math.isnan(b.objective)
        assert b.error == a.error
        assert b.submitted == pytest.approx(a.submitted) and b.finished == pytest.approx(a.finished)
    # The configurations map back to the same vectors (inactive entries NaN).
    assert np.allclose(space.to_vectors([e.config for e in got]), space.to_vectors(configs), equal_nan=True)


def test_inactive_values_are_empty_cells(tmp_path, problem):
    rec = Recorder(tmp_path, info_for(problem))
    c = {"lr": 0.01, "layers": 3, "act": "tanh", "flag": False, "batch": 64, "opt": "adam"}
    rec.append(evaluation(0, c))
    rec.close()
    header, row = lines(tmp_path / RESULTS)
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["p:momentum"] == ""
    assert cells["p:flag"] == "False" and cells["p:batch"] == "64" and cells["p:layers"] == "3"
    [back] = read_results(tmp_path / RESULTS, Space(problem.space))
    assert back.config == c


def test_categorical_numbers_and_bools_round_trip(tmp_path):
    p = Problem()
    p.add_hyperparameter([1, 2, 3], "n_cat")
    p.add_hyperparameter([0.5, 1e-5], "f_cat")
    p.add_hyperparameter([True, False], "b")
    p.add_hyperparameter([16, 32], "o", ordered=True)
    space = Space(p.space)
    all_configs = space.to_dicts(space.grid(2))
    rec = Recorder(tmp_path, info_for(p))
    for i, c in enumerate(all_configs):
        rec.append(evaluation(i, c))
    rec.close()
    got = [e.config for e in read_results(tmp_path / RESULTS, space)]
    assert got == all_configs
    assert all(type(g["b"]) is bool and type(g["n_cat"]) is int for g in got)


def test_metadata_columns_and_extra(tmp_path, problem, configs):
    rec = Recorder(tmp_path, info_for(problem))
    with pytest.warns(UserWarning, match="metadata 'gpu' that the problem does not declare"):
        rec.append(evaluation(0, configs[0], metadata={"layers_seen": 4, "gpu": "A100"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per key, not at every row
        rec.append(evaluation(1, configs[1], metadata={"gpu": "H100", "layers_seen": np.int64(2)}))
    rec.append(evaluation(2, configs[2], metadata={}))
    rec.close()
    with open(tmp_path / RESULTS, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["m:layers_seen"] for r in rows] == ["4", "2", ""]
    assert json.loads(rows[0][EXTRA]) == {"gpu": "A100"}
    assert json.loads(rows[1][EXTRA]) == {"gpu": "H100"}
    assert rows[2][EXTRA] == ""


def test_cells_for_odd_values(tmp_path):
    p = Problem()
    p.add_hyperparameter((0.0, 1.0), "x")
    p.add_metadata("arr", "np", "none", "nan", "d")
    rec = Recorder(tmp_path, info_for(p))
    rec.append(evaluation(
        0, {"x": 0.5}, metadata={"arr": [1, 2], "np": np.float32(0.25), "none": None, "nan": math.nan,
                                 "d": {"k": 1}},
    ))
    rec.close()
    with open(tmp_path / RESULTS, newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["m:arr"] == "[1, 2]" and row["m:np"] == "0.25" and row["m:none"] == ""
    assert row["m:nan"] == "" and json.loads(row["m:d"]) == {"k": 1}
    assert row["p:x"] == "0.5" and row["objective"] == "1.0" and row["status"] == "ok"


def test_refuses_a_directory_holding_another_run(tmp_path, problem, configs):
    rec = Recorder(tmp_path, info_for(problem))
    rec.append(evaluation(0, configs[0]))
    rec.close()
    before = (tmp_path / RESULTS).read_text()
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        Recorder(tmp_path, info_for(problem))
    assert (tmp_path / RESULTS).read_text() == before
    # run.json alone is enough to refuse.
    other = tmp_path / "other"
    Recorder(other, info_for(problem)).close()
    (other / RESULTS).unlink()
    with pytest.raises(RunDirError, match="already holds a run"):
        Recorder(other, info_for(problem))


def test_empty_directory_is_fine(tmp_path, problem):
    (tmp_path / "empty").mkdir()
    Recorder(tmp_path / "empty", info_for(problem)).close()
    assert (tmp_path / "empty" / RESULTS).exists()


def test_resume_appends(tmp_path, problem, configs):
    rec = Recorder(tmp_path, info_for(problem))
    rec.append(evaluation(0, configs[0]))
    rec.close()
    rec = Recorder(tmp_path, info_for(problem), resume=True)
    rec.append(evaluation(1, configs[1]))
    rec.close()
    got = read_results(tmp_path / RESULTS, Space(problem.space))
    assert [e.job_id for e in got] == [0, 1]
    assert len(lines(tmp_path / RESULTS)) == 3  # one header
    settings = json.loads((tmp_path / SETTINGS).read_text())
    assert len(settings["resumes"]) == 1 and settings["created"]


def test_resume_with_nothing_to_resume(tmp_path, problem):
    missing = tmp_path / "missing"
    with pytest.raises(RunDirError, match="nothing to resume"):
        Recorder(missing, info_for(problem), resume=True)
    assert not missing.exists()  # a refused resume creates nothing
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="nothing to resume"):
        Recorder(tmp_path / "empty", info_for(problem), resume=True)


def test_resume_with_another_space(tmp_path, problem):
    Recorder(tmp_path, info_for(problem)).close()
    other = Problem()
    other.add_hyperparameter((0.0, 1.0), "x")
    with pytest.raises(RunDirError, match="another search space"):
        Recorder(tmp_path, info_for(other), resume=True)
    # The same names with another range are another space too.
    narrower = Problem()
    narrower.add_hyperparameter((0.0, 1.0), "x")
    run2 = tmp_path / "run2"
    Recorder(run2, info_for(narrower)).close()
    wider = Problem()
    wider.add_hyperparameter((0.0, 2.0), "x")
    with pytest.raises(RunDirError, match="another search space"):
        Recorder(run2, info_for(wider), resume=True)


def test_resume_with_another_method(tmp_path, problem):
    Recorder(tmp_path, info_for(problem, method="ambs")).close()
    with pytest.raises(RunDirError, match="--method ambs, not random"):
        Recorder(tmp_path, info_for(problem, method="random"), resume=True)


def test_resume_with_other_columns(tmp_path, problem):
    Recorder(tmp_path, info_for(problem)).close()
    problem.add_metadata("new_column")
    with pytest.raises(RunDirError, match="other columns"):
        Recorder(tmp_path, info_for(problem), resume=True)


def test_resume_with_unreadable_settings(tmp_path, problem):
    Recorder(tmp_path, info_for(problem)).close()
    (tmp_path / SETTINGS).write_text("{not json")
    with pytest.raises(RunDirError, match="unreadable"):
        Recorder(tmp_path, info_for(problem), resume=True)
    (tmp_path / SETTINGS).unlink()
    with pytest.raises(RunDirError, match="is missing"):
        Recorder(tmp_path, info_for(problem), resume=True)


def test_resume_cuts_a_half_written_last_line(tmp_path, problem, configs):
    rec = Recorder(tmp_path, info_for(problem))
    rec.append(evaluation(0, configs[0]))
    rec.append(evaluation(1, configs[1]))
    rec.close()
    path = tmp_path / RESULTS
    complete = path.read_text()
    with open(path, "a") as fh:
        fh.write("2,0.01,3,relu")  # the crash came mid-row
    space = Space(problem.space)
    with pytest.warns(UserWarning, match="half-written last line"):
        assert [e.job_id for e in read_results(path, space)] == [0, 1]
    with pytest.warns(UserWarning, match=r"dropped a half-written last line \(13 bytes\)"):
        rec = Recorder(tmp_path, info_for(problem), resume=True)
    assert path.read_text() == complete
    rec.append(evaluation(2, configs[2]))
    rec.close()
    assert [e.job_id for e in read_results(path, space)] == [0, 1, 2]


def test_read_results_errors(tmp_path, problem, configs):
    space = Space(problem.space)
    assert read_results(tmp_path / "nothing.csv", space) == []
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert read_results(empty, space) == []
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(RunDirError, match="not an ambs results file"):
        read_results(foreign, space)
    rec = Recorder(tmp_path / "run", info_for(problem))
    for i in range(3):
        rec.append(evaluation(i, configs[i]))
    rec.close()
    path = tmp_path / "run" / RESULTS
    text = lines(path)
    short = text[:2] + ["1,2,3"] + text[3:]
    path.write_text("\n".join(short) + "\n")
    with pytest.raises(RunDirError, match="line 3: 3 fields"):
        read_results(path, space)
    bad = text[:3] + [text[3].replace(",ok,", ",exploded,")]
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(RunDirError, match="line 4: cannot parse row"):
        read_results(path, space)


def test_run_directory_records_space_budget_and_objective_names(tmp_path, problem):
    """space.json (ConfigSpace's JSON) and the budget's and objectives' names in
    run.json: what the analysis takes axis scales and labels from."""
    from ConfigSpace import ConfigurationSpace

    problem.set_budget(1, 8, "epochs", default=6)
    problem.set_objective_names("accuracy", "-weights")
    info = info_for(problem)
    info.budget = problem.budget.as_dict()
    info.objectives = problem.objective_names
    info.space = problem.space
    Recorder(tmp_path / "run", info).close()
    doc = json.loads((tmp_path / "run" / SETTINGS).read_text())
    assert doc["budget"] == {"name": "epochs", "low": 1, "high": 8, "default": 6.0}
    assert doc["objectives"] == ["accuracy", "-weights"]
    space = ConfigurationSpace.from_json(tmp_path / "run" / "space.json")
    assert space == problem.space


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choices=st.lists(st.text(st.sampled_from('"a ,\n'), max_size=4), min_size=1, max_size=6, unique=True))
def test_any_string_choice_reads_back_as_itself(choices, tmp_path_factory):
    """"" , '""', '"', a comma or newline: every choice, and an inactive one, reads back apart."""
    p = Problem()
    p.add_hyperparameter(choices, "s")
    p.add_hyperparameter(["on", "off"], "sw")
    p.add_hyperparameter(choices, "t")
    p.add_condition("t", "sw", "on")
    d = tmp_path_factory.mktemp("choices")
    rec = Recorder(d, info_for(p))
    configs = [{"s": c, "sw": "on", "t": c} for c in choices] + [{"s": c, "sw": "off"} for c in choices]
    for i, c in enumerate(configs):
        rec.append(evaluation(i, c))
    rec.close()
    assert [e.config for e in read_results(d / RESULTS, Space(p.space))] == configs
