"""A run directory's identity: run.json (what ran, with which settings, and
the history of its resumes) and space.json (the search space, for the analysis).

A resume continues a run only when its rows keep their meaning: the same
problem and space, method, budget range and objective names
(:func:`check_same_run`); what may change (``--max-evals``, ``--seed``) is
added to the settings' history, never written over it (:func:`write_settings`).
run.json also says where the run ran: the MPI library and launcher of its
latest start, and the scheduler job of every start (``scheduler_jobs``).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambs.errors import RecorderError, RunDirError

__all__ = ["LAUNCHER_VAR", "MEANING", "SETTINGS", "SPACE", "RunInfo", "check_same_run", "effective_settings",
           "read_run", "recorded_settings", "scheduler_jobs", "where_it_runs", "write_settings", "write_space"]

SETTINGS = "run.json"
SPACE = "space.json"  # the search space in ConfigSpace's JSON format, for the analysis


# Settings that alter what the rows of a run mean: a resume may not change them.
MEANING = ("min_budget", "max_budget", "eta")


def _plain(value: Any) -> Any:
    """``value`` as run.json holds it (tuples as lists, numbers as JSON has them)."""
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _budget_text(budget: dict[str, Any] | None) -> str:
    if not budget:
        return "none"
    return f"{budget.get('name')} {budget.get('low')}..{budget.get('high')}"


def write_space(space: Any, path: Path) -> bool:
    """Write a ConfigurationSpace as JSON (atomically); False, with a warning,
    when the space cannot be serialized (the analysis then guesses scales)."""
    tmp = path.with_suffix(".json.tmp")
    try:
        space.to_json(tmp, indent=1)
        os.replace(tmp, path)
    except Exception as exc:  # a custom hyperparameter without an encoder, a full disk
        tmp.unlink(missing_ok=True)
        warnings.warn(f"{path} not written ({type(exc).__name__}: {exc}); plots will guess "
                      "which hyperparameters are log-scaled", stacklevel=2)
        return False
    return True


def effective_settings(doc: dict[str, Any]) -> dict[str, Any]:
    """The settings a run now has: the original ones of run.json, with the
    changes of every resume (``resumes``) applied in order."""
    out = dict(doc.get("settings") or {})
    for r in doc.get("resumes") or []:
        if isinstance(r, dict) and isinstance(r.get("changed"), dict):
            out.update(r["changed"])
    return out


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """A run directory's run.json; {} when it is missing or unreadable."""
    try:
        doc = json.loads((Path(run_dir) / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def recorded_settings(run_dir: str | Path) -> dict[str, Any]:
    """The settings a run directory's run now has (:func:`effective_settings`); {} when unreadable."""
    try:
        return effective_settings(read_run(run_dir))
    except (TypeError, ValueError):  # settings that are not a mapping
        return {}


@dataclass
class RunInfo:
    """What identifies a run: written to run.json, checked on resume."""

    problem: str
    problem_name: str
    fingerprint: str
    method: str
    columns: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] | None = None  # the problem's declared budget (name, low, high, default)
    objectives: list[str] | None = None  # names of several objectives, when the problem gives them
    directions: list[str] | None = None  # each objective's "max" or "min", in the same order
    space: Any = None  # the ConfigurationSpace, written to space.json for the analysis
    where: dict[str, Any] = field(default_factory=dict)  # what it ran on: mpi_library, launcher


LAUNCHER_VAR = "AMBS_LAUNCHER"  # how the job script started the ranks (srun, mpiexec), set by it
JOB_VARS = ("SLURM_JOB_ID", "PBS_JOBID")  # the scheduler's id of the job this search runs in


def where_it_runs() -> dict[str, Any]:
    """What run.json records of where this search runs: the launcher
    (``$AMBS_LAUNCHER``) when a job script says, omitted otherwise."""
    launcher = os.environ.get(LAUNCHER_VAR, "").strip()
    return {"launcher": launcher} if launcher else {}


def scheduler_jobs(old: dict[str, Any] | None) -> list[str]:
    """The scheduler job ids of a run: those of its run.json (``old``), and this
    job's (``$SLURM_JOB_ID`` or ``$PBS_JOBID``) after them, once."""
    jobs = [str(j) for j in (old or {}).get("scheduler_jobs") or [] if j]
    job = next((os.environ[v].strip() for v in JOB_VARS if os.environ.get(v, "").strip()), "")
    if job and job not in jobs:
        jobs.append(job)
    return jobs


def check_same_run(run_dir: Path, info: RunInfo) -> dict[str, Any]:
    """run.json of the run in ``run_dir``, once checked to be a run this one may
    continue: the same problem and space, method, and meaning of its rows."""
    settings_path = run_dir / SETTINGS
    try:
        old = json.loads(settings_path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"cannot resume {run_dir}: {SETTINGS} is missing") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"cannot resume {run_dir}: {SETTINGS} is unreadable ({exc})") from None
    if old.get("fingerprint") != info.fingerprint:
        raise RunDirError(
            f"cannot resume {run_dir}: it is a run of problem {old.get('problem')!r} "
            "with another search space"
        )
    if old.get("method") != info.method:
        raise RunDirError(
            f"cannot resume {run_dir}: it was run with --method {old.get('method')}, "
            f"not {info.method}"
        )
    check_meaning(run_dir, info, old)
    return old


def check_meaning(run_dir: Path, info: RunInfo, old: dict[str, Any]) -> None:
    """Refuse a resume after a change that alters what the run's rows mean:
    the budget range (the problem's, or the multi-fidelity settings), the
    objectives' names, the space (space.json against the problem's)."""
    stop = f"cannot resume {run_dir}: the"
    tail = "; its rows would mean something else (start a new run in another --output)"
    if _plain(old.get("budget")) != _plain(info.budget):
        raise RunDirError(f"{stop} budget is now {_budget_text(info.budget)}, the run's was "
                          f"{_budget_text(old.get('budget'))}{tail}")
    if (old.get("objectives") or None) != (list(info.objectives or []) or None):
        raise RunDirError(f"{stop} objectives are now {info.objectives or ['objective']}, the run's were "
                          f"{old.get('objectives') or ['objective']}{tail}")
    if info.objectives and (old.get("directions") or ["max"] * len(info.objectives)) != list(info.directions or []):
        raise RunDirError(f"{stop} objectives' directions are now {info.directions}, the run's were "
                          f"{old.get('directions') or ['max'] * len(info.objectives)}{tail}")
    was = effective_settings(old)
    for key in MEANING:
        if key in was and key in info.settings and _plain(was[key]) != _plain(info.settings[key]):
            raise RunDirError(f"{stop} {key} is now {info.settings[key]}, the run's was {was[key]}{tail}")
    space_path = run_dir / SPACE
    if info.space is not None and space_path.exists():
        try:
            from ConfigSpace import ConfigurationSpace

            recorded = ConfigurationSpace.from_json(space_path)
        except Exception:  # noqa: BLE001 - written by another version: the fingerprint decides
            return
        if recorded != info.space:
            names = sorted(set(recorded.keys()) ^ set(info.space.keys())) or sorted(
                n for n in recorded.keys() if recorded[n] != info.space[n])
            changed = f" ({', '.join(names)})" if names else ""
            raise RunDirError(f"{stop} search space differs from the run's {SPACE}{changed}{tail}")


def write_settings(path: Path, info: RunInfo, columns: list[str], old: dict[str, Any] | None) -> None:
    """Write run.json (atomically): a new run's settings, or, resuming (``old``
    the run's run.json), the original ones with this resume's changes added."""
    doc = {
        "problem": info.problem,
        "problem_name": info.problem_name,
        "fingerprint": info.fingerprint,
        "method": info.method,
        "columns": columns,
        "settings": info.settings,
    }
    if info.budget is not None:
        doc["budget"] = info.budget
    if info.objectives:
        doc["objectives"] = info.objectives
        doc["directions"] = list(info.directions or ["max"] * len(info.objectives))
    doc.update(info.where)  # the latest run's (a resume may run on another MPI, another launcher)
    jobs = scheduler_jobs(old)
    if jobs:  # each job of a chain adds its own, kept across resumes
        doc["scheduler_jobs"] = jobs
    if old is not None:
        # The original settings stay; each resume adds what it changed (a
        # larger --max-evals, another --seed or --kappa) to the history.
        doc["settings"] = old.get("settings", {})
        was = effective_settings(old)
        changed = {k: v for k, v in _plain(info.settings).items() if was.get(k, None) != v}
        doc["created"] = old.get("created")
        for key in ("resumed",):  # run directories of older versions
            if key in old:
                doc[key] = old[key]
        doc["resumes"] = old.get("resumes", []) + [{"at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                    "changed": changed}]
    else:
        doc["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise RecorderError(f"cannot write {path}: {exc.strerror}") from None

