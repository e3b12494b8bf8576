"""Entry point: ``python benchmarks/run.py [--smoke | --full]`` (``make bench``). See ``benchmarks/README.md``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, the repository root is not on sys.path; the package lives there.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(importlib.import_module("benchmarks.cli").main())
