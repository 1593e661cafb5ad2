"""Command line: ``ambs search PROBLEM ...``. Parses, checks, and calls the package.

Every user mistake ends in one line ``ambs: error: ...`` and exit code 2;
a run that had to stop because results could not be written exits 1.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ambs import __version__
from ambs.errors import AmbsError, RecorderError

__all__ = ["main"]


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ambs", description="Asynchronous model-based hyperparameter search.")
    parser.add_argument("--version", action="version", version=f"ambs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("search", help="run a search on a problem module",
                       description="Run a search on a problem module; results stream to results.csv.")
    s.add_argument("problem", metavar="PROBLEM",
                   help="problem module: dotted name (problems.ackley) or path (problems/ackley.py)")
    g = s.add_argument_group("search")
    g.add_argument("--method", default="ambs", choices=["ambs", "random", "grid"],
                   help="search method (default: ambs)")
    g.add_argument("--max-evals", type=_positive_int, default=100,
                   help="evaluations of the whole run, resumed ones included (default: 100)")
    g.add_argument("--seed", type=_nonneg_int, default=None, help="random seed (default: random)")
    g.add_argument("--surrogate", default="rf", choices=["rf", "et"],
                   help="ambs: random forest or extra trees (default: rf)")
    g.add_argument("--acquisition", default="lcb", choices=["lcb", "ucb", "ei", "pi"],
                   help="ambs: acquisition function (default: lcb)")
    g.add_argument("--kappa", type=_nonneg_float, default=1.96,
                   help="ambs: LCB exploration weight (default: 1.96)")
    g.add_argument("--xi", type=_nonneg_float, default=0.01, help="ambs: EI/PI margin (default: 0.01)")
    g.add_argument("--liar", default="cl_max", choices=["cl_max", "cl_mean", "cl_min"],
                   help="ambs: constant-liar value for running evaluations (default: cl_max)")
    g.add_argument("--n-initial-points", type=_positive_int, default=10,
                   help="ambs: size of the initial design (default: 10)")
    g.add_argument("--initial-design", default="lhs", choices=["lhs", "random"],
                   help="ambs: Latin hypercube or random initial design (default: lhs)")
    g.add_argument("--grid-steps", type=_positive_int, default=5,
                   help="grid: points per numerical axis (default: 5)")
    e = s.add_argument_group("evaluation")
    e.add_argument("--evaluator", default="process", choices=["serial", "process", "mpi"],
                   help="where evaluations run (default: process, a local pool; "
                        "mpi: rank 0 searches, the other ranks evaluate)")
    e.add_argument("--workers", type=_positive_int, default=None,
                   help="parallel evaluations (default: the number of cores)")
    e.add_argument("--threads-per-worker", type=_positive_int, default=None,
                   help="cap on each worker's math-library threads")
    e.add_argument("--gpus-per-node", type=_positive_int, default=None,
                   help="mpi: one GPU per worker, CUDA_VISIBLE_DEVICES from its node-local index")
    e.add_argument("--eval-timeout", type=_seconds, default=None,
                   help="kill an evaluation after this many seconds (process evaluator)")
    r = s.add_argument_group("run")
    r.add_argument("--output", "-o", default=None,
                   help="run directory (default: runs/<problem>-<method>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --output")
    r.add_argument("--walltime", type=_seconds, default=None,
                   help="stop handing out work after this long (seconds or HH:MM:SS)")
    r.add_argument("--grace", type=_nonneg_float, default=30.0,
                   help="seconds running evaluations may finish after a stop (default: 30)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    return parser


def _make_search(args: argparse.Namespace, problem: Any) -> Any:
    from ambs.search import AMBS, GridSearch, RandomSearch

    if args.method == "ambs":
        return AMBS(
            problem, random_state=args.seed, surrogate=args.surrogate,
            acquisition=args.acquisition, kappa=args.kappa, xi=args.xi, liar=args.liar,
            n_initial_points=args.n_initial_points, initial_design=args.initial_design,
        )
    if args.method == "grid":
        return GridSearch(problem, random_state=args.seed, steps=max(args.grid_steps, 2))
    return RandomSearch(problem, random_state=args.seed)


def _settings(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    keep = ("method", "max_evals", "surrogate", "acquisition", "kappa", "xi", "liar",
            "n_initial_points", "initial_design", "grid_steps", "evaluator", "workers",
            "threads_per_worker", "gpus_per_node", "eval_timeout", "walltime", "grace")
    d = {k: getattr(args, k) for k in keep}
    d["seed"] = seed
    return d


def cmd_search(args: argparse.Namespace) -> int:

    if args.evaluator == "serial" and args.workers not in (None, 1):
        raise AmbsError("the serial evaluator runs one evaluation at a time; "
                        "drop --workers or use --evaluator process")
    if args.evaluator == "serial" and args.eval_timeout is not None:
        raise AmbsError("--eval-timeout needs an evaluator that can stop a running evaluation "
                        "(use --evaluator process)")
    if args.resume and not args.output:
        raise AmbsError("--resume needs --output DIR, the run directory to continue")
    if args.gpus_per_node and args.evaluator != "mpi":
        raise AmbsError("--gpus-per-node applies to --evaluator mpi")
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
    cluster = ambs_mpi.Cluster.connect(comm, spawn=args.workers)
    try:
        return _search(args, cluster)
    finally:
        cluster.stop()


def _search(args: argparse.Namespace, cluster: Any) -> int:
    """The master's side of a search, whatever the evaluator."""
    from ambs.driver import Driver, Progress, StopRules
    from ambs.errors import RunDirError
    from ambs.evaluator import make_evaluator
    from ambs.problem import load_problem
    from ambs.recorder import Recorder, RunInfo, columns_for, read_results

    loaded = load_problem(args.problem)
    try:
        search = _make_search(args, loaded.problem)
    except ValueError as exc:
        raise AmbsError(str(exc)) from None
    out = Path(args.output) if args.output else Path("runs") / (
        f"{loaded.name}-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}")
    columns = columns_for(loaded.problem.hyperparameter_names, loaded.problem.metadata)
    info = RunInfo(
        problem=args.problem, problem_name=loaded.name, fingerprint=loaded.problem.fingerprint(),
        method=args.method, columns=columns, settings=_settings(args, search.random_state),
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
    if not args.quiet:
        what = f"resuming {out} ({len(previous)} done)" if previous else f"results in {out}/results.csv"
        print(f"ambs: {args.method} search of {loaded.name} on {workers} {args.evaluator} "
              f"worker(s), {args.max_evals} evaluations; {what}", file=sys.stderr)
    try:
        evaluator = make_evaluator(
            args.evaluator, args.problem, t0, eval_timeout=args.eval_timeout,
            workers=workers, threads_per_worker=args.threads_per_worker,
            cluster=cluster, gpus_per_node=args.gpus_per_node,
        )
    except BaseException:
        recorder.close()
        raise
    rules = StopRules(max_evals=args.max_evals, walltime=args.walltime, grace=args.grace)
    progress = None if args.quiet else Progress(args.max_evals)
    try:
        with evaluator:
            summary = Driver(search, evaluator, recorder, rules, t0, previous=previous,
                             progress=progress).run()
    finally:
        recorder.close()
    _report(summary, out)
    return 0


def _report(summary: Any, out: Path) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.by_status.items())) or "none"
    print(f"evaluations: {summary.total} in {out / 'results.csv'} ({counts}); "
          f"{summary.evaluations} in this run, {summary.elapsed:.1f} s")
    if summary.best_config is not None:
        print(f"best objective: {summary.best_objective:.10g}")
        print("best configuration: " + ", ".join(f"{k}={v!r}" for k, v in summary.best_config.items()))
    else:
        print("best objective: none (no evaluation succeeded)")
    if summary.stop_reason not in ("max-evals", "space exhausted"):
        extra = f"; {summary.cancelled} running evaluation(s) cancelled" if summary.cancelled else ""
        print(f"stopped by {summary.stop_reason}{extra}; continue with --resume --output {out}")


def _format_warning(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
    return f"ambs: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ambs`` command."""
    warnings.formatwarning = _format_warning
    args = build_parser().parse_args(argv)
    try:
        if args.command == "search":
            return cmd_search(args)
    except RecorderError as exc:
        print(f"ambs: error: {exc}", file=sys.stderr)
        return 1
    except AmbsError as exc:
        print(f"ambs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ambs: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
