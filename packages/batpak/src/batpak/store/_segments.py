"""The writer's active segment file, and the shared pool of read handles."""

from __future__ import annotations

import threading
from pathlib import Path

from batpak.fs import OS_FS, ReadFile, StoreFs, WriteFile
from batpak.segment import SidxRow, encode_footer, encode_header, segment_name
from batpak.store._entry import IndexEntry


class ActiveSegment:
    """The one segment the writer appends to; it remembers entries for its SIDX footer."""

    def __init__(
        self, directory: Path, segment_id: int, created_ns: int, fs: StoreFs = OS_FS
    ) -> None:
        self.segment_id = segment_id
        self.path = directory / segment_name(segment_id)
        self.fs = fs
        self.file: WriteFile | None = fs.create(self.path, exclusive=True)
        header = encode_header(segment_id, created_ns)
        try:
            self.file.write(header)
            self.file.sync()
            fs.sync_dir(directory)
        except BaseException:
            self.close()
            raise
        self.size = len(header)
        self.entries: list[IndexEntry] = []  # what its SIDX footer will describe
        self._pending: list[bytes] = []

    def append(self, frame: bytes) -> int:
        """Buffer one whole frame; return its offset. It reaches the file at ``flush``."""
        offset = self.size
        self._pending.append(frame)
        self.size += len(frame)
        return offset

    def flush(self) -> None:
        """Write the buffered frames with one write (one GIL release per writer group)."""
        if self._pending:
            assert self.file is not None, "the segment is closed"
            data = b"".join(self._pending)
            self._pending.clear()
            self.file.write(data)

    def sync(self, data_only: bool) -> None:
        self.flush()
        assert self.file is not None, "the segment is closed"
        self.file.sync(data_only)

    def seal(self) -> None:
        """Append the SDX3 footer, sync and close. The segment is never written again."""
        self.flush()
        assert self.file is not None, "the segment is closed"
        self.file.write(encode_footer([sidx_row(e) for e in self.entries], self.size))
        self.file.sync()
        self.close()

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            file.close()


class ReadHandles:
    """Read handles per segment, shared by reader threads (positional reads are safe)."""

    def __init__(self, directory: Path, fs: StoreFs = OS_FS) -> None:
        self._directory = directory
        self._fs = fs
        self._files: dict[int, ReadFile] = {}
        self._lock = threading.Lock()

    def read(self, segment_id: int, offset: int, length: int) -> bytes:
        file = self._files.get(segment_id)
        if file is None:
            with self._lock:
                file = self._files.get(segment_id)
                if file is None:
                    file = self._fs.open_read(self._directory / segment_name(segment_id))
                    self._files[segment_id] = file
        data = file.pread(length, offset)
        if len(data) != length:
            raise OSError(f"short read of segment {segment_id} at {offset}")
        return data

    def forget(self, segment_ids: set[int]) -> None:
        """Drop cached handles of files that compaction replaced or removed."""
        with self._lock:
            for segment_id in segment_ids & self._files.keys():
                self._files.pop(segment_id).close()

    def close(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()


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
