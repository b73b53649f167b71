"""``python -m bookengine``: the same as the ``bookengine`` command."""

import sys

from .cli import main

sys.exit(main())
