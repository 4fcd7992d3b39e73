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
from batpak.fs import OS_FS, StoreFs
from batpak.projection_cache import NoCache, ProjectionCache

DEFAULT_SEGMENT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SYNC_EVERY_N_EVENTS = 1000
DEFAULT_SINGLE_APPEND_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_WRITER_CHANNEL_CAPACITY = 4096

DEFAULT_BATCH_MAX_SIZE = 256
DEFAULT_BATCH_MAX_BYTES = 1024 * 1024
DEFAULT_GROUP_COMMIT_MAX_BATCH = 1

SyncMode = Literal["sync_all", "sync_data"]
SigningPolicy = Literal["optional", "required"]
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
    registry; ``batch_max_size`` / ``batch_max_bytes`` bound ``append_batch``;
    ``group_commit_max_batch`` is how many queued commands share one writer cycle and fsync
    (1 = none, 0 = unbounded; other than 1, every append needs an idempotency key);
    ``signing_keys`` are Ed25519 seeds (the last signs) and ``signing_policy="required"``
    refuses to open without one; ``clock`` (microseconds since the epoch) replaces the system
    clock and ``fs`` the real filesystem, for tests (docs/batpak-test-seam.md);
    ``projection_cache`` keeps folded projection state between ``project`` calls.
    """

    path: Path
    _: dataclasses.KW_ONLY
    segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES
    sync_mode: SyncMode = "sync_all"
    sync_every_n_events: int = DEFAULT_SYNC_EVERY_N_EVENTS
    single_append_max_bytes: int = DEFAULT_SINGLE_APPEND_MAX_BYTES
    event_payload_validation: PayloadValidation = "fail_fast"
    writer_channel_capacity: int = DEFAULT_WRITER_CHANNEL_CAPACITY
    batch_max_size: int = DEFAULT_BATCH_MAX_SIZE
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    group_commit_max_batch: int = DEFAULT_GROUP_COMMIT_MAX_BATCH
    signing_keys: tuple[bytes, ...] = field(default=(), repr=False)
    signing_policy: SigningPolicy = "optional"
    clock: Clock = field(default=system_clock_us, compare=False)
    fs: StoreFs = field(default=OS_FS, compare=False, repr=False)
    projection_cache: ProjectionCache = field(default_factory=NoCache, compare=False, repr=False)

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
        if not 1 <= self.batch_max_size <= 1_000_000:
            raise Configuration("batch_max_size must be in 1..1000000")
        if self.batch_max_bytes < 1:
            raise Configuration("batch_max_bytes must be at least 1")
        if self.group_commit_max_batch < 0:
            raise Configuration("group_commit_max_batch must be 0 (unbounded) or more")
        object.__setattr__(self, "signing_keys", tuple(self.signing_keys))
        for seed in self.signing_keys:
            if not isinstance(seed, bytes) or len(seed) != 32:
                raise Configuration("each signing key must be a 32-byte Ed25519 seed")
        if self.signing_policy not in ("optional", "required"):
            raise Configuration(f"unknown signing_policy {self.signing_policy!r}")
        if self.signing_policy == "required" and not self.signing_keys:
            raise Configuration("signing_policy 'required' needs at least one signing key")

    def with_segment_max_bytes(self, value: int) -> StoreConfig:
        return dataclasses.replace(self, segment_max_bytes=value)

    def with_sync_every_n_events(self, value: int) -> StoreConfig:
        return dataclasses.replace(self, sync_every_n_events=value)

    def with_sync_mode(self, value: SyncMode) -> StoreConfig:
        return dataclasses.replace(self, sync_mode=value)

    def with_signing_key(self, seed: bytes) -> StoreConfig:
        """Add an Ed25519 key (32-byte seed); the last key added signs, all of them verify."""
        return dataclasses.replace(self, signing_keys=(*self.signing_keys, seed))

    def with_group_commit(self, max_batch: int) -> StoreConfig:
        return dataclasses.replace(self, group_commit_max_batch=max_batch)

    def with_clock(self, clock: Clock) -> StoreConfig:
        return dataclasses.replace(self, clock=clock)

    def with_projection_cache(self, cache: ProjectionCache) -> StoreConfig:
        """Keep folded projection state in ``cache`` between ``project`` calls."""
        return dataclasses.replace(self, projection_cache=cache)

    def with_fs(self, fs: StoreFs) -> StoreConfig:
        """Route every file operation through ``fs`` (a test seam; see batpak.fs)."""
        return dataclasses.replace(self, fs=fs)
