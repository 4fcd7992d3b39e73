"""The writer's active segment file, and the shared pool of read handles."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from batpak.segment import SidxRow, encode_footer, encode_header, segment_name
from batpak.sidefile import fsync_dir
from batpak.store._entry import IndexEntry


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ActiveSegment:
    """The one segment the writer appends to; it remembers rows for its SIDX footer."""

    def __init__(self, directory: Path, segment_id: int, created_ns: int) -> None:
        self.segment_id = segment_id
        self.path = directory / segment_name(segment_id)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            write_all(self.fd, encode_header(segment_id, created_ns))
            os.fsync(self.fd)
            fsync_dir(directory)
        except BaseException:
            os.close(self.fd)
            raise
        self.size = os.fstat(self.fd).st_size
        self.rows: list[SidxRow] = []

    def append(self, frame: bytes) -> int:
        """Write one whole frame; return its offset."""
        offset = self.size
        write_all(self.fd, frame)
        self.size += len(frame)
        return offset

    def sync(self, data_only: bool) -> None:
        (os.fdatasync if data_only else os.fsync)(self.fd)

    def seal(self) -> None:
        """Append the SDX3 footer, sync and close. The segment is never written again."""
        write_all(self.fd, encode_footer(self.rows, self.size))
        os.fsync(self.fd)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ReadHandles:
    """Read-only descriptors per segment, shared by reader threads (``os.pread`` is safe)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()

    def read(self, segment_id: int, offset: int, length: int) -> bytes:
        fd = self._fds.get(segment_id)
        if fd is None:
            with self._lock:
                fd = self._fds.get(segment_id)
                if fd is None:
                    fd = os.open(self._directory / segment_name(segment_id), os.O_RDONLY)
                    self._fds[segment_id] = fd
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise OSError(f"short read of segment {segment_id} at {offset}")
        return data

    def forget(self, segment_ids: set[int]) -> None:
        """Drop cached descriptors of files that compaction replaced or removed."""
        with self._lock:
            for segment_id in segment_ids & self._fds.keys():
                os.close(self._fds.pop(segment_id))

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def sidx_row(entry: IndexEntry) -> SidxRow:
    """The SIDX footer row that describes an indexed event."""
    return SidxRow(
        event_id=entry.event_id,
        entity=entry.entity,
        scope=entry.scope,
        kind=entry.event_kind,
        wall_ms=entry.wall_ms,
        clock=entry.clock,
        lane=entry.lane,
        depth=entry.depth,
        prev_hash=entry.prev_hash,
        event_hash=entry.event_hash,
        frame_offset=entry.offset,
        frame_length=entry.length,
        global_sequence=entry.global_sequence,
        correlation_id=entry.correlation_id,
        causation_id=entry.causation_id or 0,
    )
