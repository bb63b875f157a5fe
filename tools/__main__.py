"""`python -m tools COMMAND ...`: the host tools (see tools/cli.py)."""

import sys

from tools.cli import main

sys.exit(main())
