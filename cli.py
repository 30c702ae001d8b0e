"""Run genremap from a checkout: `python cli.py ...` is the same app as the `genremap` script."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genremap.cli import run

if __name__ == "__main__":
    run()
