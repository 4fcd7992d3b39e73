"""StoreView: what the ten operations need from a store, and the records it hands back.

The ops validate requests and shape acks; a view only answers well-formed questions.
``refhost.batpak_view.BatpakView`` answers them from a real ``batpak.Store``;
``refhost.fixture.FixtureView`` answers them with the manifest's fixture values, so that every
op golden can be reproduced byte for byte. A view raises ``ViewError`` when the store fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from batpak import Coordinate


@dataclass(frozen=True, slots=True)
class CommitReceipt:
    """What an append returned, in ack terms."""

    event_id: int
    global_sequence: int
    content_hash: bytes
    key_id: bytes
    signature: bytes | None
    extensions: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One committed event as ``event.get`` reports it (header content hash, raw payload)."""

    event_id: int
    global_sequence: int
    timestamp_us: int
    correlation_id: int
    causation_id: int | None
    kind: int
    entity: str
    scope: str
    payload: bytes
    content_hash: bytes


@dataclass(frozen=True, slots=True)
class SummaryRecord:
    """One index entry as ``event.query``/``event.walk`` report it (chain event_hash)."""

    event_id: int
    global_sequence: int
    wall_ms: int
    clock: int
    correlation_id: int
    causation_id: int | None
    kind: int
    entity: str
    scope: str
    event_hash: bytes


@dataclass(frozen=True, slots=True)
class RegionQuery:
    """A validated region: entity prefix, exact scope, kind filter, per-entity clock range."""

    entity: str | None = None
    scope: str | None = None
    category: int | None = None
    exact_kind: int | None = None
    clock_range: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class ReceiptClaim:
    """A decoded ``receipt.verify`` request."""

    event_id: int
    global_sequence: int
    content_hash: bytes
    key_id: bytes
    signature: bytes | None
    extensions: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class Verdict:
    """``outcome`` is ``signed``, ``unsigned_accepted`` or ``invalid`` (then with a reason)."""

    outcome: str
    reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class ChainWalkQuery:
    start_event_id: int
    start_expected_hash: bytes | None
    end_event_id: int | None
    limit: int


@dataclass(frozen=True, slots=True)
class ReadWalkQuery:
    region: RegionQuery
    limit: int
    include_proof_refs: bool
    max_stale_ms: int | None


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    """A report body's canonical bytes, its identity hash and the op's truncation flag."""

    body: bytes
    body_hash: bytes
    truncated: bool


class StoreView(Protocol):
    """The store surface the ten operations run against."""

    def now_ms(self) -> int:
        """Unix milliseconds, for ``system.heartbeat``."""
        ...

    def commit(
        self, coord: Coordinate, kind: int, payload: bytes, idempotency_key: int | None
    ) -> CommitReceipt:
        """Append ``payload`` verbatim; a retried key returns the original receipt."""
        ...

    def get_event(self, event_id: int) -> EventRecord:
        """The committed event; ``ViewError`` when it does not exist."""
        ...

    def query_page(self, region: RegionQuery, after: int | None, limit: int) -> list[SummaryRecord]:
        """Up to ``limit`` matches with global_sequence > ``after``, in commit order."""
        ...

    def walk(self, event_id: int, limit: int) -> list[SummaryRecord]:
        """The event then its hash-chain parents (empty when the id is unknown)."""
        ...

    def verify_receipt(self, claim: ReceiptClaim) -> Verdict: ...

    def chain_walk(self, query: ChainWalkQuery) -> EvidenceReport: ...

    def store_resource(self) -> EvidenceReport: ...

    def read_walk(self, query: ReadWalkQuery) -> EvidenceReport: ...

    def projection_run(
        self, projection: str, entity: str, max_stale_ms: int | None
    ) -> EvidenceReport | None:
        """The projection's report, or None when no such projection is registered."""
        ...
