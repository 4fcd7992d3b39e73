"""Workload 5: reopen the large store from its checkpoint, against a rebuild from segments.

The peer is the same store with ``index.cols`` moved aside, so the open scans every segment;
the file is put back afterwards. Both opens are read-only and in this process.
"""

from __future__ import annotations

import time
from pathlib import Path

from batpak import Region, Store, StoreConfig
from bench.common import Check, Sizes
from bench.fixture import LargeStore

CHECKPOINT = "index.cols"


def reopen(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with Store.open_read_only(StoreConfig(path)) as store:
        elapsed = time.perf_counter() - started
        count = len(store.query_entries_after(Region.all(), None, 10**9))
    return elapsed, count


def run(sizes: Sizes, workdir: Path, large: LargeStore) -> list[Check]:
    with_checkpoint, seen = reopen(large.store)
    aside = large.store / f"{CHECKPOINT}.aside"
    (large.store / CHECKPOINT).rename(aside)
    try:
        rebuild, seen_again = reopen(large.store)
    finally:
        aside.rename(large.store / CHECKPOINT)
    if seen_again != seen or seen < large.events:
        raise AssertionError(f"reopen saw {seen} then {seen_again} events")
    details = {"events": seen, "checkpoint_s": with_checkpoint, "rebuild_s": rebuild}
    return [
        Check(
            5,
            "reopen with checkpoint, absolute",
            "s",
            with_checkpoint,
            None,
            "<= 1 s",
            with_checkpoint <= 1.0,
            None,
            details,
        ),
        Check(
            5,
            "reopen: rebuild time / checkpoint time",
            "s",
            with_checkpoint,
            rebuild,
            ">= 10x",
            rebuild / with_checkpoint >= 10.0,
            rebuild / with_checkpoint,
            details,
        ),
    ]
