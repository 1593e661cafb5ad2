"""``python -m ambs``: the same command line as ``ambs``."""

import sys

from ambs.cli import main

sys.exit(main())
