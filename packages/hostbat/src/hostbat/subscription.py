"""Subscription descriptors: declaration-only exports folded into ``H_module`` and
``H_interface``. They require the ``NETBAT/2-streaming`` transport; nothing here builds a
syncbat subscription registry from them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, TypeAlias

from batpak.coordinate import Coordinate
from hostbat.errors import (
    SubscriptionInvalidId,
    SubscriptionInvalidProjectionId,
    SubscriptionReservedCategory,
)
from hostbat.schema import SchemaRole

SUBSCRIPTION_WIRE_REQUIRES: Final = "NETBAT/2-streaming"
MAX_SUBSCRIPTION_ID_BYTES: Final = 128
MAX_PROJECTION_ID_BYTES: Final = 128
DEFAULT_CAPACITY: Final = 256

_COMPONENT_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._-")
_LEAD_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789")


def _component_error(value: str, max_len: int) -> str | None:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) > max_len:
        return "component id longer than maximum"
    if not all(b in _COMPONENT_BYTES for b in raw):
        return "component id has characters outside [a-z0-9._-]"
    return None


def _subscription_id_error(sid: str) -> str | None:
    if not sid:
        return "empty subscription id"
    if len(sid.encode("utf-8", "surrogatepass")) > MAX_SUBSCRIPTION_ID_BYTES:
        return f"subscription id longer than {MAX_SUBSCRIPTION_ID_BYTES} bytes"
    if sid.startswith(".") or sid.endswith("."):
        return "subscription id has a leading or trailing '.'"
    if ".." in sid:
        return "subscription id has a doubled '.'"
    cut = sid.rfind(".v")
    if cut < 0:
        return "subscription id must contain a .v version suffix"
    name, version = sid[:cut], sid[cut + 2 :]
    if not name:
        return "subscription id name prefix is empty"
    if ord(name[0]) not in _LEAD_BYTES:
        return "subscription id must start with [a-z0-9]"
    if (detail := _component_error(name, MAX_SUBSCRIPTION_ID_BYTES)) is not None:
        return detail
    if not version:
        return "subscription id missing version digits after .v"
    if not ("1" <= version[0] <= "9"):
        return "subscription id version must start with 1-9"
    if not all("0" <= c <= "9" for c in version):
        return "subscription id version must be digits only"
    return None


def validate_subscription_id(sid: str) -> str:
    """Return ``sid`` if it matches ``^[a-z0-9][a-z0-9._-]*\\.v[1-9][0-9]*$`` (≤128 bytes)."""
    if (detail := _subscription_id_error(sid)) is not None:
        raise SubscriptionInvalidId(sid, detail)
    return sid


@dataclass(frozen=True, slots=True)
class EventCategorySource:
    """A category-wide event stream (category 1..15, never 0xD)."""

    category: int

    def __post_init__(self) -> None:
        c = self.category
        if isinstance(c, bool) or not isinstance(c, int) or not 0 < c < 16 or c == 0xD:
            raise SubscriptionReservedCategory(int(c))

    @property
    def required_payload_role(self) -> SchemaRole:
        return SchemaRole.EVENT_PAYLOAD

    def view(self) -> dict[str, object]:
        return {"kind": "event-category", "category": self.category}


@dataclass(frozen=True, slots=True)
class EntityStreamSource:
    """A coordinate-scoped entity event stream."""

    coordinate: Coordinate

    @property
    def required_payload_role(self) -> SchemaRole:
        return SchemaRole.EVENT_PAYLOAD

    def view(self) -> dict[str, object]:
        return {"kind": "entity-stream", "coordinate": self.coordinate.to_wire()}


@dataclass(frozen=True, slots=True)
class ProjectionSource:
    """A projection frontier stream."""

    projection_id: str

    def __post_init__(self) -> None:
        detail = _component_error(self.projection_id, MAX_PROJECTION_ID_BYTES)
        if detail is not None:
            raise SubscriptionInvalidProjectionId(self.projection_id, detail)

    @property
    def required_payload_role(self) -> SchemaRole:
        return SchemaRole.SUBSCRIPTION_PAYLOAD

    def view(self) -> dict[str, object]:
        return {"kind": "projection", "projection_id": self.projection_id}


@dataclass(frozen=True, slots=True)
class ReceiptStreamSource:
    """Receipt append events filtered by receipt kind."""

    receipt_kind: str

    @property
    def required_payload_role(self) -> SchemaRole:
        return SchemaRole.RECEIPT_PAYLOAD

    def view(self) -> dict[str, object]:
        return {"kind": "receipt-stream", "receipt_kind": self.receipt_kind}


@dataclass(frozen=True, slots=True)
class OperationStatusSource:
    """Checkout/status facts of one operation."""

    operation: str

    @property
    def required_payload_role(self) -> SchemaRole:
        return SchemaRole.SUBSCRIPTION_PAYLOAD

    def view(self) -> dict[str, object]:
        return {"kind": "operation-status", "operation": self.operation}


SubscriptionSource: TypeAlias = (
    EventCategorySource
    | EntityStreamSource
    | ProjectionSource
    | ReceiptStreamSource
    | OperationStatusSource
)


class SubscriptionDelivery(enum.StrEnum):
    """Delivery semantics of a declared subscription."""

    CURSOR_AT_LEAST_ONCE = "cursor-at-least-once"


@dataclass(frozen=True, slots=True)
class BoundedQueue:
    """Bounded queue with cumulative ACK and slow-consumer close."""

    capacity: int = DEFAULT_CAPACITY

    def __post_init__(self) -> None:
        c = self.capacity
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 0xFFFF_FFFF:
            raise ValueError(f"capacity {c!r} is not a u32")

    @property
    def kind(self) -> str:
        return "bounded-queue"

    def view(self) -> dict[str, object]:
        return {"kind": self.kind, "capacity": self.capacity}


@dataclass(frozen=True, slots=True)
class SubscriptionDescriptor:
    """A declarative subscription exported through the host interface."""

    id: str
    source: SubscriptionSource
    payload_schema_ref: str
    delivery: SubscriptionDelivery = SubscriptionDelivery.CURSOR_AT_LEAST_ONCE
    backpressure: BoundedQueue = BoundedQueue()

    def __post_init__(self) -> None:
        validate_subscription_id(self.id)

    @property
    def required_payload_role(self) -> SchemaRole:
        return self.source.required_payload_role

    def view(self) -> dict[str, object]:
        """The map hashed into ``H_module``, fields in declaration order."""
        return {
            "id": self.id,
            "source": self.source.view(),
            "payload_schema_ref": self.payload_schema_ref,
            "delivery": self.delivery.value,
            "backpressure": self.backpressure.view(),
        }
