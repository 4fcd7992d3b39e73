"""Store lifecycle and refusals: close, read-only, the lock, reopen, rotation, threads, errors."""

import inspect
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    Coordinate,
    DomainError,
    FailClosedError,
    IndexEntry,
    Region,
    RetryableError,
    Store,
    StoreConfig,
    StoreError,
    StoreLocked,
    errors,
)
from batpak.errors import PayloadTooLarge, ReadOnlyStore, ReservedKind, StoreClosed
from batpak.kinds import SYSTEM_CLOSE_COMPLETED, SYSTEM_OPEN_COMPLETED, EventKind

KIND = EventKind.custom(0xE, 0x8A0)
COORD = Coordinate("life:1", "s")


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file's bytes (recursively), keyed by relative path."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(StoreConfig(tmp_path)) as opened:
        yield opened


# --- refusals that write nothing ----------------------------------------------------------


@pytest.mark.parametrize("raw", [0x0000, 0x0001, 0x0008, 0x0009, 0x0FFE, 0xD000, 0xD001, 0xDFFF])
def test_reserved_kinds_are_refused_and_nothing_is_written(store: Store, raw: int) -> None:
    store.append(COORD, KIND, 1)
    before = store.query(Region.all())
    segment = store.config.path / "000001.fbat"
    size = segment.stat().st_size
    with pytest.raises(ReservedKind) as caught:
        store.append(COORD, raw, {"x": 1})
    assert caught.value.kind == raw
    assert caught.value.handling_class == "domain"
    with pytest.raises(ReservedKind):
        store.append_msgpack(COORD, raw, b"\x01")
    assert store.query(Region.all()) == before
    assert segment.stat().st_size == size
    assert store.entity_generation(COORD.entity) == before[-1].global_sequence


def test_payload_over_single_append_max_bytes_is_refused(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path, single_append_max_bytes=64)
    with Store.open(config) as store:
        at_limit = b"x" * 62  # bin8: c4 3e + 62 bytes = 64 bytes encoded
        store.append(COORD, KIND, at_limit)
        count = len(store.query(Region.all()))
        size = (tmp_path / "000001.fbat").stat().st_size
        with pytest.raises(PayloadTooLarge) as caught:
            store.append(COORD, KIND, at_limit + b"y")
        assert (caught.value.size, caught.value.limit) == (65, 64)
        assert len(store.query(Region.all())) == count
        assert (tmp_path / "000001.fbat").stat().st_size == size


def test_append_after_close_raises_store_closed(tmp_path: Path) -> None:
    store = Store.open(StoreConfig(tmp_path))
    receipt = store.append(COORD, KIND, 1)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosed):
        store.append(COORD, KIND, 2)
    with pytest.raises(StoreClosed):
        store.get(receipt.event_id)
    with pytest.raises(StoreClosed):
        store.sync()


def test_read_only_store_reads_but_refuses_writes_and_creates_nothing(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        receipt = store.append(COORD, KIND, {"v": 1})
        expected = store.query(Region.all())
    before = snapshot(tmp_path)
    with Store.open_read_only(StoreConfig(tmp_path)) as ro:
        assert ro.get(receipt.event_id).value() == {"v": 1}
        assert ro.query(Region.all())[: len(expected)] == expected
        with pytest.raises(ReadOnlyStore):
            ro.append(COORD, KIND, 2)
        with pytest.raises(ReadOnlyStore):
            ro.append_msgpack(COORD, KIND, b"\x02")
        with pytest.raises(ReadOnlyStore):
            ro.sync()
        assert ro.identity() is not None
    assert snapshot(tmp_path) == before


def test_read_only_open_of_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(StoreError):
        Store.open_read_only(StoreConfig(missing))
    assert not missing.exists()


def test_second_open_in_the_same_process_is_store_locked(tmp_path: Path) -> None:
    first = Store.open(StoreConfig(tmp_path))
    try:
        with pytest.raises(StoreLocked) as caught:
            Store.open(StoreConfig(tmp_path))
        assert isinstance(caught.value, DomainError)
        with pytest.raises(StoreLocked):
            Store.open_read_only(StoreConfig(tmp_path))
        first.append(COORD, KIND, 1)  # the failed opens did not disturb the holder
    finally:
        first.close()
    with Store.open(StoreConfig(tmp_path)) as again:
        assert len(again.by_entity(COORD.entity)) == 1


# --- reopen and rotation ------------------------------------------------------------------


def test_reopen_rebuilds_exactly_the_same_entries(tmp_path: Path) -> None:
    receipts: list[AppendReceipt] = []
    with Store.open(StoreConfig(tmp_path)) as store:
        for i in range(20):
            coord = Coordinate(f"re:{i % 3}", f"scope:{i % 2}")
            options = AppendOptions()
            if i % 4 == 3:  # every fourth event carries ids and extensions
                parent = receipts[-1].event_id
                ext = {"app.n": bytes([i]), "app.tag": b"t"}
                options = AppendOptions(correlation_id=parent, causation_id=parent, extensions=ext)
            receipts.append(store.append(coord, KIND, {"i": i, "pad": "p" * i}, options))
        before = store.query(Region.all())
        loaded = store.events(before)
    with Store.open(StoreConfig(tmp_path)) as store:
        after = store.query(Region.all())
        assert after[: len(before)] == before
        assert store.events(after[: len(before)]) == loaded
        assert [e.event_kind for e in after[len(before) :]] == [
            SYSTEM_CLOSE_COMPLETED,
            SYSTEM_OPEN_COMPLETED,
        ]
        assert seqs(after) == list(range(len(after)))
        for receipt in receipts:
            assert store.verify_append_receipt(receipt).is_valid
        carried = store.get(receipts[3].event_id)
        assert carried.extensions == {"app.n": b"\x03", "app.tag": b"t"}
        assert carried.event.header.causation_id == receipts[2].event_id
        nxt = store.append(Coordinate("re:0", "scope:0"), KIND, "next")
        assert nxt.global_sequence == len(after)
        head = store.by_entity("re:0")
        assert head[-1].clock == len(head) - 1
        assert head[-1].prev_hash == head[-2].event_hash


def seqs(entries: list[IndexEntry]) -> list[int]:
    return [e.global_sequence for e in entries]


def test_rotation_makes_several_segments_that_survive_reopen(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path).with_segment_max_bytes(4096)
    with Store.open(config) as store:
        receipts = [store.append(COORD, KIND, {"i": i, "pad": "x" * 100}) for i in range(80)]
        before = store.query(Region.all())
        loaded = store.events(before)
    segments = sorted(p for p in os.listdir(tmp_path) if p.endswith(".fbat"))
    assert len(segments) >= 4
    assert len({r.disk_pos.segment_id for r in receipts}) >= 4
    for name in segments:
        data = (tmp_path / name).read_bytes()
        assert data[-4:] == b"SDX3"  # rotated and closed segments are all sealed
    with Store.open(config) as store:
        after = store.query(Region.all())
        assert after[: len(before)] == before
        assert store.events(after[: len(before)]) == loaded
        chain = store.by_entity(COORD.entity)
        assert [e.clock for e in chain] == list(range(80))
        assert all(b.prev_hash == a.event_hash for a, b in itertools.pairwise(chain))


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_appends_from_8_threads(tmp_path: Path) -> None:
    per_thread = 40
    results: dict[int, list[AppendReceipt]] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int, store: Store) -> None:
        try:
            barrier.wait()
            mine = []
            for i in range(per_thread):
                mine.append(store.append(Coordinate(f"t:{n}", "s"), KIND, {"n": n, "i": i}))
                mine.append(store.append(Coordinate("shared", "s"), KIND, {"n": n, "i": i}))
            results[n] = mine
        except BaseException as exc:  # reported below
            failures.append(exc)

    with Store.open(StoreConfig(tmp_path)) as store:
        threads = [threading.Thread(target=work, args=(n, store)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        live = store.query(Region.all())
    all_receipts = [r for mine in results.values() for r in mine]
    sequences = sorted(r.global_sequence for r in all_receipts)
    assert sequences == list(range(1, 1 + 8 * per_thread * 2))  # dense and unique after OPEN
    with Store.open(StoreConfig(tmp_path)) as store:
        assert store.query(Region.all())[: len(live)] == live
        for entity, count in [*((f"t:{n}", per_thread) for n in range(8)), ("shared", 320)]:
            chain = store.by_entity(entity)
            assert [e.clock for e in chain] == list(range(count))
            assert chain[0].prev_hash == bytes(32)
            for a, b in itertools.pairwise(chain):
                assert b.prev_hash == a.event_hash
        for n, mine in results.items():
            values = [store.get(r.event_id).value() for r in mine[::2]]
            assert values == [{"n": n, "i": i} for i in range(per_thread)]


# --- the error tree -----------------------------------------------------------------------

EXPECTED_CLASS = {
    "StoreLocked": "domain",
    "NotFound": "domain",
    "InvalidCoordinate": "domain",
    "InvalidKind": "domain",
    "ReservedKind": "domain",
    "InvalidExtension": "domain",
    "InvalidCausation": "domain",
    "PayloadTooLarge": "domain",
    "InvalidPayload": "domain",
    "EventPayloadRegistryError": "domain",
    "ProjectionError": "domain",
    "Configuration": "domain",
    "EntityClockOverflow": "domain",
    "InvalidClock": "domain",
    "ReadOnlyStore": "domain",
    "StoreClosed": "domain",
    "Io": "retryable_operational",
    "CrcMismatch": "fail_closed_operational",
    "CorruptFrame": "fail_closed_operational",
    "CorruptSegment": "fail_closed_operational",
    "FutureVersion": "fail_closed_operational",
    "StoreMetadataCorrupt": "fail_closed_operational",
    "SideFileCorrupt": "fail_closed_operational",
    "WriterCrashed": "fail_closed_operational",
    "InvariantViolation": "fail_closed_operational",
}
BASES = {
    "domain": DomainError,
    "retryable_operational": RetryableError,
    "fail_closed_operational": FailClosedError,
}


@pytest.mark.parametrize(("name", "handling"), sorted(EXPECTED_CLASS.items()))
def test_error_handling_class(name: str, handling: str) -> None:
    cls = getattr(errors, name)
    assert cls.handling_class == handling
    assert issubclass(cls, BASES[handling])
    others = [base for key, base in BASES.items() if key != handling]
    assert not any(issubclass(cls, base) for base in others)


def test_every_store_error_subclass_has_a_consistent_handling_class() -> None:
    found = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, StoreError) and cls not in (StoreError, *BASES.values())
    }
    assert set(EXPECTED_CLASS) <= set(found)
    for name, cls in found.items():
        bases = [h for h, base in BASES.items() if issubclass(cls, base)]
        assert bases == [cls.handling_class], name
    assert not issubclass(errors.TypedDecodeError, StoreError)
