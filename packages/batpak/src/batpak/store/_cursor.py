"""Cursors: ordered, at-least-once delivery of a region, resumable from a checkpoint file.

A cursor hands out entries in global-sequence order. ``commit()`` persists how far the caller
has processed to ``cursors/<id>.ckpt`` (atomically); after a restart the cursor resumes just
after that point, so anything delivered but not committed is delivered again.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import msgspec

from batpak.coordinate import Region
from batpak.errors import FailClosedError, InvalidCoordinate, StoreClosed
from batpak.fs import OS_FS, StoreFs
from batpak.sidefile import write_atomic
from batpak.store._index import Index, IndexEntry

_BAD_ID = re.compile(r"[\x00-\x1f\x7f|=/]|\.\.")


class CursorCheckpointCorrupt(FailClosedError):
    """A cursor checkpoint file exists but does not decode."""


class CursorCheckpointRegionMismatch(FailClosedError):
    """A cursor checkpoint was written for a different region than the one asked for."""


class CursorCheckpoint(msgspec.Struct):
    """``cursors/<id>.ckpt``: a bare MessagePack map, as the reference writes it."""

    position: int
    started: bool
    process_boot_ns: int | None = None
    region_identity: str | None = None


def region_identity(region: Region) -> str:
    """The reference's text form of a region, which binds a checkpoint to it."""
    kinds = region.kinds
    if kinds.exact is not None:
        fact = f"exact:{kinds.exact >> 12:x}:{kinds.exact & 0xFFF:x}"
    elif kinds.category is not None:
        fact = f"category:{kinds.category:x}"
    else:
        fact = "none"
    entity = region.entity_prefix if region.entity_prefix is not None else "*"
    scope = region.scope_name if region.scope_name is not None else "*"
    return f"entity={entity}|scope={scope}|fact={fact}|clock=*"


def check_checkpoint_id(checkpoint_id: str) -> None:
    size = len(checkpoint_id.encode())
    if not checkpoint_id or size > 1024 or _BAD_ID.search(checkpoint_id):
        raise InvalidCoordinate(
            f"checkpoint id {checkpoint_id!r} must be 1..1024 bytes without control "
            "characters, '/', '..', '|' or '='"
        )


class Cursor:
    """Delivers a region's events in commit order; ``commit()`` makes progress durable."""

    def __init__(
        self,
        index: Index,
        region: Region,
        path: Path | None,
        release: threading.Lock | None,
        fs: StoreFs = OS_FS,
    ) -> None:
        self._index = index
        self._fs = fs
        self.region = region
        self._path = path
        self._release = release
        self._identity = region_identity(region)
        self._delivered: int | None = None
        self._committed: int | None = None
        self._closed = False
        if path is not None and fs.exists(path):
            try:
                saved = msgspec.msgpack.decode(fs.read(path), type=CursorCheckpoint)
            except (ValueError, RecursionError) as exc:  # msgspec.DecodeError, bad UTF-8
                raise CursorCheckpointCorrupt(f"{path.name}: {exc}") from exc
            if saved.region_identity != self._identity:
                raise CursorCheckpointRegionMismatch(
                    f"{path.name} is bound to {saved.region_identity!r}, not {self._identity!r}"
                )
            if saved.started:
                self._delivered = self._committed = saved.position

    @property
    def position(self) -> int | None:
        """The global sequence of the last event handed out, or None before the first."""
        return self._delivered

    def poll_batch(self, limit: int = 256) -> list[IndexEntry]:
        """The next events after the last one handed out, at most ``limit`` of them."""
        if self._closed:
            raise StoreClosed("the cursor is closed")
        page = self._index.after(self.region, self._delivered, limit)
        if page:
            self._delivered = page[-1].global_sequence
        return page

    def poll(self) -> IndexEntry | None:
        page = self.poll_batch(1)
        return page[0] if page else None

    def commit(self) -> None:
        """Persist that everything handed out so far has been processed."""
        if self._path is None or self._delivered == self._committed:
            return
        assert self._delivered is not None
        body = CursorCheckpoint(self._delivered, True, None, self._identity)
        self._fs.mkdir(self._path.parent)
        write_atomic(self._path, msgspec.msgpack.encode(body), self._fs)
        self._committed = self._delivered

    def rewind(self) -> None:
        """Forget uncommitted progress: the next poll starts after the last commit."""
        self._delivered = self._committed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._release is not None:
                self._release.release()
