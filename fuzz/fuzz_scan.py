"""atheris target: FrameScanner: compiled vs reference on one frame.

See fuzz/harness.py (check_scan) for what is checked, fuzz/README.md for how to run.
"""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH

from fuzz._driver import main

if __name__ == "__main__":
    main("scan")
