"""Delivery (store-api §1.8, facts3 §3 and §8): checkpointed cursors and lossy subscriptions.

Checkpoint files are decoded independently with ``msgpack``. Kinds used here are 0xEBxx.
"""

import threading
import time
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import (
    BatchAppendItem,
    Coordinate,
    FailClosedError,
    Notification,
    Region,
    Store,
    StoreConfig,
    Subscription,
    SubscriptionDropped,
)
from batpak.errors import Configuration, ReadOnlyStore
from batpak.kinds import SYSTEM_OPEN_COMPLETED, EventKind
from batpak.store._cursor import CursorCheckpointCorrupt, CursorCheckpointRegionMismatch

KIND = EventKind.custom(0xE, 0xB50)
OTHER = EventKind.custom(0xF, 0xB51)


def fill(store: Store, n: int, entity: str = "job:1", kind: int = KIND) -> list[int]:
    return [store.append(Coordinate(entity, "work"), kind, i).global_sequence for i in range(n)]


# --- cursors ----------------------------------------------------------------------------------


def test_cursor_delivers_everything_in_order_from_sequence_zero(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        fill(store, 10)
        cursor = store.cursor(Region.all())
        first = cursor.poll()
        assert first is not None
        assert (first.global_sequence, first.event_kind) == (0, SYSTEM_OPEN_COMPLETED)
        pages = [cursor.poll_batch(3) for _ in range(5)]
        assert [len(p) for p in pages] == [3, 3, 3, 1, 0]
        seqs = [e.global_sequence for page in pages for e in page]
        assert seqs == list(range(1, 11))
        assert cursor.position == 10
        assert cursor.poll() is None
        late = fill(store, 2)
        assert [e.global_sequence for e in cursor.poll_batch(10)] == late
        scoped = store.cursor(Region.entity("job:2"))
        fill(store, 2, "job:2")
        fill(store, 1, "job:1")
        assert [e.entity for e in scoped.poll_batch(10)] == ["job:2", "job:2"]


def test_cursor_sees_a_batch_whole(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        cursor = store.cursor(Region.entity("job"))
        receipts = store.append_batch(
            [BatchAppendItem.new(Coordinate(f"job:{i}", "work"), KIND, i) for i in range(4)]
        )
        assert [e.event_id for e in cursor.poll_batch(100)] == [r.event_id for r in receipts]


def checkpoint(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    value: dict[str, object] = msgpack.unpackb(data, raw=False)
    return value


def test_commit_writes_a_bare_msgpack_checkpoint(tmp_path: Path) -> None:
    region = Region.entity("job")
    path = tmp_path / "cursors" / "billing.ckpt"
    with Store.open(StoreConfig(tmp_path)) as store:
        seqs = fill(store, 5)
        cursor = store.cursor(region, checkpoint_id="billing")
        cursor.commit()  # nothing delivered yet: nothing to record
        assert not path.exists()
        cursor.poll_batch(3)
        cursor.commit()
        data = path.read_bytes()
        assert data[:1] == b"\x84"  # a bare 4-key map: no magic, version or CRC
        value = checkpoint(path)
        assert list(value) == ["position", "started", "process_boot_ns", "region_identity"]
        assert value == {
            "position": seqs[2],
            "started": True,
            "process_boot_ns": None,
            "region_identity": "entity=job|scope=*|fact=none|clock=*",
        }
        assert data == msgpack.packb(value, use_bin_type=True)
        cursor.close()
        fill(store, 1, "job:3", OTHER)
        identities = {
            "all": (Region.all(), "entity=*|scope=*|fact=none|clock=*"),
            "scope": (Region.scope("work"), "entity=*|scope=work|fact=none|clock=*"),
            "exact": (Region.all().with_kind(KIND), "entity=*|scope=*|fact=exact:e:b50|clock=*"),
            "category": (
                Region.entity("job").with_category(0xF),
                "entity=job|scope=*|fact=category:f|clock=*",
            ),
        }
        for name, (r, identity) in identities.items():
            c = store.cursor(r, checkpoint_id=name)
            c.poll()
            c.commit()
            c.close()
            assert checkpoint(tmp_path / "cursors" / f"{name}.ckpt")["region_identity"] == identity


def test_cursor_resumes_after_the_committed_position_across_restarts(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    region = Region.entity("job")
    with Store.open(config) as store:
        seqs = fill(store, 6)
        cursor = store.cursor(region, checkpoint_id="worker")
        assert [e.global_sequence for e in cursor.poll_batch(2)] == seqs[:2]
        cursor.commit()
        assert [e.global_sequence for e in cursor.poll_batch(2)] == seqs[2:4]  # not committed
        cursor.close()
    with Store.open(config) as store:
        more = fill(store, 2)
        cursor = store.cursor(region, checkpoint_id="worker")
        again = [e.global_sequence for e in cursor.poll_batch(100)]
        assert again == seqs[2:] + more  # at-least-once: the uncommitted ones come back
        cursor.commit()
        cursor.close()
    with Store.open(config) as store:
        cursor = store.cursor(region, checkpoint_id="worker")
        assert cursor.poll_batch(100) == []
        cursor.close()


def test_a_checkpoint_that_never_started_does_not_skip_sequence_zero(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    (tmp_path / "cursors").mkdir(parents=True)
    body = {
        "position": 0,
        "started": False,
        "process_boot_ns": None,
        "region_identity": "entity=*|scope=*|fact=none|clock=*",
    }
    (tmp_path / "cursors" / "fresh.ckpt").write_bytes(msgpack.packb(body))
    with Store.open(config) as store:
        cursor = store.cursor(Region.all(), checkpoint_id="fresh")
        first = cursor.poll()
        assert first is not None
        assert first.global_sequence == 0


def test_checkpoint_region_mismatch_and_corruption_fail_closed(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        fill(store, 3)
        cursor = store.cursor(Region.entity("job"), checkpoint_id="c1")
        cursor.poll()
        cursor.commit()
        cursor.close()
        with pytest.raises(CursorCheckpointRegionMismatch):
            store.cursor(Region.entity("other"), checkpoint_id="c1")
        with pytest.raises(CursorCheckpointRegionMismatch):
            store.cursor(Region.entity("job").with_kind(KIND), checkpoint_id="c1")
        path = tmp_path / "cursors" / "c1.ckpt"
        good = path.read_bytes()
        missing_identity = msgpack.packb({"position": 1, "started": True, "process_boot_ns": None})
        for bad in (b"", b"\xc1", good[:-3], b"not msgpack at all", msgpack.packb([1, 2])):
            path.write_bytes(bad)
            with pytest.raises(CursorCheckpointCorrupt) as caught:
                store.cursor(Region.entity("job"), checkpoint_id="c1")
            assert isinstance(caught.value, FailClosedError)
        path.write_bytes(missing_identity)
        with pytest.raises(CursorCheckpointRegionMismatch):
            store.cursor(Region.entity("job"), checkpoint_id="c1")
        path.write_bytes(good)
        store.cursor(Region.entity("job"), checkpoint_id="c1").close()  # usable again


def test_one_checkpoint_id_serves_one_cursor_at_a_time(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        first = store.cursor(Region.all(), checkpoint_id="solo")
        with pytest.raises(Configuration):
            store.cursor(Region.all(), checkpoint_id="solo")
        other = store.cursor(Region.all(), checkpoint_id="other")
        first.close()
        second = store.cursor(Region.all(), checkpoint_id="solo")
        second.close()
        other.close()
        store.cursor(Region.all()).close()  # unnamed cursors need no claim


def test_read_only_store_refuses_a_checkpointed_cursor(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        fill(store, 2)
    with Store.open_read_only(StoreConfig(tmp_path)) as store:
        with pytest.raises(ReadOnlyStore):
            store.cursor(Region.all(), checkpoint_id="ro")
        assert len(store.cursor(Region.all()).poll_batch(100)) == 4
    assert not (tmp_path / "cursors").exists()


# --- lossy subscriptions ----------------------------------------------------------------------


def drain(subscription: Subscription, n: int) -> list[Notification]:
    out = []
    for _ in range(n):
        note = subscription.recv(timeout=2)
        assert note is not None
        out.append(note)
    return out


def test_subscription_sees_only_later_events_in_order_and_filtered(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        fill(store, 3)
        subscription = store.subscribe_lossy(Region.entity("job").with_kind(KIND))
        everything = store.subscribe_lossy(Region.all())
        wanted = []
        for i in range(6):
            kind = KIND if i % 2 == 0 else OTHER
            entity = "job:1" if i % 3 else "elsewhere"
            receipt = store.append(Coordinate(entity, "work"), kind, i)
            if kind == KIND and entity == "job:1":
                wanted.append(receipt)
        batch = store.append_batch(
            [BatchAppendItem.new(Coordinate("job:9", "work"), KIND, i) for i in range(5)]
        )
        wanted += batch
        notes = drain(subscription, len(wanted))
        assert [n.event_id for n in notes] == [r.event_id for r in wanted]
        assert [n.sequence for n in notes] == sorted(n.sequence for n in notes)
        assert subscription.recv(timeout=0.05) is None  # nothing else matched
        last = notes[-1]
        entry = store.get(last.event_id)
        assert last.coord == Coordinate("job:9", "work")
        assert (last.kind, last.sequence) == (KIND, entry.global_sequence)
        assert last.correlation_id == last.event_id
        assert last.causation_id is None
        # The batch arrives whole and contiguous on the unfiltered subscription too.
        every = drain(everything, 11)
        assert [n.sequence for n in every][-5:] == [r.global_sequence for r in batch]
        assert all(n.sequence > 3 for n in every)  # nothing from before subscribing


def test_a_slow_subscriber_is_dropped_without_blocking_the_writer(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        slow = store.subscribe_lossy(Region.entity("job"), capacity=2)
        healthy = store.subscribe_lossy(Region.entity("job"))
        started = time.monotonic()
        seqs = fill(store, 10)
        assert time.monotonic() - started < 2  # nobody waited for the slow reader
        first = [slow.recv(timeout=1), slow.recv(timeout=1)]
        assert [n.sequence for n in first if n] == seqs[:2]
        with pytest.raises(SubscriptionDropped):
            slow.recv(timeout=1)
        with pytest.raises(SubscriptionDropped):
            slow.recv(timeout=1)  # stays dropped
        assert [n.sequence for n in drain(healthy, 10)] == seqs
        fill(store, 1)
        assert healthy.recv(timeout=1) is not None


def test_recv_returns_none_once_the_store_closes(tmp_path: Path) -> None:
    store = Store.open(StoreConfig(tmp_path))
    scoped = store.subscribe_lossy(Region.entity("job"))
    everything = store.subscribe_lossy(Region.all())
    got: list[Notification | None] = []

    def blocked_reader() -> None:
        got.append(scoped.recv(timeout=10))

    reader = threading.Thread(target=blocked_reader)
    reader.start()
    time.sleep(0.05)
    store.close()
    reader.join(timeout=5)
    assert got == [None]
    assert scoped.recv(timeout=0) is None
    assert scoped.recv() is None  # no timeout: still returns, never hangs
    close_note = everything.recv(timeout=1)  # the CLOSE_COMPLETED event, then the end
    assert close_note is not None
    assert close_note.kind == 0x0009
    assert everything.recv(timeout=1) is None
    assert list(everything) == []
