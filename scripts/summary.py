#!/usr/bin/env python3
"""Print the summary of a run: ``python scripts/summary.py RUN_DIR [--json] [--top K]``.

A thin wrapper over ambs.analysis (the same as ``ambs analyze summary``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from ambs import analysis
from ambs.errors import AmbsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="summary.py", description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN_DIR", help="run directory or results CSV")
    parser.add_argument("--json", action="store_true", help="print it as JSON")
    parser.add_argument("--top", type=int, default=5, help="rows of the top table (default: 5)")
    parser.add_argument("--budget", type=float, default=None, metavar="B",
                        help="rank the evaluations that trained with budget B (default: the highest reached)")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"{parser.prog}: warning: {message}\n"
    try:
        run = analysis.load_run(args.run)
        summary = analysis.summarize(run, k=max(1, args.top), budget=args.budget)
    except AmbsError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2) if args.json else analysis.format_summary(summary, run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
