"""Request and ack shapes of the ten operations, in Rust field order (netbat.md §4).

Acks are written with ``batpak.canonical.encode`` (``rmp_serde::to_vec_named``: every field,
``None`` as nil, smallest int and str markers). Requests are decoded leniently, as serde does:
key order and unknown keys are ignored, a positional array is accepted for a struct, an absent
``Option`` is None and an absent required field is an error.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, Final, TypeAlias, TypeVar

import msgspec

from batpak import canonical
from refhost.errors import InvalidInput

U8: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=0xFF)]
U16: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
U32: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF)]
U64: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]  # MessagePack ints stop at u64::MAX
I64: TypeAlias = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]

S = TypeVar("S", bound=msgspec.Struct)


# --- system.heartbeat --------------------------------------------------------------------


class HeartbeatRequest(msgspec.Struct):
    nonce: str


class HeartbeatAck(msgspec.Struct):
    nonce: str
    server_ts_ms: U64


# --- bank.commit / receipt.verify ---------------------------------------------------------


class BankCommitRequest(msgspec.Struct):
    entity: str
    scope: str
    kind_category: U8
    kind_type_id: U16
    payload_hex: str
    idempotency_key_hex: str | None = None


class BankCommitAck(msgspec.Struct):
    """Also the request shape of ``receipt.verify``."""

    event_id_hex: str
    sequence: U64
    content_hash_hex: str
    key_id_hex: str
    signature_hex: str | None
    extensions: dict[str, str]


class ReceiptVerifyAck(msgspec.Struct):
    valid: bool
    outcome: str
    reason_code: str | None


# --- event.get / event.query / event.walk -------------------------------------------------


class EventGetRequest(msgspec.Struct):
    event_id_hex: str


class EventGetAck(msgspec.Struct):
    event_id_hex: str
    sequence: U64
    timestamp_us: I64
    correlation_id_hex: str
    causation_id_hex: str | None
    kind_category: U8
    kind_type_id: U16
    entity: str
    scope: str
    payload_hex: str
    content_hash_hex: str


class EventSummary(msgspec.Struct):
    event_id_hex: str
    global_sequence: U64
    wall_ms: U64
    clock: U32
    correlation_id_hex: str
    causation_id_hex: str | None
    kind_category: U8
    kind_type_id: U16
    entity: str
    scope: str
    content_hash_hex: str


class EventQueryRequest(msgspec.Struct):
    entity: str | None = None
    scope: str | None = None
    kind_category: U8 | None = None
    kind_type_id: U16 | None = None
    after_global_sequence: U64 | None = None
    limit: U64 = msgspec.field(default_factory=lambda: _required("limit"))


class EventQueryAck(msgspec.Struct):
    entries: list[EventSummary]
    next_after_global_sequence: U64 | None
    truncated: bool


class EventWalkRequest(msgspec.Struct):
    event_id_hex: str
    limit: U64


class EventWalkAck(msgspec.Struct):
    entries: list[EventSummary]


# --- evidence.* ---------------------------------------------------------------------------


class ChainWalkRequest(msgspec.Struct):
    start_event_id_hex: str
    start_expected_hash_hex: str | None = None
    end_event_id_hex: str | None = None
    limit: U64 = msgspec.field(default_factory=lambda: _required("limit"))


class StoreResourceRequest(msgspec.Struct):
    pass


class ReadWalkRequest(msgspec.Struct):
    entity: str | None = None
    scope: str | None = None
    kind_category: U8 | None = None
    kind_type_id: U16 | None = None
    start_clock: U32 | None = None
    end_clock: U32 | None = None
    limit: U64 | None = None
    include_proof_refs: bool = msgspec.field(
        default_factory=lambda: _required("include_proof_refs")
    )
    max_stale_ms: U64 | None = None


class ProjectionRunRequest(msgspec.Struct):
    projection: str
    entity: str
    max_stale_ms: U64 | None = None


class EvidenceAck(msgspec.Struct):
    """The shared ack of the four evidence ops."""

    report_hex: str
    body_hash_hex: str
    truncated: bool


# --- codec --------------------------------------------------------------------------------


class _MissingField(Exception):
    pass


def _required(name: str) -> Any:
    # A required field after Option fields: Python needs a default, serde does not. The
    # factory runs only when the field is absent, which serde rejects.
    raise _MissingField(f"missing field `{name}`")


_DECODER: Final = msgspec.msgpack.Decoder()


def decode_request(data: bytes, tp: type[S]) -> S:
    """Decode ``data`` as ``tp`` with serde's leniency; raise ``InvalidInput`` on failure."""
    try:
        raw = _DECODER.decode(data)
        if isinstance(raw, list):
            fields = tp.__struct_fields__
            if len(raw) > len(fields):
                raise msgspec.ValidationError(
                    f"invalid length {len(raw)}, expected struct with {len(fields)} elements"
                )
            raw = dict(zip(fields, raw, strict=False))
        if isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if k in tp.__struct_fields__}
        return msgspec.convert(raw, tp, strict=True)
    except (msgspec.DecodeError, msgspec.ValidationError, _MissingField) as exc:
        raise InvalidInput(f"decode request: {exc}") from None


def encode_ack(ack: msgspec.Struct) -> bytes:
    """The canonical (named-field MessagePack) bytes of an ack."""
    return canonical.encode(ack)


def hex_str(data: bytes) -> str:
    return data.hex()


def id_hex(value: int) -> str:
    """A u128 id as 32 lowercase hex chars (``{:032x}``)."""
    return f"{value:032x}"


def decode_hex(text: str) -> bytes:
    """Decode upper- or lowercase hex; the error text is netbat's hex error."""
    if len(text) % 2:
        raise ValueError("hex input has odd length")
    try:
        return binascii.unhexlify(text.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("input is not hex") from None
