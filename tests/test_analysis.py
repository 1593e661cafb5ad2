"""ambs.analysis and ``ambs analyze`` on real short runs.

Two searches run once per session, side by side, as subprocesses on a
problem that sleeps: a random search under the process evaluator with two
workers, whose intervals overlap, in which every worker fails its second
evaluation; and a clean AMBS search under the serial evaluator (cheaper to
start). The numbers are then checked against the CSV, read independently.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import subprocess
import sys
import textwrap
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ambs import analysis
from ambs.analysis import frontplot, metrics, plots
from ambs.cli import main

pytest.importorskip("matplotlib")

BIN = Path(sys.executable).parent
PNG = b"\x89PNG\r\n\x1a\n"

SLEEPY = """
import time
from ambs import Problem
problem = Problem(name="sleepy")
problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "lr")
problem.add_hyperparameter((0.0, 1.0), "x")
problem.add_hyperparameter(["a", "b", "c"], "kind")
_calls = 0
def run(config):
    global _calls
    _calls += 1
    if {faults} and _calls == 2:
        raise RuntimeError("bad configuration")
    time.sleep(0.12)
    return -(config["x"] - 0.3) ** 2 - {{"a": 0.0, "b": 0.2, "c": 0.5}}[config["kind"]]
"""

DEEPHYPER = """\
p:b,p:function,p:x,objective,job_id,job_status,m:timestamp_submit,m:timestamp_gather
7,cubic,-1.10335,5.656803,0,DONE,0.018402,1.548068
3,cubic,8.37445,590.312101,1,DONE,0.018485,1.548254
9,linear,8.787395,F,3,DONE,1.564276,1.565336
6,cubic,4.68056,108.540056,2,DONE,1.564209,2.1
2,linear,1.5,F_timeout,4,DONE,1.6,3.1
5,cubic,3.2,40.2,5,DONE,2.2,3.0
"""


def _search(problem: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [str(BIN / "python"), "-m", "ambs", "search", str(problem), "--max-evals", "12", "-q",
           "-o", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="session")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("analysis")
    for name, faults in (("clean", False), ("faulty", True)):
        (tmp / f"{name}.py").write_text(textwrap.dedent(SLEEPY.format(faults=faults)))
    procs = {
        "clean": _search(tmp / "clean.py", tmp / "clean", "--seed", "1", "--evaluator", "serial"),
        "faulty": _search(tmp / "faulty.py", tmp / "faulty", "--method", "random", "--seed", "2",
                          "--evaluator", "process", "--workers", "2"),
    }
    for name, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"{name} search failed:\n{out}\n{err}"
    return {name: tmp / name for name in procs}


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _one_line_error(capfd: pytest.CaptureFixture, argv: list[str]) -> str:
    rc = main(argv)
    err = capfd.readouterr().err
    assert rc == 2
    assert err.startswith("ambs: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------- numbers
def test_summary_matches_the_csv(run_dirs: dict[str, Path]) -> None:
    for name in ("clean", "faulty"):
        rows = _rows(run_dirs[name])
        s = analysis.summarize(analysis.load_run(run_dirs[name]), k=3)
        assert s["evaluations"] == len(rows) == 12
        assert s["by_status"] == dict(Counter(r["status"] for r in rows))
        ok = [r for r in rows if r["status"] == "ok"]
        best = max(ok, key=lambda r: float(r["objective"]))
        assert s["best"]["objective"] == max(float(r["objective"]) for r in ok)
        assert s["best"]["job_id"] == int(best["job_id"])
        assert s["best"]["time"] == pytest.approx(float(best["finished"]))
        assert s["best"]["config"]["kind"] == best["p:kind"]
        assert s["best"]["config"]["x"] == pytest.approx(float(best["p:x"]))
        tops = [t["objective"] for t in s["top"]]
        assert tops == sorted((float(r["objective"]) for r in ok), reverse=True)[:3]
        assert s["evaluations_per_hour"] == pytest.approx(len(rows) / s["wall_time"] * 3600)
        json.dumps(s)  # JSON-ready
    faulty = analysis.summarize(analysis.load_run(run_dirs["faulty"]))
    assert faulty["by_status"] == {"ok": 10, "failed": 2}  # each worker fails its second evaluation
    assert [e["count"] for e in faulty["errors"]] == [2] and "bad configuration" in faulty["errors"][0]["error"]
    assert analysis.summarize(analysis.load_run(run_dirs["clean"]))["by_status"] == {"ok": 12}


def test_utilization_from_the_intervals(run_dirs: dict[str, Path]) -> None:
    for name in ("clean", "faulty"):
        rows = _rows(run_dirs[name])
        start = min(0.0, min(float(r["submitted"]) for r in rows))
        end = max(float(r["finished"]) for r in rows)
        busy = sum(float(r["finished"]) - float(r["started"]) for r in rows)
        workers = {r["worker"] for r in rows}
        u = analysis.utilization(analysis.load_run(run_dirs[name]))
        assert u["workers"] == len(workers) == (2 if name == "faulty" else 1)
        assert u["busy_time"] == pytest.approx(busy, rel=1e-9)
        assert u["wall_time"] == pytest.approx(end - start)
        assert 0 < u["utilization"] <= 1
        assert u["utilization"] == pytest.approx(busy / (len(workers) * (end - start)), rel=1e-9)
        assert u["utilization"] <= u["utilization_after_start"] <= 1
    # the two process workers really ran side by side
    iv = analysis.worker_intervals(analysis.load_run(run_dirs["faulty"]))
    a, b = (iv[iv["worker"] == w] for w in sorted(iv["worker"].unique()))
    assert any(((a["start"] < e) & (a["end"] > s)).any() for s, e in zip(b["start"], b["end"]))


def test_best_so_far_is_monotone(run_dirs: dict[str, Path]) -> None:
    for name in ("clean", "faulty"):
        run = analysis.load_run(run_dirs[name])
        b = analysis.best_so_far(run)
        assert list(b["evaluation"]) == list(range(1, len(b) + 1))
        assert (np.diff(b["time"]) >= 0).all()
        best = b["best"].dropna().to_numpy()
        assert len(best) == len(b) - b["best"].isna().sum()
        assert b["best"].isna().sum() == b["best"].isna().cumprod().sum()  # NaN only at the start
        assert (np.diff(best) >= 0).all()
        assert best[-1] == analysis.summarize(run)["best"]["objective"]
        assert b.loc[b["improved"], "objective"].is_monotonic_increasing


def test_compare_two_runs(run_dirs: dict[str, Path]) -> None:
    runs = analysis.load_runs([run_dirs["clean"], run_dirs["faulty"]])
    assert [r.label for r in runs] == ["ambs", "random"]
    for by in ("time", "evaluations"):
        c = analysis.compare_runs(runs, by=by)
        assert set(c["label"]) == {"ambs", "random"}
        for _, g in c.groupby("label"):
            med = g["median"].dropna().to_numpy()
            assert len(med) and (np.diff(med) >= 0).all()
            assert (g["q25"].dropna() <= g["q75"].dropna() + 1e-12).all()
    t = analysis.compare_table(runs)
    assert list(t["runs"]) == [1, 1]
    with pytest.raises(analysis.AnalysisError, match="one label per run"):
        analysis.load_runs([run_dirs["clean"]], labels=["a", "b"])


# ---------------------------------------------------------------- odd files
def test_half_written_last_line_is_skipped(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    text = (run_dirs["faulty"] / "results.csv").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    partial = tmp_path / "results.csv"
    partial.write_text(text + last[: len(last) // 2])
    with pytest.warns(UserWarning, match="half-written last line"):
        run = analysis.load_run(partial)
    assert len(run.data) == 12 and run.dropped_partial_line
    assert analysis.summarize(run)["best"] == analysis.summarize(analysis.load_run(run_dirs["faulty"]))["best"]


def test_deephyper_csv(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(DEEPHYPER)
    run = analysis.load_run(path)
    assert run.style == "deephyper" and run.params == ["b", "function", "x"]
    assert dict(Counter(run.data["status"])) == {"ok": 4, "failed": 1, "timeout": 1}
    assert run.data["started"].min() == pytest.approx(0.018402)
    assert run.data["finished"].max() == pytest.approx(3.1)
    s = analysis.summarize(run)
    assert s["best"]["objective"] == pytest.approx(590.312101)
    assert s["best"]["config"] == {"b": 3, "function": "cubic", "x": 8.37445}
    assert s["workers"] == 2 and s["workers_inferred"]  # inferred from the overlapping intervals
    assert 0 < s["utilization"] <= 1


def test_importance_finds_the_parameter_that_matters(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = ["job_id,p:x,p:noise,p:color,objective,status,worker,submitted,started,finished"]
    for i in range(60):
        x, noise, color = rng.uniform(), rng.uniform(), rng.choice(["red", "blue"])
        lines.append(f"{i},{x},{noise},{color},{-(x - 0.3) ** 2},ok,1,{i},{i},{i + 1}")
    (tmp_path / "results.csv").write_text("\n".join(lines) + "\n")
    run = analysis.load_run(tmp_path)
    for method in ("permutation", "impurity"):
        imp = analysis.importance(run, method=method)
        assert set(imp["parameter"]) == {"x", "noise", "color"}
        assert imp["parameter"].iloc[0] == "x"
    assert analysis.param_kinds(run)["color"]["kind"] == "categorical"


def test_log_scale_detection() -> None:
    import pandas as pd

    rng = np.random.default_rng(1)
    assert metrics._is_log_scaled(pd.Series(10 ** rng.uniform(-5, -1, 40)))
    assert not metrics._is_log_scaled(pd.Series(rng.uniform(0, 1, 200)))
    assert not metrics._is_log_scaled(pd.Series(rng.uniform(-1, 1, 40)))


# ---------------------------------------------------------------- plots and report
def test_plots_are_png(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    run = analysis.load_run(run_dirs["faulty"])
    files, notes = analysis.plot_run(run, tmp_path / "plots")
    assert notes == []
    assert {f.name for f in files} == {"best_so_far.png", "timeline.png", "objective_vs_params.png",
                                       "importance.png"}
    for f in files:
        data = f.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, f


def test_report_embeds_the_images(run_dirs: dict[str, Path], capfd: pytest.CaptureFixture) -> None:
    assert main(["analyze", "report", str(run_dirs["faulty"])]) == 0  # into the run directory
    out = run_dirs["faulty"] / "report.html"
    assert capfd.readouterr().out == f"wrote {out}\n"
    html = out.read_text()
    images = html.split('src="data:image/png;base64,')[1:]
    assert len(images) == 4
    for chunk in images:
        assert base64.b64decode(chunk.split('"', 1)[0]).startswith(PNG)
    assert "Best configuration" in html and "failed" in html


# ---------------------------------------------------------------- command line
def test_cli_analyze(run_dirs: dict[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    assert main(["analyze", "summary", str(run_dirs["faulty"]), "--json"]) == 0
    s = json.loads(capfd.readouterr().out)
    assert s["evaluations"] == 12
    assert main(["analyze", "summary", str(run_dirs["clean"]), "--top", "2"]) == 0
    assert "best objective:" in capfd.readouterr().out
    assert main(["analyze", "compare", str(run_dirs["clean"]), str(run_dirs["faulty"]),
                 "--labels", "A", "B", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "compare.png").read_bytes().startswith(PNG)
    assert capfd.readouterr().out.endswith(f"wrote {tmp_path / 'compare.png'}\n")
    (tmp_path / "dh.csv").write_text(DEEPHYPER)
    assert main(["analyze", "plot", str(tmp_path / "dh.csv"), "--out", str(tmp_path / "p")]) == 0
    out, err = capfd.readouterr()
    assert out.count("wrote ") == 3 and "no importance plot" in err  # too few results for it
    assert (tmp_path / "p" / "timeline.png").read_bytes().startswith(PNG)
    # -o, as ambs search spells its run directory, is the same as --out.
    assert main(["analyze", "plot", str(tmp_path / "dh.csv"), "-o", str(tmp_path / "q")]) == 0
    capfd.readouterr()
    assert (tmp_path / "q" / "timeline.png").read_bytes().startswith(PNG)
    assert main(["analyze", "report", str(run_dirs["clean"]), "-o", str(tmp_path / "r.html")]) == 0
    assert "Best configuration" in (tmp_path / "r.html").read_text()


def test_cli_errors_are_one_line(run_dirs: dict[str, Path], tmp_path: Path,
                                 capfd: pytest.CaptureFixture) -> None:
    assert "no such file" in _one_line_error(capfd, ["analyze", "summary", str(tmp_path / "nope")])
    assert "not a run directory" in _one_line_error(capfd, ["analyze", "plot", str(tmp_path)])
    (tmp_path / "notes.txt").write_text("hello,world\n1,2\n")
    assert "not a results CSV" in _one_line_error(capfd, ["analyze", "summary", str(tmp_path / "notes.txt")])
    (tmp_path / "empty.csv").write_text("")
    assert "is empty" in _one_line_error(capfd, ["analyze", "report", str(tmp_path / "empty.csv")])
    (tmp_path / "header.csv").write_text("job_id,objective,status\n")
    assert "no evaluations" in _one_line_error(capfd, ["analyze", "summary", str(tmp_path / "header.csv")])
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    assert "not a results CSV" in _one_line_error(capfd, ["analyze", "summary", str(tmp_path / "binary.csv")])
    assert "one label per run" in _one_line_error(
        capfd, ["analyze", "compare", str(run_dirs["clean"]), "--labels", "a", "b"])
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "summary"])
    err = capfd.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "error:" in err


def test_summary_without_matplotlib(run_dirs: dict[str, Path]) -> None:
    """The real entry point, in a fresh interpreter: summaries never import matplotlib."""
    code = ("import sys; from ambs.cli import main; rc = main(sys.argv[1:]); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "analyze", "summary", str(run_dirs["faulty"]), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["by_status"] == {"ok": 10, "failed": 2}


def test_nan_safe_numbers() -> None:
    assert metrics._py(math.nan) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.fmt_seconds(0.004) == "4 ms"


BUDGETED_CONDITIONAL = """\
job_id,p:n_layers,p:l0_width,p:l1_width,p:l1_act,budget,objective,status,worker,submitted,started,finished,error
0,1,64,,,2.0,0.5,ok,1,0.0,0.1,1.0,
1,2,32,16,relu,2.0,0.6,ok,2,0.0,0.1,1.1,
2,2,32,16,relu,6.0,0.7,ok,1,1.0,1.2,2.0,
3,1,16,,,2.0,0.4,ok,2,1.1,1.2,2.1,
4,1,64,,,6.0,0.55,ok,2,2.1,2.2,3.0,
"""


def test_budget_and_inactive_hyperparameters(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """A run with a budget and a conditional hyperparameter (every NAS problem):
    empty cells of inactive hyperparameters, no warning from pandas."""
    run_dir = tmp_path / "nas"
    run_dir.mkdir()
    (run_dir / "results.csv").write_text(BUDGETED_CONDITIONAL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = analysis.load_run(run_dir)
        stopped = run.data.set_index("job_id")["stopped"]
        # 0 and 1 were promoted to 6 (rows 4 and 2); 3 was not
        assert stopped.to_dict() == {0: False, 1: False, 2: False, 3: True, 4: False}
        analysis.plot_run(run, tmp_path / "plots")
    capfd.readouterr()
    for what in ("summary", "plot"):
        assert main(["analyze", what, str(run_dir)]) == 0
    assert "Traceback" not in capfd.readouterr().err


SCALES = """
from ambs import Problem
problem = Problem(name="scales")
problem.add_hyperparameter((1.0, 2.0, "log-uniform"), "narrow_log")   # looks linear
problem.add_hyperparameter((1e-4, 10.0), "wide_linear")               # spans decades
problem.add_hyperparameter(["zeta", "alpha", "mid"], "kind")
problem.add_hyperparameter(["none", "0", "1"], "skip")
problem.set_budget(1, 8, "epochs")
def run(config, budget=None):
    return -config["narrow_log"] + {"zeta": 0.0, "alpha": 0.1, "mid": 0.2}[config["kind"]]
"""


def _figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Capture the figures the plot functions save, by file name."""
    figs: dict[str, object] = {}
    save = plots.save

    def keep(fig: object, path: str | Path) -> Path:
        figs[Path(path).name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    monkeypatch.setattr(frontplot, "save", keep)
    return figs


def _ticks(axis: object) -> list[str]:
    axis.figure.canvas.draw()
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def test_scales_and_levels_from_the_recorded_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """space.json decides log or linear axes and the order of levels; the budget
    axis is named after the budget and has plain ticks."""
    (tmp_path / "scales.py").write_text(SCALES)
    out = tmp_path / "run"
    assert main(["search", str(tmp_path / "scales.py"), "--method", "asha", "--max-evals", "20",
                 "--evaluator", "serial", "--seed", "3", "-q", "-o", str(out)]) == 0
    assert (out / "space.json").is_file()
    run = analysis.load_run(out)
    kinds = analysis.param_kinds(run)
    assert kinds["narrow_log"]["log"] and not kinds["wide_linear"]["log"]
    assert kinds["kind"]["order"] == ["zeta", "alpha", "mid"]
    assert kinds["skip"]["kind"] == "categorical"
    # without space.json: guessed from the values, as before
    (out / "space.json").unlink()
    guessed = analysis.param_kinds(analysis.load_run(out))
    assert not guessed["narrow_log"]["log"] and guessed["narrow_log"]["scale_from"] == "values"

    figs = _figures(monkeypatch)
    analysis.plot_params(run, tmp_path / "params.png")
    axes = {ax.get_xlabel().split(" ")[0].split(";")[0]: ax for ax in figs["params.png"].axes}
    assert axes["narrow_log"].get_xscale() == "log" and axes["wide_linear"].get_xscale() == "linear"
    levels = [t.split("\n")[0] for t in _ticks(axes["kind"].xaxis)]
    assert [x for x in levels if x != "(inactive)"] == [x for x in ("zeta", "alpha", "mid") if x in levels]
    analysis.plot_budget(run, tmp_path / "budget.png")
    ax = figs["budget.png"].axes[0]
    assert ax.get_xlabel() == "epochs"
    assert all("10^" not in t and "times" not in t and "×" not in t for t in _ticks(ax.xaxis))


def test_compare_default_place_and_whole_curves(run_dirs: dict[str, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture) -> None:
    """compare.png goes next to the runs (not into the current directory) unless
    --out says where; the y-axis holds every curve and band."""
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "compare", str(run_dirs["clean"]), str(run_dirs["faulty"])]) == 0
    where = run_dirs["clean"].parent / "compare.png"
    assert f"wrote {where}" in capfd.readouterr().out and where.is_file()
    assert not (tmp_path / "compare.png").exists()
    figs = _figures(monkeypatch)
    runs = analysis.load_runs([run_dirs["clean"], run_dirs["faulty"]])
    analysis.plot_compare(runs, tmp_path / "c" / "compare.png")
    lo, hi = figs["compare.png"].axes[0].get_ylim()
    for by in ("time", "evaluations"):
        v = analysis.compare_runs(runs, by=by)[["median", "q25", "q75"]].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        assert lo <= v.min() and v.max() <= hi


def test_pareto_axes_named_after_the_objectives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "mo"
    run_dir.mkdir()
    rows = ["job_id,p:x,objective,status,worker,submitted,started,finished,error,m:objectives"]
    for i, (a, b) in enumerate([(0.9, -50), (0.8, -10), (0.7, -40), (0.95, -90)]):
        rows.append(f'{i},{i},{a},ok,1,{i},{i},{i + 1},,"[{a}, {b}]"')
    (run_dir / "results.csv").write_text("\n".join(rows) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"objectives": ["accuracy", "-weights"]}))
    run = analysis.load_run(run_dir)
    front = analysis.pareto_front(run)
    assert list(front.columns[1:3]) == ["accuracy", "-weights"]
    figs = _figures(monkeypatch)
    analysis.plot_pareto(run, tmp_path / "pareto.png")
    ax = figs["pareto.png"].axes[0]
    assert ax.get_xlabel().startswith("-weights") and ax.get_ylabel().startswith("accuracy")


def test_multi_fidelity_best_is_at_the_highest_budget(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """In a run with several budgets the best and the top table rank the evaluations
    at the highest budget reached (with a budget column); --budget ranks at another."""
    run_dir = tmp_path / "mf"
    run_dir.mkdir()
    # job 3 scores highest, but at budget 2 only: a cheaper, noisier objective
    (run_dir / "results.csv").write_text(BUDGETED_CONDITIONAL.replace("3,1,16,,,2.0,0.4", "3,1,16,,,2.0,0.9"))
    (run_dir / "run.json").write_text(json.dumps({"budget": {"name": "epochs", "low": 1, "high": 6}}))
    run = analysis.load_run(run_dir)
    s = analysis.summarize(run)
    assert s["ranked_at"] == 6 and s["best"]["job_id"] == 2 and s["best"]["budget"] == 6
    assert s["best_any_budget"]["job_id"] == 3
    assert [t["job_id"] for t in s["top"]] == [2, 4] and all(t["budget"] == 6 for t in s["top"])
    top = analysis.top_k(run)
    assert list(top.columns[:4]) == ["job_id", "objective", "budget", "finished"]
    assert top["budget"].tolist() == [6.0, 6.0]
    low = analysis.summarize(run, budget=2)
    assert low["best"]["job_id"] == 3 and low["ranked_at"] == 2
    capfd.readouterr()
    assert main(["analyze", "summary", str(run_dir)]) == 0
    out = capfd.readouterr().out
    assert "best objective at 6 epochs: 0.7 (job 2" in out and "best at any budget: 0.9 (job 3" in out
    assert "top 2 at 6 epochs:" in out
    assert main(["analyze", "summary", str(run_dir), "--budget", "2"]) == 0
    assert "best objective at 2 epochs: 0.9 (job 3" in capfd.readouterr().out
    assert main(["analyze", "summary", str(run_dir), "--budget", "3"]) == 2
    assert "budgets: 2, 6" in capfd.readouterr().err


def test_fractional_budgets_are_shown_rounded(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """An ASHA rung of 200 trees at --eta 3 is 200/3: the budget column keeps it
    exactly (what run(config, budget) was given), the summary shows 66.67."""
    run_dir = tmp_path / "asha"
    run_dir.mkdir()
    rows = ["job_id,p:x,budget,objective,status,worker,submitted,started,finished,error"]
    for i, (x, budget, y) in enumerate([(1, 200 / 9, 0.5), (2, 200 / 9, 0.7), (2, 200 / 3, 0.8), (3, 200 / 9, 0.6)]):
        rows.append(f"{i},{x},{budget!r},{y},ok,1,{i},{i},{i + 1},")
    (run_dir / "results.csv").write_text("\n".join(rows) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"budget": {"name": "n_estimators", "low": 10, "high": 200}}))
    assert analysis.summarize(analysis.load_run(run_dir))["ranked_at"] == 200 / 3  # exact in --json
    capfd.readouterr()
    assert main(["analyze", "summary", str(run_dir)]) == 0
    out = capfd.readouterr().out
    assert "66.6667" not in out and "22.2222" not in out, out
    assert "best objective at 66.67 n_estimators: 0.8 (job 2" in out, out
    assert "budget 22.22: 3 evaluations" in out and "budget 66.67: 1 evaluations" in out, out
    assert "best at any budget" not in out  # the best of any budget is the one at 66.67
    table = out[out.index("top 1 at 66.67 n_estimators:"):].splitlines()
    assert table[1].split()[:3] == ["job_id", "objective", "budget"] and table[2].split()[2] == "66.67", table
    assert [analysis.space.budget_text(b) for b in (2.0, 0.5, 1 / 3, 12345.6, 1e-5)] == [
        "2", "0.5", "0.3333", "12345.6", "1e-05"]


def test_numbers_are_read_exactly(tmp_path: Path) -> None:
    """Objectives, hyperparameters and budgets come back exactly as the recorder
    wrote them (repr of a float), on pandas 2 as on 3."""
    values = [-0.0006317188049153329, 0.1 + 0.2, 1e-300 * 3.3, 123456.78901234567]
    rows = ["job_id,p:x,budget,objective,status,worker,submitted,started,finished,error"]
    rows += [f"{i},{v!r},{v!r},{v!r},ok,1,{i},{i},{i + 1},"
             for i, v in enumerate(values)]
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    d = analysis.load_run(tmp_path / "results.csv").data
    for col in ("objective", "p:x", "budget"):
        assert d[col].tolist() == values


def test_compare_by_time_reaches_each_runs_final_best(tmp_path: Path) -> None:
    """The last improvement of a run shows in the time curve even when it comes
    within the last grid step before the run's end."""
    head = "job_id,p:x,objective,status,worker,submitted,started,finished,error\n"
    short, long_ = tmp_path / "short", tmp_path / "long"
    for d, rows in ((short, [(0.5, 10.0), (0.9, 10.001)]), (long_, [(0.1, 5.0), (0.2, 200.0)])):
        d.mkdir()
        (d / "results.csv").write_text(head + "".join(
            f"{i},{i},{obj},ok,1,0,{t - 1},{t},\n" for i, (obj, t) in enumerate(rows)))
    runs = analysis.load_runs([short, long_], ["short", "long"])
    curves = analysis.compare_runs(runs, by="time")
    for label, final in (("short", 0.9), ("long", 0.2)):
        assert curves[curves["label"] == label]["median"].dropna().iloc[-1] == final
