"""Store: the public front of the journal. It wires lifecycle, writer, index and reads."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self, TypeVar

import msgspec
from zlib_ng.zlib_ng import crc32

from batpak import canonical
from batpak.batch import BatchAppendItem, PriorItem
from batpak.config import StoreConfig, system_clock_us
from batpak.coordinate import Coordinate, Region
from batpak.errors import (
    BatchTooLarge,
    Configuration,
    CorruptFrame,
    CrcMismatch,
    IdempotencyPartialBatch,
    IdempotencyRequired,
    InvalidCausation,
    InvalidKind,
    InvalidPayload,
    Io,
    NotFound,
    PayloadTooLarge,
    ReadOnlyStore,
    ReservedKind,
    StoreClosed,
    StoreError,
    WaitTimeout,
)
from batpak.event import ZERO_HASH, DagPosition, Event, EventHeader, StoredEvent
from batpak.frame import FrameDecodeError, decode_body, decode_chain, decode_load, payload_bytes
from batpak.frontier import ORIGIN, Frontier, HlcPoint, Watermark, Watermarks
from batpak.fs import Lock
from batpak.kinds import SYSTEM_OPEN_COMPLETED, EventKind, is_reserved
from batpak.options import DEFAULT_OPTIONS, AppendOptions
from batpak.payload import kind_of, verify_registry, version_of
from batpak.projection import Projection
from batpak.projection_cache import cache_key
from batpak.receipt import (
    AppendReceipt,
    Outcome,
    Reason,
    ReceiptVerdict,
    Signer,
    encode_extensions,
    verify_receipt_claim,
)
from batpak.store import _replay
from batpak.store._authority import (
    KeyRecords,
    StoreMeta,
    load_idempotency,
    load_or_mint_meta,
    publish_idempotency,
    read_meta,
    write_meta,
)
from batpak.store._columns import ColumnBase
from batpak.store._compact import CompactionResult, resolve_pending
from batpak.store._compact import compact as compact_segments
from batpak.store._cursor import Cursor, check_checkpoint_id
from batpak.store._fence import VisibilityFence, copy_cancelled, refuse_open_fence
from batpak.store._fork import ForkReport, check_destination, fork_directory
from batpak.store._import import ImportOptions, ImportReport, ImportSelector, import_events
from batpak.store._index import Index, IndexEntry, columns
from batpak.store._lifecycle import (
    acquire_lock,
    copy_prefix,
    hidden_filter,
    open_report,
    refuse_future_side_files,
    seal_torn_segment,
)
from batpak.store._recover import list_segments, recover, segment_sizes
from batpak.store._segments import ActiveSegment, ReadHandles
from batpak.store._watch import DEFAULT_SUBSCRIPTION_CAPACITY, Hub, Subscription
from batpak.store._writer import (
    LIFECYCLE,
    Abandon,
    Append,
    Batch,
    BatchItem,
    Close,
    Exclusive,
    Sync,
    Writer,
)

OPEN_DURABLE_TIMEOUT_S = 60.0
P = TypeVar("P", bound=Projection)
T = TypeVar("T")


class Store:
    """An open journal directory. Use ``Store.open`` (or ``open_read_only``) as a context manager.

    Appends are serialized through one writer thread; reads run on the caller's thread against
    the in-memory index and the segment files. One Store per directory, across processes.
    """

    def __init__(
        self,
        config: StoreConfig,
        lock: Lock,
        index: Index,
        meta: StoreMeta | None,
        keys: KeyRecords,
    ) -> None:
        self._config = config
        self._lock = lock
        self._index = index
        self._writer: Writer | None = None
        self._meta = meta
        self._keys = keys
        self._watermarks = Watermarks(_recovered_point(index))
        self._signer = Signer(config.signing_keys)
        self._hub = Hub()
        self._cursor_claims: dict[str, threading.Lock] = {}
        self._reads = ReadHandles(config.path, config.fs)
        self._closed = False
        self._close_lock = threading.Lock()
        self._moves = 0  # odd while a compaction moves segment files (a seqlock for reads)
        self._fence_tokens = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def open(cls, config: StoreConfig) -> Store:
        """Open (creating if needed) a store for writing; appends a durable OPEN_COMPLETED."""
        now_us = _stopwatch(config)
        started = now_us()
        if config.event_payload_validation == "fail_fast":
            verify_registry()
        fs, path = config.fs, config.path
        try:
            fs.mkdir(path)
        except OSError as exc:
            raise Io(f"cannot create store directory {path}: {exc}") from exc
        lock = acquire_lock(path, "read_write", fs)
        opened: Store | None = None
        try:
            refuse_future_side_files(path, fs)
            repaired = resolve_pending(path, read_meta(path, fs), True, fs)
            plan_start = now_us()
            base = None if repaired else ColumnBase.load(path, segment_sizes(path, fs), fs)
            base = _unhidden(config, base)
            recovered = recover(path, base, fs)
            plan_us = max(now_us() - plan_start, 0)
            seal_torn_segment(path, recovered, max(config.clock(), 0) * 1000, fs)
            meta = load_or_mint_meta(path, True, config.clock(), fs)
            keys = load_idempotency(path, meta, fs)
            restore_start = now_us()
            index = _restore(config, base, recovered.entries)
            restore_us = max(now_us() - restore_start, 0)
            segment = ActiveSegment(
                path, recovered.max_segment_id + 1, max(config.clock(), 0) * 1000, fs
            )
            store = opened = cls(config, lock, index, meta, keys)
            store._writer = Writer(
                config,
                index,
                segment,
                recovered.next_sequence,
                store._watermarks,
                store._signer,
                store._hub.publish,
                keys,
            )
            elapsed_us = max(now_us() - started, 0)
            report = open_report(
                "Checkpoint" if base else "Rebuild",
                base.count if base else len(recovered.entries),
                len(recovered.entries) if base else 0,
                elapsed_us,
                (plan_us, 0, restore_us, 0),
            )
            store._append_open_completed(report)
        except BaseException as exc:
            if opened is not None and opened._writer is not None:
                with contextlib.suppress(StoreError):
                    opened._writer.stop(Abandon())  # no half-open store keeps a writer
            lock.release()
            if isinstance(exc, OSError):  # a failed read or write is typed, never raw
                raise Io(f"cannot open store {path}: {exc}") from exc
            raise
        return store

    @classmethod
    def open_read_only(cls, config: StoreConfig) -> Store:
        """Open without a writer and without side effects; the lock is still exclusive."""
        fs, path = config.fs, config.path
        if not fs.is_dir(path):
            raise Io(f"store directory {path} does not exist")
        lock = acquire_lock(path, "read_only", fs)
        try:
            refuse_future_side_files(path, fs)
            meta = load_or_mint_meta(path, False, config.clock(), fs)
            resolve_pending(path, meta, False, fs)
            base = _unhidden(config, ColumnBase.load(path, segment_sizes(path, fs), fs))
            recovered = recover(path, base, fs)
            keys = load_idempotency(path, meta, fs)
            index = _restore(config, base, recovered.entries)
        except BaseException as exc:
            lock.release()
            if isinstance(exc, OSError):
                raise Io(f"cannot open store {path}: {exc}") from exc
            raise
        return cls(config, lock, index, meta, keys)

    def _append_open_completed(self, report: bytes) -> None:
        # The OPEN HLC never regresses below what was recovered (INV-FRONTIER-OPEN-MONOTONIC).
        now_ms = max(self._config.clock(), 0) // 1000
        last = self._index.last()
        wall_ms = max(now_ms, last.wall_ms if last else 0)
        command = Append(
            LIFECYCLE,
            SYSTEM_OPEN_COMPLETED,
            report,
            0,
            DEFAULT_OPTIONS,
            durable=True,
            timestamp_us=wall_ms * 1000,
        )
        self._submit(command)
        receipt = command.reply.result()
        self._watermarks.wait("durable", receipt.global_sequence, OPEN_DURABLE_TIMEOUT_S)

    def close(self) -> None:
        """Drain the writer, append CLOSE_COMPLETED, seal the segment and release the lock."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            config = self._config
            try:
                if self._writer is not None:
                    self._writer.stop(Close())
                    ColumnBase.build(
                        self._index.everything(),
                        self._writer.next_sequence,
                        segment_sizes(config.path, config.fs),
                    ).write(config.path, config.fs)
                    if self._meta is not None:
                        self._meta = publish_idempotency(
                            config.path,
                            self._meta,
                            self._keys,
                            config.clock(),
                            fs=config.fs,
                        )
            except OSError as exc:
                raise Io(f"cannot close store {config.path}: {exc}") from exc
            finally:
                self._hub.close()
                self._reads.close()
                self._lock.release()

    def _abandon(self) -> None:
        """Test seam: stop as a crash would (no CLOSE, no footer, no fsync), then unlock.

        What was written stays in the page cache, as after ``kill -9``."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            if self._writer is not None:
                self._writer.stop(Abandon())
            self._hub.close()
            self._reads.close()
            self._lock.release()

    def compact(
        self,
        *,
        retain: Callable[[IndexEntry], bool] | None = None,
        min_segments: int = 2,
        _hook: Callable[[str], None] | None = None,
    ) -> CompactionResult:
        """Merge the sealed segments into one; with ``retain``, drop events it rejects.

        Surviving events keep their bytes, hashes and global sequences. Keyed retries of
        dropped events still return their original receipts. Appends wait while it runs.
        """
        if min_segments < 1:
            raise Configuration("min_segments must be at least 1")
        config = self._config

        def run(writer: Writer) -> CompactionResult:
            self._moves += 1
            try:
                return merge(writer)
            finally:
                self._moves += 1

        def merge(writer: Writer) -> CompactionResult:
            assert self._meta is not None
            refuse_open_fence(writer.fence, "compaction")
            entries = self._index.query(Region.all())
            result, fresh, self._meta = compact_segments(
                config.path,
                writer.segment.segment_id,
                entries,
                self._meta,
                self._keys,
                retain,
                min_segments,
                config.clock,
                _hook or (lambda step: None),
                config.fs,
            )
            if fresh is not None:
                writer.replace_index(fresh)
                self._reads.forget({e.segment_id for e in entries})
            return result

        return self._exclusive(run)

    def snapshot(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the live store into ``dest`` (new or empty): an openable copy with the same
        identity, taken between appends."""
        target = Path(dest)
        fs = self._config.fs
        if fs.is_dir(target) and fs.listdir(target):
            raise Configuration(f"snapshot destination {target} is not empty")

        def run(writer: Writer) -> Path:
            assert self._meta is not None
            refuse_open_fence(writer.fence, "a snapshot")
            fs.mkdir(target)
            active = writer.segment
            for segment_id, path in list_segments(self._config.path, fs):
                limit = active.size if segment_id == active.segment_id else None
                copy_prefix(path, target / path.name, limit, fs)
            publish_idempotency(target, self._meta, self._keys, self._config.clock(), fs=fs)
            write_meta(target, read_meta(target, fs) or self._meta, fs)
            copy_cancelled(self._config.path, target, fs)
            fs.sync_dir(target)
            return target

        return self._exclusive(run)

    def begin_visibility_fence(self) -> VisibilityFence:
        """Open the store's one visibility fence: from now until its ``commit()`` every write
        is durable but hidden from every read; ``cancel()`` keeps them hidden for good.
        ``VisibilityFenceActive`` if a fence is already open."""
        token = next(self._fence_tokens)
        self._exclusive(lambda writer: writer.begin_fence(token))

        def finish(token: int, publish: bool) -> None:
            self._exclusive(lambda writer: writer.end_fence(token, publish))

        return VisibilityFence(token, finish)

    def fork(self, dest: str | os.PathLike[str]) -> Path:
        """Fork the live store into ``dest`` (new or empty), not opened; see
        ``fork_with_evidence``."""
        return self.fork_with_evidence(dest).path

    def fork_with_evidence(self, dest: str | os.PathLike[str]) -> ForkReport:
        """Fork the live store into ``dest`` (new or empty): sealed segments hard-linked (or
        copied), the active segment, idempotency image, hidden ranges, a pending compaction
        marker and ``store.meta`` copied. The fork keeps this store's identity and is fully
        independent afterwards; it is not opened. Refused during a visibility fence, for the
        source itself, a non-empty destination or a symlink; a failure publishes nothing."""
        target = Path(dest)
        config = self._config
        check_destination(config.path, target, config.fs)
        token = next(self._fence_tokens)

        def run(writer: Writer) -> ForkReport:
            assert self._meta is not None
            refuse_open_fence(writer.fence, "a fork")
            self._meta = publish_idempotency(
                config.path, self._meta, self._keys, config.clock(), fs=config.fs
            )
            active = writer.segment
            return fork_directory(
                config.path, target, active.segment_id, active.size, token, config.fs
            )

        return self._exclusive(run)

    def import_events(
        self,
        source: Store,
        selector: ImportSelector,
        options: ImportOptions,
    ) -> ImportReport:
        """Re-apply ``source``'s visible events here (``source`` may be this store): new ids,
        sequences and chain links; the same coordinates, kinds, payload bytes, content hashes
        and correlation ids; no causation; a ``batpak.import.provenance`` extension. Importing
        an event twice under one namespace is a no-op."""
        return import_events(self, source, selector, options)

    def _knows_key(self, key: int) -> bool:
        """Whether an idempotency key is already recorded (or visible as an event id)."""
        return key in self._keys or self._index.get(key) is not None

    def _exclusive(self, fn: Callable[[Writer], T]) -> T:
        command = Exclusive(fn)
        self._submit(command)
        result: T = command.reply.result()
        return result

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sync(self) -> None:
        """Block until every write acknowledged so far is on stable storage (fsync)."""
        command = Sync()
        self._submit(command)
        command.reply.result()

    @property
    def config(self) -> StoreConfig:
        return self._config

    def identity(self) -> int | None:
        """The lineage id minted in ``store.meta`` at the first writable open; kept by
        snapshots and compaction, so caches can anchor to it."""
        return None if self._meta is None else self._meta.lineage_id

    # -- writes ---------------------------------------------------------------------------

    def append(
        self,
        coord: Coordinate,
        kind: EventKind | int,
        payload: Any,
        options: AppendOptions = DEFAULT_OPTIONS,
    ) -> AppendReceipt:
        """Append a payload under ``kind``: a Struct, dict or other value is encoded
        canonically (payload_version 0). Use ``append_msgpack`` for pre-encoded bytes."""
        try:
            data = canonical.encode(payload)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidPayload(f"payload cannot be encoded: {exc}") from exc
        return self._append(coord, kind, data, 0, options)

    def append_msgpack(
        self,
        coord: Coordinate,
        kind: EventKind | int,
        payload: bytes,
        options: AppendOptions = DEFAULT_OPTIONS,
    ) -> AppendReceipt:
        """Append caller-encoded MessagePack bytes verbatim (they must be one valid value)."""
        if not isinstance(payload, bytes):
            raise InvalidPayload("append_msgpack takes bytes")
        try:
            msgspec.msgpack.decode(payload)
        except msgspec.DecodeError as exc:
            raise InvalidPayload(f"payload is not one MessagePack value: {exc}") from exc
        return self._append(coord, kind, payload, 0, options)

    def append_typed(
        self, coord: Coordinate, value: msgspec.Struct, options: AppendOptions = DEFAULT_OPTIONS
    ) -> AppendReceipt:
        """Append an ``@event_payload`` Struct under its bound kind and version."""
        cls = type(value)
        return self._append(coord, kind_of(cls), canonical.encode(value), version_of(cls), options)

    def _append(
        self, coord: Coordinate, kind: int, data: bytes, version: int, options: AppendOptions
    ) -> AppendReceipt:
        if not isinstance(coord, Coordinate):
            raise TypeError(f"coord must be a Coordinate, not {type(coord).__name__}")
        if not isinstance(kind, int) or not 0 <= kind <= 0xFFFF:
            raise InvalidKind(f"event kind {kind!r} is not a u16")
        if is_reserved(kind):
            raise ReservedKind(kind)
        if len(data) > self._config.single_append_max_bytes:
            raise PayloadTooLarge(len(data), self._config.single_append_max_bytes)
        self._require_key(options)
        gate = options.gate
        command = Append(coord, int(kind), data, version, options, durable=gate is not None)
        if gate is None:
            self._submit(command)
            return command.reply.result()
        # The writer answers a gated append after the fsync of its group; while this caller
        # waits, the writer counts it as a gated caller at work (for its group window).
        writer = self._writer
        if writer is not None:
            writer.gated_enter()
        try:
            self._submit(command)
            return command.reply.result(timeout=gate.timeout)
        except TimeoutError:
            written = command.written
            target = -1 if written is None else written.global_sequence
            raise WaitTimeout("durable", target, int(gate.timeout * 1000)) from None
        finally:
            if writer is not None:
                writer.gated_exit()

    def _require_key(self, options: AppendOptions) -> None:
        if self._config.group_commit_max_batch != 1 and options.idempotency_key is None:
            raise IdempotencyRequired(
                "group commit is enabled (group_commit_max_batch != 1): "
                "every append needs an idempotency key"
            )

    def append_batch(self, items: list[BatchAppendItem]) -> list[AppendReceipt]:
        """Append items atomically: all become durable and then visible together, or none.

        Written as BEGIN marker, item frames, COMMIT marker, then fsync; a crash before the
        COMMIT is durable discards the whole batch at the next open.
        """
        config = self._config
        if not items:
            return []
        if len(items) > config.batch_max_size:
            raise BatchTooLarge(f"{len(items)} items exceed batch_max_size {config.batch_max_size}")
        total = sum(
            len(item.payload)
            + (len(encode_extensions(item.options.extensions)) if item.options.extensions else 0)
            for item in items
        )
        if total > config.batch_max_bytes:
            raise BatchTooLarge(
                f"{total} payload bytes exceed batch_max_bytes {config.batch_max_bytes}"
            )
        keys = [item.options.idempotency_key for item in items]
        keyed = sum(key is not None for key in keys)
        if keyed not in (0, len(items)):
            raise IdempotencyPartialBatch("batch must have all items keyed or all unkeyed")
        if keyed and len(set(keys)) != len(keys):
            raise IdempotencyPartialBatch("duplicate idempotency key in batch")
        prepared = []
        for position, item in enumerate(items):
            if not isinstance(item, BatchAppendItem):
                raise TypeError(f"batch item {position} is not a BatchAppendItem")
            if is_reserved(item.kind):
                raise ReservedKind(item.kind, position)
            if len(item.payload) > config.single_append_max_bytes:
                raise PayloadTooLarge(len(item.payload), config.single_append_max_bytes)
            if item.options.expected_sequence is not None:
                raise Configuration(f"item {position}: compare-and-set is not supported in batches")
            prior = None
            options = item.options
            if isinstance(item.causation, PriorItem):
                if not 0 <= item.causation.index < position:
                    raise InvalidCausation(
                        f"item {position} names prior item {item.causation.index}, "
                        "which does not come before it"
                    )
                prior = item.causation.index
            elif item.causation is not None:
                options = dataclasses.replace(options, causation_id=item.causation)
            prepared.append(BatchItem(item.coord, item.kind, item.payload, options, prior))
        command = Batch(prepared)
        self._submit(command)
        return command.reply.result()

    def _submit(self, command: Append | Batch | Sync | Exclusive) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")
        if self._writer is None:
            raise ReadOnlyStore("the store was opened read-only")
        self._writer.submit(command)

    # -- reads ----------------------------------------------------------------------------

    def _entry(self, event_id: int) -> IndexEntry:
        entry = self._index.get(event_id)
        if entry is None:
            raise NotFound(event_id)
        return entry

    def read_raw(self, event_id: int) -> bytes:
        """The event's stored payload bytes (canonical MessagePack)."""
        return self.get(event_id).event.payload

    def get(self, event_id: int) -> StoredEvent:
        """The committed event with this id; raises ``NotFound``."""
        return self._load(self._entry(event_id))

    def _load(self, entry: IndexEntry) -> StoredEvent:
        while True:
            moves = self._moves
            try:
                return self._load_at(entry)
            except (Io, CrcMismatch, CorruptFrame):
                # The caller's entry may predate a compaction that moved its frame (and closed
                # or removed the old file), even one that finished before this read began:
                # once any move is over, read the event where the index now says it is.
                while self._moves % 2:
                    time.sleep(0.001)
                fresh = self._index.get(entry.event_id)
                if fresh is None:
                    raise NotFound(entry.event_id) from None
                where = (fresh.segment_id, fresh.offset, fresh.length)
                if where == (entry.segment_id, entry.offset, entry.length) and moves == self._moves:
                    raise  # the frame is where the index says, and nothing moved: real damage
            entry = fresh

    def _load_at(self, entry: IndexEntry) -> StoredEvent:
        return self._frame(entry, self._read(entry.segment_id, entry.offset, entry.length))

    def _read(self, segment_id: int, offset: int, length: int) -> bytes:
        if self._closed:
            raise StoreClosed("the store is closed")
        try:
            return self._reads.read(segment_id, offset, length)
        except OSError as exc:
            raise Io(f"cannot read segment {segment_id}: {exc}") from exc

    def _frame(self, entry: IndexEntry, data: bytes | memoryview) -> StoredEvent:
        """The stored event of ``entry`` from its whole frame's bytes."""
        body = data[8:]
        if crc32(body) != int.from_bytes(data[4:8], "big"):
            raise CrcMismatch(entry.segment_id, entry.offset)
        try:
            frame = decode_load(body)
        except FrameDecodeError as exc:
            raise CorruptFrame(entry.segment_id, entry.offset, str(exc)) from exc
        wire = frame.event.header
        if int.from_bytes(wire.event_id, "big") != entry.event_id:
            raise CorruptFrame(entry.segment_id, entry.offset, "frame holds a different event")
        if frame.entity != entry.entity or frame.scope != entry.scope:
            raise CorruptFrame(entry.segment_id, entry.offset, "frame holds another coordinate")
        content_hash = bytes(wire.content_hash)
        payload = payload_bytes(frame.event.payload)
        if payload is None:  # not plain shortest-form bytes: decode the array exactly
            try:
                payload = bytes(decode_body(body).event.payload)
            except FrameDecodeError as exc:
                raise CorruptFrame(entry.segment_id, entry.offset, str(exc)) from exc
        try:
            link = decode_chain(frame.event.hash_chain)
        except FrameDecodeError as exc:
            raise CorruptFrame(entry.segment_id, entry.offset, str(exc)) from exc
        position = wire.position
        header = EventHeader(
            event_id=entry.event_id,
            correlation_id=entry.correlation_id,
            causation_id=entry.causation_id,
            timestamp_us=wire.timestamp_us,
            position=DagPosition(
                position.wall_ms, position.counter, position.depth, position.lane, position.sequence
            ),
            payload_size=wire.payload_size,
            event_kind=wire.event_kind,
            flags=wire.flags,
            content_hash=content_hash,
            payload_version=wire.payload_version,
        )
        return StoredEvent(
            coordinate=_coordinate(entry.entity, entry.scope),
            event=Event(header=header, payload=payload, hash_chain=link),
            global_sequence=entry.global_sequence,
            extensions=dict(entry.receipt_extensions or {}),
        )

    def query(self, region: Region) -> list[IndexEntry]:
        """Every visible event in the region, in commit order (for small regions)."""
        return self._index.query(region)

    def query_entries_after(
        self, region: Region, after: int | None = None, limit: int = 256
    ) -> list[IndexEntry]:
        """One commit-ordered page: up to ``limit`` entries with global_sequence > ``after``."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        return self._index.after(region, after, limit)

    def by_entity(self, entity: str) -> list[IndexEntry]:
        """Every event of exactly this entity, in commit order."""
        return self._index.entity_stream(entity)

    def by_scope(self, scope: str) -> list[IndexEntry]:
        return self._index.query(Region.scope(scope))

    def by_fact(self, kind: EventKind | int) -> list[IndexEntry]:
        """Every event of exactly this kind, in commit order."""
        return self._index.query(Region.all().with_kind(kind))

    def entity_generation(self, entity: str) -> int | None:
        """The global sequence of the entity's newest event, or None if it has none."""
        stream = self._index.entity_stream(entity)
        return stream[-1].global_sequence if stream else None

    def walk_ancestors(self, event_id: int, limit: int = 64) -> list[IndexEntry]:
        """The event and its chain ancestors (same entity and lane), newest first. Each step
        follows the ``prev_hash`` stored in the event's frame, so the walk stops at a damaged
        or missing link."""
        entry = self._entry(event_id)
        walked = [entry]
        stream = self._index.entity_stream(entry.entity)
        position = next(i for i, e in enumerate(stream) if e.event_id == event_id)
        while len(walked) < limit:
            link = self._load(entry).event.hash_chain
            if link is None or link.prev_hash == ZERO_HASH:
                break
            parent = None
            for i in range(position - 1, -1, -1):
                candidate = stream[i]
                if candidate.lane == entry.lane and candidate.event_hash == link.prev_hash:
                    parent, position = candidate, i
                    break
            if parent is None:
                break
            walked.append(parent)
            entry = parent
        return walked

    def frontier(self) -> Frontier:
        """The accepted, written, durable, visible and applied watermarks, read atomically."""
        return self._watermarks.snapshot()

    def wait_for(self, mark: Watermark, global_sequence: int, timeout: float) -> HlcPoint:
        """Block until ``mark`` covers ``global_sequence`` (``WaitTimeout`` after ``timeout``
        seconds). A durable wait does not fsync by itself: pair it with a gate or ``sync()``."""
        return self._watermarks.wait(mark, global_sequence, timeout)

    def wait_for_durable(self, global_sequence: int, timeout: float) -> HlcPoint:
        return self.wait_for("durable", global_sequence, timeout)

    def wait_for_visible(self, global_sequence: int, timeout: float) -> HlcPoint:
        return self.wait_for("visible", global_sequence, timeout)

    def cursor(self, region: Region, checkpoint_id: str | None = None) -> Cursor:
        """An ordered, at-least-once reader of ``region``. With ``checkpoint_id`` it resumes
        after the last ``commit()`` recorded in ``cursors/<checkpoint_id>.ckpt``."""
        if checkpoint_id is None:
            return Cursor(self._index, region, None, None)
        check_checkpoint_id(checkpoint_id)
        if self._writer is None:
            raise ReadOnlyStore("a checkpointed cursor writes its checkpoint: open writable")
        with self._close_lock:
            claim = self._cursor_claims.setdefault(checkpoint_id, threading.Lock())
        if not claim.acquire(blocking=False):
            raise Configuration(f"checkpoint id {checkpoint_id!r} is already in use")
        try:
            path = self._config.path / "cursors" / f"{checkpoint_id}.ckpt"
            return Cursor(self._index, region, path, claim, self._config.fs)
        except BaseException:
            claim.release()
            raise

    def subscribe_lossy(
        self, region: Region, capacity: int = DEFAULT_SUBSCRIPTION_CAPACITY
    ) -> Subscription:
        """Push notifications for events committed from now on; a subscriber whose queue of
        ``capacity`` fills is dropped (and told so) rather than ever slowing the writer."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        return self._hub.subscribe(region, capacity)

    # -- receipts -------------------------------------------------------------------------

    def verify_append_receipt(self, receipt: AppendReceipt) -> ReceiptVerdict:
        """Check a receipt against the committed event, then its signature claim."""
        entry = self._index.get(receipt.event_id)
        if entry is None:
            return ReceiptVerdict(Outcome.INVALID, Reason.MISSING_COMMITTED_EVENT)
        mismatch = _receipt_mismatch(receipt, entry)
        if mismatch is not None:
            return ReceiptVerdict(Outcome.INVALID, mismatch)
        return verify_receipt_claim(
            receipt, entry.coord, entry.event_kind, entry.prev_hash, self._signer.verifying_keys
        )

    def verify_chain(self) -> ChainReport:
        """Recompute every visible event's content hash and check each (entity, lane) chain
        links to its predecessor exactly (stricter than the reference's set membership)."""
        heads: dict[tuple[str, int], bytes] = {}
        mismatches: list[int] = []
        dangling: list[int] = []
        entries = self._index.query(Region.all())
        for entry in entries:
            stored = self._load(entry)
            digest = canonical.digest(stored.event.payload)
            if digest != entry.event_hash or digest != stored.event.header.content_hash:
                mismatches.append(entry.event_id)
            chain = (entry.entity, entry.lane)
            link = stored.event.hash_chain  # the link as stored, whatever the index says
            if link is None or link.prev_hash != heads.get(chain, ZERO_HASH):
                dangling.append(entry.event_id)
            heads[chain] = digest if link is None else link.event_hash
        return ChainReport(len(entries), tuple(mismatches), tuple(dangling))

    # -- projections ----------------------------------------------------------------------

    def project(self, projection: type[P], entity: str) -> P:
        """Fold the entity's handled events, in commit order, into a projection: from the
        projection cache when it holds the entity's current state, else by replay."""
        kinds = projection.handlers
        upto = self._watermarks.snapshot().visible
        stream = self._index.entity_stream(entity)
        head = stream[-1].global_sequence if stream else 0
        name = f"{projection.__module__}.{projection.__qualname__}"
        cache = self._config.projection_cache
        key = cache_key(name, entity, projection.schema_version)
        state, after = _cached(cache.get(key), projection, head)
        if state is None or after < head:
            if state is None:
                state, after = projection(), 0
            for entry in stream:
                handled = kinds.get(entry.event_kind)
                if entry.global_sequence > after and handled is not None:
                    state.apply(entry.event_kind, self._load(entry).decode(handled[0]))
            with contextlib.suppress(TypeError, ValueError):  # state MessagePack cannot hold
                cache.put(key, _CACHE_ENTRY.encode((head, state.cache_state())))
        self._watermarks.projected(name, upto)
        return state

    def project_if_changed(
        self, projection: type[P], entity: str, last_generation: int | None
    ) -> tuple[int | None, P] | None:
        """``(generation, state)`` if the entity changed since ``last_generation``, else None."""
        generation = self.entity_generation(entity)
        if generation == last_generation:
            return None
        return generation, self.project(projection, entity)

    def replay(self, payload_type: type[T], *, after: int | None = None) -> Iterator[tuple[int, T]]:
        """Every visible event of ``payload_type``'s kind with a global sequence above
        ``after``, in commit order, as ``(global_sequence, value)`` pairs (older payload
        versions are upcast). The fast path for rebuilding state from a whole journal: no
        ``StoredEvent`` is built. A compaction that moves frames meanwhile is waited out."""
        kind = kind_of(payload_type)
        done = after or 0
        while True:
            moves = self._moves
            base, rows, tail = self._index.kind_rows(kind)
            events = _replay.Replay(payload_type, base, rows, tail, done, self._read)
            try:
                yield from events
                return
            except (Io, CrcMismatch, CorruptFrame):
                if moves == self._moves and moves % 2 == 0:
                    raise  # no compaction moved files under this read: the damage is real
            done = events.done
            while self._moves % 2:
                time.sleep(0.001)

    def events(self, entries: Iterable[IndexEntry]) -> list[StoredEvent]:
        """Load the full events for index entries (for example, a query page). Frames close
        together in one segment, as a commit-order page mostly is, share one read."""
        todo = list(entries)
        out: list[StoredEvent] = []
        i = 0
        while i < len(todo):
            first = todo[i]
            start, end, j = first.offset, first.offset + first.length, i + 1
            while j < len(todo):
                nxt = todo[j]
                if (
                    nxt.segment_id != first.segment_id
                    or not end <= nxt.offset <= end + _READ_GAP
                    or nxt.offset + nxt.length - start > _READ_SPAN
                ):
                    break
                end, j = nxt.offset + nxt.length, j + 1
            try:
                data = memoryview(self._read(first.segment_id, start, end - start))
                loaded = [
                    self._frame(e, data[e.offset - start : e.offset - start + e.length])
                    for e in todo[i:j]
                ]
            except (Io, CrcMismatch, CorruptFrame):
                # One by one: a compaction may have moved them (``_load`` tells that apart).
                loaded = [self._load(e) for e in todo[i:j]]
            out += loaded
            i = j
        return out


class ChainReport(msgspec.Struct, frozen=True):
    """What ``verify_chain`` checked and which events failed."""

    events_checked: int
    content_hash_mismatches: tuple[int, ...]
    dangling_links: tuple[int, ...]

    def is_intact(self) -> bool:
        return not self.content_hash_mismatches and not self.dangling_links


_CACHE_ENTRY = msgspec.msgpack.Encoder()


def _cached(raw: bytes | None, projection: type[P], head: int) -> tuple[P | None, int]:
    """The cached state and the sequence it covers, if usable for an entity at ``head``:
    the same head, or an older one for a projection that applies incrementally."""
    if raw is None:
        return None, 0
    try:
        covered, data = msgspec.msgpack.decode(raw, type=tuple[int, bytes])
        if covered == head or (covered < head and projection.supports_incremental_apply):
            return projection.from_cache(data), covered
    except (msgspec.DecodeError, TypeError, ValueError):
        pass  # a damaged or foreign entry: replay
    return None, 0


_READ_SPAN = 1 << 20
"""The most bytes one read of :meth:`Store.events` covers."""
_READ_GAP = 64 << 10
"""The largest gap (markers, unselected events) a shared read skips over."""


@functools.lru_cache(maxsize=4096)
def _coordinate(entity: str, scope: str) -> Coordinate:
    return Coordinate(entity, scope)


def _unhidden(config: StoreConfig, base: ColumnBase | None) -> ColumnBase | None:
    """The checkpoint only if it shows no event the hidden ranges (an authority file) hide;
    otherwise None, so the open rebuilds from the segments rather than resurrect them."""
    hidden = None if base is None else hidden_filter(config.path, config.fs)
    if base is None or hidden is None:
        return base
    return None if any(hidden(base.entry(row)) for row in range(base.count)) else base


def _restore(config: StoreConfig, base: ColumnBase | None, entries: list[IndexEntry]) -> Index:
    """The index of the checkpoint ``base`` plus the recovered ``entries`` after it; with no
    checkpoint, a long rebuilt history is held as columns too."""
    visible = _visible(config, entries)
    if base is None and (rebuilt := columns(visible)) is not None:
        return Index(rebuilt)
    index = Index(base)
    index.insert(visible)
    return index


def _visible(config: StoreConfig, entries: list[IndexEntry]) -> list[IndexEntry]:
    hidden = hidden_filter(config.path, config.fs)
    return entries if hidden is None else [e for e in entries if not hidden(e)]


def _stopwatch(config: StoreConfig) -> Callable[[], int]:
    """Microseconds for timing the open phases: the injected clock when there is one, so an
    injected clock owns every time value the store records."""
    if config.clock is system_clock_us:
        return lambda: time.monotonic_ns() // 1000
    return config.clock


def _recovered_point(index: Index) -> HlcPoint:
    last = index.last()
    return ORIGIN if last is None else HlcPoint(last.wall_ms, last.global_sequence)


def _receipt_mismatch(receipt: AppendReceipt, entry: IndexEntry) -> Reason | None:
    if receipt.event_id != entry.event_id:
        return Reason.EVENT_ID_MISMATCH
    if receipt.global_sequence != entry.global_sequence:
        return Reason.SEQUENCE_MISMATCH
    pos = receipt.disk_pos
    if (pos.segment_id, pos.offset, pos.length) != (entry.segment_id, entry.offset, entry.length):
        return Reason.DISK_POSITION_MISMATCH
    if receipt.content_hash != entry.event_hash:
        return Reason.CONTENT_HASH_MISMATCH
    if dict(receipt.extensions) != dict(entry.receipt_extensions or {}):
        return Reason.EXTENSIONS_MISMATCH
    return None
