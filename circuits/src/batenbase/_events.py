"""The journal payloads BatenBase writes: one typed Struct per event type.

Kinds live in category 0xB (BatenBase). Compatibility rules:

1. A kind, once shipped, keeps its meaning; new event types take new type ids.
2. Adding a field with a default is compatible; renaming, retyping or requiring one bumps the
   version and needs an upcaster.
3. ``data`` and ``details`` are the caller's JSON as canonical bytes (sorted keys, compact), so
   the stored payload, and therefore its BLAKE3 content hash, does not depend on dict order.
"""

from __future__ import annotations

import msgspec

from batpak import event_payload

BLOCK_SCOPE = "bb.blocks"
AUDIT_SCOPE = "bb.audit"
READS_SCOPE = "bb.reads"
OPERATOR_SCOPE = "bb.operator"


@event_payload(category=0xB, type_id=0x001)
class BlockPut(msgspec.Struct):
    """A put (create, update or restore) of one key."""

    key: str
    data: bytes
    v: int
    h: int
    rev: int
    f: int
    l: int  # noqa: E741 - the spec names the field
    t: float
    observer: str
    idem: bytes = b""  # a client's Idempotency-Key: digest of (observer, key) + request hash


@event_payload(category=0xB, type_id=0x002)
class BlockDeleted(msgspec.Struct):
    """A soft delete: a new revision with h=1 that keeps the data for history."""

    key: str
    data: bytes
    v: int
    h: int
    rev: int
    f: int
    l: int  # noqa: E741
    t: float
    observer: str
    idem: bytes = b""


@event_payload(category=0xB, type_id=0x010)
class AuditRecorded(msgspec.Struct):
    """A service or caller audit event."""

    kind: str
    observer: str
    details: bytes
    t: float
    idem: bytes = b""


class ReadRow(msgspec.Struct, array_like=True):
    observer: str
    key: str
    rev: int
    t: float


@event_payload(category=0xB, type_id=0x011)
class ReadsRecorded(msgspec.Struct):
    """A batch of read receipts (one append per batch, never one per read)."""

    reads: list[ReadRow]


class IdemRow(msgspec.Struct, array_like=True):
    idem: bytes
    seq: int


@event_payload(category=0xB, type_id=0x012)
class IdemCarried(msgspec.Struct):
    """Idempotency keys of block events a compaction is about to drop, so a late retry is
    still recognised (and answered as expired) instead of writing again."""

    rows: list[IdemRow]


@event_payload(category=0xB, type_id=0x101)
class TenantCreated(msgspec.Struct):
    name: str
    plan: str
    t: float


@event_payload(category=0xB, type_id=0x102)
class PlanSet(msgspec.Struct):
    name: str
    plan: str
    t: float


@event_payload(category=0xB, type_id=0x103)
class TokenIssued(msgspec.Struct):
    token_id: str
    tenant: str | None
    observer: str
    role: str
    scopes: list[int]
    digest: bytes
    t: float


@event_payload(category=0xB, type_id=0x104)
class TokenRevoked(msgspec.Struct):
    token_id: str
    t: float


@event_payload(category=0xB, type_id=0x105)
class ReadReceiptsSet(msgspec.Struct):
    name: str
    enabled: bool
    t: float


BLOCK_KINDS = (0xB001, 0xB002)
AUDIT_KIND = 0xB010
READS_KIND = 0xB011
IDEM_KIND = 0xB012
OPERATOR_KINDS = (0xB101, 0xB102, 0xB103, 0xB104, 0xB105)
