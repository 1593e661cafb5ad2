#!/usr/bin/env python3
"""Write the PNG plots of a run: ``python scripts/plot.py RUN_DIR [--out DIR]``.

A thin wrapper over ambs.analysis (the same as ``ambs analyze plot``).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ambs import analysis
from ambs.errors import AmbsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plot.py", description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN_DIR", help="run directory or results CSV")
    parser.add_argument("--out", metavar="DIR", default=None, help="where the PNGs go (default: RUN_DIR/plots)")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"{parser.prog}: warning: {message}\n"
    try:
        run = analysis.load_run(args.run)
        files, notes = analysis.plot_run(run, args.out or run.directory / "plots")
    except AmbsError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"{parser.prog}: note: {note}", file=sys.stderr)
    for f in files:
        print(f"wrote {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
