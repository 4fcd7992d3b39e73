"""Real multi-thread histories of one Store, checked by the pure linearizability checker.

Six threads released together by a barrier, with a one-microsecond switch interval, mix
single appends, atomic batches, compare-and-set appends and full reads (query, a page, a new
cursor), recording invoke and response instants; ``linearizability.check`` must find nothing.
The checker is proved first: valid histories generated from a single-writer order pass, and
one planted history per rule is rejected under that rule's name.

PROVES: INV-LINEARIZABILITY-SINGLE-WRITER (dense, strictly increasing visible prefix;
monotonic re-reads; readers converge; real-time order of appends; the checker rejects planted
bad histories), INV-JOURNAL-WRITER-SERIALIZES-COMMITS (every concurrent append is visible and
survives a reopen with the sequence it was given), INV-BATCH-ATOMIC-VISIBILITY (no read ever
saw part of a batch).
CATCHES: two appends sharing a sequence, gaps or reordering in what readers see, a read that
misses an acknowledged append or goes backwards, a batch published item by item, an event
that a CAS loser wrote, a checker that accepts everything.
SEEDED: each thread's operation mix comes from random.Random(round * 100 + thread).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linearizability import History, Op, Pair, check, kinds

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    IndexEntry,
    Region,
    SequenceMismatch,
    Store,
    StoreConfig,
)

KIND = 0xF0A1
THREADS = 6
OPS_PER_THREAD = 30
ENTITIES = 3

pytestmark = pytest.mark.invariant("INV-LINEARIZABILITY-SINGLE-WRITER")
DEEP = os.environ.get("BATPAK_HYPOTHESIS_PROFILE") == "deep"
ROUNDS = range(1, 25 if DEEP else 4)


@contextmanager
def tiny_switch_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def pairs(entries: list[IndexEntry]) -> tuple[Pair, ...]:
    return tuple((e.global_sequence, e.event_id) for e in entries)


def record(store: Store, seed: int) -> History:
    """Run the threads and return what they observed."""
    history = History(initial=pairs(store.query(Region.all())))
    barrier = threading.Barrier(THREADS)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        rng = random.Random(seed * 100 + thread)
        mine: list[Op] = []
        barrier.wait()
        for n in range(OPS_PER_THREAD):
            mine.append(one_op(store, rng, thread, n))
        with lock:
            history.ops.extend(mine)

    def guarded(thread: int) -> None:
        try:
            worker(thread)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=guarded, args=(t,)) for t in range(THREADS)]
    with tiny_switch_interval():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return history


def one_op(store: Store, rng: random.Random, thread: int, n: int) -> Op:
    """One timed call: an append, a batch, a compare-and-set append, or a full read."""
    coord = Coordinate(f"lin:{rng.randrange(ENTITIES)}", "lin")
    roll = rng.random()
    size = rng.randint(2, 4)
    reader = rng.choice(READERS)
    invoke = time.monotonic_ns()
    try:
        if roll < 0.3:
            events = _appended(store.append(coord, KIND, {"t": thread, "n": n}))
        elif roll < 0.45:
            items = [BatchAppendItem.new(coord, KIND, {"t": thread, "i": i}) for i in range(size)]
            events = _appended(*store.append_batch(items))
        elif roll < 0.6:
            events = _cas(store, coord, thread, n)
        else:
            events = pairs(reader(store))
            return Op(thread, "read", invoke, time.monotonic_ns(), events)
    except SequenceMismatch:
        return Op(thread, "append", invoke, time.monotonic_ns(), (), ok=False)
    return Op(thread, "append", invoke, time.monotonic_ns(), events)


def _appended(*receipts: AppendReceipt) -> tuple[Pair, ...]:
    return tuple((r.global_sequence, r.event_id) for r in receipts)


def _cas(store: Store, coord: Coordinate, thread: int, n: int) -> tuple[Pair, ...]:
    stream = store.by_entity(coord.entity)
    expected = stream[-1].clock if stream else 0
    options = AppendOptions(expected_sequence=expected)
    return _appended(store.append(coord, KIND, {"cas": thread, "n": n}, options))


READERS: list[Callable[[Store], list[IndexEntry]]] = [
    lambda s: s.query(Region.all()),
    lambda s: s.query_entries_after(Region.all(), None, 1_000_000),
    lambda s: s.cursor(Region.all()).poll_batch(1_000_000),
]


@pytest.mark.invariant("INV-JOURNAL-WRITER-SERIALIZES-COMMITS")
@pytest.mark.invariant("INV-BATCH-ATOMIC-VISIBILITY")
@pytest.mark.parametrize("seed", ROUNDS)
def test_real_histories_are_linearizable(tmp_path: Path, seed: int) -> None:
    config = StoreConfig(tmp_path / "store", segment_max_bytes=8192)
    with Store.open(config) as store:
        history = record(store, seed)
        final = pairs(store.query(Region.all()))
    violations = check(history)
    assert violations == [], violations[:5]
    produced = {pair for op in history.ops if op.kind == "append" for pair in op.events}
    assert set(final) == set(history.initial) | produced  # every append persisted, nothing else
    assert sum(not op.ok for op in history.ops) + len(produced) > 0
    assert any(op.kind == "read" for op in history.ops)
    with Store.open(config) as reopened:
        survived = set(pairs(reopened.query(Region.all())))
    assert produced <= survived


# -- the checker, proved on synthetic histories ------------------------------------------------

VALID = History(
    initial=((0, 100),),
    ops=[
        Op(1, "append", 10, 20, ((1, 101),)),
        Op(2, "append", 15, 30, ((2, 102), (3, 103))),
        Op(3, "read", 21, 22, ((0, 100), (1, 101))),
        Op(4, "read", 31, 32, ((0, 100), (1, 101), (2, 102), (3, 103))),
        Op(1, "append", 40, 41, (), ok=False),
        Op(3, "read", 42, 43, ((0, 100), (1, 101), (2, 102), (3, 103))),
    ],
)


def _with(op_index: int, **changes: object) -> History:
    ops = list(VALID.ops)
    ops[op_index] = replace(ops[op_index], **changes)  # type: ignore[arg-type]
    return History(VALID.initial, ops)


FULL = ((0, 100), (1, 101), (2, 102), (3, 103))
PLANTED: dict[str, History] = {
    "duplicate-sequence": _with(1, events=((1, 102), (2, 103))),
    "batch-not-contiguous": _with(1, events=((2, 102), (4, 103))),
    "real-time-order": History(
        VALID.initial,
        [
            Op(1, "append", 10, 20, ((3, 101),)),
            Op(2, "append", 25, 30, ((1, 102), (2, 103))),
        ],
    ),
    "read-not-dense": _with(3, events=((0, 100), (1, 101), (3, 103))),
    "read-invented": _with(5, events=(*FULL, (4, 104))),
    "wrong-event": _with(3, events=((0, 100), (1, 999), (2, 102), (3, 103))),
    "read-missed-completed": _with(3, events=((0, 100), (1, 101))),
    "batch-torn": _with(2, events=((0, 100), (1, 101), (2, 102)), response=23),
    "read-regressed": History(
        VALID.initial,
        [
            *VALID.ops[:2],
            Op(3, "read", 23, 24, FULL),
            Op(4, "read", 26, 27, ((0, 100), (1, 101))),
        ],
    ),
    "failed-append-wrote": _with(4, events=((4, 104),)),
}
EXPECTED_KIND = {name: name for name in PLANTED} | {"failed-append-wrote": "read-invented"}


def test_checker_accepts_a_valid_history() -> None:
    assert check(VALID) == []


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_checker_rejects_planted_history(name: str) -> None:
    assert EXPECTED_KIND[name] in kinds(check(PLANTED[name]))


@st.composite
def single_writer_histories(draw: st.DrawFn) -> History:
    """Histories produced by a real single-writer order: every op takes effect at one
    instant between its invoke and response; appends take the next sequences; a read sees
    every append that took effect before it."""
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["append", "read", "fail"]),
                st.integers(1, 3),
                st.integers(0, 40),
                st.integers(0, 40),
            ),
            min_size=1,
            max_size=25,
        )
    )
    effects: list[tuple[int, int, str, int, int]] = []
    for i, (kind, size, before, after) in enumerate(steps):
        at = 3 * i + 100  # distinct effect instants, in op order
        effects.append((at, i, kind, size, at - 1 - before))
        steps[i] = (kind, size, before, after)
    ops: list[Op] = []
    sequence, log = 1, [(0, 1000)]
    for at, i, kind, size, invoke in effects:
        response = at + 1 + steps[i][3]
        if kind == "append":
            events = tuple((sequence + k, 2000 + sequence + k) for k in range(size))
            sequence += size
            log.extend(events)
            ops.append(Op(i % 4, "append", invoke, response, events))
        elif kind == "read":
            ops.append(Op(i % 4, "read", invoke, response, tuple(log)))
        else:
            ops.append(Op(i % 4, "append", invoke, response, (), ok=False))
    return History(((0, 1000),), ops)


@settings(max_examples=2000 if DEEP else 150, deadline=None)
@given(single_writer_histories())
def test_checker_accepts_every_single_writer_history(history: History) -> None:
    assert check(history) == []
