"""``python -m pygwire``: the ``pygwire`` command."""

import sys

from .cli import main

sys.exit(main())
