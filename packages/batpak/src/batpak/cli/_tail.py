"""``batpak tail``: follow a store another process writes, reading segment files directly."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from batpak.cli._common import (
    BATCH_ENTITY,
    EXIT_OK,
    LIFECYCLE_ENTITY,
    require_store,
    segment_files,
    whole_frames,
    write_json,
)
from batpak.cli._dump import frame_record
from batpak.errors import CorruptFrame, CorruptSegment
from batpak.frame import FrameDecodeError, WireFrame, decode_body
from batpak.kinds import SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT, SYSTEM_OPEN_COMPLETED
from batpak.segment import (
    any_frame_after,
    has_trusted_footer,
    read_footer,
    read_header,
    segment_name,
)

# -- tail -------------------------------------------------------------------------------------


_Staged = tuple[int, int, dict[int, int] | None, WireFrame]  # segment, offset, rows, frame


class Tailer:
    """Reads committed events straight from the segment files, without the store lock.

    Each ``poll()`` emits the events committed since the last one, in commit order: it
    resumes the newest segment at the remembered offset and moves on when a newer segment
    file appears. Batch markers are never emitted, and batch items only once their COMMIT
    marker is read (format.md §7.1). A torn or half-written last frame is simply left for a
    later poll. Global sequences come from a trusted SDX3 footer when the segment has one,
    and otherwise count on from the last one seen, as a cold start computes them.

    The batch rules are the cold start's (``store._recover``): batch state carries across
    segment files, an excess item discards the batch with it, and a new session's
    OPEN_COMPLETED ends a batch a crash cut short.
    """

    def __init__(self, directory: Path, emit: Callable[[dict[str, Any]], None]) -> None:
        self._directory = directory
        self._emit = emit
        self._current: int | None = None
        self._offset = 0  # next unread byte of the current segment; 0 = header not read yet
        self._finished = False  # the current segment is sealed or superseded: fully read
        self._sequences: dict[int, int] | None = None
        self._next_sequence = 0
        self._staged: list[_Staged] | None = None
        self._expected = 0

    def poll(self) -> int:
        """Emit what was committed since the last poll; return how many events."""
        emitted = 0
        listed = [segment_id for segment_id, _ in segment_files(self._directory)]
        if not listed:
            return 0
        newest = listed[-1]
        for segment_id in listed:
            current = self._current
            if current is not None and (
                segment_id < current or (segment_id == current and self._finished)
            ):
                continue  # already read (or a compaction's merged segment: old events)
            if segment_id != current:
                self._current, self._offset, self._sequences = segment_id, 0, None
            count, self._finished = self._read(segment_id, last=segment_id == newest)
            emitted += count
            if not self._finished:
                break
        return emitted

    def _read(self, segment_id: int, last: bool) -> tuple[int, bool]:
        """Emit the segment's new frames; True when nothing more can come from it."""
        path = self._directory / segment_name(segment_id)
        base = self._offset
        try:
            with open(path, "rb") as handle:
                handle.seek(base)
                data = handle.read()
        except FileNotFoundError:
            return 0, not last
        end = len(data)
        if base == 0:
            try:
                start = read_header(segment_id, data)
            except CorruptSegment:
                if last:
                    return 0, False  # being created: the header is not all there yet
                raise
            footer = read_footer(segment_id, data, start)
            if footer is not None:
                end = footer.string_table_offset
                if footer.rows is not None:
                    reach = max((r.frame_offset + r.frame_length for r in footer.rows), default=0)
                    # rows that stop short of the boundary are trusted only when every
                    # segment has a valid SDX3 footer (format.md §7.1, as at cold start)
                    if reach == footer.string_table_offset or self._all_footers_trusted():
                        self._sequences = {r.frame_offset: r.global_sequence for r in footer.rows}
                last = False  # sealed: nothing is ever appended again
        else:
            start = 0
        count = 0
        pos = start
        for offset, size in whole_frames(data, start, end):
            try:
                frame = decode_body(memoryview(data)[offset + 8 : offset + size])
            except FrameDecodeError as exc:
                raise CorruptFrame(segment_id, base + offset, str(exc)) from exc
            count += self._accept(segment_id, base + offset, frame)
            pos = offset + size
        self._offset = base + pos
        if last:
            return count, False
        if pos < end and any_frame_after(memoryview(data)[:end], pos + 1):
            raise CorruptSegment(
                segment_id,
                f"the damaged frame at offset {base + pos} is followed by a valid frame",
            )
        return count, True

    def _all_footers_trusted(self) -> bool:
        try:
            return all(has_trusted_footer(path) for _, path in segment_files(self._directory))
        except FileNotFoundError:  # a compaction removed one meanwhile
            return False

    def _accept(self, segment_id: int, offset: int, frame: WireFrame) -> int:
        header = frame.event.header
        kind = header.event_kind
        marker = frame.entity == BATCH_ENTITY
        staged = self._staged
        if marker and kind == SYSTEM_BATCH_BEGIN:
            self._staged = []
            self._expected = header.payload_size
            return 0
        if marker and kind == SYSTEM_BATCH_COMMIT:
            self._staged = None
            if staged is None or len(staged) != self._expected:
                return 0  # an orphan COMMIT, or a count mismatch: the batch never happened
            for item in staged:
                self._release(*item)
            return len(staged)
        if staged is not None and len(staged) >= self._expected:
            self._staged = None  # an excess item: the batch and the item are discarded
            return 0
        opens_session = kind == SYSTEM_OPEN_COMPLETED and frame.entity == LIFECYCLE_ENTITY
        if staged is not None and not opens_session:
            staged.append((segment_id, offset, self._sequences, frame))
            return 0
        self._staged = None  # a new session ends a batch that a crash cut short
        self._release(segment_id, offset, self._sequences, frame)
        return 1

    def _release(
        self, segment_id: int, offset: int, sequences: dict[int, int] | None, frame: WireFrame
    ) -> None:
        if sequences is None:
            sequence = self._next_sequence
        else:
            found = sequences.get(offset)
            if found is None:
                raise CorruptSegment(segment_id, f"frame at {offset} has no row in the SIDX footer")
            sequence = found
        self._next_sequence = max(self._next_sequence, sequence + 1)
        self._emit(frame_record(frame, sequence))


def follow(
    directory: Path,
    out: TextIO,
    *,
    interval: float,
    stop: threading.Event | None = None,
    keep_following: bool = True,
) -> None:
    """Print committed events as JSON Lines; with ``keep_following``, poll every ``interval``
    seconds until ``stop`` is set (or the process is interrupted)."""
    tailer = Tailer(directory, lambda record: write_json(out, record))
    tailer.poll()
    out.flush()
    if not keep_following:
        return
    stop = stop or threading.Event()
    while not stop.wait(interval):
        if tailer.poll():
            out.flush()


def cmd_tail(args: argparse.Namespace) -> int:
    path = require_store(args.dir, allow_empty=args.follow)
    try:
        follow(path, sys.stdout, interval=args.interval, keep_following=args.follow)
    except KeyboardInterrupt:
        sys.stdout.flush()
        return EXIT_OK  # Ctrl-C is how a follow ends
    return EXIT_OK
