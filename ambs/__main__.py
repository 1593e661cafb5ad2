"""``python -m ambs`` and the ``ambs`` command."""

from __future__ import annotations

import sys


def main() -> int:
    """Entry point: catch stop signals first, then load the command line."""
    from ambs import stopsignals

    stopsignals.catch()
    from ambs.cli import main as cli_main

    try:
        return cli_main()
    finally:
        stopsignals.ignore()


if __name__ == "__main__":
    sys.exit(main())
