"""``batpak compact``: merge sealed segments."""

from __future__ import annotations

import argparse
import sys

from batpak.cli._common import EXIT_OK, open_store

# -- compact ----------------------------------------------------------------------------------


def cmd_compact(args: argparse.Namespace) -> int:
    with open_store(args.dir, writable=True) as store:
        result = store.compact(min_segments=args.min_segments)
    outcome = getattr(result.outcome, "value", result.outcome)
    merged = result.merged_segment_id
    sys.stdout.write(
        f"outcome            {outcome}\n"
        f"segments removed   {result.segments_removed}\n"
        f"bytes reclaimed    {result.bytes_reclaimed}\n"
        f"merged segment id  {'none' if merged is None else merged}\n"
        f"events dropped     {result.events_dropped}\n"
    )
    return EXIT_OK
