"""Workload 3: atomic batches of 256 durable events against sqlite3 ``executemany``.

Both sides build the same records and encode them to the same MessagePack bytes inside the
timing; batpak commits each batch with one fsync, sqlite3 (WAL, ``synchronous=FULL``) each
256-row transaction with its own.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgspec

from batpak import BatchAppendItem, Coordinate, Store, StoreConfig
from bench.common import ORDER_KIND, Check, Sizes, entity, ratio_check, record

SCHEMA = (
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, scope TEXT NOT NULL,"
    " kind INTEGER NOT NULL, payload BLOB NOT NULL)"
)
INSERT = "INSERT INTO events (entity, scope, kind, payload) VALUES (?, ?, ?, ?)"


def open_sqlite(path: Path) -> sqlite3.Connection:
    """A WAL database with full sync, as a careful application would open it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(SCHEMA)
    return db


def batpak_side(path: Path, events: int, batch: int) -> float:
    with Store.open(StoreConfig(path)) as store:
        started = time.perf_counter()
        for first in range(0, events, batch):
            store.append_batch(
                [
                    BatchAppendItem.typed(Coordinate(entity(n), "bench"), record(n))
                    for n in range(first, min(first + batch, events))
                ]
            )
        elapsed = time.perf_counter() - started
    return events / elapsed


def sqlite_side(path: Path, events: int, batch: int) -> float:
    encode = msgspec.msgpack.encode
    db = open_sqlite(path)
    try:
        started = time.perf_counter()
        for first in range(0, events, batch):
            rows = [
                (entity(n), "bench", ORDER_KIND, encode(record(n)))
                for n in range(first, min(first + batch, events))
            ]
            db.execute("BEGIN")
            db.executemany(INSERT, rows)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        db.close()
    return events / elapsed


def run(sizes: Sizes, workdir: Path) -> list[Check]:
    ours = batpak_side(workdir / "w3-store", sizes.batch_events, sizes.batch_size)
    theirs = sqlite_side(workdir / "w3.sqlite", sizes.batch_events, sizes.batch_size)
    details = {"events": sizes.batch_events, "batch": sizes.batch_size}
    return [
        ratio_check(3, "batches of 256 vs sqlite3 WAL FULL", "events/s", ours, theirs, 1.0, details)
    ]
