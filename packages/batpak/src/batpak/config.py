"""StoreConfig: how a Store is opened. Frozen; ``with_*`` methods return changed copies."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from batpak.errors import Configuration

DEFAULT_SEGMENT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SYNC_EVERY_N_EVENTS = 1000
DEFAULT_SINGLE_APPEND_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_WRITER_CHANNEL_CAPACITY = 4096

SyncMode = Literal["sync_all", "sync_data"]
PayloadValidation = Literal["fail_fast", "warn", "silent"]
Clock = Callable[[], int]
"""A clock returns microseconds since the Unix epoch."""


def system_clock_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the store lives and how it writes.

    ``path`` is the store directory (created on a writable open). ``segment_max_bytes`` rotates
    segment files; ``sync_every_n_events`` is the cadence fsync after plain appends (``sync()``
    is the explicit barrier); ``single_append_max_bytes`` bounds one payload;
    ``event_payload_validation`` decides whether ``open`` refuses an inconsistent payload
    registry; ``clock`` (microseconds since the epoch) replaces the system clock, for tests.
    """

    path: Path
    _: dataclasses.KW_ONLY
    segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES
    sync_mode: SyncMode = "sync_all"
    sync_every_n_events: int = DEFAULT_SYNC_EVERY_N_EVENTS
    single_append_max_bytes: int = DEFAULT_SINGLE_APPEND_MAX_BYTES
    event_payload_validation: PayloadValidation = "fail_fast"
    writer_channel_capacity: int = DEFAULT_WRITER_CHANNEL_CAPACITY
    clock: Clock = field(default=system_clock_us, compare=False)

    def __post_init__(self) -> None:
        path: object = self.path
        if not isinstance(path, Path):
            if not isinstance(path, str | os.PathLike):
                raise Configuration(f"path must be a str or PathLike, not {path!r}")
            object.__setattr__(self, "path", Path(path))
        if self.segment_max_bytes < 4096:
            raise Configuration("segment_max_bytes must be at least 4096")
        if self.sync_mode not in ("sync_all", "sync_data"):
            raise Configuration(f"unknown sync_mode {self.sync_mode!r}")
        if self.sync_every_n_events < 1:
            raise Configuration("sync_every_n_events must be at least 1")
        if not 1 <= self.single_append_max_bytes <= 128 * 1024 * 1024:
            raise Configuration("single_append_max_bytes must be in 1..128 MiB")
        if self.event_payload_validation not in ("fail_fast", "warn", "silent"):
            raise Configuration(
                f"unknown event_payload_validation {self.event_payload_validation!r}"
            )
        if self.writer_channel_capacity < 1:
            raise Configuration("writer_channel_capacity must be at least 1")

    def with_segment_max_bytes(self, value: int) -> StoreConfig:
        return dataclasses.replace(self, segment_max_bytes=value)

    def with_sync_every_n_events(self, value: int) -> StoreConfig:
        return dataclasses.replace(self, sync_every_n_events=value)

    def with_sync_mode(self, value: SyncMode) -> StoreConfig:
        return dataclasses.replace(self, sync_mode=value)

    def with_clock(self, clock: Clock) -> StoreConfig:
        return dataclasses.replace(self, clock=clock)
