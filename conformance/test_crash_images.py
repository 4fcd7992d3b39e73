"""Crash-image enumeration (CrashMonkey style) over the documented filesystem seam.

Each workload runs once on a SimFs; after every state-changing filesystem op a crash image is
taken (unsynced bytes dropped and un-dir-synced names reverted; and a torn variant that keeps a
seeded part of them). Every image is reopened and judged by the recovery oracle against the
model history as it stood at that op.

PROVES: INV-RECOVERY-ORACLE-LEGAL (every image is exactly one of CommittedPrefix, RolledBack,
CanonicalRefusal: crashes after a frame write, after a batch COMMIT write, after fsync before
publish, at segment-rotation create, on a lying disk),
INV-DST-RECOVERY-LEGAL (a legal prefix: nothing invented, every acknowledged commit present,
chains intact, typed refusals only),
INV-BATCH-CRASH-RECOVERY (a BEGIN without its COMMIT never shows, in workloads that rotate),
INV-FRONTIER-DURABLE-COVERS-RECOVERED (after every reopen the durable HLC covers every
recovered event), INV-DURABLE-ACKS (a gated append, a batch or a sync()-acknowledged append
survives every later crash), INV-COLD-START-ARTIFACTS (crashes while writing the close-time
checkpoint, footer and idempotency image reopen to the same events),
INV-GROUP-COMMIT-IDEMPOTENCY (retrying a keyed batch after a crash at any op, under group
commit, writes each key exactly once and returns the original ids).
CATCHES: publishing before fsync, acknowledging before the bytes or names are durable, a
recovered torn batch, a rotation that loses the old segment's tail or creates the next segment
before the old one is whole (a store that then refuses to open), a close that trusts a
half-written checkpoint, an untyped error on a damaged image.
SEEDED: torn images draw from fixed seeds; the lying disk uses a fixed seed; hypothesis picks
further workloads (BATPAK_CRASH_EXAMPLES of them, 8 by default); a seeded run is replayed to
the same per-image digest.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import pytest
from crashrun import Driver, collect_images, reopen, sim_config
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from oracle import Outcome
from refstore import pack
from simfs import SimFs

from batpak import AppendOptions, BatchAppendItem, Coordinate, IdempotencyKey, Store

TORN_SEED = 0x70E
LIE_SEED = 0x11E
STEPS = ("append", "gated", "keyed", "batch2", "batch3", "sync")
EXAMPLES = int(os.environ.get("BATPAK_CRASH_EXAMPLES", "8"))


def _judge(driver: Driver, images: list[tuple[int, SimFs]], *, honest: bool = True) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    failures = []
    for ops, image in images:
        history = driver.history_at(ops)
        result = reopen(image, history, honest=honest)
        if not result.verdict.legal or result.problems:
            failures.append((ops, result.verdict, result.problems))
        outcome = result.verdict.outcome
        outcomes[outcome.value if outcome else "violation"] += 1
    assert not failures, f"{len(failures)} illegal recoveries, first: {failures[:3]}"
    return outcomes


def _run(workload: str, fs: SimFs, lie: float = 0.0, segment_max_bytes: int = 4096) -> Driver:
    driver = Driver(fs, Store.open(sim_config(fs, segment_max_bytes=segment_max_bytes)))
    if lie:
        fs.lie_about_fsync(lie, seed=LIE_SEED)  # the switch a "broken disk" test flips
    if workload == "appends":
        for i in range(4):
            driver.append(f"acct:{i % 2}")
        driver.sync()
        driver.append("acct:0", gate=True)
        driver.append("acct:1", keyed=True)
        driver.append("acct:0")
        driver.close()
    elif workload == "batches":
        driver.append("order:1")
        driver.batch(["order:1", "order:2", "order:1"])
        driver.append("order:2")
        driver.batch(["order:3", "order:1"])
        driver.append("order:3")
        driver.close()
    elif workload == "rotation":
        for i in range(6):
            driver.append(f"meter:{i % 3}", size=700)
        driver.batch(["meter:0", "meter:1", "meter:2"], size=700)
        driver.append("meter:1", size=700, gate=True)
        driver.batch(["meter:2", "meter:0"], size=700)
        driver.append("meter:0", size=700)
        driver.close()
    return driver


@pytest.mark.invariant("INV-RECOVERY-ORACLE-LEGAL")
@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
@pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
@pytest.mark.invariant("INV-FRONTIER-DURABLE-COVERS-RECOVERED")
@pytest.mark.invariant("INV-DURABLE-ACKS")
@pytest.mark.invariant("INV-COLD-START-ARTIFACTS")
@pytest.mark.parametrize("torn", [False, True], ids=["dropped", "torn"])
@pytest.mark.parametrize("workload", ["appends", "batches", "rotation"])
def test_every_op_prefix_recovers_legally(workload: str, torn: bool) -> None:
    fs = SimFs()
    images = collect_images(fs, TORN_SEED if torn else None)
    driver = _run(workload, fs)
    assert len(images) == len(fs.ops) >= 30
    if workload == "rotation":
        created = [op for op in fs.ops if op.kind == "create" and op.path.endswith(".fbat")]
        assert len(created) >= 3, "the workload must rotate segments"
    outcomes = _judge(driver, images)
    # An honest disk never leaves a store that refuses to open (a typed refusal is legal,
    # but no crash point of these workloads needs one: rotation seals before it creates).
    assert outcomes[Outcome.CANONICAL_REFUSAL.value] == 0, outcomes
    # Both sides of the durability line occur, so the oracle really distinguished them.
    assert outcomes[Outcome.ROLLED_BACK.value] > 0
    assert outcomes[Outcome.COMMITTED_PREFIX.value] > 0


@pytest.mark.invariant("INV-RECOVERY-ORACLE-LEGAL")
@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
def test_a_lying_fsync_loses_commits_but_stays_a_legal_prefix() -> None:
    # One segment: a lying disk can also reorder writes across files (a newer segment durable,
    # the older one's tail not), which no writer can prevent and only a chain check reveals.
    fs = SimFs()
    images = collect_images(fs)
    driver = _run("rotation", fs, lie=0.5, segment_max_bytes=1 << 20)
    lied = [op for op in fs.ops if op.lied]
    assert lied, "the seeded disk must have dropped some fsyncs"
    outcomes = _judge(driver, images, honest=False)
    assert sum(outcomes.values()) == len(images)
    # The honest oracle would call some of these lost commits: the lie is visible.
    lost = 0
    for ops, image in images:
        result = reopen(image, driver.history_at(ops), honest=True)
        lost += not result.verdict.legal
    assert lost > 0, "a lying disk should lose at least one acknowledged commit"


def _steps(driver: Driver, steps: list[str]) -> None:
    for number, step in enumerate(steps):
        entity = f"acct:{number % 3}"
        if step == "append":
            driver.append(entity)
        elif step == "gated":
            driver.append(entity, gate=True)
        elif step == "keyed":
            driver.append(entity, keyed=True)
        elif step.startswith("batch"):
            driver.batch([f"acct:{(number + j) % 3}" for j in range(int(step[-1]))])
        else:
            driver.sync()
    driver.close()


@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
@pytest.mark.invariant("INV-RECOVERY-ORACLE-LEGAL")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # workloads are short: no shrinking
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.sampled_from(STEPS), min_size=2, max_size=8),
    torn=st.one_of(st.none(), st.integers(0, 2**16)),
)
def test_chosen_workloads_recover_legally_at_every_op(steps: list[str], torn: int | None) -> None:
    fs = SimFs()
    images = collect_images(fs, torn)
    driver = Driver(fs, Store.open(sim_config(fs)))
    _steps(driver, steps)
    outcomes = _judge(driver, images)
    assert sum(outcomes.values()) == len(images)
    assert outcomes[Outcome.CANONICAL_REFUSAL.value] == 0, outcomes


def _digests(seed: int) -> list[str]:
    """Per crash image: the verdict and the recovered state without the random event ids."""
    fs = SimFs()
    images = collect_images(fs, seed)
    driver = Driver(fs, Store.open(sim_config(fs)))
    _steps(driver, ["append", "batch3", "gated", "append", "sync", "batch2", "append"])
    out = []
    for ops, image in images:
        result = reopen(image, driver.history_at(ops))
        seen = result.seen or []
        state = [(s.entity, s.payload, s.prev_hash, s.event_hash) for s in seen]
        outcome = result.verdict.outcome
        out.append(hashlib.sha256(repr((ops, outcome, state)).encode()).hexdigest())
    return out


@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
def test_the_same_seed_recovers_to_the_same_digest() -> None:
    first, second = _digests(TORN_SEED), _digests(TORN_SEED)
    assert first == second
    assert len(set(first)) > 3, "the images must differ from one another"
    assert _digests(TORN_SEED + 1) != first, "the seed must matter"


@pytest.mark.invariant("INV-GROUP-COMMIT-IDEMPOTENCY")
@pytest.mark.parametrize("torn", [None, TORN_SEED], ids=["dropped", "torn"])
def test_retrying_a_keyed_batch_after_any_crash_writes_each_key_once(torn: int | None) -> None:
    fs = SimFs()
    images = collect_images(fs, torn)
    config = sim_config(fs).with_group_commit(0)
    coord = Coordinate("gc:1", "crash")
    items = [
        BatchAppendItem.from_msgpack_bytes(
            coord,
            0x1000,
            pack({"i": i}),
            AppendOptions(idempotency_key=IdempotencyKey.for_operation("gc", [str(i)])),
        )
        for i in range(3)
    ]
    with Store.open(config) as store:
        first = [r.event_id for r in store.append_batch(items)]
    problems = []
    for ops, image in images:
        with Store.open(sim_config(image).with_group_commit(0)) as store:
            again = [r.event_id for r in store.append_batch(items)]
            stored = [e.event_id for e in store.by_entity(coord.entity)]
        if again != first or sorted(stored) != sorted(first):
            problems.append((ops, again == first, len(stored)))
    assert not problems, f"retries after a crash duplicated or lost keys: {problems[:3]}"
