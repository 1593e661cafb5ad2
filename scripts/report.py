#!/usr/bin/env python3
"""Write a self-contained HTML report of a run: ``python scripts/report.py RUN_DIR [--out FILE]``.

A thin wrapper over ambs.analysis (the same as ``ambs analyze report``).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ambs import analysis
from ambs.errors import AmbsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="report.py", description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN_DIR", help="run directory or results CSV")
    parser.add_argument("--out", metavar="FILE", default=None, help="HTML file (default: RUN_DIR/report.html)")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"{parser.prog}: warning: {message}\n"
    try:
        path = analysis.write_report(analysis.load_run(args.run), args.out)
    except AmbsError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
