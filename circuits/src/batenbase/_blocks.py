"""The in-memory projection of one tenant journal: revisions per key, live count, audit rows
and read receipts. Rebuilt from the journal on open; never the source of truth."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator

import blake3
import msgspec

from batenbase._events import AuditRecorded, BlockDeleted, BlockPut, ReadRow
from batenbase._validate import decode_json
from batenbase.model import AuditEvent, Block


class Revision(msgspec.Struct, frozen=True):
    """One stored revision of a key, with the journal facts about its event. Only a key's
    newest revision holds its ``data`` in memory; older ones have None and are read back
    from the journal when asked for (:meth:`Tenant.with_data`)."""

    key: str
    data: bytes | None
    v: int
    h: int
    rev: int
    f: int
    l: int  # noqa: E741
    t: float
    observer: str
    seq: int
    hash: bytes
    idem: bytes = b""

    def block(self, *, redact: bool = False) -> Block:
        digest = self.hash.hex()
        return Block(
            key=self.key,
            f=self.f,
            l=self.l,
            v=self.v,
            h=self.h,
            data=None if redact or self.data is None else decode_json(self.data),
            rev=self.rev,
            seq=self.seq,
            hash=digest,
            etag=etag(self.key, self.rev, digest),
        )


class AuditRow(msgspec.Struct, frozen=True):
    seq: int
    t: float
    kind: str
    observer: str
    details: bytes
    hash: bytes
    key: str | None = None  # set for block events, so visibility can be checked
    rev: int = 0
    idem: bytes = b""

    def event(self) -> AuditEvent:
        return AuditEvent(
            self.seq, self.t, self.kind, self.observer, decode_json(self.details), self.hash.hex()
        )


def etag(key: str, rev: int, digest: str) -> str:
    """A short, stable tag of (key, rev, hash)."""
    return blake3.blake3(f"{key}\x00{rev}\x00{digest}".encode()).hexdigest()[:32]


class BlockIndex:
    """Revisions per key (oldest first), sorted keys, live count, audit rows and receipts."""

    def __init__(self) -> None:
        self.revisions: dict[str, list[Revision]] = {}
        self.keys: list[str] = []
        self.live = 0
        self.audit: list[AuditRow] = []
        self.audit_lock = threading.Lock()
        self.reads: dict[str, list[ReadRow]] = {}
        self.idem: dict[bytes, tuple[bytes, int]] = {}  # key digest -> (request hash, seq)

    def latest(self, key: str) -> Revision | None:
        revs = self.revisions.get(key)
        return revs[-1] if revs else None

    def durable(self, key: str, upto: int) -> list[Revision]:
        """The key's revisions with seq <= upto (what readers may see), oldest first."""
        revs = self.revisions.get(key, [])
        if revs and revs[-1].seq <= upto:
            return revs
        return [r for r in revs if r.seq <= upto]

    def keys_from(self, prefix: str, after: str | None) -> Iterator[str]:
        start = prefix if after is None or after < prefix else after
        i = (
            bisect.bisect_right(self.keys, start)
            if after is not None
            else bisect.bisect_left(self.keys, start)
        )
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            yield self.keys[i]
            i += 1

    def apply_block(self, event: BlockPut | BlockDeleted, seq: int, h: bytes) -> None:
        previous = self.latest(event.key)
        if previous is None:
            bisect.insort(self.keys, event.key)
            self.revisions[event.key] = []
        was_live = previous is not None and previous.h == 0
        revision = Revision(
            event.key,
            event.data,
            event.v,
            event.h,
            event.rev,
            event.f,
            event.l,
            event.t,
            event.observer,
            seq,
            h,
            event.idem,
        )
        self.remember(event.idem, seq)
        self._push(self.revisions[event.key], revision)
        self.live += (event.h == 0) - was_live
        kind = "bb.block.put" if isinstance(event, BlockPut) else "bb.block.delete"
        details = msgspec.json.encode(
            {"key": event.key, "rev": event.rev, "v": event.v, "h": event.h}
        )
        self.add_audit(
            AuditRow(seq, event.t, kind, event.observer, details, h, event.key, event.rev)
        )

    def restore(self, revision: Revision) -> None:
        """Re-add a checkpointed revision (its audit row comes back separately)."""
        if revision.key not in self.revisions:
            bisect.insort(self.keys, revision.key)
            self.revisions[revision.key] = []
        revs = self.revisions[revision.key]
        was_live = bool(revs) and revs[-1].h == 0
        self.remember(revision.idem, revision.seq)
        self._push(revs, revision)
        self.live += (revision.h == 0) - was_live

    def apply_audit(self, event: AuditRecorded, seq: int, h: bytes) -> None:
        row = AuditRow(seq, event.t, event.kind, event.observer, event.details, h)
        self.add_audit(msgspec.structs.replace(row, idem=event.idem))

    @staticmethod
    def _push(revs: list[Revision], revision: Revision) -> None:
        if revs and revs[-1].data is not None:
            revs[-1] = msgspec.structs.replace(revs[-1], data=None)
        revs.append(revision)

    def remember(self, idem: bytes, seq: int) -> None:
        if idem:
            self.idem[idem[:32]] = (idem[32:], seq)

    def revision_at(self, key: str, seq: int) -> Revision | None:
        return next((r for r in self.revisions.get(key, []) if r.seq == seq), None)

    def audit_at(self, seq: int) -> AuditRow | None:
        with self.audit_lock:
            i = bisect.bisect_left(self.audit, seq, key=lambda r: r.seq)
            return self.audit[i] if i < len(self.audit) and self.audit[i].seq == seq else None

    def add_audit(self, row: AuditRow) -> None:
        self.remember(row.idem, row.seq)
        # Audit appends run outside the tenant lock, so rows may arrive out of order.
        with self.audit_lock:
            if self.audit and self.audit[-1].seq > row.seq:
                bisect.insort(self.audit, row, key=lambda r: r.seq)
            else:
                self.audit.append(row)

    def audit_rows(self) -> list[AuditRow]:
        with self.audit_lock:
            return list(self.audit)

    def apply_reads(self, rows: list[ReadRow]) -> None:
        for row in rows:
            self.reads.setdefault(row.key, []).append(row)
