"""One tenant: its journal, its projection, its locks and its read-receipt buffer.

Locking, outermost first:

- ``gate``: every append holds it shared; compaction and close hold it exclusively, so the
  journal is never swapped under an append.
- ``idem_lock``: a client idempotency key's stripe, held across check, write and apply, so
  a retry racing its original waits and then replays it. Taken before everything else.
- the key's stripe lock (``key_lock``): held across check + durable append + apply for one
  key, so revisions of a key are numbered and journaled in order.
- ``reads_lock``: the read-receipt buffer.
- ``lock``: the projection and quota reservations, held only for in-memory steps.

Appends to different keys run in parallel and are gated on durability, so concurrent
writers share fsyncs (group commit). The projection is updated only once an append is
durable, so readers never see a write that could still be lost. A new live block reserves a
quota slot under ``lock`` before its append and turns it into usage atomically after, which
keeps the quota exact under concurrency.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from batenbase import _checkpoint, _journal
from batenbase._blocks import AuditRow, BlockIndex, Revision
from batenbase._events import (
    AUDIT_KIND,
    AUDIT_SCOPE,
    BLOCK_KINDS,
    BLOCK_SCOPE,
    IDEM_KIND,
    READS_KIND,
    READS_SCOPE,
    AuditRecorded,
    BlockDeleted,
    BlockPut,
    IdemCarried,
    IdemRow,
    ReadRow,
    ReadsRecorded,
)
from batenbase._gate import SharedGate
from batpak import AppendReceipt, Coordinate, IndexEntry, Region, Store, StoredEvent


def block_entity(key: str) -> str:
    """The journal entity (chain anchor) of a key: its hash, so any key makes a valid name."""
    return "bb.key:" + hashlib.blake2b(key.encode("utf-8"), digest_size=20).hexdigest()


class Tenant:
    """A tenant's journal and projection; the service facade does the policy."""

    def __init__(self, name: str, path: Path, checkpoint: Path, clock: Callable[[], float]) -> None:
        self.name = name
        self.path = path
        self.clock = clock
        self.checkpoint = checkpoint
        self.gate = SharedGate()
        self.lock = threading.Lock()
        self.reads_lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._idem_stripes = [threading.Lock() for _ in range(_STRIPES)]
        self.store: Store = _journal.open_store(path, clock)
        self.index = BlockIndex()
        self.reserved = 0  # quota slots held by new live blocks whose append is in flight
        self.pending_reads: list[ReadRow] = []
        self.appends = 0
        self.rebuild(use_checkpoint=True)

    def key_lock(self, key: str) -> threading.Lock:
        return self._stripes[hash(key) % _STRIPES]

    def idem_lock(self, digest: bytes) -> threading.Lock:
        """Serializes the calls sharing an idempotency key; taken before the gate."""
        return self._idem_stripes[digest[0] % _STRIPES]

    def rebuild(self, *, use_checkpoint: bool = False) -> None:
        """Rebuild the projection from the journal (from a matching checkpoint if allowed)."""
        loaded = _checkpoint.load(self.checkpoint, self.store) if use_checkpoint else None
        index, after = loaded if loaded is not None else (BlockIndex(), 0)
        while True:
            page = self.store.query_entries_after(Region.all(), after, _REPLAY_PAGE)
            if not page:
                break
            after = page[-1].global_sequence
            entries = [e for e in page if e.event_kind in _OWN_KINDS]
            for entry, stored in zip(entries, self.store.events(entries), strict=True):
                _replay(index, entry, stored)
        self.index = index

    def with_data(self, revisions: list[Revision]) -> list[Revision]:
        """``revisions`` with every ``data`` filled in, older ones read back from the
        journal. A revision compacted away meanwhile raises ``LookupError``."""
        missing = {r.seq: r.key for r in revisions if r.data is None}
        if not missing:
            return revisions
        found: dict[int, bytes] = {}
        with self.gate.shared():  # compaction swaps the journal under the exclusive gate
            for key in set(missing.values()):
                entries = [
                    e
                    for e in self.store.by_entity(block_entity(key))
                    if e.global_sequence in missing
                ]
                for entry, stored in zip(entries, self.store.events(entries), strict=True):
                    kind: type[BlockPut | BlockDeleted] = (
                        BlockPut if entry.event_kind == BLOCK_KINDS[0] else BlockDeleted
                    )
                    found[entry.global_sequence] = stored.decode(kind).data
        if len(found) != len(missing):
            raise LookupError("a revision was compacted away while it was read")
        return [
            r if r.data is not None else msgspec.structs.replace(r, data=found[r.seq])
            for r in revisions
        ]

    def durable_seq(self) -> int:
        return self.store.frontier().durable.global_sequence

    # -- writes --------------------------------------------------------------------------

    def reserve(self, quota: int | None) -> bool:
        """Take a quota slot for a new live block; False if the plan has none left."""
        with self.lock:
            if quota is not None and self.index.live + self.reserved >= quota:
                return False
            self.reserved += 1
            return True

    def apply_block(
        self, event: BlockPut | BlockDeleted, receipt: AppendReceipt, *, reserved: bool
    ) -> Revision:
        """Apply a durable block append to the projection (caller holds the key's lock); a
        reserved quota slot becomes usage in the same step."""
        with self.lock:
            self.appends += 1
            self.index.apply_block(event, receipt.global_sequence, receipt.content_hash)
            self.reserved -= reserved
            latest = self.index.latest(event.key)
        assert latest is not None
        return latest

    def release(self) -> None:
        """Give back a quota slot whose write did not happen."""
        with self.lock:
            self.reserved -= 1

    def audit_row(self, event: AuditRecorded, receipt: AppendReceipt) -> AuditRow:
        """Record an appended audit event in the projection (visible once durable)."""
        row = AuditRow(
            receipt.global_sequence,
            event.t,
            event.kind,
            event.observer,
            event.details,
            receipt.content_hash,
            idem=event.idem,
        )
        with self.lock:
            self.appends += 1
        self.index.add_audit(row)
        return row

    def audit(self, kind: str, observer: str, details: bytes, *, durable: bool = True) -> AuditRow:
        """Append a service audit event outside any dispatched operation."""
        event = AuditRecorded(kind, observer, details, self.clock())
        with self.gate.shared():
            receipt = _journal.append(
                self.store, Coordinate("bb.audit", AUDIT_SCOPE), event, durable=durable
            )
        return self.audit_row(event, receipt)

    # -- read receipts ---------------------------------------------------------------------

    def note_read(self, row: ReadRow, *, wait: bool = True) -> int | None:
        """Buffer a read receipt; the buffer's size after it, or None when ``wait`` is
        False and a flush holds the buffer (nothing is buffered then)."""
        if not self.reads_lock.acquire(blocking=wait):
            return None
        try:
            self.pending_reads.append(row)
            return len(self.pending_reads)
        finally:
            self.reads_lock.release()

    def flush_reads(self) -> int:
        """Append every buffered receipt as one batch event (one durable append)."""
        with self.gate.shared(), self.reads_lock:
            return self._flush_locked()

    def _flush_locked(self) -> int:
        rows, self.pending_reads = self.pending_reads, []
        if rows:
            _journal.append(self.store, Coordinate("bb.reads", READS_SCOPE), ReadsRecorded(rows))
            with self.lock:
                self.appends += 1
                self.index.apply_reads(rows)
        return len(rows)

    def reads_of(self, key: str) -> list[ReadRow]:
        with self.reads_lock:
            pending = [r for r in self.pending_reads if r.key == key]
        return self.index.reads.get(key, []) + pending

    # -- compaction and lifecycle ----------------------------------------------------------

    def compact(self, keep_revisions: int) -> dict[str, Any]:
        """Drop block revisions older than the newest ``keep_revisions`` per key; audit and
        receipt events all stay. The journal is reopened first so every event is sealed."""
        with self.gate.exclusive(), self.reads_lock:  # no append of any kind while it runs
            self._flush_locked()
            _checkpoint.discard(self.checkpoint)
            keep: set[int] = set()
            dropped_candidates: set[int] = set()
            carried: list[IdemRow] = []
            for revs in self.index.revisions.values():
                keep.update(r.seq for r in revs[-keep_revisions:])
                dropped_candidates.update(r.seq for r in revs[:-keep_revisions])
                carried += [IdemRow(r.idem, r.seq) for r in revs[:-keep_revisions] if r.idem]
            if carried:
                coord = Coordinate("bb.idem", BLOCK_SCOPE)
                _journal.append(self.store, coord, IdemCarried(carried))
            self.store.close()
            self.store = _journal.open_store(self.path, self.clock)
            result = self.store.compact(
                retain=lambda e: (
                    e.event_kind not in BLOCK_KINDS or e.global_sequence not in dropped_candidates
                ),
                min_segments=1,
            )
            self.rebuild()
        return {
            "outcome": result.outcome,
            "events_dropped": result.events_dropped,
            "segments_removed": result.segments_removed,
            "bytes_reclaimed": result.bytes_reclaimed,
            "kept_block_events": len(keep),
        }

    def close(self) -> None:
        """Flush receipts, checkpoint the projection and close the journal (no writer may
        still be running)."""
        with self.gate.exclusive(), self.reads_lock:
            self._flush_locked()
            _checkpoint.save(self.checkpoint, self.store, self.index)
            self.store.close()


_REPLAY_PAGE = 4096
_STRIPES = 64
_OWN_KINDS = frozenset((*BLOCK_KINDS, AUDIT_KIND, READS_KIND, IDEM_KIND))


def _replay(index: BlockIndex, entry: IndexEntry, stored: StoredEvent) -> None:
    kind = entry.event_kind
    seq, digest = entry.global_sequence, entry.event_hash
    if kind == BLOCK_KINDS[0]:
        index.apply_block(stored.decode(BlockPut), seq, digest)
    elif kind == BLOCK_KINDS[1]:
        index.apply_block(stored.decode(BlockDeleted), seq, digest)
    elif kind == AUDIT_KIND:
        index.apply_audit(stored.decode(AuditRecorded), seq, digest)
    elif kind == IDEM_KIND:
        for row in stored.decode(IdemCarried).rows:
            index.remember(row.idem, row.seq)
    else:
        index.apply_reads(stored.decode(ReadsRecorded).reads)
