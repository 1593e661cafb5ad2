"""``ambs submit``: check what the job will run, render its script, submit it.

Everything ``ambs search`` would refuse is refused here, before the queue:
a job that fails after hours of waiting for its nodes costs the user a day.
The run directory records the jobs submitted for it (``jobs.txt``), so a
second submission cannot start a second search on the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ambs.cli.parser import DEFAULT_MAX_EVALS, METHOD_OPTIONS
from ambs.errors import AmbsError

__all__ = ["JOBS", "cmd_submit"]

JOBS = "jobs.txt"  # one line a submitted job: id, scheduler, when


def _setup_lines(args: argparse.Namespace) -> list[str]:
    """``--setup`` lines, then ``--setup-file``'s (blank lines left out)."""
    lines = list(args.setup or [])
    if args.setup_file:
        try:
            text = Path(args.setup_file).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise AmbsError(f"--setup-file {args.setup_file}: {getattr(exc, 'strerror', None) or exc}") from None
        lines += [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    return lines


def _problem_name(ref: str) -> str:
    """A problem's name from its reference alone, for a dry run that loads nothing of it."""
    from ambs.errors import ProblemError

    if ref.endswith(".py"):
        if not Path(ref).is_file():
            raise ProblemError(f"problem module {ref!r} not found (give a dotted name or a .py path)")
        return Path(ref).stem
    return ref.rsplit(".", 1)[-1]


def _launcher(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The resolved mpiexec/mpirun and mpi4py's MPI family (checked unless --no-launcher-check)."""
    import warnings

    from ambs.jobscript.launcher import check_launcher, resolve

    launcher = args.launcher or ("custom" if args.launcher_command else "mpiexec")
    if launcher not in ("mpiexec", "mpirun"):
        return None, None
    path = resolve(launcher)
    if path is None:
        warnings.warn(f"{launcher} not found here: the job script calls the {launcher} on the job's PATH, "
                      "unchecked", stacklevel=2)
        return None, None
    if args.no_launcher_check:
        return path, None
    return path, check_launcher(path)


def _check_search(args: argparse.Namespace, loaded: Any) -> None:
    """What ``ambs search`` in the job would refuse at its start, refused now.
    A dry run loads nothing of the problem: it checks what needs no problem."""
    from ambs.begin import check_extras, preflight
    from ambs.cli.commands import _check_budget_options, _is_multi_fidelity, _make_search

    # The job runs in this directory, but a path given here should not depend on it.
    if args.warm_start:
        args.warm_start = [str(Path(d).expanduser().resolve()) for d in args.warm_start]
        missing = [d for d in args.warm_start if not Path(d).is_dir()]
        if missing:
            raise AmbsError(f"--warm-start {missing[0]}: no such run directory")
    if args.initial_configs is not None:
        args.initial_configs = str(Path(args.initial_configs).expanduser().resolve())
        if not Path(args.initial_configs).is_file():
            raise AmbsError(f"--initial-configs {args.initial_configs}: no such file")
    extras = {"rule": args.stop_rule, "final_step": args.stop_final_step,
              "warm_start": args.warm_start, "initial_configs": args.initial_configs}
    if loaded is None:  # _make_search checks the budget options with the rest
        _check_budget_options(args)
        check_extras(_is_multi_fidelity(args), args.method, extras)
        return
    preflight(loaded, _make_search(args, loaded.problem), args.method, extras)


def _search_args(args: argparse.Namespace) -> list[str]:
    """The ``ambs search`` options of the job that differ from the defaults."""
    from ambs.cli.commands import _changed_option_words

    return _changed_option_words(args, (*METHOD_OPTIONS, "assign"), skip=("method", "max_evals"))


def _run_dir(args: argparse.Namespace, name: str) -> Path:
    """The run directory: ``--output``, or a new ``runs/<problem>-<method>-<time>``
    (``-2``, ``-3``... when two submissions share a second)."""
    if args.output:
        return Path(args.output).expanduser().resolve()
    stem = Path("runs") / f"{name}-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, k = stem, 1
    while out.exists():
        k += 1
        out = stem.with_name(f"{stem.name}-{k}")
    return out.resolve()


def _holds_run(out: Path) -> str | None:
    """What makes ``out`` another submission's run (None: nothing)."""
    jobs = out / JOBS
    if jobs.is_file():
        ids = [ln.split()[0] for ln in jobs.read_text().splitlines() if ln.strip()]
        if not ids:
            return None
        return f"job {ids[0]} was submitted for it" if len(ids) == 1 else f"jobs {' '.join(ids)} were submitted for it"
    if (out / "run.json").is_file():
        return "it holds a run"
    return None


def _make_dir(out: Path) -> bool:
    """Create the run directory; True when this call created it."""
    try:
        out.mkdir(parents=True)
        return True
    except FileExistsError:
        if not out.is_dir():
            raise AmbsError(f"--output {out} is a file, not a directory") from None
        return False
    except OSError as exc:
        raise AmbsError(f"cannot create run directory {out}: {exc.strerror}") from None


def _spec(args: argparse.Namespace, name: str, out: Path) -> Any:
    from ambs.submit import JobSpec

    problem = args.problem
    if Path(problem).is_file():
        problem = str(Path(problem).resolve())
    return JobSpec(
        scheduler=args.scheduler, problem=problem, run_dir=out, workdir=Path.cwd(),
        nodes=args.nodes, ranks_per_node=args.ranks_per_node, walltime=args.walltime,
        method=args.method, max_evals=args.max_evals, search_args=_search_args(args),
        gpus_per_node=args.gpus_per_node, threads_per_worker=args.threads_per_worker,
        cores_per_node=args.cores_per_node, account=args.account, queue=args.queue, qos=args.qos,
        constraint=args.constraint, mem=args.mem, exclusive=args.exclusive, requeue=args.requeue,
        launcher=args.launcher, launcher_command=args.launcher_command, mpi=args.mpi,
        oversubscribe=args.oversubscribe, setup=_setup_lines(args), directives=list(args.directive or []),
        pbs_flavor=args.pbs_flavor, warning=args.warning, job_name=args.job_name or f"ambs-{name}",
    )


def cmd_submit(args: argparse.Namespace) -> int:
    """``ambs submit``: render the job script, then submit it (or, with
    ``--dry-run``, write it and print it with the commands that would submit it)."""
    from ambs.submit import chain_commands, render, submit

    from_file = getattr(args, "config_values", {})
    changed = (args.launcher, args.launcher_command) != (from_file.get("launcher"), from_file.get("launcher_command"))
    if args.mpi is not None and args.mpi == from_file.get("mpi") and changed and args.launcher != "srun":
        args.mpi = None  # the file's srun --mpi type, but the command line chose another launcher
    loaded = None
    if args.dry_run:  # rendering needs the problem's name only: torch and the like stay unloaded
        name = _problem_name(args.problem)
    else:
        from ambs.problem import load_problem

        loaded = load_problem(args.problem)  # fail here, not in the queue
        name = loaded.name
    if args.max_evals is None:
        args.max_evals = DEFAULT_MAX_EVALS
    _check_search(args, loaded)
    out = _run_dir(args, name)
    spec = _spec(args, name, out)
    render(spec)  # every value checked before anything runs or is written
    spec.launcher_path, spec.mpi_family = _launcher(args)
    script = render(spec)
    path = out / f"job.{'slurm' if args.scheduler == 'slurm' else 'pbs'}"
    held = _holds_run(out)
    if held and not args.dry_run:
        raise AmbsError(f"{out} is taken: {held}. Its job script resumes the run by itself (resubmit "
                        f"{path}), or choose another --output")
    if args.dry_run:
        sys.stdout.write(script)
        sys.stdout.flush()
        if getattr(args, "config_file", None):
            print(f"# with the [submit] settings of {args.config_file}", file=sys.stderr)
        if held:  # the run's own script stays as it was submitted
            print(f"# not written: {out} is taken ({held}); its own script is {path}", file=sys.stderr)
        else:
            _make_dir(out)
            _write(path, script)
            print(f"# written to {path}; to submit it by hand:", file=sys.stderr)
        for line in chain_commands(spec, path, chain=args.chain):
            print(line, file=sys.stderr)
        return 0
    made = _make_dir(out)
    _write(path, script)

    def record(job: str) -> None:
        with open(out / JOBS, "a") as fh:
            fh.write(f"{job}\t{args.scheduler}\t{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")

    try:
        ids = submit(spec, path, chain=args.chain, on_submitted=record)
    except AmbsError:
        if not (out / JOBS).exists():  # nothing queued: leave nothing behind
            path.unlink(missing_ok=True)
            if made:
                _remove_empty(out)
        raise
    print(f"submitted {path} as job {ids[0]}" + (
        f", then {len(ids) - 1} chained job(s) {' '.join(ids[1:])}" if len(ids) > 1 else ""))
    print(f"results: {out / 'results.csv'}")
    return 0


def _write(path: Path, script: str) -> None:
    try:
        path.write_text(script)
        path.chmod(0o755)
    except OSError as exc:
        raise AmbsError(f"cannot write {path}: {exc.strerror}") from None


def _remove_empty(out: Path) -> None:
    """Remove the run directory this submission made, if nothing else is in it."""
    try:
        out.rmdir()
    except OSError:
        pass
