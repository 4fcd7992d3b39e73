"""Store.replay: one payload type's events in commit order, decoded, the same as a full load."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from batpak import (
    BatchAppendItem,
    Coordinate,
    Region,
    Store,
    StoreConfig,
    TypedDecodeError,
    canonical,
    event_payload,
    upcaster,
)
from batpak.errors import CrcMismatch, PayloadFutureVersion
from batpak.options import DEFAULT_OPTIONS


@event_payload(category=0xE, type_id=0x9A1)
class Order(msgspec.Struct):
    id: int
    qty: int
    note: str


@event_payload(category=0xE, type_id=0x9A2)
class Other(msgspec.Struct):
    x: int


def orders(n: int) -> list[Order]:
    # qty 204 is stored as the byte 0xcc, which takes the exact (slow) payload path.
    return [Order(i, 204 if i % 5 == 0 else i % 100, "é" * (i % 7)) for i in range(n)]


def loaded(store: Store) -> list[tuple[int, Order]]:
    entries = [e for e in store.query(Region.all()) if e.event_kind == 0xE9A1]
    return [
        (e.global_sequence, s.decode(Order))
        for e, s in zip(entries, store.events(entries), strict=True)
    ]


@pytest.mark.parametrize("reopen", [False, True])
def test_replay_matches_a_full_load(tmp_path: Path, reopen: bool) -> None:
    config = StoreConfig(tmp_path).with_segment_max_bytes(16 * 1024)  # several segments
    with Store.open(config) as store:
        for i, order in enumerate(orders(600)):
            store.append_typed(Coordinate(f"o:{i % 9}", "shop"), order)
            if i % 3 == 0:
                store.append_typed(Coordinate("x:1", "shop"), Other(i))
        store.append(Coordinate("o:legacy", "shop"), 0xE9A1, {"id": -1, "qty": 1, "note": ""})
        if not reopen:
            assert list(store.replay(Order)) == loaded(store)
    if reopen:
        with Store.open_read_only(config) as store:
            replayed = list(store.replay(Order))
            assert replayed == loaded(store)
            assert [o.id for _, o in replayed] == [*range(600), -1]
            middle = replayed[300][0]
            assert list(store.replay(Order, after=middle)) == replayed[301:]
            assert [x.x for _, x in store.replay(Other)] == list(range(0, 600, 3))


def test_hidden_events_are_not_replayed(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        store.append_typed(Coordinate("o:1", "shop"), Order(1, 1, ""))
        with store.begin_visibility_fence() as fence:
            store.append_typed(Coordinate("o:1", "shop"), Order(2, 1, ""))
            fence.cancel()
        store.append_typed(Coordinate("o:1", "shop"), Order(3, 1, ""))
        assert [o.id for _, o in store.replay(Order)] == [1, 3]


def test_a_damaged_payload_is_a_typed_error(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        store.append(Coordinate("o:1", "shop"), 0xE9A1, {"id": "not an int"})
        with pytest.raises(TypedDecodeError, match="Order"):
            list(store.replay(Order))


def test_replay_waits_out_a_compaction(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path).with_segment_max_bytes(8 * 1024)
    with Store.open(config) as store:
        for i in range(400):
            store.append_typed(Coordinate(f"o:{i % 3}", "shop"), Order(i, 1, "x" * 40))
    with Store.open(config) as store:
        failures: list[BaseException] = []
        done = threading.Event()

        def replayer() -> None:
            try:
                while not done.is_set():
                    assert [o.id for _, o in store.replay(Order)] == list(range(400))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=replayer) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            assert store.compact().outcome == "performed"
        finally:
            done.set()
            for thread in threads:
                thread.join()
        assert failures == []


@event_payload(category=0xE, type_id=0x9A3, version=3)
class Note(msgspec.Struct):
    """Version 3; version 1 held ``text`` only, version 2 renamed it ``body``."""

    body: bytes
    n: int


@upcaster(Note, from_version=1)
def _note_v1(value: dict[str, Any]) -> dict[str, Any]:
    return {"body": value["text"], "n": -1}


@upcaster(Note, from_version=2)
def _note_v2(value: dict[str, Any]) -> dict[str, Any]:
    return value


BODIES = [bytes(range(256)), b"\xcc" * 64, bytes(range(255, -1, -1)), b"\xcc\xcd" * 9, b"ok"]


def test_payloads_of_every_byte_value_replay_exactly(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path).with_segment_max_bytes(64 * 1024)
    notes = [Note(BODIES[i % len(BODIES)] + bytes([i % 256]), i) for i in range(400)]
    with Store.open(config) as store:
        for note in notes[:200]:  # typed appends stamp version 3
            store.append_typed(Coordinate(f"n:{note.n % 7}", "s"), note)
        store.append_batch(  # batch items stamp version 0
            [BatchAppendItem.typed(Coordinate(f"n:{n.n % 7}", "s"), n) for n in notes[200:]]
        )
        assert [note for _, note in store.replay(Note)] == notes
    with Store.open_read_only(config) as store:
        assert [note for _, note in store.replay(Note)] == notes


def test_older_payload_versions_are_upcast(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        coord = Coordinate("n:1", "s")
        store.append_typed(coord, Note(b"current", 1))
        store._append(coord, 0xE9A3, canonical.encode({"text": b"one" * 9}), 1, DEFAULT_OPTIONS)
        store._append(coord, 0xE9A3, canonical.encode({"body": b"two", "n": 2}), 2, DEFAULT_OPTIONS)
        store.append(coord, 0xE9A3, {"body": b"legacy" * 4, "n": 4})  # version 0
        expected = [
            Note(b"current", 1),
            Note(b"one" * 9, -1),
            Note(b"two", 2),
            Note(b"legacy" * 4, 4),
        ]
        assert [note for _, note in store.replay(Note)] == expected
        store._append(coord, 0xE9A3, canonical.encode({"body": b"?", "n": 5}), 4, DEFAULT_OPTIONS)
        with pytest.raises(PayloadFutureVersion):
            list(store.replay(Note))


def test_after_counts_from_any_sequence_across_checkpoint_and_tail(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path).with_segment_max_bytes(32 * 1024)
    with Store.open(config) as store:
        for i in range(1500):
            store.append_typed(Coordinate(f"o:{i % 9}", "shop"), Order(i, 1, "x"))
    with Store.open(config) as store:  # from the checkpoint: a columnar base, then a tail
        for i in range(1500, 1600):
            store.append_typed(Coordinate(f"o:{i % 9}", "shop"), Order(i, 1, "x"))
        everything = list(store.replay(Order))
        assert [o.id for _, o in everything] == list(range(1600))
        sequences = [seq for seq, _ in everything]
        for after in [None, -5, 0, sequences[0], sequences[700], sequences[1499], sequences[-1]]:
            expected = [pair for pair in everything if after is None or pair[0] > after]
            assert list(store.replay(Order, after=after)) == expected
        assert list(store.replay(Order, after=sequences[-1] + 10)) == []


def test_a_damaged_payload_array_is_a_crc_mismatch(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    with Store.open(config) as store:
        for i in range(50):
            store.append_typed(Coordinate("n:1", "s"), Note(bytes(range(256)), i))
        damaged = store.by_entity("n:1")[30]
    segment = sorted(tmp_path.glob("*.fbat"))[0]
    data = bytearray(segment.read_bytes())
    at = data.index(b"\xa7payload\xdc", damaged.offset, damaged.offset + damaged.length) + 60
    data[at] ^= 0x40  # inside event 30's payload array, its CRC left as it was
    segment.write_bytes(bytes(data))
    with Store.open_read_only(config) as store:
        replayed = store.replay(Note)
        assert [note.n for _, note in itertools.islice(replayed, 30)] == list(range(30))
        with pytest.raises(CrcMismatch):
            next(replayed)
