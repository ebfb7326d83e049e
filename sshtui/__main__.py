"""``python -m sshtui``: the same as the ``sshtui`` console script."""

import sys

from sshtui.cli import main

sys.exit(main())
