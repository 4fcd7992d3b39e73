"""Frame construction for the writer: event frames, batch markers and signed receipts."""

from __future__ import annotations

from batpak.coordinate import Coordinate
from batpak.frame import WireEvent, WireFrame, WireHashChain, WireHeader, WirePosition, encode_frame
from batpak.kinds import SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT
from batpak.receipt import AppendReceipt, DiskPos, Signer, cover_digest
from batpak.store._authority import IdempEntry, sorted_keys
from batpak.store._entry import IndexEntry

BATCH_ENTITY = "_batch"
BATCH_SCOPE = "_system"


def event_frame(
    entry: IndexEntry,
    timestamp_us: int,
    flags: int,
    payload: bytes,
    payload_version: int,
) -> bytes:
    """The whole frame for an event whose index entry is already decided."""
    content_hash = list(entry.event_hash)
    extensions = entry.receipt_extensions or {}
    return encode_frame(
        WireFrame(
            event=WireEvent(
                header=WireHeader(
                    event_id=entry.event_id.to_bytes(16, "big"),
                    correlation_id=entry.correlation_id.to_bytes(16, "big"),
                    causation_id=(
                        None
                        if entry.causation_id is None
                        else entry.causation_id.to_bytes(16, "big")
                    ),
                    timestamp_us=timestamp_us,
                    position=WirePosition(entry.wall_ms, 0, entry.depth, entry.lane, entry.clock),
                    payload_size=len(payload),
                    event_kind=entry.event_kind,
                    flags=flags,
                    content_hash=content_hash,
                    payload_version=payload_version,
                ),
                payload=list(payload),
                hash_chain=WireHashChain(list(entry.prev_hash), content_hash),
            ),
            entity=entry.entity,
            scope=entry.scope,
            receipt_extensions=(
                {k: list(extensions[k]) for k in sorted_keys(extensions)} if extensions else {}
            ),
        )
    )


def marker_frame(begin: bool, batch_id: int, count: int, timestamp_us: int) -> bytes:
    """A BATCH_BEGIN (``payload_size`` = item count) or BATCH_COMMIT marker frame."""
    batch = batch_id.to_bytes(16, "big")
    return encode_frame(
        WireFrame(
            event=WireEvent(
                header=WireHeader(
                    event_id=batch,
                    correlation_id=batch,
                    causation_id=None,
                    timestamp_us=timestamp_us,
                    position=WirePosition(timestamp_us // 1000, 0, 0, 0, 0),
                    payload_size=count if begin else 0,
                    event_kind=int(SYSTEM_BATCH_BEGIN if begin else SYSTEM_BATCH_COMMIT),
                    flags=0,
                    content_hash=[0] * 32,  # the reference never sets it on markers
                    payload_version=0,
                ),
                payload=[],  # no payload bytes: the empty int array ``90``
                hash_chain=None,
            ),
            entity=BATCH_ENTITY,
            scope=BATCH_SCOPE,
        )
    )


def receipt_for(entry: IndexEntry, signer: Signer) -> AppendReceipt:
    """The receipt of a committed event; signing is deterministic, so a retry gets the same."""
    extensions = dict(entry.receipt_extensions or {})
    signature = None
    if signer.active:
        digest = cover_digest(
            entry.event_id,
            entry.global_sequence,
            Coordinate(entry.entity, entry.scope),
            entry.event_kind,
            entry.prev_hash,
            entry.event_hash,
            extensions,
        )
        signature = signer.sign(digest)
    return AppendReceipt(
        event_id=entry.event_id,
        global_sequence=entry.global_sequence,
        disk_pos=DiskPos(entry.segment_id, entry.offset, entry.length),
        content_hash=entry.event_hash,
        key_id=signer.key_id,
        signature=signature,
        extensions=extensions,
    )


def replay_receipt(record: IdempEntry, signer: Signer) -> AppendReceipt:
    """The original receipt of a keyed event from its record, re-signed with today's key."""
    event_id = int.from_bytes(record.event_id, "big")
    extensions = {k: bytes(v) for k, v in record.receipt_extensions.items()}
    return receipt_for(
        IndexEntry(
            event_id=event_id,
            correlation_id=event_id,
            causation_id=None,
            entity=record.entity,
            scope=record.scope,
            event_kind=record.kind,
            wall_ms=0,
            clock=0,
            lane=0,
            depth=0,
            prev_hash=bytes(record.prev_hash),
            event_hash=bytes(record.content_hash),
            global_sequence=record.global_sequence,
            segment_id=record.disk_pos_segment,
            offset=record.disk_pos_offset,
            length=record.disk_pos_length,
            receipt_extensions=extensions or None,
        ),
        signer,
    )
