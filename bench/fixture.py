"""The large store that workloads 4, 5 and 8 share, and its sqlite3 twin with the same rows.

Built once per run: ``replay_events`` records appended in batches of 1000 (the build is
setup, not a measured workload) and closed cleanly, so the store has its checkpoint.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from batpak import BatchAppendItem, Coordinate, Store, StoreConfig
from bench.common import ORDER_KIND, entity, record
from bench.w3_batch import INSERT, SCHEMA

BUILD_BATCH = 1000


@dataclass(frozen=True, slots=True)
class LargeStore:
    store: Path
    sqlite: Path
    events: int
    build_seconds: float


def build(workdir: Path, events: int) -> LargeStore:
    started = time.perf_counter()
    store_path = workdir / "large-store"
    config = StoreConfig(store_path, batch_max_size=BUILD_BATCH, batch_max_bytes=4 << 20)
    with Store.open(config) as store:
        for first in range(0, events, BUILD_BATCH):
            store.append_batch(
                [
                    BatchAppendItem.typed(Coordinate(entity(n), "bench"), record(n))
                    for n in range(first, min(first + BUILD_BATCH, events))
                ]
            )
    sqlite_path = workdir / "large.sqlite"
    db = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # setup only; the read side is measured
        db.execute(SCHEMA)
        encode = msgspec.msgpack.encode
        for first in range(0, events, BUILD_BATCH):
            db.execute("BEGIN")
            db.executemany(
                INSERT,
                [
                    (entity(n), "bench", ORDER_KIND, encode(record(n)))
                    for n in range(first, min(first + BUILD_BATCH, events))
                ],
            )
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return LargeStore(store_path, sqlite_path, events, time.perf_counter() - started)
