"""Where a run begins: what a resume keeps, the warm start and initial
configurations (:mod:`ambs.warmstart`), the first job id it may hand out,
and the book of in-training reports with its stop rule (:mod:`ambs.reports`).

``extras`` is the run's dict of these settings (``run_search``'s
``stop_rule``, ``stop_final_step``, ``checkpoints``, ``warm_start``,
``initial_configs``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ambs.errors import AmbsError
from ambs.problem import LoadedProblem
from ambs.result import Evaluation
from ambs.search.base import Search

__all__ = ["begin", "check_extras", "check_method", "check_run_calls", "curve_book", "first_free_id", "inherit", "preflight", "stop_rule_of"]


def inherit(out: Path, extras: dict[str, Any], seed: int | None) -> int | None:
    """What a resume keeps of the run in ``out`` (its run.json, read once):
    without a seed, the run's seed (returned); without a stop rule in
    ``extras``, the run's rule (remade by name) and final step; without a warm
    start and initial configurations, those of the run."""
    from ambs.runinfo import recorded_settings

    was = recorded_settings(out)
    if seed is None:
        kept = was.get("seed")
        seed = kept if isinstance(kept, int) and not isinstance(kept, bool) else None
    if not extras.get("rule") and isinstance(was.get("stop_rule"), str):
        extras["rule"] = was["stop_rule"]
        if extras.get("final_step") is None and isinstance(was.get("stop_final_step"), (int, float)):
            extras["final_step"] = was["stop_final_step"]
    if not extras.get("warm_start") and extras.get("initial_configs") is None:
        extras["warm_start"] = was.get("warm_start") or None
        if isinstance(was.get("initial_configs"), str) and Path(was["initial_configs"]).exists():
            extras["initial_configs"] = was["initial_configs"]
    return seed


def begin(out: Path, resume: bool, extras: dict[str, Any], loaded: LoadedProblem, search: Search,
           quiet: bool) -> list[dict[str, Any]]:
    """Tell the search the warm-start observations (a resume: the sources its
    run.json names); the initial configurations to evaluate first."""
    from ambs.warmstart import load_initial_configs, load_warm_start

    sources, initial = extras.get("warm_start"), extras.get("initial_configs")
    if sources:  # a multi-fidelity method was refused before the run directory was made
        ws = load_warm_start(sources, loaded.problem.space, loaded.problem.objective_names or None, loaded.name)
        search.warm(ws.observations)
        if not quiet:
            print(ws.summary(sources), file=sys.stderr)
    return load_initial_configs(initial, loaded.problem.space) if initial is not None else []


def first_free_id(out: Path) -> int:
    """Above every job id the run directory used: an evaluation that was running
    when the run was killed has reports in curves.csv and a log under its id."""
    from ambs.evaluator.logs import LOGS
    from ambs.reports import CURVES, read_curves

    used = [job for job, *_ in read_curves(out / CURVES)]
    logs = out / LOGS
    if logs.is_dir():
        used += [int(p.stem) for p in logs.glob("*.log") if p.stem.isdigit()]
    return max(used, default=-1) + 1


def check_extras(multi_fidelity: bool, name: str, extras: dict[str, Any]) -> None:
    """Refuse what the method cannot begin with (a warm start under budgets)."""
    if multi_fidelity and (extras.get("warm_start") or extras.get("initial_configs") is not None):
        raise AmbsError(f"--warm-start and --initial-configs work with methods that train every "
                        f"configuration at one budget, not with {name}")


def check_run_calls(run: Any, search: Search, name: str, problem: str) -> None:
    """Refuse a ``run(config, budget)`` whose budget has no default when the
    method calls ``run(config)`` (one budget, no ``--max-budget``): every
    evaluation would fail with the same TypeError."""
    import inspect

    if search.multi_fidelity or search.train_budget is not None:
        return
    try:
        params = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):  # a callable without a signature: let it run
        return
    from ambs.reports import PARAM  # ``report`` is passed by keyword to a run that declares it

    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in params
                if p.kind in positional and p.default is inspect.Parameter.empty and p.name != PARAM]
    if len(required) > 1:
        raise AmbsError(f"{problem}'s run({', '.join(required)}) has no default for {required[1]!r}, but {name} "
                        f"calls run(config): give it one ({required[1]}=None, and train with the full budget "
                        f"then) or train every configuration at a budget with --max-budget B")


def check_method(loaded: LoadedProblem, search: Search, name: str, extras: dict[str, Any]) -> None:
    """What the method cannot begin with: its extras (:func:`check_extras`)
    and how it would call the problem's run (:func:`check_run_calls`); for a
    run, and for ``ambs submit``'s preflight alike."""
    check_extras(search.multi_fidelity, name, extras)
    check_run_calls(loaded.run, search, name, loaded.name)


def stop_rule_of(extras: dict[str, Any], search: Search, budget: Any) -> Any:
    """The stop rule ``extras`` names, made for the step a full training reaches (None: no rule)."""
    from ambs.stopping import StopRule, make_rule

    if isinstance(extras.get("rule"), StopRule) or not extras.get("rule"):
        return extras.get("rule")
    final = extras.get("final_step")
    if final is None:
        final = search.max_budget if search.multi_fidelity else search.train_budget  # type: ignore[attr-defined]
        final = final or (budget.unbudgeted if budget is not None else None)
    try:
        return make_rule(extras["rule"], final_step=final)
    except ValueError as exc:
        raise AmbsError(str(exc)) from None


def preflight(loaded: LoadedProblem, search: Search, name: str, extras: dict[str, Any]) -> None:
    """Every check of a run's beginning, writing nothing and telling the search
    nothing: ``ambs submit`` runs it so that a job does not fail in the queue."""
    from ambs.warmstart import load_initial_configs, load_warm_start

    check_method(loaded, search, name, extras)
    if extras.get("warm_start"):
        load_warm_start(extras["warm_start"], loaded.problem.space, loaded.problem.objective_names or None,
                        loaded.name)
    if extras.get("initial_configs") is not None:
        load_initial_configs(extras["initial_configs"], loaded.problem.space)
    stop_rule_of(extras, search, loaded.problem.budget)


def curve_book(out: Path, extras: dict[str, Any], search: Search, budget: Any, t0: float, resume: bool,
                previous: list[Evaluation]) -> Any:
    """Where in-training reports go (``out/curves.csv``) and the stop rule that reads them."""
    from ambs.reports import CurveBook

    book = CurveBook(out, stop_rule_of(extras, search, budget), t0, resume=resume)
    for e in previous:
        book.finished(e.job_id, e.objective if e.ok else None, e.stopped)
    return book
