"""Reopen time of a large store: with its checkpoint (index.cols) versus a full segment rebuild.

Both sides run in this one process on the same store, so the printed ratio holds for this
machine. ``python3 bench/cold_start.py [EVENTS] [DIR]`` (defaults: 1,000,000 and a temp dir).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from batpak import BatchAppendItem, Coordinate, Region, Store, StoreConfig

PAYLOAD = {"name": "x" * 20, "n": 1, "blob": "y" * 150}  # about 200 bytes, as issue 7 asks


def build(path: Path, events: int) -> None:
    config = StoreConfig(path, batch_max_size=1000, batch_max_bytes=4 << 20)
    with Store.open(config) as store:
        for start in range(0, events, 1000):
            store.append_batch(
                [
                    BatchAppendItem.new(Coordinate(f"e:{(start + i) % 5000}", "s"), 0xF001, PAYLOAD)
                    for i in range(min(1000, events - start))
                ]
            )


def reopen(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    with Store.open_read_only(StoreConfig(path)) as store:
        elapsed = time.perf_counter() - started
        count = len(store.query_entries_after(Region.all(), None, 10**9))
    return elapsed, count


def main(events: int, path: Path) -> None:
    build(path, events)
    with_checkpoint, seen = reopen(path)
    assert seen >= events
    checkpoint = path / "index.cols"
    checkpoint.rename(path / "index.cols.aside")
    try:
        rebuild, seen_again = reopen(path)
    finally:
        (path / "index.cols.aside").rename(checkpoint)
    assert seen_again == seen
    print(f"events:            {seen:,}")
    print(f"reopen, checkpoint: {with_checkpoint:.3f} s")
    print(f"reopen, rebuild:    {rebuild:.3f} s")
    print(f"ratio:              {rebuild / with_checkpoint:.1f}x")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if len(sys.argv) > 2:
        main(count, Path(sys.argv[2]))
    else:
        directory = Path(tempfile.mkdtemp())
        try:
            main(count, directory / "store")
        finally:
            shutil.rmtree(directory)
