"""Import (store-api §1.11): re-apply events from another store, or this one, with provenance.

Kinds used here are 0xE9xx.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batpak import (
    AppendOptions,
    Coordinate,
    IdempotencyKey,
    ImportOptions,
    ImportProvenance,
    ImportSelector,
    Outcome,
    Region,
    Store,
    StoreConfig,
    canonical,
)
from batpak.errors import Configuration
from batpak.store._import import PROVENANCE_KEY, import_key

KIND = 0xE901
OTHER = 0xE902


def _user(store: Store) -> list:  # type: ignore[type-arg]
    return [e for e in store.query(Region.all()) if e.event_kind in (KIND, OTHER)]


def _fill(store: Store) -> list:  # type: ignore[type-arg]
    root = store.append(Coordinate("i:a", "s:1"), KIND, {"n": 1})
    return [
        root,
        store.append(
            Coordinate("i:a", "s:1"),
            KIND,
            {"n": 2},
            AppendOptions(correlation_id=root.event_id, causation_id=root.event_id),
        ),
        store.append(Coordinate("i:b", "s:2"), OTHER, [1, 2, 3]),
        store.append_msgpack(Coordinate("i:b", "s:2"), KIND, b"\x93\x01\xc0\xa1x"),
    ]


def test_import_keeps_content_and_regenerates_identity(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "src")) as source:
        originals = _fill(source)
        with Store.open(StoreConfig(tmp_path / "dst")) as dest:
            dest.append(Coordinate("i:a", "s:1"), KIND, "already here")
            report = dest.import_events(source, ImportSelector.all(), ImportOptions("ns"))
            assert (report.imported, report.deduplicated, report.skipped_reimported) == (4, 0, 0)
            assert report.skipped_reserved == 1  # the source's OPEN_COMPLETED
            assert report.source_high_watermark == originals[-1].global_sequence
            copies = _user(dest)[1:]
            assert len(copies) == 4
            for original, copy in zip(originals, copies, strict=True):
                src, dst = source.get(original.event_id), dest.get(copy.event_id)
                assert dst.event.payload == src.event.payload
                assert dst.event.header.content_hash == src.event.header.content_hash
                assert dst.event.header.event_kind == src.event.header.event_kind
                assert dst.coordinate == src.coordinate
                assert dst.event.header.correlation_id == src.event.header.correlation_id
                assert dst.event.header.causation_id is None
                assert copy.event_id == import_key("ns", original.event_id)
                assert copy.event_id != original.event_id
                carried = ImportProvenance.of(dst.extensions)
                assert carried == ImportProvenance(
                    1,
                    "ns",
                    original.event_id.to_bytes(16, "big"),
                    original.global_sequence,
                    src.event.header.event_kind,
                    list(src.event.header.content_hash),
                )
                assert dst.extensions[PROVENANCE_KEY] == canonical.encode(carried)
            # New chain: the first copy of i:a links to the event already in the destination.
            first = dest.get(copies[0].event_id).event
            assert first.header.position.sequence == 1
            assert first.hash_chain is not None
            assert first.hash_chain.prev_hash != bytes(32)
            assert dest.verify_chain().is_intact()


def test_reimport_is_a_noop_even_after_reopen(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "src")) as source:
        _fill(source)
        with Store.open(StoreConfig(tmp_path / "dst")) as dest:
            dest.import_events(source, ImportSelector.all(), ImportOptions("ns"))
            count = len(dest.query(Region.all()))
            again = dest.import_events(source, ImportSelector.all(), ImportOptions("ns"))
            assert (again.imported, again.deduplicated) == (0, 4)
            assert len(dest.query(Region.all())) == count
        with Store.open(StoreConfig(tmp_path / "dst")) as dest:
            again = dest.import_events(source, ImportSelector.all(), ImportOptions("ns"))
            assert (again.imported, again.deduplicated) == (0, 4)
            other = dest.import_events(source, ImportSelector.all(), ImportOptions("other"))
            assert other.imported == 4  # another namespace is another source identity


def test_same_store_import_stops_at_the_call_time_frontier(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        _fill(store)
        first = store.import_events(store, ImportSelector.all(), ImportOptions("self", 1))
        assert first.imported == 4
        assert len(_user(store)) == 8
        second = store.import_events(store, ImportSelector.all(), ImportOptions("self"))
        assert (second.imported, second.deduplicated, second.skipped_reimported) == (0, 4, 4)
        assert len(_user(store)) == 8


def test_selectors_filters_and_chunks(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "src")) as source:
        originals = _fill(source)
        with Store.open(StoreConfig(tmp_path / "dst", batch_max_bytes=300)) as dest:
            scoped = dest.import_events(
                source, ImportSelector.of_region(Region.scope("s:2")), ImportOptions("a")
            )
            assert scoped.imported == 2
            after = dest.import_events(
                source,
                ImportSelector.after_sequence(originals[1].global_sequence),
                ImportOptions("b", chunk_size=1),
            )
            assert after.imported == 2
            filtered = dest.import_events(
                source,
                ImportSelector.all(),
                ImportOptions("c", filter=lambda entry: entry.event_kind == OTHER),
            )
            assert (filtered.imported, filtered.skipped_filtered) == (1, 3)
    with pytest.raises(Configuration):
        ImportOptions("")


def test_provenance_is_covered_by_the_signature(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "src")) as source:
        _fill(source)
        config = StoreConfig(tmp_path / "dst").with_signing_key(b"\x42" * 32)
        with Store.open(config) as dest:
            dest.import_events(source, ImportSelector.all(), ImportOptions("ns"))
            copy = _user(dest)[0]
            receipt = dest.append(
                copy.coord, copy.event_kind, "x", AppendOptions(idempotency_key=copy.event_id)
            )
            assert receipt.extensions[PROVENANCE_KEY]
            assert dest.verify_append_receipt(receipt).outcome is Outcome.SIGNED


def test_the_import_key_is_the_reference_derivation() -> None:
    event_id = 0x0123456789ABCDEF0123456789ABCDEF
    expected = IdempotencyKey.for_operation(
        "batpak.import", ["ns", "0123456789abcdef0123456789abcdef"]
    )
    assert import_key("ns", event_id) == expected
