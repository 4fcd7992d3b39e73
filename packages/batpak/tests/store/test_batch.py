"""append_batch: atomicity, the bytes it writes (format.md §7.1, facts3 §1), limits and keys.

Segment bytes are parsed independently of batpak, with ``msgpack`` and ``struct``. Crashes are
simulated with ``Store._abandon()`` (no CLOSE, no footer) followed by truncating or rewriting
the newest segment. Kinds used here are 0xEAxx.
"""

import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import blake3
import msgpack  # type: ignore[import-untyped]
import msgspec
import pytest

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    IndexEntry,
    NotFound,
    Outcome,
    PriorItem,
    Region,
    Store,
    StoreConfig,
    event_payload,
    upcaster,
)
from batpak.errors import (
    BatchTooLarge,
    Configuration,
    IdempotencyPartialBatch,
    InvalidCausation,
)
from batpak.kinds import SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT, EventKind

KIND = EventKind.custom(0xE, 0xA10)
A = Coordinate("acct:1", "ledger")
B = Coordinate("acct:2", "ledger")
SEG1 = "000001.fbat"
HEADER_KEYS = [
    "event_id",
    "correlation_id",
    "causation_id",
    "timestamp_us",
    "position",
    "payload_size",
    "event_kind",
    "flags",
    "content_hash",
    "payload_version",
]


@event_payload(category=0xE, type_id=0xA01, version=2)
class Typed(msgspec.Struct):
    """A typed batch item: its frame must still carry payload_version 0."""

    x: int


@upcaster(Typed, from_version=1)
def typed_v1(value: dict[str, Any]) -> dict[str, Any]:
    return {"x": -1}  # never used: version 0 decodes tolerantly, without upcasting


class Frame(NamedTuple):
    offset: int
    length: int
    body: bytes
    value: dict[str, Any]

    @property
    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = self.value["event"]["header"]
        return header

    @property
    def kind(self) -> int:
        return int(self.header["event_kind"])


def frames_of(data: bytes) -> list[Frame]:
    """Every whole, CRC-valid frame of a segment image, parsed with ``msgpack``."""
    assert data[:4] == b"FBAT"
    (header_len,) = struct.unpack_from(">I", data, 4)
    end = len(data)
    if data.endswith(b"SDX3"):
        (end,) = struct.unpack_from("<Q", data, len(data) - 16)
    pos, out = 8 + header_len, []
    while pos + 8 <= end:
        length, crc = struct.unpack_from(">II", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if length == 0 or len(body) != length or zlib.crc32(body) != crc:
            break
        out.append(Frame(pos, 8 + length, body, msgpack.unpackb(body, raw=False)))
        pos += 8 + length
    return out


def frame_bytes(value: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(value, use_bin_type=True)
    return struct.pack(">II", len(body), zlib.crc32(body)) + body


def blake(data: bytes) -> bytes:
    digest: bytes = blake3.blake3(data).digest()
    return digest


def user_entries(store: Store) -> list[IndexEntry]:
    """Everything but lifecycle events (category 0)."""
    return [e for e in store.query(Region.all()) if e.event_kind >> 12 != 0]


def ids(entries: list[IndexEntry]) -> list[int]:
    return [e.event_id for e in entries]


def seg_size(store: Store) -> int:
    return sum(p.stat().st_size for p in store.config.path.glob("*.fbat"))


def marker(kind: int, batch_id: int, count: int, timestamp_us: int) -> dict[str, Any]:
    """The marker frame the reference writes (facts3 §1.1), as a plain msgpack value."""
    bid = batch_id.to_bytes(16, "big")
    return {
        "event": {
            "header": {
                "event_id": bid,
                "correlation_id": bid,
                "causation_id": None,
                "timestamp_us": timestamp_us,
                "position": {
                    "wall_ms": timestamp_us // 1000,
                    "counter": 0,
                    "depth": 0,
                    "lane": 0,
                    "sequence": 0,
                },
                "payload_size": count,
                "event_kind": kind,
                "flags": 0,
                "content_hash": [0] * 32,
                "payload_version": 0,
            },
            "payload": [],
            "hash_chain": None,
        },
        "entity": "_batch",
        "scope": "_system",
        "receipt_extensions": {},
    }


def five_items() -> list[BatchAppendItem]:
    raw: bytes = msgpack.packb({"raw": True}, use_bin_type=True)
    return [
        BatchAppendItem.new(
            A, KIND, {"n": 0}, AppendOptions(flags=0x03, extensions={"app.tag": b"t0"})
        ),
        BatchAppendItem.typed(A, Typed(x=1)),
        BatchAppendItem.from_msgpack_bytes(B, KIND, raw, causation=PriorItem(0)),
        BatchAppendItem.new(A, KIND, [3], causation=PriorItem(2)),
        BatchAppendItem.new(B, KIND, "four", causation=0xABCDEF),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(StoreConfig(tmp_path / "s")) as opened:
        yield opened


# --- bytes on disk ----------------------------------------------------------------------------


def test_batch_markers_and_item_frames_on_disk(store: Store) -> None:
    pre = store.append(A, KIND, {"pre": 1})
    items = five_items()
    receipts = store.append_batch(items)
    first = pre.global_sequence + 1
    assert [r.global_sequence for r in receipts] == list(range(first, first + 5))

    frames = frames_of((store.config.path / SEG1).read_bytes())
    begin_at = next(i for i, f in enumerate(frames) if f.kind == SYSTEM_BATCH_BEGIN)
    begin, body, commit = (
        frames[begin_at],
        frames[begin_at + 1 : begin_at + 6],
        frames[begin_at + 6],
    )
    assert frames[begin_at + 6 :] == [commit]  # nothing after COMMIT yet

    # BEGIN and COMMIT: exactly the reference marker, byte for byte.
    for frame, kind, count in ((begin, 0x0006, 5), (commit, 0x0007, 0)):
        expected = marker(kind, first, count, frame.header["timestamp_us"])
        assert frame.value == expected
        assert list(frame.value) == ["event", "entity", "scope", "receipt_extensions"]
        assert list(frame.header) == HEADER_KEYS
        assert frame.body == msgpack.packb(expected, use_bin_type=True)
        # batch_id as u128: eight zero bytes, then the first item's global sequence (u64 BE).
        assert frame.header["event_id"] == bytes(8) + first.to_bytes(8, "big")
        assert frame.body[:3] == b"\x84\xa5e"  # a 4-key map starting with "event"
    assert begin.offset + begin.length == receipts[0].disk_pos.offset
    assert commit.offset == receipts[-1].disk_pos.offset + receipts[-1].disk_pos.length

    # Item frames: where the receipts say, flags 0 and payload_version 0 even when typed.
    timestamps = {f.header["timestamp_us"] for f in body}
    assert len(timestamps) == 1  # one clock read per batch
    for frame, item, receipt in zip(body, items, receipts, strict=True):
        header = frame.header
        assert (frame.offset, frame.length) == (receipt.disk_pos.offset, receipt.disk_pos.length)
        assert receipt.disk_pos.segment_id == 1
        assert list(header) == HEADER_KEYS
        assert header["event_id"] == receipt.event_id.to_bytes(16, "big")
        assert header["correlation_id"] == header["event_id"]
        assert header["flags"] == 0
        assert header["payload_version"] == 0
        assert header["event_kind"] == item.kind
        assert bytes(frame.value["event"]["payload"]) == item.payload
        assert header["payload_size"] == len(item.payload)
        assert bytes(header["content_hash"]) == blake(item.payload) == receipt.content_hash
        chain = frame.value["event"]["hash_chain"]
        assert bytes(chain["event_hash"]) == receipt.content_hash
        assert (frame.value["entity"], frame.value["scope"]) == (
            item.coord.entity,
            item.coord.scope,
        )
    assert body[1].kind == 0xEA01  # the typed item kept its kind, not its version
    assert body[0].value["receipt_extensions"] == {"app.tag": list(b"t0")}
    assert receipts[0].extensions == {"app.tag": b"t0"}

    # Chains: items on one entity chain to each other, continuing the entity's history.
    def link(i: int) -> tuple[bytes, int]:
        chain = body[i].value["event"]["hash_chain"]
        return bytes(chain["prev_hash"]), body[i].header["position"]["sequence"]

    assert link(0) == (pre.content_hash, 1)
    assert link(1) == (receipts[0].content_hash, 2)
    assert link(3) == (receipts[1].content_hash, 3)
    assert link(2) == (bytes(32), 0)  # B's genesis
    assert link(4) == (receipts[2].content_hash, 1)

    # Causation: PriorItem resolves to the earlier item's id; an absolute id is kept.
    causes = [f.header["causation_id"] for f in body]
    assert causes == [
        None,
        None,
        receipts[0].event_id.to_bytes(16, "big"),
        receipts[2].event_id.to_bytes(16, "big"),
        (0xABCDEF).to_bytes(16, "big"),
    ]
    read = [store.get(r.event_id).event.header for r in receipts]
    assert [h.causation_id for h in read] == [
        None,
        None,
        receipts[0].event_id,
        receipts[2].event_id,
        0xABCDEF,
    ]
    assert all(h.flags == 0 and h.payload_version == 0 for h in read)
    assert store.get(receipts[1].event_id).decode(Typed) == Typed(x=1)
    for receipt in receipts:
        assert store.verify_append_receipt(receipt).outcome is Outcome.UNSIGNED_ACCEPTED


def test_markers_are_never_visible_and_take_no_sequence(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path / "s")

    def check(store: Store, receipts: list[AppendReceipt]) -> None:
        everything = store.query(Region.all())
        assert [e.global_sequence for e in everything] == list(range(len(everything)))
        assert not [e for e in everything if e.entity == "_batch" or e.scope == "_system"]
        assert not [e for e in everything if e.event_kind in (0x0006, 0x0007)]
        assert store.by_fact(SYSTEM_BATCH_BEGIN) == []
        assert store.by_fact(SYSTEM_BATCH_COMMIT) == []
        assert store.by_entity("_batch") == []
        assert store.by_scope("_system") == []
        assert store.query_entries_after(Region.all(), None, 10_000) == everything
        assert store.query(Region.all().with_category(0)) == [
            e for e in everything if e.event_kind >> 12 == 0
        ]
        with pytest.raises(NotFound):
            store.get(receipts[0].global_sequence)  # the batch id is not an event id
        cursor = store.cursor(Region.all())
        assert cursor.poll_batch(10_000) == everything
        assert set(ids(everything)) >= {r.event_id for r in receipts}

    store = Store.open(config)
    subscription = store.subscribe_lossy(Region.all())
    receipts = store.append_batch(five_items())
    notes = [subscription.recv(timeout=2) for _ in range(5)]
    assert [n.sequence for n in notes if n] == [r.global_sequence for r in receipts]
    assert subscription.recv(timeout=0.05) is None  # no marker notifications
    check(store, receipts)
    store.close()
    with Store.open(config) as reopened:  # sealed segment: SIDX footer path
        check(reopened, receipts)
        more = reopened.append_batch(five_items())
        reopened.sync()
        reopened._abandon()
    with Store.open(config) as crashed:  # no footer: frame-scan path
        check(crashed, receipts + more)


def test_empty_batch_writes_nothing(store: Store) -> None:
    before, frontier = seg_size(store), store.frontier()
    assert store.append_batch([]) == []
    assert seg_size(store) == before
    assert store.frontier() == frontier
    nxt = store.append(A, KIND, 1)
    assert nxt.global_sequence == frontier.accepted.global_sequence + 1


# --- refusals write nothing ---------------------------------------------------------------------


def assert_refused(store: Store, items: list[BatchAppendItem], error: type[Exception]) -> None:
    before, frontier = seg_size(store), store.frontier()
    with pytest.raises(error):
        store.append_batch(items)
    assert seg_size(store) == before
    assert store.frontier() == frontier
    assert store.append(A, KIND, "probe").global_sequence == frontier.accepted.global_sequence + 1


def test_batch_max_size(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path, batch_max_size=3)) as store:
        assert_refused(store, [BatchAppendItem.new(A, KIND, i) for i in range(4)], BatchTooLarge)
        assert len(store.append_batch([BatchAppendItem.new(A, KIND, i) for i in range(3)])) == 3


def test_batch_max_bytes_counts_payload_and_extension_bytes(tmp_path: Path) -> None:
    extensions = {"app.k": b"vv"}
    ext_len = len(msgpack.packb({"app.k": [0x76, 0x76]}, use_bin_type=True))
    assert ext_len == 10
    payload: bytes = msgpack.packb("x" * 20, use_bin_type=True)  # 21 bytes
    limit = 2 * len(payload) + ext_len
    with Store.open(StoreConfig(tmp_path, batch_max_bytes=limit)) as store:

        def items(extra: int) -> list[BatchAppendItem]:
            bigger: bytes = msgpack.packb("x" * (20 + extra), use_bin_type=True)
            return [
                BatchAppendItem.from_msgpack_bytes(A, KIND, payload),
                BatchAppendItem.from_msgpack_bytes(
                    B, KIND, bigger, AppendOptions(extensions=extensions)
                ),
            ]

        assert_refused(store, items(1), BatchTooLarge)  # one byte over, because of extensions
        without_ext = [
            BatchAppendItem.from_msgpack_bytes(A, KIND, payload),
            BatchAppendItem.from_msgpack_bytes(B, KIND, payload),
        ]
        assert len(store.append_batch(without_ext)) == 2  # 42 bytes, no extension term
        assert len(store.append_batch(items(0))) == 2  # exactly at the limit


def test_cas_in_a_batch_is_refused(store: Store) -> None:
    items = [
        BatchAppendItem.new(A, KIND, 1),
        BatchAppendItem.new(A, KIND, 2, AppendOptions(expected_sequence=0)),
    ]
    assert_refused(store, items, Configuration)


def test_prior_item_must_name_an_earlier_item(store: Store) -> None:
    ok = BatchAppendItem.new(A, KIND, 1)
    for items in (
        [BatchAppendItem.new(A, KIND, 0, causation=PriorItem(0))],  # itself
        [ok, BatchAppendItem.new(A, KIND, 2, causation=PriorItem(1))],  # itself
        [ok, BatchAppendItem.new(A, KIND, 2, causation=PriorItem(5))],  # a later item
    ):
        assert_refused(store, items, InvalidCausation)


def test_keys_are_all_or_none_and_unique(store: Store) -> None:
    def keyed(key: int | None, value: int = 0) -> BatchAppendItem:
        return BatchAppendItem.new(A, KIND, value, AppendOptions(idempotency_key=key))

    assert_refused(store, [keyed(11), keyed(None)], IdempotencyPartialBatch)
    assert_refused(store, [keyed(None), keyed(12)], IdempotencyPartialBatch)
    assert_refused(store, [keyed(13), keyed(14), keyed(13)], IdempotencyPartialBatch)
    done = store.append_batch([keyed(21), keyed(22)])
    assert [r.event_id for r in done] == [21, 22]  # the key becomes the event id
    # A batch that replays only some of its keys is refused as a whole.
    assert_refused(store, [keyed(21), keyed(23)], IdempotencyPartialBatch)
    assert_refused(store, [keyed(23), keyed(22)], IdempotencyPartialBatch)


def test_whole_batch_keyed_retry_returns_the_same_receipts(tmp_path: Path) -> None:
    config = StoreConfig(tmp_path)
    items = [
        BatchAppendItem.new(
            c,
            KIND,
            {"i": i},
            AppendOptions(idempotency_key=1000 + i, extensions={"app.i": b"%d" % i}),
        )
        for i, c in enumerate((A, B, A))
    ]
    with Store.open(config) as store:
        receipts = store.append_batch(items)
        assert [r.event_id for r in receipts] == [1000, 1001, 1002]
        before, frontier = seg_size(store), store.frontier()
        changed = [
            BatchAppendItem.new(i.coord, KIND, "different", i.options) for i in items
        ]  # the payload of a retry is not compared
        assert store.append_batch(changed) == receipts
        assert store.append_batch(items) == receipts
        assert (seg_size(store), store.frontier()) == (before, frontier)
        assert len(user_entries(store)) == 3
    with Store.open(config) as store:
        before = seg_size(store)
        assert store.append_batch(items) == receipts
        assert seg_size(store) == before
        assert len(user_entries(store)) == 3


# --- crashes ----------------------------------------------------------------------------------


def crashed_batch(directory: Path) -> tuple[list[AppendReceipt], list[AppendReceipt], bytes]:
    """Two plain events, then a 3-item batch, then a crash. Returns (pre, batch, segment)."""
    store = Store.open(StoreConfig(directory))
    pre = [store.append(A, KIND, {"pre": i}) for i in range(2)]
    batch = store.append_batch(
        [
            BatchAppendItem.new(A, KIND, {"b": 0}),
            BatchAppendItem.new(B, KIND, {"b": 1}),
            BatchAppendItem.new(A, KIND, {"b": 2}, causation=PriorItem(1)),
        ]
    )
    store._abandon()
    return pre, batch, (directory / SEG1).read_bytes()


def reopen_ids(directory: Path, writable: bool) -> list[int]:
    config = StoreConfig(directory)
    opener = Store.open if writable else Store.open_read_only
    with opener(config) as store:
        return ids(user_entries(store))


def test_crash_at_every_byte_of_a_batch_keeps_all_or_nothing(tmp_path: Path) -> None:
    source = tmp_path / "source"
    pre, batch, data = crashed_batch(source)
    frames = frames_of(data)
    begin = next(f for f in frames if f.kind == SYSTEM_BATCH_BEGIN)
    commit = next(f for f in frames if f.kind == SYSTEM_BATCH_COMMIT)
    begin_start, commit_end = begin.offset, commit.offset + commit.length
    assert commit_end == len(data)
    before = [r.event_id for r in pre]
    after = before + [r.event_id for r in batch]

    work = tmp_path / "work"
    shutil.copytree(source, work)
    segment = work / SEG1
    # Read-only opens change nothing on disk, so one copy can be cut down byte by byte.
    for cut in range(commit_end, begin_start - 1, -1):
        with open(segment, "r+b") as handle:
            handle.truncate(cut)
        seen = reopen_ids(work, writable=False)
        assert seen == (after if cut == commit_end else before), cut

    # A writable open seals the torn tail and appends; check it at every 7th cut and at
    # every frame boundary inside the batch, then write on and reopen once more.
    boundaries = {f.offset for f in frames if f.offset >= begin_start} | {commit_end}
    for cut in sorted(set(range(begin_start, commit_end + 1, 7)) | boundaries):
        target = tmp_path / f"w{cut}"
        shutil.copytree(source, target)
        with open(target / SEG1, "r+b") as handle:
            handle.truncate(cut)
        expected = after if cut == commit_end else before
        with Store.open(StoreConfig(target)) as store:
            assert ids(user_entries(store)) == expected, cut
            everything = store.query(Region.all())
            assert [e.global_sequence for e in everything] == list(range(len(everything)))
            store.append(A, KIND, "later")
        assert reopen_ids(target, writable=True)[: len(expected)] == expected
        shutil.rmtree(target)


def splice_begin_count(frame: Frame, count: int) -> bytes:
    value: dict[str, Any] = msgpack.unpackb(frame.body, raw=False)
    assert frame_bytes(value)[8:] == frame.body  # msgpack round-trips the marker exactly
    value["event"]["header"]["payload_size"] = count
    return frame_bytes(value)


@pytest.mark.parametrize(
    "variant",
    ["item_missing", "count_lower", "count_higher", "extra_item", "no_commit_at_eof"],
)
def test_a_batch_whose_count_does_not_match_is_discarded(tmp_path: Path, variant: str) -> None:
    source = tmp_path / "source"
    pre, batch, data = crashed_batch(source)
    frames = frames_of(data)
    i = next(n for n, f in enumerate(frames) if f.kind == SYSTEM_BATCH_BEGIN)
    begin, items, commit = frames[i], frames[i + 1 : i + 4], frames[i + 4]

    def raw(f: Frame) -> bytes:
        return data[f.offset : f.offset + f.length]

    head = data[: begin.offset]
    parts = {
        "item_missing": [raw(begin), raw(items[0]), raw(items[2]), raw(commit)],
        "count_lower": [splice_begin_count(begin, 2), *map(raw, items), raw(commit)],
        "count_higher": [splice_begin_count(begin, 4), *map(raw, items), raw(commit)],
        "extra_item": [raw(begin), *map(raw, items), raw(items[2]), raw(commit)],
        "no_commit_at_eof": [raw(begin), *map(raw, items)],
    }[variant]
    (source / SEG1).write_bytes(head + b"".join(parts))
    expected = [r.event_id for r in pre]
    assert reopen_ids(source, writable=False) == expected
    with Store.open(StoreConfig(source)) as store:
        assert ids(user_entries(store)) == expected
        assert store.append(B, KIND, "after").global_sequence == len(store.query(Region.all())) - 1
    assert reopen_ids(source, writable=True)[:2] == expected
    assert batch  # the batch itself had been acknowledged before the damage


def test_nested_begin_discards_only_the_open_batch(tmp_path: Path) -> None:
    """Reference recovery: a second BEGIN drops what the first staged and starts afresh."""
    source = tmp_path / "source"
    pre, batch, data = crashed_batch(source)
    frames = frames_of(data)
    i = next(n for n, f in enumerate(frames) if f.kind == SYSTEM_BATCH_BEGIN)
    begin, items, commit = frames[i], frames[i + 1 : i + 4], frames[i + 4]

    def raw(f: Frame) -> bytes:
        return data[f.offset : f.offset + f.length]

    tail = [raw(begin), raw(items[0]), splice_begin_count(begin, 2), raw(items[1])]
    tail += [raw(items[2]), raw(commit)]
    (source / SEG1).write_bytes(data[: begin.offset] + b"".join(tail))
    expected = [r.event_id for r in pre] + [batch[1].event_id, batch[2].event_id]
    assert reopen_ids(source, writable=False) == expected


def test_excess_items_without_commit_do_not_swallow_later_events(tmp_path: Path) -> None:
    """Reference recovery discards a batch at its first excess item; frames after that are
    ordinary committed events again (facts3 §1 / reader scan ``stage_entry``)."""
    source = tmp_path / "source"
    store = Store.open(StoreConfig(source))
    pre = store.append(A, KIND, "pre")
    store.append_batch([BatchAppendItem.new(A, KIND, 0), BatchAppendItem.new(A, KIND, 1)])
    later = store.append(B, KIND, "later")
    store._abandon()
    data = (source / SEG1).read_bytes()
    frames = frames_of(data)
    i = next(n for n, f in enumerate(frames) if f.kind == SYSTEM_BATCH_BEGIN)
    begin, items, commit, tail = frames[i], frames[i + 1 : i + 3], frames[i + 3], frames[i + 4]
    assert commit.kind == SYSTEM_BATCH_COMMIT
    assert tail.header["event_id"] == later.event_id.to_bytes(16, "big")
    # BEGIN(1), two items, no COMMIT, then the later single append.
    damaged = data[: begin.offset] + splice_begin_count(begin, 1)
    damaged += b"".join(data[f.offset : f.offset + f.length] for f in (*items, tail))
    (source / SEG1).write_bytes(damaged)
    assert reopen_ids(source, writable=False) == [pre.event_id, later.event_id]
