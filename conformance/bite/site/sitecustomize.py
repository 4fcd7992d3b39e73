"""Plant the bite variant named by ``CONFORMANCE_BITE`` in this (child) Python process.

``bite.plugin`` puts this directory on ``PYTHONPATH`` during a bite run, so every Python
process the tests start (servers, writers, CLIs) runs with the same bug as the test process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_name = os.environ.get("CONFORMANCE_BITE")
if _name:
    _here = str(Path(__file__).resolve().parents[2])
    sys.path.insert(0, _here)
    try:
        from bite.mutants import plant

        plant(_name, strict=False)
    finally:
        sys.path.remove(_here)
