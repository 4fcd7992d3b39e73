"""A long history is held as columns however it was loaded, with identical entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from batpak import AppendOptions, Coordinate, IndexEntry, Region, Store, StoreConfig

KIND = 0xE0C1
COUNT = 1500  # above the size from which a rebuilt history is held as columns


def config(path: Path) -> StoreConfig:
    return StoreConfig(path).with_segment_max_bytes(64 * 1024)  # several sealed segments


def facts(entry: IndexEntry) -> tuple[object, ...]:
    """What an entry says about its event, wherever its frame now lies."""
    return (
        entry.event_id,
        entry.correlation_id,
        entry.causation_id,
        entry.entity,
        entry.global_sequence,
        entry.prev_hash,
        entry.event_hash,
    )


def fill(path: Path, linked: bool) -> list[IndexEntry]:
    with Store.open(config(path)) as store:
        first = store.append(Coordinate("c:0", "cols"), KIND, {"n": 0})
        for n in range(1, COUNT):
            options = (
                AppendOptions(correlation_id=first.event_id, causation_id=first.event_id)
                if linked and n % 100 == 0
                else AppendOptions()
            )
            store.append(Coordinate(f"c:{n % 7}", "cols"), KIND, {"n": n}, options)
        return list(store.query(Region.all()))


@pytest.mark.parametrize("linked", [False, True], ids=["own-correlation", "linked"])
@pytest.mark.parametrize("source", ["checkpoint", "rebuilt", "compacted"])
def test_entries_survive_every_way_in(tmp_path: Path, linked: bool, source: str) -> None:
    before = [e for e in fill(tmp_path, linked) if e.event_kind == KIND]
    if source == "rebuilt":
        (tmp_path / "index.cols").unlink()
    with Store.open(config(tmp_path)) as store:
        if source == "compacted":
            assert store.compact().outcome == "performed"
        after = [e for e in store.query(Region.all()) if e.event_kind == KIND]
        assert [facts(e) for e in after] == [facts(e) for e in before]
        if source != "compacted":
            assert after == before
        assert [store.get(e.event_id).global_sequence for e in before[::97]] == [
            e.global_sequence for e in before[::97]
        ]
        assert {e.correlation_id for e in after} == {e.correlation_id for e in before}
        assert (len({e.causation_id for e in after}) > 1) is linked
