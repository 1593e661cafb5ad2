"""Post-processing of a run's ``results.csv``: summaries, plots and comparisons.

Everything here is a function of the CSV (and ``run.json`` and ``space.json``
when they are next to it); nothing needs the problem module. Summaries need
pandas, numpy and scikit-learn; the ``plot_*`` functions and
:func:`write_report` import matplotlib when called and draw with its Agg
backend, without touching pyplot's global state.

Reads ambs runs, runs still in progress (a half-written last line is
skipped) and DeepHyper-style CSVs. The modules, by concept:

* :mod:`~ambs.analysis.load`: finding and reading a run into a :class:`Run`,
  through the reader of :mod:`ambs.cells` and the recorder's schema;
* :mod:`~ambs.analysis.space`, :mod:`~ambs.analysis.budget`: what
  ``space.json`` and ``run.json`` say, and the budgets in the rows;
* :mod:`~ambs.analysis.metrics`: summaries, best-so-far, utilization;
  :mod:`~ambs.analysis.hp_importance`; :mod:`~ambs.analysis.compare` (several runs);
  :mod:`~ambs.analysis.pareto` (several objectives);
* :mod:`~ambs.analysis.plots` (on :mod:`~ambs.analysis.canvas`) and
  :mod:`~ambs.analysis.report` (HTML).

The public names are all here: ``from ambs import analysis;
analysis.summarize(analysis.load_run(run_dir))``.
"""

from __future__ import annotations

from ambs.analysis.budget import budget_table, ranking_budget
from ambs.analysis.compare import compare_runs, compare_table, format_compare
from ambs.analysis.hp_importance import importance
from ambs.analysis.load import Run, load_run, load_runs
from ambs.analysis.metrics import (
    best_so_far,
    format_summary,
    param_kinds,
    summarize,
    top_k,
    utilization,
    worker_intervals,
)
from ambs.analysis.pareto import (
    default_reference,
    format_front,
    hypervolume_trace,
    objectives_frame,
    pareto_front,
)
from ambs.analysis.plots import (
    plot_best_so_far,
    plot_budget,
    plot_compare,
    plot_hypervolume,
    plot_importance,
    plot_params,
    plot_pareto,
    plot_run,
    plot_timeline,
)
from ambs.analysis.report import write_report
from ambs.analysis.space import at_budget
from ambs.errors import AnalysisError

__all__ = [
    "AnalysisError",
    "Run",
    "load_run",
    "load_runs",
    "param_kinds",
    "summarize",
    "format_summary",
    "top_k",
    "budget_table",
    "ranking_budget",
    "at_budget",
    "best_so_far",
    "worker_intervals",
    "utilization",
    "importance",
    "compare_runs",
    "compare_table",
    "format_compare",
    "plot_best_so_far",
    "plot_timeline",
    "plot_params",
    "plot_budget",
    "plot_importance",
    "plot_compare",
    "plot_run",
    "write_report",
    "objectives_frame",
    "pareto_front",
    "hypervolume_trace",
    "default_reference",
    "format_front",
    "plot_hypervolume",
    "plot_pareto",
]
