"""Frames: the CRC-guarded unit of a segment, and the FramePayload map inside it.

A frame is ``len u32 BE ‖ crc32 u32 BE ‖ msgpack`` where the CRC covers the msgpack only
(format.md §7.1). Pure encoding and decoding; no I/O lives here.
"""

from __future__ import annotations

import struct
from typing import Annotated, TypeVar

import msgspec
from zlib_ng.zlib_ng import crc32

from batpak import canonical
from batpak.event import HashChain

FRAME_HEADER = struct.Struct(">II")
ByteList = list[Annotated[int, msgspec.Meta(ge=0, le=0xFF)]]
U16 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
U32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF)]
U64 = Annotated[int, msgspec.Meta(ge=0)]
I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
MAX_FRAME_BYTES = 256 * 1024 * 1024
F = TypeVar("F")


class WirePosition(msgspec.Struct, gc=False):
    wall_ms: U64
    counter: U16
    depth: U32
    lane: U32
    sequence: U32


class WireHeader(msgspec.Struct, gc=False):
    event_id: bytes
    correlation_id: bytes
    causation_id: bytes | None
    timestamp_us: I64
    position: WirePosition
    payload_size: U32
    event_kind: U16
    flags: Annotated[int, msgspec.Meta(ge=0, le=0xFF)]
    content_hash: ByteList = msgspec.field(default_factory=lambda: [0] * 32)
    payload_version: U16 = 0


class WireHashChain(msgspec.Struct, gc=False):
    prev_hash: ByteList
    event_hash: ByteList


class WireEvent(msgspec.Struct, gc=False):
    header: WireHeader
    payload: ByteList
    hash_chain: WireHashChain | None


class WireFrame(msgspec.Struct, gc=False):
    """FramePayload: the event, its coordinate strings and receipt extensions."""

    event: WireEvent
    entity: str
    scope: str
    receipt_extensions: dict[str, ByteList] = msgspec.field(default_factory=dict)


class ScanEvent(msgspec.Struct, gc=False):
    header: WireHeader
    payload: msgspec.Raw
    hash_chain: WireHashChain | None


class ScanFrame(msgspec.Struct, gc=False):
    """FramePayload with the payload left undecoded: what cold start needs for the index."""

    event: ScanEvent
    entity: str
    scope: str
    receipt_extensions: dict[str, ByteList] = msgspec.field(default_factory=dict)


class LoadEvent(msgspec.Struct, gc=False):
    header: WireHeader
    payload: msgspec.Raw
    hash_chain: msgspec.Raw


class LoadFrame(msgspec.Struct, gc=False):
    """FramePayload for a read of a known event: the payload array and the chain are left
    raw (see :func:`payload_bytes`)."""

    event: LoadEvent
    entity: str
    scope: str


_frame_decoder = msgspec.msgpack.Decoder(WireFrame)
_scan_decoder = msgspec.msgpack.Decoder(ScanFrame)
_load_decoder = msgspec.msgpack.Decoder(LoadFrame)
_chain_decoder = msgspec.msgpack.Decoder(WireHashChain | None)


class FrameDecodeError(ValueError):
    """Frame bytes are not a well-formed FramePayload."""


def encode_frame(frame: WireFrame) -> bytes:
    """The whole frame: length and CRC header, then the canonical FramePayload."""
    body = canonical.encode(frame)
    return FRAME_HEADER.pack(len(body), crc32(body)) + body


def _decode(decoder: msgspec.msgpack.Decoder[F], data: bytes | memoryview) -> F:
    try:
        return decoder.decode(data)
    # msgspec.DecodeError, invalid UTF-8 (UnicodeDecodeError) and over-deep nesting.
    except (ValueError, RecursionError) as exc:
        raise FrameDecodeError(str(exc)) from exc


def decode_body(body: bytes | memoryview) -> WireFrame:
    frame = _decode(_frame_decoder, body)
    _check(frame)
    return frame


def decode_scan(body: bytes | memoryview) -> ScanFrame:
    """Decode a frame's metadata, skipping over (not decoding) the payload bytes."""
    frame = _decode(_scan_decoder, body)
    _check(frame)
    return frame


def decode_load(body: bytes | memoryview) -> LoadFrame:
    """Decode a frame's header, coordinate and framing, leaving payload and chain raw."""
    frame = _decode(_load_decoder, body)
    _check_header(frame.event.header)
    return frame


def decode_chain(raw: msgspec.Raw) -> HashChain | None:
    """A frame's hash chain as stored (nil for none)."""
    chain = _decode(_chain_decoder, raw)
    if chain is None:
        return None
    if len(chain.prev_hash) != 32 or len(chain.event_hash) != 32:
        raise FrameDecodeError("hash chain values are not 32 bytes")
    return HashChain(bytes(chain.prev_hash), bytes(chain.event_hash))


def payload_bytes(raw: msgspec.Raw | bytes) -> bytes | None:
    """The payload bytes of a frame's raw int array, exactly, or None when the array holds
    anything but bytes in their shortest form (then decode it as a ``ByteList``)."""
    data = bytes(raw)
    first = data[:1]
    if b"\x90" <= first <= b"\x9f":
        count, start = data[0] & 0x0F, 1
    elif first == b"\xdc" and len(data) >= 3:
        count, start = int.from_bytes(data[1:3], "big"), 3
    elif first == b"\xdd" and len(data) >= 5:
        count, start = int.from_bytes(data[1:5], "big"), 5
    else:
        return None
    payload = int_bytes(data[start:])
    return payload if payload is not None and len(payload) == count else None


_MARKER = bytes(1 if b == 0xCC else 0 for b in range(256))
_HIGH = bytes(1 if b >= 0x80 and b != 0xCC else 0 for b in range(256))


def int_bytes(elements: bytes) -> bytes | None:
    """The bytes a run of MessagePack ints spells, if each is a byte in its shortest form.

    A canonical int array (format.md §1) writes a byte below 0x80 as itself and any other as
    ``0xcc, byte``. The run is exactly that when every 0xcc marker is followed by a byte of
    0x80 or more and every such byte follows a marker, ``0xcc 0xcc`` (the byte 0xcc) counted
    as one element: checked with two table translations compared one position apart, so no
    Python runs per byte. None for anything else, including a marker cut off at the end.
    """
    if _shortest(elements):
        return elements.translate(None, b"\xcc")
    if b"\xcc\xcc" not in elements or not _shortest(elements.replace(b"\xcc\xcc", b"\x00")):
        return None
    parts = elements.split(b"\xcc\xcc")  # the same pairs, left to right, as replace took
    return b"\xcc".join([part.translate(None, b"\xcc") for part in parts])


def _shortest(elements: bytes) -> bool:
    """Whether every 0xcc is followed by a byte of 0x80 or more, every such byte follows a
    0xcc, and no 0xcc follows a 0xcc."""
    return b"\x00" + elements.translate(_MARKER) == elements.translate(_HIGH) + b"\x00"


# The canonical FramePayload layout (format.md §1, §4), which the replay fast path reads by
# its bytes: keys in declaration order, ints in their shortest form.
VERSION_KEY = canonical.encode("payload_version")
PAYLOAD_KEY = canonical.encode("payload")
CHAIN_KEY = canonical.encode("hash_chain")


def _canonical_start() -> tuple[bytes, int]:
    """What every canonical frame body holds before its event id, and the least offset its
    ``payload_version`` key can have (a header of one-byte values and no causation)."""
    header = WireHeader(bytes(16), bytes(16), None, 0, WirePosition(0, 0, 0, 0, 0), 0, 0, 0)
    body = canonical.encode(WireFrame(WireEvent(header, [], None), "e", "s"))
    return body[: body.index(bytes(16))], body.index(VERSION_KEY)


BODY_START, VERSION_AT = _canonical_start()


def _check_header(header: WireHeader) -> None:
    if len(header.event_id) != 16 or len(header.correlation_id) != 16:
        raise FrameDecodeError("event or correlation id is not 16 bytes")
    if header.causation_id is not None and len(header.causation_id) != 16:
        raise FrameDecodeError("causation id is not 16 bytes")
    if len(header.content_hash) != 32:
        raise FrameDecodeError("content_hash is not 32 bytes")


def _check(frame: WireFrame | ScanFrame) -> None:
    _check_header(frame.event.header)
    chain = frame.event.hash_chain
    if chain is not None and (len(chain.prev_hash) != 32 or len(chain.event_hash) != 32):
        raise FrameDecodeError("hash chain values are not 32 bytes")
