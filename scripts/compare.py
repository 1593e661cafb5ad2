#!/usr/bin/env python3
"""Compare runs: ``python scripts/compare.py RUN_DIR... [--labels L...] [--out DIR]``.

Median and interquartile range of the best so far per label (default: each
run's method); compare.png goes into --out DIR, by default the directory that
holds the runs. A thin wrapper over ambs.analysis (as ``ambs analyze compare``).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from ambs import analysis
from ambs.errors import AmbsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compare.py", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or results CSVs")
    parser.add_argument("--labels", nargs="+", metavar="LABEL", default=None, help="one label per run")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where compare.png goes (default: the directory that holds the runs)")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"{parser.prog}: warning: {message}\n"
    try:
        runs = analysis.load_runs(args.runs, args.labels)
        out = Path(args.out) if args.out else Path(os.path.commonpath([str(r.directory.resolve().parent)
                                                                        for r in runs]))
        path = analysis.plot_compare(runs, out / "compare.png")
        table = analysis.compare_table(runs)
    except AmbsError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(analysis.format_compare(table))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
