"""The ``bookengine`` command (and ``python -m bookengine``): :func:`bookengine.cli.main`."""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Run the command line, with OpenBLAS on one thread unless the caller chose otherwise.

    numpy's OpenBLAS starts a worker thread per core when it loads, and they spin idle for a
    while: about 0.1 s of CPU for every command on this machine, for linear algebra no command
    does. The variable must be set before numpy loads, so before the CLI's imports.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
