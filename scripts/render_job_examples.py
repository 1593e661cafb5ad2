#!/usr/bin/env python3
"""Write the ready job scripts in slurm/ and pbs/ from ambs's templates.

Run from the repository root after changing ambs/templates/*.sh.
"""

from __future__ import annotations

from pathlib import Path

from ambs.submit import EXAMPLES, render


def main() -> None:
    for rel, spec in EXAMPLES.items():
        path = Path(rel)
        path.parent.mkdir(exist_ok=True)
        path.write_text(render(spec))
        path.chmod(0o755)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
