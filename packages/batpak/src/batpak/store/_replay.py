"""Replay: every event of one payload type, in commit order, decoded.

``Store.replay(Order)`` rebuilds state from a whole journal, so it is built for throughput:
per event it runs a few C calls and no Python function. It walks the index columns a batch
of rows at a time (no ``IndexEntry``), reads a segment's frames in spans of up to 1 MiB, and
cuts the payloads out of a span with one pass per step over all its frames (:func:`_cut`):

- each frame's CRC, the canonical start of its body and the event id the index holds;
- the ``payload_version`` key, found by its bytes after the shortest possible header, and
  after it a one-byte version, the ``payload`` key and an array16 head: format.md fixes the
  order of the header's fields and no value before them can hold that run of bytes, so a
  match is the event's own (a first match that is not followed so sends the span on);
- the payload: dropping the 0xcc markers of its int array gives its bytes when the array
  holds each byte in its shortest form, which two counts prove (see :func:`_cut`).

A span that is anything else (another layout, an older payload version to upcast, damage)
takes the exact path, :func:`_exact`: each frame decoded with msgspec as ``Store.events``
does, so damage raises the same typed errors. Values are decoded one by one as the caller
takes them, so a long replay holds one decoded event at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, compress, repeat
from operator import add, le, ne
from typing import Generic, TypeVar

import msgspec
from zlib_ng.zlib_ng import crc32

from batpak.errors import CorruptFrame, CrcMismatch
from batpak.frame import (
    BODY_START,
    CHAIN_KEY,
    PAYLOAD_KEY,
    VERSION_AT,
    VERSION_KEY,
    ByteList,
    int_bytes,
    payload_bytes,
)
from batpak.payload import decode_payload, kind_of, version_of
from batpak.store._columns import ColumnBase, Frames
from batpak.store._entry import IndexEntry

T = TypeVar("T")
Read = Callable[[int, int, int], bytes]

ROWS = 1024
"""Index rows taken per batch."""
SPAN = 1 << 20
"""The most bytes one read covers."""
GAP = 64 << 10
"""The largest gap (other kinds, batch markers) one read skips over."""

_START = struct.Struct(f">4xI{len(BODY_START)}s16s").unpack_from  # crc, body start, event id
_LOW = bytes(range(0x80))
# After the payload_version key: a one-byte version, the payload key, array16, its count.
_AFTER = struct.Struct(f">{len(VERSION_KEY)}xBQBH")
_AFTER_KEY, _AFTER_KEY_SIZE = _AFTER.unpack_from, _AFTER.size
_PAYLOAD_KEY = int.from_bytes(PAYLOAD_KEY, "big")


class Replay(Generic[T]):
    """The events of ``cls``'s kind above sequence ``after``, as ``(sequence, value)`` pairs.

    ``done`` is the last sequence handed out, so a replay cut short by a compaction moving
    frames can start again after it.
    """

    def __init__(
        self,
        cls: type[T],
        base: ColumnBase | None,
        rows: Sequence[int],
        tail: Sequence[IndexEntry],
        after: int,
        read: Read,
    ) -> None:
        self.cls, self.kind, self.version = cls, kind_of(cls), version_of(cls)
        self.decoder = msgspec.msgpack.Decoder(cls)
        self.batches = _batches(base, rows, tail, after)
        self.read = read
        self.done = after

    def __iter__(self) -> Iterator[tuple[int, T]]:
        for frames in self.batches:
            for i, j, heads, ends in _spans(frames):
                segment, start = frames.segments[i], frames.offsets[i]
                data = self.read(segment, start, ends[-1])
                payloads = _cut(data, heads, ends, frames.ids[i * 16 : j * 16], self.version)
                sequences = frames.sequences[i:j]
                if payloads is None:
                    for pair in _exact(self, data, start, frames, i, j):
                        yield pair
                        self.done = pair[0]
                    continue
                try:
                    yield from zip(sequences, map(self.decoder.decode, payloads), strict=True)
                except msgspec.DecodeError:
                    k = _undecodable(self.decoder, payloads)
                    if k:
                        self.done = sequences[k - 1]
                    yield from _exact(self, data, start, frames, i + k, j)  # raises the error
                self.done = sequences[-1]


def _batches(
    base: ColumnBase | None, rows: Sequence[int], tail: Sequence[IndexEntry], after: int
) -> Iterator[Frames]:
    if base is not None:
        for i in range(base.first_after(rows, after), len(rows), ROWS):
            yield base.frames(rows[i : i + ROWS])
    later = [e for e in tail if e.global_sequence > after]
    for i in range(0, len(later), ROWS):
        yield _tail_frames(later[i : i + ROWS])


def _tail_frames(entries: Sequence[IndexEntry]) -> Frames:
    return Frames(
        [e.global_sequence for e in entries],
        [e.segment_id for e in entries],
        [e.offset for e in entries],
        [e.length for e in entries],
        b"".join([e.event_id.to_bytes(16, "big") for e in entries]),
    )


def _spans(frames: Frames) -> Iterator[tuple[int, int, list[int], list[int]]]:
    """Runs ``[i, j)`` of frames one read can cover (one segment, in order, small gaps), with
    where each frame starts and ends relative to the run's first."""
    segments, offsets, lengths = frames.segments, frames.offsets, frames.lengths
    n, first = len(offsets), offsets[0]
    heads = [o - first for o in offsets]
    ends = [h + size for h, size in zip(heads, lengths, strict=True)]
    if (
        segments.count(segments[0]) == n
        and ends[-1] <= SPAN
        and all(map(le, ends, heads[1:]))  # in order, no overlap; SPAN bounds the gaps
    ):
        yield 0, n, heads, ends  # the usual case, checked with a few C-level passes
        return
    i = 0
    for j in range(1, n + 1):
        if (
            j == n
            or segments[j] != segments[i]
            or not ends[j - 1] <= heads[j] <= ends[j - 1] + GAP
            or ends[j] - heads[i] > SPAN
        ):
            shift = heads[i]
            yield i, j, [h - shift for h in heads[i:j]], [e - shift for e in ends[i:j]]
            i = j


def _cut(
    data: bytes, heads: list[int], ends: list[int], ids: bytes, version: int
) -> list[bytes] | None:
    """The payload bytes of each frame of a span (frame k is ``data[heads[k] : ends[k]]``), or
    None unless every frame is intact, canonical, of payload version 0 or ``version`` (under
    128), holds its payload as an array16 (16 to 65535 bytes) and is the event the index says.

    The payload is the array's elements with every 0xcc marker dropped, which is exact when
    each element is a byte in its shortest form. Two counts prove it for the whole span: each
    array's bytes are as many as its count says (an over-long int leaves more, a byte 0xcc
    one fewer), and the markers dropped are as many as the bytes of 0x80 or more left. An
    array failing the first is checked on its own with :func:`batpak.frame.int_bytes`;
    together an over-long int and a byte 0xcc could balance the first count, never both.
    """
    n = len(heads)
    view = memoryview(data)
    crcs = [crc32(view[h + 8 : e]) for h, e in zip(heads, ends, strict=True)]
    fields = list(chain.from_iterable(map(_START, repeat(data), heads)))
    if fields[0::3] != crcs or fields[1::3].count(BODY_START) != n or b"".join(fields[2::3]) != ids:
        return None
    body_to_key = 8 + VERSION_AT
    keys = list(map(data.find, repeat(VERSION_KEY), [h + body_to_key for h in heads], ends))
    if -1 in keys:
        return None
    after = list(chain.from_iterable(map(_AFTER_KEY, repeat(data), keys)))
    versions = after[0::4]
    if (
        versions.count(0) + (versions.count(version) if version else 0) != n
        or after[1::4].count(_PAYLOAD_KEY) != n
        or after[2::4].count(0xDC) != n  # array16
    ):
        return None
    counts, width = after[3::4], _AFTER_KEY_SIZE
    firsts = [k + width for k in keys]
    # The array holds at least ``count`` bytes, so the hash_chain key is no nearer.
    lasts = list(map(data.find, repeat(CHAIN_KEY), map(add, firsts, counts), ends))
    if -1 in lasts:
        return None
    arrays = map(data.__getitem__, map(slice, firsts, lasts))
    payloads = list(map(bytes.translate, arrays, repeat(None), repeat(b"\xcc")))
    sizes = list(map(len, payloads))
    dropped = sum(lasts) - sum(firsts) - sum(sizes)
    high = len(b"".join(payloads).translate(None, _LOW))
    if sizes != counts:
        for i in compress(range(n), map(ne, sizes, counts)):
            array = data[firsts[i] : lasts[i]]
            dropped -= len(array) - sizes[i]
            high -= len(payloads[i].translate(None, _LOW))
            exact = int_bytes(array)
            if exact is None or len(exact) != counts[i]:
                return None
            payloads[i] = exact
    return payloads if dropped == high else None


def _exact(
    replay: Replay[T], data: bytes, start: int, frames: Frames, i: int, j: int
) -> Iterator[tuple[int, T]]:
    """Frames ``[i, j)`` of a span decoded one by one, as ``Store.events`` reads them."""
    for k in range(i, j):
        segment, offset = frames.segments[k], frames.offsets[k]
        at = offset - start
        body = data[at + 8 : at + frames.lengths[k]]
        if crc32(body) != int.from_bytes(data[at + 4 : at + 8], "big"):
            raise CrcMismatch(segment, offset)
        try:
            event = _frames.decode(body).event
            payload = payload_bytes(event.payload)
            if payload is None:
                payload = bytes(_bytes.decode(event.payload))
        except (ValueError, RecursionError) as exc:
            raise CorruptFrame(segment, offset, str(exc)) from exc
        header = event.header
        if header.event_id != frames.ids[k * 16 : k * 16 + 16]:
            raise CorruptFrame(segment, offset, "frame holds a different event")
        if header.event_kind != replay.kind:
            raise CorruptFrame(segment, offset, "frame holds another kind than its index entry")
        yield frames.sequences[k], _value(replay, header.payload_version, payload)


def _value(replay: Replay[T], version: int, payload: bytes) -> T:
    if version in (0, replay.version):
        try:
            return replay.decoder.decode(payload)
        except msgspec.DecodeError:
            pass  # decode_payload raises the typed error
    return decode_payload(replay.cls, replay.kind, version, payload)


def _undecodable(decoder: msgspec.msgpack.Decoder[T], payloads: Iterable[bytes]) -> int:
    """The position of the first payload ``decoder`` refuses."""
    for k, payload in enumerate(payloads):
        try:
            decoder.decode(payload)
        except msgspec.DecodeError:
            return k
    return 0


class _Header(msgspec.Struct, gc=False):
    event_id: bytes
    event_kind: int
    payload_version: int = 0


class _Event(msgspec.Struct, gc=False):
    header: _Header
    payload: msgspec.Raw


class _Frame(msgspec.Struct, gc=False):
    event: _Event


_frames = msgspec.msgpack.Decoder(_Frame)
_bytes = msgspec.msgpack.Decoder(ByteList)
