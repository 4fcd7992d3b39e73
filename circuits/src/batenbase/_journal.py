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


def options(
    coord: Coordinate, *, durable: bool, extensions: dict[str, bytes] | None = None
) -> AppendOptions:
    """Options for one append: a fresh idempotency key (group commit needs a key on every
    append; a fresh one makes each append its own) and, with ``durable``, a durability gate."""
    key = IdempotencyKey.for_operation("batenbase", [coord.entity, secrets.token_bytes(16)])
    gate = DurabilityGate(DURABLE_TIMEOUT_S) if durable else None
    return AppendOptions(idempotency_key=key, gate=gate, extensions=extensions or {})


def append(
    store: Store, coord: Coordinate, value: msgspec.Struct, *, durable: bool = True
) -> AppendReceipt:
    """Append a typed payload; with ``durable`` it returns only once the event is fsynced
    (concurrent durable appends share one fsync)."""
    return store.append_typed(coord, value, options(coord, durable=durable))
