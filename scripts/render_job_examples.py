#!/usr/bin/env python3
"""Write the ready job scripts in ROOT/slurm/ and ROOT/pbs/ from ambs's templates.

Run ``python scripts/render_job_examples.py .`` from the repository root after
changing ambs/templates/*.sh (tests/test_submit.py checks that they are in sync);
``--check`` writes nothing and exits 1 when one is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ambs.submit import EXAMPLES, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="render_job_examples.py", description=__doc__.splitlines()[0])
    parser.add_argument("root", metavar="ROOT", type=Path,
                        help="the repository root, which holds slurm/ and pbs/")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a script is out of date")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root} is not a directory")
    stale = []
    for rel, spec in EXAMPLES.items():
        path = args.root / rel
        text = render(spec)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
        print(f"wrote {path}")
    for path in stale:
        print(f"{path} is out of date: run python scripts/render_job_examples.py {args.root}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
