"""Store.replay: one payload type's events in commit order, decoded, the same as a full load."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest

from batpak import Coordinate, Region, Store, StoreConfig, TypedDecodeError, event_payload


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
