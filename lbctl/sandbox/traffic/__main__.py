"""`python -m lbctl.sandbox.traffic`: see `cli.py`."""

import sys

from .cli import main

sys.exit(main())
