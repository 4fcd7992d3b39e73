"""Workload 4: replay every event in commit order, decoding each into the typed record.

batpak replays with ``Store.replay(Order)``: commit order, straight from the index columns
and large segment reads, every frame CRC-checked and each payload decoded into ``Order``.
The peers do the same job their way: sqlite3 an ordered ``SELECT`` whose payloads go through
the same msgspec decoder, and the ``eventsourcing`` library (SQLite) its notification log,
each notification mapped back to its domain event. batpak and ``eventsourcing`` alternate
for ``sizes.rounds`` rounds and each side's best round counts, so a change of machine load
during the run hits both sides of the ratio; every round is in the JSON.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgspec

from batpak import Store, StoreConfig
from bench.common import Check, Order, Sizes
from bench.fixture import LargeStore


def batpak_side(path: Path) -> tuple[float, int]:
    with Store.open_read_only(StoreConfig(path)) as store:
        started = time.perf_counter()
        seen = 0
        for _seq, _order in store.replay(Order):
            seen += 1
        elapsed = time.perf_counter() - started
    return seen / elapsed, seen


def sqlite_side(path: Path) -> tuple[float, int]:
    decoder = msgspec.msgpack.Decoder(Order)
    db = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        seen = 0
        for _seq, _entity, _kind, payload in db.execute(
            "SELECT seq, entity, kind, payload FROM events ORDER BY seq"
        ):
            decoder.decode(payload)
            seen += 1
        elapsed = time.perf_counter() - started
    finally:
        db.close()
    return seen / elapsed, seen


def run(sizes: Sizes, workdir: Path, large: LargeStore) -> list[Check]:
    from bench import peer_eventsourcing  # noqa: PLC0415 - installed by the bench session only

    built = peer_eventsourcing.build(workdir / "eventsourcing.sqlite", sizes.eventsourcing_events)
    rounds: list[tuple[float, float]] = []
    for _ in range(sizes.rounds):
        ours, seen = batpak_side(large.store)
        es_rate, es_seen = peer_eventsourcing.replay(built)
        rounds.append((ours, es_rate))
    ours, es_rate = max(r[0] for r in rounds), max(r[1] for r in rounds)
    sqlite_rate, sqlite_seen = sqlite_side(large.sqlite)
    if seen != large.events or sqlite_seen != large.events or es_seen != sizes.eventsourcing_events:
        raise AssertionError(f"replay counts differ: {seen}, {sqlite_seen}, {es_seen}")
    details = {
        "events": seen,
        "eventsourcing_events": es_seen,
        "path": "Store.replay",
        "rounds_events_per_s": [{"batpak": a, "eventsourcing": b} for a, b in rounds],
        "sqlite_events_per_s": sqlite_rate,
        "sqlite_ratio": ours / sqlite_rate,
    }
    return [
        Check(
            4,
            "replay + typed decode, absolute",
            "events/s",
            ours,
            None,
            ">= 500000/s",
            ours >= 500_000,
            None,
            details,
        ),
        Check(
            4,
            "replay vs eventsourcing notification log",
            "events/s",
            ours,
            es_rate,
            ">= 3x",
            ours / es_rate >= 3.0,
            ours / es_rate,
            {"rounds_events_per_s": details["rounds_events_per_s"]},
        ),
        Check(
            4,
            "replay vs sqlite3 ordered SELECT (context)",
            "events/s",
            ours,
            sqlite_rate,
            "-",
            None,
            ours / sqlite_rate,
            {},
        ),
    ]
