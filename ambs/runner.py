"""One path for every run: :func:`run_search` assembles a run, :func:`drive` runs it.

``ambs search`` parses its arguments and calls :func:`run_search`; ``ambs
simulate`` calls it with the simulated evaluator; from Python::

    import ambs
    result = ambs.run_search("problems.ackley", max_evals=60, output="runs/ackley")
    result.best_objective, result.results()      # a pandas DataFrame

What is assembled here and nowhere else: the problem, the search (by name,
:mod:`ambs.search.factory`), the run directory and its lock (the recorder),
resume, the evaluator (under MPI, rank 0 is the master and the other ranks
serve), the background fitter, the assigner, and the stop rules.

About 420 lines: this is the one place a run is assembled, on purpose.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambs.begin import begin, check_method, curve_book, first_free_id, inherit
from ambs.driver import Assigner, Driver, Progress, RowSink, RunSummary, StopRules
from ambs.errors import AmbsError, RunDirError
from ambs.evaluator.base import Evaluator
from ambs.fitter import FITS
from ambs.heap import keep_large_blocks_apart
from ambs.problem import LoadedProblem, Problem, load_problem
from ambs.result import Evaluation
from ambs.search.base import Search

if TYPE_CHECKING:
    from ambs.stopping import StopRule

__all__ = ["CHECKPOINT_VAR", "RunResult", "drive", "run_search"]

COMPLETE = ("max-evals", "space exhausted", "nothing to run")  # stop reasons after which nothing is left
CHECKPOINT_VAR = "AMBS_CHECKPOINT_DIR"  # as ambs.nas.morph.CHECKPOINT_VAR, without importing torch


@dataclass
class RunResult:
    """What a run did: the summary, where its results are, and the objects it ran."""

    summary: RunSummary
    directory: Path | None
    problem: LoadedProblem
    search: Search
    evaluator: Evaluator
    fitter: Any = None
    max_evals: int = 0
    previous: int = 0  # evaluations that were already in the CSV (resume)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_objective(self) -> float:
        return self.summary.best_objective

    @property
    def best_config(self) -> dict[str, Any] | None:
        return self.summary.best_config

    def results(self) -> Any:
        """The run's results.csv as a pandas DataFrame (one row per evaluation)."""
        if self.directory is None:
            raise AmbsError("this run kept no results.csv")
        from ambs import analysis

        return analysis.load_run(self.directory).data


def drive(search: Search, evaluator: Evaluator, sink: RowSink, *, max_evals: int, t0: float,
          walltime: float | None = None, grace: float = 30.0, previous: list[Evaluation] | None = None,
          fit: str = "auto", progress: Progress | None = None,
          on_result: Callable[[Evaluation], None] | None = None,
          assigner: Assigner | None = None, checkpoints: Any = None, first_id: int = 0,
          initial: list[dict[str, Any]] | None = None,
          told: Callable[[Evaluation], Evaluation] | None = None) -> tuple[RunSummary, Any]:
    """Run ``search`` on ``evaluator`` until a stop rule fires; every finished
    evaluation goes to ``sink`` at once. Returns the summary and the fitter
    (None when the search fits in ``ask``)."""
    if fit not in FITS:
        raise AmbsError(f"fit must be {', '.join(FITS[:-1])} or {FITS[-1]}, not {fit!r}")
    if fit == "auto":
        fit = evaluator.default_fit
    fitter = evaluator.fitter_for(search, fit) if fit != "sync" and search.fits_in_background else None
    evaluator.attach(search)
    rules = StopRules(max_evals=max_evals, walltime=walltime, grace=grace)
    try:
        driver = Driver(search, evaluator, sink, rules, t0, previous=previous, progress=progress,
                        on_result=on_result, fitter=fitter, clock=evaluator.clock, assigner=assigner,
                        checkpoints=checkpoints, first_id=first_id, initial=initial, told=told)
        return driver.run(), fitter
    finally:
        if fitter is not None:
            fitter.close()


def _load(problem: str | Problem | LoadedProblem, run: Callable[..., Any] | None) -> LoadedProblem:
    if isinstance(problem, LoadedProblem):
        return problem
    if isinstance(problem, str):
        if run is not None:
            raise AmbsError("give run= with a Problem object, not with a problem module (it has its own run)")
        return load_problem(problem)
    if not isinstance(problem, Problem):
        raise AmbsError(f"problem must be an ambs.Problem or a module reference, not a {type(problem).__name__}")
    if run is None or not callable(run):
        raise AmbsError("a Problem object needs run=, the function that evaluates a configuration")
    problem.validate()
    from ambs.target import RunTarget

    return LoadedProblem(ref=RunTarget(func=run).describe(), name=problem.name or getattr(run, "__name__", "run"),
                         problem=problem, run=run, module=None)


def _worker_count(evaluator: str, workers: int | None, max_evals: int) -> int:
    """Refuse, before anything is written, more worker processes than the machine takes."""
    from ambs.evaluator.placement import worker_limit

    wanted = min(workers or os.cpu_count() or 1, max_evals)
    limit, why = worker_limit()
    if wanted > limit:
        raise AmbsError(f"--workers {wanted} is more worker processes than this machine takes: "
                        f"at most {limit} ({why})")
    return wanted


def run_search(
    problem: str | Problem | LoadedProblem,
    method: str | Search = "ambs",
    evaluator: str = "process",
    max_evals: int = 100,
    output: str | Path | None = None,
    resume: bool = False,
    walltime: float | None = None,
    grace: float = 30.0,
    workers: int | None = None,
    seed: int | None = None,
    run: Callable[..., Any] | None = None,
    fit: str = "auto",
    assign: str = "none",
    quiet: bool = False,
    progress: bool | None = None,
    evaluator_options: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    on_result: Callable[[Evaluation], None] | None = None,
    stop_rule: str | StopRule | None = None,
    stop_final_step: float | None = None,
    checkpoints: bool = True,
    warm_start: list[str | Path] | None = None,
    initial_configs: str | Path | list[dict[str, Any]] | None = None,
    **method_options: Any,
) -> RunResult | None:
    """Run a search and stream every result to ``output/results.csv``.

    Args:
        problem: a problem module (dotted name or ``.py`` path) with ``problem``
            and ``run``, or an :class:`ambs.Problem` with ``run=`` a callable.
        method: a method's name (``ambs.search.ALL_METHODS``) or a search object.
        evaluator: ``serial``, ``process``, ``mpi``, ``balsam`` or ``simulated``.
        max_evals: evaluations of the whole run, resumed ones included.
        output: the run directory (default ``runs/<problem>-<method>-<time>``).
        resume: continue the run in ``output``.
        walltime: seconds after which no new evaluation starts.
        grace: seconds running evaluations may finish after a stop.
        workers: parallel evaluations (process, balsam, simulated; mpi: spawn
            that many when started without ``mpiexec``).
        seed: the search's seed (None: random, recorded in run.json).
        run: the run function, with a Problem object.
        fit: ``background`` (fit off the dispatch path, in a thread),
            ``process`` (off the dispatch path, in a process of its own: the
            fit then shares no interpreter lock with the master; see
            :mod:`ambs.fitter`), ``sync`` (before each proposal), or
            ``auto`` (the evaluator's choice: ``process`` under MPI, where
            the master's node has cores to spare, ``background`` otherwise).
        assign: ``shadho`` sends complex configurations to capable workers.
        quiet: no header and (unless ``progress`` says otherwise) no progress line on stderr.
        progress: show the progress line (default: unless ``quiet``).
        evaluator_options: the evaluator's own options (``eval_timeout``,
            ``eval_memory``, ``threads_per_worker``, ``gpus`` (process),
            ``gpus_per_node`` (mpi), ``share_gpus``, ``log_dir`` (default
            ``output/logs``; None keeps evaluations' output on the terminal),
            ``duration`` for the simulated one, ...); unknown ones are errors.
        settings: what run.json records as the run's settings (default: the
            arguments given).
        on_result: called with each evaluation after it is written.
        stop_rule: stop evaluations early on their in-training reports:
            ``median``, ``patience``, ``lce`` or ``asha`` (:mod:`ambs.stopping`),
            or a :class:`ambs.stopping.StopRule` made with other settings (a
            resume makes the named rule with its defaults); None:
            reports are recorded in ``output/curves.csv``, nothing is stopped.
        stop_final_step: the step a full training reaches, for ``lce``
            (default: the full budget).
        checkpoints: under a multi-fidelity method, each budgeted job gets a
            checkpoint file (``report.checkpoint``) so that a promotion
            continues the training instead of retraining (see
            :mod:`ambs.checkpoints`); False: promotions retrain from scratch.
        warm_start: earlier run directories whose finished results the search
            is told before it starts (:mod:`ambs.warmstart`); not counted in
            ``max_evals`` (AMBS evaluates the best few again in its initial
            design). A resume reads them again from run.json.
        initial_configs: configurations to evaluate first: a CSV or JSON
            file, or a list of dicts.
        **method_options: the method's options (``kappa=``, ``eta=``, ...).

    Returns:
        a :class:`RunResult`; None on an MPI worker rank, after it has served.
    """
    options = dict(evaluator_options or {})
    # What the run does besides the method and the evaluator: stop rules, checkpoints, warm starts.
    stop = {"rule": stop_rule, "final_step": stop_final_step, "checkpoints": bool(checkpoints),
            "warm_start": [str(Path(p).resolve()) for p in warm_start] if warm_start else None,
            "initial_configs": initial_configs}
    if stop_rule is not None:
        from ambs.stopping import RULES, StopRule

        if not isinstance(stop_rule, StopRule) and stop_rule not in RULES:
            raise AmbsError(f"unknown stop rule {stop_rule!r} (choose from {', '.join(RULES)})")
        if evaluator in ("balsam", "simulated"):
            raise AmbsError(f"--stop-rule needs in-training reports, which the {evaluator} evaluator does not "
                            "send back; use the process, mpi or serial evaluator")
    if evaluator == "process" and options.get("gpus") is not None and not workers:
        from ambs.evaluator.placement import parse_gpus

        try:  # one worker per GPU
            workers = len(parse_gpus(options["gpus"])) or None
        except ValueError as exc:
            raise AmbsError(str(exc)) from None
    if evaluator == "mpi":
        return _run_mpi(problem, method, max_evals, output, resume, walltime, grace, workers, seed, run, fit,
                        assign, (quiet, progress), options, settings, on_result, method_options, stop)
    if evaluator == "process":
        _worker_count(evaluator, workers, max_evals)
    return _run(problem, method, evaluator, max_evals, output, resume, walltime, grace, workers, seed, run, fit,
                assign, (quiet, progress), options, settings, on_result, method_options, cluster=None, stop=stop)


def _run_mpi(problem: Any, method: Any, max_evals: int, output: Any, resume: bool, walltime: Any, grace: float,
             workers: int | None, seed: Any, run: Any, fit: str, assign: str, quiet: tuple, options: dict,
             settings: Any, on_result: Any, method_options: dict, stop: dict) -> RunResult | None:
    """Rank 0 runs the search; the other ranks serve until it stops them."""
    from ambs.evaluator import mpi as ambs_mpi

    comm, placement = ambs_mpi.world()
    if comm.Get_rank() != 0:
        code = ambs_mpi.serve(comm, 0, placement)
        if code:
            raise SystemExit(code)
        return None
    if comm.Get_size() > 1 and workers not in (None, comm.Get_size() - 1):
        ambs_mpi.Cluster(comm, list(range(1, comm.Get_size()))).stop()
        raise AmbsError(f"--workers {workers} does not match the {comm.Get_size() - 1} "
                        "worker ranks of mpiexec; drop --workers")
    spawn = None
    if comm.Get_size() == 1 and workers:  # spawned ranks are processes of this machine
        spawn = _worker_count("mpi", workers, max_evals)
    cluster = ambs_mpi.Cluster.connect(comm, spawn=spawn)
    try:
        return _run(problem, method, "mpi", max_evals, output, resume, walltime, grace, workers, seed, run, fit,
                    assign, quiet, options, settings, on_result, method_options, cluster=cluster, stop=stop)
    finally:
        cluster.stop()


def _run(problem: Any, method: str | Search, evaluator: str, max_evals: int, output: Any, resume: bool,
         walltime: float | None, grace: float, workers: int | None, seed: int | None, run: Any, fit: str,
         assign: str, display: tuple[bool, bool | None], options: dict[str, Any], settings: dict[str, Any] | None,
         on_result: Any, method_options: dict[str, Any], cluster: Any, stop: dict[str, Any]) -> RunResult:
    """The master's side of a run, whatever the evaluator."""
    quiet, show = display
    from ambs.evaluator import evaluator_options, make_evaluator
    from ambs.evaluator.logs import LOGS
    from ambs.recorder import Recorder, RunInfo, columns_for, read_results
    from ambs.runinfo import where_it_runs
    from ambs.search.factory import make_search

    takes = evaluator_options(evaluator)  # an unknown evaluator is refused before anything is written
    if evaluator != "serial":  # whose evaluations run in this process (see ambs.heap)
        keep_large_blocks_apart()
    loaded = _load(problem, run)
    if resume and output is not None:
        # What a resume keeps of the run: its seed, stop rule and warm start (unless given).
        seed = inherit(Path(output), stop, seed)
    if isinstance(method, Search):
        search, name = method, type(method).__name__.lower()
    else:
        search, name = make_search(method, loaded.problem, seed, **method_options), method
    if loaded.problem.multi_objective and not search.multi_objective and not quiet:
        first = loaded.problem.objectives[0]
        from ambs.search import ALL_METHODS

        # ASHA's is a property (False only with a sampler that is not): it counts.
        # Random and grid search take several objectives by ignoring them.
        fronts = [n for n, cls in ALL_METHODS.items()
                  if cls.multi_objective is not False and n not in ("random", "grid")]
        print(f"ambs: {name} optimizes the first objective ({first.direction} {first.name}); "
              f"{', '.join(fronts)} search for the Pareto front of all "
              f"{len(loaded.problem.objectives)}", file=sys.stderr)
    if resume and output is None:
        raise AmbsError("--resume needs --output DIR, the run directory to continue")
    out = Path(output) if output is not None else Path("runs") / (
        f"{loaded.name}-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    metadata = list(loaded.problem.metadata)
    if evaluator == "balsam" and "balsam_job_id" not in metadata:
        metadata.append("balsam_job_id")  # the Balsam job of each evaluation
    columns = columns_for(loaded.problem.hyperparameter_names, metadata,
                          budget=loaded.problem.budget is not None or search.multi_fidelity,
                          objectives=loaded.problem.objective_names)
    recorded = dict(settings) if settings is not None else {
        "method": name, "max_evals": max_evals, "evaluator": evaluator, "workers": workers, "walltime": walltime,
        "grace": grace, "fit": fit, "assign": assign, **method_options, **options}
    recorded["seed"] = search.random_state
    if stop.get("rule"):  # given, or kept by a resume (inherit)
        recorded.update(stop_rule=getattr(stop["rule"], "name", stop["rule"]), stop_final_step=stop.get("final_step"))
    if search.multi_fidelity and settings is None:
        recorded["checkpoints"] = stop["checkpoints"]
    check_method(loaded, search, name, stop)
    if stop.get("warm_start") or stop.get("initial_configs") is not None:
        recorded["warm_start"] = stop.get("warm_start")
        ic = stop.get("initial_configs")
        recorded["initial_configs"] = (str(Path(ic).resolve()) if isinstance(ic, (str, Path))
                                       else f"{len(ic)} from Python" if ic is not None else None)
    if search.multi_fidelity:  # the budgets it uses, the problem's when no option gave them
        recorded.update(min_budget=search.min_budget, max_budget=search.max_budget, eta=search.eta)  # type: ignore[attr-defined]
    budget = loaded.problem.budget
    where = where_it_runs()
    if cluster is not None:
        from ambs.evaluator.placement import mpi_library

        where["mpi_library"] = mpi_library()
    info = RunInfo(problem=loaded.ref, problem_name=loaded.name, fingerprint=loaded.problem.fingerprint(),
                   method=name, columns=columns, settings=recorded,
                   budget=budget.as_dict() if budget is not None else None,
                   objectives=list(loaded.problem.objective_names) or None,
                   directions=[o.direction for o in loaded.problem.objectives] or None, space=loaded.problem.space,
                   where=where)
    recorder = Recorder(out, info, resume=resume)
    try:
        previous = read_results(recorder.path, search.space) if resume else []
    except RunDirError:
        recorder.close()
        raise
    except Exception as exc:  # a CSV from another version or edited by hand
        recorder.close()
        raise RunDirError(f"cannot resume {out}: {exc}") from None
    try:
        initial = begin(out, resume, stop, loaded, search, quiet)
    except AmbsError:
        recorder.discard() if not previous else recorder.close()
        raise
    last = max((e.finished for e in previous if math.isfinite(e.finished)), default=0.0)
    t0 = time.time() - last
    if len(previous) >= max_evals:
        recorder.close()
        print(f"ambs: {out} already holds {len(previous)} evaluations (--max-evals {max_evals}); "
              "nothing to do", file=sys.stderr)
        return RunResult(RunSummary(total=len(previous), stop_reason="max-evals"), out, loaded, search,
                         None, max_evals=max_evals, previous=len(previous))  # type: ignore[arg-type]
    if cluster is not None:
        n_workers = len(cluster.ranks)
        options["cluster"] = cluster
    elif evaluator == "simulated":
        if not workers:
            raise AmbsError("the simulated evaluator needs workers=, how many workers to simulate")
        n_workers = options["workers"] = workers
    else:
        n_workers = 1 if evaluator == "serial" else (workers or os.cpu_count() or 1)
        # No more workers than there are evaluations left to run.
        n_workers = max(1, min(n_workers, max_evals - len(previous)))
        if evaluator != "serial":
            options["workers"] = n_workers
    if evaluator == "simulated":  # virtual seconds from 0; durations drawn from the search's seed
        t0 = 0.0
        options.setdefault("seed", search.random_state)
    if name == "morphism" and not os.environ.get(CHECKPOINT_VAR):
        # Workers started from here inherit it: NAS problems store trained weights
        # there and start each child from its parent's (see ambs.nas.morph).
        os.environ[CHECKPOINT_VAR] = str((out / "checkpoints").resolve())
    if evaluator == "balsam":
        options.setdefault("balsam_workflow", f"ambs-{out.resolve().name}")
    if "log_dir" in takes:  # each evaluation's output in a file (None: not)
        options.setdefault("log_dir", out / LOGS)
    if not quiet:
        what = f"resuming {out} ({len(previous)} done)" if previous else f"results in {out}/results.csv"
        print(f"ambs: {name} search of {loaded.name} on {n_workers} {evaluator} "
              f"worker(s), {max_evals} evaluations; {what}", file=sys.stderr)
    try:
        book = curve_book(out, stop, search, budget, t0, resume, previous)
    except AmbsError:
        recorder.discard() if not previous else recorder.close()
        raise
    target = loaded.ref if loaded.module is not None else loaded.run
    try:
        ev = make_evaluator(evaluator, target, t0, **options)
    except BaseException as exc:
        recorder.discard()  # a new run that could not start leaves no run directory behind
        if isinstance(exc, OSError):  # fork or spawn refused: EAGAIN, ENOMEM, EMFILE
            raise AmbsError(f"cannot start {n_workers} {evaluator} worker(s): "
                            f"{exc.strerror or exc}") from None
        raise
    assigner = None
    if assign == "shadho":
        from ambs.nas.hardware import ShadhoAssigner

        full = search.max_budget if search.multi_fidelity else search.train_budget  # type: ignore[attr-defined]
        full = full or (budget.high if budget is not None else None)
        assigner = ShadhoAssigner(search.space, full_budget=full)
    elif assign != "none":
        recorder.discard() if not previous else recorder.close()
        raise AmbsError(f"assign must be none or shadho, not {assign!r}")
    progress = Progress(max_evals) if (not quiet if show is None else show) else None
    ev.on_report = book.report

    def finished(e: Evaluation) -> None:
        book.finished(e.job_id, e.objective if e.ok else None, e.stopped)
        if on_result is not None:
            on_result(e)

    store = None
    if search.multi_fidelity and stop.get("checkpoints", True) and evaluator != "simulated":
        from ambs.checkpoints import CheckpointStore

        store = CheckpointStore(out, search.max_budget)  # type: ignore[attr-defined]
    try:
        with ev:
            summary, fitter = drive(search, ev, recorder, max_evals=max_evals, t0=t0, walltime=walltime,
                                    grace=grace if evaluator != "simulated" else 0.0, previous=previous, fit=fit,
                                    progress=progress, on_result=finished, assigner=assigner, checkpoints=store,
                                    told=book.told,
                                    first_id=first_free_id(out) if resume else 0, initial=initial)
    finally:
        book.close()
        recorder.close()
    if store is not None and summary.stop_reason in COMPLETE:
        store.clear()  # nothing is left to promote; a run stopped early keeps them for --resume
    return RunResult(summary, out, loaded, search, ev, fitter=fitter, max_evals=max_evals, previous=len(previous))
