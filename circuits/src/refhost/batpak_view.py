"""BatpakView: the ``StoreView`` of a real, open ``batpak.Store``.

Reads go through the public Store API only. Where the Python store has no counterpart to a
reference fact, the choice is stated in ``store_resource`` and in docs/reference-host.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Final

from batpak import (
    AppendOptions,
    AppendReceipt,
    BatchAppendItem,
    Coordinate,
    DiskPos,
    IndexEntry,
    KindFilter,
    Region,
    Store,
    StoreError,
    canonical,
)
from batpak.event import ZERO_HASH
from refhost.errors import ViewError
from refhost.reports import (
    LINUX_PLATFORM_EVIDENCE,
    STAGES,
    Finding,
    ProofRef,
    ResourceFacts,
    chain_walk_report,
    finding,
    read_walk_report,
    store_resource_report,
)
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

ProjectionRunner = Callable[[Store, str, int | None], EvidenceReport]
"""Builds a projection-run report for ``(store, entity, max_stale_ms)``."""

NO_RESTARTS: Final = {"Bounded": {"max_restarts": 0, "within_ms": 0}}
"""batpak-py's writer never restarts after a crash (it fails closed with WriterCrashed)."""


def to_region(query: RegionQuery) -> Region:
    kinds = KindFilter(exact=query.exact_kind, category=query.category)
    return Region(query.entity, query.scope, kinds)


def summary(entry: IndexEntry) -> SummaryRecord:
    return SummaryRecord(
        event_id=entry.event_id,
        global_sequence=entry.global_sequence,
        wall_ms=entry.wall_ms,
        clock=entry.clock,
        correlation_id=entry.correlation_id,
        causation_id=entry.causation_id,
        kind=entry.event_kind,
        entity=entry.entity,
        scope=entry.scope,
        event_hash=entry.event_hash,
    )


class BatpakView:
    """Answers the ten ops from ``store``; ``projections`` maps a projection id to a runner
    (the reference host registers none, so every ``evidence.projection_run`` is unknown)."""

    def __init__(
        self, store: Store, projections: Mapping[str, ProjectionRunner] | None = None
    ) -> None:
        self._store = store
        self._projections = dict(projections or {})

    def now_ms(self) -> int:
        return self._store.config.clock() // 1000

    def commit(
        self, coord: Coordinate, kind: int, payload: bytes, idempotency_key: int | None
    ) -> CommitReceipt:
        """Append one event as refbat does: a one-item ``append_batch``, durable before it is
        visible and on disk when this returns. On a store opened with group commit,
        concurrent commits' batches share their group's fsync."""
        try:
            options = AppendOptions(idempotency_key=idempotency_key)
            item = BatchAppendItem.from_msgpack_bytes(coord, kind, payload, options)
            (receipt,) = self._store.append_batch([item])
        except (StoreError, ValueError) as exc:
            raise ViewError(str(exc)) from None
        return CommitReceipt(
            event_id=receipt.event_id,
            global_sequence=receipt.global_sequence,
            content_hash=receipt.content_hash,
            key_id=receipt.key_id,
            signature=receipt.signature,
            extensions=dict(receipt.extensions),
        )

    def get_event(self, event_id: int) -> EventRecord:
        try:
            stored = self._store.get(event_id)
        except StoreError as exc:
            raise ViewError(str(exc)) from None
        header = stored.event.header
        return EventRecord(
            event_id=header.event_id,
            global_sequence=stored.global_sequence,
            timestamp_us=header.timestamp_us,
            correlation_id=header.correlation_id,
            causation_id=header.causation_id,
            kind=header.event_kind,
            entity=stored.coordinate.entity,
            scope=stored.coordinate.scope,
            payload=stored.event.payload,
            content_hash=header.content_hash,
        )

    def _entry(self, event_id: int) -> IndexEntry | None:
        # The index is private; find the entry in its entity stream, as refbat did.
        try:
            entity = self._store.get(event_id).coordinate.entity
        except StoreError:
            return None
        for entry in self._store.by_entity(entity):
            if entry.event_id == event_id:
                return entry
        return None

    def query_page(self, region: RegionQuery, after: int | None, limit: int) -> list[SummaryRecord]:
        try:
            page = self._store.query_entries_after(to_region(region), after, limit)
        except StoreError as exc:
            raise ViewError(str(exc)) from None
        return [summary(entry) for entry in page]

    def walk(self, event_id: int, limit: int) -> list[SummaryRecord]:
        if self._entry(event_id) is None:
            return []  # the reference's walk_ancestors yields nothing for an unknown id
        try:
            return [summary(entry) for entry in self._store.walk_ancestors(event_id, limit)]
        except StoreError as exc:
            raise ViewError(str(exc)) from None

    def verify_receipt(self, claim: ReceiptClaim) -> Verdict:
        entry = self._entry(claim.event_id)
        if entry is None:
            return Verdict("invalid", "missing_committed_event")
        # The wire receipt has no disk position; the committed one stands in for it.
        receipt = AppendReceipt(
            event_id=claim.event_id,
            global_sequence=claim.global_sequence,
            disk_pos=DiskPos(entry.segment_id, entry.offset, entry.length),
            content_hash=claim.content_hash,
            key_id=claim.key_id,
            signature=claim.signature,
            extensions=claim.extensions,
        )
        verdict = self._store.verify_append_receipt(receipt)
        reason = None if verdict.reason is None else str(verdict.reason)
        return Verdict(str(verdict.outcome), reason)

    # -- evidence ---------------------------------------------------------------------------

    def chain_walk(self, query: ChainWalkQuery) -> EvidenceReport:
        """The linear chain walk of core/src/store/chain_walk.rs over the public Store API."""
        start = self._entry(query.start_event_id)
        if start is None:
            return chain_walk_report(
                [], [finding("MissingStart", ("event_id", query.start_event_id), ids=("event_id",))]
            )
        stream = self._store.by_entity(start.entity)
        by_id = {e.event_id: e for e in stream}
        findings: list[Finding] = []
        checked: list[tuple[int, bytes]] = []
        visited: set[int] = set()
        cursor: int | None = query.start_event_id
        reached_end = False
        pending: bytes | None = None
        while len(checked) < query.limit and cursor is not None:
            current, cursor = cursor, None
            if current in visited:
                findings.append(finding("CycleDetected", ("event_id", current), ids=("event_id",)))
                break
            visited.add(current)
            entry = by_id.get(current)
            if entry is None:
                findings.append(
                    finding("MissingChainEntry", ("event_id", current), ids=("event_id",))
                )
                break
            try:
                payload = self._store.get(current).event.payload
            except StoreError as exc:
                findings.append(
                    finding(
                        "StoppedEarlyReadFailure",
                        ("event_id", current),
                        ("reason", str(exc)),
                        ids=("event_id",),
                    )
                )
                break
            expected = query.start_expected_hash
            if not checked and expected is not None and expected != entry.event_hash:
                findings.append(
                    finding(
                        "StartHashMismatch",
                        ("event_id", current),
                        ("expected", expected),
                        ("observed", entry.event_hash),
                        ids=("event_id",),
                    )
                )
            observed = canonical.digest(payload)
            checked.append((current, entry.event_hash))
            if observed != entry.event_hash:
                findings.append(
                    finding(
                        "EntryHashMismatch",
                        ("event_id", current),
                        ("expected", entry.event_hash),
                        ("observed", observed),
                        ids=("event_id",),
                    )
                )
                break
            if query.end_event_id == current:
                reached_end = True
                break
            if entry.prev_hash == ZERO_HASH:
                break
            pending = entry.prev_hash
            parents = sorted(
                (
                    e
                    for e in stream
                    if e.event_hash == entry.prev_hash and e.global_sequence < entry.global_sequence
                ),
                key=lambda e: e.global_sequence,
            )
            if not parents:
                findings.append(
                    finding(
                        "MissingParentLink",
                        ("child_event_id", current),
                        ("expected_parent_hash", entry.prev_hash),
                        ids=("child_event_id",),
                    )
                )
                break
            parent = parents[-1]
            if len(parents) > 1:
                findings.append(
                    finding(
                        "ParentHashAmbiguous",
                        ("child_event_id", current),
                        ("expected_parent_hash", entry.prev_hash),
                        ("selected_parent_event_id", parent.event_id),
                        ("matching_parent_count", len(parents)),
                        ids=("child_event_id", "selected_parent_event_id"),
                    )
                )
            cursor = parent.event_id
        if not findings and len(checked) == query.limit and pending is not None:
            findings.append(
                finding("TruncatedByLimit", ("limit", query.limit), ("next_parent_hash", pending))
            )
        end = query.end_event_id
        if (
            not findings
            and not reached_end
            and end is not None
            and (not checked or checked[-1][0] != end)
        ):
            findings.append(
                finding(
                    "EndNotReached", ("expected_end_event_id", end), ids=("expected_end_event_id",)
                )
            )
        return chain_walk_report(checked, findings)

    def read_walk(self, query: ReadWalkQuery) -> EvidenceReport:
        region = query.region
        try:
            hits = self._store.query(to_region(region))
        except StoreError as exc:
            raise ViewError(str(exc)) from None
        if region.clock_range is not None:
            low, high = region.clock_range
            hits = [e for e in hits if low <= e.clock <= high]
        frontier = self._store.frontier().visible
        matched = len(hits)
        dropped = matched - query.limit if matched > query.limit else None
        selected = hits[: query.limit]
        findings: list[Finding] = []
        if dropped is not None:
            findings.append(finding("LimitedResults", ("dropped_count", dropped)))
        sources: list[Finding] = []
        if region.entity is not None:
            sources.append(finding("EntityPrefix", ("prefix", region.entity)))
        if region.scope is not None:
            sources.append(finding("Scope", ("scope", region.scope)))
        if region.exact_kind is not None:
            sources.append(
                finding(
                    "FactExact",
                    ("category", region.exact_kind >> 12),
                    ("type_id", region.exact_kind & 0xFFF),
                )
            )
        if region.category is not None:
            sources.append(finding("FactCategory", ("category", region.category)))
        if region.clock_range is not None:
            sources.append(
                finding(
                    "ClockRange",
                    ("start_clock", region.clock_range[0]),
                    ("end_clock", region.clock_range[1]),
                )
            )
        proofs = (
            [ProofRef(e.event_id, e.global_sequence, e.event_hash) for e in selected]
            if query.include_proof_refs
            else None
        )
        return read_walk_report(
            source_refs=sources,
            max_stale_ms=query.max_stale_ms,
            frontier=(frontier.wall_ms, max(frontier.global_sequence, 0)),
            requested_limit=query.limit,
            matched_count=matched,
            returned_count=len(selected),
            dropped=dropped,
            proof_refs=proofs,
            findings=findings,
        )

    def store_resource(self) -> EvidenceReport:
        """Facts batpak-py has no counterpart for are fixed: fd_budget 0, no writer restarts,
        queue_len 0, emitted = visible, no pending-write age, index "aos" with 0 tiles, no
        open report, and the Linux platform labels of ``LINUX_PLATFORM_EVIDENCE``."""
        store = self._store
        config = store.config
        marks = store.frontier()
        points = {
            "accepted": marks.accepted,
            "written": marks.written,
            "durable": marks.durable,
            "visible": marks.visible,
            "applied": marks.applied,
            "emitted": marks.visible,
        }
        frontier = {s: (points[s].wall_ms, max(points[s].global_sequence, 0)) for s in STAGES}
        try:
            event_count = len(store.query(Region.all()))
        except StoreError as exc:
            raise ViewError(str(exc)) from None
        identity = os.fsencode(os.path.realpath(config.path))
        facts = ResourceFacts(
            data_dir_identity_hash=canonical.digest(identity),
            event_count=event_count,
            global_sequence=marks.accepted.global_sequence + 1,
            visible_sequence=marks.visible.global_sequence + 1,
            segment_max_bytes=config.segment_max_bytes,
            fd_budget=0,
            restart_policy=NO_RESTARTS,
            queue_len=0,
            capacity=config.writer_channel_capacity,
            frontier=frontier,
            visible_minus_durable_seq=marks.visible.global_sequence - marks.durable.global_sequence,
            oldest_pending_write_age_ms=None,
            index_topology="aos",
            tile_count=0,
            open_report=None,
            platform_evidence=LINUX_PLATFORM_EVIDENCE,
        )
        return store_resource_report(facts)

    def projection_run(
        self, projection: str, entity: str, max_stale_ms: int | None
    ) -> EvidenceReport | None:
        runner = self._projections.get(projection)
        return None if runner is None else runner(self._store, entity, max_stale_ms)
