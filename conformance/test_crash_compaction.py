"""Compaction under crashes: a crash image after every filesystem op of a compaction, the
namespace op order read from the seam's op log, and a failed idempotency publish.

Three sessions leave sealed segments holding keyed events of ``keep:*`` and ``temp:*``; a
fourth compacts them, dropping ``temp:*``, then appends and closes.

PROVES: INV-COMPACTION-NAMESPACE-COMMIT (the merged segment is staged and fsynced, index.idemp
and the store.meta commit are durable before the final rename, no source is removed before
the commit, the pending marker clears last; every crash image reopens to the old generation or
the new one, the same again after a clean close; namespace ops grow linearly with sources),
INV-IDEMPOTENCY-AUTHORITY-ATOMIC-COMPACTION (the new image is published before any source is
deleted; keyed retries after any crash return the original event, even for dropped events,
and never append twice; a failed publish aborts with every source in place),
INV-DST-RECOVERY-LEGAL (the oracle's legality across the whole compaction).
CATCHES: deleting sources before the commit, renaming before the authority image is durable,
a marker cleared early, resurrected dropped events, keys forgotten after a crash.
SEEDED: no randomness besides event ids; images are exhaustive.
"""

from __future__ import annotations

import pytest
from crashrun import ROOT, Driver, collect_images, reopen, sim_config
from oracle import Outcome
from simfs import Op, SimFs

from batpak import AppendOptions, Coordinate, IdempotencyKey, Region, Store, WriterCrashed

NAMESPACE = ("create", "replace", "link", "remove", "sync_dir")


def _setup(fs: SimFs, sessions: int) -> tuple[Driver, list[int]]:
    driver: Driver | None = None
    keyed: list[int] = []
    for session in range(sessions):
        store = Store.open(sim_config(fs))
        if driver is None:
            driver = Driver(fs, store)
        driver.store = store
        keyed.append(driver.append(f"keep:{session % 2}", keyed=True))
        keyed.append(driver.append("temp:1", keyed=True))
        driver.append(f"keep:{session % 2}")
        driver.close()
    assert driver is not None
    driver.store = Store.open(sim_config(fs))
    return driver, keyed


def _retry_keys(fs: SimFs, keyed: list[int]) -> list[str]:
    """Retry every keyed append once; a retry must return the original id and add nothing."""
    problems = []
    with Store.open(sim_config(fs)) as store:
        before = len(store.query(Region.all()))
        for key in keyed:
            receipt = store.append(
                Coordinate("retry:x", "crash"),
                0x1000,
                {"retry": True},
                AppendOptions(idempotency_key=IdempotencyKey(key)),
            )
            if receipt.event_id != key:
                problems.append(f"retry of {key:032x} returned {receipt.event_id:032x}")
        if len(store.query(Region.all())) != before:
            problems.append("a keyed retry appended a second event")
    return problems


def _window(ops: list[Op], start: int) -> list[Op]:
    return [op for op in ops[start:] if op.kind in NAMESPACE or op.kind == "sync"]


def _first(ops: list[Op], kind: str, needle: str) -> int:
    return next(op.index for op in ops if op.kind == kind and needle in op.path)


@pytest.mark.invariant("INV-COMPACTION-NAMESPACE-COMMIT")
@pytest.mark.invariant("INV-IDEMPOTENCY-AUTHORITY-ATOMIC-COMPACTION")
@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
def test_every_op_of_a_compaction_reopens_to_one_generation() -> None:
    fs = SimFs()
    driver, keyed = _setup(fs, 3)
    start = len(fs.ops)
    images = collect_images(fs)
    driver.compact(drop="temp:1")
    end = len(fs.ops)
    driver.append("keep:0")
    driver.close()
    fs.on_op.clear()

    ops = _window(fs.ops, start)
    compaction = [op for op in ops if op.index < end]
    staged_sync = _first(compaction, "sync", ".compact-new")
    final_rename = _first(compaction, "replace", ".compact-new ->")
    meta_commit = max(
        op.index for op in compaction if op.kind == "replace" and "store.meta" in op.path
    )
    image_publish = _first(compaction, "replace", "index.idemp.tmp ->")
    removes = [op.index for op in compaction if op.kind == "remove" and op.path.endswith(".fbat")]
    assert staged_sync < final_rename, "the merged segment is renamed before it is synced"
    assert image_publish < meta_commit < final_rename, "commit record after the final rename"
    assert any(
        op.kind == "sync_dir" and meta_commit < op.index < final_rename for op in compaction
    ), "the commit record is not durable before the final rename"
    assert removes, "the compaction removed no source segment"
    assert min(removes) > meta_commit, "a source is deleted before the commit"
    last_namespace = [op for op in compaction if op.kind in NAMESPACE][-2:]
    assert [op.kind for op in last_namespace] == ["remove", "sync_dir"]
    assert last_namespace[0].path.endswith("compaction.pending"), "the marker is not cleared last"

    generations = {Outcome.ROLLED_BACK.value: 0, Outcome.COMMITTED_PREFIX.value: 0}
    failures = []
    for ops_applied, image in images:
        if ops_applied > end:
            break
        result = reopen(image, driver.history_at(ops_applied), twice=True)
        if not result.verdict.legal or result.problems:
            failures.append((ops_applied, fs.ops[ops_applied - 1], result.verdict, result.problems))
            continue
        assert result.verdict.outcome is not None
        assert result.verdict.outcome.value in generations, "an honest crash bricked the store"
        generations[result.verdict.outcome.value] += 1
        problems = _retry_keys(image, keyed)
        if problems:
            failures.append((ops_applied, fs.ops[ops_applied - 1], result.verdict, problems))
    assert not failures, f"{len(failures)} illegal compaction crashes, first: {failures[:3]}"
    assert all(generations.values()), f"both generations must occur: {generations}"


def _namespace_ops(sessions: int) -> int:
    fs = SimFs()
    driver, _ = _setup(fs, sessions)
    start = len(fs.ops)
    driver.compact()
    return sum(op.kind in NAMESPACE for op in fs.ops[start:])


@pytest.mark.invariant("INV-COMPACTION-NAMESPACE-COMMIT")
def test_namespace_ops_grow_linearly_with_source_segments() -> None:
    counts = {n: _namespace_ops(n) for n in (2, 4, 8)}
    per_source = (counts[8] - counts[4]) / 4
    assert counts[4] - counts[2] == 2 * per_source, f"not linear: {counts}"
    assert per_source <= 2, f"more than two namespace ops per source segment: {counts}"


@pytest.mark.invariant("INV-IDEMPOTENCY-AUTHORITY-ATOMIC-COMPACTION")
def test_a_failed_publish_aborts_before_any_source_is_deleted() -> None:
    fs = SimFs()
    driver, keyed = _setup(fs, 3)
    before = sorted(fs.files(ROOT))
    events = [e.event_id for e in driver.store.query(Region.all())]
    fs.arm("write", match="index.idemp.tmp")
    with pytest.raises(WriterCrashed):
        driver.store.compact(retain=lambda e: e.entity != "temp:1")
    listing = sorted(fs.files(ROOT))
    assert [n for n in before if n.endswith(".fbat")] == [n for n in listing if n.endswith(".fbat")]
    assert "compaction.pending" not in listing, "the aborted compaction left its marker"
    driver.store._abandon()  # the documented crash seam: no close, no footer, no fsync
    fs.crash()
    fs.disarm()
    with Store.open(sim_config(fs)) as store:
        survivors = {e.event_id for e in store.query(Region.all())}
    assert set(events) <= survivors, "the old generation lost events"
    assert not _retry_keys(fs, keyed)
