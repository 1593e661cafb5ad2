"""The numbers of a loaded run: hyperparameter kinds, the best and the top
evaluations, best-so-far, worker intervals and utilization, and the summary
(a JSON-friendly dict, and as text).

Times are seconds since the run began. Utilization is the busy time of the
workers (the union of each worker's evaluation intervals) divided by
workers x wall time, wall time running from the run's start to the last
finished evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ambs.analysis.budget import budget_table, has_budgets, ranked_rows, ranking_budget
from ambs.analysis.load import STATUSES, Run
from ambs.analysis.pareto import front_summary
from ambs.analysis.space import at_budget, budget_text

__all__ = ["param_kinds", "top_k", "best_so_far", "worker_intervals", "utilization", "summarize",
           "format_summary", "fmt", "fmt_seconds"]


def _is_log_scaled(values: pd.Series) -> bool:
    """Positive values that look sampled on a log scale: spanning two decades or
    more with many in the lowest decade, or spanning more decades than a uniform
    sample of this size would (and not all piled up at the top)."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) < 3 or (v <= 0).any():
        return False
    lo, hi = v.min(), v.max()
    decades = math.log10(hi / lo)
    if decades < 2:
        return False
    if np.mean(v < hi / 10) >= 0.3:
        return True
    return decades >= math.log10(len(v)) + 1.5 and np.mean(v < math.sqrt(lo * hi)) >= 0.1


def param_kinds(run: Run) -> dict[str, dict[str, Any]]:
    """For each hyperparameter: kind (numeric/categorical), log scale, times
    active, and the order of its levels. Scale and order come from the run's
    space.json; without one (older runs, DeepHyper CSVs) the scale is guessed
    from the values and levels are sorted."""
    out = {}
    for name in run.params:
        col = run.data[f"p:{name}"]
        numeric = pd.api.types.is_numeric_dtype(col)
        declared = (run.space or {}).get(name)
        if declared is not None:
            log, order = numeric and declared["log"], declared["order"]
        else:
            log, order = numeric and _is_log_scaled(col), None
        out[name] = {"kind": "numeric" if numeric else "categorical", "log": bool(log),
                     "active": int(col.notna().sum()), "order": order,
                     "scale_from": "space" if declared is not None else "values"}
    return out


def _py(v: Any) -> Any:
    """A JSON-friendly Python value (NaN -> None, numpy scalars -> Python)."""
    if isinstance(v, dict):
        return {str(k): _py(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (TypeError, ValueError):
            pass
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v.is_integer() and abs(v) < 2**53:
            return v
    return v


def _config(run: Run, row: pd.Series) -> dict[str, Any]:
    cfg = {}
    for name in run.params:
        v = row[f"p:{name}"]
        if isinstance(v, float) and math.isnan(v):
            continue  # inactive conditional hyperparameter
        col = run.data[f"p:{name}"].dropna()
        if isinstance(v, float) and v.is_integer() and col.map(float.is_integer).all():
            v = int(v)
        elif isinstance(v, str) and set(col) <= {"True", "False"}:
            v = v == "True"  # a boolean categorical, written as True/False
        cfg[name] = _py(v)
    return cfg


def _ranked(run: Run, budget: float | None = None) -> pd.DataFrame:
    """The ok rows at the ranking budget (see :func:`ranking_budget`), best
    first (ties: the earlier one first)."""
    return ranked_rows(run, budget).sort_values(["objective", "finished"], ascending=[False, True], kind="stable")


def top_k(run: Run, k: int = 5, budget: float | None = None) -> pd.DataFrame:
    """The k best successful evaluations at the ranking budget: job_id,
    objective, budget (when the run has budgets), finished, hyperparameters."""
    ok = _ranked(run, budget).head(k)
    cols = (["job_id", "objective"] + (["budget"] if has_budgets(run.data) else []) + ["finished"]
            + [f"p:{n}" for n in run.params])
    out = ok[cols].rename(columns={f"p:{n}": n for n in run.params}).reset_index(drop=True)
    out["job_id"] = out["job_id"].astype("Int64")
    return out


def best_so_far(run: Run) -> pd.DataFrame:
    """Best objective so far, by finish order: evaluation (1..n), time, objective, status, best.

    ``best`` is NaN until the first successful evaluation; ``improved`` marks
    the evaluations that raised it.
    """
    d = run.data
    best = d["objective"].cummax().ffill()  # a failure keeps the best so far
    prev = best.shift(1)
    improved = d["objective"].notna() & (prev.isna() | (d["objective"] > prev))
    return pd.DataFrame({
        "evaluation": np.arange(1, len(d) + 1),
        "time": d["finished"].to_numpy(),
        "objective": d["objective"].to_numpy(),
        "status": d["status"].to_numpy(),
        "best": best.to_numpy(),
        "improved": improved.to_numpy(),
    })


def worker_intervals(run: Run) -> pd.DataFrame:
    """One row per timed evaluation: worker, lane (0..), job_id, start, end, status."""
    d = run.data
    ok = d["started"].notna() & d["finished"].notna() & d["worker"].notna()
    iv = pd.DataFrame({
        "worker": d.loc[ok, "worker"].astype(int),
        "job_id": d.loc[ok, "job_id"],
        "start": d.loc[ok, "started"],
        "end": np.maximum(d.loc[ok, "finished"], d.loc[ok, "started"]),
        "status": d.loc[ok, "status"],
    })
    lanes = {w: i for i, w in enumerate(sorted(iv["worker"].unique()))}
    iv["lane"] = iv["worker"].map(lanes).astype(int)
    return iv.sort_values(["lane", "start"], kind="stable").reset_index(drop=True)


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(zip(starts, ends)):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return float(total)


def utilization(run: Run) -> dict[str, float]:
    """Workers, wall time, busy time and utilization = busy / (workers x wall).

    ``utilization_after_start`` measures from the first evaluation's start
    instead of the run's start, leaving out the workers' start-up.
    """
    iv = worker_intervals(run)
    times = run.data[["submitted", "started", "finished"]].to_numpy(dtype=float)
    if iv.empty or not np.isfinite(times).any():
        return {"workers": 0, "wall_time": math.nan, "busy_time": math.nan, "utilization": math.nan,
                "utilization_after_start": math.nan, "start": math.nan, "end": math.nan}
    start = min(0.0, float(np.nanmin(times)))
    end = float(np.nanmax(run.data["finished"]))
    busy = sum(_union_length(g["start"].to_numpy(), g["end"].to_numpy()) for _, g in iv.groupby("worker"))
    workers = int(iv["worker"].nunique())
    wall = end - start
    first = float(iv["start"].min())
    util = busy / (workers * wall) if wall > 0 else math.nan
    after = busy / (workers * (end - first)) if end > first else math.nan
    return {"workers": workers, "wall_time": wall, "busy_time": busy, "utilization": util,
            "utilization_after_start": after, "start": start, "end": end}


def _common_errors(run: Run, n: int = 5) -> list[dict[str, Any]]:
    """The most frequent error messages of the evaluations that were not ok."""
    if "error" not in run.data:
        return []
    bad = run.data[run.data["status"] != "ok"]
    msgs = bad["error"].dropna().astype(str).map(lambda m: (m.strip().splitlines() or [""])[-1])
    counts = msgs[msgs != ""].value_counts().head(n)
    return [{"error": str(m), "count": int(c)} for m, c in counts.items()]


def _best_row(run: Run, i: Any) -> dict[str, Any]:
    row = run.data.loc[i]
    out = {"objective": float(row["objective"]), "job_id": _py(row["job_id"]),
           "evaluation": int(i) + 1, "time": _py(float(row["finished"])), "config": _config(run, row)}
    if has_budgets(run.data):
        out["budget"] = _py(float(row["budget"]))
    return out


def _final_step(settings: dict[str, Any]) -> float | None:
    """The step a training that runs to its end reaches: --stop-final-step, else
    the budget it trains with (--max-budget, the problem's), else unknown."""
    from ambs.recorder import effective_settings

    inner = effective_settings(settings) if isinstance(settings.get("settings"), dict) else {}
    budget = settings.get("budget") if isinstance(settings.get("budget"), dict) else {}
    for v in (inner.get("stop_final_step"), inner.get("max_budget"), budget.get("default")):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return float(v)
    return None


def early_stops(run: Run) -> dict[str, Any] | None:
    """Evaluations a stop rule stopped (their CSV's ``stopped`` step) and the
    steps that saved, when the final step is known; None when there are none."""
    at = run.data["stopped_step"].dropna() if "stopped_step" in run.data else []
    if len(at) == 0:
        return None
    final = _final_step(run.settings)
    if final is None:
        return {"count": int(len(at)), "final_step": None, "steps_saved": None, "steps_full": None}
    # Each was to train to the final step, or to its own budget when a multi-fidelity
    # method gave it a smaller one (ASHA at 7 of 20 epochs saves at most 7 - step).
    budget = run.data["budget"].reindex(at.index) if "budget" in run.data else None
    full = at * 0 + final if budget is None else budget.where(budget.notna(), final).clip(upper=final)
    saved = float((full - at).clip(lower=0).sum())
    return {"count": int(len(at)), "final_step": final, "steps_saved": saved, "steps_full": float(full.sum())}


def summarize(run: Run, k: int = 5, budget: float | None = None) -> dict[str, Any]:
    """The numbers of a run as a JSON-friendly dict (see :func:`format_summary`).

    ``best`` and ``top`` rank the evaluations at :func:`ranking_budget`
    (``ranked_at``: the highest budget reached in a multi-fidelity run, or
    ``budget``); ``best_any_budget`` is the best over all budgets when it is
    another evaluation.
    """
    d = run.data
    counts = d["status"].value_counts()
    by_status = {s: int(counts[s]) for s in STATUSES if s in counts}
    by_status.update({s: int(n) for s, n in counts.items() if s not in by_status})
    util = utilization(run)
    ranked = _ranked(run, budget)
    best = best_any = None
    if not ranked.empty:
        best = _best_row(run, ranked.index[0])  # first of equal maxima in finish order
        j = run.ok["objective"].idxmax()
        if j != ranked.index[0] and run.ok.at[j, "objective"] > best["objective"]:
            best_any = _best_row(run, j)
    dur = (d["finished"] - d["started"]).dropna()
    wall = util["wall_time"]
    return _py({
        "source": str(run.source),
        "label": run.label,
        "problem": run.settings.get("problem_name") or run.settings.get("problem"),
        "method": run.settings.get("method"),
        "style": run.style,
        "evaluations": int(len(d)),
        "by_status": by_status,
        "best": best,
        "front": front_summary(run, config_of=lambda row: _config(run, row), budget=budget),
        "ranked_at": ranking_budget(run, budget),
        "best_any_budget": best_any,
        "top": [{"job_id": _py(r["job_id"]), "objective": float(r["objective"]), "config": _config(run, r)}
                | ({"budget": float(r["budget"])} if has_budgets(run.data) else {})
                for _, r in ranked.head(k).iterrows()],
        "wall_time": wall,
        "evaluations_per_hour": len(d) / wall * 3600 if wall and wall > 0 else None,
        "median_duration": float(dur.median()) if len(dur) else None,
        "workers": util["workers"],
        "workers_inferred": run.workers_inferred,
        "busy_time": util["busy_time"],
        "utilization": util["utilization"],
        "utilization_after_start": util["utilization_after_start"],
        "errors": _common_errors(run),
        "budgets": budget_table(run).to_dict("records"),
        "early_stops": early_stops(run),
        "dropped_partial_line": run.dropped_partial_line,
        "notes": list(run.notes),
    })


def fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if 0 < abs(s) < 0.1:
        return f"{s * 1000:.2g} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def format_summary(summary: dict[str, Any], run: Run | None = None) -> str:
    """The summary as a few lines of text; with ``run``, the top-k table too."""
    s = summary
    what = ", ".join(x for x in (s.get("problem"), s.get("method")) if x)
    lines = [f"run: {s['source']}" + (f" ({what})" if what else "")]
    counts = ", ".join(f"{n} {k}" for k, n in s["by_status"].items())
    lines.append(f"evaluations: {s['evaluations']} ({counts})")
    b = s["best"]
    at = at_budget(run.settings if run is not None else {}, s.get("ranked_at"))
    front = s.get("front")
    if front:
        heads = ", ".join(f"{o['name']} ({o['direction']})" for o in front["objectives"])
        ref = ", ".join(fmt(v) for v in front["reference"])
        lines.append(f"Pareto front of {heads}: {front['size']} of {front['successful']} successful evaluations{at}; "
                     f"hypervolume {fmt(front['hypervolume'])} up to ({ref})")
        for m in front["members"]:
            values = ", ".join(f"{k}={fmt(v)}" for k, v in m["objectives"].items())
            lines.append(f"  job {m['job_id']}: {values}; " + ", ".join(f"{k}={v!r}" for k, v in m["config"].items()))
        if front["size"] > len(front["members"]):
            lines.append(f"  ... {front['size'] - len(front['members'])} more: ambs analyze pareto")
    elif b:
        lines.append(f"best objective{at}: {fmt(b['objective'], 10)} (job {b['job_id']}, evaluation "
                     f"{b['evaluation']}, after {fmt_seconds(b['time'])})")
        lines.append("best configuration: " + ", ".join(f"{k}={v!r}" for k, v in b["config"].items()))
        a = s.get("best_any_budget")
        if a:
            lines.append(f"best at any budget: {fmt(a['objective'], 10)} (job {a['job_id']}, budget "
                         f"{budget_text(a['budget'])}; a lower budget is a cheaper, noisier objective; "
                         "--budget B ranks at another budget)")
    else:
        lines.append("best objective: none (no evaluation succeeded)")
    rate = s["evaluations_per_hour"]
    lines.append(f"wall time: {fmt_seconds(s['wall_time'])}; "
                 f"{fmt(rate, 4)} evaluations/hour; median evaluation {fmt_seconds(s['median_duration'])}")
    if s["workers"]:
        inferred = " (inferred)" if s["workers_inferred"] else ""
        lines.append(f"workers: {s['workers']}{inferred}; utilization {s['utilization']:.1%} "
                     f"({s['utilization_after_start']:.1%} after the first evaluation started)")
    for b in s.get("budgets") or []:
        parts = [f"{b['evaluations']} evaluations"]
        if b["stopped"]:
            parts.append(f"{b['stopped']} not promoted further")
        if b.get("rule_stopped"):
            parts.append(f"{b['rule_stopped']} stopped in training by a stop rule")
        lines.append(f"budget {budget_text(b['budget'])}: {', '.join(parts)}, "
                     f"best {fmt(b['best'])}, median {fmt(b['median'])}")
    stops = s.get("early_stops")
    if stops:
        saved = (f", saving {fmt(stops['steps_saved'])} of {fmt(stops['steps_full'])} steps"
                 if stops["steps_saved"] is not None else "")
        lines.append(f"stopped early by a stop rule: {stops['count']} evaluations{saved}")
    if s["dropped_partial_line"]:
        lines.append("note: skipped a half-written last line (run still in progress?)")
    for e in s["errors"]:
        lines.append(f"error ({e['count']}x): {e['error']}")
    lines.extend(f"note: {n}" for n in s["notes"])
    if run is not None and s["best"] and not front:
        table = top_k(run, len(s["top"]), s.get("ranked_at"))
        lines.append(f"top {len(table)}{at}:")
        budgets = {"budget": budget_text} if "budget" in table else {}
        lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.6g}", formatters=budgets))
    return "\n".join(lines)
