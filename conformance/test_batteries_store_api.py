"""The Store's public contract: subscriptions, HLC laws, error classes, sync-only, sealed receipts.

PROVES: INV-SUBSCRIPTION-STATE-MACHINE (a lossy subscription delivers exactly the events of its
region committed after it opened, in commit order, each matching the committed entry; it
fabricates nothing while idle; close ends it; a full queue drops it with SubscriptionDropped
after what was queued; ``recv`` returns None once the store is closed),
INV-HLC-JOIN-SEMILATTICE (hypothesis: HlcPoint's order is lexicographic, so its join (max) is
commutative, associative and idempotent with ORIGIN as bottom, meet (min) is dual, absorption
holds, and at equal wall_ms the join takes the larger global_sequence; the live frontier under
a clock that steps back only moves up and bounds every committed point),
INV-STOREERROR-HANDLING-CLASS (every StoreError subclass reachable from batpak sits under
exactly one of the three handling classes and names it; real errors provoked through the API,
including a writer poisoned by a failing fsync through the documented filesystem seam, each
raise their own type with its class, damaged side files and segments fail closed),
INV-STORE-SYNC-ONLY (a fresh interpreter that imports batpak and runs a full store workload
has neither asyncio nor anyio in sys.modules; no public Store method is a coroutine),
INV-RECEIPT-SEALED (hand-built and mutated receipts never verify; the store-free verifier
agrees with the store on every case; every covered field and cover input is bound; a required
signing policy without a key refuses to open; unsigned receipts are accepted but not signed).
CATCHES: subscriptions that replay history or invent notifications, a recv that blocks or
raises after close, a non-lexicographic HLC order, errors caught and re-raised as a generic
class, a retryable-looking error for a poisoned writer, asyncio creeping into the core, a
verifier that trusts receipt fields, a store-free verifier that disagrees with the store.
SEEDED: hypothesis derandomized (300 examples, ORIGIN among them); fixed workloads.
"""

from __future__ import annotations

import errno
import inspect
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

import batpak
from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    DomainError,
    FailClosedError,
    HlcPoint,
    Outcome,
    Region,
    RetryableError,
    Store,
    StoreConfig,
    StoreError,
    SubscriptionDropped,
    verify_receipt_claim,
)
from batpak.frontier import ORIGIN
from batpak.fs import OS_FS, WriteFile

U64 = st.integers(min_value=0, max_value=2**64 - 1)
POINTS = st.builds(HlcPoint, U64, U64)
KIND = 0xF001


def coord(entity: str) -> Coordinate:
    return Coordinate(entity, "scope:api")


# -- subscriptions --------------------------------------------------------------------------


@pytest.mark.invariant("INV-SUBSCRIPTION-STATE-MACHINE")
def test_subscription_open_receive_close(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path)) as store:
        store.append(coord("acct:early"), KIND, {"n": -1})  # before the subscription
        sub = store.subscribe_lossy(Region.entity("acct"))
        other = store.subscribe_lossy(Region.entity("zzz"))
        assert sub.recv(timeout=0.05) is None  # idle: nothing fabricated
        receipts = [store.append(coord(f"acct:{i % 3}"), KIND, {"n": i}) for i in range(6)]
        store.append(coord("misc:1"), KIND, {"n": 99})  # outside the region
        receipts += store.append_batch(
            [BatchAppendItem.new(coord("acct:9"), KIND, {"b": i}) for i in range(3)]
        )
        region = store.query(Region.entity("acct"))
        committed = {e.event_id: e for e in region}
        notes = [sub.recv(timeout=5) for _ in receipts]
        assert sub.recv(timeout=0.05) is None  # nothing beyond what was committed
        assert other.recv(timeout=0.05) is None
        assert [n.event_id for n in notes if n] == [r.event_id for r in receipts]
        for note in notes:
            assert note is not None
            entry = committed[note.event_id]  # a committed event, as committed
            assert (note.sequence, note.kind, note.coord) == (
                entry.global_sequence,
                entry.event_kind,
                entry.coord,
            )
            assert note.position == HlcPoint(entry.wall_ms, entry.global_sequence)
        sub.close()
        store.append(coord("acct:1"), KIND, {"after": "close"})
        assert sub.recv(timeout=0.05) is None  # closed: ended, nothing new
        assert sub.recv(timeout=0.05) is None

        small = store.subscribe_lossy(Region.all(), capacity=2)
        firsts = [store.append(coord("acct:1"), KIND, {"flood": i}) for i in range(5)]
        got = [small.recv(timeout=5), small.recv(timeout=5)]
        assert [n.event_id for n in got if n] == [r.event_id for r in firsts[:2]]
        with pytest.raises(SubscriptionDropped):
            small.recv(timeout=5)

        live = store.subscribe_lossy(Region.entity("acct"))
        store.append(coord("acct:1"), KIND, {"last": True})
    # The store is closed: what was queued is handed out, then None, never an error or a hang.
    assert live.recv(timeout=5) is not None
    assert live.recv(timeout=5) is None
    assert live.recv() is None  # even without a timeout


@pytest.mark.invariant("INV-SUBSCRIPTION-STATE-MACHINE")
def test_a_blocked_recv_wakes_with_none_when_the_store_closes(tmp_path: Path) -> None:
    store = Store.open(StoreConfig(tmp_path))
    sub = store.subscribe_lossy(Region.entity("acct"))  # the CLOSE event is not in it
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(sub.recv()))
    reader.start()
    store.close()
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert got == [None]


# -- HLC ------------------------------------------------------------------------------------


def join(a: HlcPoint, b: HlcPoint) -> HlcPoint:
    return max(a, b)


def meet(a: HlcPoint, b: HlcPoint) -> HlcPoint:
    return min(a, b)


@pytest.mark.invariant("INV-HLC-JOIN-SEMILATTICE")
@settings(derandomize=True, max_examples=300)
@given(st.one_of(POINTS, st.just(ORIGIN)), POINTS, POINTS)
def test_hlc_join_and_meet_laws(a: HlcPoint, b: HlcPoint, c: HlcPoint) -> None:
    # The order is lexicographic on (wall_ms, global_sequence), and total.
    assert (a < b) == ((a.wall_ms, a.global_sequence) < (b.wall_ms, b.global_sequence))
    assert (a == b) == ((a.wall_ms, a.global_sequence) == (b.wall_ms, b.global_sequence))
    assert (a <= b) or (b <= a)
    assert join(a, b) == join(b, a)
    assert join(join(a, b), c) == join(a, join(b, c))
    assert join(a, a) == a
    assert join(ORIGIN, a) == a
    assert meet(ORIGIN, a) == ORIGIN
    assert meet(a, b) == meet(b, a)
    assert meet(meet(a, b), c) == meet(a, meet(b, c))
    assert meet(a, a) == a
    assert join(a, meet(a, b)) == a
    assert meet(a, join(a, b)) == a
    assert a <= join(a, b)
    assert meet(a, b) <= a
    tie = HlcPoint(a.wall_ms, b.global_sequence)
    assert join(a, tie).global_sequence == max(a.global_sequence, b.global_sequence)
    assert join(a, tie).wall_ms == a.wall_ms


@pytest.mark.invariant("INV-HLC-JOIN-SEMILATTICE")
def test_the_live_frontier_only_joins_upwards(tmp_path: Path) -> None:
    ticks = iter([5_000_000, 9_000_000, 2_000_000, 9_000_000, 1_000_000, 7_000_000] * 4)
    now = [10_000_000]

    def clock() -> int:  # steps back and forth
        now[0] = next(ticks, now[0])
        return now[0]

    with Store.open(StoreConfig(tmp_path).with_clock(clock)) as store:
        seen = [store.frontier()]
        points = []
        for i in range(12):
            receipt = store.append(coord(f"acct:{i % 4}"), KIND, {"n": i})
            entry = next(e for e in store.query(Region.all()) if e.event_id == receipt.event_id)
            points.append(HlcPoint(entry.wall_ms, entry.global_sequence))
            seen.append(store.frontier())
        store.sync()
        seen.append(store.frontier())
    for before, after in itertools.pairwise(seen):
        for mark in ("accepted", "written", "durable", "visible", "applied"):
            old, new = getattr(before, mark), getattr(after, mark)
            assert join(old, new) == new, mark  # never moves back
            assert new.global_sequence >= old.global_sequence
    final = seen[-1]
    for point in points:
        assert join(point, final.visible) == final.visible  # bounds every committed point
        assert join(point, final.durable) == final.durable
    assert final.visible.global_sequence == points[-1].global_sequence


# -- error classes ------------------------------------------------------------------------

BASES = {
    DomainError: "domain",
    RetryableError: "retryable_operational",
    FailClosedError: "fail_closed_operational",
}


def all_subclasses(cls: type[StoreError]) -> Iterator[type[StoreError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


@pytest.mark.invariant("INV-STOREERROR-HANDLING-CLASS")
def test_every_store_error_has_exactly_one_handling_class() -> None:
    public: set[type[StoreError]] = {
        value
        for name in batpak.__all__
        if isinstance(value := getattr(batpak, name), type) and issubclass(value, StoreError)
    }
    classes = (set(all_subclasses(StoreError)) | public) - {StoreError}
    assert len(classes) >= 30  # the tree is populated, not a stub
    for cls in classes:
        under = [base for base in BASES if issubclass(cls, base)]
        assert len(under) == 1, cls
        assert cls.handling_class == BASES[under[0]], cls
    assert not issubclass(batpak.TypedDecodeError, StoreError)


class FlakyFs:
    """The documented filesystem seam over the real one; ``fail_syncs`` makes fsync fail."""

    def __init__(self) -> None:
        self.fail_syncs = False

    def __getattr__(self, name: str) -> Any:
        return getattr(OS_FS, name)

    def create(self, path: Path, *, exclusive: bool) -> WriteFile:
        return FlakyFile(OS_FS.create(path, exclusive=exclusive), self)


class FlakyFile:
    def __init__(self, inner: WriteFile, fs: FlakyFs) -> None:
        self.inner, self.fs = inner, fs

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def sync(self, data_only: bool = False) -> None:
        if self.fs.fail_syncs:
            raise OSError(errno.EIO, "injected fsync failure")
        self.inner.sync(data_only)

    def close(self) -> None:
        self.inner.close()


def provoke(action: Callable[[], object]) -> StoreError:
    with pytest.raises(StoreError) as info:
        action()
    return info.value


@pytest.mark.invariant("INV-STOREERROR-HANDLING-CLASS")
def test_real_errors_carry_their_own_class(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "s", single_append_max_bytes=64)
    raised: dict[str, StoreError] = {}
    raised["config"] = provoke(lambda: StoreConfig(tmp_path, segment_max_bytes=1))
    raised["missing dir"] = provoke(lambda: Store.open_read_only(StoreConfig(tmp_path / "no")))
    with Store.open(config) as store:
        first = store.append(coord("acct:1"), KIND, {"n": 1})
        raised["locked"] = provoke(lambda: Store.open(config))
        raised["not found"] = provoke(lambda: store.get(first.event_id ^ 1))
        raised["reserved"] = provoke(lambda: store.append(coord("acct:1"), 0x0001, {}))
        raised["too large"] = provoke(lambda: store.append(coord("acct:1"), KIND, "x" * 100))
        raised["coordinate"] = provoke(lambda: Coordinate("", "scope"))
        raised["cas"] = provoke(
            lambda: store.append(coord("acct:1"), KIND, {}, AppendOptions(expected_sequence=7))
        )
        raised["partial batch"] = provoke(
            lambda: store.append_batch(
                [
                    BatchAppendItem.new(coord("a:1"), KIND, {}, AppendOptions(idempotency_key=5)),
                    BatchAppendItem.new(coord("a:1"), KIND, {}),
                ]
            )
        )
        raised["wait"] = provoke(lambda: store.wait_for_visible(10**9, timeout=0.01))
        fence = store.begin_visibility_fence()
        raised["fence"] = provoke(store.begin_visibility_fence)
        fence.commit()
        raised["payload"] = provoke(lambda: store.append(coord("acct:1"), KIND, object()))
    raised["closed"] = provoke(lambda: store.append(coord("acct:1"), KIND, {}))
    with Store.open_read_only(config) as frozen:
        raised["read only"] = provoke(lambda: frozen.append(coord("acct:1"), KIND, {}))
    hidden = config.path / "visibility_ranges.fbv"
    hidden.write_bytes(b"FBATVR" + (2).to_bytes(2, "little") + bytes(4) + b"\x80")  # bad CRC
    raised["hidden ranges"] = provoke(lambda: Store.open_read_only(config))
    hidden.unlink()
    sealed = sorted(config.path.glob("*.fbat"))[0]
    data = bytearray(sealed.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a committed frame of a sealed segment
    sealed.write_bytes(bytes(data))
    with Store.open_read_only(config) as frozen:  # found at open (rebuild) or at the read
        raised["damaged segment"] = provoke(lambda: frozen.events(frozen.query(Region.all())))
    data[len(data) // 3] ^= 0xFF
    sealed.write_bytes(bytes(data))
    (config.path / "store.meta").write_bytes(b"FBATSM" + (99).to_bytes(2, "little") + bytes(8))
    raised["future meta"] = provoke(lambda: Store.open(config))

    flaky = FlakyFs()
    poisoned = Store.open(StoreConfig(tmp_path / "p").with_fs(flaky))
    flaky.fail_syncs = True
    poisoned.append(coord("acct:1"), KIND, {"n": 1})
    raised["fsync"] = provoke(poisoned.sync)
    raised["after fsync"] = provoke(lambda: poisoned.append(coord("acct:1"), KIND, {}))
    poisoned._abandon()  # the documented crash seam: a poisoned writer cannot close cleanly

    expected = {
        "config": ("Configuration", "domain"),
        "missing dir": ("Io", "retryable_operational"),
        "locked": ("StoreLocked", "domain"),
        "not found": ("NotFound", "domain"),
        "reserved": ("ReservedKind", "domain"),
        "too large": ("PayloadTooLarge", "domain"),
        "coordinate": ("InvalidCoordinate", "domain"),
        "cas": ("SequenceMismatch", "domain"),
        "partial batch": ("IdempotencyPartialBatch", "domain"),
        "wait": ("WaitTimeout", "retryable_operational"),
        "fence": ("VisibilityFenceActive", "domain"),
        "closed": ("StoreClosed", "domain"),
        "read only": ("ReadOnlyStore", "domain"),
        "payload": ("InvalidPayload", "domain"),
        "hidden ranges": ("SideFileCorrupt", "fail_closed_operational"),
        "future meta": ("FutureVersion", "fail_closed_operational"),
        "fsync": ("WriterCrashed", "fail_closed_operational"),
        "after fsync": ("WriterCrashed", "fail_closed_operational"),
    }
    damaged = raised.pop("damaged segment")
    assert isinstance(damaged, FailClosedError), damaged  # CRC or framing: the name may vary
    assert damaged.handling_class == "fail_closed_operational"
    got = {k: (type(v).__name__, v.handling_class) for k, v in raised.items()}
    assert got == expected


# -- sync only ------------------------------------------------------------------------------

SYNC_PROBE = """
import sys, tempfile
import batpak
from batpak import BatchAppendItem, Coordinate, Region, Store, StoreConfig
with tempfile.TemporaryDirectory() as tmp, Store.open(StoreConfig(tmp)) as store:
    sub = store.subscribe_lossy(Region.all())
    c = Coordinate("acct:1", "scope:sync")
    r = store.append(c, 0xF001, {"n": 1})
    store.append_batch([BatchAppendItem.new(c, 0xF001, {"n": 2})])
    store.sync()
    cur = store.cursor(Region.all())
    assert cur.poll_batch(10)
    assert sub.recv(timeout=5) is not None
    assert store.verify_append_receipt(r).is_valid
    store.compact()
    store.snapshot(tmp + "/snap")
    store.get(r.event_id)
    store.frontier()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("asyncio", "anyio", "trio")))
"""


@pytest.mark.invariant("INV-STORE-SYNC-ONLY")
def test_batpak_runs_without_an_async_runtime(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", SYNC_PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout
    for name, member in inspect.getmembers(Store):
        if name.startswith("_"):
            continue
        assert not inspect.iscoroutinefunction(member), name
        assert not inspect.isasyncgenfunction(member), name


# -- receipts -------------------------------------------------------------------------------

SEED = bytes(range(32))
ATTACKER = bytes(range(1, 33))


def claim_inputs(store: Store, receipt: AppendReceipt) -> tuple[Coordinate, int, bytes]:
    stored = store.get(receipt.event_id)
    assert stored.event.hash_chain is not None
    return stored.coordinate, stored.event.header.event_kind, stored.event.hash_chain.prev_hash


@pytest.mark.invariant("INV-RECEIPT-SEALED")
def test_receipts_cannot_be_forged_and_both_verifiers_agree(tmp_path: Path) -> None:
    public = bytes(SigningKey(SEED).verify_key)
    config = StoreConfig(tmp_path).with_signing_key(SEED)
    with Store.open(config) as store:
        options = AppendOptions(extensions={"app.tag": b"t1"})
        store.append(coord("acct:1"), KIND, {"n": 0})
        receipt = store.append(coord("acct:1"), KIND, {"n": 1}, options)
        assert receipt.is_signed
        inputs = claim_inputs(store, receipt)

        def both(r: AppendReceipt, cover: tuple[Coordinate, int, bytes] = inputs) -> Any:
            mine = store.verify_append_receipt(r)
            free = verify_receipt_claim(r, *cover, [public])
            assert mine.is_valid == free.is_valid, (mine, free)
            assert mine.outcome == free.outcome
            return mine, free

        ok, _ = both(receipt)
        assert ok.outcome == Outcome.SIGNED

        forged_key = SigningKey(ATTACKER)
        swap = msgspec.structs.replace
        previous = store.query(Region.entity("acct:1"))[-2]
        hand_built = AppendReceipt(  # every field plausible, the event never committed
            event_id=12345,
            global_sequence=receipt.global_sequence,
            disk_pos=receipt.disk_pos,
            content_hash=receipt.content_hash,
            key_id=receipt.key_id,
            signature=receipt.signature,
            extensions=receipt.extensions,
        )
        mutants = [
            ("missing_committed_event", hand_built),
            ("missing_committed_event", swap(receipt, event_id=receipt.event_id ^ 1)),
            ("sequence_mismatch", swap(receipt, event_id=previous.event_id)),
            ("sequence_mismatch", swap(receipt, global_sequence=receipt.global_sequence + 1)),
            ("content_hash_mismatch", swap(receipt, content_hash=bytes(32))),
            ("extensions_mismatch", swap(receipt, extensions={"app.tag": b"t2"})),
            ("extensions_mismatch", swap(receipt, extensions={})),
            ("invalid_signature", swap(receipt, signature=bytes(64))),
            ("unknown_signing_key", swap(receipt, key_id=bytes([7]) * 32)),
            ("unsigned_receipt_rejected", swap(receipt, signature=None, key_id=bytes(32))),
            ("zero_key_with_signature", swap(receipt, key_id=bytes(32))),
        ]
        for reason, mutant in mutants:
            mine, _ = both(mutant)
            assert mine.outcome == Outcome.INVALID
            assert mine.reason is not None
            assert mine.reason.value == reason
        # A receipt re-signed by a key the store does not know stays invalid.
        assert (
            verify_receipt_claim(
                swap(receipt, key_id=bytes(32), signature=forged_key.sign(b"x").signature),
                *inputs,
                [public],
            ).outcome
            == Outcome.INVALID
        )
        # Every cover input is bound: another coordinate, kind or prev hash breaks it.
        other = claim_inputs(store, store.append(coord("acct:2"), KIND, {"n": 2}))
        for cover in (
            (other[0], inputs[1], inputs[2]),
            (inputs[0], KIND + 1, inputs[2]),
            (inputs[0], inputs[1], other[2] if other[2] != inputs[2] else bytes([1]) * 32),
        ):
            assert verify_receipt_claim(receipt, *cover, [public]).outcome == Outcome.INVALID
    with Store.open_read_only(config) as reopened:
        assert reopened.verify_append_receipt(receipt).outcome == Outcome.SIGNED


@pytest.mark.invariant("INV-RECEIPT-SEALED")
def test_signing_policy_and_unsigned_receipts(tmp_path: Path) -> None:
    with pytest.raises(DomainError):
        Store.open(StoreConfig(tmp_path / "required", signing_policy="required"))
    assert not (tmp_path / "required").exists()
    required = StoreConfig(tmp_path / "signed", signing_policy="required", signing_keys=(SEED,))
    with Store.open(required) as store:
        assert store.append(coord("acct:1"), KIND, {}).is_signed
    with Store.open(StoreConfig(tmp_path / "plain")) as store:
        receipt = store.append(coord("acct:1"), KIND, {"n": 1})
        assert not receipt.is_signed
        assert receipt.key_id == bytes(32)
        verdict = store.verify_append_receipt(receipt)
        assert verdict.outcome == Outcome.UNSIGNED_ACCEPTED
        assert verdict.is_valid
        inputs = claim_inputs(store, receipt)
        assert verify_receipt_claim(receipt, *inputs) == verdict
        public = bytes(SigningKey(SEED).verify_key)
        assert verify_receipt_claim(receipt, *inputs, [public]).outcome == Outcome.INVALID
