"""A pure checker for recorded multi-thread histories of a single-writer journal.

Threads record each call's invoke and response instants (``time.monotonic_ns()`` taken just
before the call and just after it returned) and its result: the ``(global_sequence, event_id)``
pairs an append or batch was given, or the pairs a full read saw. The checker needs no store:
it decides whether some single-writer order explains the history, by the rules below, and
names every rule the history breaks. ``test_linearizability.py`` feeds it real histories and
planted bad ones.

Rules (INV-LINEARIZABILITY-SINGLE-WRITER):
- ``duplicate-sequence``: no two events share a global sequence, and no event id two sequences;
- ``batch-not-contiguous``: one call's events occupy consecutive sequences;
- ``real-time-order``: an append that returned before another was invoked has smaller ones;
- ``read-not-dense``: a read sees strictly increasing, gap-free sequences from ``start``;
- ``read-invented``: a read sees only events some append (or the initial state) produced, and
  not before that append was invoked; a failed append produced nothing;
- ``wrong-event``: a read sees at each sequence the event id the appender was given;
- ``read-missed-completed``: a read invoked after an append returned sees all its events;
- ``batch-torn``: a read sees all of one call's events or none;
- ``read-regressed``: a read invoked after another returned sees at least as much
  (re-reads are monotonic, and readers converge).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Pair = tuple[int, int]
"""``(global_sequence, event_id)``."""

KINDS = (
    "duplicate-sequence",
    "batch-not-contiguous",
    "real-time-order",
    "read-not-dense",
    "read-invented",
    "wrong-event",
    "read-missed-completed",
    "batch-torn",
    "read-regressed",
)


@dataclass(frozen=True, slots=True)
class Op:
    """One completed call. ``events`` are what an append got or what a read saw."""

    thread: int
    kind: Literal["append", "read"]
    invoke: int
    response: int
    events: tuple[Pair, ...] = ()
    ok: bool = True
    """False for an append that raised (a CAS loser, a rejected batch): it wrote nothing."""


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    detail: str


@dataclass(slots=True)
class History:
    """A recorded history: the events present before it (``initial``) and the calls."""

    initial: tuple[Pair, ...] = ()
    ops: list[Op] = field(default_factory=list)


def check(history: History, start: int = 0) -> list[Violation]:
    """Every rule the history breaks (empty when it is linearizable as a single writer)."""
    found: list[Violation] = []
    appends = [op for op in history.ops if op.kind == "append"]
    reads = [op for op in history.ops if op.kind == "read"]
    owner = _owners(history.initial, appends, found)
    for op in appends:
        _check_contiguous(op, found)
    _check_real_time(appends, found)
    for read in reads:
        _check_read(read, owner, appends, start, found)
    _check_monotonic(reads, found)
    return found


def kinds(violations: Iterable[Violation]) -> set[str]:
    return {v.kind for v in violations}


def _owners(
    initial: Sequence[Pair], appends: Sequence[Op], found: list[Violation]
) -> dict[int, tuple[int, Op | None]]:
    """global_sequence -> (event_id, the append that produced it, or None if initial)."""
    owner: dict[int, tuple[int, Op | None]] = {}
    ids: dict[int, int] = {}
    sources: list[tuple[Pair, Op | None]] = [(pair, None) for pair in initial]
    for op in appends:
        if not op.ok and op.events:
            found.append(Violation("read-invented", f"failed append produced {op.events}"))
        sources.extend((pair, op) for pair in op.events if op.ok)
    for (sequence, event_id), producer in sources:
        if sequence in owner:
            found.append(Violation("duplicate-sequence", f"sequence {sequence} given twice"))
            continue
        if ids.setdefault(event_id, sequence) != sequence:
            found.append(Violation("duplicate-sequence", f"event {event_id:x} at two sequences"))
        owner[sequence] = (event_id, producer)
    return owner


def _check_contiguous(op: Op, found: list[Violation]) -> None:
    sequences = [s for s, _ in op.events]
    if sequences and sequences != list(range(sequences[0], sequences[0] + len(sequences))):
        found.append(Violation("batch-not-contiguous", f"one call got sequences {sequences}"))


def _check_real_time(appends: Sequence[Op], found: list[Violation]) -> None:
    done = sorted((op for op in appends if op.ok and op.events), key=lambda op: op.response)
    started = sorted((op for op in appends if op.ok and op.events), key=lambda op: op.invoke)
    # Sweep: for each append, the largest sequence of every append that returned before it began.
    highest, i = -1, 0
    culprit: Op | None = None
    for op in started:
        while i < len(done) and done[i].response < op.invoke:
            top = max(s for s, _ in done[i].events)
            if top > highest:
                highest, culprit = top, done[i]
            i += 1
        low = min(s for s, _ in op.events)
        if culprit is not None and low <= highest:
            found.append(
                Violation(
                    "real-time-order",
                    f"append got {low} after one that returned with {highest} (thread "
                    f"{culprit.thread}) before it began (thread {op.thread})",
                )
            )


def _check_read(
    read: Op,
    owner: dict[int, tuple[int, Op | None]],
    appends: Sequence[Op],
    start: int,
    found: list[Violation],
) -> None:
    sequences = [s for s, _ in read.events]
    if sequences != list(range(start, start + len(sequences))):
        found.append(Violation("read-not-dense", f"thread {read.thread} read {sequences[:8]}..."))
    seen = set(sequences)
    for sequence, event_id in read.events:
        known = owner.get(sequence)
        if known is None:
            found.append(Violation("read-invented", f"sequence {sequence} has no producer"))
            continue
        if known[0] != event_id:
            found.append(Violation("wrong-event", f"sequence {sequence} holds {event_id:x}"))
        producer = known[1]
        if producer is not None and producer.invoke > read.response:
            found.append(Violation("read-invented", f"sequence {sequence} seen before its append"))
    for op in appends:
        if not op.ok or not op.events:
            continue
        mine = {s for s, _ in op.events}
        inside = len(mine & seen)
        if op.response < read.invoke and inside < len(mine):
            found.append(
                Violation(
                    "read-missed-completed",
                    f"thread {read.thread} missed sequences {sorted(mine - seen)} of an append "
                    "that had returned",
                )
            )
        elif 0 < inside < len(mine):
            found.append(Violation("batch-torn", f"read saw {inside} of {sorted(mine)}"))


def _check_monotonic(reads: Sequence[Op], found: list[Violation]) -> None:
    done = sorted(reads, key=lambda op: op.response)
    started = sorted(reads, key=lambda op: op.invoke)
    most, i = -1, 0
    for read in started:
        while i < len(done) and done[i].response < read.invoke:
            most = max(most, len(done[i].events))
            i += 1
        if len(read.events) < most:
            found.append(
                Violation(
                    "read-regressed",
                    f"thread {read.thread} saw {len(read.events)} events after a read that "
                    f"returned with {most}",
                )
            )
