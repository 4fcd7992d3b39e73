"""Segment files (``NNNNNN.fbat``): header, frame scanning under the tail policy, SIDX footer.

A segment is ``"FBAT" ‖ header_len u32 BE ‖ msgpack header``, then frames, then (once sealed)
an ``SDX3`` footer (format.md §7.1). Scanning follows the cold-start rules of format.md §7.2:
the last segment may end in a torn frame, which is ignored in place; a CRC-valid frame after a
damaged one is mid-stream corruption and refuses the open; sealed segments must be whole.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
from zlib_ng.zlib_ng import crc32

from batpak import canonical
from batpak.errors import CorruptFrame, CorruptSegment, FutureVersion
from batpak.frame import FRAME_HEADER, MAX_FRAME_BYTES, FrameDecodeError, ScanFrame, decode_scan
from batpak.fs import OS_FS, StoreFs

MAGIC = b"FBAT"
SEGMENT_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
SIDX_ROW = struct.Struct("<16sIIHQIII32s32sQIQ16s16s")
SIDX_TRAILER = struct.Struct("<QI4s")
SIDX_CRC = struct.Struct("<I")
Posture = Literal["recover_torn_tail", "fail_closed"]


class SegmentHeader(msgspec.Struct, gc=False):
    version: int
    flags: int
    created_ns: int
    segment_id: int


def segment_name(segment_id: int) -> str:
    return f"{segment_id:06d}.fbat"


def parse_segment_id(name: str) -> int | None:
    """The id in a segment file name, or None for any other file."""
    stem, dot, ext = name.partition(".")
    if ext != "fbat" or not dot or not stem.isdigit() or not stem.isascii():
        return None
    value = int(stem)
    return value if value < 2**64 else None


def encode_header(segment_id: int, created_ns: int) -> bytes:
    body = canonical.encode(SegmentHeader(SEGMENT_VERSION, 0, created_ns, segment_id))
    return MAGIC + struct.pack(">I", len(body)) + body


def read_header(segment_id: int, data: bytes | memoryview) -> int:
    """Validate the segment header; return the offset of the first frame."""
    if len(data) < 8 or bytes(data[:4]) != MAGIC:
        raise CorruptSegment(segment_id, "missing FBAT magic")
    length: int = struct.unpack_from(">I", data, 4)[0]
    if length > MAX_HEADER_BYTES or 8 + length > len(data):
        raise CorruptSegment(segment_id, f"segment header length {length} is invalid")
    try:
        header = msgspec.msgpack.decode(data[8 : 8 + length], type=SegmentHeader)
    except (ValueError, RecursionError) as exc:  # msgspec.DecodeError, bad UTF-8
        raise CorruptSegment(segment_id, f"segment header does not decode: {exc}") from exc
    if header.version > SEGMENT_VERSION:
        raise FutureVersion(f"segment {segment_id} has format version {header.version}")
    if header.version != SEGMENT_VERSION:
        raise CorruptSegment(segment_id, f"unknown segment version {header.version}")
    return 8 + length


@dataclass(slots=True)
class ScannedFrame:
    offset: int
    length: int
    frame: ScanFrame


@dataclass(slots=True)
class SidxRow:
    event_id: int
    entity: str
    scope: str
    kind: int
    wall_ms: int
    clock: int
    lane: int
    depth: int
    prev_hash: bytes
    event_hash: bytes
    frame_offset: int
    frame_length: int
    global_sequence: int
    correlation_id: int
    causation_id: int


@dataclass(slots=True)
class Footer:
    """A SIDX footer whose boundary can be used: frames end at ``string_table_offset``.

    ``rows`` holds the CRC-checked rows of an SDX3 footer, and is None for a legacy SDX2
    footer, whose rows are never trusted.
    """

    string_table_offset: int
    rows: list[SidxRow] | None


def _frame_at(data: bytes | memoryview, pos: int, end: int) -> int:
    """Length of the CRC-valid frame at ``pos``, or 0 when there is none."""
    if end - pos < 8:
        return 0
    length: int
    crc: int
    length, crc = FRAME_HEADER.unpack_from(data, pos)
    if length == 0 or length > MAX_FRAME_BYTES or pos + 8 + length > end:
        return 0
    if crc32(data[pos + 8 : pos + 8 + length]) != crc:
        return 0
    return 8 + length


def any_frame_after(data: bytes | memoryview, start: int) -> bool:
    """True when some byte offset at or after ``start`` begins a CRC-valid frame."""
    return any(_frame_at(data, probe, len(data)) for probe in range(start, len(data) - 8))


def scan_frames(
    segment_id: int, data: bytes | memoryview, start: int, end: int, posture: Posture
) -> tuple[list[ScannedFrame], int]:
    """Decode every frame in ``data[start:end]``; return them and the end of the valid region.

    Raises ``CorruptFrame`` for a CRC-valid frame that does not decode, and ``CorruptSegment``
    for mid-stream corruption or (under ``fail_closed``) any bytes after the last whole frame.
    """
    frames: list[ScannedFrame] = []
    pos = start
    while pos < end:
        size = _frame_at(data, pos, end)
        if size == 0:
            break
        try:
            frame = decode_scan(data[pos + 8 : pos + size])
        except FrameDecodeError as exc:
            raise CorruptFrame(segment_id, pos, str(exc)) from exc
        frames.append(ScannedFrame(pos, size, frame))
        pos += size
    if pos < end:
        if any_frame_after(data[:end], pos + 1):
            raise CorruptSegment(
                segment_id, f"the damaged frame at offset {pos} is followed by a valid frame"
            )
        if posture == "fail_closed":
            raise CorruptSegment(
                segment_id, f"{end - pos} unreadable bytes at offset {pos} in a sealed segment"
            )
    return frames, pos


def read_footer(segment_id: int, data: bytes | memoryview, frames_start: int) -> Footer | None:
    """Parse a trailing SIDX footer; None when there is none or it fails its checks."""
    size = len(data)
    if size - frames_start < SIDX_TRAILER.size:
        return None
    offset, count, magic = SIDX_TRAILER.unpack_from(data, size - SIDX_TRAILER.size)
    if magic[:3] != b"SDX" or not magic[3:].isdigit():
        return None
    version = int(magic[3:])
    if version >= 4:
        raise FutureVersion(f"segment {segment_id} has a SIDX footer of version {version}")
    if version not in (2, 3):
        return None
    crc_size = SIDX_CRC.size if version == 3 else 0
    rows_start = size - SIDX_TRAILER.size - crc_size - count * SIDX_ROW.size
    if not frames_start <= offset <= rows_start:
        return None
    if version == 2:
        return Footer(offset, None)
    (crc,) = SIDX_CRC.unpack_from(data, size - SIDX_TRAILER.size - crc_size)
    if crc32(data[offset : rows_start + count * SIDX_ROW.size]) != crc:
        return None
    try:
        table = msgspec.msgpack.decode(data[offset:rows_start], type=list[str])
        rows = [_row(table, data, rows_start + i * SIDX_ROW.size) for i in range(count)]
    except (ValueError, IndexError):  # msgspec.DecodeError, bad UTF-8, bad string index
        return None
    return Footer(offset, rows)


def has_trusted_footer(path: Path, fs: StoreFs = OS_FS) -> bool:
    """True when the file ends in an SDX3 footer whose CRC holds (reads only the footer)."""
    size = fs.size(path)
    if size < SIDX_TRAILER.size + SIDX_CRC.size:
        return False
    offset, count, magic = SIDX_TRAILER.unpack(
        fs.read(path, size - SIDX_TRAILER.size, SIDX_TRAILER.size)
    )
    covered_end = size - SIDX_TRAILER.size - SIDX_CRC.size
    if magic != b"SDX3" or not 0 < offset <= covered_end - count * SIDX_ROW.size:
        return False
    region = fs.read(path, offset, size - offset)
    if len(region) != size - offset:
        return False
    crc: int = SIDX_CRC.unpack_from(region, covered_end - offset)[0]
    return crc32(region[: covered_end - offset]) == crc


def _row(table: list[str], data: bytes | memoryview, at: int) -> SidxRow:
    f = SIDX_ROW.unpack_from(data, at)
    return SidxRow(
        event_id=int.from_bytes(f[0], "little"),
        entity=table[f[1]],
        scope=table[f[2]],
        kind=f[3],
        wall_ms=f[4],
        clock=f[5],
        lane=f[6],
        depth=f[7],
        prev_hash=f[8],
        event_hash=f[9],
        frame_offset=f[10],
        frame_length=f[11],
        global_sequence=f[12],
        correlation_id=int.from_bytes(f[13], "little"),
        causation_id=int.from_bytes(f[14], "little"),
    )


def encode_footer(rows: list[SidxRow], string_table_offset: int) -> bytes:
    """An SDX3 footer for ``rows``, to be written at ``string_table_offset``."""
    strings: dict[str, int] = {}
    for row in rows:
        strings.setdefault(row.entity, len(strings))
        strings.setdefault(row.scope, len(strings))
    parts = [canonical.encode(list(strings))]
    for r in rows:
        parts.append(
            SIDX_ROW.pack(
                r.event_id.to_bytes(16, "little"),
                strings[r.entity],
                strings[r.scope],
                r.kind,
                r.wall_ms,
                r.clock,
                r.lane,
                r.depth,
                r.prev_hash,
                r.event_hash,
                r.frame_offset,
                r.frame_length,
                r.global_sequence,
                r.correlation_id.to_bytes(16, "little"),
                r.causation_id.to_bytes(16, "little"),
            )
        )
    body = b"".join(parts)
    crc = SIDX_CRC.pack(crc32(body))
    return body + crc + SIDX_TRAILER.pack(string_table_offset, len(rows), b"SDX3")
