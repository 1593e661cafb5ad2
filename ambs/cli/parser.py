"""The ``ambs`` command line's parser: subcommands, options and their help (the
options' value types are in ``ambs.cli.types``).

Choices come from the registries (methods, evaluators); each search option's
help names the methods that take it (``ambs.search.factory.OPTIONS``).
"""

from __future__ import annotations

import argparse
from typing import Any

from ambs import __version__
from ambs.cli.types import (
    eta,
    gpus,
    nonneg_float,
    nonneg_int,
    numbers,
    positive_float,
    positive_int,
    seconds,
)
from ambs.evaluator import EVALUATORS
from ambs.surrogate import SURROGATES, TRANSFORMS
from ambs.walltime import HELP as WALLTIME_HELP

__all__ = ["DEFAULT_MAX_EVALS", "METHOD_OPTIONS", "build_parser", "use_submit_config"]


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Options of the search itself, shared by `search` and `submit` (which passes
# them on to the `ambs search` of the job script).
DEFAULT_MAX_EVALS = 100
METHOD_OPTIONS = ("method", "max_evals", "seed", "surrogate", "acquisition", "kappa", "xi", "liar", "front_acquisition",
                  "n_initial_points", "initial_design", "max_fit_rows", "polish_every", "y_transform", "fit", "fit_jobs",
                  "grid_steps",
                  "population_size", "sample_size", "eval_timeout", "eval_memory", "min_budget", "max_budget", "eta", "stopper",
                  "stop_rule", "stop_final_step", "no_checkpoints", "warm_start", "initial_configs")


def _for(option: str, text: str) -> str:
    """Help text headed by the methods that take ``option`` (from the factory's table)."""
    from ambs.search.factory import BUDGET_OPTIONS, OPTIONS

    names = [m + (" --stopper" if m == "ambs" and option in BUDGET_OPTIONS else "")
             for m, takes in OPTIONS.items() if option in takes]
    return f"{', '.join(names)}: {text}"


def _add_begin_options(g: Any) -> None:
    """Where a search starts from (``ambs search`` and ``ambs submit``)."""
    g.add_argument("--warm-start", nargs="+", default=None, metavar="RUN_DIR",
                   help="tell the search the finished results of these earlier runs first (matched by "
                        "hyperparameter name; rows outside the space dropped), not counted as evaluations; "
                        "AMBS evaluates the 5 best again in its initial design; methods with one budget "
                        "per configuration")
    g.add_argument("--initial-configs", default=None, metavar="FILE",
                   help="evaluate these configurations first: a CSV (a column per hyperparameter, p: "
                        "prefixes allowed) or a JSON list of objects")


def _add_method_options(g: Any, resumes: bool = True) -> None:
    from ambs.search import ALL_METHODS  # the names only: a class loads when it is used

    g.add_argument("--method", default="ambs", choices=list(ALL_METHODS),
                   help="search method (default: ambs); sha, hyperband and asha are multi-fidelity "
                        "and need a problem that declares a budget")
    g.add_argument("--max-evals", type=positive_int, default=None,
                   help=f"evaluations of the whole run, resumed ones included (default: {DEFAULT_MAX_EVALS}"
                        + ("; with --resume, the run's own)" if resumes else ")"))
    g.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default: random)")
    g.add_argument("--surrogate", default="et", choices=list(SURROGATES),
                   help=_for("surrogate", "the model of the objective: " + "; ".join(
                       f"{k}: {v.description}" for k, v in SURROGATES.items()) + " (default: et)"))
    g.add_argument("--acquisition", default="lcb", choices=["lcb", "ucb", "ei", "pi"],
                   help=_for("acquisition", "acquisition function (default: lcb)"))
    g.add_argument("--kappa", type=nonneg_float, default=1.0,
                   help=_for("kappa", "LCB exploration weight (default: 1.0)"))
    g.add_argument("--xi", type=nonneg_float, default=0.01, help=_for("xi", "EI/PI margin (default: 0.01)"))
    g.add_argument("--liar", default="believer", choices=["believer", "cl_max", "cl_mean", "cl_min"],
                   help=_for("liar", "the value assumed for running evaluations: the surrogate's own prediction "
                        "(believer, the default) or a constant, the worst, mean or best result (cl_max, "
                        "cl_mean, cl_min)"))
    g.add_argument("--front-acquisition", default="hvi", choices=["hvi", "chebyshev"],
                   help=_for("front_acquisition", "several objectives: aim each point at the hypervolume its "
                        "objectives' confidence bounds add to the front (hvi, the default) or at a random "
                        "Chebyshev scalarization of them (chebyshev)"))
    g.add_argument("--n-initial-points", type=positive_int, default=10,
                   help=_for("n_initial_points", "size of the initial design (default: 10)"))
    g.add_argument("--initial-design", default="lhs", choices=["lhs", "random"],
                   help=_for("initial_design", "Latin hypercube or random initial design (default: lhs)"))
    g.add_argument("--fit", default="auto", choices=["auto", "background", "process", "sync"],
                   help=_for("fit_jobs", "fit the surrogate while workers get configurations from the previous "
                        "fit: in a process of its own (process: the fit shares no interpreter lock with the "
                        "dispatch path) or in a background thread (background); auto (default) takes process "
                        "under --evaluator mpi and background otherwise; or fit before each proposal (sync: "
                        "slower; proposals then depend only on the seed and results)"))
    g.add_argument("--max-fit-rows", type=nonneg_int, default=None,
                   help=_for("max_fit_rows", "fit the surrogate on at most this many results, the best quarter "
                        "of them and a random sample of the others, so that the master's memory stays bounded "
                        "on long searches (default: 10000; 0: all)"))
    g.add_argument("--polish-every", type=nonneg_int, default=None,
                   help=_for("polish_every", "every this many proposals, one comes from a Gaussian process "
                        "fitted on the results nearest the best one, within the box they span: a forest cannot "
                        "tell which way is down near its best result (default: 2; 0: never)"))
    g.add_argument("--y-transform", default=None, choices=list(TRANSFORMS),
                   help=_for("y_transform", "how objectives are transformed before a fit: normal scores of their "
                        "ranks (rank), a log scale anchored at the best (log), or auto (the default): rank, or log "
                        "when fewer than half the results are distinct values (plateaus, as accuracies on a small "
                        "validation set have), where ranks push near values apart"))
    g.add_argument("--fit-jobs", type=positive_int, default=None,
                   help=_for("fit_jobs", "threads for fitting (default: the master's cores, at most 4; "
                        "a fit in a process of its own uses one core fewer, so that proposals keep one)"))
    g.add_argument("--grid-steps", type=positive_int, default=5,
                   help=_for("grid_steps", "points per numerical axis (default: 5)"))
    g.add_argument("--population-size", type=positive_int, default=20,
                   help=_for("population_size", "P, the latest results that form the population (default: 20)"))
    g.add_argument("--sample-size", type=positive_int, default=5,
                   help=_for("sample_size", "S, the tournament size (default: 5)"))
    g.add_argument("--min-budget", type=positive_float, default=None,
                   help=_for("min_budget", "smallest budget (default: the problem's declared low)"))
    g.add_argument("--max-budget", type=positive_float, default=None,
                   help=_for("max_budget", "full budget (default: the problem's declared high); other "
                                          "methods, on a problem with a budget: the budget every configuration "
                                          "trains with (default: run(config)'s own), e.g. 1 epoch for a quick "
                                          "trial"))
    g.add_argument("--eta", type=eta, default=3,
                   help=_for("eta", "keep the best 1/eta of a rung, at eta times the budget (default: 3)"))
    g.add_argument("--stopper", default=None, choices=["sha", "median"],
                   help=_for("stopper", "early stopping; new configurations start at the smallest budget and "
                        "asynchronous successive halving (sha) or the median rule promotes them"))
    from ambs.stopping import RULES

    g.add_argument("--stop-rule", default=None, choices=list(RULES),
                   help="stop evaluations early on their in-training reports (a run(config, report) that "
                        "calls report(step, value)): median (below the median of the others at that step), "
                        "patience (no improvement for 5 reports), lce (learning-curve extrapolation unlikely "
                        "to beat the best), asha (not in the top third at steps 1, 3, 9, ...) or asha-lce "
                        "(asha, then lce past its last rung); every report goes to RUN_DIR/curves.csv "
                        "(default: none stopped)")
    g.add_argument("--stop-final-step", type=positive_float, default=None,
                   help="the step a full training reaches, for --stop-rule lce and asha-lce and the summary's "
                        "saved steps (default: the budget it trains with)")
    g.add_argument("--no-checkpoints", action="store_true",
                   help="multi-fidelity methods: promotions retrain from scratch (default: each budgeted "
                        "evaluation gets a checkpoint file, report.checkpoint, that a promotion of the same "
                        "configuration continues from)")
    g.add_argument("--eval-timeout", type=seconds, default=None,
                   help="kill an evaluation after this many seconds (process and mpi evaluators)")
    g.add_argument("--eval-memory", type=positive_int, default=None, metavar="MB",
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
    _add_begin_options(s.add_argument_group("search"))
    e = s.add_argument_group("evaluation")
    e.add_argument("--evaluator", default="process", choices=list(EVALUATORS),
                   help="where evaluations run (default: process, a local pool; "
                        "mpi: rank 0 searches, the other ranks evaluate; "
                        "balsam: one job per evaluation in the Balsam database of $BALSAM_DB_PATH)")
    e.add_argument("--workers", type=positive_int, default=None,
                   help="parallel evaluations (default: the number of cores)")
    e.add_argument("--threads-per-worker", type=positive_int, default=None,
                   help="cap on each worker's math-library threads")
    e.add_argument("--gpus", type=gpus, default=None, metavar="N|I,J,...",
                   help="process: one worker per GPU of this machine, N GPUs (0..N-1) or these indices; "
                        "each worker's CUDA_VISIBLE_DEVICES is its GPU (--workers defaults to their number)")
    e.add_argument("--gpus-per-node", type=positive_int, default=None,
                   help="mpi: one GPU per worker rank, CUDA_VISIBLE_DEVICES from its index among the "
                        "worker ranks of its node (rank 0, the master, takes none)")
    e.add_argument("--share-gpus", action="store_true",
                   help="allow more workers on a machine than GPUs (worker i gets GPU i mod G); "
                        "refused without it")
    e.add_argument("--prefetch", default=None, metavar="auto|N",
                   help="mpi: jobs a worker rank holds beyond the one it runs, so that it starts the next "
                        "while the master records the last; auto: one while the ranks would otherwise wait "
                        "2%% of their time or more for the master (default: auto)")
    e.add_argument("--no-logs", action="store_true",
                   help="leave each evaluation's stdout and stderr on the terminal instead of "
                        "RUN_DIR/logs/<job id>.log")
    e.add_argument("--assign", default="none", choices=["none", "shadho"],
                   help="shadho: when workers differ (mpi ranks with and without a GPU, or "
                        "$AMBS_WORKER_KIND on a rank), send the configurations of highest complexity "
                        "and priority to the most capable workers (SHADHO); none: any free worker "
                        "(default: none)")
    bl = s.add_argument_group("balsam (with --evaluator balsam; --workers: jobs in flight)")
    bl.add_argument("--balsam-nodes", type=positive_int, default=1, help="nodes per evaluation (default: 1)")
    bl.add_argument("--balsam-ranks-per-node", type=positive_int, default=1,
                    help="MPI ranks per node of an evaluation; rank 0 reports (default: 1)")
    bl.add_argument("--balsam-gpus-per-rank", type=nonneg_int, default=0,
                    help="GPUs per rank, from its index on the node (default: 0, none set)")
    bl.add_argument("--balsam-node-packing", type=positive_int, default=1,
                    help="evaluations per node in Balsam's serial job mode (default: 1)")
    bl.add_argument("--balsam-workflow", default=None,
                    help="Balsam workflow of the jobs (default: ambs-<run directory name>)")
    r = s.add_argument_group("run")
    r.add_argument("--output", "-o", default=None,
                   help="run directory (default: runs/<problem>-<method>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --output")
    r.add_argument("--walltime", type=seconds, default=None,
                   help=f"stop handing out work after this long: {WALLTIME_HELP}")
    r.add_argument("--grace", type=nonneg_float, default=30.0,
                   help="seconds running evaluations may finish after a stop (default: 30)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress display")

    _add_submit_parser(sub)
    _add_analyze_parser(sub)
    _add_simulate_parser(sub)
    return parser


def _add_submit_parser(sub: Any) -> None:
    """The ``submit`` subcommand: a job script for Slurm or PBS (see ambs.submit)."""
    b = sub.add_parser(
        "submit", help="render a Slurm or PBS job script and submit it",
        description="Render a job script that runs one MPI search over the allocation, and submit "
                    "it (with --chain follow-ups). Every option can also come from the [submit] "
                    "table of a TOML file: --config FILE, else ./ambs.toml, else "
                    "$XDG_CONFIG_HOME/ambs/config.toml (~/.config/ambs/config.toml); keys are the "
                    "long option names with underscores (account = \"X\", setup = [\"module load x\"]). "
                    "The command line wins; --setup and --directive lines add to the file's.")
    b.add_argument("problem", metavar="PROBLEM", help="problem module, as for `ambs search`")
    b.add_argument("--config", metavar="FILE", default=None,
                   help="read the [submit] settings from FILE (default: ./ambs.toml, else "
                        "~/.config/ambs/config.toml, when they exist)")
    j = b.add_argument_group("job")
    j.add_argument("--scheduler", required=True, choices=["slurm", "pbs"])
    j.add_argument("--nodes", type=positive_int, default=1, help="nodes (default: 1)")
    j.add_argument("--ranks-per-node", type=positive_int, default=None,
                   help="MPI ranks per node on CPU nodes; rank 0 of the job is the master")
    j.add_argument("--gpus-per-node", type=positive_int, default=None,
                   help="GPU nodes: G worker ranks a node, one per GPU, plus the master rank on the "
                        "first node, which takes no GPU (nodes*G+1 ranks)")
    j.add_argument("--cores-per-node", type=positive_int, default=None,
                   help="cores of a node: each rank gets cores // ranks-a-node CPUs (cpus-per-task, "
                        "OMP_NUM_THREADS) unless --threads-per-worker says (default: unknown, no "
                        "cpus-per-task)")
    j.add_argument("--threads-per-worker", type=positive_int, default=None,
                   help="CPU/KNL nodes: OpenMP and torch threads of each worker")
    j.add_argument("--assign", default="none", choices=["none", "shadho"],
                   help="as for `ambs search`: send the most complex configurations to GPU ranks")
    j.add_argument("--walltime", required=True,
                   help=f"the scheduler's time limit: {WALLTIME_HELP}; the search's own "
                        "--walltime is this minus --warning")
    j.add_argument("--warning", type=positive_int, default=120,
                   help="seconds before the time limit at which the search stops (Slurm sends USR1 "
                        "then; on PBS the search's own clock is the timer) (default: 120)")
    j.add_argument("--account", default=None, help="account (project) to charge")
    j.add_argument("--queue", "--partition", dest="queue", default=None,
                   help="partition (Slurm) or queue (PBS)")
    j.add_argument("--qos", default=None, help="Slurm quality of service")
    j.add_argument("--constraint", default=None, help="Slurm node features, e.g. a100")
    j.add_argument("--mem", default=None, help="memory per node, e.g. 64G (Slurm) or 64gb (PBS)")
    j.add_argument("--exclusive", action="store_true", help="nodes not shared with other jobs")
    j.add_argument("--requeue", action="store_true",
                   help="let the scheduler requeue the job (preemption, node failure); the requeued "
                        "job resumes the run")
    j.add_argument("--pbs-flavor", default="pro", choices=["pro", "torque"],
                   help="PBS Pro/OpenPBS select=N:ncpus=..:mpiprocs=.. (default) or Torque nodes=N:ppn=P")
    j.add_argument("--directive", action="append", default=None, metavar="ARG",
                   help="an extra #SBATCH/#PBS line, as written, e.g. '--mail-type=END' (repeatable)")
    j.add_argument("--setup", action="append", default=None, metavar="LINE",
                   help="a shell line run before the launch, e.g. 'module load cuda' (repeatable)")
    j.add_argument("--setup-file", metavar="FILE", default=None,
                   help="shell lines run before the launch (after the --setup lines)")
    j.add_argument("--chain", type=nonneg_int, default=0,
                   help="follow-up jobs that resume the run after each job ends (default: 0)")
    j.add_argument("--job-name", default=None, help="job name (default: ambs-<problem>)")
    j.add_argument("--output", "-o", default=None,
                   help="run directory (default: runs/<problem>-<method>-<time>)")
    j.add_argument("--dry-run", action="store_true",
                   help="create the run directory, write (unless it was submitted already) and print "
                        "the job script and the commands that would submit the chain; submit nothing, "
                        "load nothing of the problem")
    m = b.add_argument_group("MPI launcher")
    m.add_argument("--launcher", default=None, choices=["mpiexec", "mpirun", "srun", "custom"],
                   help="how ranks start (default: mpiexec, which reads the allocation). mpiexec and "
                        "mpirun are written with their absolute path (the one beside this Python "
                        "first) and checked at submit time against the MPI mpi4py was built with")
    m.add_argument("--mpi", default=None, metavar="TYPE",
                   help="srun --mpi=TYPE, e.g. pmix or pmi2 (default: none given, the site's MpiDefault)")
    m.add_argument("--launcher-command", default=None, metavar="'CMD ...'",
                   help="a launcher of the site's own (Cray, Intel MPI...), written as given before "
                        "`ambs`; $VAR words expand ($SLURM_NTASKS, $NRANKS, $AMBS_HOSTFILE)")
    m.add_argument("--oversubscribe", action="store_true",
                   help="more ranks than cores: adds Open MPI's --oversubscribe (Hydra needs nothing)")
    m.add_argument("--no-launcher-check", action="store_true",
                   help="skip the check that mpiexec/mpirun and mpi4py come from the same MPI")
    _add_method_options(b.add_argument_group("search"), resumes=False)
    _add_begin_options(b.add_argument_group("search"))


def _submit_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """``ambs submit``'s options a settings file may set, by long name with underscores."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    known: dict[str, argparse.Action] = {}
    for action in sub.choices["submit"]._actions:
        if action.dest in ("help", "config", "dry_run", "problem"):
            continue
        for opt in action.option_strings:
            if opt.startswith("--"):
                known[opt[2:].replace("-", "_")] = action
    return known


def use_submit_config(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Make the settings file's ``[submit]`` values the defaults of ``ambs submit``
    (see ambs.jobscript.config) when ``argv`` is a submit command line."""
    from ambs.jobscript.config import config_path, load_config

    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] != "submit":
        return
    given = None
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            given = argv[i + 1]
        elif a.startswith("--config="):
            given = a.split("=", 1)[1]
    path = config_path(given)
    if path is None:
        return
    known = _submit_actions(parser)
    values = load_config(path, known)
    for key, value in values.items():
        known[key].default = value
        known[key].required = False
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["submit"].set_defaults(config_file=str(path), config_values={known[k].dest: v for k, v in values.items()})


def _add_simulate_parser(sub: Any) -> None:
    """The ``simulate`` subcommand: the real search against simulated workers (see ambs.simulate)."""
    m = sub.add_parser("simulate", help="run the search against simulated workers on a virtual clock",
                       description="Run the real search and driver against W simulated workers whose "
                                   "evaluations take times drawn from --duration; the master's own "
                                   "compute time is measured and counted. Prints worker utilization, "
                                   "evaluations and master seconds per result.")
    m.add_argument("problem", metavar="PROBLEM", help="problem module, as for `ambs search`")
    g = m.add_argument_group("simulation")
    g.add_argument("--workers", type=positive_int, required=True, help="simulated workers")
    g.add_argument("--duration", required=True, metavar="DIST",
                   help="evaluation time: const:S, uniform:LO,HI, lognormal:MEDIAN,SIGMA or "
                        "exponential:MEAN (seconds), e.g. lognormal:60,0.5")
    g.add_argument("--walltime", type=seconds, default=None,
                   help=f"stop after this much virtual time: {WALLTIME_HELP}")
    g.add_argument("--master-cost", default="measured", metavar="COST",
                   help="the master's time on the virtual clock: measured (default); measured:FACTOR, "
                        "measured and counted FACTOR times over, fits included (a master core slower than "
                        "this machine's, e.g. measured:2.5); or STEP,FIT fixed seconds per master step and "
                        "per background fit, so that the same --seed repeats the run exactly, e.g. 0.05,0.5")
    g.add_argument("--message-cost", default="slingshot", metavar="COST",
                   help="what each job and result costs in transit: slingshot (default: 2 us latency, "
                        "25 GB/s, an HPE Slingshot-11 network), none, or LATENCY,BANDWIDTH in seconds and "
                        "bytes per second; the master's pickling and unpickling are measured as its compute")
    g.add_argument("--live-fits", action="store_true",
                   help="run the fits for real in a fitting process beside the simulated master, the "
                        "virtual clock waiting for them, instead of giving each a core of its own: slower "
                        "(the simulation keeps the real fits' pace), for checking the prediction against "
                        "this machine")
    g.add_argument("--idle-sleep", type=nonneg_float, default=0.0, metavar="SECONDS",
                   help="where the simulated master waits for a result, sleep that wait in real time, up to "
                        "SECONDS each (default 0: not at all), so that its next step is measured as a real "
                        "master's is after idling (caches cold, the core clocked down); the simulation takes "
                        "that much longer")
    g.add_argument("--json", action="store_true", help="print the results as one JSON object")
    g.add_argument("--output", "-o", default=None,
                   help="also keep the simulated run's results.csv here (times are virtual)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    _add_method_options(m.add_argument_group("search"), resumes=False)


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
    p.add_argument("--top", type=positive_int, default=5, help="rows of the top table (default: 5)")
    p.add_argument("--budget", type=positive_float, default=None, metavar="B",
                   help="rank the evaluations that trained with budget B (default: the highest "
                        "budget reached, in a run with several)")
    p = what.add_parser("plot", help="PNG plots of one run",
                        description="Best so far, worker timeline, objective against each "
                                    "hyperparameter, importance.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("-o", "--out", metavar="DIR", default=None, help="where the PNGs go (default: RUN_DIR/plots)")
    p = what.add_parser("compare", help="best so far across runs, grouped by label",
                        description="Median and interquartile range of the best so far per label.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help=run_help + "s")
    p.add_argument("--labels", nargs="+", metavar="LABEL", default=None,
                   help="one label per run, after the runs (default: each run's method)")
    p.add_argument("-o", "--out", metavar="DIR", default=None,
                   help="where compare.png goes (default: the directory that holds the runs, "
                        "their common parent)")
    p = what.add_parser("pareto", help="the Pareto front of a run with several objectives",
                        description="Rows no other row dominates in the problem's declared objectives "
                                    "(each in its direction), with their configurations, computed from the "
                                    "CSV; the hypervolume they dominate; pareto.png and hypervolume.png.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("--objectives", metavar="COLUMNS", default=None,
                   type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
                   help="comma-separated CSV columns, all maximized, '-' in front of one to minimize it "
                        "(objective,-m:n_parameters); default: the declared objectives (o: columns)")
    p.add_argument("--reference", metavar="VALUES", default=None, type=numbers,
                   help="the hypervolume's reference point, one value per objective in its own units, "
                        "comma-separated (default: each objective's worst value, a tenth of its range beyond)")
    p.add_argument("--budget", type=positive_float, default=None, metavar="B",
                   help="the front of the evaluations that trained with budget B (default: the highest "
                        "budget reached, in a run with several)")
    p.add_argument("-o", "--out", metavar="FILE", default=None, help="PNG file (default: RUN_DIR/pareto.png)")
    p = what.add_parser("report", help="a self-contained HTML report of one run",
                        description="Summary tables and all plots in one HTML file.")
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    p.add_argument("-o", "--out", metavar="FILE", default=None, help="HTML file (default: RUN_DIR/report.html)")

