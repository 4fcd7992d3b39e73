"""An independent writer and reader of reference-format batpak store directories.

Built only from spec/format.md and the research notes on the Rust reference, with the
``msgpack`` library, ``struct``, ``zlib.crc32`` and ``blake3``; it never imports batpak. A
``RefStoreBuilder`` plays the part of the Rust writer: sessions (one new segment each, OPEN
first, CLOSE plus an SDX3 footer at the end), single appends, batches (BEGIN, items, COMMIT),
rotation, crashes with torn tails, and the side files (``store.meta``, ``.batpak.lock``,
``index.fbati``). It records every committed event as a ``RefEvent`` so tests can compare what
a reader shows against what the writer put on disk. ``parse_segment`` reads segment files back
without batpak, to check the on-disk invariants of whatever wrote them.
"""

from __future__ import annotations

import itertools
import random
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import blake3
import msgpack  # type: ignore[import-untyped]

ZERO32 = bytes(32)
LIFECYCLE_ENTITY = "batpak:store"
LIFECYCLE_SCOPE = "batpak:lifecycle"
BATCH_ENTITY = "_batch"
BATCH_SCOPE = "_system"
KIND_DATA = 0x1000
KIND_BATCH_BEGIN = 0x0006
KIND_BATCH_COMMIT = 0x0007
KIND_OPEN = 0x0008
KIND_CLOSE = 0x0009
MARKER_KINDS = (KIND_BATCH_BEGIN, KIND_BATCH_COMMIT)

FRAME_HEAD = struct.Struct(">II")
SIDX_ROW = struct.Struct("<16sIIHQIII32s32sQIQ16s16s")  # 162 bytes, all little-endian
SIDX_TRAILER = struct.Struct("<QI4s")  # string_table_offset, entry_count, magic
SIDE_PREFIX = struct.Struct("<6sHI")  # magic, version LE, crc32 LE of the body
FBATI_TAIL_V5 = struct.Struct("<QQQIQQQQ")  # 60 bytes
FBATI_ENTRY_V5 = struct.Struct("<16sIIHQIII32s32sQQIQ16s16sQQ32s")  # 218 bytes

HEADER_KEYS_10 = (
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
)
FRAME_KEYS = ("event", "entity", "scope", "receipt_extensions")
EVENT_KEYS = ("header", "payload", "hash_chain")
POSITION_KEYS = ("wall_ms", "counter", "depth", "lane", "sequence")
OPEN_REPORT_KEYS = (
    "path",
    "restored_entries",
    "tail_entries",
    "elapsed_us",
    "phase_plan_build_us",
    "phase_interner_us",
    "phase_restore_index_us",
    "phase_hidden_ranges_us",
    "unknown_reserved_system_kind_fallbacks",
    "unknown_reserved_system_kind_histogram",
    "unknown_reserved_effect_kind_fallbacks",
    "unknown_reserved_effect_kind_histogram",
    "cumulative_unknown_reserved_system_kind_fallbacks",
    "cumulative_unknown_reserved_system_kind_histogram",
    "cumulative_unknown_reserved_effect_kind_fallbacks",
    "cumulative_unknown_reserved_effect_kind_histogram",
)

FooterKind = Literal["sdx3", "sdx2", "none"]


# -- encoding primitives -------------------------------------------------------------------


def pack(obj: object) -> bytes:
    """``rmp_serde::to_vec_named`` bytes: dicts in insertion order, ``bytes`` as bin."""
    out = msgpack.packb(obj, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def unpack(data: bytes) -> Any:
    """Decode one msgpack value (bin as bytes, str as str, maps with any key type)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def b3(data: bytes) -> bytes:
    out = blake3.blake3(data).digest()
    assert isinstance(out, bytes)
    return out


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFF_FFFF


def segment_name(segment_id: int) -> str:
    return f"{segment_id:06d}.fbat"


def side_file(magic: bytes, version: int, body: bytes) -> bytes:
    """The 12-byte side-file prefix followed by ``body``."""
    return SIDE_PREFIX.pack(magic, version, crc32(body)) + body


def uuid7(rng: random.Random, now_us: int) -> int:
    """A UUIDv7 as u128: 48-bit Unix ms, version 7, 12 random bits, RFC variant, 62 random."""
    ms = max(now_us, 0) // 1000
    return (
        (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    )


def frame_bytes(body: bytes) -> bytes:
    """``len u32 BE ‖ crc32 u32 BE (msgpack only) ‖ msgpack``."""
    return FRAME_HEAD.pack(len(body), crc32(body)) + body


def segment_header(segment_id: int, created_ns: int) -> bytes:
    body = pack({"version": 1, "flags": 0, "created_ns": created_ns, "segment_id": segment_id})
    return b"FBAT" + struct.pack(">I", len(body)) + body


# -- what the writer committed -------------------------------------------------------------


@dataclass(frozen=True)
class RefEvent:
    """One frame the reference writer put on disk, with everything a reader should show."""

    event_id: int
    correlation_id: int
    causation_id: int | None
    entity: str
    scope: str
    kind: int
    payload: bytes
    payload_version: int
    flags: int
    timestamp_us: int
    wall_ms: int
    depth: int
    lane: int
    sequence: int
    prev_hash: bytes
    event_hash: bytes
    extensions: dict[str, bytes]
    segment_id: int
    offset: int
    length: int
    true_sequence: int
    """The global sequence the writer assigned (the SDX3 row value)."""
    legacy_header: bool = False

    @property
    def chain_key(self) -> tuple[str, int]:
        return (self.entity, self.lane)


@dataclass(frozen=True)
class BatchItem:
    entity: str
    scope: str
    payload: bytes
    kind: int = KIND_DATA
    extensions: Mapping[str, bytes] = field(default_factory=dict)


@dataclass
class _Head:
    event_hash: bytes
    sequence: int
    wall_ms: int


@dataclass
class _OpenSegment:
    segment_id: int
    data: bytearray
    rows: list[RefEvent] = field(default_factory=list)


def header_map(
    *,
    event_id: int,
    correlation_id: int,
    causation_id: int | None,
    timestamp_us: int,
    position: tuple[int, int, int, int, int],
    payload_size: int,
    kind: int,
    flags: int,
    content_hash: bytes,
    payload_version: int | None,
) -> dict[str, object]:
    wall_ms, counter, depth, lane, sequence = position
    header: dict[str, object] = {
        "event_id": event_id.to_bytes(16, "big"),
        "correlation_id": correlation_id.to_bytes(16, "big"),
        "causation_id": None if causation_id is None else causation_id.to_bytes(16, "big"),
        "timestamp_us": timestamp_us,
        "position": {
            "wall_ms": wall_ms,
            "counter": counter,
            "depth": depth,
            "lane": lane,
            "sequence": sequence,
        },
        "payload_size": payload_size,
        "event_kind": kind,
        "flags": flags,
        "content_hash": list(content_hash),
    }
    if payload_version is not None:
        header["payload_version"] = payload_version
    return header


def _frame_map(
    header: dict[str, object],
    payload: bytes,
    chain: tuple[bytes, bytes] | None,
    entity: str,
    scope: str,
    extensions: Mapping[str, bytes],
) -> bytes:
    ordered = {k: list(extensions[k]) for k in sorted(extensions, key=str.encode)}
    return pack(
        {
            "event": {
                "header": header,
                "payload": list(payload),
                "hash_chain": (
                    None
                    if chain is None
                    else {"prev_hash": list(chain[0]), "event_hash": list(chain[1])}
                ),
            },
            "entity": entity,
            "scope": scope,
            "receipt_extensions": ordered,
        }
    )


def sidx_footer(rows: Sequence[RefEvent], string_table_offset: int, magic: bytes) -> bytes:
    """An SDX3 (with CRC) or legacy SDX2 (without) footer for ``rows``."""
    strings: dict[str, int] = {}
    for row in rows:
        strings.setdefault(row.entity, len(strings))
        strings.setdefault(row.scope, len(strings))
    table = pack(list(strings))
    packed = b"".join(
        SIDX_ROW.pack(
            r.event_id.to_bytes(16, "little"),
            strings[r.entity],
            strings[r.scope],
            r.kind,
            r.wall_ms,
            r.sequence,
            r.lane,
            r.depth,
            r.prev_hash,
            r.event_hash,
            r.offset,
            r.length,
            r.true_sequence,
            r.correlation_id.to_bytes(16, "little"),
            (r.causation_id or 0).to_bytes(16, "little"),
        )
        for r in rows
    )
    crc = struct.pack("<I", crc32(table + packed)) if magic == b"SDX3" else b""
    return table + packed + crc + SIDX_TRAILER.pack(string_table_offset, len(rows), magic)


# -- the builder ---------------------------------------------------------------------------


class RefStoreBuilder:
    """Writes a store directory the way the Rust reference would, step by step.

    The clock is deterministic (``start_us`` plus ``step_us`` per event) and ids come from a
    seeded RNG, so a scenario builds the same bytes every time.
    """

    def __init__(
        self,
        directory: Path,
        *,
        seed: int = 0,
        start_us: int = 1_750_000_000_000_000,
        step_us: int = 1_237,
        lineage: int | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._rng = random.Random(seed)
        self._now_us = start_us
        self._step_us = step_us
        self._heads: dict[tuple[str, int], _Head] = {}
        self._next_sequence = 0
        self._segment: _OpenSegment | None = None
        self._max_segment_id = 0
        self._last_close: tuple[int, int] | None = None
        self.lineage = lineage if lineage is not None else uuid7(self._rng, start_us)
        self.events: list[RefEvent] = []
        """Committed, visible events in log order (lifecycle events included)."""
        self.discarded: list[RefEvent] = []
        """Frames on disk that a reader must never show (failed batches, torn frames)."""
        self.footers: dict[int, FooterKind] = {}
        self.complete: dict[int, bool] = {}
        self.legacy_headers = False
        """While True, every frame written gets a 9-key header (no payload_version)."""
        self.written_indexes: list[bytes] = []

    # -- time, ids, chains ----------------------------------------------------------------

    def tick(self) -> int:
        self._now_us += self._step_us
        return self._now_us

    def head(self, entity: str, lane: int = 0) -> tuple[bytes, int] | None:
        """(event_hash, sequence) of the newest committed event on (entity, lane)."""
        found = self._heads.get((entity, lane))
        return None if found is None else (found.event_hash, found.sequence)

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    @property
    def max_segment_id(self) -> int:
        return self._max_segment_id

    @property
    def segment(self) -> _OpenSegment:
        if self._segment is None:
            raise RuntimeError("no open segment: call begin_session() first")
        return self._segment

    def _build(
        self,
        heads: dict[tuple[str, int], _Head],
        sequence: int,
        entity: str,
        scope: str,
        kind: int,
        payload: bytes,
        *,
        now_us: int,
        payload_version: int = 0,
        flags: int = 0,
        extensions: Mapping[str, bytes] | None = None,
        lane: int = 0,
        depth: int = 0,
        legacy_header: bool | None = None,
        event_id: int | None = None,
        correlation_id: int | None = None,
        causation_id: int | None = None,
    ) -> tuple[bytes, RefEvent]:
        legacy = self.legacy_headers if legacy_header is None else legacy_header
        head = heads.get((entity, lane))
        wall_ms = now_us // 1000 if head is None else max(now_us // 1000, head.wall_ms)
        chain_seq = 0 if head is None else head.sequence + 1
        prev = ZERO32 if head is None else head.event_hash
        content = b3(payload)
        eid = uuid7(self._rng, now_us) if event_id is None else event_id
        corr = eid if correlation_id is None else correlation_id
        ext = dict(extensions or {})
        header = header_map(
            event_id=eid,
            correlation_id=corr,
            causation_id=causation_id,
            timestamp_us=now_us,
            position=(wall_ms, 0, depth, lane, chain_seq),
            payload_size=len(payload),
            kind=kind,
            flags=flags,
            content_hash=content,
            payload_version=None if legacy else payload_version,
        )
        frame = frame_bytes(_frame_map(header, payload, (prev, content), entity, scope, ext))
        segment = self.segment
        event = RefEvent(
            event_id=eid,
            correlation_id=corr,
            causation_id=causation_id,
            entity=entity,
            scope=scope,
            kind=kind,
            payload=payload,
            payload_version=0 if legacy else payload_version,
            flags=flags,
            timestamp_us=now_us,
            wall_ms=wall_ms,
            depth=depth,
            lane=lane,
            sequence=chain_seq,
            prev_hash=prev,
            event_hash=content,
            extensions=ext,
            segment_id=segment.segment_id,
            offset=len(segment.data),
            length=len(frame),
            true_sequence=sequence,
            legacy_header=legacy,
        )
        heads[(entity, lane)] = _Head(content, chain_seq, wall_ms)
        return frame, event

    def _write(self, frame: bytes) -> None:
        self.segment.data.extend(frame)

    def _commit(self, event: RefEvent) -> None:
        self.events.append(event)
        if event.segment_id == self.segment.segment_id:
            # An item an older writer left in the previous segment (a batch that spanned a
            # rotation) gets no SIDX row: that segment was sealed before the COMMIT.
            self.segment.rows.append(event)
        self._next_sequence = max(self._next_sequence, event.true_sequence + 1)

    # -- sessions ---------------------------------------------------------------------------

    def _new_segment(self) -> None:
        self._max_segment_id += 1
        header = segment_header(self._max_segment_id, self.tick() * 1000)
        self._segment = _OpenSegment(self._max_segment_id, bytearray(header))

    def begin_session(self, open_path: str = "Rebuild") -> RefEvent:
        """A writable open: a new segment (max id + 1) whose first frame is OPEN_COMPLETED."""
        if self._segment is not None:
            raise RuntimeError("a session is already open")
        self._new_segment()
        now_ms = self.tick() // 1000
        recovered_ms = max((e.wall_ms for e in self.events), default=0)
        close_ms = self._last_close[0] if self._last_close else 0
        wall_ms = max(now_ms, recovered_ms, close_ms)
        report: dict[str, object] = {
            "path": open_path,
            "restored_entries": len(self.events),
            "tail_entries": 0,
        }
        for key in OPEN_REPORT_KEYS[3:8]:
            report[key] = self._rng.randrange(1, 5000)
        for key in OPEN_REPORT_KEYS[8:]:
            report[key] = {} if key.endswith("histogram") else 0
        return self._lifecycle(KIND_OPEN, pack(report), wall_ms)

    def _lifecycle(self, kind: int, payload: bytes, wall_ms: int) -> RefEvent:
        frame, event = self._build(
            self._heads,
            self._next_sequence,
            LIFECYCLE_ENTITY,
            LIFECYCLE_SCOPE,
            kind,
            payload,
            now_us=wall_ms * 1000,
        )
        self._write(frame)
        self._commit(event)
        return event

    def end_session(self, footer: FooterKind = "sdx3") -> RefEvent:
        """A clean close: CLOSE_COMPLETED with the last visible HLC, then the footer."""
        last = self.events[-1]
        self._last_close = (last.wall_ms, last.true_sequence)
        payload = pack({"wall_ms": last.wall_ms, "global_sequence": last.true_sequence})
        event = self._lifecycle(KIND_CLOSE, payload, last.wall_ms)
        self._seal(footer)
        return event

    def rotate(self, footer: FooterKind = "sdx3") -> None:
        """Seal the active segment with a footer and continue in segment id + 1."""
        self._seal(footer)
        self._new_segment()

    def crash(self, torn: bytes = b"") -> None:
        """The process dies: no CLOSE, no footer; ``torn`` bytes end the segment."""
        segment = self.segment
        segment.data.extend(torn)
        self._flush(segment)
        self.footers[segment.segment_id] = "none"
        self.complete[segment.segment_id] = False
        self._segment = None

    def crash_at_create(self) -> None:
        """A writable open that died right after creating its segment: header only."""
        if self._segment is not None:
            raise RuntimeError("a session is already open")
        self._new_segment()
        self.crash()

    def crash_torn(self, entity: str, scope: str, payload: bytes, keep: int) -> RefEvent:
        """Crash while writing the next frame: only its first ``keep`` bytes reach the disk."""
        frame, event = self._build(
            dict(self._heads),
            self._next_sequence,
            entity,
            scope,
            KIND_DATA,
            payload,
            now_us=self.tick(),
        )
        assert 0 < keep < len(frame)
        self.discarded.append(event)
        self.crash(frame[:keep])
        return event

    def _seal(self, footer: FooterKind) -> None:
        segment = self.segment
        offset = len(segment.data)
        rows = segment.rows
        if footer != "none":
            magic = b"SDX3" if footer == "sdx3" else b"SDX2"
            segment.data.extend(sidx_footer(rows, offset, magic))
        self.footers[segment.segment_id] = footer
        ends = [r.offset + r.length for r in rows]
        self.complete[segment.segment_id] = bool(ends) and max(ends) == offset
        self._flush(segment)
        self._segment = None

    def _flush(self, segment: _OpenSegment) -> None:
        (self.directory / segment_name(segment.segment_id)).write_bytes(bytes(segment.data))

    # -- appends ------------------------------------------------------------------------------

    def append(
        self,
        entity: str,
        scope: str,
        payload: bytes,
        *,
        kind: int = KIND_DATA,
        payload_version: int = 0,
        flags: int = 0,
        extensions: Mapping[str, bytes] | None = None,
        lane: int = 0,
        depth: int = 0,
        legacy_header: bool | None = None,
        correlation_id: int | None = None,
        causation_id: int | None = None,
    ) -> RefEvent:
        frame, event = self._build(
            self._heads,
            self._next_sequence,
            entity,
            scope,
            kind,
            payload,
            now_us=self.tick(),
            payload_version=payload_version,
            flags=flags,
            extensions=extensions,
            lane=lane,
            depth=depth,
            legacy_header=legacy_header,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        self._write(frame)
        self._commit(event)
        return event

    def _marker(self, kind: int, batch_id: int, count: int, now_ms: int) -> bytes:
        # Event::new(header, Vec::new()): no payload bytes (the empty int array ``90``) and
        # the header's content_hash left at zeros; markers carry no hash chain.
        payload = b""
        header = header_map(
            event_id=batch_id,
            correlation_id=batch_id,
            causation_id=None,
            timestamp_us=now_ms * 1000,
            position=(now_ms, 0, 0, 0, 0),
            payload_size=count,
            kind=kind,
            flags=0,
            content_hash=ZERO32,
            payload_version=None if self.legacy_headers else 0,
        )
        return frame_bytes(_frame_map(header, payload, None, BATCH_ENTITY, BATCH_SCOPE, {}))

    def batch(
        self,
        items: Sequence[BatchItem],
        *,
        commit: bool = True,
        declared: int | None = None,
        rotate_after: int | None = None,
    ) -> list[RefEvent]:
        """BEGIN (payload_size = ``declared`` or the item count), the items, then COMMIT.

        Item frames carry flags 0 and payload_version 0. The batch is visible only when a
        COMMIT follows and the declared count equals the number of items; otherwise its
        items go to ``discarded`` (a reader must drop them). ``rotate_after=k`` seals the
        segment after the k-th item, as older writers did when a batch crossed the size limit
        (the reference checks rotation before every item frame), so the batch spans two
        segments.
        """
        count = len(items) if declared is None else declared
        visible = commit and count == len(items)
        batch_id = self._next_sequence
        now_us = self.tick()
        now_ms = now_us // 1000
        self._write(self._marker(KIND_BATCH_BEGIN, batch_id, count, now_ms))
        heads = self._heads if visible else dict(self._heads)
        events = []
        for i, item in enumerate(items):
            if i == rotate_after:
                self.rotate()
            frame, event = self._build(
                heads,
                batch_id + i,
                item.entity,
                item.scope,
                item.kind,
                item.payload,
                now_us=now_us,
                extensions=item.extensions,
            )
            self._write(frame)
            events.append(event)
        if commit:
            self._write(self._marker(KIND_BATCH_COMMIT, batch_id, 0, now_ms))
        for event in events:
            if visible:
                self._commit(event)
            else:
                self.discarded.append(event)
        return events

    def raw_frame(self, body: bytes) -> None:
        """A frame with a valid CRC around arbitrary ``body`` bytes."""
        self._write(frame_bytes(body))

    def orphan_commit(self) -> None:
        """A COMMIT marker with no BEGIN before it (recovery skips it)."""
        now_ms = self.tick() // 1000
        self._write(self._marker(KIND_BATCH_COMMIT, self._next_sequence, 0, now_ms))

    def reserve_sequences(self, n: int) -> None:
        """Leave a gap of ``n`` global sequences, as a failed batch reservation does."""
        self._next_sequence += n

    # -- side files -------------------------------------------------------------------------

    def write_store_meta(self) -> bytes:
        body = pack(
            {
                "lineage": self.lineage.to_bytes(16, "big"),
                "idemp_authority": None,
                "last_compaction_commit": None,
            }
        )
        data = side_file(b"FBATSM", 1, body)
        assert len(data) == 80
        (self.directory / "store.meta").write_bytes(data)
        return data

    def write_lock(self) -> None:
        (self.directory / ".batpak.lock").write_bytes(b"")

    def write_index(self, data: bytes | None = None) -> bytes:
        """``index.fbati``: ``data`` verbatim, or a v5 index of the current state."""
        if data is None:
            data = self.index_fbati_v5()
        (self.directory / "index.fbati").write_bytes(data)
        self.written_indexes.append(data)
        return data

    def index_fbati_v5(self) -> bytes:
        """The mmap index a clean close writes (watermark = newest segment and its length)."""
        entries = sorted(self.events, key=lambda e: e.true_sequence)
        strings: dict[str, int] = {"": 0}
        for e in entries:
            strings.setdefault(e.entity, len(strings))
            strings.setdefault(e.scope, len(strings))
        interner = pack(list(strings))
        n = len(entries)
        k = min(max(-(-n // 65536), 1), 32)
        chunks = []
        start = 0
        for i in range(k):
            size = n // k + (1 if i < n % k else 0)
            if size:
                chunk = entries[start : start + size]
                chunks.append(
                    {
                        "start": start,
                        "len": size,
                        "first_sequence": chunk[0].true_sequence,
                        "last_sequence": chunk[-1].true_sequence,
                    }
                )
            start += size
        by_entity = sorted(
            entries, key=lambda e: (e.entity.encode(), e.wall_ms, e.sequence, e.event_id)
        )
        runs: list[dict[str, object]] = []
        for entity in dict.fromkeys(e.entity for e in by_entity):
            start = next(i for i, e in enumerate(by_entity) if e.entity == entity)
            run = [e for e in by_entity if e.entity == entity]
            runs.append(
                {
                    "entity": entity,
                    "start": start,
                    "len": len(run),
                    "first_sequence": run[0].true_sequence,
                    "last_sequence": run[-1].true_sequence,
                }
            )
        summary = pack(
            {
                "routing": {
                    "entry_count": n,
                    "chunk_count": len(chunks),
                    "chunks": chunks,
                    "entity_runs": runs,
                },
                "reserved_kind_fallbacks": {
                    "system": 0,
                    "effect": 0,
                    "system_histogram": {},
                    "effect_histogram": {},
                },
            }
        )
        blob = bytearray()
        rows = []
        for e in entries:
            ext = b""
            if e.extensions:
                ext = pack({k: list(e.extensions[k]) for k in sorted(e.extensions, key=str.encode)})
            ext_offset = len(blob) if ext else 0
            blob.extend(ext)
            rows.append(
                FBATI_ENTRY_V5.pack(
                    e.event_id.to_bytes(16, "little"),
                    strings[e.entity],
                    strings[e.scope],
                    e.kind,
                    e.wall_ms,
                    e.sequence,
                    e.lane,
                    e.depth,
                    e.prev_hash,
                    e.event_hash,
                    e.segment_id,
                    e.offset,
                    e.length,
                    e.true_sequence,
                    e.correlation_id.to_bytes(16, "little"),
                    (e.causation_id or 0).to_bytes(16, "little"),
                    ext_offset,
                    len(ext),
                    b3(ext) if ext else ZERO32,
                )
            )
        watermark_id = self._max_segment_id
        watermark_path = self.directory / segment_name(watermark_id)
        watermark_offset = watermark_path.stat().st_size if watermark_path.exists() else 0
        tail = FBATI_TAIL_V5.pack(
            watermark_id,
            watermark_offset,
            self._next_sequence,
            len(strings),
            n,
            len(interner),
            len(summary),
            len(blob),
        )
        body = tail + interner + summary + bytes(blob) + b"".join(rows)
        return side_file(b"FBATIX", 5, body)

    # -- expectations ---------------------------------------------------------------------------

    def expected_sequences(self) -> list[int]:
        """The global sequence a cold start gives each event in ``events`` (format.md §7.2).

        If every segment carries a CRC-valid SDX3 footer, the rows are the truth: the
        reference's parallel sealed-SIDX rebuild reads them without the coverage check
        (research facts §6; cold_start rebuild ``read_sealed_sidx_entries_parallel``).
        Otherwise each segment with a trusted SDX3 footer whose rows reach its frame boundary
        ("Complete") keeps its row values and every other frame gets max_seen + 1 (from 0)
        in segment and file order (format.md §7.2).
        """
        all_sdx3 = all(kind == "sdx3" for kind in self.footers.values())
        trusted = {
            sid
            for sid, kind in self.footers.items()
            if kind == "sdx3" and (all_sdx3 or self.complete[sid])
        }
        out: list[int] = []
        max_seen: int | None = None
        for event in self.events:
            if event.segment_id in trusted:
                seq = event.true_sequence
            else:
                seq = 0 if max_seen is None else max_seen + 1
            out.append(seq)
            max_seen = seq if max_seen is None else max(max_seen, seq)
        return out

    def chains(self) -> dict[tuple[str, int], list[RefEvent]]:
        """Committed events grouped by (entity, lane), oldest first."""
        out: dict[tuple[str, int], list[RefEvent]] = {}
        for event in self.events:
            out.setdefault(event.chain_key, []).append(event)
        return out


KILL9_GROUPS = (1, 1, 3, 1, 2)
"""The kill -9 child's ops in a cycle: 1 = a single append, n > 1 = an atomic n-item batch."""


def kill9_boundaries(limit: int) -> set[int]:
    """Item counts at which the child has finished an op: the only legal visible counts."""
    out = {0}
    total = 0
    for size in itertools.cycle(KILL9_GROUPS):
        total += size
        out.add(total)
        if total > limit:
            return out
    raise AssertionError("unreachable")


def kill9_payload(round_no: int, i: int) -> bytes:
    """The payload the kill -9 child writes as its ``i``-th append in round ``round_no``."""
    return pack(
        {
            "round": round_no,
            "i": i,
            "entity": f"acct:{i % 3}",
            "pad": bytes((round_no * 31 + i + j) & 0xFF for j in range(i % 61)),
        }
    )


# -- an independent reader -----------------------------------------------------------------


@dataclass(frozen=True)
class ParsedFrame:
    offset: int
    length: int
    body: bytes
    value: Any


@dataclass(frozen=True)
class ParsedRow:
    event_id: int
    entity: str
    scope: str
    kind: int
    wall_ms: int
    clock: int
    lane: int
    depth: int
    prev_hash: bytes
    event_hash: bytes
    frame_offset: int
    frame_length: int
    global_sequence: int
    correlation_id: int
    causation_id: int


@dataclass(frozen=True)
class ParsedFooter:
    magic: bytes
    string_table_offset: int
    crc_ok: bool
    rows: list[ParsedRow]


@dataclass(frozen=True)
class ParsedSegment:
    segment_id: int
    size: int
    header: Any
    header_bytes: bytes
    frames_start: int
    frames: list[ParsedFrame]
    frames_end: int
    """Where the CRC-valid frames stop; less than the frame region's end means torn bytes."""
    region_end: int
    footer: ParsedFooter | None


def parse_footer(data: bytes, frames_start: int) -> ParsedFooter | None:
    """The trailing SIDX footer (format.md §7.1), or None when there is none."""
    if len(data) - frames_start < SIDX_TRAILER.size:
        return None
    offset, count, magic = SIDX_TRAILER.unpack_from(data, len(data) - SIDX_TRAILER.size)
    if magic not in (b"SDX2", b"SDX3"):
        return None
    crc_size = 4 if magic == b"SDX3" else 0
    rows_start = len(data) - SIDX_TRAILER.size - crc_size - count * SIDX_ROW.size
    if rows_start < frames_start or not frames_start <= offset <= rows_start:
        return None
    crc_ok = False
    if magic == b"SDX3":
        (stored,) = struct.unpack_from("<I", data, rows_start + count * SIDX_ROW.size)
        crc_ok = stored == crc32(data[offset : rows_start + count * SIDX_ROW.size])
    table = unpack(data[offset:rows_start])
    rows = []
    for i in range(count):
        f = SIDX_ROW.unpack_from(data, rows_start + i * SIDX_ROW.size)
        rows.append(
            ParsedRow(
                event_id=int.from_bytes(f[0], "little"),
                entity=table[f[1]],
                scope=table[f[2]],
                kind=f[3],
                wall_ms=f[4],
                clock=f[5],
                lane=f[6],
                depth=f[7],
                prev_hash=f[8],
                event_hash=f[9],
                frame_offset=f[10],
                frame_length=f[11],
                global_sequence=f[12],
                correlation_id=int.from_bytes(f[13], "little"),
                causation_id=int.from_bytes(f[14], "little"),
            )
        )
    return ParsedFooter(magic, offset, crc_ok, rows)


def parse_segment(path: Path) -> ParsedSegment:
    """Read a segment file: header, CRC-valid frames (stopping at the first bad one), footer.

    A file holding only a prefix of a segment header (a crash while creating it) parses as
    a segment with no header (``header`` None) and no frames.
    """
    data = path.read_bytes()
    segment_id = int(path.name.split(".")[0])
    header_len = struct.unpack_from(">I", data, 4)[0] if len(data) >= 8 else 0
    if data[:4] != b"FBAT"[: len(data[:4])]:
        raise ValueError(f"{path.name}: no FBAT magic")
    if len(data) < 8 or 8 + header_len > len(data):
        # A writer died while creating this segment: only part of its header exists.
        size = len(data)
        return ParsedSegment(segment_id, size, None, b"", size, [], size, size, None)
    header_bytes = data[8 : 8 + header_len]
    start = 8 + header_len
    footer = parse_footer(data, start)
    end = footer.string_table_offset if footer is not None else len(data)
    frames = []
    pos = start
    while end - pos >= 8:
        length, crc = FRAME_HEAD.unpack_from(data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if length == 0 or pos + 8 + length > end or crc32(body) != crc:
            break
        frames.append(ParsedFrame(pos, 8 + length, body, unpack(body)))
        pos += 8 + length
    return ParsedSegment(
        segment_id=segment_id,
        size=len(data),
        header=unpack(header_bytes),
        header_bytes=header_bytes,
        frames_start=start,
        frames=frames,
        frames_end=pos,
        region_end=end,
        footer=footer,
    )


def segment_files(directory: Path) -> list[Path]:
    """Segment files (``NNNNNN.fbat``, base-10 stem) in id order."""
    found = [p for p in directory.iterdir() if p.suffix == ".fbat" and p.stem.isdigit()]
    return sorted(found, key=lambda p: int(p.stem))


def frame_fields(frame: ParsedFrame) -> dict[str, Any]:
    """The frame's FramePayload flattened: coordinate, header fields, payload, chain."""
    value = frame.value
    event = value["event"]
    header = event["header"]
    chain = event["hash_chain"]
    return {
        "entity": value["entity"],
        "scope": value["scope"],
        "event_id": int.from_bytes(header["event_id"], "big"),
        "correlation_id": int.from_bytes(header["correlation_id"], "big"),
        "kind": header["event_kind"],
        "payload": bytes(event["payload"]),
        "sequence": header["position"]["sequence"],
        "lane": header["position"]["lane"],
        "wall_ms": header["position"]["wall_ms"],
        "content_hash": bytes(header["content_hash"]),
        "prev_hash": None if chain is None else bytes(chain["prev_hash"]),
        "event_hash": None if chain is None else bytes(chain["event_hash"]),
        "extensions": {k: bytes(v) for k, v in value["receipt_extensions"].items()},
    }
