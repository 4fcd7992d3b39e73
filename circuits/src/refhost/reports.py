"""Evidence report bodies of the store, in the encoding of format.md §8.

Each body is a dict built in Rust field order and written with ``batpak.canonical.encode``:
u128 ids are bin8(16) big-endian, 32-byte hashes are int arrays, unit variants are strings
and data variants single-key maps. ``body_hash`` is BLAKE3 of the body bytes.

Computations taken from the reference (core/src/store/{chain_walk,read_walk,
store_resource_report}.rs): findings are sorted by the derived ``Ord`` of the finding enum
(variant order first, then fields in order); ``walk_digest`` is BLAKE3 of the canonical
encoding of the checked ``Vec<(u128, [u8; 32])>`` (event id, chain event_hash) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from batpak import canonical
from refhost.view import EvidenceReport

REPORT_SCHEMA_VERSION: Final = 1

CHAIN_WALK_FINDINGS: Final = (
    "InvalidLimit",
    "MissingStart",
    "MissingChainEntry",
    "StartHashMismatch",
    "EntryHashMismatch",
    "MissingParentLink",
    "ParentHashAmbiguous",
    "OrderingRegression",
    "CycleDetected",
    "StoppedEarlyReadFailure",
    "TruncatedByLimit",
    "EndNotReached",
)
READ_WALK_FINDINGS: Final = ("InputFrontierUnknown", "LimitedResults", "MissingBackingEntry")
READ_WALK_SOURCES: Final = ("EntityPrefix", "Scope", "FactExact", "FactCategory", "ClockRange")

Field = int | bytes | str


@dataclass(frozen=True, slots=True)
class Finding:
    """A data-variant finding; ``fields`` in Rust order. ids are ints (u128), hashes bytes."""

    variant: str
    fields: tuple[tuple[str, Field], ...]
    u128_fields: frozenset[str] = frozenset()

    def sort_key(self, order: Sequence[str]) -> tuple[object, ...]:
        values = tuple(v.encode() if isinstance(v, str) else v for _, v in self.fields)
        return (order.index(self.variant), *values)

    def wire(self) -> object:
        if not self.fields:
            return self.variant
        body: dict[str, object] = {}
        for name, value in self.fields:
            if name in self.u128_fields:
                assert isinstance(value, int)
                body[name] = canonical.u128_to_bytes(value)
            elif isinstance(value, bytes):
                body[name] = canonical.byte_array(value)
            else:
                body[name] = value
        return {self.variant: body}


def finding(variant: str, *fields: tuple[str, Field], ids: tuple[str, ...] = ()) -> Finding:
    return Finding(variant, tuple(fields), frozenset(ids))


def _sorted(findings: Sequence[Finding], order: Sequence[str]) -> list[object]:
    return [f.wire() for f in sorted(findings, key=lambda f: f.sort_key(order))]


def seal(body: object, truncated: bool) -> EvidenceReport:
    data = canonical.encode(body)
    return EvidenceReport(data, canonical.digest(data), truncated)


def _opt_id(value: int | None) -> bytes | None:
    return None if value is None else canonical.u128_to_bytes(value)


def walk_digest(checked: Sequence[tuple[int, bytes]]) -> bytes:
    pairs = [[canonical.u128_to_bytes(i), canonical.byte_array(h)] for i, h in checked]
    return canonical.digest(canonical.encode(pairs))


def chain_walk_body(
    checked_count: int,
    first_ref: int | None,
    last_ref: int | None,
    digest: bytes,
    findings: Sequence[Finding],
) -> dict[str, object]:
    """The ``ChainWalkReportBody`` map (mode Linear), findings sorted."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "mode": "Linear",
        "checked_count": checked_count,
        "first_ref": _opt_id(first_ref),
        "last_ref": _opt_id(last_ref),
        "walk_digest": canonical.byte_array(digest),
        "findings": _sorted(findings, CHAIN_WALK_FINDINGS),
    }


def chain_walk_report(
    checked: Sequence[tuple[int, bytes]], findings: Sequence[Finding]
) -> EvidenceReport:
    """The report of a walk that checked ``checked``; truncated = a TruncatedByLimit finding."""
    body = chain_walk_body(
        len(checked),
        checked[0][0] if checked else None,
        checked[-1][0] if checked else None,
        walk_digest(checked),
        findings,
    )
    truncated = any(f.variant == "TruncatedByLimit" for f in findings)
    return seal(body, truncated)


@dataclass(frozen=True, slots=True)
class ProofRef:
    event_id: int
    global_sequence: int
    event_hash: bytes


def read_walk_body(
    *,
    source_refs: Sequence[Finding],
    max_stale_ms: int | None,
    frontier: tuple[int, int] | None,
    requested_limit: int | None,
    matched_count: int,
    returned_count: int,
    dropped: int | None,
    proof_refs: Sequence[ProofRef] | None,
    findings: Sequence[Finding],
) -> dict[str, object]:
    """The ``ReadWalkReportBody`` map; ``dropped`` None is NotApplicable, proof refs too."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "source_refs": _sorted(source_refs, READ_WALK_SOURCES),
        "replay_mode": "Current",
        "freshness_intent": "Consistent"
        if max_stale_ms is None
        else {"MaybeStale": {"max_stale_ms": max_stale_ms}},
        "input_frontier": None
        if frontier is None
        else {"kind": "Visible", "wall_ms": frontier[0], "global_sequence": frontier[1]},
        "requested_limit": requested_limit,
        "matched_count": matched_count,
        "returned_count": returned_count,
        "dropped_limited_count": "NotApplicable" if dropped is None else {"Known": dropped},
        "proof_refs": "NotApplicable"
        if proof_refs is None
        else {
            "Known": [
                {
                    "event_id": canonical.u128_to_bytes(p.event_id),
                    "global_sequence": p.global_sequence,
                    "event_hash": canonical.byte_array(p.event_hash),
                }
                for p in proof_refs
            ]
        },
        "findings": _sorted(findings, READ_WALK_FINDINGS),
    }


def read_walk_report(**fields: Any) -> EvidenceReport:
    """Seal a ``read_walk_body``; truncated = ``dropped_limited_count`` is Known and > 0."""
    dropped = fields["dropped"]
    return seal(read_walk_body(**fields), dropped is not None and dropped > 0)


STAGES: Final = ("accepted", "written", "durable", "visible", "applied", "emitted")


@dataclass(frozen=True, slots=True)
class ResourceFacts:
    """The store facts a ``StoreResourceReportBody`` carries (see ``store_resource_report``)."""

    data_dir_identity_hash: bytes
    event_count: int
    global_sequence: int
    visible_sequence: int
    segment_max_bytes: int
    fd_budget: int
    restart_policy: object
    queue_len: int
    capacity: int
    frontier: dict[str, tuple[int, int]]
    visible_minus_durable_seq: int
    oldest_pending_write_age_ms: int | None
    index_topology: str
    tile_count: int
    open_report: object
    platform_evidence: object


def store_resource_body(facts: ResourceFacts) -> dict[str, object]:
    """The ``StoreResourceReportBody`` map."""
    hlc: dict[str, object] = {}
    for stage in STAGES:
        wall_ms, seq = facts.frontier[stage]
        hlc[f"{stage}_wall_ms"] = wall_ms
        hlc[f"{stage}_global_sequence"] = seq
    hlc["visible_minus_durable_seq"] = facts.visible_minus_durable_seq
    hlc["oldest_pending_write_age_ms"] = facts.oldest_pending_write_age_ms
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "data_dir_identity_hash": canonical.byte_array(facts.data_dir_identity_hash),
        "event_count": facts.event_count,
        "global_sequence": facts.global_sequence,
        "visible_sequence": facts.visible_sequence,
        "segment_max_bytes": facts.segment_max_bytes,
        "fd_budget": facts.fd_budget,
        "restart_policy": facts.restart_policy,
        "writer_pressure": {"queue_len": facts.queue_len, "capacity": facts.capacity},
        "frontier": hlc,
        "index_topology": facts.index_topology,
        "tile_count": facts.tile_count,
        "open_report": facts.open_report,
        "platform_evidence": facts.platform_evidence,
    }


def store_resource_report(facts: ResourceFacts) -> EvidenceReport:
    """Seal a ``store_resource_body``; never truncated."""
    return seal(store_resource_body(facts), False)


LINUX_PLATFORM_EVIDENCE: Final = {
    "host": {"process_clock_epoch_marker_ns": 0, "monotonic_clock": "ProcessLocalInstantAnchor"},
    "store_path": {
        "path_status": "ObservedDirectory",
        "parent_dir_sync": "UnixFsync",
        "lock_leaf_symlink_protection": "AtomicNoFollow",
        "mmap_index": "FileBacked",
        "sealed_segment_mmap": "FileBacked",
        "active_segment_read": "UnixReadAt",
    },
    "admission": {
        "store_lock": "AtomicNoFollow",
        "parent_dir_sync": "UnixFsync",
        "mmap_index": "FileBacked",
        "sealed_segment_mmap": "FileBacked",
    },
}
"""The platform labels batpak-py claims on Linux: the reference fixture's variant set,
with the process clock marker pinned to 0 so the body stays deterministic per store state."""
