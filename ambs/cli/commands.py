"""What each ``ambs`` subcommand does with its parsed arguments: checks that
need the whole command line, then one call into the package (``run_search``
for search and simulate, ``ambs.analysis``; ``ambs submit`` is in
:mod:`ambs.cli.submit_cmd`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ambs.cli.parser import DEFAULT_MAX_EVALS, METHOD_OPTIONS, build_parser
from ambs.errors import AmbsError

__all__ = ["cmd_analyze", "cmd_search", "cmd_simulate"]


def _is_multi_fidelity(args: argparse.Namespace) -> bool:
    """Whether these options make ``ambs search`` run a search that promotes
    configurations through budgets (a multi-fidelity method, or a stopper)."""
    from ambs.search import MULTI_FIDELITY

    return args.method in MULTI_FIDELITY or getattr(args, "stopper", None) is not None


def _check_budget_options(args: argparse.Namespace) -> None:
    """A stopper goes with ambs or asha (whether the problem has a budget, and
    what the budget flags mean for the method, is checked when the search is
    made, see ambs.search.factory)."""
    stopper = getattr(args, "stopper", None)
    if stopper is not None and args.method not in ("ambs", "asha"):
        raise AmbsError(f"--stopper applies to --method ambs (or asha), not {args.method}")


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``--method`` that the command line gives (every flag has a value)."""
    from ambs.search.factory import options_of

    return {k: getattr(args, k) for k in options_of(args.method) if hasattr(args, k)}


def _make_search(args: argparse.Namespace, problem: Any) -> Any:
    from ambs.search.factory import make_search

    _check_budget_options(args)
    return make_search(args.method, problem, args.seed, **_method_options(args))


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    keep = ("method", "max_evals", "surrogate", "acquisition", "kappa", "xi", "liar", "front_acquisition",
            "n_initial_points", "initial_design", "max_fit_rows", "polish_every", "y_transform", "fit", "fit_jobs", "grid_steps", "population_size",
            "sample_size", "min_budget", "max_budget", "eta", "stopper", "stop_rule", "stop_final_step",
            "no_checkpoints", "warm_start", "initial_configs", "evaluator", "workers",
            "threads_per_worker", "gpus", "gpus_per_node", "share_gpus", "prefetch", "assign", "eval_timeout", "eval_memory",
            "walltime", "grace")
    if args.evaluator == "balsam":
        keep += ("balsam_nodes", "balsam_ranks_per_node", "balsam_gpus_per_rank",
                 "balsam_node_packing", "balsam_workflow")
    return {k: getattr(args, k) for k in keep}


def _recorded_max_evals(run_dir: Path) -> int | None:
    """``--max-evals`` of the run in ``run_dir``, from its run.json (None if unreadable)."""
    from ambs.runinfo import recorded_settings

    value = recorded_settings(run_dir).get("max_evals")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _option_words(name: str, value: Any) -> list[str]:
    """An option as command-line words: a flag alone when it is a switch."""
    flag = f"--{name.replace('_', '-')}"
    if isinstance(value, list):
        return [flag, *map(str, value)]
    return [flag] if value is True else [flag, str(value)]


def _changed_option_words(args: argparse.Namespace, names: Any, skip: tuple[str, ...]) -> list[str]:
    """Command-line words of the options in ``names`` (but ``skip``) whose values
    differ from ``ambs search``'s defaults."""
    defaults = build_parser().parse_args(["search", "x"])
    words: list[str] = []
    for name in names:
        value = getattr(args, name)
        if name not in skip and value is not None and value != getattr(defaults, name):
            words += _option_words(name, value)
    return words


def _resume_command(args: argparse.Namespace, out: Path) -> str:
    """The ``ambs search`` line that continues this run: the problem, and the
    method options that differ from the defaults (a resume must use the same
    method; its --max-evals comes from run.json)."""
    import shlex

    words = ["ambs", "search", args.problem, "--method", args.method,
             *_changed_option_words(args, METHOD_OPTIONS, skip=("method", "max_evals", "seed"))]
    if args.evaluator != "process":
        words += ["--evaluator", args.evaluator]
    if getattr(args, "gpus", None):  # the same workers on the same GPUs
        words += ["--gpus", args.gpus] + (["--share-gpus"] if args.share_gpus else [])
    words += ["--resume", "--output", str(out)]
    return " ".join(shlex.quote(w) for w in words)


def cmd_search(args: argparse.Namespace) -> int:

    if args.evaluator == "serial" and args.workers not in (None, 1):
        raise AmbsError("the serial evaluator runs one evaluation at a time; "
                        "drop --workers or use --evaluator process")
    if args.evaluator == "serial" and args.eval_timeout is not None:
        raise AmbsError("--eval-timeout needs an evaluator that can stop a running evaluation "
                        "(use --evaluator process)")
    if args.evaluator == "serial" and args.eval_memory is not None:
        raise AmbsError("--eval-memory needs an evaluator that runs evaluations in their own "
                        "processes (use --evaluator process)")
    if args.evaluator == "balsam" and args.eval_memory is not None:
        raise AmbsError("--eval-memory is not applied to Balsam jobs; set memory limits in the "
                        "Balsam site's job settings, or use --evaluator process or mpi")
    balsam_defaults = {"balsam_nodes": 1, "balsam_ranks_per_node": 1, "balsam_gpus_per_rank": 0,
                       "balsam_node_packing": 1, "balsam_workflow": None}
    given = [k for k, v in balsam_defaults.items() if getattr(args, k) != v]
    if given and args.evaluator != "balsam":
        raise AmbsError(f"--{given[0].replace('_', '-')} applies to --evaluator balsam")
    if args.resume and not args.output:
        raise AmbsError("--resume needs --output DIR, the run directory to continue")
    if args.max_evals is None:
        recorded = _recorded_max_evals(Path(args.output)) if args.resume else None
        args.max_evals = recorded or DEFAULT_MAX_EVALS
    if args.gpus_per_node and args.evaluator != "mpi":
        raise AmbsError("--gpus-per-node applies to --evaluator mpi (on one machine: --evaluator process --gpus N)")
    if args.gpus is not None and args.evaluator != "process":
        hint = "; under mpi: --gpus-per-node N" if args.evaluator == "mpi" else ""
        raise AmbsError(f"--gpus applies to --evaluator process{hint}")
    if args.prefetch is not None:
        from ambs.evaluator.prefetch import parse_prefetch

        if args.evaluator != "mpi":
            raise AmbsError("--prefetch applies to --evaluator mpi")
        parse_prefetch(args.prefetch)  # a one-line error before any rank starts
    if args.share_gpus and args.gpus is None and not args.gpus_per_node:
        raise AmbsError("--share-gpus goes with --gpus (process) or --gpus-per-node (mpi)")
    return _search(args)


def _evaluator_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``--evaluator`` that the command line gives and it takes."""
    from ambs.evaluator import evaluator_options

    given = {"eval_timeout": args.eval_timeout, "eval_memory": args.eval_memory,
             "threads_per_worker": args.threads_per_worker, "gpus": args.gpus, "gpus_per_node": args.gpus_per_node,
             "share_gpus": args.share_gpus or None, "prefetch": args.prefetch}
    if args.evaluator == "balsam":
        given.update(_balsam_options(args))
    takes = set(evaluator_options(args.evaluator))
    out = {k: v for k, v in given.items() if k in takes and v is not None}
    if args.no_logs and "log_dir" in takes:
        out["log_dir"] = None  # evaluations' output stays on the terminal
    return out


def _search(args: argparse.Namespace) -> int:
    """``ambs search`` through :func:`ambs.runner.run_search`."""
    from ambs.runner import run_search

    _check_budget_options(args)
    out = Path(args.output) if args.output else None
    result = run_search(
        args.problem, method=args.method, evaluator=args.evaluator, max_evals=args.max_evals, output=out,
        resume=args.resume, walltime=args.walltime, grace=args.grace, workers=args.workers, seed=args.seed,
        fit=args.fit, assign=args.assign, quiet=args.quiet, stop_rule=args.stop_rule,
        stop_final_step=args.stop_final_step, checkpoints=not args.no_checkpoints,
        warm_start=args.warm_start, initial_configs=args.initial_configs,
        evaluator_options=_evaluator_options(args), settings=_settings(args), **_method_options(args))
    if result is None or result.evaluator is None:  # an MPI worker rank, or nothing left to do
        return 0
    out = result.directory
    _report(result.summary, out, args.max_evals, _resume_command(args, out), result.search)
    return 0


def _balsam_options(args: argparse.Namespace) -> dict[str, Any]:
    """The balsam evaluator's settings (its workflow defaults to ambs-<run directory name>)."""
    return {
        "balsam_nodes": args.balsam_nodes, "balsam_ranks_per_node": args.balsam_ranks_per_node,
        "balsam_gpus_per_rank": args.balsam_gpus_per_rank,
        "balsam_node_packing": args.balsam_node_packing, "balsam_workflow": args.balsam_workflow,
    }


def _objective_heads(objectives: Any) -> str:
    """``accuracy (max), latency_ms (min)``: the declared objectives as the summaries name them."""
    return ", ".join(f"{o.name} ({o.direction})" for o in objectives)


def _report(summary: Any, out: Path, max_evals: int, resume: str, search: Any = None) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.by_status.items())) or "none"
    print(f"evaluations: {summary.total} in {out / 'results.csv'} ({counts}); "
          f"{summary.evaluations} in this run, {summary.elapsed:.1f} s")
    front = search.front() if search is not None and search.objectives else []
    if front:
        heads = _objective_heads(search.objectives)
        from ambs.analysis.space import budget_phrase

        b = search.problem.budget
        at = budget_phrase(b.name if b is not None else "budget", search.front_budget())
        print(f"Pareto front{at}: {len(front)} configuration(s) of {heads}; all of them: ambs analyze pareto {out}")
        first = search.objectives[0]
        shown = sorted(front, key=lambda f: -first.sign * f[1][0])[:: max(1, len(front) // 5)][:5]
        for _, values in shown:
            print("  " + ", ".join(f"{o.name}={v:.6g}" for o, v in zip(search.objectives, values)))
        if len(front) > len(shown):
            print(f"  ... {len(shown)} of {len(front)} shown, spread along the front")
    elif summary.best_config is not None:
        print(f"best objective: {summary.best_objective:.10g}")
        print("best configuration: " + ", ".join(f"{k}={v!r}" for k, v in summary.best_config.items()))
    else:
        print("best objective: none (no evaluation succeeded)")
    if summary.stop_reason not in ("max-evals", "space exhausted") and summary.total < max_evals:
        extra = f"; {summary.cancelled} running evaluation(s) cancelled" if summary.cancelled else ""
        print(f"stopped by {summary.stop_reason}{extra}; continue with: {resume}")


def cmd_simulate(args: argparse.Namespace) -> int:
    """``ambs simulate``: utilization and master cost of a search at a given scale,
    through :func:`ambs.runner.run_search` with the simulated evaluator."""
    import json
    import tempfile

    from ambs.runner import COMPLETE, run_search
    from ambs.simulate import (
        MasterSpeed,
        RssSampler,
        parse_duration,
        parse_master_cost,
        parse_message_cost,
        report,
    )

    duration = parse_duration(args.duration)
    master_cost = parse_master_cost(args.master_cost)
    message_cost = parse_message_cost(args.message_cost)
    if args.max_evals is None:
        args.max_evals = DEFAULT_MAX_EVALS
    _check_budget_options(args)
    if args.live_fits and (args.fit not in ("auto", "process") or master_cost is not None):
        raise AmbsError("--live-fits runs and measures the fits in a process of their own: it goes with "
                        "--fit auto or process and --master-cost measured")
    rss = RssSampler(args.max_evals)
    with tempfile.TemporaryDirectory(prefix="ambs-simulate-") as tmp:
        result = run_search(
            args.problem, method=args.method, evaluator="simulated", max_evals=args.max_evals,
            output=Path(args.output) if args.output else Path(tmp) / "run", walltime=args.walltime,
            workers=args.workers, seed=args.seed, fit=args.fit, quiet=True, progress=not (args.quiet or args.json),
            evaluator_options={"duration": duration, "master_cost": master_cost, "message_cost": message_cost,
                               "live_fits": args.live_fits, "idle_sleep": args.idle_sleep},
            settings=_settings_simulate(args), on_result=rss.on_result, stop_rule=args.stop_rule,
            stop_final_step=args.stop_final_step, checkpoints=not args.no_checkpoints, **_method_options(args))
    assert result is not None and result.evaluator is not None
    out = report(result.evaluator, result.fitter, result.search, result.summary, rss)  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(out.as_dict()))
        return 0
    reason = result.summary.stop_reason
    if reason not in COMPLETE:  # a signal, or --walltime
        print(f"stopped by {reason} after {result.summary.total} of {args.max_evals} evaluations; "
              "what follows is up to then")
    print(f"simulated {out.evaluations} evaluations on {out.workers} workers ({out.duration} s each)")
    print(f"virtual time: {out.makespan:.1f} s; worker utilization: {out.utilization:.1%} "
          f"({out.utilization_total:.1%} including the final drain)")
    how = ""
    if isinstance(master_cost, MasterSpeed):
        how = f" ({master_cost.scale:g} x measured)"
    elif master_cost is not None:
        how = " (fixed)"
    print(f"master: {out.master_seconds:.2f} s of compute{how}, "
          f"{out.master_seconds_per_result * 1e3:.2f} ms per result; "
          f"{out.fits} fits, {out.fit_seconds:.2f} s fitting")
    per = ", ".join(f"{k} {v / max(out.evaluations, 1) * 1e3:.3f}" for k, v in out.master_breakdown.items())
    print(f"master ms per result by phase: {per}")
    if out.rss_peak_mb:
        print(f"master memory: {out.rss_mb[max(out.rss_mb)]:.0f} MB resident at the end, "
              f"{out.rss_peak_mb:.0f} MB at its peak")
    search = result.search
    front = search.front() if search is not None and getattr(search, "objectives", None) else []
    if front:  # several objectives: no one best value
        print(f"Pareto front: {len(front)} configuration(s) of {_objective_heads(search.objectives)}")
    else:
        print(f"best objective: {out.best_objective:.10g}")
    return 0


def _settings_simulate(args: argparse.Namespace) -> dict[str, Any]:
    d = {k: getattr(args, k) for k in METHOD_OPTIONS if hasattr(args, k)}
    d.update(workers=args.workers, duration=args.duration, master_cost=args.master_cost,
             message_cost=args.message_cost, simulated=True, live_fits=args.live_fits, idle_sleep=args.idle_sleep)
    return d


def _common_parent(run_dirs: Any) -> Path:
    """The deepest directory that holds every run directory (compare.png's default place)."""
    return Path(os.path.commonpath([str(Path(d).resolve().parent) for d in run_dirs]))


def cmd_analyze(args: argparse.Namespace) -> int:
    """``ambs analyze summary|plot|compare|report``: calls ambs.analysis."""
    import json

    from ambs import analysis

    if args.analyze_command == "compare":
        runs = analysis.load_runs(args.runs, args.labels)
        path = analysis.plot_compare(runs, Path(args.out or _common_parent(r.directory for r in runs))
                                     / "compare.png")
        print(analysis.format_compare(analysis.compare_table(runs)))
        print(f"wrote {path}")
        return 0
    run = analysis.load_run(args.run)
    if args.analyze_command == "summary":
        summary = analysis.summarize(run, k=args.top, budget=args.budget)
        print(json.dumps(summary, indent=2) if args.json else analysis.format_summary(summary, run))
    elif args.analyze_command == "pareto":
        b = analysis.ranking_budget(run, args.budget)
        front = analysis.pareto_front(run, args.objectives, configs=True, budget=b)
        print(analysis.format_front(front[front["pareto"]].drop(columns="pareto")))
        at = analysis.at_budget(run.settings, b) + (" (--budget for another)" if b is not None else "")
        print(f"{int(front['pareto'].sum())} of {len(front)} successful evaluations{at} on the front")
        trace, ref = analysis.hypervolume_trace(run, args.reference, args.objectives, b)
        if len(trace):
            print(f"hypervolume {trace['hypervolume'].iloc[-1]:.6g} up to the reference point "
                  f"({', '.join(f'{v:.6g}' for v in ref)})")
        out = Path(args.out) if args.out else run.directory / "pareto.png"
        print(f"wrote {analysis.plot_pareto(run, out, args.objectives, b)}")
        print(f"wrote {analysis.plot_hypervolume(run, out.with_name('hypervolume.png'), ref, args.objectives, b)}")
    elif args.analyze_command == "plot":
        files, notes = analysis.plot_run(run, args.out if args.out else run.directory / "plots")
        for note in notes:
            print(f"ambs: note: {note}", file=sys.stderr)
        for f in files:
            print(f"wrote {f}")
    else:
        print(f"wrote {analysis.write_report(run, args.out)}")
    return 0


