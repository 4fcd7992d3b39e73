"""Thread storms against one Store: racing keys, racing CAS, racing compactors, group commit,
batch visibility under concurrent readers, cursors and subscriptions, sampled watermarks, and
gated appends with short timeouts.

Every storm releases its threads together (``threading.Barrier``) with a one-microsecond
switch interval, so the interpreter interleaves them as finely as it can.

PROVES: INV-CONCURRENCY-SCHEDULE-PROOF (one winner for a racing keyed append, one CAS winner,
one compactor at a time), INV-CAS-STALE-WRITES-NOTHING, INV-JOURNAL-WRITER-SERIALIZES-COMMITS
(group commit persists every concurrent durable append, across a crash),
INV-BATCH-ATOMIC-VISIBILITY (queries, cursors and subscriptions never see part of a batch;
markers never visible; an oversized item rejects the whole batch), INV-FRONTIER-ORDERING
(sampled concurrently: ordered, never backwards), INV-FRONTIER-APPEND-GATE-HONORED (a gated
append returns durable or raises WaitTimeout, and its event is queryable either way).
CATCHES: double-applied keys, two CAS winners, overlapping compactions, lost group-commit
appends, torn batch publication, notifications before visibility, regressing watermarks, a
gate that returns before durable or loses the append on timeout.
SEEDED: thread schedules are the OS's; operation mixes come from random.Random(thread).
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    DomainError,
    DurabilityGate,
    Frontier,
    IdempotencyKey,
    Projection,
    Region,
    SequenceMismatch,
    Store,
    StoreConfig,
    WaitTimeout,
    event_payload,
    handles,
)

KIND = 0xF0C1
MARKERS = (0x0006, 0x0007)
T = TypeVar("T")


@contextmanager
def tiny_switch_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def race(n: int, fn: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``fn(0..n-1)`` on n threads released together; each result or raised exception."""
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("did not run")] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    with tiny_switch_interval():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results


def ok(results: list[T | BaseException]) -> list[T]:
    return [r for r in results if not isinstance(r, BaseException)]


def check_frontier(f: Frontier) -> None:
    assert f.accepted >= f.written >= f.durable
    assert f.accepted >= f.visible >= f.applied


def append_as(store: Store, coord: Coordinate, options: AppendOptions, i: int) -> AppendReceipt:
    return store.append(coord, KIND, {"who": i}, options)


@pytest.mark.invariant("INV-CONCURRENCY-SCHEDULE-PROOF")
def test_racing_keyed_appends_have_one_winner(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        for round_no in range(8):
            key = IdempotencyKey.for_operation("storm", [str(round_no)])
            coord = Coordinate(f"key:{round_no}", "storm")
            options = AppendOptions(idempotency_key=key)
            results = race(8, partial(append_as, store, coord, options))
            receipts = ok(results)
            assert len(receipts) == 8, [r for r in results if isinstance(r, BaseException)]
            assert all(r == receipts[0] for r in receipts)
            assert receipts[0].event_id == key
            assert [e.event_id for e in store.by_entity(coord.entity)] == [key]


@pytest.mark.invariant("INV-CONCURRENCY-SCHEDULE-PROOF")
@pytest.mark.invariant("INV-CAS-STALE-WRITES-NOTHING")
def test_racing_cas_has_one_winner(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        coord = Coordinate("cas:1", "storm")
        store.append(coord, KIND, {"seed": True})
        for round_no in range(8):
            head = store.by_entity(coord.entity)[-1].clock
            options = AppendOptions(expected_sequence=head)
            results = race(8, partial(append_as, store, coord, options))
            winners = ok(results)
            losers = [r for r in results if isinstance(r, SequenceMismatch)]
            assert len(winners) == 1, results
            assert len(losers) == 7, results
            assert {(e.expected, e.actual) for e in losers} == {(head, head + 1)}
            stream = store.by_entity(coord.entity)
            assert [e.clock for e in stream] == list(range(round_no + 2))  # losers wrote nothing
            assert stream[-1].event_id == winners[0].event_id


@pytest.mark.invariant("INV-CONCURRENCY-SCHEDULE-PROOF")
def test_one_compactor_at_a_time_under_readers(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "s")
    for session in range(4):  # each session seals a segment; the last reopen has a checkpoint
        with Store.open(config) as store:
            for n in range(20):
                store.append(Coordinate(f"c:{n % 3}", "compact"), KIND, {"s": session, "n": n})
    with Store.open(config) as store:
        before = store.query(Region.all())
        streams = {name: [e.event_id for e in store.by_entity(name)] for name in ("c:0", "c:1")}
        finished: list[int] = []
        all_done = threading.Event()

        def run(i: int) -> str:
            if i < 4:
                try:
                    return store.compact().outcome
                finally:
                    finished.append(i)
                    if len(finished) == 4:
                        all_done.set()
            while not all_done.is_set():  # read until every compactor is done
                seqs = [e.global_sequence for e in store.query(Region.all())]
                assert seqs == sorted(set(seqs))
                assert len(seqs) >= len(before)
                for name, ids in streams.items():
                    assert [e.event_id for e in store.by_entity(name)][: len(ids)] == ids
                assert store.get(before[1].event_id).global_sequence == 1
            return "reader"

        results = race(7, run)
        assert results.count("reader") == 3, results  # no reader saw a torn index
        outcomes = [r for r in results if r in ("performed", "skipped")]
        assert sorted(outcomes) == ["performed", "skipped", "skipped", "skipped"], results
        assert [(e.event_id, e.global_sequence) for e in store.query(Region.all())][
            : len(before)
        ] == [(e.event_id, e.global_sequence) for e in before]
        assert store.verify_chain().is_intact()


@pytest.mark.invariant("INV-JOURNAL-WRITER-SERIALIZES-COMMITS")
@pytest.mark.invariant("INV-FRONTIER-APPEND-GATE-HONORED")
def test_group_commit_persists_every_concurrent_durable_append(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "s").with_group_commit(0)
    store = Store.open(config)

    def writer(i: int) -> list[AppendReceipt]:
        mine = []
        for n in range(12):
            key = IdempotencyKey.for_operation("group", [str(i), str(n)])
            options = AppendOptions(idempotency_key=key, gate=DurabilityGate(30.0))
            receipt = store.append(Coordinate(f"g:{i}", "group"), KIND, {"n": n}, options)
            assert store.frontier().durable.global_sequence >= receipt.global_sequence
            mine.append(receipt)
        return mine

    results = race(8, writer)
    receipts = [r for batch in ok(results) for r in batch]
    assert len(receipts) == 96, results
    assert len({r.global_sequence for r in receipts}) == 96
    store._abandon()  # a crash right after: every gated append was durable
    with Store.open(config) as reopened:
        seen = {e.event_id: e.global_sequence for e in reopened.query(Region.scope("group"))}
    assert seen == {r.event_id: r.global_sequence for r in receipts}


@pytest.mark.invariant("INV-BATCH-ATOMIC-VISIBILITY")
def test_readers_cursors_and_subscriptions_never_see_part_of_a_batch(tmp_path: Path) -> None:
    region = Region.scope("atomic")
    with Store.open(StoreConfig(tmp_path / "s", segment_max_bytes=4096)) as store:
        subscription = store.subscribe_lossy(region, capacity=100_000)
        batches: list[list[AppendReceipt]] = []
        done = threading.Event()
        query_reads: list[set[int]] = []
        cursor_reads: list[set[int]] = []
        notes: list[tuple[int, int]] = []  # (event id, visible sequence when it arrived)

        def work(i: int) -> None:
            rng = random.Random(i)
            if i == 0:
                for n in range(40):
                    size = rng.randint(2, 6)
                    items = [
                        BatchAppendItem.new(Coordinate(f"a:{n % 4}", "atomic"), KIND, {"k": k})
                        for k in range(size)
                    ]
                    batches.append(store.append_batch(items))
                done.set()
            elif i in (1, 2):
                while not done.is_set():
                    query_reads.append({e.event_id for e in store.query(region)})
            elif i == 3:
                cursor = store.cursor(region)
                seen: set[int] = set()
                while not done.is_set() or store.query_entries_after(region, cursor.position, 1):
                    seen |= {e.event_id for e in cursor.poll_batch(1000)}
                    cursor_reads.append(set(seen))
            else:
                while (note := subscription.recv(timeout=2.0)) is not None:
                    notes.append((note.event_id, store.frontier().visible.global_sequence))
                    if done.is_set() and len(notes) == sum(len(b) for b in batches):
                        break

        results = race(5, work)
        assert not [r for r in results if isinstance(r, BaseException)], results
        last_of = {r.event_id: b[-1].global_sequence for b in batches for r in b}
        groups = [{r.event_id for r in b} for b in batches]
        for seen in query_reads + cursor_reads:
            for group in groups:
                assert not group & seen or group <= seen, "a read saw part of a batch"
        assert {note for note, _ in notes} == set(last_of)
        for event_id, visible in notes:
            assert visible >= last_of[event_id], "notified before the whole batch was visible"
        assert cursor_reads
        assert cursor_reads[-1] == set(last_of)
        kinds = {e.event_kind for e in store.query(Region.all())}
        assert not kinds & set(MARKERS), "batch markers must never be visible"
        before = len(store.query(Region.all()))
        oversized = [
            BatchAppendItem.new(Coordinate("a:big", "atomic"), KIND, {"k": 0}),
            BatchAppendItem.new(Coordinate("a:big", "atomic"), KIND, {"blob": "x" * (17 << 20)}),
        ]
        with pytest.raises(DomainError):
            store.append_batch(oversized)
        assert len(store.query(Region.all())) == before, "an oversized item let part through"


@event_payload(category=0xF, type_id=0x0C2, version=1)
class Tick(msgspec.Struct):
    n: int


class TickCount(Projection):
    def __init__(self) -> None:
        self.count = 0

    @handles(Tick)
    def on_tick(self, tick: Tick) -> None:
        self.count += 1


@pytest.mark.invariant("INV-FRONTIER-ORDERING")
def test_watermarks_sampled_concurrently_are_ordered_and_never_move_back(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s", sync_every_n_events=7)) as store:
        finished = threading.Event()
        samples: list[list[Frontier]] = []

        def work(i: int) -> int:
            rng = random.Random(i)
            coord = Coordinate(f"f:{i}", "frontier")
            if i < 3:
                for n in range(40):
                    roll = rng.random()
                    if roll < 0.5:
                        store.append_typed(coord, Tick(n))
                    elif roll < 0.7:
                        store.append_typed(coord, Tick(n), AppendOptions(gate=DurabilityGate(10.0)))
                    elif roll < 0.85:
                        store.append_batch([BatchAppendItem.typed(coord, Tick(n))] * 3)
                    elif roll < 0.95:
                        store.project(TickCount, coord.entity)
                    else:
                        store.sync()
                return 0
            mine: list[Frontier] = []
            while not finished.is_set() or len(mine) < 10:
                mine.append(store.frontier())
            samples.append(mine)
            return len(mine)

        def run(i: int) -> int:
            try:
                return work(i)
            finally:
                if i == 2:
                    finished.set()

        results = race(5, run)
        assert not [r for r in results if isinstance(r, BaseException)], results
        for mine in samples:
            for f in mine:
                check_frontier(f)
            for earlier, later in itertools.pairwise(mine):
                for then, now in zip(earlier, later, strict=True):
                    assert now >= then, "a watermark moved back"
        store.sync()
        final = store.frontier()
        check_frontier(final)
        assert final.durable == final.written == final.accepted


@pytest.mark.invariant("INV-FRONTIER-APPEND-GATE-HONORED")
def test_gated_append_is_durable_or_times_out_and_is_queryable_either_way(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        timeouts = (0.0, 1e-5, 1e-3, 10.0)

        def gated(i: int) -> list[tuple[int, str]]:
            outcomes: list[tuple[int, str]] = []
            for n in range(15):
                key = IdempotencyKey.for_operation("gate", [str(i), str(n)])
                gate = DurabilityGate(timeouts[(i + n) % len(timeouts)])
                options = AppendOptions(idempotency_key=key, gate=gate)
                try:
                    receipt = store.append(Coordinate(f"gate:{i}", "gate"), KIND, {"n": n}, options)
                except WaitTimeout as exc:
                    outcomes.append((key, exc.watermark))
                else:
                    assert store.frontier().durable.global_sequence >= receipt.global_sequence
                    outcomes.append((key, "durable"))
            return outcomes

        results = race(6, gated)
        outcomes = [o for mine in ok(results) for o in mine]
        assert len(outcomes) == 90, results
        assert {outcome for _, outcome in outcomes} <= {"durable"}  # a timeout names durable
        store.sync()  # a timed-out append is not undone: it is written, then made durable
        for key, _ in outcomes:
            assert store.get(key).event.header.event_id == key
        assert len(store.query(Region.scope("gate"))) == 90
