"""Group commit (store-api §6): many durable callers share fsyncs; an fsync failure poisons.

fsync calls are counted by wrapping ``os.fsync`` / ``os.fdatasync`` as the segment module sees
them; the wrappers still call the real functions. Kinds used here are 0xEBxx.
"""

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    DurabilityGate,
    IdempotencyKey,
    Region,
    Store,
    StoreConfig,
    WriterCrashed,
)
from batpak import fs as store_fs
from batpak.errors import IdempotencyRequired
from batpak.kinds import EventKind

SEGMENT_OS: ModuleType = vars(store_fs)["os"]  # what segment syncs call (batpak.fs)
KIND = EventKind.custom(0xE, 0xB10)
THREADS = 32
PER_THREAD = 20


def durable(key: int) -> AppendOptions:
    return AppendOptions(idempotency_key=key, gate=DurabilityGate(timeout=30))


class SyncCounter:
    """Counts fsync/fdatasync calls and adds a little disk-like latency to each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, latency: float) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._latency = latency
        for name in ("fsync", "fdatasync"):
            monkeypatch.setattr(SEGMENT_OS, name, self._wrap(getattr(os, name)))

    def _wrap(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def counted(fd: int) -> None:
            with self._lock:
                self.calls += 1
            time.sleep(self._latency)
            real(fd)

        return counted


def test_concurrent_durable_appends_share_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(StoreConfig(tmp_path).with_group_commit(0))
    first = store.frontier().accepted.global_sequence + 1
    counter = SyncCounter(monkeypatch, latency=0.002)
    barrier = threading.Barrier(THREADS)
    receipts: dict[int, list[AppendReceipt]] = {}
    errors: list[BaseException] = []
    lagging: list[int] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            mine = receipts.setdefault(t, [])
            for j in range(PER_THREAD):
                key = IdempotencyKey.for_operation("group-commit", [str(t), str(j)])
                receipt = store.append(Coordinate(f"t:{t}", "gc"), KIND, {"j": j}, durable(key))
                assert receipt.event_id == key
                if store.frontier().durable.global_sequence < receipt.global_sequence:
                    lagging.append(receipt.global_sequence)  # returned before it was durable
                mine.append(receipt)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    syncs = counter.calls
    monkeypatch.undo()

    assert errors == []
    assert lagging == []
    total = THREADS * PER_THREAD
    sequences = sorted(r.global_sequence for rs in receipts.values() for r in rs)
    assert sequences == list(range(first, first + total))  # dense and unique
    assert syncs < total // 4, f"{syncs} fsyncs for {total} durable appends"
    for t, mine in receipts.items():
        chain = store.by_entity(f"t:{t}")
        assert [e.event_id for e in chain] == [r.event_id for r in mine]
        assert [e.clock for e in chain] == list(range(PER_THREAD))
    store.close()
    with Store.open_read_only(StoreConfig(tmp_path)) as reopened:
        assert len(reopened.query(Region.entity("t"))) == total


def test_group_commit_requires_idempotency_keys(tmp_path: Path) -> None:
    for max_batch in (0, 8):
        with Store.open(StoreConfig(tmp_path / str(max_batch)).with_group_commit(max_batch)) as s:
            before = s.frontier()
            with pytest.raises(IdempotencyRequired):
                s.append(Coordinate("a", "gc"), KIND, 1)
            with pytest.raises(IdempotencyRequired):
                s.append(Coordinate("a", "gc"), KIND, 1, AppendOptions(gate=DurabilityGate(1)))
            assert s.frontier() == before
            assert s.append(Coordinate("a", "gc"), KIND, 1, durable(7)).event_id == 7
    with Store.open(StoreConfig(tmp_path / "plain")) as plain:  # the default needs no key
        plain.append(Coordinate("a", "gc"), KIND, 1)


def test_a_failing_fsync_poisons_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coord = Coordinate("a", "gc")
    store = Store.open(StoreConfig(tmp_path).with_group_commit(0))
    kept = store.append(coord, KIND, "kept", durable(1))
    durable_before = store.frontier().durable
    assert durable_before.global_sequence >= kept.global_sequence

    failures = [0]
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def failing_once(real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            if failures[0] == 0:
                failures[0] += 1
                raise OSError(errno.EIO, "injected fsync failure")
            real(fd)

        return call

    monkeypatch.setattr(SEGMENT_OS, "fsync", failing_once(real_fsync))
    monkeypatch.setattr(SEGMENT_OS, "fdatasync", failing_once(real_fdatasync))

    with pytest.raises(WriterCrashed):
        store.append(coord, KIND, "lost", durable(2))  # waiting on the fsync that failed
    assert failures[0] == 1
    monkeypatch.undo()  # the disk is healthy again; the writer stays poisoned

    with pytest.raises(WriterCrashed):
        store.append(coord, KIND, "later", durable(3))
    with pytest.raises(WriterCrashed):
        store.append_batch([BatchAppendItem.new(coord, KIND, 1, AppendOptions(idempotency_key=4))])
    with pytest.raises(WriterCrashed):
        store.sync()
    frontier = store.frontier()
    assert frontier.durable == durable_before  # frozen, never moved back
    assert frontier.accepted.global_sequence > durable_before.global_sequence

    started = time.monotonic()
    with pytest.raises(WriterCrashed):
        store.wait_for_durable(frontier.accepted.global_sequence, timeout=10)
    assert time.monotonic() - started < 2  # woken by the poison, not by the timeout
    # What was durable before the failure is still reported durable.
    assert store.wait_for_durable(kept.global_sequence, timeout=0) == durable_before
    assert store.frontier().durable == durable_before

    with contextlib.suppress(WriterCrashed):
        store.close()
    with Store.open(StoreConfig(tmp_path).with_group_commit(0)) as reopened:  # lock released
        assert reopened.get(kept.event_id).value() == "kept"
        again = reopened.append(coord, KIND, "kept", durable(1))
        assert again == kept


def test_the_writer_frames_the_next_group_while_an_fsync_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(StoreConfig(tmp_path).with_group_commit(0))
    syncing, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def held(fd: int) -> None:
        syncing.set()
        release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(SEGMENT_OS, "fsync", held)
    first: list[AppendReceipt] = []
    waiter = threading.Thread(
        target=lambda: first.append(store.append(Coordinate("a", "gc"), KIND, 1, durable(1)))
    )
    waiter.start()
    assert syncing.wait(10)
    # While that fsync runs, the writer takes, writes and answers the next append.
    later: list[AppendReceipt] = []
    other = threading.Thread(
        target=lambda: later.append(
            store.append(Coordinate("b", "gc"), KIND, 2, AppendOptions(idempotency_key=2))
        )
    )
    other.start()
    other.join(5)
    frontier, answered = store.frontier(), list(first)
    release.set()
    waiter.join(10)
    assert later, "the writer waited for an fsync it had handed off"
    assert answered == []  # the durable append waits for its fsync
    assert frontier.written.global_sequence >= later[0].global_sequence
    assert frontier.durable.global_sequence < later[0].global_sequence
    assert first
    assert store.frontier().durable.global_sequence >= first[0].global_sequence
    store.close()


def test_segments_rotate_cleanly_under_concurrent_group_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation seals and closes a file the syncer may still be syncing: the writer waits
    for the syncer first, so no fsync ever finds its file closed (or its number reused)."""
    config = StoreConfig(tmp_path).with_group_commit(0).with_segment_max_bytes(4096)
    acked: dict[int, int] = {}
    errors: list[BaseException] = []
    closed_under: list[int] = []
    real_fsync = os.fsync

    def slow(fd: int) -> None:
        before = os.fstat(fd).st_ino
        time.sleep(0.002)
        try:
            after: int | None = os.fstat(fd).st_ino
        except OSError:
            after = None
        if after != before:
            closed_under.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(SEGMENT_OS, "fsync", slow)

    def worker(t: int) -> None:
        try:
            for j in range(40):
                key = IdempotencyKey.for_operation("rotate", [str(t), str(j)])
                receipt = store.append(Coordinate(f"r:{t}", "gc"), KIND, [t, j] * 20, durable(key))
                acked[receipt.event_id] = receipt.global_sequence
        except BaseException as exc:
            errors.append(exc)

    with Store.open(config) as store:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    monkeypatch.undo()
    assert errors == []
    assert closed_under == []
    assert len(list(tmp_path.glob("*.fbat"))) > 10
    with Store.open(config) as reopened:
        assert reopened.verify_chain().is_intact()
        for event_id, sequence in acked.items():
            assert reopened.get(event_id).global_sequence == sequence


def test_waiters_blocked_before_the_failure_are_woken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(StoreConfig(tmp_path, sync_every_n_events=10_000).with_group_commit(0))
    pending = store.append(Coordinate("a", "gc"), KIND, 1, AppendOptions(idempotency_key=9))
    outcome: list[BaseException | None] = []

    def waiter() -> None:
        try:
            store.wait_for_durable(pending.global_sequence, timeout=10)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.05)  # the waiter is now blocked: nothing syncs at this cadence

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "injected fsync failure")

    monkeypatch.setattr(SEGMENT_OS, "fsync", broken)
    with pytest.raises(WriterCrashed):
        store.sync()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], WriterCrashed)
    monkeypatch.undo()
    with contextlib.suppress(WriterCrashed):
        store.close()


def writer_threads() -> int:
    return sum(t.name == "batpak-writer" and t.is_alive() for t in threading.enumerate())


def test_closing_a_poisoned_store_stops_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() after an fsync failure must still release what the store holds: the lock, the
    writer thread and its segment descriptor."""
    before = writer_threads()
    store = Store.open(StoreConfig(tmp_path))
    assert writer_threads() == before + 1
    store.append(Coordinate("a", "gc"), KIND, "unsynced")

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "injected fsync failure")

    monkeypatch.setattr(SEGMENT_OS, "fsync", broken)
    with pytest.raises(WriterCrashed):
        store.sync()
    monkeypatch.undo()
    with contextlib.suppress(WriterCrashed):
        store.close()
    with Store.open_read_only(StoreConfig(tmp_path)):
        pass  # the directory lock was released
    deadline = time.monotonic() + 1
    while writer_threads() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = {
        name
        for fd in os.listdir("/proc/self/fd")
        if (name := _target(fd)).startswith(str(tmp_path))
    }
    assert (writer_threads() - before, leaked) == (0, set()), "close() leaked the writer"


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class SlowWrites:
    """Wraps ``os.write`` as the segment files see it: counts calls, adds latency (so callers
    queue up behind the writer), and can fail every call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, latency: float) -> None:
        self.calls = 0
        self.fail = False
        real = os.write

        def write(fd: int, data: memoryview | bytes) -> int:
            self.calls += 1
            time.sleep(latency)
            if self.fail:
                raise OSError(errno.EIO, "injected write failure")
            return real(fd, data)

        monkeypatch.setattr(SEGMENT_OS, "write", write)


def _append_from_threads(store: Store, first_key: int) -> list[AppendReceipt | BaseException]:
    outcomes: list[AppendReceipt | BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        barrier.wait()
        for j in range(PER_THREAD):
            key = first_key + t * PER_THREAD + j
            try:  # not gated: answered once written, before any fsync
                outcome: AppendReceipt | BaseException = store.append(
                    Coordinate(f"w:{t}", "gc"), KIND, j, AppendOptions(idempotency_key=key)
                )
                assert isinstance(outcome, AppendReceipt)
                if store.get(outcome.event_id).value() != j:  # readable once answered
                    outcome = AssertionError(f"read back the wrong value for {key}")
            except BaseException as exc:
                outcome = exc
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_group_is_written_with_one_write_before_anyone_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(StoreConfig(tmp_path, sync_every_n_events=10_000).with_group_commit(0))
    writes = SlowWrites(monkeypatch, latency=0.002)
    outcomes = _append_from_threads(store, 1_000)
    calls = writes.calls
    monkeypatch.undo()

    total = THREADS * PER_THREAD
    receipts = [r for r in outcomes if isinstance(r, AppendReceipt)]
    assert len(receipts) == total
    assert calls < total // 4, f"{calls} writes for {total} appends"
    for t in range(THREADS):  # every chain is whole, in each caller's order
        assert [e.clock for e in store.by_entity(f"w:{t}")] == list(range(PER_THREAD))
    store.close()
    with Store.open_read_only(StoreConfig(tmp_path)) as reopened:
        assert len(reopened.query(Region.entity("w"))) == total


def test_a_failed_group_write_answers_no_one_and_shows_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(StoreConfig(tmp_path, sync_every_n_events=10_000).with_group_commit(0))
    kept = store.append(Coordinate("kept", "gc"), KIND, 0, AppendOptions(idempotency_key=1))
    visible_before = store.frontier().visible
    writes = SlowWrites(monkeypatch, latency=0.001)
    writes.fail = True
    outcomes = _append_from_threads(store, 2_000)
    monkeypatch.undo()

    assert len(outcomes) == THREADS * PER_THREAD
    assert all(isinstance(o, WriterCrashed) for o in outcomes), [
        o for o in outcomes if not isinstance(o, WriterCrashed)
    ][:3]
    assert store.frontier().visible == visible_before
    assert store.query(Region.entity("w")) == []
    assert store.get(kept.event_id).value() == 0
    with contextlib.suppress(WriterCrashed):
        store.close()
    with Store.open(StoreConfig(tmp_path).with_group_commit(0)) as reopened:
        assert reopened.query(Region.entity("w")) == []
        assert reopened.get(kept.event_id).value() == 0


def test_concurrent_batches_share_fsyncs_and_are_never_visible_before_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(StoreConfig(tmp_path).with_group_commit(0))
    counter = SyncCounter(monkeypatch, latency=0.002)
    rounds, size = 10, 3
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    early: list[tuple[int, int]] = []  # (visible, durable) seen with visible ahead
    done = threading.Event()

    def watch() -> None:  # only batches are written here: nothing may show before its fsync
        while not done.is_set():
            frontier = store.frontier()
            if frontier.visible.global_sequence > frontier.durable.global_sequence:
                early.append((frontier.visible.global_sequence, frontier.durable.global_sequence))

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for r in range(rounds):
                items = [
                    BatchAppendItem.new(Coordinate(f"b:{t}", "gc"), KIND, [r, i])
                    for i in range(size)
                ]
                receipts = store.append_batch(items)
                if store.frontier().durable.global_sequence < receipts[-1].global_sequence:
                    raise AssertionError("a batch returned before it was durable")
        except BaseException as exc:
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    syncs = counter.calls
    monkeypatch.undo()

    assert errors == []
    assert early == []
    assert syncs < THREADS * rounds // 4, f"{syncs} fsyncs for {THREADS * rounds} batches"
    for t in range(THREADS):
        values = [store.get(e.event_id).value() for e in store.by_entity(f"b:{t}")]
        assert values == [[r, i] for r in range(rounds) for i in range(size)]
    store.close()
    with Store.open_read_only(StoreConfig(tmp_path)) as reopened:
        assert len(reopened.query(Region.entity("b"))) == THREADS * rounds * size
