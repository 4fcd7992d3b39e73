"""One batpak Store per journal directory, opened for group commit, with keyed appends."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import msgspec

from batpak import (
    AppendOptions,
    AppendReceipt,
    Coordinate,
    DurabilityGate,
    IdempotencyKey,
    Store,
    StoreConfig,
)

DURABLE_TIMEOUT_S = 30.0


def open_store(path: Path, clock: Callable[[], float]) -> Store:
    """Open a journal with unbounded group commit, on the service clock (seconds -> us)."""
    config = StoreConfig(path).with_group_commit(0).with_clock(lambda: int(clock() * 1_000_000))
    return Store.open(config)


def append(
    store: Store, coord: Coordinate, value: msgspec.Struct, *, durable: bool = True
) -> AppendReceipt:
    """Append a typed payload under a fresh idempotency key; with ``durable`` it returns only
    once the event is fsynced (concurrent durable appends share one fsync)."""
    key = IdempotencyKey.for_operation("batenbase", [coord.entity, secrets.token_bytes(16)])
    gate = DurabilityGate(DURABLE_TIMEOUT_S) if durable else None
    return store.append_typed(coord, value, AppendOptions(idempotency_key=key, gate=gate))
