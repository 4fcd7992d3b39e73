"""refhost.subscriptions: the Store-backed NETBAT/2 source, unit and over loopback TCP."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.from_thread
import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import Coordinate, Region, Store, StoreConfig
from hostbat import SubscriptionDescriptor
from hostbat.subscription import EntityStreamSource, ProjectionSource
from netbat import (
    SourceEvent,
    SourceItem,
    SourceWatermark,
    SubEvent,
    Subscription,
    SubscriptionFault,
    SubscriptionServer,
    SubscriptionServerConfig,
    SubWatermark,
)
from refhost.subscriptions import (
    ALL_EVENTS_ID,
    CURSOR_LEN,
    EVENT_SUMMARY_SCHEMA_REF,
    StoreSubscriptionFeed,
    StoreSubscriptionSource,
    category_subscription_id,
    encode_cursor,
)

BANK = Coordinate("acct:1", "bank")
OTHER = Coordinate("acct:2", "bank")
KIND_F = 0xF101  # category 0xF, type 0x101
KIND_E = 0xE001  # category 0xE

SUMMARY_FIELDS = [
    "event_id_hex",
    "global_sequence",
    "wall_ms",
    "clock",
    "correlation_id_hex",
    "causation_id_hex",
    "kind_category",
    "kind_type_id",
    "entity",
    "scope",
    "content_hash_hex",
]


def append(store: Store, n: int, coord: Coordinate = BANK, kind: int = KIND_F) -> list[int]:
    return [store.append(coord, kind, {"n": i}).global_sequence for i in range(n)]


def drain(feed: StoreSubscriptionFeed, timeout: float = 0.05) -> list[SourceItem]:
    items: list[SourceItem] = []
    while (item := feed.poll(timeout)) is not None:
        items.append(item)
    return items


def events(items: list[SourceItem]) -> list[SourceEvent]:
    return [item for item in items if isinstance(item, SourceEvent)]


def seq_of(event: SourceEvent) -> int:
    summary = msgpack.unpackb(event.payload)
    seq: int = summary["global_sequence"]
    return seq


def fault(call: object, *args: object) -> SubscriptionFault:
    assert callable(call)
    with pytest.raises(SubscriptionFault) as caught:
        call(*args)
    return caught.value


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(StoreConfig(tmp_path / "store")) as opened:
        yield opened


# -- unit: source and feed -----------------------------------------------------------------


def test_all_events_in_order_with_summary_payload(store: Store) -> None:
    appended = append(store, 5)
    feed = StoreSubscriptionSource(store).open(ALL_EVENTS_ID, None, 16)
    try:
        got = events(drain(feed))
    finally:
        feed.close()
    seqs = [seq_of(e) for e in got]
    assert seqs == sorted(seqs)
    assert seqs[-5:] == appended
    assert seqs == [e.global_sequence for e in store.query_entries_after(Region.all(), None, 100)]
    assert got[0].cursor_before is None
    for before, after in itertools.pairwise(got):
        assert after.cursor_before == before.cursor_after
    last = got[-1]
    assert last.payload_schema_ref == EVENT_SUMMARY_SCHEMA_REF
    assert len(last.cursor_after) == CURSOR_LEN
    summary = msgpack.unpackb(last.payload)
    assert list(summary) == SUMMARY_FIELDS
    assert (summary["kind_category"], summary["kind_type_id"]) == (0xF, 0x101)
    assert (summary["entity"], summary["scope"]) == ("acct:1", "bank")
    entry = store.by_entity("acct:1")[-1]
    assert summary["event_id_hex"] == f"{entry.event_id:032x}"
    assert summary["content_hash_hex"] == entry.event_hash.hex()
    assert summary["causation_id_hex"] is None
    assert last.payload[:1] == b"\x8b"  # an 11-entry fixmap


def test_resume_after_cursor_delivers_only_later_events(store: Store) -> None:
    append(store, 3)
    source = StoreSubscriptionSource(store)
    feed = source.open(ALL_EVENTS_ID, None, 16)
    first = events(drain(feed))
    feed.close()
    middle = first[-2]
    resumed = source.open(ALL_EVENTS_ID, middle.cursor_after, 16)
    try:
        again = events(drain(resumed))
        assert [seq_of(e) for e in again] == [seq_of(first[-1])]
        assert again[0].cursor_before == middle.cursor_after
        new = append(store, 2)
        assert [seq_of(e) for e in events(drain(resumed))] == new
    finally:
        resumed.close()
    # Resuming at the last cursor delivers nothing twice.
    tail = source.open(ALL_EVENTS_ID, first[-1].cursor_after, 16)
    assert [seq_of(e) for e in events(drain(tail))] == new
    tail.close()


def test_category_and_entity_routes_filter_and_watermark(store: Store) -> None:
    append(store, 2, kind=KIND_E)
    wanted = append(store, 2, coord=OTHER)
    append(store, 1, coord=Coordinate("acct:2:sub", "bank"))  # a prefix child, not acct:2
    descriptor = SubscriptionDescriptor(
        "bank.acct-2.v1", EntityStreamSource(OTHER), "hostbat.event.bank.v1"
    )
    source = StoreSubscriptionSource(store, [descriptor], watermark_interval=0.0)
    feed = source.open(category_subscription_id(0xF), None, 16)
    items = drain(feed)
    feed.close()
    assert [seq_of(e) for e in events(items)] == [*wanted, wanted[-1] + 1]
    assert all(msgpack.unpackb(e.payload)["kind_category"] == 0xF for e in events(items))
    assert not any(isinstance(i, SourceWatermark) for i in items)  # caught up on an event

    entity = source.open("bank.acct-2.v1", None, 16)
    items = drain(entity)
    assert [seq_of(e) for e in events(items)] == wanted
    # The prefix child was scanned past: one watermark at the frontier, then silence.
    assert isinstance(items[-1], SourceWatermark)
    frontier = store.frontier().visible.global_sequence
    assert items[-1].cursor_after == encode_cursor(source.store_tag, "bank.acct-2.v1", frontier)
    assert sum(isinstance(i, SourceWatermark) for i in items) == 1
    entity.close()
    # Resuming at the watermark skips what it covered.
    resumed = source.open("bank.acct-2.v1", items[-1].cursor_after, 16)
    assert drain(resumed) == []
    resumed.close()


def test_unknown_ids_are_refused(store: Store) -> None:
    source = StoreSubscriptionSource(store)
    for sid in (
        "events.nope.v1",
        "events.all.v2",
        "events.category.0.v1",
        "events.category.13.v1",
        "events.category.16.v1",
        "events.category.01.v1",
    ):
        error = fault(source.open, sid, None, 4)
        assert (error.code, error.message) == ("unknown_subscription", sid)
    with pytest.raises(ValueError, match="projection source is not served"):
        StoreSubscriptionSource(
            store, [SubscriptionDescriptor("p.v1", ProjectionSource("proj"), "x.v1")]
        )
    with pytest.raises(ValueError, match="already served"):
        StoreSubscriptionSource(
            store, [SubscriptionDescriptor(ALL_EVENTS_ID, EntityStreamSource(BANK), "x.v1")]
        )


def test_bad_and_foreign_cursors_are_refused(store: Store, tmp_path: Path) -> None:
    append(store, 2)
    source = StoreSubscriptionSource(store)
    feed = source.open(ALL_EVENTS_ID, None, 16)
    cursor = events(drain(feed))[-1].cursor_after
    for bad in (b"", b"\x0a", cursor[:-1], b"XXXX" + cursor[4:], cursor[:4] + b"\x02" + cursor[5:]):
        error = fault(source.open, ALL_EVENTS_ID, bad, 4)
        assert error.code == "cursor_invalid"
        assert fault(feed.check_ack_cursor, bad).code == "cursor_invalid"
    # Another subscription id's cursor, and another store's cursor: cursor_mismatch.
    other_route = fault(source.open, category_subscription_id(0xF), cursor, 4)
    assert (other_route.code, other_route.message) == (
        "cursor_mismatch",
        "cursor belongs to another subscription",
    )
    with Store.open(StoreConfig(tmp_path / "elsewhere")) as foreign_store:
        foreign = StoreSubscriptionSource(foreign_store)
        error = fault(foreign.open, ALL_EVENTS_ID, cursor, 4)
        assert (error.code, error.message) == ("cursor_mismatch", "cursor belongs to another store")
    assert fault(feed.check_ack_cursor, encode_cursor(b"\0" * 16, ALL_EVENTS_ID, 1)).code == (
        "cursor_mismatch"
    )
    feed.check_ack_cursor(cursor)  # its own cursor passes
    ahead = encode_cursor(source.store_tag, ALL_EVENTS_ID, 10_000)
    assert fault(source.open, ALL_EVENTS_ID, ahead, 4).message == "cursor is ahead of the store"
    feed.close()
    assert fault(feed.poll, 0.0).code == "internal_error"


def test_idle_poll_waits_without_spinning_and_wakes_on_append(store: Store) -> None:
    feed = StoreSubscriptionSource(store).open(category_subscription_id(0xF), None, 16)
    try:
        # Only the OPEN_COMPLETED system event so far: one watermark past it, then idle.
        (mark,) = drain(feed, 0.0)
        assert isinstance(mark, SourceWatermark)
        started = time.monotonic()
        cpu = time.process_time()
        assert feed.poll(0.2) is None
        elapsed = time.monotonic() - started
        assert 0.18 <= elapsed < 1.0
        assert time.process_time() - cpu < 0.1  # blocked, not spinning

        frontier = store.frontier().visible.global_sequence
        timer = threading.Timer(0.15, append, (store, 1))
        timer.start()
        started = time.monotonic()
        item = feed.poll(5.0)
        woke = time.monotonic() - started
        timer.join()
        assert isinstance(item, SourceEvent)
        assert seq_of(item) == frontier + 1
        assert 0.1 <= woke < 1.0
    finally:
        feed.close()


# -- end to end: netbat's server and client over loopback TCP ------------------------------


@pytest.fixture
def served(store: Store) -> Iterator[int]:
    server = SubscriptionServer(
        StoreSubscriptionSource(store), SubscriptionServerConfig(first_line_timeout=2.0)
    )
    with anyio.from_thread.start_blocking_portal() as portal:
        future, port = portal.start_task(server.serve, "127.0.0.1", 0)
        try:
            yield port
        finally:
            future.cancel()


def test_subscribe_ack_append_cancel_over_tcp(store: Store, served: int) -> None:
    existing = [e.global_sequence for e in store.query_entries_after(Region.all(), None, 1000)]
    existing += append(store, 3)
    with Subscription(
        "127.0.0.1", served, ALL_EVENTS_ID, window=8, auto_ack=False, read_timeout=5.0
    ) as sub:
        frames = iter(sub)
        received: list[SubEvent] = []
        for _ in existing:
            frame = next(frames)
            assert isinstance(frame, SubEvent)
            received.append(frame)
        assert [seq_of(_as_source(f)) for f in received] == existing
        assert [f.delivery_index for f in received] == list(range(1, len(existing) + 1))
        assert received[0].cursor_before is None
        assert received[-1].payload_schema_ref == EVENT_SUMMARY_SCHEMA_REF
        sub.ack(received[-1])

        new = append(store, 2)
        for seq in new:
            frame = next(frames)
            assert isinstance(frame, SubEvent)
            assert seq_of(_as_source(frame)) == seq
            received.append(frame)
        sub.ack(received[-1])
        sub.cancel()
        assert list(frames) == []
        assert sub.end is not None
        assert sub.error is None
        assert sub.end.reason_code == "client_cancelled"
        assert sub.end.cursor_after == received[-1].cursor_after

    # Resume over TCP from the first ACKed cursor: exactly the two later events.
    resume = received[len(existing) - 1].cursor_after
    with Subscription(
        "127.0.0.1", served, ALL_EVENTS_ID, resume_cursor=resume, read_timeout=5.0
    ) as again:
        frames = iter(again)
        got = [next(frames), next(frames)]
        assert [seq_of(_as_source(f)) for f in got if isinstance(f, SubEvent)] == new
        again.cancel()
        assert list(frames) == []
        assert again.end is not None


def test_open_failures_over_tcp(store: Store, served: int) -> None:
    with Subscription("127.0.0.1", served, "events.nope.v1", read_timeout=5.0) as sub:
        with pytest.raises(SubscriptionFault) as caught:
            list(sub)
        assert sub.error is not None
        assert (sub.error.code, sub.error.message) == ("unknown_subscription", b"events.nope.v1")
    assert caught.value.code == "unknown_subscription"
    foreign = encode_cursor(b"\1" * 16, ALL_EVENTS_ID, 0)
    with Subscription(
        "127.0.0.1", served, ALL_EVENTS_ID, resume_cursor=foreign, read_timeout=5.0
    ) as sub:
        with pytest.raises(SubscriptionFault):
            list(sub)
        assert sub.error is not None
        assert sub.error.code == "cursor_mismatch"


def _as_source(frame: SubEvent | SubWatermark) -> SourceEvent:
    assert isinstance(frame, SubEvent)
    assert frame.cursor_after is not None
    return SourceEvent(
        frame.cursor_before, frame.cursor_after, frame.payload_schema_ref, frame.payload
    )


def test_cursor_survives_a_reopen(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "reopened")
    with Store.open(config) as first:
        append(first, 2)
        feed = StoreSubscriptionSource(first).open(ALL_EVENTS_ID, None, 16)
        cursor = events(drain(feed))[-1].cursor_after
        feed.close()
    with Store.open(config) as second:
        new = append(second, 1)
        resumed = StoreSubscriptionSource(second).open(ALL_EVENTS_ID, cursor, 16)
        got = [seq_of(e) for e in events(drain(resumed))]
        resumed.close()
    # The reopen's own system events (close/open markers) come first, then the new event.
    assert got[-1:] == new
    assert all(seq > int.from_bytes(cursor[-8:], "big") for seq in got)
