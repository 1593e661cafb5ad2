"""Fault campaign: many small searches, each hit by a random fault, then resumed;
afterwards, each run directory is checked for lost and repeated evaluations.

Not a test (it takes minutes). Each trial writes a small problem whose ``run``
sleeps a random short time and sometimes returns something malformed (NaN, a
string, an exception, a 300 KB error text); every evaluation that finishes
appends its configuration to a side log (O_APPEND), tagged with the
invocation that ran it. The search runs under a random evaluator (serial or
process) and gets one random fault:

* ``none``: it runs to its end;
* ``kill9``: kill -9 of the master at a random moment, then ``--resume``;
* ``sigterm``: SIGTERM of the master, then ``--resume``;
* ``kill9-worker``: kill -9 of one worker process (process evaluator), the
  search goes on;
* ``disk-full``: the run directory on a 16 KB tmpfs (a page each for run.lock,
  run.json, space.json and results.csv, which a 10 KB error row overflows) (``mount -t tmpfs``,
  root only; skipped with a note where it cannot be mounted), made larger
  after the search stops on the full disk, then ``--resume``.

Checks, per trial: *lost*: an evaluation that finished (side log) with no row
in the final CSV, beyond those a kill -9 or a full disk may leave in flight
(at most one per worker); *repeated*: a configuration run again after it was
recorded, or twice in the CSV; *tracebacks*: "Traceback" on any stderr;
*incomplete*: a final CSV without --max-evals rows of distinct job ids.

    python bench/fault_campaign.py --trials 50            # under a new temporary directory
    python bench/fault_campaign.py --trials 5 --seed 3 --workdir /tmp/campaign --keep
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBLEM = '''
import math
import os
import random
import time

from ambs import Problem

problem = Problem(name="campaign")
problem.add_hyperparameter(["a", "b", "c", "d", "e"], "cat")
problem.add_hyperparameter((1, 400), "n")
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "executed.log")


def _done(config):
    line = f"{os.environ.get('CAMPAIGN_INVOCATION', '?')} {config['cat']},{config['n']}\\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def run(config):
    rng = random.Random(f"{config['cat']}{config['n']}")
    time.sleep(rng.uniform(0.01, 0.15))
    kind = rng.random()
    _done(config)
    if kind < 0.08:
        return math.nan
    if kind < 0.16:
        return "not a number"
    if kind < 0.24:
        raise RuntimeError("bad configuration")
    if kind < 0.40:
        raise ValueError("x" * 300_000)
    return config["n"] / 400 + "abcde".index(config["cat"]) / 10
'''

FAULTS = ["none", "kill9", "sigterm", "kill9-worker", "disk-full"]


def _command(evaluator: str, max_evals: int, seed: int, run_dir: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "ambs", "search", "problem.py", "--method", "random", "--evaluator", evaluator,
            *(["--workers", "2"] if evaluator == "process" else []), "--max-evals", str(max_evals),
            "--seed", str(seed), "-o", str(run_dir), "-q", *(["--resume"] if resume else [])]


def _env(invocation: int) -> dict[str, str]:
    env = dict(os.environ, CAMPAIGN_INVOCATION=str(invocation), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return env


def _rows(csv_path: Path) -> list[dict[str, str]]:
    """The complete rows of a results CSV."""
    if not csv_path.exists():
        return []
    text = csv_path.read_text()
    text = text[: text.rfind("\n") + 1]
    csv.field_size_limit(sys.maxsize)
    return list(csv.DictReader(text.splitlines()))


def _key(row: dict[str, str]) -> str:
    return f"{row['p:cat']},{row['p:n']}"


def _executed(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        inv, _, key = line.partition(" ")
        out.append((int(inv), key))
    return out


def _workers_of(pid: int) -> list[int]:
    """The worker processes (multiprocessing spawn) among the children of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == pid and b"spawn_main" in cmd:
            out.append(int(entry))
    return out


def _mount(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` on ``where``; the reason it failed, or None."""
    where.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    return None if res.returncode == 0 else (res.stderr.strip() or f"exit {res.returncode}")


def _wait_rows(csv_path: Path, n: int, proc: subprocess.Popen, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_rows(csv_path)) >= n:
            return
        time.sleep(0.02)


def trial(i: int, rng: random.Random, base: Path, max_evals: int, notes: list[str]) -> dict[str, object]:
    """One search, one fault, a resume if needed; what the checks found."""
    work = base / f"trial{i:03d}"
    work.mkdir(parents=True)
    (work / "problem.py").write_text(PROBLEM.lstrip())
    evaluator = rng.choice(["serial", "process"])
    fault = rng.choice(FAULTS)
    if fault == "kill9-worker" and evaluator == "serial":
        fault = "kill9"
    seed = rng.randrange(10**6)
    run_dir = work / "run"
    mounted = None
    if fault == "disk-full":
        why = _mount(work / "disk", "16k")
        if why is None:
            mounted = work / "disk"
            run_dir = mounted / "run"
        else:
            notes.append(f"trial {i}: no tmpfs ({why}); ran without a fault")
            fault = "none"
    workers = 2 if evaluator == "process" else 1
    stderr: list[str] = []
    in_flight_allowed: dict[int, int] = {}
    filled = 0
    rows_before: dict[int, set[str]] = {}
    invocation = 0
    try:
        for invocation in (1, 2, 3):
            resume = (run_dir / "run.json").exists()
            rows_before[invocation] = {_key(r) for r in _rows(run_dir / "results.csv")}
            proc = subprocess.Popen(_command(evaluator, max_evals, seed, run_dir, resume), cwd=work,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=_env(invocation))
            faulted = invocation == 1 and fault in ("kill9", "sigterm", "kill9-worker")
            if faulted:
                if rng.random() < 0.8:
                    _wait_rows(run_dir / "results.csv", rng.randint(1, max_evals - 2), proc)
                    time.sleep(rng.uniform(0.0, 0.3))
                else:
                    time.sleep(rng.uniform(0.2, 2.0))
                if proc.poll() is None:
                    if fault == "kill9":
                        proc.kill()
                        in_flight_allowed[invocation] = workers
                    elif fault == "sigterm":
                        proc.send_signal(signal.SIGTERM)
                    else:
                        pids = _workers_of(proc.pid)
                        if pids:
                            os.kill(rng.choice(pids), signal.SIGKILL)
            try:
                _, err = proc.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                err += "\n(campaign: the search hung and was killed)"
            stderr.append(err)
            if mounted is not None and proc.returncode == 1 and "No space left on device" in err:
                in_flight_allowed[invocation] = workers
                filled = 1
                subprocess.run(["mount", "-o", "remount,size=8m", str(mounted)], check=True)
                continue
            if proc.returncode == 0 and len(_rows(run_dir / "results.csv")) >= max_evals:
                break
        final = _rows(run_dir / "results.csv")
        keys = [_key(r) for r in final]
        recorded = set(keys)
        executed = _executed(work / "executed.log")
        by_inv: dict[int, list[str]] = defaultdict(list)
        for inv, key in executed:
            by_inv[inv].append(key)
        lost = 0
        for inv, ks in by_inv.items():
            missing = sum(1 for k in ks if k not in recorded)
            lost += max(0, missing - in_flight_allowed.get(inv, 0))
        repeated = len(keys) - len(recorded)
        for inv, ks in by_inv.items():
            repeated += sum(1 for k in ks if k in rows_before.get(inv, set()))
        incomplete = int(len(final) != max_evals or len({r["job_id"] for r in final}) != len(final))
        tracebacks = sum("Traceback" in e for e in stderr)
        return {"fault": fault, "evaluator": evaluator, "lost": lost, "repeated": repeated,
                "tracebacks": tracebacks, "incomplete": incomplete, "invocations": invocation, "filled": filled,
                "stderr": [e for e in stderr if "Traceback" in e][:1]}
    finally:
        if mounted is not None:
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50, help="number of trials (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the campaign (default: 0)")
    parser.add_argument("--max-evals", type=int, default=12, help="evaluations per search (default: 12)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the trials' directories go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the trials' directories")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.max_evals < 4:
        parser.error("--trials must be at least 1 and --max-evals at least 4")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="ambs-fault-campaign-"))
    base.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    notes: list[str] = []
    per_fault: dict[str, Counter] = defaultdict(Counter)
    total: Counter = Counter()
    t = time.monotonic()
    try:
        for i in range(args.trials):
            res = trial(i, rng, base, args.max_evals, notes)
            c = per_fault[f"{res['fault']}/{res['evaluator']}"]
            c["trials"] += 1
            c["disk filled"] += res["filled"]
            for k in ("lost", "repeated", "tracebacks", "incomplete"):
                c[k] += res[k]
                total[k] += res[k]
            total["trials"] += 1
            bad = any(res[k] for k in ("lost", "repeated", "tracebacks", "incomplete"))
            print(f"trial {i:3d}: {res['fault']:12s} {res['evaluator']:7s} invocations {res['invocations']} "
                  f"lost {res['lost']} repeated {res['repeated']} tracebacks {res['tracebacks']} "
                  f"incomplete {res['incomplete']}{'  <-- ' + base.name + f'/trial{i:03d}' if bad else ''}",
                  flush=True)
            for e in res["stderr"]:
                print("    " + e.strip().replace("\n", "\n    ")[-2000:])
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n{'fault/evaluator':22s} {'trials':>6s} {'lost':>5s} {'repeated':>8s} {'tracebacks':>10s} "
          f"{'incomplete':>10s}")
    for name in sorted(per_fault):
        c = per_fault[name]
        print(f"{name:22s} {c['trials']:6d} {c['lost']:5d} {c['repeated']:8d} {c['tracebacks']:10d} "
              f"{c['incomplete']:10d}")
    print(f"{'total':22s} {total['trials']:6d} {total['lost']:5d} {total['repeated']:8d} "
          f"{total['tracebacks']:10d} {total['incomplete']:10d}")
    filled = sum(c["disk filled"] for c in per_fault.values())
    tried = sum(c["trials"] for k, c in per_fault.items() if k.startswith("disk-full"))
    print(f"disk-full trials whose search met the full disk: {filled} of {tried}")
    for note in notes:
        print(f"note: {note}")
    print(f"{time.monotonic() - t:.0f} s; trial directories {'kept in ' + str(base) if args.keep else 'removed'}")
    return 1 if any(total[k] for k in ("lost", "repeated", "tracebacks", "incomplete")) else 0


if __name__ == "__main__":
    sys.exit(main())
