"""Projection caches: hits, version isolation, incremental apply, damage, and the file cache."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from batpak import (
    Coordinate,
    MemoryCache,
    NativeCache,
    Projection,
    Store,
    StoreConfig,
    event_payload,
    handles,
)


@event_payload(category=0xF, type_id=0x3C1)
class Added(msgspec.Struct):
    n: int


class Total(Projection):
    replays = 0

    def __init__(self) -> None:
        self.total = 0
        Total.replays += 1

    @handles(Added)
    def on_added(self, event: Added) -> None:
        self.total += event.n


class Incremental(Total):
    supports_incremental_apply = True


class Doubled(Projection):
    """``Total`` after its fold changed: the same name, a new schema version."""

    __qualname__ = "Total"
    schema_version = 1

    def __init__(self) -> None:
        self.total = 0

    @handles(Added)
    def on_added(self, event: Added) -> None:
        self.total += 2 * event.n


def add(store: Store, entity: str, *values: int) -> None:
    for n in values:
        store.append_typed(Coordinate(entity, "cache"), Added(n))


@pytest.fixture
def cache() -> MemoryCache:
    return MemoryCache()


def open_store(path: Path, cache: object) -> Store:
    return Store.open(StoreConfig(path).with_projection_cache(cache))  # type: ignore[arg-type]


def test_a_hit_replays_nothing_and_a_new_event_replays(tmp_path: Path, cache: MemoryCache) -> None:
    with open_store(tmp_path, cache) as store:
        add(store, "a", 1, 2)
        Total.replays = 0
        assert store.project(Total, "a").total == 3
        assert store.project(Total, "a").total == 3
        assert Total.replays == 1  # the second call came from the cache
        add(store, "a", 4)
        assert store.project(Total, "a").total == 7
        assert Total.replays == 2


def test_incremental_apply_folds_only_the_newer_events(tmp_path: Path, cache: MemoryCache) -> None:
    with open_store(tmp_path, cache) as store:
        add(store, "a", 1, 2)
        assert store.project(Incremental, "a").total == 3
        add(store, "a", 10)
        Total.replays = 0
        assert store.project(Incremental, "a").total == 13
        assert Total.replays == 0  # carried forward from the cached state


def test_entries_are_per_entity_and_per_schema_version(tmp_path: Path, cache: MemoryCache) -> None:
    with open_store(tmp_path, cache) as store:
        add(store, "a", 1)
        add(store, "b", 100)
        assert store.project(Total, "a").total == 1
        assert store.project(Total, "b").total == 100

        assert store.project(Doubled, "a").total == 2
        assert store.project(Total, "a").total == 1
    assert len(cache) == 3


def test_damaged_entries_are_replayed_over(tmp_path: Path, cache: MemoryCache) -> None:
    with open_store(tmp_path, cache) as store:
        add(store, "a", 5)
        store.project(Total, "a")
        for key in list(cache._entries):
            cache.put(key, b"\xc1garbage")
        assert store.project(Total, "a").total == 5


def test_the_native_cache_survives_a_reopen(tmp_path: Path) -> None:
    native = NativeCache(tmp_path / "cache")
    with open_store(tmp_path / "s", native) as store:
        add(store, "a", 1, 2, 3)
        assert store.project(Total, "a").total == 6
    Total.replays = 0
    with open_store(tmp_path / "s", NativeCache(tmp_path / "cache")) as store:
        assert store.project(Total, "a").total == 6
    assert Total.replays == 0
    native.delete_prefix(b"")
    assert list((tmp_path / "cache").iterdir()) == []
