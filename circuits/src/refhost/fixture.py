"""FixtureView: a ``StoreView`` that answers with the op manifest's fixture values.

The manifest (shared/vectors/netbat-ops/batpak.manifest.json) pins each op's golden input and
output; the outputs are the refbat fixtures (clock 1700000000000, event id 0123…cdef,
sequence 42, hashes aa…/bb…, report ``a1b2c3d4`` with a zero body hash). ``from_manifest``
reads those values from the ack fixtures, so the ops reproduce every golden output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batpak import Coordinate
from refhost.view import (
    ChainWalkQuery,
    CommitReceipt,
    EventRecord,
    EvidenceReport,
    ReadWalkQuery,
    ReceiptClaim,
    RegionQuery,
    SummaryRecord,
    Verdict,
)


class FixtureView:
    """Every call answers with a fixed value; calls are recorded in ``calls``."""

    def __init__(
        self,
        *,
        now_ms: int,
        receipt: CommitReceipt,
        event: EventRecord,
        summary: SummaryRecord,
        verdict: Verdict,
        report: EvidenceReport,
        projections: frozenset[str],
    ) -> None:
        self._now_ms = now_ms
        self._receipt = receipt
        self._event = event
        self._summary = summary
        self._verdict = verdict
        self._report = report
        self._projections = projections
        self.calls: list[tuple[str, object]] = []

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> FixtureView:
        fixtures = {e["name"]: e["fixtureValue"] for e in manifest["events"]}
        commit = fixtures["bank.commit.ack"]
        get = fixtures["event.get.ack"]
        row = fixtures["event.query.summary"]
        verify = fixtures["receipt.verify.ack"]
        evidence = fixtures["evidence.chain_walk.ack"]
        projection = fixtures["evidence.projection_run.request"]["projection"]
        return cls(
            now_ms=fixtures["system.heartbeat.ack"]["server_ts_ms"],
            receipt=CommitReceipt(
                event_id=int(commit["event_id_hex"], 16),
                global_sequence=commit["sequence"],
                content_hash=bytes.fromhex(commit["content_hash_hex"]),
                key_id=bytes.fromhex(commit["key_id_hex"]),
                signature=None
                if commit["signature_hex"] is None
                else bytes.fromhex(commit["signature_hex"]),
                extensions={k: bytes.fromhex(v) for k, v in commit["extensions"].items()},
            ),
            event=EventRecord(
                event_id=int(get["event_id_hex"], 16),
                global_sequence=get["sequence"],
                timestamp_us=get["timestamp_us"],
                correlation_id=int(get["correlation_id_hex"], 16),
                causation_id=None
                if get["causation_id_hex"] is None
                else int(get["causation_id_hex"], 16),
                kind=(get["kind_category"] << 12) | get["kind_type_id"],
                entity=get["entity"],
                scope=get["scope"],
                payload=bytes.fromhex(get["payload_hex"]),
                content_hash=bytes.fromhex(get["content_hash_hex"]),
            ),
            summary=SummaryRecord(
                event_id=int(row["event_id_hex"], 16),
                global_sequence=row["global_sequence"],
                wall_ms=row["wall_ms"],
                clock=row["clock"],
                correlation_id=int(row["correlation_id_hex"], 16),
                causation_id=None
                if row["causation_id_hex"] is None
                else int(row["causation_id_hex"], 16),
                kind=(row["kind_category"] << 12) | row["kind_type_id"],
                entity=row["entity"],
                scope=row["scope"],
                event_hash=bytes.fromhex(row["content_hash_hex"]),
            ),
            verdict=Verdict(verify["outcome"], verify["reason_code"]),
            report=EvidenceReport(
                bytes.fromhex(evidence["report_hex"]),
                bytes.fromhex(evidence["body_hash_hex"]),
                evidence["truncated"],
            ),
            projections=frozenset({projection}),
        )

    def now_ms(self) -> int:
        self.calls.append(("now_ms", None))
        return self._now_ms

    def commit(
        self, coord: Coordinate, kind: int, payload: bytes, idempotency_key: int | None
    ) -> CommitReceipt:
        self.calls.append(("commit", (coord, kind, payload, idempotency_key)))
        return self._receipt

    def get_event(self, event_id: int) -> EventRecord:
        self.calls.append(("get_event", event_id))
        return self._event

    def query_page(self, region: RegionQuery, after: int | None, limit: int) -> list[SummaryRecord]:
        self.calls.append(("query_page", (region, after, limit)))
        return [self._summary]

    def walk(self, event_id: int, limit: int) -> list[SummaryRecord]:
        self.calls.append(("walk", (event_id, limit)))
        return [self._summary]

    def verify_receipt(self, claim: ReceiptClaim) -> Verdict:
        self.calls.append(("verify_receipt", claim))
        return self._verdict

    def chain_walk(self, query: ChainWalkQuery) -> EvidenceReport:
        self.calls.append(("chain_walk", query))
        return self._report

    def store_resource(self) -> EvidenceReport:
        self.calls.append(("store_resource", None))
        return self._report

    def read_walk(self, query: ReadWalkQuery) -> EvidenceReport:
        self.calls.append(("read_walk", query))
        return self._report

    def projection_run(
        self, projection: str, entity: str, max_stale_ms: int | None
    ) -> EvidenceReport | None:
        self.calls.append(("projection_run", (projection, entity, max_stale_ms)))
        return self._report if projection in self._projections else None
