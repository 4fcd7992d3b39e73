"""Replay: every event of one payload type, in commit order, decoded.

``Store.replay(Order)`` is the fast path for rebuilding state from a whole journal. It reads
the index columns directly (no ``IndexEntry``), reads the frames of a segment in large
positional reads, decodes only each frame's kind, payload version and payload, checks the
payload against the event hash the index holds, and decodes it with one cached decoder
(older payload versions go through their upcasters). It builds no ``StoredEvent``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import msgspec

from batpak.errors import CorruptFrame, CrcMismatch
from batpak.frame import ByteList, payload_bytes
from batpak.payload import decode_payload, kind_of, version_of
from batpak.store._columns import ColumnBase, Location
from batpak.store._entry import IndexEntry

T = TypeVar("T")

SPAN = 1 << 20
"""The most bytes one read covers."""
GAP = 64 << 10
"""The largest gap (other kinds, batch markers) one read skips over."""


class _Header(msgspec.Struct, gc=False):
    event_kind: int
    payload_version: int = 0


class _Event(msgspec.Struct, gc=False):
    header: _Header
    payload: msgspec.Raw


class _Frame(msgspec.Struct, gc=False):
    event: _Event


_frames = msgspec.msgpack.Decoder(_Frame)
_bytes = msgspec.msgpack.Decoder(ByteList)


def locations(
    base: ColumnBase | None, rows: Sequence[int], tail: Sequence[IndexEntry], after: int
) -> Iterator[Location]:
    """The frames of a kind's events after sequence ``after``, in commit order."""
    if base is not None:
        for location in base.locations(rows):
            if location[0] > after:
                yield location
    for e in tail:
        if e.global_sequence > after:
            yield e.global_sequence, e.segment_id, e.offset, e.length, e.event_hash


def decode(
    cls: type[T],
    found: Iterator[Location],
    read: Callable[[int, int, int], bytes],
) -> Iterator[tuple[int, T]]:
    """``(global_sequence, value)`` for each location, reading spans with ``read``."""
    kind, current = kind_of(cls), version_of(cls)
    typed = msgspec.msgpack.Decoder(cls)
    pending: list[Location] = []
    for location in found:
        if pending:
            first, last = pending[0], pending[-1]
            end = last[2] + last[3]
            if (
                location[1] != first[1]
                or not end <= location[2] <= end + GAP
                or location[2] + location[3] - first[2] > SPAN
            ):
                yield from _span(pending, read, typed, cls, kind, current)
                pending = []
        pending.append(location)
    if pending:
        yield from _span(pending, read, typed, cls, kind, current)


def _span(
    span: list[Location],
    read: Callable[[int, int, int], bytes],
    typed: msgspec.msgpack.Decoder[T],
    cls: type[T],
    kind: int,
    current: int,
) -> Iterator[tuple[int, T]]:
    segment, start = span[0][1], span[0][2]
    data = memoryview(read(segment, start, span[-1][2] + span[-1][3] - start))
    for seq, _, offset, length, event_hash in span:
        at = offset - start
        body = data[at + 8 : at + length]
        if zlib.crc32(body) != int.from_bytes(data[at + 4 : at + 8], "big"):
            raise CrcMismatch(segment, offset)
        try:
            event = _frames.decode(body).event
            payload = payload_bytes(event.payload, event_hash)
            if payload is None:
                payload = bytes(_bytes.decode(event.payload))
        except (ValueError, RecursionError) as exc:
            raise CorruptFrame(segment, offset, str(exc)) from exc
        version = event.header.payload_version
        if event.header.event_kind != kind:
            raise CorruptFrame(segment, offset, "frame holds another kind than its index entry")
        if version in (0, current):
            try:
                yield seq, typed.decode(payload)
                continue
            except msgspec.DecodeError:
                pass  # let decode_payload raise its typed error
        yield seq, decode_payload(cls, kind, version, payload)
