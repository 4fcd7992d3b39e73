"""verify_chain (store-api §1.5, format.md §5): content-hash recompute and chain links.

Damage is done with ``msgpack`` on a sealed segment, keeping the frame length and fixing the
frame CRC, so only the chain check (not the CRC) can notice. Kinds used here are 0xEBxx.
"""

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import Coordinate, IndexEntry, Region, Store, StoreConfig
from batpak.errors import CorruptFrame
from batpak.kinds import EventKind

KIND = EventKind.custom(0xE, 0xB80)


def build(directory: Path) -> list[IndexEntry]:
    with Store.open(StoreConfig(directory)) as store:
        for i in range(4):
            for entity in ("a", "b"):
                store.append(Coordinate(entity, "s"), KIND, {"i": i, "data": [1, 2, 3]})
        report = store.verify_chain()
        assert report.is_intact()
        assert report.events_checked == 9
        return store.by_entity("a")


def rewrite_frame(
    directory: Path, entry: IndexEntry, change: Callable[[dict[str, Any]], None]
) -> None:
    """Decode the frame, change it, re-encode at the same length and fix the CRC."""
    path = directory / f"{entry.segment_id:06d}.fbat"
    data = bytearray(path.read_bytes())
    length, _ = struct.unpack_from(">II", data, entry.offset)
    assert 8 + length == entry.length
    body = bytes(data[entry.offset + 8 : entry.offset + entry.length])
    value = msgpack.unpackb(body, raw=False)
    assert msgpack.packb(value, use_bin_type=True) == body  # msgpack round-trips frames exactly
    change(value)
    damaged = msgpack.packb(value, use_bin_type=True)
    assert len(damaged) == len(body)
    data[entry.offset + 4 : entry.offset + 8] = struct.pack(">I", zlib.crc32(damaged))
    data[entry.offset + 8 : entry.offset + entry.length] = damaged
    path.write_bytes(bytes(data))


def flip(values: list[int], at: int) -> None:
    values[at] ^= 0x01  # stays in the same msgpack int class, so the length is unchanged


def test_an_intact_store_is_intact(tmp_path: Path) -> None:
    build(tmp_path)
    with Store.open(StoreConfig(tmp_path)) as store:
        report = store.verify_chain()
        assert report.is_intact()
        assert report.content_hash_mismatches == ()
        assert report.dangling_links == ()
        assert report.events_checked == len(store.query(Region.all()))


def drop_caches(directory: Path, rebuild: bool) -> None:
    """With ``rebuild``, remove every cold-start accelerator so the index comes from frames."""
    if rebuild:
        for name in ("index.cols", "index.fbati", "index.ckpt"):
            (directory / name).unlink(missing_ok=True)


@pytest.mark.parametrize("rebuild", [False, True], ids=["reopen", "rebuilt-index"])
def test_a_flipped_payload_byte_is_a_content_hash_mismatch(tmp_path: Path, rebuild: bool) -> None:
    chain = build(tmp_path)
    target = chain[2]
    rewrite_frame(tmp_path, target, lambda v: flip(v["event"]["payload"], 3))
    drop_caches(tmp_path, rebuild)
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        assert store.get(target.event_id).event.payload != b""
        report = store.verify_chain()
        assert not report.is_intact()
        assert report.content_hash_mismatches == (target.event_id,)
        assert report.dangling_links == ()


@pytest.mark.parametrize("rebuild", [False, True], ids=["reopen", "rebuilt-index"])
def test_a_damaged_prev_hash_is_a_dangling_link(tmp_path: Path, rebuild: bool) -> None:
    """The link checked is the one stored in the segment, whatever cache the index came from."""
    chain = build(tmp_path)
    target = chain[1]
    rewrite_frame(tmp_path, target, lambda v: flip(v["event"]["hash_chain"]["prev_hash"], 0))
    drop_caches(tmp_path, rebuild)
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        report = store.verify_chain()
        assert not report.is_intact()
        assert report.dangling_links == (target.event_id,)
        assert report.content_hash_mismatches == ()
        assert [e.event_id for e in store.walk_ancestors(chain[-1].event_id)] == [
            chain[3].event_id,
            chain[2].event_id,
            chain[1].event_id,
        ]  # the walk stops at the broken link


def test_a_crc_valid_frame_with_an_invalid_coordinate_fails_the_open(tmp_path: Path) -> None:
    """Recovery refuses a committed frame whose entity breaks the coordinate rules (a '/'),
    as the reference refuses frame metadata that does not decode, rather than serving it."""
    chain = build(tmp_path)

    def rename(value: dict[str, Any]) -> None:
        assert value["entity"] == "a"
        value["entity"] = "/"

    rewrite_frame(tmp_path, chain[1], rename)
    drop_caches(tmp_path, True)
    with pytest.raises(CorruptFrame, match="must not contain"):
        Store.open_read_only(StoreConfig(tmp_path))
