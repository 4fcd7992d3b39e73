"""Crash-run plumbing shared by the test_crash_* modules: a workload driver that keeps the
oracle's model history in step with a live store on a SimFs, crash images taken at every
filesystem op, and reopening an image into an oracle verdict.

Only public batpak API and the documented ``StoreConfig.with_fs`` seam are used.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from oracle import History, Seen, Verdict, classify
from refstore import pack
from simfs import SimFs

from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    DurabilityGate,
    HlcPoint,
    IdempotencyKey,
    Region,
    Store,
    StoreConfig,
    StoreError,
)

ROOT = Path("/sim/store")
LIFECYCLE_ENTITY = "batpak:store"
KIND = 0x1000
EPOCH_US = 1_750_000_000_000_000


def stepping_clock(start: int = EPOCH_US, step: int = 1000) -> Callable[[], int]:
    """A deterministic injected clock: every read is ``step`` microseconds later."""
    ticks = itertools.count(start, step)
    return lambda: next(ticks)


def sim_config(fs: SimFs, segment_max_bytes: int = 4096) -> StoreConfig:
    config = StoreConfig(ROOT, segment_max_bytes=segment_max_bytes).with_fs(fs)
    return config.with_clock(stepping_clock())


def is_typed(error: BaseException) -> bool:
    return isinstance(error, StoreError)


@dataclass(slots=True)
class Mark:
    """The model as it stood once the fs op log reached ``op`` entries."""

    op: int
    durable: int
    started: int


@dataclass(slots=True)
class Driver:
    """Runs public-API operations and records the model history next to the fs op log."""

    fs: SimFs
    store: Store
    history: History = field(default_factory=History)
    marks: list[Mark] = field(default_factory=list)
    entity_of: dict[int, str] = field(default_factory=dict)
    n: int = 0

    def _mark(self) -> None:
        self.marks.append(Mark(len(self.fs.ops), self.history.durable, self.history.started))

    def _payload(self, size: int) -> bytes:
        self.n += 1
        return pack({"n": self.n, "pad": "x" * size})

    def _state(self) -> tuple[int, ...]:
        return self.history.states[-1]

    def begin(self) -> None:
        self.history.begin()
        self._mark()

    def append(
        self, entity: str, *, gate: bool = False, keyed: bool = False, size: int = 16
    ) -> int:
        payload = self._payload(size)
        key = IdempotencyKey.for_operation("crash", [entity, str(self.n)]) if keyed else None
        options = AppendOptions(idempotency_key=key, gate=DurabilityGate(10.0) if gate else None)
        self.begin()
        receipt = self.store.append_msgpack(Coordinate(entity, "crash"), KIND, payload, options)
        self.entity_of[receipt.event_id] = entity
        state = (*self._state(), receipt.event_id)
        self.history.commit(state, {receipt.event_id: payload}, acked=gate)
        self._mark()
        return receipt.event_id

    def batch(self, entities: list[str], size: int = 16) -> list[int]:
        payloads = [self._payload(size) for _ in entities]
        items = [
            BatchAppendItem.from_msgpack_bytes(Coordinate(e, "crash"), KIND, p)
            for e, p in zip(entities, payloads, strict=True)
        ]
        self.begin()
        receipts = self.store.append_batch(items)
        ids = [r.event_id for r in receipts]
        self.entity_of.update(zip(ids, entities, strict=True))
        self.history.commit((*self._state(), *ids), dict(zip(ids, payloads, strict=True)), True)
        self._mark()
        return ids

    def sync(self) -> None:
        self.store.sync()
        self.history.ack()
        self._mark()

    def compact(self, drop: str | None = None) -> None:
        self.begin()
        self.store.compact(retain=None if drop is None else (lambda e: e.entity != drop))
        state = tuple(i for i in self._state() if self.entity_of[i] != drop)
        self.history.commit(state, {}, acked=True)
        self._mark()

    def close(self) -> None:
        self.begin()
        self.store.close()
        self.history.ack()
        self._mark()

    def history_at(self, ops: int) -> History:
        """The model as a crash after the first ``ops`` fs ops would have to honour."""
        durable = started = 0
        for mark in self.marks:
            if mark.op <= ops:
                durable, started = mark.durable, mark.started
        return self.history.at(durable, max(started, durable))


def collect_images(fs: SimFs, torn_seed: int | None = None) -> list[tuple[int, SimFs]]:
    """Start taking a crash image after every fs op from now on: (ops applied, image)."""
    images: list[tuple[int, SimFs]] = []
    rng = None if torn_seed is None else random.Random(torn_seed)

    def take(sim: SimFs) -> None:
        images.append((len(sim.ops), sim.crash_image(rng)))

    fs.on_op.append(take)
    return images


def observe(store: Store) -> list[Seen]:
    entries = [e for e in store.query(Region.all()) if e.entity != LIFECYCLE_ENTITY]
    events = store.events(entries)
    return [
        Seen(e.event_id, e.entity, e.lane, s.event.payload, e.prev_hash, e.event_hash)
        for e, s in zip(entries, events, strict=True)
    ]


@dataclass(slots=True)
class Reopened:
    verdict: Verdict
    problems: list[str]
    seen: list[Seen] | None


def reopen(image: SimFs, history: History, *, honest: bool = True, twice: bool = False) -> Reopened:
    """Open the image writable, classify what it shows, and check the frontier and chain.

    With ``twice``, close and reopen once more: the second open must show the same events
    (recovery is not healed, or changed, by a clean close)."""
    problems: list[str] = []
    try:
        store = Store.open(sim_config(image))
    except Exception as exc:  # the oracle decides whether the error is legal
        return Reopened(classify(history, exc, typed=is_typed, honest=honest), problems, None)
    with store:
        seen = observe(store)
        entries = store.query(Region.all())
        frontier = store.frontier()
        last = entries[-1]
        if frontier.durable < HlcPoint(last.wall_ms, last.global_sequence):
            problems.append(f"durable {frontier.durable} is behind the recovered {last}")
        sequences = [e.global_sequence for e in entries]
        if sequences != sorted(set(sequences)):
            problems.append("global sequences are not strictly increasing")
        if not store.verify_chain().is_intact():
            problems.append("verify_chain reports damage")
    if twice:
        with Store.open(sim_config(image)) as again:
            if observe(again) != seen:
                problems.append("a second open shows different events")
    return Reopened(classify(history, seen, typed=is_typed, honest=honest), problems, seen)


def ops_of(fs: SimFs, since: int = 0) -> Iterator[tuple[int, str, str]]:
    for op in fs.ops[since:]:
        yield op.index, op.kind, op.path
