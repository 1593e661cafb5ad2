"""Command line: ``ambs search PROBLEM ...``. Parses, checks, and calls the package.

Every user mistake ends in one line ``ambs: error: ...`` and exit code 2;
a run that had to stop because results could not be written exits 1.
"""

from __future__ import annotations

import argparse
import faulthandler
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ambs import __version__
from ambs.errors import AmbsError, RecorderError

__all__ = ["main"]

CHECKPOINT_VAR = "AMBS_CHECKPOINT_DIR"  # as ambs.nas.morph.CHECKPOINT_VAR, without importing it


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return v


def _eta(text: str) -> int:
    v = _positive_int(text)
    if v < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {v}")
    return v


def _seconds(text: str) -> float:
    """Seconds as a number or [[D-]HH:]MM:SS, as schedulers write walltimes."""
    t = text.strip()
    try:
        if ":" in t:
            days = 0
            if "-" in t:
                d, t = t.split("-", 1)
                days = int(d)
            parts = [float(p) for p in t.split(":")]
            if len(parts) > 3:
                raise ValueError
            secs = 0.0
            for p in parts:
                secs = secs * 60 + p
            v = days * 86400 + secs
        else:
            v = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds or HH:MM:SS, got {text!r}"
        ) from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return v


# Options of the search itself, shared by `search` and `submit` (which passes
# them on to the `ambs search` of the job script).
DEFAULT_MAX_EVALS = 100
METHOD_OPTIONS = ("method", "max_evals", "seed", "surrogate", "acquisition", "kappa", "xi", "liar",
                  "n_initial_points", "initial_design", "fit", "fit_jobs", "grid_steps", "population_size",
                  "sample_size", "eval_timeout", "eval_memory", "min_budget", "max_budget", "eta", "stopper")


def _add_method_options(g: Any) -> None:
    from ambs.search import ALL_METHODS  # the names only: a class loads when it is used

    g.add_argument("--method", default="ambs", choices=list(ALL_METHODS),
                   help="search method (default: ambs); sha, hyperband and asha are multi-fidelity "
                        "and need a problem that declares a budget")
    g.add_argument("--max-evals", type=_positive_int, default=None,
                   help=f"evaluations of the whole run, resumed ones included (default: {DEFAULT_MAX_EVALS}; "
                        "with --resume, the run's own)")
    g.add_argument("--seed", type=_nonneg_int, default=None, help="random seed (default: random)")
    g.add_argument("--surrogate", default="et", choices=["et", "rf"],
                   help="ambs: extremely randomized trees or a bootstrap random forest (default: et)")
    g.add_argument("--acquisition", default="lcb", choices=["lcb", "ucb", "ei", "pi"],
                   help="ambs: acquisition function (default: lcb)")
    g.add_argument("--kappa", type=_nonneg_float, default=1.0,
                   help="ambs: LCB exploration weight (default: 1.0)")
    g.add_argument("--xi", type=_nonneg_float, default=0.01, help="ambs: EI/PI margin (default: 0.01)")
    g.add_argument("--liar", default="believer", choices=["believer", "cl_max", "cl_mean", "cl_min"],
                   help="ambs: the value assumed for running evaluations: the surrogate's own prediction "
                        "(believer, the default) or a constant, the worst, mean or best result (cl_max, "
                        "cl_mean, cl_min)")
    g.add_argument("--n-initial-points", type=_positive_int, default=10,
                   help="ambs: size of the initial design (default: 10)")
    g.add_argument("--initial-design", default="lhs", choices=["lhs", "random"],
                   help="ambs: Latin hypercube or random initial design (default: lhs)")
    g.add_argument("--fit", default="background", choices=["background", "sync"],
                   help="ambs: fit the surrogate in a background thread while workers get "
                        "configurations from the previous fit (default), or before each "
                        "proposal (slower; proposals then depend only on the seed and results)")
    g.add_argument("--fit-jobs", type=_positive_int, default=None,
                   help="ambs: threads for fitting (default: the master's cores, at most 4)")
    g.add_argument("--grid-steps", type=_positive_int, default=5,
                   help="grid: points per numerical axis (default: 5)")
    g.add_argument("--population-size", type=_positive_int, default=20,
                   help="evolution, lemonade: P, the latest results that form the population (default: 20)")
    g.add_argument("--sample-size", type=_positive_int, default=5,
                   help="evolution, lemonade: S, the tournament size (default: 5)")
    g.add_argument("--min-budget", type=_positive_float, default=None,
                   help="multi-fidelity: smallest budget (default: the problem's declared low)")
    g.add_argument("--max-budget", type=_positive_float, default=None,
                   help="multi-fidelity: full budget (default: the problem's declared high); other "
                        "methods, on a problem with a budget: the budget every configuration trains "
                        "with (default: run(config)'s own), e.g. 1 epoch for a quick trial")
    g.add_argument("--eta", type=_eta, default=3,
                   help="multi-fidelity: keep the best 1/eta of a rung, at eta times the budget (default: 3)")
    g.add_argument("--stopper", default=None, choices=["sha", "median"],
                   help="ambs, asha: early stopping; new configurations start at the smallest budget and "
                        "asynchronous successive halving (sha) or the median rule promotes them")
    g.add_argument("--eval-timeout", type=_seconds, default=None,
                   help="kill an evaluation after this many seconds (process and mpi evaluators)")
    g.add_argument("--eval-memory", type=_positive_int, default=None, metavar="MB",
                   help="memory (address space, RLIMIT_AS) an evaluation may allocate on top of the "
                        "loaded problem; beyond it, it fails (process and mpi evaluators)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ambs", description="Asynchronous model-based hyperparameter search.")
    parser.add_argument("--version", action="version", version=f"ambs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("search", help="run a search on a problem module",
                       description="Run a search on a problem module; results stream to results.csv.")
    s.add_argument("problem", metavar="PROBLEM",
                   help="problem module: dotted name (problems.ackley) or path (problems/ackley.py)")
    _add_method_options(s.add_argument_group("search"))
    e = s.add_argument_group("evaluation")
    e.add_argument("--evaluator", default="process", choices=["serial", "process", "mpi", "balsam"],
                   help="where evaluations run (default: process, a local pool; "
                        "mpi: rank 0 searches, the other ranks evaluate; "
                        "balsam: one job per evaluation in the Balsam database of $BALSAM_DB_PATH)")
    e.add_argument("--workers", type=_positive_int, default=None,
                   help="parallel evaluations (default: the number of cores)")
    e.add_argument("--threads-per-worker", type=_positive_int, default=None,
                   help="cap on each worker's math-library threads")
    e.add_argument("--gpus-per-node", type=_positive_int, default=None,
                   help="mpi: one GPU per worker, CUDA_VISIBLE_DEVICES from its node-local index")
    e.add_argument("--assign", default="none", choices=["none", "shadho"],
                   help="shadho: when workers differ (mpi ranks with and without a GPU, or "
                        "$AMBS_WORKER_KIND on a rank), send the configurations of highest complexity "
                        "and priority to the most capable workers (SHADHO); none: any free worker "
                        "(default: none)")
    bl = s.add_argument_group("balsam (with --evaluator balsam; --workers: jobs in flight)")
    bl.add_argument("--balsam-nodes", type=_positive_int, default=1, help="nodes per evaluation (default: 1)")
    bl.add_argument("--balsam-ranks-per-node", type=_positive_int, default=1,
                    help="MPI ranks per node of an evaluation; rank 0 reports (default: 1)")
    bl.add_argument("--balsam-gpus-per-rank", type=_nonneg_int, default=0,
                    help="GPUs per rank, from its index on the node (default: 0, none set)")
    bl.add_argument("--balsam-node-packing", type=_positive_int, default=1,
                    help="evaluations per node in Balsam's serial job mode (default: 1)")
    bl.add_argument("--balsam-workflow", default=None,
                    help="Balsam workflow of the jobs (default: ambs-<run directory name>)")
    r = s.add_argument_group("run")
    r.add_argument("--output", "-o", default=None,
                   help="run directory (default: runs/<problem>-<method>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --output")
    r.add_argument("--walltime", type=_seconds, default=None,
                   help="stop handing out work after this long (seconds or HH:MM:SS)")
    r.add_argument("--grace", type=_nonneg_float, default=30.0,
                   help="seconds running evaluations may finish after a stop (default: 30)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress display")

    b = sub.add_parser("submit", help="render a Slurm or PBS job script and submit it",
                       description="Render a job script that runs one MPI search over the "
                                   "allocation, and submit it (with --chain follow-ups).")
    b.add_argument("problem", metavar="PROBLEM", help="problem module, as for `ambs search`")
    j = b.add_argument_group("job")
    j.add_argument("--scheduler", required=True, choices=["slurm", "pbs"])
    j.add_argument("--nodes", type=_positive_int, default=1, help="nodes (default: 1)")
    j.add_argument("--ranks-per-node", type=_positive_int, required=True,
                   help="MPI ranks per node; rank 0 of the job is the master")
    j.add_argument("--gpus-per-node", type=_positive_int, default=None,
                   help="GPU nodes: one rank per GPU, each worker sees its own GPU")
    j.add_argument("--threads-per-worker", type=_positive_int, default=None,
                   help="CPU/KNL nodes: OpenMP and torch threads of each worker")
    j.add_argument("--assign", default="none", choices=["none", "shadho"],
                   help="as for `ambs search`: send the most complex configurations to GPU ranks")
    j.add_argument("--walltime", required=True, help="job walltime, HH:MM:SS")
    j.add_argument("--account", default=None, help="account (project) to charge")
    j.add_argument("--queue", default=None, help="partition (Slurm) or queue (PBS)")
    j.add_argument("--launcher", default=None, choices=["srun", "mpiexec"],
                   help="how ranks start (default: mpiexec, which reads the allocation; "
                        "srun --mpi=pmi2 on Slurm sites whose PMI2 suits their MPI)")
    j.add_argument("--warning", type=_positive_int, default=120,
                   help="seconds before the walltime at which the search stops (default: 120)")
    j.add_argument("--chain", type=_nonneg_int, default=0,
                   help="follow-up jobs that resume the run after each job ends (default: 0)")
    j.add_argument("--job-name", default=None, help="job name (default: ambs-<problem>)")
    j.add_argument("--output", "-o", default=None,
                   help="run directory (default: runs/<problem>-<method>-<time>)")
    j.add_argument("--dry-run", action="store_true", help="print the job script, submit nothing")
    _add_method_options(b.add_argument_group("search"))
    _add_analyze_parser(sub)
    _add_simulate_parser(sub)
    return parser


def _is_multi_fidelity(args: argparse.Namespace) -> bool:
    from ambs.search import MULTI_FIDELITY

    return args.method in MULTI_FIDELITY or getattr(args, "stopper", None) is not None


def _check_budget_options(args: argparse.Namespace, problem: Any) -> None:
    """Budget flags go with multi-fidelity methods, which need a problem with a budget."""
    stopper = getattr(args, "stopper", None)
    if stopper is not None and args.method not in ("ambs", "asha"):
        raise AmbsError(f"--stopper applies to --method ambs (or asha), not {args.method}")
    if not _is_multi_fidelity(args):
        if getattr(args, "min_budget", None) is not None:
            raise AmbsError(f"--min-budget applies to multi-fidelity methods (sha, hyperband, asha) and "
                            f"--stopper; --method {args.method} trains every configuration with one "
                            "budget (--max-budget)")
        if getattr(args, "max_budget", None) is not None and problem.budget is None:
            raise AmbsError(f"--max-budget needs a problem that declares a budget (problem.set_budget(low, "
                            f"high)); {problem.name or 'this problem'} declares none")
        return
    what = f"--stopper {stopper}" if args.method not in ("sha", "hyperband", "asha") else f"--method {args.method}"
    if problem.budget is None:
        raise AmbsError(f"{what} needs a problem that declares a budget (problem.set_budget(low, high)); "
                        f"{problem.name or 'this problem'} declares none")
    lo = args.min_budget if args.min_budget is not None else problem.budget.low
    hi = args.max_budget if args.max_budget is not None else problem.budget.high
    if not lo <= hi:
        raise AmbsError(f"--min-budget {lo:g} is above --max-budget {hi:g}")


def _make_search(args: argparse.Namespace, problem: Any) -> Any:
    """The search ``ambs search`` runs (the same for ``simulate``), from the
    command line's options; a ValueError or AmbsError when they do not fit."""
    _check_budget_options(args, problem)
    search = _new_search(args, problem)
    if not getattr(search, "multi_fidelity", False):
        search.train_budget = getattr(args, "max_budget", None)
    return search


def _new_search(args: argparse.Namespace, problem: Any) -> Any:
    from ambs.search import AMBS, METHODS, MULTI_FIDELITY, GridSearch

    mf = {"min_budget": getattr(args, "min_budget", None), "max_budget": getattr(args, "max_budget", None),
          "eta": getattr(args, "eta", 3)}
    stopper = getattr(args, "stopper", None)
    if args.method == "ambs":
        ambs = AMBS(
            problem, random_state=args.seed, surrogate=args.surrogate,
            acquisition=args.acquisition, kappa=args.kappa, xi=args.xi, liar=args.liar,
            n_initial_points=args.n_initial_points, initial_design=args.initial_design,
            n_jobs=args.fit_jobs or _fit_cores(),
        )
        if stopper is None:
            return ambs
        return MULTI_FIDELITY["asha"](problem, random_state=ambs.random_state, rule=stopper, sampler=ambs, **mf)
    if args.method == "asha":
        return MULTI_FIDELITY["asha"](problem, random_state=args.seed, rule=stopper or "sha", **mf)
    if args.method in MULTI_FIDELITY:
        return MULTI_FIDELITY[args.method](problem, random_state=args.seed, **mf)
    if args.method == "grid":
        return GridSearch(problem, random_state=args.seed, steps=max(args.grid_steps, 2))
    if args.method in ("evolution", "lemonade"):
        return METHODS[args.method](problem, random_state=args.seed, population_size=args.population_size,
                                    sample_size=min(args.sample_size, args.population_size))
    return METHODS[args.method](problem, random_state=args.seed)


def _fit_cores() -> int:
    """Cores for fitting: those this process may run on (the launcher's binding), at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def _settings(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    keep = ("method", "max_evals", "surrogate", "acquisition", "kappa", "xi", "liar",
            "n_initial_points", "initial_design", "fit", "fit_jobs", "grid_steps", "population_size",
            "sample_size", "min_budget", "max_budget", "eta", "stopper", "evaluator", "workers",
            "threads_per_worker", "gpus_per_node", "assign", "eval_timeout", "eval_memory", "walltime", "grace")
    if args.evaluator == "balsam":
        keep += ("balsam_nodes", "balsam_ranks_per_node", "balsam_gpus_per_rank",
                 "balsam_node_packing", "balsam_workflow")
    d = {k: getattr(args, k) for k in keep}
    d["seed"] = seed
    return d


def _resolved_budgets(settings: dict[str, Any], search: Any) -> dict[str, Any]:
    """The budgets a multi-fidelity search uses (the problem's when no flag gave them), for run.json."""
    if getattr(search, "multi_fidelity", False):
        settings.update(min_budget=search.min_budget, max_budget=search.max_budget, eta=search.eta)
    return settings


def _described(problem: Any) -> dict[str, Any]:
    """What a run directory records about its problem for the analysis: the
    budget's name and range, the objectives' names, the space (space.json)."""
    return {"budget": problem.budget.as_dict() if problem.budget is not None else None,
            "objectives": list(problem.objective_names) or None, "space": problem.space}


def _recorded_max_evals(run_dir: Path) -> int | None:
    """``--max-evals`` of the run in ``run_dir``, from its run.json (None if unreadable)."""
    import json

    try:
        from ambs.recorder import effective_settings

        value = effective_settings(json.loads((run_dir / "run.json").read_text()))["max_evals"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _resume_command(args: argparse.Namespace, out: Path) -> str:
    """The ``ambs search`` line that continues this run: the problem, and the
    method options that differ from the defaults (a resume must use the same
    method; its --max-evals comes from run.json)."""
    import shlex

    defaults = build_parser().parse_args(["search", "x"])
    words = ["ambs", "search", args.problem, "--method", args.method]
    for name in METHOD_OPTIONS:
        value = getattr(args, name)
        if name not in ("method", "max_evals", "seed") and value is not None and value != getattr(defaults, name):
            words += [f"--{name.replace('_', '-')}", str(value)]
    if args.evaluator != "process":
        words += ["--evaluator", args.evaluator]
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
        raise AmbsError("--gpus-per-node applies to --evaluator mpi")
    if args.evaluator == "process":
        _check_worker_count(args)
    if args.evaluator != "mpi":
        return _search(args, None)
    from ambs.evaluator import mpi as ambs_mpi

    comm, placement = ambs_mpi.world()
    if comm.Get_rank() != 0:
        return ambs_mpi.serve(comm, 0, placement)
    if comm.Get_size() > 1 and args.workers not in (None, comm.Get_size() - 1):
        ambs_mpi.Cluster(comm, list(range(1, comm.Get_size()))).stop()
        raise AmbsError(f"--workers {args.workers} does not match the {comm.Get_size() - 1} "
                        "worker ranks of mpiexec; drop --workers")
    spawn = None
    if comm.Get_size() == 1 and args.workers:  # spawned ranks are processes of this machine
        _check_worker_count(args)
        spawn = min(args.workers, args.max_evals)
    cluster = ambs_mpi.Cluster.connect(comm, spawn=spawn)
    try:
        return _search(args, cluster)
    finally:
        cluster.stop()


def _check_worker_count(args: argparse.Namespace) -> None:
    """Refuse, before anything is written, more worker processes than the machine takes."""
    from ambs.evaluator.process import worker_limit

    wanted = min(args.workers or os.cpu_count() or 1, args.max_evals)
    limit, why = worker_limit()
    if wanted > limit:
        raise AmbsError(f"--workers {wanted} is more worker processes than this machine takes: "
                        f"at most {limit} ({why})")


def _search(args: argparse.Namespace, cluster: Any) -> int:
    """The master's side of a search, whatever the evaluator."""
    from ambs.driver import Driver, Progress, StopRules
    from ambs.errors import RunDirError
    from ambs.evaluator import make_evaluator
    from ambs.fitter import BackgroundFitter, can_fit_in_background
    from ambs.problem import load_problem
    from ambs.recorder import Recorder, RunInfo, columns_for, read_results

    loaded = load_problem(args.problem)
    try:
        search = _make_search(args, loaded.problem)
    except ValueError as exc:
        raise AmbsError(str(exc)) from None
    out = Path(args.output) if args.output else Path("runs") / (
        f"{loaded.name}-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}")
    metadata = list(loaded.problem.metadata)
    if args.evaluator == "balsam" and "balsam_job_id" not in metadata:
        metadata.append("balsam_job_id")  # the Balsam job of each evaluation
    columns = columns_for(loaded.problem.hyperparameter_names, metadata,
                          budget=loaded.problem.budget is not None or _is_multi_fidelity(args))
    info = RunInfo(
        problem=args.problem, problem_name=loaded.name, fingerprint=loaded.problem.fingerprint(),
        method=args.method, columns=columns, settings=_resolved_budgets(_settings(args, search.random_state), search),
        **_described(loaded.problem),
    )
    recorder = Recorder(out, info, resume=args.resume)
    try:
        previous = read_results(recorder.path, search.space) if args.resume else []
    except RunDirError:
        recorder.close()
        raise
    except Exception as exc:  # a CSV from another version or edited by hand
        recorder.close()
        raise RunDirError(f"cannot resume {out}: {exc}") from None
    last = max((e.finished for e in previous if math.isfinite(e.finished)), default=0.0)
    t0 = time.time() - last
    if len(previous) >= args.max_evals:
        recorder.close()
        print(f"ambs: {out} already holds {len(previous)} evaluations (--max-evals {args.max_evals}); "
              "nothing to do", file=sys.stderr)
        return 0
    if cluster is not None:
        workers = len(cluster.ranks)
    else:
        workers = 1 if args.evaluator == "serial" else (args.workers or os.cpu_count() or 1)
        # No more workers than there are evaluations left to run.
        workers = max(1, min(workers, args.max_evals - len(previous)))
    if args.method == "morphism" and not os.environ.get(CHECKPOINT_VAR):
        # Workers started from here inherit it: NAS problems store trained weights
        # there and start each child from its parent's (see ambs.nas.morph).
        os.environ[CHECKPOINT_VAR] = str((out / "checkpoints").resolve())
    if not args.quiet:
        what = f"resuming {out} ({len(previous)} done)" if previous else f"results in {out}/results.csv"
        print(f"ambs: {args.method} search of {loaded.name} on {workers} {args.evaluator} "
              f"worker(s), {args.max_evals} evaluations; {what}", file=sys.stderr)
    try:
        evaluator = make_evaluator(
            args.evaluator, args.problem, t0, eval_timeout=args.eval_timeout,
            eval_memory=args.eval_memory, workers=workers, threads_per_worker=args.threads_per_worker,
            cluster=cluster, gpus_per_node=args.gpus_per_node, **_balsam_options(args, out),
        )
    except BaseException as exc:
        recorder.discard()  # a new run that could not start leaves no run directory behind
        if isinstance(exc, OSError):  # fork or spawn refused: EAGAIN, ENOMEM, EMFILE
            raise AmbsError(f"cannot start {workers} {args.evaluator} worker(s): "
                            f"{exc.strerror or exc}") from None
        raise
    rules = StopRules(max_evals=args.max_evals, walltime=args.walltime, grace=args.grace)
    progress = None if args.quiet else Progress(args.max_evals)
    fitter = None
    if args.fit == "background" and can_fit_in_background(search):
        fitter = BackgroundFitter(search)
    assigner = None
    if args.assign == "shadho":
        from ambs.nas.hardware import ShadhoAssigner

        full = getattr(search, "max_budget", None) or search.train_budget or (
            loaded.problem.budget.high if loaded.problem.budget is not None else None)
        assigner = ShadhoAssigner(search.space, full_budget=full)
    try:
        with evaluator:
            summary = Driver(search, evaluator, recorder, rules, t0, previous=previous,
                             progress=progress, fitter=fitter, assigner=assigner).run()
    finally:
        if fitter is not None:
            fitter.close()
        recorder.close()
    _report(summary, out, args.max_evals, _resume_command(args, out))
    return 0


def _balsam_options(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The balsam evaluator's settings (none for the other evaluators)."""
    if args.evaluator != "balsam":
        return {}
    return {
        "balsam_nodes": args.balsam_nodes, "balsam_ranks_per_node": args.balsam_ranks_per_node,
        "balsam_gpus_per_rank": args.balsam_gpus_per_rank,
        "balsam_node_packing": args.balsam_node_packing,
        "balsam_workflow": args.balsam_workflow or f"ambs-{out.resolve().name}",
    }


def cmd_submit(args: argparse.Namespace) -> int:
    """``ambs submit``: render the job script, then print it or submit it."""
    from ambs.problem import load_problem
    from ambs.submit import JobSpec, render, submit

    loaded = load_problem(args.problem)  # fail here, not in the queue
    if args.max_evals is None:
        args.max_evals = DEFAULT_MAX_EVALS
    problem = args.problem
    if Path(problem).is_file():
        problem = str(Path(problem).resolve())
    out = Path(args.output) if args.output else Path("runs") / (
        f"{loaded.name}-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = out.resolve()
    parser_defaults = build_parser().parse_args(["search", "x"])
    search_args: list[str] = []
    for name in (*METHOD_OPTIONS, "assign"):
        value = getattr(args, name)
        if name in ("method", "max_evals"):
            continue
        if value is not None and value != getattr(parser_defaults, name):
            search_args += [f"--{name.replace('_', '-')}", str(value)]
    spec = JobSpec(
        scheduler=args.scheduler, problem=problem, run_dir=out, workdir=Path.cwd(),
        nodes=args.nodes, ranks_per_node=args.ranks_per_node, walltime=args.walltime,
        method=args.method, max_evals=args.max_evals, search_args=search_args, gpus_per_node=args.gpus_per_node,
        threads_per_worker=args.threads_per_worker, account=args.account, queue=args.queue,
        launcher=args.launcher, warning=args.warning,
        job_name=args.job_name or f"ambs-{loaded.name}",
    )
    script = render(spec)
    if args.dry_run:
        sys.stdout.write(script)
        return 0
    if (out / "run.json").exists():
        raise AmbsError(f"{out} already holds a run; its job scripts resume it by themselves "
                        "(resubmit its job script) or choose another --output")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AmbsError(f"cannot create run directory {out}: {exc.strerror}") from None
    path = out / f"job.{'slurm' if args.scheduler == 'slurm' else 'pbs'}"
    path.write_text(script)
    path.chmod(0o755)
    ids = submit(spec, path, chain=args.chain)
    print(f"submitted {path} as job {ids[0]}" + (
        f", then {len(ids) - 1} chained job(s) {' '.join(ids[1:])}" if len(ids) > 1 else ""))
    print(f"results: {out / 'results.csv'}")
    return 0


def _report(summary: Any, out: Path, max_evals: int, resume: str) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.by_status.items())) or "none"
    print(f"evaluations: {summary.total} in {out / 'results.csv'} ({counts}); "
          f"{summary.evaluations} in this run, {summary.elapsed:.1f} s")
    if summary.best_config is not None:
        print(f"best objective: {summary.best_objective:.10g}")
        print("best configuration: " + ", ".join(f"{k}={v!r}" for k, v in summary.best_config.items()))
    else:
        print("best objective: none (no evaluation succeeded)")
    if summary.stop_reason not in ("max-evals", "space exhausted") and summary.total < max_evals:
        extra = f"; {summary.cancelled} running evaluation(s) cancelled" if summary.cancelled else ""
        print(f"stopped by {summary.stop_reason}{extra}; continue with: {resume}")


def _add_simulate_parser(sub: Any) -> None:
    """The ``simulate`` subcommand: the real search against simulated workers (see ambs.simulate)."""
    m = sub.add_parser("simulate", help="run the search against simulated workers on a virtual clock",
                       description="Run the real search and driver against W simulated workers whose "
                                   "evaluations take times drawn from --duration; the master's own "
                                   "compute time is measured and counted. Prints worker utilization, "
                                   "evaluations and master seconds per result.")
    m.add_argument("problem", metavar="PROBLEM", help="problem module, as for `ambs search`")
    g = m.add_argument_group("simulation")
    g.add_argument("--workers", type=_positive_int, required=True, help="simulated workers")
    g.add_argument("--duration", required=True, metavar="DIST",
                   help="evaluation time: const:S, uniform:LO,HI, lognormal:MEDIAN,SIGMA or "
                        "exponential:MEAN (seconds), e.g. lognormal:60,0.5")
    g.add_argument("--walltime", type=_seconds, default=None,
                   help="stop after this much virtual time (seconds or HH:MM:SS)")
    g.add_argument("--json", action="store_true", help="print the results as one JSON object")
    g.add_argument("--output", "-o", default=None,
                   help="also keep the simulated run's results.csv here (times are virtual)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    _add_method_options(m.add_argument_group("search"))


def cmd_simulate(args: argparse.Namespace) -> int:
    """``ambs simulate``: utilization and master cost of a search at a given scale."""
    import json
    import tempfile

    from ambs.driver import Progress
    from ambs.problem import load_problem
    from ambs.recorder import Recorder, RunInfo, columns_for
    from ambs.simulate import parse_duration, simulate

    duration = parse_duration(args.duration)
    if args.max_evals is None:
        args.max_evals = DEFAULT_MAX_EVALS
    loaded = load_problem(args.problem)
    try:
        search = _make_search(args, loaded.problem)
    except ValueError as exc:
        raise AmbsError(str(exc)) from None
    columns = columns_for(loaded.problem.hyperparameter_names, loaded.problem.metadata,
                          budget=loaded.problem.budget is not None or _is_multi_fidelity(args))
    settings = _resolved_budgets(_settings_simulate(args, search.random_state), search)
    info = RunInfo(problem=args.problem, problem_name=loaded.name, fingerprint=loaded.problem.fingerprint(),
                   method=args.method, columns=columns, settings=settings, **_described(loaded.problem))
    with tempfile.TemporaryDirectory(prefix="ambs-simulate-") as tmp:
        recorder = Recorder(Path(args.output) if args.output else Path(tmp) / "run", info)
        progress = None if (args.quiet or args.json) else Progress(args.max_evals)
        try:
            report = simulate(search, loaded.run, recorder, args.workers, duration, args.max_evals,
                              seed=search.random_state, background_fit=args.fit == "background",
                              progress=progress, walltime=args.walltime)
        finally:
            recorder.close()
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    print(f"simulated {report.evaluations} evaluations on {report.workers} workers ({report.duration} s each)")
    print(f"virtual time: {report.makespan:.1f} s; worker utilization: {report.utilization:.1%} "
          f"({report.utilization_total:.1%} including the final drain)")
    print(f"master: {report.master_seconds:.2f} s of compute, "
          f"{report.master_seconds_per_result * 1e3:.2f} ms per result; "
          f"{report.fits} fits, {report.fit_seconds:.2f} s fitting")
    print(f"best objective: {report.best_objective:.10g}")
    return 0


def _settings_simulate(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    d = {k: getattr(args, k) for k in METHOD_OPTIONS if hasattr(args, k)}
    d.update(seed=seed, workers=args.workers, duration=args.duration, simulated=True)
    return d


def _add_analyze_parser(sub: Any) -> None:
    """The ``analyze`` subcommand: post-processing of results.csv (see ambs.analysis)."""
    a = sub.add_parser("analyze", help="summaries, plots, comparisons and reports of runs",
                       description="Post-process a run's results.csv (finished or still running; "
                                   "DeepHyper-style CSVs too).")
    what = a.add_subparsers(dest="analyze_command", metavar="WHAT", parser_class=_Parser)
    what.required = True
    run_help = "run directory or results CSV"
    p = what.add_parser("summary", help="evaluations by status, the best, top-k, utilization",
                        description="Print a run's summary.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.add_argument("--top", type=_positive_int, default=5, help="rows of the top table (default: 5)")
    p.add_argument("--budget", type=_positive_float, default=None, metavar="B",
                   help="rank the evaluations that trained with budget B (default: the highest "
                        "budget reached, in a run with several)")
    p = what.add_parser("plot", help="PNG plots of one run",
                        description="Best so far, worker timeline, objective against each "
                                    "hyperparameter, importance.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("--out", metavar="DIR", default=None, help="where the PNGs go (default: RUN_DIR/plots)")
    p = what.add_parser("compare", help="best so far across runs, grouped by label",
                        description="Median and interquartile range of the best so far per label.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help=run_help + "s")
    p.add_argument("--labels", nargs="+", metavar="LABEL", default=None,
                   help="one label per run, after the runs (default: each run's method)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where compare.png goes (default: the directory that holds the runs, "
                        "their common parent)")
    p = what.add_parser("pareto", help="the Pareto front of a run with several objectives",
                        description="Rows no other row dominates (all objectives maximized), "
                                    "computed from the CSV, and pareto.png.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("--objectives", metavar="COLUMNS", default=None,
                   type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
                   help="comma-separated CSV columns, '-' in front of one to minimize it "
                        "(objective,-m:n_parameters); default: the lists in m:objectives")
    p.add_argument("--out", metavar="FILE", default=None, help="PNG file (default: RUN_DIR/pareto.png)")
    p = what.add_parser("report", help="a self-contained HTML report of one run",
                        description="Summary tables and all plots in one HTML file.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("--out", metavar="FILE", default=None, help="HTML file (default: RUN_DIR/report.html)")


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
        front = analysis.pareto_front(run, args.objectives)
        print(front[front["pareto"]].drop(columns="pareto").to_string(index=False))
        print(f"{int(front['pareto'].sum())} of {len(front)} successful evaluations on the front")
        print(f"wrote {analysis.plot_pareto(run, args.out or run.directory / 'pareto.png', args.objectives)}")
    elif args.analyze_command == "plot":
        files, notes = analysis.plot_run(run, args.out if args.out else run.directory / "plots")
        for note in notes:
            print(f"ambs: note: {note}", file=sys.stderr)
        for f in files:
            print(f"wrote {f}")
    else:
        print(f"wrote {analysis.write_report(run, args.out)}")
    return 0


def _format_warning(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
    return f"ambs: warning: {message}\n"


def _one_line(exc: BaseException) -> str:
    """An error's text on one line (ConfigSpace and user exceptions may span several)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ambs`` command."""
    warnings.formatwarning = _format_warning
    # `kill -USR2 <pid>` prints every thread's Python stack: a hung rank says where.
    try:
        faulthandler.register(signal.SIGUSR2, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr without a file descriptor
        pass
    args = build_parser().parse_args(argv)
    try:
        if args.command == "search":
            return cmd_search(args)
        if args.command == "submit":
            return cmd_submit(args)
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "analyze":
            return cmd_analyze(args)
    except RecorderError as exc:
        print(f"ambs: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except AmbsError as exc:
        print(f"ambs: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ambs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ambs analyze summary ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
