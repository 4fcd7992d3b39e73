"""``python -m batpak`` and the ``batpak`` console script: see ``batpak.cli``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from batpak.cli import main as _cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    return _cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
