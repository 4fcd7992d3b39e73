"""Segment, frame, SIDX footer and store.meta bytes (format.md §4, §5, §7.1, §7.5).

The written store is checked with an independent parser built on ``msgpack`` and ``struct``
only, never with batpak's own decoders.
"""

import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import blake3
import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import AppendOptions, AppendReceipt, Coordinate, Store, StoreConfig
from batpak.canonical import encode
from batpak.frame import WireEvent, WireFrame, WireHashChain, WireHeader, WirePosition, encode_frame
from batpak.kinds import EventKind
from batpak.segment import encode_header, read_header

T0_US = 1_700_000_000_000_000
KIND = EventKind.custom(0xE, 0x901)
HEADER_KEYS = [
    "event_id",
    "correlation_id",
    "causation_id",
    "timestamp_us",
    "position",
    "payload_size",
    "event_kind",
    "flags",
    "content_hash",
    "payload_version",
]
POSITION_KEYS = ["wall_ms", "counter", "depth", "lane", "sequence"]
ROW = "<16sIIHQIII32s32sQIQ16s16s"


class StepClock:
    """A deterministic clock in µs that advances 1 ms per reading."""

    def __init__(self) -> None:
        self._now = T0_US
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._now += 1000
            return self._now


def _strict_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out = dict(pairs)
    assert len(out) == len(pairs), "duplicate map key"
    return out


def unpack(data: bytes) -> Any:
    """Independent decode; dicts keep the on-wire key order, bin stays bytes."""
    return msgpack.unpackb(data, raw=False, object_pairs_hook=_strict_map, strict_map_key=False)


def parse_frames(data: bytes, start: int, end: int) -> list[tuple[int, int, dict[str, Any]]]:
    """(offset, whole length, FramePayload) for every frame in ``data[start:end]``."""
    frames = []
    pos = start
    while pos < end:
        length, crc = struct.unpack_from(">II", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        assert len(body) == length
        assert zlib.crc32(body) == crc
        frames.append((pos, 8 + length, unpack(body)))
        pos += 8 + length
    assert pos == end
    return frames


def parse_footer(data: bytes) -> tuple[int, list[str], list[tuple[Any, ...]]]:
    """(string_table_offset, string table, raw rows) of an SDX3 footer, CRC checked."""
    table_offset, count, magic = struct.unpack_from("<QI4s", data, len(data) - 16)
    assert magic == b"SDX3"
    rows_start = len(data) - 16 - 4 - count * 162
    (crc,) = struct.unpack_from("<I", data, len(data) - 20)
    assert zlib.crc32(data[table_offset : len(data) - 20]) == crc
    table = unpack(data[table_offset:rows_start])
    rows = [struct.unpack_from(ROW, data, rows_start + i * 162) for i in range(count)]
    return table_offset, table, rows


# --- pure encoders --------------------------------------------------------------------------


def test_segment_header_is_49_byte_map_and_frames_start_at_57() -> None:
    created_ns = T0_US * 1000
    raw = encode_header(1, created_ns)
    assert raw[:4] == b"FBAT"
    assert struct.unpack_from(">I", raw, 4)[0] == 49
    assert len(raw) == 57
    header = unpack(raw[8:])
    assert list(header) == ["version", "flags", "created_ns", "segment_id"]
    assert header == {"version": 1, "flags": 0, "created_ns": created_ns, "segment_id": 1}
    assert raw[8:] == msgpack.packb(header, use_bin_type=True)
    assert read_header(1, raw) == 57


def test_segment_header_length_follows_integer_sizes() -> None:
    assert len(encode_header(127, T0_US * 1000)) == 57
    assert len(encode_header(128, T0_US * 1000)) == 58  # segment_id needs cc 80
    assert read_header(128, encode_header(128, T0_US * 1000)) == 58


def test_frame_is_be_length_and_be_crc_over_the_msgpack() -> None:
    payload = encode({"k": 1})
    digest = blake3.blake3(payload).digest()
    frame = WireFrame(
        event=WireEvent(
            header=WireHeader(
                event_id=(7).to_bytes(16, "big"),
                correlation_id=(7).to_bytes(16, "big"),
                causation_id=None,
                timestamp_us=T0_US,
                position=WirePosition(T0_US // 1000, 0, 0, 0, 0),
                payload_size=len(payload),
                event_kind=KIND,
                flags=0,
                content_hash=list(digest),
                payload_version=0,
            ),
            payload=list(payload),
            hash_chain=WireHashChain([0] * 32, list(digest)),
        ),
        entity="e:1",
        scope="s",
        receipt_extensions={},
    )
    raw = encode_frame(frame)
    length, crc = struct.unpack_from(">II", raw)
    body = raw[8:]
    assert length == len(body)
    assert crc == zlib.crc32(body)
    decoded = unpack(body)
    assert list(decoded) == ["event", "entity", "scope", "receipt_extensions"]
    assert body.endswith(b"\x80")  # empty receipt_extensions is written as an empty map
    assert msgpack.packb(decoded, use_bin_type=True) == body


# --- a written store, parsed independently ------------------------------------------------


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, list[AppendReceipt], int]:
    """A closed one-session store: 3 events on entity a, 2 on b; returns receipts + lineage."""
    a, b = Coordinate("entity:a", "scope:x"), Coordinate("entity:b", "scope:y")
    cause = 0x0123456789ABCDEF0123456789ABCDEF
    receipts = []
    with Store.open(StoreConfig(tmp_path, clock=StepClock())) as store:
        receipts.append(store.append(a, KIND, {"n": 0}))
        receipts.append(store.append(b, KIND, {"n": 1}))
        opts = AppendOptions(causation_id=cause, correlation_id=cause, extensions={"z.k": b"\x01"})
        receipts.append(store.append(a, KIND, {"n": 2}, opts))
        ext = {"zeta.k": b"\xff\x00", "alpha.k": b"v"}
        receipts.append(store.append(a, KIND, "third", AppendOptions(extensions=ext)))
        receipts.append(store.append(b, KIND, [1, 2, 3]))
        lineage = store.identity()
    assert lineage is not None
    return tmp_path, receipts, lineage


def test_segment_frames_follow_the_wire_layout(
    written: tuple[Path, list[AppendReceipt], int],
) -> None:
    directory, receipts, _ = written
    data = (directory / "000001.fbat").read_bytes()
    assert struct.unpack_from(">I", data, 4)[0] == 49
    table_offset, _, _ = parse_footer(data)
    frames = parse_frames(data, 57, table_offset)
    assert len(frames) == 1 + len(receipts) + 1  # OPEN, five appends, CLOSE
    for _, _, frame in frames:
        assert list(frame) == ["event", "entity", "scope", "receipt_extensions"]
        event = frame["event"]
        assert list(event) == ["header", "payload", "hash_chain"]
        header = event["header"]
        assert list(header) == HEADER_KEYS
        assert list(header["position"]) == POSITION_KEYS
        assert isinstance(header["event_id"], bytes)
        assert len(header["event_id"]) == 16
        assert isinstance(event["payload"], list)
        assert all(isinstance(x, int) and 0 <= x <= 255 for x in event["payload"])
        payload = bytes(event["payload"])
        digest = list(blake3.blake3(payload).digest())
        assert header["content_hash"] == digest
        assert list(event["hash_chain"]) == ["prev_hash", "event_hash"]
        assert event["hash_chain"]["event_hash"] == digest
        assert header["payload_size"] == len(payload)
        assert (header["position"]["counter"], header["position"]["lane"]) == (0, 0)
        event_id = int.from_bytes(header["event_id"], "big")
        assert event_id >> 80 == header["timestamp_us"] // 1000  # UUIDv7 48-bit ms
        assert (event_id >> 76) & 0xF == 7
        assert (event_id >> 62) & 0x3 == 0b10
    user = frames[1:-1]
    for (offset, length, frame), receipt in zip(user, receipts, strict=True):
        header = frame["event"]["header"]
        assert int.from_bytes(header["event_id"], "big") == receipt.event_id
        assert (receipt.disk_pos.segment_id, receipt.disk_pos.offset) == (1, offset)
        assert receipt.disk_pos.length == length
        assert bytes(header["content_hash"]) == receipt.content_hash
        assert header["event_kind"] == KIND
        assert header["payload_version"] == 0
    first, third, fourth = user[0][2], user[2][2], user[3][2]
    assert first["event"]["header"]["correlation_id"] == first["event"]["header"]["event_id"]
    assert first["event"]["header"]["causation_id"] is None
    assert first["receipt_extensions"] == {}
    cause = (0x0123456789ABCDEF0123456789ABCDEF).to_bytes(16, "big")
    assert third["event"]["header"]["causation_id"] == cause
    assert third["event"]["header"]["correlation_id"] == cause
    assert list(fourth["receipt_extensions"]) == ["alpha.k", "zeta.k"]  # bytewise order
    assert fourth["receipt_extensions"] == {"alpha.k": [0x76], "zeta.k": [0xFF, 0x00]}
    assert bytes(fourth["event"]["payload"]) == msgpack.packb("third")


def test_per_entity_hash_chain_from_genesis(
    written: tuple[Path, list[AppendReceipt], int],
) -> None:
    directory, _, _ = written
    data = (directory / "000001.fbat").read_bytes()
    frames = parse_frames(data, 57, parse_footer(data)[0])
    chains: dict[str, list[dict[str, Any]]] = {}
    for _, _, frame in frames:
        chains.setdefault(frame["entity"], []).append(frame["event"])
    assert [len(chains[e]) for e in ("entity:a", "entity:b", "batpak:store")] == [3, 2, 2]
    for events in chains.values():
        previous = [0] * 32
        for sequence, event in enumerate(events):
            assert event["header"]["position"]["sequence"] == sequence
            assert event["hash_chain"]["prev_hash"] == previous
            previous = event["hash_chain"]["event_hash"]
        walls = [e["header"]["position"]["wall_ms"] for e in events]
        assert walls == sorted(walls)


def test_lifecycle_open_and_close_frames(written: tuple[Path, list[AppendReceipt], int]) -> None:
    directory, receipts, _ = written
    data = (directory / "000001.fbat").read_bytes()
    frames = parse_frames(data, 57, parse_footer(data)[0])
    opened, closed = frames[0][2], frames[-1][2]
    for frame, kind in ((opened, 0x0008), (closed, 0x0009)):
        assert (frame["entity"], frame["scope"]) == ("batpak:store", "batpak:lifecycle")
        assert frame["event"]["header"]["event_kind"] == kind
    report = unpack(bytes(opened["event"]["payload"]))
    assert report["path"] == "Rebuild"
    assert report["restored_entries"] == 0
    last = frames[-2][2]["event"]["header"]
    close_payload = unpack(bytes(closed["event"]["payload"]))
    assert list(close_payload) == ["wall_ms", "global_sequence"]
    assert close_payload == {
        "wall_ms": last["position"]["wall_ms"],
        "global_sequence": receipts[-1].global_sequence,
    }


def test_sdx3_footer_rows_match_the_frames(
    written: tuple[Path, list[AppendReceipt], int],
) -> None:
    directory, receipts, _ = written
    data = (directory / "000001.fbat").read_bytes()
    table_offset, table, rows = parse_footer(data)
    frames = parse_frames(data, 57, table_offset)
    assert table == [
        "batpak:store",
        "batpak:lifecycle",
        "entity:a",
        "scope:x",
        "entity:b",
        "scope:y",
    ]
    assert len(rows) == len(frames)
    assert rows[-1][10] + rows[-1][11] == table_offset
    for sequence, (row, (offset, length, frame)) in enumerate(zip(rows, frames, strict=True)):
        header = frame["event"]["header"]
        chain = frame["event"]["hash_chain"]
        event_id, entity_idx, scope_idx, kind, wall_ms, clock, lane, depth = row[:8]
        assert event_id == header["event_id"][::-1]  # u128 little-endian
        assert (table[entity_idx], table[scope_idx]) == (frame["entity"], frame["scope"])
        assert kind == header["event_kind"]
        position = header["position"]
        assert (wall_ms, clock, lane, depth) == (
            position["wall_ms"],
            position["sequence"],
            position["lane"],
            position["depth"],
        )
        assert (list(row[8]), list(row[9])) == (chain["prev_hash"], chain["event_hash"])
        assert (row[10], row[11], row[12]) == (offset, length, sequence)
        assert row[13] == header["correlation_id"][::-1]
        causation = header["causation_id"]
        assert row[14] == (bytes(16) if causation is None else causation[::-1])
    assert [rows[i + 1][12] for i in range(len(receipts))] == [r.global_sequence for r in receipts]


def test_store_meta_is_80_bytes_fbatsm_v1(written: tuple[Path, list[AppendReceipt], int]) -> None:
    directory, _, lineage = written
    raw = (directory / "store.meta").read_bytes()
    assert len(raw) == 80
    magic, version, crc = struct.unpack_from("<6sHI", raw)
    assert (magic, version) == (b"FBATSM", 1)
    assert crc == zlib.crc32(raw[12:])
    body = unpack(raw[12:])
    assert list(body) == ["lineage", "idemp_authority", "last_compaction_commit"]
    assert body == {
        "lineage": lineage.to_bytes(16, "big"),
        "idemp_authority": None,
        "last_compaction_commit": None,
    }
    assert raw[12:13] == b"\x83"
    assert raw[21:23] == b"\xc4\x10"  # lineage is bin16
