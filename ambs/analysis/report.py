"""A run's self-contained HTML report: the summary, the best configuration,
the top-k table, importance and every plot, embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ambs.analysis.canvas import run_title
from ambs.analysis.hp_importance import importance
from ambs.analysis.load import Run
from ambs.analysis.metrics import fmt, fmt_seconds, summarize, top_k
from ambs.analysis.plots import plot_run
from ambs.analysis.space import at_budget
from ambs.errors import AnalysisError

__all__ = ["write_report"]

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5em 0 1.5em}.note{color:#666}"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(run: Run, out: str | Path | None = None, k: int = 10) -> Path:
    """A self-contained HTML page (plots embedded as base64) with the summary,
    the best configuration, the top-k table, importance and all plots.
    Written to ``report.html`` in the run directory unless ``out`` is given."""
    import tempfile

    out_path = Path(out) if out is not None else run.directory / "report.html"
    s = summarize(run, k=k)
    e = html.escape
    rows = [("source", s["source"]), ("problem", s["problem"] or "-"), ("method", s["method"] or "-"),
            ("evaluations", f"{s['evaluations']} (" + ", ".join(f"{n} {st}" for st, n in
                                                               s["by_status"].items()) + ")"),
            ("best objective" + at_budget(run.settings, s["ranked_at"]),
             fmt(s["best"]["objective"], 10) if s["best"] else "none"),
            ("time to the best", fmt_seconds(s["best"]["time"]) if s["best"] else "-"),
            ("evaluation of the best", s["best"]["evaluation"] if s["best"] else "-"),
            ("wall time", fmt_seconds(s["wall_time"])),
            ("evaluations per hour", fmt(s["evaluations_per_hour"], 4)),
            ("median evaluation time", fmt_seconds(s["median_duration"])),
            ("workers", f"{s['workers']}" + (" (inferred)" if s["workers_inferred"] else "")),
            ("utilization", "-" if s["utilization"] is None else
             f"{s['utilization']:.1%} ({s['utilization_after_start']:.1%} after the first start)")]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ambs report: "
             f"{e(run_title(run))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Run report: {e(run_title(run))}</h1>", "<h2>Summary</h2><table>"]
    parts += [f"<tr><th>{e(str(a))}</th><td>{e(str(b))}</td></tr>" for a, b in rows]
    parts.append("</table>")
    if s["best"]:
        parts.append("<h2>Best configuration</h2><table>")
        parts += [f"<tr><th>{e(str(a))}</th><td>{e(repr(b))}</td></tr>" for a, b in s["best"]["config"].items()]
        parts.append("</table>")
        parts.append(f"<h2>Top {len(s['top'])}</h2>")
        parts.append(top_k(run, k).to_html(index=False, float_format=lambda x: f"{x:.6g}", na_rep="",
                                           border=0))
    if s["errors"]:
        parts.append("<h2>Most frequent errors</h2><table><tr><th>error</th><th>count</th></tr>")
        parts += [f"<tr><td>{e(x['error'])}</td><td>{x['count']}</td></tr>" for x in s["errors"]]
        parts.append("</table>")
    notes = list(s["notes"]) + (["skipped a half-written last line (run still in progress?)"]
                                if s["dropped_partial_line"] else [])
    try:
        imp = importance(run)
    except AnalysisError:
        imp = None
    with tempfile.TemporaryDirectory() as tmp:
        files, plot_notes = plot_run(run, tmp, imp)
        notes += plot_notes
        names = {f.name: f for f in files}
        sections = [("Best so far", "best_so_far.png"), ("Worker timeline", "timeline.png"),
                    ("Objective against each hyperparameter", "objective_vs_params.png"),
                    ("Hyperparameter importance", "importance.png")]
        for title, name in sections:
            if name in names:
                parts.append(f"<h2>{e(title)}</h2>{_img(names[name])}")
        if imp is not None:
            parts.append(imp.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text("\n".join(parts), encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return out_path
