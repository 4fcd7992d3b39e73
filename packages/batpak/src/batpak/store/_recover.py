"""Cold start: rebuild the index from segment files (format.md §7.2).

Segments are read in id order. Sealed segments must be whole (fail closed); the last one may
end in a torn frame, which is ignored in place. Batch items are staged and released only when
a COMMIT with the matching count arrives. Global sequences come from a trusted SDX3 footer
when there is one, and are otherwise synthesized as max_seen + 1 in log order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from batpak.coordinate import Coordinate
from batpak.errors import CorruptFrame, CorruptSegment, InvalidCoordinate
from batpak.event import ZERO_HASH
from batpak.frame import ScanFrame
from batpak.fs import OS_FS, StoreFs
from batpak.kinds import SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT, SYSTEM_OPEN_COMPLETED
from batpak.segment import (
    Posture,
    ScannedFrame,
    any_frame_after,
    has_trusted_footer,
    parse_segment_id,
    read_footer,
    read_header,
    scan_frames,
)
from batpak.store._columns import ColumnBase
from batpak.store._entry import IndexEntry

BATCH_ENTITY = "_batch"
LIFECYCLE_ENTITY = "batpak:store"


@dataclass(slots=True)
class SegmentState:
    """What recovery learned about one segment file."""

    segment_id: int
    path: Path
    size: int
    frames_end: int
    sealed: bool
    header_ok: bool = True


@dataclass(slots=True)
class Recovered:
    """What a scan rebuilt: entries after the checkpoint, and the scanned segments."""

    entries: list[IndexEntry] = field(default_factory=list)
    segments: list[SegmentState] = field(default_factory=list)
    next_sequence: int = 0
    max_segment_id: int = 0


def list_segments(directory: Path, fs: StoreFs = OS_FS) -> list[tuple[int, Path]]:
    found = []
    for name in fs.listdir(directory):
        segment_id = parse_segment_id(name)
        if segment_id is not None:
            found.append((segment_id, directory / name))
    found.sort()
    return found


def entry_from_frame(
    frame: ScanFrame, segment_id: int, offset: int, length: int, global_sequence: int
) -> IndexEntry:
    header = frame.event.header
    chain = frame.event.hash_chain
    position = header.position
    extensions = {k: bytes(v) for k, v in frame.receipt_extensions.items()} or None
    return IndexEntry(
        event_id=int.from_bytes(header.event_id, "big"),
        correlation_id=int.from_bytes(header.correlation_id, "big"),
        causation_id=(
            None if header.causation_id is None else int.from_bytes(header.causation_id, "big")
        ),
        entity=frame.entity,
        scope=frame.scope,
        event_kind=header.event_kind,
        wall_ms=position.wall_ms,
        clock=position.sequence,
        lane=position.lane,
        depth=position.depth,
        prev_hash=ZERO_HASH if chain is None else bytes(chain.prev_hash),
        event_hash=bytes(header.content_hash) if chain is None else bytes(chain.event_hash),
        global_sequence=global_sequence,
        segment_id=segment_id,
        offset=offset,
        length=length,
        receipt_extensions=extensions,
    )


def _is_marker(frame: ScanFrame, kind: int) -> bool:
    return frame.event.header.event_kind == kind and frame.entity == BATCH_ENTITY


Staged = tuple[int, ScannedFrame, dict[int, int] | None]


class _Replayer:
    """Turns scanned frames into committed entries, staging batches until their COMMIT.

    Batch state carries across segment boundaries (older reference writers could rotate
    between batch items), but a new session's OPEN_COMPLETED ends any batch still open: that
    batch was cut short by a crash.
    """

    def __init__(self) -> None:
        self.out = Recovered()
        self.staged: list[Staged] | None = None
        self.expected = 0
        self._coordinates: set[tuple[str, str]] = set()  # the ones already checked

    def segment(
        self, segment_id: int, frames: list[ScannedFrame], sequences: dict[int, int] | None
    ) -> None:
        for scanned in frames:
            frame = scanned.frame
            if _is_marker(frame, SYSTEM_BATCH_BEGIN):
                self.staged = []
                self.expected = frame.event.header.payload_size
            elif _is_marker(frame, SYSTEM_BATCH_COMMIT):
                if self.staged is not None and len(self.staged) == self.expected:
                    for staged in self.staged:
                        self._release(*staged)
                self.staged = None
            elif self.staged is not None and len(self.staged) >= self.expected:
                self.staged = None  # an excess item: the batch and the item are discarded
            elif self.staged is not None and not _opens_session(frame):
                self.staged.append((segment_id, scanned, sequences))
            else:
                self.staged = None
                self._release(segment_id, scanned, sequences)

    def _release(
        self, segment_id: int, scanned: ScannedFrame, sequences: dict[int, int] | None
    ) -> None:
        if sequences is None:
            seq = self.out.next_sequence
        else:
            found = sequences.get(scanned.offset)
            if found is None:
                raise CorruptSegment(
                    segment_id, f"frame at {scanned.offset} has no row in the SIDX footer"
                )
            seq = found
        coordinate = (scanned.frame.entity, scanned.frame.scope)
        if coordinate not in self._coordinates:
            try:
                Coordinate(*coordinate)
            except InvalidCoordinate as exc:  # CRC-valid but not a committable event: fail closed
                raise CorruptFrame(segment_id, scanned.offset, str(exc)) from None
            self._coordinates.add(coordinate)
        self.out.entries.append(
            entry_from_frame(scanned.frame, segment_id, scanned.offset, scanned.length, seq)
        )
        self.out.next_sequence = max(self.out.next_sequence, seq + 1)


def _opens_session(frame: ScanFrame) -> bool:
    return (
        frame.event.header.event_kind == SYSTEM_OPEN_COMPLETED and frame.entity == LIFECYCLE_ENTITY
    )


def segment_sizes(directory: Path, fs: StoreFs = OS_FS) -> list[tuple[int, int]]:
    return [(segment_id, fs.size(path)) for segment_id, path in list_segments(directory, fs)]


def recover(directory: Path, base: ColumnBase | None = None, fs: StoreFs = OS_FS) -> Recovered:
    """Rebuild the committed, visible history from the segments the checkpoint ``base`` does
    not cover (every segment without one)."""
    replayer = _Replayer()
    listed = list_segments(directory, fs)
    covered = dict(base.segments) if base is not None else {}
    if base is not None:
        replayer.out.next_sequence = base.next_sequence
    replayer.out.max_segment_id = listed[-1][0] if listed else 0
    scanned = [(i, path) for i, path in listed if i not in covered]
    # The reference trusts every footer's rows when every segment has a valid SDX3 footer,
    # and otherwise only rows that reach exactly to their footer (format.md §7.1).
    all_trusted = all(has_trusted_footer(path, fs) for _, path in scanned)
    for position, (segment_id, path) in enumerate(listed):
        if segment_id in covered:
            continue
        last = position == len(listed) - 1
        posture: Posture = "recover_torn_tail" if last else "fail_closed"
        data = fs.read(path)
        if not data and not last:
            raise CorruptSegment(segment_id, "sealed segment file is empty")
        replayer.out.segments.append(
            _recover_segment(replayer, segment_id, path, data, posture, last, all_trusted)
        )
    return replayer.out


def _recover_segment(
    replayer: _Replayer,
    segment_id: int,
    path: Path,
    data: bytes,
    posture: Posture,
    last: bool,
    all_trusted: bool = False,
) -> SegmentState:
    size = len(data)
    try:
        start = read_header(segment_id, data)
    except CorruptSegment:
        if last and _short_header(data) and not any_frame_after(data, 8):
            # A crash while creating the newest segment left a partial header. Nothing in it
            # was ever acknowledged, so it recovers as empty (and is rewritten at open).
            return SegmentState(segment_id, path, size, 0, sealed=False, header_ok=False)
        raise
    footer = read_footer(segment_id, data, start)
    if footer is None:
        frames, end = scan_frames(segment_id, data, start, size, posture)
        replayer.segment(segment_id, frames, None)
        return SegmentState(segment_id, path, size, end, sealed=False)
    # A footer's boundary ends the frame region, and everything before it must be whole.
    frames, end = scan_frames(segment_id, data, start, footer.string_table_offset, "fail_closed")
    sequences = None
    if footer.rows is not None:
        # The reference trusts rows only when they reach exactly to the boundary (a segment
        # ending in a batch marker never does); then they carry the true global sequences,
        # which differ from synthesized ones where a failed batch left a gap.
        reach = max((r.frame_offset + r.frame_length for r in footer.rows), default=0)
        if all_trusted or reach == footer.string_table_offset:
            sequences = {row.frame_offset: row.global_sequence for row in footer.rows}
    replayer.segment(segment_id, frames, sequences)
    return SegmentState(segment_id, path, size, end, sealed=True)


def _short_header(data: bytes) -> bool:
    """True when the file is a prefix of a segment header cut short by a crash."""
    if len(data) < 8:
        return data[:4] == b"FBAT"[: len(data[:4])]
    return data[:4] == b"FBAT" and int.from_bytes(data[4:8], "big") + 8 > len(data)
