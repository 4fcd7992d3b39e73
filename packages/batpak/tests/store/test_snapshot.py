"""Snapshot (store-api §1.10-1.11): an openable, independent copy with the same identity.

Kinds used here are 0xEBxx.
"""

from pathlib import Path

import pytest

from batpak import AppendOptions, Coordinate, IndexEntry, Region, Store, StoreConfig
from batpak.errors import Configuration
from batpak.kinds import EventKind

KIND = EventKind.custom(0xE, 0xB70)


def user(store: Store) -> list[IndexEntry]:
    return [e for e in store.query(Region.all()) if e.event_kind == KIND]


def test_snapshot_is_an_openable_copy_with_the_same_events(tmp_path: Path) -> None:
    source_dir, copy_dir = tmp_path / "src", tmp_path / "copy"
    with Store.open(StoreConfig(source_dir)) as store:  # two sessions: a sealed segment too
        for i in range(3):
            store.append(Coordinate(f"a:{i}", "s"), KIND, {"first": i})
    with Store.open(StoreConfig(source_dir)) as store:
        for i in range(3):
            store.append(
                Coordinate(f"a:{i}", "s"),
                KIND,
                {"second": i},
                AppendOptions(idempotency_key=100 + i),
            )
        taken = store.query(Region.all())
        payloads = {e.event_id: store.read_raw(e.event_id) for e in taken}
        returned = store.snapshot(copy_dir)
        assert returned == copy_dir

        with Store.open(StoreConfig(copy_dir)) as copy:  # while the source stays open
            assert copy.identity() == store.identity() is not None
            copied = copy.query(Region.all())
            assert copied[: len(taken)] == taken
            assert {e.event_id: copy.read_raw(e.event_id) for e in taken} == payloads
            assert copy.verify_chain().is_intact()
            for e in taken[-3:]:
                receipt = copy.append(
                    e.coord, KIND, "retry", AppendOptions(idempotency_key=100 + taken[-3:].index(e))
                )
                assert receipt.event_id == e.event_id
            # Independent afterwards: writes on either side stay on that side.
            only_copy = copy.append(Coordinate("copy:only", "s"), KIND, "copy")
            only_source = store.append(Coordinate("source:only", "s"), KIND, "source")
            assert copy.by_entity("source:only") == []
            assert store.by_entity("copy:only") == []
        assert store.by_entity("copy:only") == []
        store.append(Coordinate("a:0", "s"), KIND, "source chain moves on")
    with Store.open(StoreConfig(copy_dir)) as copy:
        assert [e.event_id for e in copy.by_entity("copy:only")] == [only_copy.event_id]
        assert copy.by_entity("source:only") == []
        assert len(copy.by_entity("a:0")) == 2
    with Store.open(StoreConfig(source_dir)) as store:
        assert [e.event_id for e in store.by_entity("source:only")] == [only_source.event_id]
        assert store.by_entity("copy:only") == []
        assert len(store.by_entity("a:0")) == 3


def test_snapshot_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "something").write_text("x")
    with Store.open(StoreConfig(tmp_path / "src")) as store:
        store.append(Coordinate("a", "s"), KIND, 1)
        with pytest.raises(Configuration):
            store.snapshot(dest)
        assert sorted(p.name for p in dest.iterdir()) == ["something"]
        empty = tmp_path / "empty"
        empty.mkdir()
        store.snapshot(empty)  # an existing but empty directory is fine
        with pytest.raises(Configuration):
            store.snapshot(empty)  # and now it is not empty any more
    with Store.open_read_only(StoreConfig(empty)) as copy:
        assert len(user(copy)) == 1
