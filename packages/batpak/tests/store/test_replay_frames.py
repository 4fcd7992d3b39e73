"""Replay's frame reading on hand-built segment bytes: the fast cut and the exact path agree.

Every case builds frames with the writer's own encoder, optionally rewrites the payload int
array in a way MessagePack allows but the canonical form does not (re-signing the CRC, so
only the layout differs), and checks replay returns what a full decode returns, or raises
the typed error a full decode raises.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from batpak import event_payload, upcaster
from batpak.errors import CorruptFrame, CrcMismatch
from batpak.frame import (
    FRAME_HEADER,
    WireEvent,
    WireFrame,
    WireHashChain,
    WireHeader,
    WirePosition,
    decode_body,
    decode_load,
    encode_frame,
    int_bytes,
    payload_bytes,
)
from batpak.store import _replay
from batpak.store._entry import IndexEntry


@event_payload(category=0xE, type_id=0x9B1, version=2)
class Blob(msgspec.Struct):
    data: bytes
    n: int


@upcaster(Blob, from_version=1)
def _blob_v1(value: dict[str, Any]) -> dict[str, Any]:
    return value  # every open checks the registry: each version needs its step


KIND = 0xE9B1
SEGMENT = 7


def frame(
    n: int,
    data: bytes,
    version: int = 0,
    *,
    causation: bytes | None = None,
    content_hash: bytes = bytes(range(200, 232)),
) -> bytes:
    payload = msgspec.msgpack.encode(Blob(data, n))
    header = WireHeader(
        event_id=n.to_bytes(16, "big"),
        correlation_id=n.to_bytes(16, "big"),
        causation_id=causation,
        timestamp_us=1_700_000_000_000_000 + n,
        position=WirePosition(1_700_000_000_000 + n, n % 300, 0, 0, n),
        payload_size=len(payload),
        event_kind=KIND,
        flags=0,
        content_hash=list(content_hash),
        payload_version=version,
    )
    chain = WireHashChain(list(bytes(range(224, 256))), list(bytes(32)))
    return encode_frame(WireFrame(WireEvent(header, list(payload), chain), f"blob:{n}", "s"))


def resign(whole: bytes, body: bytes) -> bytes:
    return FRAME_HEADER.pack(len(body), zlib.crc32(body)) + body


def rewrite_array(whole: bytes, elements: Callable[[bytes], bytes]) -> bytes:
    """The frame with its payload array's elements replaced (count kept, CRC re-signed)."""
    body = whole[8:]
    at = body.index(b"\xa7payload\xdc") + 8
    count = int.from_bytes(body[at + 1 : at + 3], "big")
    end = body.index(b"\xaahash_chain", at)
    assert len(int_bytes(body[at + 3 : end]) or b"") == count
    return resign(whole, body[: at + 3] + elements(body[at + 3 : end]) + body[end:])


def replay(frames: list[bytes]) -> list[tuple[int, Blob]]:
    data, tail, offset = b"", [], 100
    for n, whole in enumerate(frames):
        tail.append(entry(n, offset, len(whole)))
        data += whole
        offset += len(whole)

    def read(segment: int, at: int, size: int) -> bytes:
        assert segment == SEGMENT
        return data[at - 100 : at - 100 + size]

    return list(_replay.Replay(Blob, None, (), tail, -1, read))


def entry(n: int, offset: int, length: int) -> IndexEntry:
    return IndexEntry(
        event_id=n,
        correlation_id=n,
        causation_id=None,
        entity=f"blob:{n}",
        scope="s",
        event_kind=KIND,
        wall_ms=0,
        clock=0,
        lane=0,
        depth=0,
        prev_hash=bytes(32),
        event_hash=bytes(32),
        global_sequence=n,
        segment_id=SEGMENT,
        offset=offset,
        length=length,
    )


def full_decode(whole: bytes) -> Blob:
    payload = bytes(decode_body(whole[8:]).event.payload)
    return msgspec.msgpack.decode(payload, type=Blob)


PAYLOADS = [
    bytes(range(256)),
    bytes(range(255, -1, -1)),
    b"\xcc" * 40,
    b"\xcc\x80" * 20,
    b"\x80\xcc" * 20,
    b"\xcc" * 39 + b"\x05",
    b"plain ascii payload, long enough for an array16",
    b"\xaahash_chain inside the payload bytes",
    b"\xafpayload_version\x00\xa7payload\xdc in a payload",
    b"",
    b"x",
]


def test_every_byte_value_and_0xcc_runs_come_back_exactly() -> None:
    frames = [frame(n, data, version=(0, 2)[n % 2]) for n, data in enumerate(PAYLOADS)]
    assert replay(frames) == [(n, Blob(data, n)) for n, data in enumerate(PAYLOADS)]


def test_canonical_frames_take_the_fast_cut() -> None:
    frames = [frame(n, data) for n, data in enumerate(PAYLOADS[:7] * 3)]
    data = b"".join(frames)
    heads, at = [], 0
    for whole in frames:
        heads.append(at)
        at += len(whole)
    ends = [h + len(w) for h, w in zip(heads, frames, strict=True)]
    ids = b"".join(n.to_bytes(16, "big") for n in range(len(frames)))
    cut = _replay._cut(data, heads, ends, ids, 2)
    assert cut is not None
    assert [msgspec.msgpack.decode(p, type=Blob) for p in cut] == [full_decode(w) for w in frames]
    # the same span with another event's id where the index expects this one: no fast cut
    assert _replay._cut(data, heads, ends, ids[16:] + ids[:16], 2) is None


def widened(elements: bytes, prefix: bytes) -> bytes:
    """Every fixint element written with ``prefix`` before it: valid MessagePack, not
    canonical (``d0 xx`` is int8, ``cc xx`` uint8 for a value under 0x80)."""
    out = bytearray()
    i = 0
    while i < len(elements):
        if elements[i] == 0xCC:
            out += elements[i : i + 2]
            i += 2
        else:
            out += prefix + elements[i : i + 1]
            i += 1
    return bytes(out)


def overlong(elements: bytes) -> bytes:
    return widened(elements, b"\xd0")


def one_overlong(elements: bytes) -> bytes:
    """The first fixint as uint16 (``cd 00 xx``), the rest untouched."""
    i = next(i for i, b in enumerate(elements) if b < 0x80 and (i == 0 or elements[i - 1] != 0xCC))
    return elements[:i] + b"\xcd\x00" + elements[i:]


def one_int8(elements: bytes) -> bytes:
    """The first ``aaaa``'s ``a`` as int8 (``d0 61``): one byte more, as a 0xcc is one fewer."""
    i = elements.index(b"aaaa")
    return elements[:i] + b"\xd0" + elements[i:]


def long_uint8(elements: bytes) -> bytes:
    return widened(elements, b"\xcc")


@pytest.mark.parametrize("rewrite", [overlong, one_overlong, long_uint8])
@pytest.mark.parametrize("data", [bytes(range(256)), b"\xcc" * 30 + b"abc", b"a" * 40])
def test_non_canonical_int_arrays_decode_as_a_full_decode_does(
    rewrite: Callable[[bytes], bytes], data: bytes
) -> None:
    frames = [frame(0, b"first" * 4), rewrite_array(frame(1, data), rewrite), frame(2, data)]
    assert [value for _, value in replay(frames)] == [full_decode(w) for w in frames]
    assert replay(frames)[1] == (1, Blob(data, 1))


def test_a_byte_0xcc_balanced_by_an_overlong_int_is_not_taken_for_plain_bytes() -> None:
    # One uint8 0xcc element (one byte fewer once markers drop) and one over-long int (one
    # more) keep the array's length right, and dropping markers would still spell a valid
    # Blob, a wrong one; the marker count tells them apart.
    data = b"\xcc" + b"a" * 30
    whole = rewrite_array(frame(0, data), one_int8)
    assert payload_bytes(decode_load(whole[8:]).event.payload) is None
    assert replay([whole, frame(1, b"b" * 20)]) == [(0, Blob(data, 0)), (1, Blob(b"b" * 20, 1))]


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda e: b"\xc0" + e[1:],  # a nil where the first byte was
        lambda e: b"\xa1" + e[1:],  # a one-char string head
        lambda e: e[:-1] + b"\xe0",  # a negative fixint last
    ],
)
def test_an_int_array_holding_other_values_is_a_corrupt_frame(
    rewrite: Callable[[bytes], bytes],
) -> None:
    frames = [frame(0, b"a" * 40), rewrite_array(frame(1, b"b" * 40), rewrite)]
    with pytest.raises(CorruptFrame):
        replay(frames)


def test_a_damaged_payload_byte_is_a_crc_mismatch() -> None:
    whole = bytearray(frame(1, bytes(range(256))))
    at = whole.index(b"\xa7payload\xdc") + 40
    whole[at] ^= 0x01
    with pytest.raises(CrcMismatch):
        replay([frame(0, b"a" * 40), bytes(whole), frame(2, b"c" * 40)])


def test_a_frame_of_another_event_is_a_corrupt_frame() -> None:
    frames = [frame(0, b"a" * 40), frame(5, b"b" * 40)]
    with pytest.raises(CorruptFrame, match="different event"):
        replay(frames)


def test_a_causation_id_holding_the_payload_key_bytes_is_not_taken_for_it() -> None:
    fake = b"\xafpayload_version"  # 16 bytes: exactly a causation id
    frames = [frame(0, b"a" * 40, causation=fake), frame(1, b"b" * 40, causation=fake)]
    assert replay(frames) == [(0, Blob(b"a" * 40, 0)), (1, Blob(b"b" * 40, 1))]


def test_a_content_hash_holding_the_payload_key_bytes_is_not_taken_for_it() -> None:
    # As the header's int array the hash spells ``... cc af p a y l o a d _ v e r s i o n``:
    # the first match of the key, but not followed by a version and the payload key.
    fake = bytes(16) + b"\xafpayload_version"
    frames = [
        frame(n, b"ab" * 20, content_hash=fake, causation=bytes(range(1, 17))) for n in (0, 1)
    ]
    assert frames[0][8:].find(b"\xafpayload_version") < frames[0][8:].rfind(b"\xafpayload_version")
    assert replay(frames) == [(0, Blob(b"ab" * 20, 0)), (1, Blob(b"ab" * 20, 1))]


def test_int_bytes_accepts_only_shortest_form_bytes() -> None:
    for data in PAYLOADS:
        elements = msgspec.msgpack.encode(list(data))
        start = 1 if len(data) < 16 else 3
        assert int_bytes(elements[start:]) == data
        assert payload_bytes(msgspec.Raw(elements)) == data
    for bad in [b"\xcc", b"\xcc\x05", b"\x80", b"\xcc\xcc\xcc", b"\xd0\x05", b"a\xcc"]:
        assert int_bytes(bad) is None
