"""The plots of a run (best so far, worker timeline, objective against each
hyperparameter and against the budget, importance, Pareto front) and of
several runs (best so far compared), as PNG files.

Every plot is a function of the loaded run(s); the figures are drawn with
matplotlib's Agg backend (:mod:`ambs.analysis.canvas`), without pyplot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ambs.analysis.budget import config_keys
from ambs.analysis.canvas import (
    OTHER_COLOR,
    STATUS_COLORS,
    figure,
    mark_below,
    percent,
    plain_axis,
    robust_ylim,
    run_title,
    save,
    time_scale,
)
from ambs.analysis.compare import compare_runs
from ambs.analysis.curves import curves_path, plot_curves
from ambs.analysis.frontplot import plot_hypervolume, plot_pareto
from ambs.analysis.hp_importance import importance
from ambs.analysis.load import STATUSES, Run
from ambs.analysis.metrics import (
    best_so_far,
    fmt_seconds,
    param_kinds,
    summarize,
    utilization,
    worker_intervals,
)
from ambs.analysis.pareto import declared
from ambs.analysis.space import at_budget, budget_name
from ambs.errors import AnalysisError

__all__ = ["plot_best_so_far", "plot_timeline", "plot_budget", "plot_params", "plot_importance", "plot_compare",
           "plot_run", "plot_pareto", "plot_hypervolume"]


def plot_best_so_far(run: Run, path: str | Path) -> Path:
    """Objective of every evaluation and the best so far, against wall time and
    against the evaluation count (two panels); failures as red ticks on the
    x-axis, far-off low values as grey triangles on it."""
    b = best_so_far(run)
    fig = figure(11, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    end = float(np.nanmax(b["time"])) if b["time"].notna().any() else math.nan
    scale, unit = time_scale(end)
    y = b["objective"].to_numpy(dtype=float)
    lim = robust_ylim(y, b["best"].to_numpy(dtype=float))
    failed = b[b["status"] != "ok"]
    below = 0
    for ax, xcol, xlabel in ((axes[0], "time", f"wall time since the run began ({unit})"),
                             (axes[1], "evaluation", "evaluations finished")):
        x = b[xcol].to_numpy(dtype=float) / (scale if xcol == "time" else 1.0)
        ax.scatter(x, y, s=14, color="#9ecae1", edgecolor="none", label="evaluation", zorder=2)
        ax.step(x, b["best"], where="post", color=STATUS_COLORS["ok"], lw=2, label="best so far", zorder=3)
        imp = b["improved"].to_numpy()
        ax.scatter(x[imp], b["best"][imp], s=22, color=STATUS_COLORS["ok"], zorder=4,
                   label="improvement")
        if len(failed):
            fx = failed[xcol].to_numpy(dtype=float) / (scale if xcol == "time" else 1.0)
            ax.plot(fx, np.zeros(len(fx)), "|", color=STATUS_COLORS["failed"], ms=12, mew=1.5,
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, linestyle="none",
                    label=f"not ok ({len(failed)}, on the axis)")
        if lim:
            ax.set_ylim(*lim)
            below = mark_below(ax, x, y, lim)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if xcol == "evaluation":
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("objective (higher is better)")
    handles, labels = axes[1].get_legend_handles_labels()
    if below:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="v", color="0.45", linestyle="none"))
        labels.append(f"below the y-axis ({below})")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    s = summarize(run, k=1)
    if s["best"]:
        fig.suptitle(f"{run_title(run)}: best{at_budget(run.settings, s['ranked_at'])}: "
                     f"{s['best']['objective']:.6g} after "
                     f"{fmt_seconds(s['best']['time'])} (evaluation {s['best']['evaluation']} of "
                     f"{s['evaluations']})")
    else:
        fig.suptitle(f"{run_title(run)}: no successful evaluation")
    return save(fig, path)


def plot_timeline(run: Run, path: str | Path) -> Path:
    """One row per worker, its evaluations as bars coloured by status; the title
    gives the utilization. Bars too short to see are widened to 0.2% of the axis."""
    iv = worker_intervals(run)
    util = utilization(run)
    n = int(iv["lane"].max()) + 1 if len(iv) else 1
    fig = figure(11, min(10.0, max(2.8, 1.5 + 0.32 * n)))
    ax = fig.subplots()
    t0 = min(0.0, util["start"]) if math.isfinite(util["start"]) else 0.0
    end = util["end"] if math.isfinite(util["end"]) else 1.0
    scale, unit = time_scale(end - t0)
    min_w = (end - t0) / 500
    dur = (iv["end"] - iv["start"]).to_numpy()
    widened = bool((dur < min_w).any())
    height = 0.8 if n < 60 else 1.0
    edges = n < 60
    for status, g in iv.groupby("status", sort=False):
        color = STATUS_COLORS.get(status, OTHER_COLOR)
        for lane, gl in g.groupby("lane"):
            d = (gl["end"] - gl["start"]).to_numpy()
            wide = d >= 4 * min_w  # white edges separate jobs, but would hide thin bars
            for sel, edge in ((wide, edges), (~wide, False)):
                spans = [(s_ / scale, max(w, min_w) / scale) for s_, w in zip(gl["start"][sel], d[sel])]
                if spans:
                    ax.broken_barh(spans, (lane - height / 2, height), facecolors=color,
                                   edgecolor="white" if edge else "none", linewidth=0.5 if edge else 0)
    first = float(iv["start"].min()) if len(iv) else math.nan
    if math.isfinite(first) and first - t0 > 0.05 * (end - t0):
        ax.axvspan(t0 / scale, first / scale, color="0.92", zorder=0)
        ax.text((t0 + first) / 2 / scale, (n - 1) / 2, "start-up:\nno evaluation running", ha="center",
                va="center", fontsize=9, color="0.4")
    workers = sorted(iv["worker"].unique()) if len(iv) else []
    prefix = "slot" if run.workers_inferred else "worker"
    step = 1 if n <= 30 else int(math.ceil(n / 25))
    ax.set_yticks(range(0, len(workers), step), [f"{prefix} {workers[i]}" for i in range(0, len(workers), step)])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(t0 / scale, end / scale * 1.01)
    xlabel = f"wall time since the run began ({unit})"
    if widened:
        xlabel += f"; evaluations shorter than {fmt_seconds(min_w)} are drawn {fmt_seconds(min_w)} wide"
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    statuses = set(iv["status"])
    present = [s for s in STATUSES if s in statuses] + sorted(statuses - set(STATUSES))
    handles = [Patch(color=STATUS_COLORS.get(s, OTHER_COLOR),
                     label=f"{s} ({int((iv['status'] == s).sum())})") for s in present]
    if handles:
        ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(handles),
                  fontsize=9, frameon=False, borderaxespad=0.2)
    u = util["utilization"]
    if math.isfinite(u):
        title = f"{run_title(run)}: {util['workers']} worker(s), utilization {percent(u)}"
        if math.isfinite(util["utilization_after_start"]):
            title += f" ({percent(util['utilization_after_start'])} from the first start)"
    else:
        title = f"{run_title(run)}: no timed evaluations"
    ax.set_title(title, loc="left", pad=6)
    return save(fig, path)


def plot_budget(run: Run, path: str | Path) -> Path:
    """Objective against budget: each configuration's results joined by a line
    (its promotions), rows where its training stopped early as crosses, the
    best result at the largest budget as a red star; log budget axis when the
    budgets span a factor of 4 or more."""
    ok = run.ok[run.ok["budget"].notna()]
    fig = figure(6.4, 4.4)
    ax = fig.subplots()
    if len(ok):
        if run.params:
            keys = config_keys(ok, [f"p:{n}" for n in run.params])
            for _, g in ok.groupby(keys, sort=False):
                if len(g) > 1:
                    g = g.sort_values("budget")
                    ax.plot(g["budget"], g["objective"], color="#bbbbbb", lw=0.7, zorder=1)
        stopped = ok["stopped"].astype(bool)
        ax.scatter(ok.loc[~stopped, "budget"], ok.loc[~stopped, "objective"], s=18, color="#4c78a8",
                   label="continued or at the full budget", zorder=2)
        ax.scatter(ok.loc[stopped, "budget"], ok.loc[stopped, "objective"], s=22, marker="x",
                   color="#e45756", label="stopped here", zorder=2)
        top = ok[ok["budget"] == ok["budget"].max()]
        i = top["objective"].idxmax()
        ax.scatter([top.at[i, "budget"]], [top.at[i, "objective"]], s=140, marker="*", color="red",
                   zorder=3, label="best at the largest budget")
        lo, hi = float(ok["budget"].min()), float(ok["budget"].max())
        if lo > 0 and hi / lo >= 4:
            ax.set_xscale("log")
        plain_axis(ax.xaxis, ok["budget"])
        lim = robust_ylim(ok["objective"].to_numpy(dtype=float))
        if lim is not None:
            ax.set_ylim(*lim)
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no successful evaluation", ha="center", va="center", transform=ax.transAxes)
    name = budget_name(run.settings)
    ax.set_xlabel(name)
    ax.set_ylabel("objective")
    ax.set_title(f"{run_title(run)}: objective against {name}")
    return save(fig, path)


def plot_params(run: Run, path: str | Path) -> Path:
    """Objective against each hyperparameter: a scatter coloured by evaluation
    order for numbers (log x-axis for log-scaled ones), box plots per level for
    categoricals; the best configuration is a red star, far-off low values are
    grey triangles on the x-axis."""
    import matplotlib.ticker as mticker

    kinds = param_kinds(run)
    ok = run.ok
    names = run.params
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = figure(4.0 * ncols + 0.9, 3.2 * nrows + 0.7)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    y = ok["objective"].to_numpy(dtype=float)
    lim = robust_ylim(y)
    order = ok.index.to_numpy()
    best_i = ok["objective"].idxmax() if len(ok) else None
    sc = None
    below = 0
    for ax, name in zip(axes, names):
        col = ok[f"p:{name}"]
        k = kinds[name]
        if k["kind"] == "numeric":
            act = col.notna().to_numpy()
            xs = col[act].to_numpy(dtype=float)
            sc = ax.scatter(xs, y[act], c=order[act], cmap="viridis", s=16, vmin=0,
                            vmax=max(1, len(run.data) - 1), edgecolor="none", alpha=0.85)
            if k["log"]:
                ax.set_xscale("log")
                plain_axis(ax.xaxis, xs, max_ticks=8)
            else:
                integer = len(xs) > 0 and bool(np.all(np.mod(xs, 1) == 0))
                ax.xaxis.set_major_locator(mticker.MaxNLocator(5, integer=integer))
                if len(xs) and xs.min() == xs.max():  # one value: a readable range around it
                    pad = 1.0 if integer else max(abs(xs[0]) * 0.1, 1e-3)
                    ax.set_xlim(xs[0] - pad, xs[0] + pad)
            if best_i is not None and pd.notna(ok.at[best_i, f"p:{name}"]):
                ax.plot(ok.at[best_i, f"p:{name}"], ok.at[best_i, "objective"], "*", color="red", ms=13,
                        mec="black", mew=0.5, zorder=5)
            hidden = mark_below(ax, xs, y[act], lim)
            below += hidden
            if hidden and hidden == act.sum():
                ax.text(0.5, 0.5, f"all {hidden} value(s) below the y-axis", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")
            inactive = int((~act).sum())
            ax.set_xlabel(name + (" (log scale)" if k["log"] else "")
                          + (f"; inactive in {inactive} of {len(col)}" if inactive else ""))
            if not act.any():
                ax.text(0.5, 0.5, "never active in a successful evaluation", ha="center", va="center",
                        transform=ax.transAxes, color="0.4")
        else:
            def _levels(c: pd.Series) -> pd.Series:
                return c.astype(object).where(c.notna(), "(inactive)").astype(str)

            levels = _levels(col)
            all_levels = _levels(run.data[f"p:{name}"])  # levels of failed evaluations too
            not_ok = all_levels[run.data["status"] != "ok"].value_counts()
            rank = {c: i for i, c in enumerate(k["order"] or [])}  # declared order, else sorted
            cats = sorted(all_levels.unique(), key=lambda c: (c == "(inactive)", rank.get(c, len(rank)), c))
            data = [y[(levels == c).to_numpy()] for c in cats]
            ax.boxplot(data, widths=0.5, showfliers=False, medianprops={"color": "black", "lw": 1.5},
                       zorder=4)  # over the points, which would hide it when there are many
            rng = np.random.default_rng(0)
            alpha = 0.5 if len(y) < 300 else 0.2
            for i, vals in enumerate(data, start=1):
                jx = i + rng.uniform(-0.15, 0.15, len(vals))
                ax.scatter(jx, vals, s=10, color=STATUS_COLORS["ok"], alpha=alpha, edgecolor="none", zorder=3)
                below += mark_below(ax, jx, vals, lim)
            labels = [f"{c}\n{len(v)} ok" + (f"\n{not_ok[c]} not ok" if c in not_ok else "")
                      for c, v in zip(cats, data)]
            ax.set_xticks(range(1, len(cats) + 1), labels, fontsize=8 if len(cats) > 4 else 9,
                          rotation=30 if len(cats) > 5 else 0)
            if best_i is not None:
                ax.plot(cats.index(levels.loc[best_i]) + 1, ok.at[best_i, "objective"], "*", color="red",
                        ms=13, mec="black", mew=0.5, zorder=5)
            ax.set_xlabel(name)
        if lim:
            ax.set_ylim(*lim)
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[: len(names)]):
        if i % ncols == 0:
            ax.set_ylabel("objective")
    if sc is not None:
        cb = fig.colorbar(sc, ax=list(axes[: len(names)]), shrink=0.8, aspect=30, pad=0.01)
        cb.set_label("evaluation (finish order)")
    if not names:
        axes[0].text(0.5, 0.5, "no hyperparameter columns", ha="center", va="center")
    note = "; grey triangles: values below the y-axis" if below else ""
    fig.suptitle(f"{run_title(run)}: objective of the {len(ok)} successful evaluations against each "
                 f"hyperparameter\n(red star: the best{note})")
    return save(fig, path)


def plot_importance(run: Run, path: str | Path, table: pd.DataFrame | None = None) -> Path:
    """Horizontal bars of :func:`importance` (largest on top), with their spread."""
    t = importance(run) if table is None else table
    fig = figure(8, max(2.6, 1.4 + 0.38 * len(t)))
    ax = fig.subplots()
    t = t.iloc[::-1]
    ax.barh(t["parameter"], t["importance"], xerr=t["std"], color=STATUS_COLORS["ok"],
            error_kw={"ecolor": "0.3", "capsize": 3, "lw": 1})
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("share of the objective's variance lost when the hyperparameter is shuffled\n"
                  "(random forest, held-out folds; error bars: standard deviation)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{run_title(run)}: hyperparameter importance ({len(run.ok)} successful evaluations)",
                 loc="left")
    return save(fig, path)


def plot_compare(runs: Sequence[Run], path: str | Path) -> Path:
    """Median best-so-far per label with the interquartile band, against wall
    time and against the evaluation count."""
    fig = figure(11, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    by_time = compare_runs(runs, by="time")
    by_evals = compare_runs(runs, by="evaluations")
    scale, unit = time_scale(float(by_time["x"].max()))
    counts = pd.Series([r.label for r in runs]).value_counts()
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]
    for ax, df, xlabel, sx in ((axes[0], by_time, f"wall time since the run began ({unit})", scale),
                               (axes[1], by_evals, "evaluations finished", 1.0)):
        for i, (label, g) in enumerate(df.groupby("label", sort=False)):
            c = colors[i % len(colors)]
            x = g["x"].to_numpy() / sx
            nr = counts[label]
            ax.plot(x, g["median"], color=c, lw=2, drawstyle="steps-post",
                    label=f"{label}: median of {nr} run(s)" + (", IQR band" if nr > 1 else ""))
            if nr > 1:
                ax.fill_between(x, g["q25"], g["q75"], color=c, alpha=0.2, lw=0, step="post")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("best objective so far")
    allv = pd.concat([by_time[["q25", "q75", "median"]], by_evals[["q25", "q75", "median"]]])
    v = allv.to_numpy(dtype=float).ravel()
    v = v[np.isfinite(v)]
    if len(v):  # every curve and band whole, with a margin
        pad = 0.05 * (v.max() - v.min()) or 0.05 * max(abs(v.max()), 1.0)
        axes[0].set_ylim(v.min() - pad, v.max() + pad)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(handles)), fontsize=9,
               frameon=False)
    fig.suptitle(f"best objective so far across {len(runs)} run(s): median and interquartile range "
                 "per label")
    return save(fig, path)


def plot_run(run: Run, out_dir: str | Path,
             importance_table: pd.DataFrame | None = None) -> tuple[list[Path], list[str]]:
    """All plots of one run into ``out_dir``; returns the files and notes on
    plots that were left out (e.g. too few results for importance)."""
    out = Path(out_dir)
    files = [plot_best_so_far(run, out / "best_so_far.png"), plot_timeline(run, out / "timeline.png")]
    notes = []
    if run.params:
        files.append(plot_params(run, out / "objective_vs_params.png"))
    if "budget" in run.data and run.data["budget"].notna().any():
        files.append(plot_budget(run, out / "objective_vs_budget.png"))
    try:
        files.append(plot_importance(run, out / "importance.png", importance_table))
    except AnalysisError as exc:
        notes.append(f"no importance plot: {exc}")
    if curves_path(run) is not None:
        files.append(plot_curves(run, out / "learning_curves.png"))
    if "m:objectives" in run.data.columns or declared(run):
        try:
            files.append(plot_pareto(run, out / "pareto.png"))
            files.append(plot_hypervolume(run, out / "hypervolume.png"))
        except AnalysisError as exc:
            notes.append(f"no Pareto plot: {exc}")
    return files, notes
