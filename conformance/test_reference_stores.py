"""Store directories written the way the Rust reference writes them, read back through batpak.

PROVES: INV-ONDISK-FORWARD-COMPAT-CANONICAL (reference stores, old writers included, open and
read back exactly), INV-COLD-START-ARTIFACTS (torn tails, stale fast-start files),
INV-BATCH-CRASH-RECOVERY (incomplete or miscounted batches are dropped; damaged committed
frames fail closed), INV-HASH-CHAIN-INTEGRITY (per-(entity, lane) chains survive and continue),
INV-STORE-LINEAGE-IDENTITY (store.meta is honoured, never re-minted), INV-FRONTIER-OPEN-MONOTONIC.
CATCHES: readers that trust SIDX rows or index.fbati blindly, lose batches at rotation, show
markers, renumber sequences, or rewrite files the reference wrote.
SEEDED: every scenario builds from a fixed seed and a fixed clock, so its bytes never change.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from refstore import (
    BATCH_ENTITY,
    BATCH_SCOPE,
    EVENT_KEYS,
    FRAME_KEYS,
    HEADER_KEYS_10,
    KIND_CLOSE,
    KIND_DATA,
    KIND_OPEN,
    LIFECYCLE_ENTITY,
    LIFECYCLE_SCOPE,
    MARKER_KINDS,
    OPEN_REPORT_KEYS,
    POSITION_KEYS,
    ZERO32,
    BatchItem,
    FooterKind,
    ParsedSegment,
    RefEvent,
    RefStoreBuilder,
    b3,
    header_map,
    pack,
    parse_segment,
    segment_files,
    segment_name,
    side_file,
    unpack,
)

from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    DomainError,
    EventKind,
    FailClosedError,
    IndexEntry,
    NotFound,
    Region,
    Store,
    StoreConfig,
    StoredEvent,
    StoreError,
)

Scenario = Callable[[Path], RefStoreBuilder]
FAR_FUTURE_US = 2_000_000_000_000_000  # 2033: later than any test machine's clock


def _p(**fields: object) -> bytes:
    return pack(fields)


# -- scenarios: what a Rust-reference store directory can look like ---------------------------


def _history(
    directory: Path,
    *,
    seed: int,
    footer: FooterKind = "sdx3",
    legacy_first_session: bool = False,
    extensions: bool = False,
    start_us: int = 1_750_000_000_000_000,
) -> RefStoreBuilder:
    """Two clean sessions over three segments, a lane branch and a reserved sequence gap."""
    b = RefStoreBuilder(directory, seed=seed, start_us=start_us)
    b.legacy_headers = legacy_first_session
    b.begin_session()
    opened = b.append("acct:alice", "bank", _p(op="open", amount=100))
    b.append("acct:bob", "bank", _p(op="open", amount=5), kind=0xE001, payload_version=1)
    b.append(
        "acct:alice",
        "bank",
        _p(op="deposit", amount=20),
        flags=0x01,
        payload_version=3,
        correlation_id=opened.event_id,
        causation_id=opened.event_id,
    )
    b.append("acct:alice", "audit", _p(seen=True), kind=0xF001)  # same chain, other scope
    b.append("acct:alice", "bank", _p(op="what-if"), lane=1, depth=1)  # a branch: new genesis
    b.append("order:7", "shop", _p(blob=bytes(range(256)) * 4, note="é✓"))
    if extensions:
        b.append(
            "acct:alice",
            "bank",
            _p(op="tagged"),
            extensions={"zeta.k": b"", "acme.trace": b"\x00\x01\xfe\xff", "acme.a": b"x" * 300},
        )
        downgrade = pack(
            {"schema_version": 1, "reason": {"CoverBuildFailed": {"encoding_error": "fixture"}}}
        )
        b.append(
            "acct:dave",
            "bank",
            _p(op="unsigned"),
            extensions={"batpak.signing.downgrade": downgrade},
        )
    b.end_session(footer)
    b.write_index()  # what the close writes; stale once the next session runs
    b.legacy_headers = False
    b.begin_session("Mmap")
    b.append("acct:bob", "bank", _p(op="withdraw", amount=2), kind=0xE001, payload_version=1)
    b.reserve_sequences(3)  # a failed batch's reservation: SDX3 rows keep the gap
    b.append("acct:alice", "bank", _p(op="deposit", amount=1), payload_version=3)
    b.rotate(footer)
    b.append("acct:alice", "bank", _p(op="what-if-2"), lane=1, depth=1)
    if extensions:
        b.append("acct:carol", "bank", _p(op="open"), extensions={"acme.trace": b"\x10"})
    else:
        b.append("acct:carol", "bank", _p(op="open"))
    b.end_session(footer)
    b.write_index()
    b.write_store_meta()
    b.write_lock()
    return b


def plain(directory: Path) -> RefStoreBuilder:
    return _history(directory, seed=11)


def sdx2_footers(directory: Path) -> RefStoreBuilder:
    return _history(directory, seed=12, footer="sdx2")


def legacy_headers(directory: Path) -> RefStoreBuilder:
    return _history(directory, seed=13, legacy_first_session=True)


def receipt_extensions(directory: Path) -> RefStoreBuilder:
    return _history(directory, seed=14, extensions=True)


def future_clock(directory: Path) -> RefStoreBuilder:
    return _history(directory, seed=15, start_us=FAR_FUTURE_US)


def batches(directory: Path) -> RefStoreBuilder:
    """Committed, miscounted and unfinished batches, an orphan COMMIT and a crashed session."""
    b = RefStoreBuilder(directory, seed=21)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.batch(
        [
            BatchItem("acct:alice", "bank", _p(n=1)),
            BatchItem("acct:bob", "bank", _p(n=2)),
            BatchItem("acct:alice", "bank", _p(n=3), extensions={"acme.batch": b"\x07"}),
        ]
    )
    b.orphan_commit()
    b.append("acct:bob", "bank", _p(n=4))
    b.batch(
        [BatchItem("acct:alice", "bank", _p(n=5)), BatchItem("acct:bob", "bank", _p(n=6))],
        declared=3,
    )
    b.append("acct:alice", "bank", _p(n=7))
    b.batch(
        [BatchItem("acct:bob", "bank", _p(n=8)), BatchItem("acct:alice", "bank", _p(n=9))],
        declared=1,
    )
    b.append("acct:alice", "bank", _p(n=10))
    b.end_session()
    b.begin_session("Mmap")
    b.append("acct:bob", "bank", _p(n=11))
    b.batch([BatchItem("acct:carol", "bank", _p(n=12)), BatchItem("acct:bob", "bank", _p(n=13))])
    b.append("acct:carol", "bank", _p(n=14))
    b.batch(  # BEGIN without COMMIT at the end of the segment: the writer died mid-batch
        [BatchItem("acct:carol", "bank", _p(n=15)), BatchItem("acct:alice", "bank", _p(n=16))],
        commit=False,
        declared=3,
    )
    b.crash()
    b.begin_session("Rebuild")
    b.append("acct:alice", "bank", _p(n=17))
    b.append("acct:carol", "bank", _p(n=18))
    b.end_session()
    b.write_store_meta()
    b.write_lock()
    return b


def batch_at_rotation(directory: Path) -> RefStoreBuilder:
    """A segment sealed right after a COMMIT: its SDX3 rows stop short of the frame region."""
    b = RefStoreBuilder(directory, seed=22)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.batch([BatchItem("acct:alice", "bank", _p(n=1)), BatchItem("acct:bob", "bank", _p(n=2))])
    b.rotate()
    b.batch([BatchItem("acct:bob", "bank", _p(n=3)), BatchItem("acct:alice", "bank", _p(n=4))])
    b.rotate()
    b.append("acct:alice", "bank", _p(n=5))
    b.end_session()
    b.begin_session("Mmap")
    b.append("acct:bob", "bank", _p(n=6))
    b.crash()  # no footer on the newest segment: readers take the per-segment path
    b.write_store_meta()
    b.write_lock()
    return b


def gap_at_rotation(directory: Path) -> RefStoreBuilder:
    """A reserved gap in a segment sealed right after a COMMIT, every footer a valid SDX3.

    The reference's rebuild then takes every row's true global sequence (its parallel SIDX
    path has no coverage check), so the gap stays where the writer left it.
    """
    b = RefStoreBuilder(directory, seed=23)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.reserve_sequences(2)
    b.batch([BatchItem("acct:alice", "bank", _p(n=1)), BatchItem("acct:bob", "bank", _p(n=2))])
    b.rotate()
    b.append("acct:bob", "bank", _p(n=3))
    b.end_session()
    b.write_store_meta()
    b.write_lock()
    return b


def batch_across_rotation(directory: Path) -> RefStoreBuilder:
    """An older writer rotated mid-batch: one committed batch and one unfinished one span
    segments. Recovery carries batch state across segments (format.md §7.1, conformance.md
    INV-BATCH-CRASH-RECOVERY "even across a rotation")."""
    b = RefStoreBuilder(directory, seed=24)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.batch(
        [
            BatchItem("acct:alice", "bank", _p(n=1)),
            BatchItem("acct:bob", "bank", _p(n=2)),
            BatchItem("acct:alice", "bank", _p(n=3)),
        ],
        rotate_after=2,
    )
    b.append("acct:bob", "bank", _p(n=4))
    b.batch(
        [BatchItem("acct:carol", "bank", _p(n=5)), BatchItem("acct:carol", "bank", _p(n=6))],
        commit=False,
        rotate_after=1,
    )
    b.crash()
    b.write_store_meta()
    b.write_lock()
    return b


def torn_tail(directory: Path) -> RefStoreBuilder:
    """The newest segment ends in the first half of a frame (the writer died mid-write)."""
    b = RefStoreBuilder(directory, seed=31)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.append("acct:bob", "bank", _p(n=1))
    b.end_session()
    b.write_index()
    b.begin_session("Mmap")
    b.append("acct:alice", "bank", _p(n=2))
    b.append("acct:bob", "bank", _p(n=3))
    b.crash_torn("acct:alice", "bank", _p(n=4, pad="z" * 64), keep=70)
    b.write_store_meta()
    b.write_lock()
    return b


def torn_batch(directory: Path) -> RefStoreBuilder:
    """The writer died inside a batch: BEGIN, two of three items, then half an item."""
    b = RefStoreBuilder(directory, seed=32)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.end_session()
    b.begin_session("Mmap")
    b.append("acct:alice", "bank", _p(n=1))
    b.batch(
        [BatchItem("acct:alice", "bank", _p(n=2)), BatchItem("acct:bob", "bank", _p(n=3))],
        commit=False,
        declared=3,
    )
    b.crash_torn("acct:bob", "bank", _p(n=4), keep=20)
    b.write_store_meta()
    b.write_lock()
    return b


def empty_segment(directory: Path) -> RefStoreBuilder:
    """An open that died right after creating its segment leaves a header-only file."""
    b = RefStoreBuilder(directory, seed=41)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.end_session()
    b.crash_at_create()
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=1))
    b.end_session()
    b.write_store_meta()
    b.write_lock()
    return b


BATCH = pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
TORN = pytest.mark.invariant("INV-COLD-START-ARTIFACTS")
SCENARIOS: dict[str, Scenario] = {
    "plain": plain,
    "sdx2_footers": sdx2_footers,
    "legacy_headers": legacy_headers,
    "receipt_extensions": receipt_extensions,
    "future_clock": future_clock,
    "batches": batches,
    "batch_at_rotation": batch_at_rotation,
    "gap_at_rotation": gap_at_rotation,
    "batch_across_rotation": batch_across_rotation,
    "torn_tail": torn_tail,
    "torn_batch": torn_batch,
    "empty_segment": empty_segment,
}
TORN_SCENARIOS = {"torn_tail", "torn_batch"}
_MARKS = {
    "batches": [BATCH],
    "batch_at_rotation": [BATCH],
    "gap_at_rotation": [BATCH],
    "batch_across_rotation": [BATCH],
    "torn_tail": [TORN],
    "torn_batch": [TORN, BATCH],
    "empty_segment": [TORN],
    "future_clock": [pytest.mark.invariant("INV-FRONTIER-OPEN-MONOTONIC")],
}
PARAMS = [pytest.param(name, marks=_MARKS.get(name, []), id=name) for name in SCENARIOS]


# -- what a reader must show ------------------------------------------------------------------


def _ref_view(ref: RefEvent, global_sequence: int) -> dict[str, Any]:
    return {
        "event_id": ref.event_id,
        "correlation_id": ref.correlation_id,
        "causation_id": ref.causation_id,
        "coordinate": (ref.entity, ref.scope),
        "kind": ref.kind,
        "payload": ref.payload,
        "payload_size": len(ref.payload),
        "payload_version": ref.payload_version,
        "flags": ref.flags,
        "timestamp_us": ref.timestamp_us,
        "position": (ref.wall_ms, 0, ref.depth, ref.lane, ref.sequence),
        "content_hash": ref.event_hash,
        "hash_chain": (ref.prev_hash, ref.event_hash),
        "global_sequence": global_sequence,
        "extensions": ref.extensions,
        "disk_pos": (ref.segment_id, ref.offset, ref.length),
        "index": (
            ref.event_id,
            ref.correlation_id,
            ref.causation_id,
            ref.entity,
            ref.scope,
            ref.kind,
            ref.wall_ms,
            ref.sequence,
            ref.lane,
            ref.depth,
            ref.prev_hash,
            ref.event_hash,
            global_sequence,
            ref.extensions,
        ),
    }


def _stored_view(entry: IndexEntry, stored: StoredEvent) -> dict[str, Any]:
    header = stored.event.header
    position = header.position
    chain = stored.event.hash_chain
    return {
        "event_id": header.event_id,
        "correlation_id": header.correlation_id,
        "causation_id": header.causation_id,
        "coordinate": (stored.coordinate.entity, stored.coordinate.scope),
        "kind": header.event_kind,
        "payload": stored.event.payload,
        "payload_size": header.payload_size,
        "payload_version": header.payload_version,
        "flags": header.flags,
        "timestamp_us": header.timestamp_us,
        "position": (
            position.wall_ms,
            position.counter,
            position.depth,
            position.lane,
            position.sequence,
        ),
        "content_hash": header.content_hash,
        "hash_chain": None if chain is None else (chain.prev_hash, chain.event_hash),
        "global_sequence": stored.global_sequence,
        "extensions": stored.extensions,
        "disk_pos": (entry.segment_id, entry.offset, entry.length),
        "index": (
            entry.event_id,
            entry.correlation_id,
            entry.causation_id,
            entry.entity,
            entry.scope,
            entry.event_kind,
            entry.wall_ms,
            entry.clock,
            entry.lane,
            entry.depth,
            entry.prev_hash,
            entry.event_hash,
            entry.global_sequence,
            dict(entry.receipt_extensions or {}),
        ),
    }


def assert_reference_events(store: Store, b: RefStoreBuilder) -> list[IndexEntry]:
    """The first visible events are exactly the reference's committed ones, in order."""
    entries = store.query(Region.all())
    sequences = b.expected_sequences()
    head = entries[: len(b.events)]
    # A readable summary first: (entity, kind, global_sequence, payload head) per event.
    want_summary = [
        (e.entity, e.kind, s, e.payload[:10].hex())
        for e, s in zip(b.events, sequences, strict=True)
    ]
    got_summary = [
        (en.entity, en.event_kind, en.global_sequence, st.event.payload[:10].hex())
        for en, st in zip(head, store.events(head), strict=True)
    ]
    assert got_summary == want_summary, "visible history differs from the reference's commits"
    expected = [_ref_view(e, s) for e, s in zip(b.events, sequences, strict=True)]
    observed = [_stored_view(en, st) for en, st in zip(head, store.events(head), strict=True)]
    assert observed == expected
    for ref, seq in zip(b.events, b.expected_sequences(), strict=True):
        got = store.get(ref.event_id)
        assert (got.global_sequence, got.event.payload) == (seq, ref.payload)
        assert store.read_raw(ref.event_id) == ref.payload
    for entity in {e.entity for e in b.events}:
        want = [e.event_id for e in b.events if e.entity == entity]
        assert [e.event_id for e in store.by_entity(entity)][: len(want)] == want
    for scope in {e.scope for e in b.events}:
        want = [e.event_id for e in b.events if e.scope == scope]
        assert [e.event_id for e in store.by_scope(scope)][: len(want)] == want
    return entries


def assert_nothing_else_visible(store: Store, b: RefStoreBuilder) -> None:
    """Markers and discarded frames never surface, by any read path."""
    for kind in MARKER_KINDS:
        assert store.by_fact(kind) == []
    assert store.by_entity(BATCH_ENTITY) == []
    assert store.by_scope(BATCH_SCOPE) == []
    visible = {e.event_id for e in store.query(Region.all())}
    for gone in b.discarded:
        assert gone.event_id not in visible
        with pytest.raises(NotFound):
            store.get(gone.event_id)


def assert_chains(store: Store, b: RefStoreBuilder) -> None:
    """walk_ancestors follows each (entity, lane) chain back to its zero-hash genesis."""
    for chain in b.chains().values():
        for upto in {len(chain), (len(chain) + 1) // 2}:
            walked = store.walk_ancestors(chain[upto - 1].event_id, limit=len(chain) + 8)
            assert [w.event_id for w in walked] == [e.event_id for e in reversed(chain[:upto])]
            assert walked[-1].prev_hash == ZERO32
            for newer, older in itertools.pairwise(walked):
                assert newer.prev_hash == older.event_hash
                assert newer.clock == older.clock + 1
                assert newer.lane == older.lane


def snapshot(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def config(directory: Path) -> StoreConfig:
    return StoreConfig(directory)


def check_open_completed(
    entry: IndexEntry, stored: StoredEvent, b: RefStoreBuilder, restored: int
) -> None:
    """The OPEN_COMPLETED a writable open appends continues the reference's lifecycle chain."""
    header = stored.event.header
    lifecycle_head = b.head(LIFECYCLE_ENTITY)
    assert lifecycle_head is not None
    assert (entry.entity, entry.scope, entry.event_kind) == (
        LIFECYCLE_ENTITY,
        LIFECYCLE_SCOPE,
        KIND_OPEN,
    )
    assert entry.segment_id == b.max_segment_id + 1
    assert entry.global_sequence == max(b.expected_sequences()) + 1
    assert header.correlation_id == header.event_id
    assert header.causation_id is None
    assert (header.flags, header.payload_version) == (0, 0)
    assert stored.event.hash_chain is not None
    assert stored.event.hash_chain.prev_hash == lifecycle_head[0]
    assert header.position.sequence == lifecycle_head[1] + 1
    assert (header.position.lane, header.position.depth, header.position.counter) == (0, 0, 0)
    # The open HLC never regresses below what was recovered (INV-FRONTIER-OPEN-MONOTONIC).
    assert header.position.wall_ms >= max(e.wall_ms for e in b.events)
    assert header.timestamp_us % 1000 == 0
    assert header.content_hash == b3(stored.event.payload)
    report = unpack(stored.event.payload)
    assert list(report) == list(OPEN_REPORT_KEYS)
    assert report["path"] in ("Rebuild", "Mmap", "Checkpoint")
    if report["path"] == "Rebuild":
        assert (report["restored_entries"], report["tail_entries"]) == (restored, 0)
    for key in OPEN_REPORT_KEYS[8:]:
        assert report[key] == ({} if key.endswith("histogram") else 0)


def check_marker(value: Any, batch: list[int]) -> None:
    """A BEGIN or COMMIT frame as format.md §7.1 spells it; ``batch`` tracks the open batch."""
    event = value["event"]
    wire = event["header"]
    assert value["scope"] == BATCH_SCOPE
    assert value["receipt_extensions"] == {}
    assert event["payload"] == [], "markers carry no payload bytes (the empty array 90)"
    assert event["hash_chain"] is None
    assert wire["content_hash"] == [0] * 32
    assert (wire["flags"], wire["payload_version"]) == (0, 0)
    assert wire["position"]["wall_ms"] == wire["timestamp_us"] // 1000
    assert wire["event_id"] == wire["correlation_id"]
    assert wire["causation_id"] is None
    position = wire["position"]
    assert (position["counter"], position["depth"], position["lane"], position["sequence"]) == (
        0,
        0,
        0,
        0,
    )
    batch_id = int.from_bytes(wire["event_id"], "big")
    if wire["event_kind"] == MARKER_KINDS[0]:
        assert not batch, "nested BEGIN"
        assert wire["payload_size"] >= 1
        batch.extend([wire["payload_size"], batch_id, 0])
    else:
        assert wire["event_kind"] == MARKER_KINDS[1]
        assert wire["payload_size"] == 0
        assert batch, "COMMIT without BEGIN"
        assert batch[1] == batch_id
        assert batch[0] == batch[2], "BEGIN's count differs from the items written"
        batch.clear()


def check_written_segment(parsed: ParsedSegment, entries: list[IndexEntry]) -> None:
    """A segment batpak wrote is reference-format: header, canonical frames, SDX3 footer."""
    header = parsed.header
    assert list(header) == ["version", "flags", "created_ns", "segment_id"]
    assert (header["version"], header["flags"], header["segment_id"]) == (1, 0, parsed.segment_id)
    assert isinstance(header["created_ns"], int)
    assert pack(header) == parsed.header_bytes
    events = [f for f in parsed.frames if f.value["entity"] != BATCH_ENTITY]
    assert [(f.offset, f.length) for f in events] == [(e.offset, e.length) for e in entries]
    by_offset = {e.offset: e for e in entries}
    batch: list[int] = []  # [declared count, batch id, items seen] while inside a batch
    for frame in parsed.frames:
        value = frame.value
        assert pack(value) == frame.body, "frame msgpack is not canonical"
        assert tuple(value) == FRAME_KEYS
        event = value["event"]
        assert tuple(event) == EVENT_KEYS
        wire = event["header"]
        assert tuple(wire) == HEADER_KEYS_10
        assert tuple(wire["position"]) == POSITION_KEYS
        assert isinstance(wire["event_id"], bytes)
        assert len(wire["event_id"]) == 16
        assert isinstance(event["payload"], list), "payload must be an int array, not bin"
        payload = bytes(event["payload"])
        if value["entity"] == BATCH_ENTITY:
            check_marker(value, batch)
            continue
        entry = by_offset[frame.offset]
        if batch:
            assert (wire["flags"], wire["payload_version"]) == (0, 0), "batch items stamp 0"
            assert entry.global_sequence == batch[1] + batch[2]
            batch[2] += 1
        assert wire["payload_size"] == len(payload)
        assert bytes(wire["content_hash"]) == b3(payload) == entry.event_hash
        assert event["hash_chain"] == {
            "prev_hash": list(entry.prev_hash),
            "event_hash": list(entry.event_hash),
        }
        assert (value["entity"], value["scope"]) == (entry.entity, entry.scope)
        assert int.from_bytes(wire["event_id"], "big") == entry.event_id
        assert wire["event_kind"] == entry.event_kind
        assert wire["position"]["sequence"] == entry.clock
        assert wire["position"]["wall_ms"] == entry.wall_ms
        ext = value["receipt_extensions"]
        assert list(ext) == sorted(ext, key=str.encode)
        assert {k: bytes(v) for k, v in ext.items()} == dict(entry.receipt_extensions or {})
    assert not batch, "a batch without its COMMIT"
    footer = parsed.footer
    assert footer is not None
    assert footer.magic == b"SDX3"
    assert footer.crc_ok
    assert footer.string_table_offset == parsed.frames_end == parsed.region_end
    rows = [
        (
            r.event_id,
            r.entity,
            r.scope,
            r.kind,
            r.wall_ms,
            r.clock,
            r.lane,
            r.depth,
            r.prev_hash,
            r.event_hash,
            r.frame_offset,
            r.frame_length,
            r.global_sequence,
            r.correlation_id,
            r.causation_id,
        )
        for r in footer.rows
    ]
    assert rows == [
        (
            e.event_id,
            e.entity,
            e.scope,
            e.event_kind,
            e.wall_ms,
            e.clock,
            e.lane,
            e.depth,
            e.prev_hash,
            e.event_hash,
            e.offset,
            e.length,
            e.global_sequence,
            e.correlation_id,
            e.causation_id or 0,
        )
        for e in entries
    ]


# The reference's own golden (format.md §4): the harness writes headers byte for byte like it.
EVENT_HEADER_V1 = bytes.fromhex(
    "8aa86576656e745f6964c4100123456789abcdef0123456789abcdefae636f7272656c6174696f6e5f6964"
    "c4100123456789abcdef0123456789abcdefac636175736174696f6e5f6964c0ac74696d657374616d705f"
    "7573cf00060a24181e4000a8706f736974696f6e85a777616c6c5f6d7300a7636f756e74657200a5646570"
    "746800a46c616e6500a873657175656e636500ac7061796c6f61645f73697a652aaa6576656e745f6b696e"
    "64cdf001a5666c61677300ac636f6e74656e745f68617368dc002000000000000000000000000000000000"
    "00000000000000000000000000000000af7061796c6f61645f76657273696f6e00"
)


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.invariant("INV-ONDISK-FORWARD-COMPAT-CANONICAL")
def test_harness_writes_the_reference_header_golden() -> None:
    """Self-check of refstore: its independent encoder reproduces event_header_v1.hex."""
    event_id = 0x0123456789ABCDEF0123456789ABCDEF
    header = header_map(
        event_id=event_id,
        correlation_id=event_id,
        causation_id=None,
        timestamp_us=1_700_000_000_000_000,
        position=(0, 0, 0, 0, 0),
        payload_size=42,
        kind=0xF001,
        flags=0,
        content_hash=ZERO32,
        payload_version=0,
    )
    assert len(EVENT_HEADER_V1) == 248
    assert pack(header) == EVENT_HEADER_V1


@pytest.mark.invariant("INV-ONDISK-FORWARD-COMPAT-CANONICAL")
@pytest.mark.invariant("INV-HASH-CHAIN-INTEGRITY")
@pytest.mark.parametrize("name", PARAMS)
def test_read_only_open_shows_exactly_what_the_reference_wrote(tmp_path: Path, name: str) -> None:
    b = SCENARIOS[name](tmp_path / "store")
    before = snapshot(b.directory)
    with Store.open_read_only(config(b.directory)) as store:
        assert_reference_events(store, b)
        assert len(store.query(Region.all())) == len(b.events)
        assert_nothing_else_visible(store, b)
        assert_chains(store, b)
        assert store.identity() == b.lineage
        with pytest.raises(DomainError):
            store.append_msgpack(Coordinate("acct:alice", "bank"), KIND_DATA, _p(n=-1))
    assert snapshot(b.directory) == before, "a read-only open changed the directory"


@pytest.mark.invariant("INV-ONDISK-FORWARD-COMPAT-CANONICAL")
@pytest.mark.invariant("INV-HASH-CHAIN-INTEGRITY")
@pytest.mark.parametrize("name", PARAMS)
def test_writable_open_continues_the_reference_history(tmp_path: Path, name: str) -> None:
    b = SCENARIOS[name](tmp_path / "store")
    with Store.open(config(b.directory)) as store:
        entries = assert_reference_events(store, b)
        assert len(entries) == len(b.events) + 1
        assert_nothing_else_visible(store, b)
        assert_chains(store, b)
        opened = entries[-1]
        check_open_completed(opened, store.get(opened.event_id), b, len(b.events))
        assert store.identity() == b.lineage
        # OPEN is durable before open returns: it is already the new segment's first frame.
        parsed = parse_segment(b.directory / segment_name(b.max_segment_id + 1))
        assert [f.offset for f in parsed.frames] == [parsed.frames_start] == [opened.offset]


@pytest.mark.invariant("INV-ONDISK-FORWARD-COMPAT-CANONICAL")
@pytest.mark.invariant("INV-HASH-CHAIN-INTEGRITY")
@pytest.mark.parametrize("name", PARAMS)
def test_append_and_close_keep_reference_files_and_format(tmp_path: Path, name: str) -> None:
    b = SCENARIOS[name](tmp_path / "store")
    directory = b.directory
    torn = {b.max_segment_id} if name in TORN_SCENARIOS else set()
    old = {p.name: p.read_bytes() for p in segment_files(directory)}
    meta = (directory / "store.meta").read_bytes()
    alice_head = b.head("acct:alice")
    assert alice_head is not None
    with Store.open(config(directory)) as store:
        r1 = store.append_msgpack(
            Coordinate("acct:alice", "bank"),
            EventKind.custom(0x1, 0x002),
            _p(op="after"),
            AppendOptions(extensions={"acme.after": b"\x01\x80"}),
        )
        r2 = store.append_msgpack(Coordinate("acct:zed", "bank"), KIND_DATA, _p(op="new"))
        r3, r4 = store.append_batch(
            [
                BatchAppendItem.from_msgpack_bytes(
                    Coordinate("acct:zed", "shop"), KIND_DATA, _p(op="batched", n=0)
                ),
                BatchAppendItem.from_msgpack_bytes(
                    Coordinate("acct:alice", "bank"), KIND_DATA, _p(op="batched", n=1)
                ),
            ]
        )
        alice = store.get(r1.event_id)
        assert alice.event.hash_chain is not None
        assert alice.event.hash_chain.prev_hash == alice_head[0]
        assert alice.event.header.position.sequence == alice_head[1] + 1
        assert alice.event.header.position.lane == 0
        zed = store.get(r2.event_id)
        assert zed.event.hash_chain is not None
        assert zed.event.hash_chain.prev_hash == ZERO32
        assert zed.event.header.position.sequence == 0

    new_id = b.max_segment_id + 1
    ids = [int(p.stem) for p in segment_files(directory)]
    assert ids == [*sorted(int(n.split(".")[0]) for n in old), new_id]
    for file_name, data in old.items():
        if int(file_name.split(".")[0]) not in torn:
            assert (directory / file_name).read_bytes() == data, f"{file_name} was rewritten"
    assert (directory / "store.meta").read_bytes() == meta, "store.meta was re-minted"
    assert (directory / ".batpak.lock").read_bytes() == b""

    first_new = max(b.expected_sequences()) + 1
    with Store.open_read_only(config(directory)) as store:
        entries = assert_reference_events(store, b)
        tail = entries[len(b.events) :]
        kinds = [KIND_OPEN, 0x1002, KIND_DATA, KIND_DATA, KIND_DATA, KIND_CLOSE]
        assert [e.event_kind for e in tail] == kinds
        receipts = [r1, r2, r3, r4]
        assert [e.event_id for e in tail[1:5]] == [r.event_id for r in receipts]
        assert [e.global_sequence for e in tail] == list(range(first_new, first_new + 6))
        assert [r.global_sequence for r in receipts] == list(range(first_new + 1, first_new + 5))
        zed_chain = store.walk_ancestors(r3.event_id)
        assert [e.event_id for e in zed_chain] == [r3.event_id, r2.event_id]
        alice_chain = store.walk_ancestors(r4.event_id, limit=3)
        assert [e.event_id for e in alice_chain][:2] == [r4.event_id, r1.event_id]
        assert {e.segment_id for e in tail} == {new_id}
        assert_chains(store, b)
        lifecycle = store.walk_ancestors(tail[-1].event_id, limit=1000)
        want = [e.event_id for e in b.chains()[(LIFECYCLE_ENTITY, 0)]]
        assert [e.event_id for e in reversed(lifecycle)] == [
            *want,
            tail[0].event_id,
            tail[-1].event_id,
        ]
        close = store.get(tail[-1].event_id)
        last = tail[-2]
        assert unpack(close.event.payload) == {
            "wall_ms": last.wall_ms,
            "global_sequence": last.global_sequence,
        }
        assert close.event.header.timestamp_us == last.wall_ms * 1000
        assert store.get(r1.event_id).extensions == {"acme.after": b"\x01\x80"}
        check_written_segment(parse_segment(directory / segment_name(new_id)), tail)

    with Store.open(config(directory)) as store:  # and it opens again, continuing
        reopened = store.query(Region.all())[-1]
        assert reopened.event_kind == KIND_OPEN
        assert reopened.segment_id == new_id + 1
        assert reopened.global_sequence == first_new + 6


@TORN
@pytest.mark.parametrize("name", sorted(TORN_SCENARIOS))
def test_torn_newest_segment_is_sealed_with_its_bytes_kept(tmp_path: Path, name: str) -> None:
    """format.md §7.2 refuses torn bytes in any segment but the newest, and every open adds a
    newer one, so batpak seals the torn segment's whole-frame prefix under an SDX3 footer at
    the next writable open. The torn bytes are never destroyed: the original file is kept
    byte for byte as NNNNNN.torn, and read-only opens change nothing."""
    b = SCENARIOS[name](tmp_path / "store")
    path = b.directory / segment_name(b.max_segment_id)
    before = path.read_bytes()
    with Store.open_read_only(config(b.directory)) as store:
        assert len(store.query(Region.all())) == len(b.events)
    assert path.read_bytes() == before
    with Store.open(config(b.directory)) as store:
        assert len(store.query(Region.all())) == len(b.events) + 1
    assert path.with_suffix(".torn").read_bytes() == before
    sealed = path.read_bytes()
    trailer_offset = int.from_bytes(sealed[-16:-8], "little")
    assert sealed[-4:] == b"SDX3"
    assert before.startswith(sealed[:trailer_offset])
    assert len(sealed[:trailer_offset]) < len(before)
    for _ in range(2):
        with Store.open_read_only(config(b.directory)) as store:
            assert len(store.query(Region.all())) == len(b.events) + 2
            assert_reference_events(store, b)


@TORN
@pytest.mark.parametrize("variant", ["current", "absent", "stale", "garbage", "bad_crc", "cut"])
def test_index_fbati_never_changes_what_is_read(tmp_path: Path, variant: str) -> None:
    """A regenerable fast-start file is never trusted over the segments."""
    b = plain(tmp_path / "store")
    index = b.directory / "index.fbati"
    current = index.read_bytes()
    rng = random.Random(variant)
    replacement = {
        "current": current,
        "stale": b.written_indexes[0],
        "garbage": b"FBATIX" + (5).to_bytes(2, "little") + rng.randbytes(300),
        "bad_crc": current[:8] + bytes(4) + current[12:],
        "cut": current[: len(current) // 2],
    }
    if variant == "absent":
        index.unlink()
    else:
        index.write_bytes(replacement[variant])
    with Store.open_read_only(config(b.directory)) as store:
        assert len(store.query(Region.all())) == len(b.events)
        assert_reference_events(store, b)
    with Store.open(config(b.directory)) as store:
        assert len(store.query(Region.all())) == len(b.events) + 1
        assert_reference_events(store, b)
    with Store.open_read_only(config(b.directory)) as store:
        assert len(store.query(Region.all())) == len(b.events) + 2
        assert_reference_events(store, b)


@pytest.mark.invariant("INV-ONDISK-FORWARD-COMPAT-CANONICAL")
@pytest.mark.parametrize("file_name", ["index.fbati", "store.meta"])
def test_future_version_side_file_is_refused_not_rebuilt(tmp_path: Path, file_name: str) -> None:
    """A side file from a newer writer is a typed FutureVersion refusal (format.md §7)."""
    b = plain(tmp_path / "store")
    path = b.directory / file_name
    data = path.read_bytes()
    path.write_bytes(side_file(data[:6], 99, data[12:]))
    for opener in (Store.open_read_only, Store.open):
        with pytest.raises(FailClosedError) as caught:
            opener(config(b.directory)).close()
        assert "FutureVersion" in type(caught.value).__name__
    assert len(segment_files(b.directory)) == b.max_segment_id, "a refused open wrote a segment"


@pytest.mark.invariant("INV-STORE-LINEAGE-IDENTITY")
def test_corrupt_store_meta_is_refused(tmp_path: Path) -> None:
    b = plain(tmp_path / "store")
    path = b.directory / "store.meta"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    for opener in (Store.open_read_only, Store.open):
        with pytest.raises(FailClosedError):
            opener(config(b.directory)).close()


@pytest.mark.invariant("INV-STORE-LINEAGE-IDENTITY")
def test_store_without_meta_gets_one_minted_only_by_a_writable_open(tmp_path: Path) -> None:
    """The older fork has no store.meta: read-only mints nothing, writable mints FBATSM v1."""
    b = plain(tmp_path / "store")
    meta = b.directory / "store.meta"
    meta.unlink()
    with Store.open_read_only(config(b.directory)) as store:
        assert store.identity() is None
    assert not meta.exists()
    with Store.open(config(b.directory)) as store:
        lineage = store.identity()
    data = meta.read_bytes()
    assert len(data) == 80
    assert data[:6] == b"FBATSM"
    assert side_file(b"FBATSM", 1, data[12:]) == data
    body = unpack(data[12:])
    assert list(body) == ["lineage", "idemp_authority", "last_compaction_commit"]
    assert isinstance(body["lineage"], bytes)
    assert len(body["lineage"]) == 16
    assert (body["idemp_authority"], body["last_compaction_commit"]) == (None, None)
    assert lineage == int.from_bytes(body["lineage"], "big")
    assert lineage >> 76 & 0xF == 7, "lineage is a UUIDv7"
    with Store.open(config(b.directory)) as store:
        assert store.identity() == lineage
    assert meta.read_bytes() == data


def _small_crashed(directory: Path) -> RefStoreBuilder:
    b = RefStoreBuilder(directory, seed=51)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.append("acct:bob", "bank", _p(n=1))
    b.end_session()
    b.begin_session("Mmap")
    b.append("acct:alice", "bank", _p(n=2))
    b.append("acct:bob", "bank", _p(n=3, pad="p" * 40))
    b.crash()
    b.write_store_meta()
    b.write_lock()
    return b


@TORN
def test_every_cut_through_the_newest_frame_recovers_the_prefix(tmp_path: Path) -> None:
    """Cut the newest segment at every offset inside its last frame, or add garbage."""
    b = _small_crashed(tmp_path / "store")
    path = b.directory / segment_name(b.max_segment_id)
    data = path.read_bytes()
    last = b.events[-1]
    assert last.offset + last.length == len(data)
    prefix_ids = [e.event_id for e in b.events[:-1]]
    rng = random.Random(7)
    images = [data[:cut] for cut in range(last.offset, len(data))]
    images += [data + rng.randbytes(n) for n in (1, 7, 8, 9, 100)]
    images += [data + bytes(n) for n in (1, 8, 64)]
    for image in images:
        path.write_bytes(image)
        with Store.open_read_only(config(b.directory)) as store:
            ids = [e.event_id for e in store.query(Region.all())]
        want = prefix_ids if len(image) < len(data) else [*prefix_ids, last.event_id]
        assert ids == want, f"image of {len(image)} bytes"


@pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
@pytest.mark.parametrize("where", ["sealed", "newest"])
def test_bad_crc_inside_committed_frames_fails_closed(tmp_path: Path, where: str) -> None:
    """A damaged frame followed by valid ones is corruption, never a silently shorter log."""
    b = _small_crashed(tmp_path / "store")
    victim = b.events[1] if where == "sealed" else b.events[-2]
    path = b.directory / segment_name(victim.segment_id)
    data = bytearray(path.read_bytes())
    data[victim.offset + victim.length - 3] ^= 0x55
    path.write_bytes(bytes(data))
    for opener in (Store.open_read_only, Store.open):
        with pytest.raises(FailClosedError):
            opener(config(b.directory)).close()


@pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
@pytest.mark.parametrize("body", [_p(nope=1), b"\xc1", pack([1, 2, 3])], ids=["map", "c1", "array"])
def test_crc_valid_frame_that_does_not_decode_fails_closed(tmp_path: Path, body: bytes) -> None:
    """A frame with a valid CRC but undecodable metadata is fatal, even at the newest tail."""
    b = RefStoreBuilder(tmp_path / "store", seed=61)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.raw_frame(body)
    b.crash()
    b.write_store_meta()
    for opener in (Store.open_read_only, Store.open):
        with pytest.raises(FailClosedError):
            opener(config(b.directory)).close()


@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
@pytest.mark.parametrize("cut", [0, 3, 8, 30, 56])
def test_crash_while_creating_a_segment_keeps_later_acknowledged_writes(
    tmp_path: Path, cut: int
) -> None:
    """An open that died before its segment header was whole leaves a 0..56-byte file.

    The next open recovers and acknowledges new, synced writes; those must stay readable
    by every later open (a store that opens once and then refuses forever loses them).
    """
    b = RefStoreBuilder(tmp_path / "store", seed=71)
    b.begin_session()
    b.append("acct:alice", "bank", _p(n=0))
    b.end_session()
    b.crash_at_create()
    path = b.directory / segment_name(b.max_segment_id)
    assert len(path.read_bytes()) == 57
    path.write_bytes(path.read_bytes()[:cut])
    b.write_store_meta()
    b.write_lock()
    with Store.open(config(b.directory)) as store:
        receipt = store.append_msgpack(Coordinate("acct:alice", "bank"), KIND_DATA, _p(n=1))
        store.sync()
    with Store.open_read_only(config(b.directory)) as store:
        assert store.get(receipt.event_id).event.payload == _p(n=1)
        assert_reference_events(store, b)


@pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
def test_random_byte_flips_give_a_clean_prefix_or_a_typed_refusal(tmp_path: Path) -> None:
    """Chaos: any single flipped byte in any segment opens to a prefix or a StoreError."""
    b = _small_crashed(tmp_path / "store")
    files = {p: p.read_bytes() for p in segment_files(b.directory)}
    expected = [(e.event_id, e.entity, e.kind, e.payload) for e in b.events]
    rng = random.Random(0xF11B)
    outcomes: dict[str, int] = {}
    for _ in range(150):
        path = rng.choice(sorted(files))
        original = files[path]
        position = rng.randrange(len(original))
        damaged = bytearray(original)
        damaged[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        try:
            with Store.open_read_only(config(b.directory)) as store:
                entries = store.query(Region.all())
                seen = [
                    (e.event_id, e.entity, e.event_kind, s.event.payload)
                    for e, s in zip(entries, store.events(entries), strict=True)
                ]
            assert seen == expected[: len(seen)], f"flip at {path.name}:{position}"
            outcomes["prefix"] = outcomes.get("prefix", 0) + 1
        except StoreError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        except Exception as exc:  # an untyped error is never a legal outcome
            pytest.fail(f"flip at {path.name}:{position} raised {type(exc).__name__}: {exc}")
        finally:
            path.write_bytes(original)
    assert outcomes.get("prefix", 0) > 0
    assert len(outcomes) > 1
