"""The ten reference-host operations as pure ``(request_bytes, view) -> ack_bytes`` functions.

Shapes, limits and error texts follow netbat.md §4 (the historical refbat host at d69d9941).
Every failure raises ``InvalidInput`` (bad request) or ``OpFailed`` (store failure); the
dispatcher turns either into a ``handler`` error. ``OPERATIONS`` lists the ten in manifest
order with their descriptor facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from batpak import Coordinate
from batpak.errors import InvalidCoordinate, InvalidExtension
from batpak.receipt import check_extension_key
from refhost import wire
from refhost.errors import InvalidInput, OpFailed, ViewError
from refhost.view import (
    ChainWalkQuery,
    CommitReceipt,
    EvidenceReport,
    ReadWalkQuery,
    ReceiptClaim,
    RegionQuery,
    StoreView,
    SummaryRecord,
)

EVENT_QUERY_MAX_LIMIT: Final = 1024
EVENT_WALK_MAX_LIMIT: Final = 1024
EVIDENCE_MAX_LIMIT: Final = 1024
EVIDENCE_READ_WALK_PROOF_MAX_LIMIT: Final = 64
MAX_OUTPUT_BYTES: Final = 32768
"""netbat DEFAULT_MAX_OUTPUT_BYTES: evidence acks above it are refused as invalid_input."""

Op = Callable[[bytes, StoreView], bytes]


# --- shared validation --------------------------------------------------------------------


def _coordinate(entity: str, scope: str) -> Coordinate:
    return Coordinate(entity, scope)


def kind_error(category: int, type_id: int) -> str | None:
    """The Debug-style reason ``EventKind::try_custom`` refuses a kind, or None."""
    if category > 0xF:
        return f"CategoryOutOfRange {{ category: {category} }}"
    if category in (0x0, 0xD):
        return f"ReservedCategory {{ category: {category} }}"
    if type_id > 0xFFF:
        return f"TypeIdOutOfRange {{ type_id: {type_id} }}"
    return None


def region_from_wire(
    entity: str | None,
    scope: str | None,
    kind_category: int | None,
    kind_type_id: int | None,
    start_clock: int | None = None,
    end_clock: int | None = None,
) -> RegionQuery:
    """Map optional wire axes onto a region (refbat region_wire); raise ``InvalidInput``."""
    try:
        if entity is not None:
            _coordinate(entity, "refbat-wire-region")
    except InvalidCoordinate as exc:
        raise InvalidInput(f"entity: {exc}") from None
    try:
        if scope is not None:
            _coordinate("refbat:wire-region", scope)
    except InvalidCoordinate as exc:
        raise InvalidInput(f"scope: {exc}") from None
    category: int | None = None
    exact: int | None = None
    if kind_category is not None and kind_type_id is not None:
        reason = kind_error(kind_category, kind_type_id)
        if reason is not None:
            raise InvalidInput(f"kind_type_id: {reason}")
        exact = (kind_category << 12) | kind_type_id
    elif kind_category is not None:
        if kind_category > 0xF:
            raise InvalidInput(
                f"kind_category: kind_category must fit in 4 bits, got {kind_category}"
            )
        category = kind_category
    elif kind_type_id is not None:
        raise InvalidInput("kind_type_id: kind_type_id requires kind_category")
    clock_range: tuple[int, int] | None = None
    if start_clock is not None and end_clock is not None:
        if start_clock > end_clock:
            raise InvalidInput(f"start_clock must be <= end_clock, got {start_clock} > {end_clock}")
        clock_range = (start_clock, end_clock)
    elif start_clock is not None or end_clock is not None:
        raise InvalidInput("start_clock and end_clock must both be set or both omitted")
    return RegionQuery(entity, scope, category, exact, clock_range)


def _event_id(field: str, text: str) -> int:
    # refbat decode_event_id_hex: the length message names event_id_hex for every caller.
    try:
        raw = wire.decode_hex(text)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None
    if len(raw) != 16:
        raise InvalidInput(f"event_id_hex must decode to 16 bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


def _fixed(field: str, text: str, size: int) -> bytes:
    try:
        raw = wire.decode_hex(text)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None
    if len(raw) != size:
        raise InvalidInput(f"{field} must decode to {size} bytes, got {len(raw)}")
    return raw


def _evidence_id(field: str, text: str, size: int) -> bytes:
    # refbat evidence.rs: hex and length errors both read "<field>: <message>".
    try:
        raw = wire.decode_hex(text)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None
    if len(raw) != size:
        raise InvalidInput(f"{field}: expected {size} bytes, got {len(raw)}")
    return raw


def _summary(record: SummaryRecord) -> wire.EventSummary:
    return wire.EventSummary(
        event_id_hex=wire.id_hex(record.event_id),
        global_sequence=record.global_sequence,
        wall_ms=record.wall_ms,
        clock=record.clock,
        correlation_id_hex=wire.id_hex(record.correlation_id),
        causation_id_hex=None if record.causation_id is None else wire.id_hex(record.causation_id),
        kind_category=record.kind >> 12,
        kind_type_id=record.kind & 0xFFF,
        entity=record.entity,
        scope=record.scope,
        content_hash_hex=record.event_hash.hex(),
    )


def _positive_limit(limit: int, cap: int) -> int:
    if limit == 0:
        raise InvalidInput("limit must be greater than 0")
    return min(limit, cap)


def _evidence_ack(report: EvidenceReport) -> bytes:
    ack = wire.encode_ack(
        wire.EvidenceAck(
            report_hex=report.body.hex(),
            body_hash_hex=report.body_hash.hex(),
            truncated=report.truncated,
        )
    )
    if len(ack) > MAX_OUTPUT_BYTES:
        raise InvalidInput(
            f"evidence response is {len(ack)} bytes, over the {MAX_OUTPUT_BYTES}-byte "
            "transport limit; lower `limit` or disable proof refs"
        )
    return ack


# --- the ten operations -------------------------------------------------------------------


def system_heartbeat(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.HeartbeatRequest)
    return wire.encode_ack(wire.HeartbeatAck(nonce=request.nonce, server_ts_ms=view.now_ms()))


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """A validated ``bank.commit`` request: where, which kind, which bytes, which key."""

    coord: Coordinate
    kind: int
    payload: bytes
    idempotency_key: int | None


def parse_commit(data: bytes) -> CommitPlan:
    """Decode and validate a ``bank.commit`` request (netbat.md §4); raise ``InvalidInput``."""
    request = wire.decode_request(data, wire.BankCommitRequest)
    try:
        coord = _coordinate(request.entity, request.scope)
    except InvalidCoordinate as exc:
        raise InvalidInput(f"coordinate: {exc}") from None
    reason = kind_error(request.kind_category, request.kind_type_id)
    if reason is not None:
        raise InvalidInput(f"event kind: {reason}")
    try:
        payload = wire.decode_hex(request.payload_hex)
    except ValueError as exc:
        raise InvalidInput(f"payload_hex: {exc}") from None
    key: int | None = None
    if request.idempotency_key_hex is not None:
        try:
            key = _event_id("event_id_hex", request.idempotency_key_hex)
        except InvalidInput as exc:
            raise InvalidInput(f"idempotency_key_hex: {exc}") from None
        if key == 0:
            # batpak-py refuses a zero key (IdempotencyKey must be a non-zero u128).
            raise InvalidInput("idempotency_key_hex: idempotency key must be non-zero")
    kind = (request.kind_category << 12) | request.kind_type_id
    return CommitPlan(coord, kind, payload, key)


def commit_ack(receipt: CommitReceipt) -> bytes:
    """The ``bank.commit`` ack of an append receipt (extensions sorted bytewise)."""
    return wire.encode_ack(
        wire.BankCommitAck(
            event_id_hex=wire.id_hex(receipt.event_id),
            sequence=receipt.global_sequence,
            content_hash_hex=receipt.content_hash.hex(),
            key_id_hex=receipt.key_id.hex(),
            signature_hex=None if receipt.signature is None else receipt.signature.hex(),
            extensions={
                k: receipt.extensions[k].hex() for k in sorted(receipt.extensions, key=str.encode)
            },
        )
    )


def bank_commit(data: bytes, view: StoreView) -> bytes:
    """The bare op (refbat's option (a)): append through ``view.commit`` directly.

    The hosted ``bank.commit`` (``refhost.host``) uses ``parse_commit`` and ``commit_ack`` but
    appends through syncbat's ``Ctx`` and the validating effect backend instead.
    """
    plan = parse_commit(data)
    try:
        receipt = view.commit(plan.coord, plan.kind, plan.payload, plan.idempotency_key)
    except ViewError as exc:
        raise OpFailed(f"append: {exc}") from None
    return commit_ack(receipt)


def event_get(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.EventGetRequest)
    event_id = _event_id("event_id_hex", request.event_id_hex)
    try:
        record = view.get_event(event_id)
    except ViewError as exc:
        raise OpFailed(f"read event: {exc}") from None
    return wire.encode_ack(
        wire.EventGetAck(
            event_id_hex=wire.id_hex(record.event_id),
            sequence=record.global_sequence,
            timestamp_us=record.timestamp_us,
            correlation_id_hex=wire.id_hex(record.correlation_id),
            causation_id_hex=None
            if record.causation_id is None
            else wire.id_hex(record.causation_id),
            kind_category=record.kind >> 12,
            kind_type_id=record.kind & 0xFFF,
            entity=record.entity,
            scope=record.scope,
            payload_hex=record.payload.hex(),
            content_hash_hex=record.content_hash.hex(),
        )
    )


def event_query(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.EventQueryRequest)
    limit = _positive_limit(request.limit, EVENT_QUERY_MAX_LIMIT)
    region = region_from_wire(
        request.entity, request.scope, request.kind_category, request.kind_type_id
    )
    try:
        page = view.query_page(region, request.after_global_sequence, limit + 1)
    except ViewError as exc:
        raise OpFailed(f"query: {exc}") from None
    entries = [_summary(record) for record in page[:limit]]
    return wire.encode_ack(
        wire.EventQueryAck(
            entries=entries,
            next_after_global_sequence=entries[-1].global_sequence if entries else None,
            truncated=len(page) > limit,
        )
    )


def receipt_verify(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.BankCommitAck)
    event_id = _event_id("event_id_hex", request.event_id_hex)
    content_hash = _fixed("content_hash_hex", request.content_hash_hex, 32)
    key_id = _fixed("key_id_hex", request.key_id_hex, 32)
    signature = (
        None
        if request.signature_hex is None
        else _fixed("signature_hex", request.signature_hex, 64)
    )
    extensions: dict[str, bytes] = {}
    for key, value_hex in request.extensions.items():
        try:
            check_extension_key(key)
        except InvalidExtension as exc:
            raise InvalidInput(f"extension key: {exc}") from None
        try:
            extensions[key] = wire.decode_hex(value_hex)
        except ValueError as exc:
            raise InvalidInput(f"extension value hex: {exc}") from None
    claim = ReceiptClaim(event_id, request.sequence, content_hash, key_id, signature, extensions)
    try:
        verdict = view.verify_receipt(claim)
    except ViewError as exc:
        raise OpFailed(f"verify receipt: {exc}") from None
    return wire.encode_ack(
        wire.ReceiptVerifyAck(
            valid=verdict.outcome != "invalid",
            outcome=verdict.outcome,
            reason_code=verdict.reason_code,
        )
    )


def event_walk(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.EventWalkRequest)
    limit = _positive_limit(request.limit, EVENT_WALK_MAX_LIMIT)
    event_id = _event_id("event_id_hex", request.event_id_hex)
    try:
        walked = view.walk(event_id, limit)
    except ViewError as exc:
        raise OpFailed(f"read event: {exc}") from None
    return wire.encode_ack(wire.EventWalkAck(entries=[_summary(r) for r in walked]))


def evidence_chain_walk(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.ChainWalkRequest)
    if request.limit == 0:
        raise InvalidInput("limit must be greater than 0")
    start = int.from_bytes(_evidence_id("start_event_id_hex", request.start_event_id_hex, 16))
    expected = (
        None
        if request.start_expected_hash_hex is None
        else _evidence_id("start_expected_hash_hex", request.start_expected_hash_hex, 32)
    )
    end = (
        None
        if request.end_event_id_hex is None
        else int.from_bytes(_evidence_id("end_event_id_hex", request.end_event_id_hex, 16))
    )
    query = ChainWalkQuery(start, expected, end, min(request.limit, EVIDENCE_MAX_LIMIT))
    try:
        report = view.chain_walk(query)
    except ViewError as exc:
        raise OpFailed(f"chain walk evidence: {exc}") from None
    return _evidence_ack(report)


def evidence_store_resource(data: bytes, view: StoreView) -> bytes:
    wire.decode_request(data, wire.StoreResourceRequest)
    try:
        report = view.store_resource()
    except ViewError as exc:
        raise OpFailed(f"store resource evidence: {exc}") from None
    return _evidence_ack(report)


def evidence_read_walk(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.ReadWalkRequest)
    if request.limit == 0:
        raise InvalidInput("limit must be greater than 0")
    region = region_from_wire(
        request.entity,
        request.scope,
        request.kind_category,
        request.kind_type_id,
        request.start_clock,
        request.end_clock,
    )
    cap = EVIDENCE_READ_WALK_PROOF_MAX_LIMIT if request.include_proof_refs else EVIDENCE_MAX_LIMIT
    limit = cap if request.limit is None else min(request.limit, cap)
    query = ReadWalkQuery(region, limit, request.include_proof_refs, request.max_stale_ms)
    try:
        report = view.read_walk(query)
    except ViewError as exc:
        raise OpFailed(f"read walk evidence: {exc}") from None
    return _evidence_ack(report)


def evidence_projection_run(data: bytes, view: StoreView) -> bytes:
    request = wire.decode_request(data, wire.ProjectionRunRequest)
    try:
        _coordinate(request.entity, "refbat:evidence-projection-run")
    except InvalidCoordinate as exc:
        raise InvalidInput(f"entity: {exc}") from None
    try:
        report = view.projection_run(request.projection, request.entity, request.max_stale_ms)
    except ViewError as exc:
        raise OpFailed(f"projection run evidence: {exc}") from None
    if report is None:
        raise InvalidInput(f"unknown projection: {request.projection}")
    return _evidence_ack(report)


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operation:
    """One op: its handler and descriptor facts (class, schema refs, receipt kind, kinds)."""

    name: str
    handler: Op
    effect: str
    request_kind: int
    ack_kind: int

    @property
    def input_schema_ref(self) -> str:
        return f"{self.name}.request"

    @property
    def output_schema_ref(self) -> str:
        return f"{self.name}.ack"

    @property
    def receipt_kind(self) -> str:
        return f"receipt.{self.name}.v1"


OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("system.heartbeat", system_heartbeat, "inspect", 0xFA01, 0xFA02),
    Operation("bank.commit", bank_commit, "persist", 0xFA10, 0xFA11),
    Operation("event.get", event_get, "inspect", 0xFA20, 0xFA21),
    Operation("event.query", event_query, "inspect", 0xFA22, 0xFA24),
    Operation("receipt.verify", receipt_verify, "inspect", 0xFA30, 0xFA31),
    Operation("event.walk", event_walk, "inspect", 0xFA40, 0xFA41),
    Operation("evidence.chain_walk", evidence_chain_walk, "inspect", 0xFA50, 0xFA51),
    Operation("evidence.store_resource", evidence_store_resource, "inspect", 0xFA60, 0xFA61),
    Operation("evidence.read_walk", evidence_read_walk, "inspect", 0xFA70, 0xFA71),
    Operation("evidence.projection_run", evidence_projection_run, "inspect", 0xFA80, 0xFA81),
)
BY_NAME: Final[dict[str, Operation]] = {op.name: op for op in OPERATIONS}
