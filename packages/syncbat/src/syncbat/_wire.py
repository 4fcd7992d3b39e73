"""The wire shapes of syncbat's three stored payloads, and the byte helpers they share.

Every byte goes through ``batpak.canonical`` (the only encoding seam). The rules of the
reference's ``rmp_serde::to_vec_named`` that matter here (spec §0 item 4, §5):

1. Fields are written in Rust declaration order: the Structs below declare them so.
2. Serde ``Vec<u8>`` / ``[u8; 32]`` are **int arrays**, never ``bin``: fields hold
   ``list[int]`` (:func:`serde_bytes`), and decoding accepts only 0..255 int arrays.
3. ``Option`` without skip writes nil; fields with ``skip_serializing_if`` are ``UNSET`` when
   empty and so omitted. On decode, a missing ``Option`` is ``None`` as in serde.
4. ``BTreeMap`` keys are written sorted (:func:`sorted_drawer`).

The Structs are bound to their batpak kinds with ``@event_payload`` (payload version 1, as
the reference's ``EventPayload`` impls), so the store stamps the same header fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from batpak import EventKind, canonical, event_payload
from syncbat.errors import WireDecodeError

SYNCBAT_RECEIPT_EVENT_KIND: Final = EventKind(0xC5B7)
"""Kind of receipt envelope events (category 0xC, type 0x5B7)."""
SYNCBAT_REGISTER_EVENT_KIND: Final = EventKind(0xC5B8)
"""Kind of register catalog rows."""
SYNCBAT_OPERATION_STATUS_EVENT_KIND: Final = EventKind(0xC5B9)
"""Kind of operation status facts."""

Byte = Annotated[int, Meta(ge=0, le=255)]
ByteVec = list[Byte]
Hash32 = Annotated[list[Byte], Meta(min_length=32, max_length=32)]
U16 = Annotated[int, Meta(ge=0, le=0xFFFF)]
U32 = Annotated[int, Meta(ge=0, le=0xFFFF_FFFF)]

T = TypeVar("T")


def serde_bytes(data: bytes) -> list[int]:
    """The int-array form serde gives a ``Vec<u8>`` or ``[u8; N]``."""
    return list(data)


def sorted_drawer(drawer: Mapping[str, bytes]) -> dict[str, list[int]]:
    """A ``BTreeMap<String, Vec<u8>>``: keys bytewise-sorted, values as int arrays."""
    return {key: serde_bytes(drawer[key]) for key in sorted(drawer)}


def decode_as(data: bytes, tp: type[T], what: str) -> T:
    """Decode canonical bytes as the wire Struct ``tp``; any failure is WireDecodeError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireDecodeError(f"{what} must be bytes, not {type(data).__name__}")
    try:
        return canonical.decode(data, tp)
    except canonical.CanonicalDecodeError as exc:
        raise WireDecodeError(f"invalid {what}: {exc}") from None


def opt(value: T | UnsetType | None) -> T | None:
    return None if value is UNSET else value


class CodeMessage(msgspec.Struct, frozen=True):
    code: str
    message: str


@event_payload(category=0xC, type_id=0x5B7)
class ReceiptEnvelopeWire(msgspec.Struct, frozen=True, kw_only=True):
    """``ReceiptEnvelope`` as serde writes it."""

    descriptor_name: str
    receipt_kind: str
    input_hash: Hash32 | UnsetType | None = UNSET
    output_hash: Hash32 | UnsetType | None = UNSET
    outcome: str | dict[str, CodeMessage]
    signed_extensions: dict[str, ByteVec]
    local_extensions: dict[str, ByteVec]


class EffectRowWire(msgspec.Struct, frozen=True):
    """``OperationEffectRow``: six lists, each omitted when empty."""

    reads_events: list[str] | UnsetType = UNSET
    appends_events: list[str] | UnsetType = UNSET
    queries_projections: list[str] | UnsetType = UNSET
    emits_receipts: list[str] | UnsetType = UNSET
    uses_host_controls: list[str] | UnsetType = UNSET
    requires_capabilities: list[str] | UnsetType = UNSET


@event_payload(category=0xC, type_id=0x5B8)
class RegisterRowWire(msgspec.Struct, frozen=True, kw_only=True):
    """``RegisterOperationRowV1`` as serde writes it."""

    schema_version: U16
    action: str
    name: str
    supersedes: str | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET
    effect: str
    input_schema_ref: str
    output_schema_ref: str
    receipt_kind: str
    effect_row: EffectRowWire | UnsetType = UNSET


Lifecycle = Literal["started", "completed", "failed", "denied"]


@event_payload(category=0xC, type_id=0x5B9)
class StatusFactWire(msgspec.Struct, frozen=True, kw_only=True):
    """``OperationStatusFactV1`` as serde writes it."""

    schema_version: U32
    operation: str
    lifecycle: Lifecycle
    receipt_kind: str | UnsetType | None = UNSET
    code: str | UnsetType | None = UNSET
    message: str | UnsetType | None = UNSET
    input_hash: Hash32 | UnsetType | None = UNSET
    output_hash: Hash32 | UnsetType | None = UNSET


def skip_none(value: Any) -> Any:
    """``skip_serializing_if = Option::is_none``: None becomes UNSET (omitted)."""
    return UNSET if value is None else value
