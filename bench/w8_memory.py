"""Workload 8: bytes of the in-memory index per event, for the large store.

Measured in a fresh interpreter so nothing else is on the heap: ``tracemalloc`` counts what
the open allocates (and still holds) and what a full commit-order pass over the index adds;
the resident-set growth is recorded beside it. Twice: opened from the checkpoint (the
columnar base) and rebuilt from the segments with the checkpoint moved aside (the index a
store has after a rebuild).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.common import Check, Sizes
from bench.fixture import LargeStore
from bench.w5_reopen import CHECKPOINT

PROBE = r"""
import gc, json, sys, tracemalloc
from batpak import Region, Store, StoreConfig

def rss():
    with open("/proc/self/statm") as f:
        import os
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

gc.collect()
rss0 = rss()
tracemalloc.start()
store = Store.open_read_only(StoreConfig(sys.argv[1]))
gc.collect()
opened = tracemalloc.get_traced_memory()[0]
rss1 = rss()
after, seen = None, 0
while page := store.query_entries_after(Region.all(), after, 65536):
    seen += len(page)
    after = page[-1].global_sequence
del page
gc.collect()
walked = tracemalloc.get_traced_memory()[0]
rss2 = rss()
print(json.dumps({"events": seen, "opened": opened, "walked": walked,
                  "rss_opened": rss1 - rss0, "rss_walked": rss2 - rss0}))
store.close()
"""


def _probe(store: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(store)], check=True, capture_output=True, text=True
    )
    probe: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    events = probe["events"]
    probe["per_event"] = max(probe["opened"], probe["walked"]) / events
    probe["rss_per_event"] = max(probe["rss_opened"], probe["rss_walked"]) / events
    return probe


def run(sizes: Sizes, workdir: Path, large: LargeStore) -> list[Check]:
    checkpoint = _probe(large.store)
    aside = large.store / f"{CHECKPOINT}.aside"
    (large.store / CHECKPOINT).rename(aside)
    try:
        rebuilt = _probe(large.store)
    finally:
        aside.rename(large.store / CHECKPOINT)
    return [
        Check(
            8,
            "index memory, opened from its checkpoint",
            "B/event",
            checkpoint["per_event"],
            None,
            "<= 200 B/event",
            checkpoint["per_event"] <= 200,
            None,
            checkpoint,
        ),
        Check(
            8,
            "index memory, rebuilt from segments",
            "B/event",
            rebuilt["per_event"],
            None,
            "<= 200 B/event",
            rebuilt["per_event"] <= 200,
            None,
            rebuilt,
        ),
    ]
