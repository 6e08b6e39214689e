"""``python -m sam_db``: the same as the ``sam-db`` command."""

import sys

from .cli import main

sys.exit(main())
