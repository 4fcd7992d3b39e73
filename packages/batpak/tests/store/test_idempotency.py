"""Durable idempotency (format.md §4, §7.5; facts3 §2): keys, retries, and ``index.idemp``.

Side files are parsed independently with ``struct``, ``zlib`` and ``msgpack``. Kinds used here
are 0xEBxx.
"""

import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import blake3
import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    Coordinate,
    FailClosedError,
    IdempotencyKey,
    NotFound,
    Region,
    SequenceMismatch,
    Store,
    StoreConfig,
)
from batpak.kinds import EventKind

KIND = EventKind.custom(0xE, 0xB30)
COORD = Coordinate("order:1", "shop")


def independent_key(domain: bytes, parts: list[bytes]) -> int:
    """format.md §4: blake3(u64le len ‖ domain ‖ u64le count ‖ (u64le len ‖ part)*)[:16], BE."""
    data = struct.pack("<Q", len(domain)) + domain + struct.pack("<Q", len(parts))
    for part in parts:
        data += struct.pack("<Q", len(part)) + part
    digest: bytes = blake3.blake3(data).digest()
    return int.from_bytes(digest[:16], "big")


def keyed(key: int, **more: Any) -> AppendOptions:
    return AppendOptions(idempotency_key=key, **more)


def segments_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.fbat"))


def side_file(path: Path, magic: bytes) -> tuple[int, dict[str, Any]]:
    data = path.read_bytes()
    got, version, crc = struct.unpack_from("<6sHI", data)
    assert got == magic
    assert zlib.crc32(data[12:]) == crc
    body: dict[str, Any] = msgpack.unpackb(data[12:], raw=False)
    return version, body


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "parts"),
    [
        ("orders", ["create", "42"]),
        ("orders", []),
        ("", [""]),
        ("d\u00e9j\u00e0", ["\u2603", "x" * 300]),
        (b"raw\x00domain", [b"\xff\x00", "text"]),
    ],
)
def test_for_operation_matches_an_independent_computation(
    domain: str | bytes, parts: list[str | bytes]
) -> None:
    key = IdempotencyKey.for_operation(domain, parts)
    as_bytes = [p.encode() if isinstance(p, str) else p for p in parts]
    d = domain.encode() if isinstance(domain, str) else domain
    assert key == independent_key(d, as_bytes)
    assert isinstance(key, int)
    assert 0 < key < 1 << 128


def test_for_operation_is_length_delimited() -> None:
    assert IdempotencyKey.for_operation("ab", ["c"]) != IdempotencyKey.for_operation("a", ["bc"])
    assert IdempotencyKey.for_operation("a", ["b", "c"]) != IdempotencyKey.for_operation(
        "a", ["bc"]
    )
    assert IdempotencyKey.for_operation("a", ["b"]) == IdempotencyKey.for_operation("a", [b"b"])


# --- retries ----------------------------------------------------------------------------------


def test_keyed_append_uses_the_key_and_a_retry_returns_the_original(tmp_path: Path) -> None:
    key = IdempotencyKey.for_operation("orders", ["create", "1"])
    with Store.open(StoreConfig(tmp_path)) as store:
        receipt = store.append(COORD, KIND, {"total": 5}, keyed(key, extensions={"app.x": b"1"}))
        assert receipt.event_id == key
        assert store.get(key).event.header.event_id == key
        size, frontier = segments_size(tmp_path), store.frontier()
        retry = store.append(COORD, KIND, {"total": 999}, keyed(key))  # payload is not compared
        assert retry == receipt
        assert retry.disk_pos == receipt.disk_pos
        assert store.append_msgpack(COORD, KIND, b"\x01", keyed(key)) == receipt
        assert (segments_size(tmp_path), store.frontier()) == (size, frontier)
        assert [e.event_id for e in store.by_entity(COORD.entity)] == [key]


def test_cas_runs_before_the_idempotency_check(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        receipt = store.append(COORD, KIND, 1, keyed(77, expected_sequence=0))  # new reads as 0
        size = segments_size(tmp_path)
        with pytest.raises(SequenceMismatch) as caught:
            store.append(COORD, KIND, 1, keyed(77, expected_sequence=5))
        assert (caught.value.expected, caught.value.actual) == (5, 0)
        assert store.append(COORD, KIND, 1, keyed(77, expected_sequence=0)) == receipt
        store.append(COORD, KIND, 2)  # the entity moves on to clock 1
        with pytest.raises(SequenceMismatch):
            store.append(COORD, KIND, 1, keyed(77, expected_sequence=0))  # now stale
        assert segments_size(tmp_path) > size


def test_retry_after_reopen(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    with Store.open(config) as store:
        receipts = [store.append(COORD, KIND, i, keyed(500 + i)) for i in range(3)]
    with Store.open(config) as store:
        size = segments_size(tmp_path)
        assert [store.append(COORD, KIND, "x", keyed(500 + i)) for i in range(3)] == receipts
        assert segments_size(tmp_path) == size
        assert len(store.by_entity(COORD.entity)) == 3


def test_retry_after_compaction_dropped_the_event(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    doomed = Coordinate("drop:1", "shop")
    with Store.open(config) as store:
        original = store.append(doomed, KIND, "gone", keyed(4242))
        kept = store.append(COORD, KIND, "kept", keyed(4343))
    with Store.open(config) as store:
        store.append(COORD, KIND, "second session")
    with Store.open(config) as store:
        result = store.compact(retain=lambda e: not e.entity.startswith("drop"))
        assert result.events_dropped == 1
        with pytest.raises(NotFound):
            store.get(original.event_id)
        size = segments_size(tmp_path)
        retry = store.append(doomed, KIND, "again", keyed(4242))
        assert retry == original  # including the original disk_pos
        assert retry.disk_pos == original.disk_pos
        assert segments_size(tmp_path) == size
        assert store.by_entity("drop:1") == []
        assert store.append(COORD, KIND, "kept", keyed(4343)).event_id == kept.event_id
    with Store.open(config) as store:
        size = segments_size(tmp_path)
        assert store.append(doomed, KIND, "again", keyed(4242)) == original
        assert segments_size(tmp_path) == size
        assert store.by_entity("drop:1") == []


def test_retry_in_a_snapshot(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "src")) as store:
        receipt = store.append(COORD, KIND, "once", keyed(31337))
        copy = store.snapshot(tmp_path / "copy")
        assert store.append(COORD, KIND, "once", keyed(31337)) == receipt
    assert (copy / "index.idemp").exists()
    with Store.open(StoreConfig(copy)) as snap:
        size = segments_size(copy)
        assert snap.append(COORD, KIND, "once", keyed(31337)) == receipt
        assert segments_size(copy) == size
        assert [e.event_id for e in snap.by_entity(COORD.entity)] == [31337]


# --- index.idemp and store.meta -------------------------------------------------------------------


def test_index_idemp_is_written_at_close_and_authorized_by_store_meta(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    idemp = tmp_path / "index.idemp"
    with Store.open(config) as store:
        first = store.append(COORD, KIND, {"a": 1}, keyed(0x1111, extensions={"app.k": b"v"}))
        second = store.append(COORD, KIND, {"a": 2}, keyed(0x2222))
        store.append(COORD, KIND, {"a": 3})  # unkeyed: not recorded
        assert not idemp.exists()  # appends only update memory
    version, image = side_file(idemp, b"FBATID")
    assert version == 2
    assert list(image) == [
        "lineage",
        "image_id",
        "previous_image_id",
        "compaction_id",
        "anchor",
        "entries",
    ]
    meta_version, meta = side_file(tmp_path / "store.meta", b"FBATSM")
    assert meta_version == 1
    assert image["lineage"] == meta["lineage"]
    assert len(image["image_id"]) == 16
    assert image["previous_image_id"] is None
    assert image["compaction_id"] is None
    authority = meta["idemp_authority"]
    assert authority["current_image_id"] == image["image_id"]
    assert authority["pending_image_id"] is None
    anchor = {
        "covered_global_sequence": second.global_sequence,
        "event_id_at": (0x2222).to_bytes(16, "big"),
        "chain_commitment": list(second.content_hash),
    }
    assert authority["anchor"] == anchor == image["anchor"]
    entries = {e["key"]: e for e in image["entries"]}
    assert set(entries) == {(0x1111).to_bytes(16, "big"), (0x2222).to_bytes(16, "big")}
    record = entries[(0x1111).to_bytes(16, "big")]
    assert record == {
        "key": (0x1111).to_bytes(16, "big"),
        "event_id": (0x1111).to_bytes(16, "big"),
        "global_sequence": first.global_sequence,
        "disk_pos_segment": first.disk_pos.segment_id,
        "disk_pos_offset": first.disk_pos.offset,
        "disk_pos_length": first.disk_pos.length,
        "content_hash": list(first.content_hash),
        "prev_hash": [0] * 32,
        "entity": COORD.entity,
        "scope": COORD.scope,
        "kind": KIND,
        "recorded_global_sequence": first.global_sequence,
        "event_evicted": False,
        "receipt_extensions": {"app.k": list(b"v")},
    }
    # The next close publishes a new image that names this one as its predecessor.
    with Store.open(config) as store:
        store.append(COORD, KIND, 4, keyed(0x3333))
    _, newer = side_file(idemp, b"FBATID")
    _, meta = side_file(tmp_path / "store.meta", b"FBATSM")
    assert newer["previous_image_id"] == image["image_id"]
    assert meta["idemp_authority"]["current_image_id"] == newer["image_id"] != image["image_id"]
    assert len(newer["entries"]) == 3


def test_stores_without_user_keys_have_no_index_idemp(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "lifecycle")):
        pass
    with Store.open(StoreConfig(tmp_path / "unkeyed")) as store:
        store.append(COORD, KIND, 1)
    for name in ("lifecycle", "unkeyed"):
        assert not (tmp_path / name / "index.idemp").exists()
        _, meta = side_file(tmp_path / name / "store.meta", b"FBATSM")
        assert meta["idemp_authority"] is None


def reseal(data: bytes, body: bytes) -> bytes:
    """Keep magic and version, give ``body`` a correct CRC: only decoding can catch it."""
    return data[:8] + struct.pack("<I", zlib.crc32(body)) + body


def rewrite(data: bytes, field: str, value: Any) -> bytes:
    image = msgpack.unpackb(data[12:], raw=False)
    image[field] = value
    return reseal(data, msgpack.packb(image, use_bin_type=True))


DAMAGE: dict[str, Any] = {
    "crc": lambda d: d[:-1] + bytes([d[-1] ^ 0x01]),
    "truncated": lambda d: d[:-5],
    "magic": lambda d: b"XXXXXX" + d[6:],
    "short": lambda d: d[:11],
    "undecodable": lambda d: reseal(d, b"\xc1garbage"),
    "wrong-shape": lambda d: reseal(d, msgpack.packb([1, 2, 3])),
    "foreign-lineage": lambda d: rewrite(d, "lineage", b"\x07" * 16),
    "unauthorized-image": lambda d: rewrite(d, "image_id", b"\x09" * 16),
    "future-version": lambda d: d[:6] + struct.pack("<H", 3) + d[8:],
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_index_idemp_refuses_to_open(tmp_path: Path, damage: str) -> None:
    source = tmp_path / "source"
    with Store.open(StoreConfig(source)) as store:
        store.append(COORD, KIND, 1, keyed(99))
    target = tmp_path / "target"
    shutil.copytree(source, target)
    path = target / "index.idemp"
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    with pytest.raises(FailClosedError):
        Store.open_read_only(StoreConfig(target))
    with pytest.raises(FailClosedError):
        Store.open(StoreConfig(target))
    after = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    assert after == before  # refused before touching anything


def test_a_missing_index_idemp_that_store_meta_expects_refuses_to_open(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        store.append(COORD, KIND, 1, keyed(99))
    (tmp_path / "index.idemp").unlink()
    with pytest.raises(FailClosedError):
        Store.open(StoreConfig(tmp_path))


def receipts_equal(a: list[AppendReceipt], b: list[AppendReceipt]) -> bool:
    return [(r.event_id, r.global_sequence, r.disk_pos) for r in a] == [
        (r.event_id, r.global_sequence, r.disk_pos) for r in b
    ]


def test_keyed_events_of_many_entities_survive_two_restarts(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    with Store.open(config) as store:
        first = [
            store.append(Coordinate(f"c:{i}", "shop"), KIND, i, keyed(700 + i)) for i in range(10)
        ]
    with Store.open(config) as store:
        pass
    with Store.open(config) as store:
        again = [
            store.append(Coordinate(f"c:{i}", "shop"), KIND, i, keyed(700 + i)) for i in range(10)
        ]
        assert receipts_equal(first, again)
        assert again == first
        assert len(store.query(Region.scope("shop"))) == 10
