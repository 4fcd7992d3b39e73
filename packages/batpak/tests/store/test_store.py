"""Store appends and reads: get/read_raw/decode, queries and paging, chains and receipts.

Typed kinds used here are 0xE8xx (the payload registry is global per process).
"""

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import msgspec
import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    Coordinate,
    DiskPos,
    IndexEntry,
    NotFound,
    Outcome,
    Region,
    Store,
    StoreConfig,
    event_payload,
    upcaster,
)
from batpak.canonical import encode
from batpak.errors import KindMismatch
from batpak.kinds import SYSTEM_OPEN_COMPLETED, EventKind
from batpak.receipt import Reason

RAW_KIND = EventKind.custom(0xE, 0x8F0)
OTHER_KIND = EventKind.custom(0xF, 0x8F1)


@event_payload(category=0xE, type_id=0x801, version=2)
class Note(msgspec.Struct):
    """A typed test payload at version 2."""

    body: str
    n: int = 0


@upcaster(Note, from_version=1)
def note_v1(value: dict[str, Any]) -> dict[str, Any]:
    return {"body": value["text"], "n": -1}


@event_payload(category=0xE, type_id=0x802)
class Other(msgspec.Struct):
    """A second typed payload, to provoke kind mismatches."""

    x: int


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(StoreConfig(tmp_path)) as opened:
        yield opened


def seqs(entries: list[IndexEntry]) -> list[int]:
    return [e.global_sequence for e in entries]


# --- append and point reads -----------------------------------------------------------------


def test_append_typed_get_read_raw_and_decode(store: Store) -> None:
    coord = Coordinate("note:1", "notes")
    note = Note(body="hello", n=3)
    receipt = store.append_typed(coord, note)
    stored = store.get(receipt.event_id)
    header = stored.event.header
    assert stored.coordinate == coord
    assert stored.global_sequence == receipt.global_sequence == 1  # 0 is OPEN_COMPLETED
    assert (header.event_id, header.event_kind, header.payload_version) == (
        receipt.event_id,
        0xE801,
        2,
    )
    assert stored.event.payload == encode(note) == store.read_raw(receipt.event_id)
    assert header.payload_size == len(stored.event.payload)
    digest = blake3.blake3(stored.event.payload).digest()
    assert header.content_hash == receipt.content_hash == digest
    assert stored.event.hash_chain is not None
    assert stored.event.hash_chain.event_hash == digest
    assert stored.event.hash_chain.prev_hash == bytes(32)
    assert stored.decode(Note) == note
    assert stored.value() == {"body": "hello", "n": 3}
    with pytest.raises(KindMismatch):
        stored.decode(Other)


def test_untyped_append_stamps_payload_version_zero(store: Store) -> None:
    receipt = store.append(Coordinate("note:2", "notes"), 0xE801, {"body": "raw", "n": 1})
    stored = store.get(receipt.event_id)
    assert stored.event.header.payload_version == 0
    assert stored.decode(Note) == Note(body="raw", n=1)  # version 0 decodes directly


def test_append_msgpack_stores_bytes_verbatim_and_upcasts_on_read(store: Store) -> None:
    legacy = encode({"text": "old"})
    receipt = store.append_msgpack(Coordinate("note:3", "notes"), 0xE801, legacy)
    assert store.read_raw(receipt.event_id) == legacy
    assert store.get(receipt.event_id).event.header.payload_version == 0


def test_get_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as caught:
        store.get(12345)
    assert caught.value.event_id == 12345
    with pytest.raises(NotFound):
        store.read_raw(12345)


def test_options_round_trip_through_frame_index_and_receipt(store: Store) -> None:
    coord = Coordinate("opt:1", "s")
    first = store.append(coord, RAW_KIND, {"i": 0})
    ext = {"app.trace": b"\x00\x01\xff", "app.user": b"bob"}
    options = AppendOptions(
        correlation_id=first.event_id, causation_id=first.event_id, flags=0x01, extensions=ext
    )
    second = store.append(coord, RAW_KIND, {"i": 1}, options)
    assert second.extensions == ext
    stored = store.get(second.event_id)
    assert stored.extensions == ext
    header = stored.event.header
    assert (header.correlation_id, header.causation_id, header.flags) == (
        first.event_id,
        first.event_id,
        0x01,
    )
    entry = store.query(Region.entity("opt:1"))[-1]
    assert (entry.correlation_id, entry.causation_id) == (first.event_id, first.event_id)
    assert entry.receipt_extensions == ext
    root = store.get(first.event_id)
    assert root.event.header.correlation_id == first.event_id  # defaults to its own id
    assert root.event.header.causation_id is None
    assert root.extensions == {}
    zero = store.append(coord, RAW_KIND, 1, AppendOptions(causation_id=0))
    assert store.get(zero.event_id).event.header.causation_id is None  # 0 means none


# --- queries ---------------------------------------------------------------------------------


@pytest.fixture
def populated(store: Store) -> tuple[Store, list[AppendReceipt]]:
    """12 events over entities user:1, user:2, userfoo, org:1 and scopes s1, s2."""
    layout = [
        ("user:1", "s1", RAW_KIND),
        ("user:2", "s2", RAW_KIND),
        ("userfoo", "s1", OTHER_KIND),
        ("user:1", "s1", OTHER_KIND),
        ("org:1", "s2", RAW_KIND),
        ("user:2", "s1", RAW_KIND),
    ] * 2
    receipts = [store.append(Coordinate(e, s), k, {"i": i}) for i, (e, s, k) in enumerate(layout)]
    return store, receipts


def test_query_regions_select_the_right_events(
    populated: tuple[Store, list[AppendReceipt]],
) -> None:
    store, receipts = populated
    everything = store.query(Region.all())
    assert seqs(everything) == list(range(13))
    assert everything[0].event_kind == SYSTEM_OPEN_COMPLETED
    users = store.query(Region.entity("user"))  # user:1 and user:2, never userfoo
    assert [e.event_id for e in users] == [receipts[i].event_id for i in (0, 1, 3, 5, 6, 7, 9, 11)]
    user1 = store.query(Region.entity("user:1"))
    assert [e.event_id for e in user1] == [receipts[i].event_id for i in (0, 3, 6, 9)]
    s2 = store.query(Region.scope("s2"))
    assert [e.event_id for e in s2] == [receipts[i].event_id for i in (1, 4, 7, 10)]
    other = store.query(Region.scope("s1").with_kind(OTHER_KIND))
    assert [e.event_id for e in other] == [receipts[i].event_id for i in (2, 3, 8, 9)]
    category_e = store.query(Region.all().with_category(0xE))
    assert len(category_e) == 8


def test_entity_prefix_spans_several_entities_in_commit_order(store: Store) -> None:
    ids = [
        store.append(Coordinate(e, "s"), RAW_KIND, i).event_id
        for i, e in enumerate(["acct:1", "acct:2", "acctx", "acct", "acct:1:sub", "acct:2"])
    ]
    found = store.query(Region.entity("acct"))
    assert [e.event_id for e in found] == [ids[i] for i in (0, 1, 3, 4, 5)]
    assert seqs(found) == sorted(seqs(found))


@pytest.mark.parametrize(
    "region",
    [
        Region.all(),
        Region.entity("user:2"),
        Region.entity("user"),
        Region.scope("s1"),
        Region.all().with_kind(RAW_KIND),
        Region.entity("user").with_kind(OTHER_KIND),
    ],
)
@pytest.mark.parametrize("limit", [1, 2, 5, 100])
def test_query_entries_after_pages_with_exclusive_resume(
    populated: tuple[Store, list[AppendReceipt]], region: Region, limit: int
) -> None:
    store, _ = populated
    expected = store.query(region)
    pages: list[list[IndexEntry]] = []
    after: int | None = None
    while page := store.query_entries_after(region, after, limit):
        assert len(page) <= limit
        assert after is None or page[0].global_sequence > after
        pages.append(page)
        after = page[-1].global_sequence
    assert [e for page in pages for e in page] == expected
    assert all(len(p) == limit for p in pages[:-1])


def test_query_entries_after_edges(populated: tuple[Store, list[AppendReceipt]]) -> None:
    store, receipts = populated
    region = Region.scope("s1")
    assert store.query_entries_after(region, None, 0) == []
    anchor = receipts[2].global_sequence  # itself in s1: must be excluded on resume
    page = store.query_entries_after(region, anchor, 2)
    assert [e.event_id for e in page] == [receipts[3].event_id, receipts[5].event_id]
    last = receipts[-1].global_sequence
    assert store.query_entries_after(Region.all(), last, 10) == []
    assert seqs(store.query_entries_after(Region.all(), -1, 2)) == [0, 1]
    with pytest.raises(ValueError, match="limit"):
        store.query_entries_after(region, None, -1)


def test_by_entity_scope_fact_and_generation(
    populated: tuple[Store, list[AppendReceipt]],
) -> None:
    store, receipts = populated
    assert [e.event_id for e in store.by_entity("user:2")] == [
        receipts[i].event_id for i in (1, 5, 7, 11)
    ]
    assert store.by_entity("user") == []
    assert [e.event_id for e in store.by_scope("s2")] == [
        receipts[i].event_id for i in (1, 4, 7, 10)
    ]
    assert [e.event_id for e in store.by_fact(OTHER_KIND)] == [
        receipts[i].event_id for i in (2, 3, 8, 9)
    ]
    opened = store.by_fact(SYSTEM_OPEN_COMPLETED)
    assert len(opened) == 1
    assert opened[0].coord == Coordinate("batpak:store", "batpak:lifecycle")
    assert store.entity_generation("user:1") == receipts[9].global_sequence
    assert store.entity_generation("nobody") is None
    newer = store.append(Coordinate("user:1", "s9"), RAW_KIND, None)
    assert store.entity_generation("user:1") == newer.global_sequence


def test_walk_ancestors_is_newest_first_with_limit(store: Store) -> None:
    chain = []
    for i in range(5):
        chain.append(store.append(Coordinate("walk:1", "s"), RAW_KIND, i).event_id)
        store.append(Coordinate("walk:2", "s"), RAW_KIND, i)  # interleaved noise
    walked = store.walk_ancestors(chain[3])
    assert [e.event_id for e in walked] == chain[3::-1]
    assert [e.clock for e in walked] == [3, 2, 1, 0]
    for child, parent in itertools.pairwise(walked):
        assert child.prev_hash == parent.event_hash
    assert walked[-1].prev_hash == bytes(32)
    assert [e.event_id for e in store.walk_ancestors(chain[4], limit=2)] == chain[4:2:-1]
    assert [e.event_id for e in store.walk_ancestors(chain[0])] == [chain[0]]
    with pytest.raises(NotFound):
        store.walk_ancestors(999)


# --- receipts --------------------------------------------------------------------------------


def test_real_receipt_verifies_unsigned_accepted(store: Store) -> None:
    ext = {"app.k": b"v"}
    receipt = store.append(Coordinate("r:1", "s"), RAW_KIND, 1, AppendOptions(extensions=ext))
    assert receipt.key_id == bytes(32)
    assert receipt.signature is None
    verdict = store.verify_append_receipt(receipt)
    assert (verdict.outcome, verdict.reason, verdict.is_valid) == (
        Outcome.UNSIGNED_ACCEPTED,
        None,
        True,
    )
    assert verdict.outcome == "unsigned_accepted"


def test_tampered_receipts_are_invalid_with_the_right_reason(store: Store) -> None:
    receipt = store.append(
        Coordinate("r:2", "s"), RAW_KIND, 2, AppendOptions(extensions={"app.k": b"v"})
    )
    pos = receipt.disk_pos
    replace = msgspec.structs.replace
    cases = [
        (replace(receipt, event_id=receipt.event_id ^ 1), Reason.MISSING_COMMITTED_EVENT),
        (replace(receipt, global_sequence=receipt.global_sequence + 1), Reason.SEQUENCE_MISMATCH),
        (
            replace(receipt, disk_pos=DiskPos(pos.segment_id + 1, pos.offset, pos.length)),
            Reason.DISK_POSITION_MISMATCH,
        ),
        (
            replace(receipt, disk_pos=DiskPos(pos.segment_id, pos.offset + 1, pos.length)),
            Reason.DISK_POSITION_MISMATCH,
        ),
        (
            replace(receipt, disk_pos=DiskPos(pos.segment_id, pos.offset, pos.length - 1)),
            Reason.DISK_POSITION_MISMATCH,
        ),
        (replace(receipt, content_hash=bytes(32)), Reason.CONTENT_HASH_MISMATCH),
        (replace(receipt, extensions={"app.k": b"w"}), Reason.EXTENSIONS_MISMATCH),
        (replace(receipt, extensions={}), Reason.EXTENSIONS_MISMATCH),
        (replace(receipt, extensions={"app.k": b"v", "app.x": b""}), Reason.EXTENSIONS_MISMATCH),
    ]
    for tampered, reason in cases:
        verdict = store.verify_append_receipt(tampered)
        assert (verdict.outcome, verdict.reason) == (Outcome.INVALID, reason), tampered
        assert not verdict.is_valid
    assert store.verify_append_receipt(receipt).outcome is Outcome.UNSIGNED_ACCEPTED
