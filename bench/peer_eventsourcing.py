"""Workload 4's library peer: the ``eventsourcing`` package on SQLite, reading its log.

An application records ``Order``-shaped events on aggregates (1000 per save, as setup), then
the measured side reads the notification log in commit order and maps every notification
back to its domain event (the library's typed decode). Installed only by the bench session,
so this module is typed loosely where the library is not importable for mypy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eventsourcing.application import Application  # type: ignore[import-not-found,unused-ignore]
from eventsourcing.domain import Aggregate, event  # type: ignore[import-not-found,unused-ignore]

from bench.common import record

PER_SAVE = 1000
PAGE = 1000


class Ledger(Aggregate):  # type: ignore[misc,unused-ignore]
    @event("Recorded")  # type: ignore[untyped-decorator,misc,unused-ignore]
    def recorded(
        self,
        id: int,
        customer: str,
        email: str,
        amount_cents: int,
        currency: str,
        items: list[str],
        status: str,
        note: str,
    ) -> None:
        pass


class Orders(Application):  # type: ignore[misc,unused-ignore]
    pass


def _open(path: Path) -> Any:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    return Orders(env=env)


def build(path: Path, events: int) -> Path:
    app = _open(path)
    written = 0
    while written < events:
        ledger = Ledger()
        written += 1  # the Created event is a notification too
        for n in range(written, min(written + PER_SAVE - 1, events)):
            value = record(n)
            ledger.recorded(
                value.id,
                value.customer,
                value.email,
                value.amount_cents,
                value.currency,
                value.items,
                value.status,
                value.note,
            )
            written += 1
        app.save(ledger)
    app.close()
    return path


def replay(path: Path) -> tuple[float, int]:
    app = _open(path)
    try:
        recorder, mapper = app.recorder, app.mapper
        started = time.perf_counter()
        seen = 0
        start = 1
        while notes := recorder.select_notifications(start, PAGE):
            for note in notes:
                mapper.to_domain_event(note)
            seen += len(notes)
            start = notes[-1].id + 1
        elapsed = time.perf_counter() - started
    finally:
        app.close()
    return seen / elapsed, seen
