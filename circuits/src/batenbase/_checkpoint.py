"""Projection checkpoints: a tenant's projection saved at clean close, so the next open
replays only the events written after it.

A checkpoint is a hint, never the truth. It records the journal's lineage id, the global
sequence it covers and the content hash of the event at that sequence; it is used only if all
three still match the journal (otherwise the projection is rebuilt from every event).
Compaction deletes it before touching the journal. Files are written to a temporary name,
fsynced and renamed, so a crash leaves the old checkpoint or the new one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from batenbase._blocks import AuditRow, BlockIndex, Revision
from batenbase._events import IdemRow, ReadRow
from batpak import Region, Store

VERSION = 1


class _Snapshot(msgspec.Struct):
    version: int
    lineage: str  # the u128 lineage id, in decimal (MessagePack ints stop at 64 bits)
    seq: int
    event_hash: bytes
    revisions: list[Revision]
    audit: list[AuditRow]
    reads: list[ReadRow]
    idem: list[IdemRow] = []


def save(path: Path, store: Store, index: BlockIndex) -> None:
    """Write the checkpoint of ``index``, which must reflect every event in ``store``."""
    seq = store.frontier().visible.global_sequence
    head = store.query_entries_after(Region.all(), seq - 1, 1) if seq > 0 else []
    if not head or head[0].global_sequence != seq:
        return
    snapshot = _Snapshot(
        VERSION,
        str(store.identity()),
        seq,
        head[0].event_hash,
        [r for revs in index.revisions.values() for r in revs],
        index.audit_rows(),
        [r for rows in index.reads.values() for r in rows],
        [IdemRow(digest + fp, seq) for digest, (fp, seq) in index.idem.items()],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    with open(temp, "wb") as out:
        out.write(msgspec.msgpack.encode(snapshot))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: Path, store: Store) -> tuple[BlockIndex, int] | None:
    """The checkpointed projection and the sequence it covers, if it still matches."""
    try:
        snapshot = msgspec.msgpack.decode(path.read_bytes(), type=_Snapshot)
    except (OSError, msgspec.DecodeError):
        return None
    if snapshot.version != VERSION or snapshot.lineage != str(store.identity()) or snapshot.seq < 1:
        return None
    head = store.query_entries_after(Region.all(), snapshot.seq - 1, 1)
    if not head or head[0].global_sequence != snapshot.seq:
        return None
    if head[0].event_hash != snapshot.event_hash:
        return None
    index = BlockIndex()
    for revision in snapshot.revisions:
        index.restore(revision)
    for row in snapshot.audit:
        index.add_audit(row)
    index.apply_reads(snapshot.reads)
    for carried in snapshot.idem:
        index.remember(carried.idem, carried.seq)
    return index, snapshot.seq


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
