"""The idempotency window, group-commit idempotency, cursor resume and replay consistency,
each driven step by step through the public Store API and the ``_abandon()`` crash seam.

PROVES: INV-IDEMPOTENCY-DURABLE-WINDOW (a keyed retry returns the original receipt after
reopen, after retention evicted the event, and in a snapshot; no keys used → no image; a
corrupt, missing, foreign or stale authority image is refused, each with its own reason),
INV-GROUP-COMMIT-IDEMPOTENCY (group commit requires keys; a mixed batch is rejected before any
byte is written; retrying a keyed batch after a crash in the middle of it creates no
duplicates), INV-CURSOR-ORDERED-RESUME (from sequence 0, in order, no duplicates across polls
while appends race; resume from the checkpoint; a corrupt checkpoint fails closed; a reused id
is rejected), INV-REPLAY-CONSISTENCY (a cold-start projection equals the live one; a snapshot
equals its source).
CATCHES: a retry that appends again or answers a different receipt, an image written with no
keys, a damaged authority silently rebuilt, a partial batch written, duplicates after a
crash-retry, a cursor that skips, repeats or forgets, a projection or snapshot that differs.
SEEDED: deterministic; the crash-retry rounds abandon the store at increasing delays.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import msgspec
import pytest

from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    DomainError,
    FailClosedError,
    IdempotencyKey,
    Projection,
    Region,
    Store,
    StoreConfig,
    StoreError,
    event_payload,
    handles,
)

KIND = 0xF0D1


def key(*parts: str) -> IdempotencyKey:
    return IdempotencyKey.for_operation("windows", list(parts))


def segment_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.fbat"))


@pytest.mark.invariant("INV-IDEMPOTENCY-DURABLE-WINDOW")
def test_keyed_retry_returns_the_original_across_reopen_eviction_and_snapshot(
    tmp_path: Path,
) -> None:
    config = StoreConfig(tmp_path / "s")
    doomed, kept = Coordinate("doomed:1", "idem"), Coordinate("kept:1", "idem")
    options = AppendOptions(idempotency_key=key("a"))
    with Store.open(config) as store:
        original = store.append(doomed, KIND, {"n": 1}, options)
        store.append(kept, KIND, {"n": 2})
    with Store.open(config) as store:  # after reopen
        assert store.append(doomed, KIND, {"n": 1}, options) == original
    with Store.open(config) as store:  # after retention evicted the event
        result = store.compact(retain=lambda e: e.entity != doomed.entity, min_segments=1)
        assert result.events_dropped == 1
        assert store.by_entity(doomed.entity) == []
        assert store.append(doomed, KIND, {"n": 1}, options) == original
        assert store.by_entity(doomed.entity) == [], "the retry appended again"
        copy = store.snapshot(tmp_path / "copy")
    with Store.open(config) as store:  # eviction, then reopen
        assert store.append(doomed, KIND, {"n": 1}, options) == original
    with Store.open(StoreConfig(copy)) as twin:  # in a snapshot
        assert twin.append(doomed, KIND, {"n": 1}, options) == original
        assert twin.by_entity(doomed.entity) == []


@pytest.mark.invariant("INV-IDEMPOTENCY-DURABLE-WINDOW")
def test_no_keys_no_image_and_damaged_images_are_refused_each_for_its_reason(
    tmp_path: Path,
) -> None:
    plain = StoreConfig(tmp_path / "plain")
    with Store.open(plain) as store:
        store.append(Coordinate("p:1", "idem"), KIND, {"n": 1})
    assert not (plain.path / "index.idemp").exists(), "no keys used, but an image was written"

    config, other = StoreConfig(tmp_path / "s"), StoreConfig(tmp_path / "other")
    for cfg, name in ((config, "a"), (other, "b")):
        with Store.open(cfg) as store:
            store.append(
                Coordinate("k:1", "idem"), KIND, {}, AppendOptions(idempotency_key=key(name))
            )
    image = config.path / "index.idemp"
    first = image.read_bytes()
    with Store.open(config) as store:  # a later image supersedes the first one
        store.append(Coordinate("k:1", "idem"), KIND, {}, AppendOptions(idempotency_key=key("c")))
    good = image.read_bytes()
    flipped = bytearray(good)
    flipped[-3] ^= 0xFF
    damage = {
        "corrupt": bytes(flipped),
        "missing": None,
        "foreign": (other.path / "index.idemp").read_bytes(),
        "stale": first,
    }
    reasons = {}
    for name, data in damage.items():
        if data is None:
            image.unlink()
        else:
            image.write_bytes(data)
        with pytest.raises(FailClosedError) as refused:
            Store.open(config)
        reasons[name] = str(refused.value)
        image.write_bytes(good)
    words = {"corrupt": "corrupt", "missing": "missing", "foreign": "lineage", "stale": "stale"}
    for name, reason in reasons.items():
        assert words[name] in reason, f"the {name} image was refused as: {reason}"
    assert len(set(reasons.values())) == len(reasons), "refusals must be told apart"
    with Store.open(config) as store:  # the good image still opens
        assert store.get(key("c")).global_sequence >= 0


@pytest.mark.invariant("INV-GROUP-COMMIT-IDEMPOTENCY")
def test_group_commit_requires_keys_and_mixed_batches_write_nothing(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s").with_group_commit(0)) as store:
        store.sync()
        before, size = store.query(Region.all()), segment_bytes(store.config.path)
        with pytest.raises(DomainError):  # IdempotencyRequired
            store.append(Coordinate("g:1", "group"), KIND, {"unkeyed": True})
        coord = Coordinate("g:2", "group")
        mixed = [
            BatchAppendItem.new(coord, KIND, {"i": 0}, AppendOptions(idempotency_key=key("m0"))),
            BatchAppendItem.new(coord, KIND, {"i": 1}),
        ]
        with pytest.raises(DomainError):  # IdempotencyPartialBatch, before any write
            store.append_batch(mixed)
        store.sync()
        assert store.query(Region.all()) == before
        assert segment_bytes(store.config.path) == size, "a rejected append wrote bytes"


def keyed_batch(round_no: int) -> tuple[Coordinate, list[BatchAppendItem]]:
    coord = Coordinate(f"crash:{round_no}", "group")
    items = [
        BatchAppendItem.new(
            coord,
            KIND,
            {"r": round_no, "i": i},
            AppendOptions(idempotency_key=key(str(round_no), str(i))),
        )
        for i in range(40)
    ]
    return coord, items


def submit(store: Store, items: list[BatchAppendItem], answers: list[object]) -> None:
    try:
        answers.append(store.append_batch(items))
    except StoreError as exc:  # the crash landed first
        answers.append(exc)


@pytest.mark.invariant("INV-GROUP-COMMIT-IDEMPOTENCY")
def test_retrying_a_keyed_batch_after_a_crash_in_it_creates_no_duplicates(tmp_path: Path) -> None:
    for round_no in range(6):
        config = StoreConfig(tmp_path / f"s{round_no}").with_group_commit(0)
        coord, items = keyed_batch(round_no)
        keys = [item.options.idempotency_key for item in items]
        store = Store.open(config)
        answers: list[object] = []
        writer = threading.Thread(target=submit, args=(store, items, answers))
        writer.start()
        time.sleep(0.0005 * round_no)
        store._abandon()
        writer.join(timeout=10)
        assert not writer.is_alive()
        assert len(answers) == 1
        with Store.open(config) as reopened:
            found = [e.event_id for e in reopened.by_entity(coord.entity)]
            assert found in ([], keys), "a crash left part of a batch"
            retried = reopened.append_batch(items)
            assert [r.event_id for r in retried] == keys
            assert reopened.append_batch(items) == retried
            assert [e.event_id for e in reopened.by_entity(coord.entity)] == keys


@pytest.mark.invariant("INV-CURSOR-ORDERED-RESUME")
def test_cursor_is_ordered_without_duplicates_while_appends_race(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        cursor = store.cursor(Region.all())
        done = threading.Event()

        def append() -> None:
            for n in range(150):
                if n % 5:
                    store.append(Coordinate(f"c:{n % 3}", "cursor"), KIND, {"n": n})
                else:
                    items = [BatchAppendItem.new(Coordinate("c:b", "cursor"), KIND, {"n": n})] * 3
                    store.append_batch(items)
            done.set()

        writer = threading.Thread(target=append)
        writer.start()
        seen: list[int] = []
        while not done.is_set() or store.query_entries_after(Region.all(), seen[-1], 1):
            seen.extend(e.global_sequence for e in cursor.poll_batch(7))
        writer.join()
        assert seen[0] == 0, "a cursor starts at global sequence 0"
        assert seen == list(range(len(seen))), "skipped, repeated or reordered"
        assert seen == [e.global_sequence for e in store.query(Region.all())]


@pytest.mark.invariant("INV-CURSOR-ORDERED-RESUME")
def test_cursor_resumes_from_its_checkpoint_and_refuses_damage_and_reuse(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "s")
    region = Region.scope("jobs")
    with Store.open(config) as store:
        for n in range(6):
            store.append(Coordinate("job:1", "jobs"), KIND, {"n": n})
        cursor = store.cursor(region, checkpoint_id="worker")
        with pytest.raises(DomainError):  # the id is in use
            store.cursor(region, checkpoint_id="worker")
        handled = cursor.poll_batch(4)
        cursor.commit()
        cursor.poll_batch(1)  # handed out, not committed: delivered again after a restart
        cursor.close()
    with Store.open(config) as store:
        resumed = store.cursor(region, checkpoint_id="worker").poll_batch(100)
        assert [e.global_sequence for e in resumed] == [
            e.global_sequence for e in store.query(region)[len(handled) :]
        ]
    checkpoint = config.path / "cursors" / "worker.ckpt"
    checkpoint.write_bytes(b"\xc1 not a checkpoint")
    with Store.open(config) as store, pytest.raises(FailClosedError):
        store.cursor(region, checkpoint_id="worker")


@event_payload(category=0xF, type_id=0x0D2, version=1)
class Deposit(msgspec.Struct):
    amount: int


class Balance(Projection):
    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    @handles(Deposit)
    def on_deposit(self, deposit: Deposit) -> None:
        self.total += deposit.amount
        self.count += 1


@pytest.mark.invariant("INV-REPLAY-CONSISTENCY")
def test_cold_start_replay_and_snapshots_equal_the_live_store(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "s", segment_max_bytes=4096)
    account = Coordinate("acct:1", "bank")
    with Store.open(config) as store:
        for n in range(60):
            store.append_typed(account, Deposit(n))
        store.append_batch([BatchAppendItem.typed(account, Deposit(7))] * 5)
        live = store.project(Balance, account.entity)
        history = store.query(Region.all())
        copy = store.snapshot(tmp_path / "copy")
    assert (live.total, live.count) == (sum(range(60)) + 35, 65)
    for variant in ("reopen", "no-checkpoint", "snapshot"):
        if variant == "no-checkpoint":
            for sidecar in config.path.glob("index.*"):
                if sidecar.name != "index.idemp":
                    sidecar.unlink()
        path = copy if variant == "snapshot" else config.path
        with Store.open_read_only(StoreConfig(path)) as cold:
            replayed = cold.project(Balance, account.entity)
            assert (replayed.total, replayed.count) == (live.total, live.count), variant
            assert cold.query(Region.all())[: len(history)] == history, variant
    shutil.rmtree(copy)
