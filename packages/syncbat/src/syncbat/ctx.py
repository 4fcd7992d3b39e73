"""The invocation context: descriptor, receipt metadata and the five effect handles.

One ``Ctx`` is built per checkout and shared by the admission guard and the handler. Each
handle performs its effect through the Core's backend *first* and records it into the observed
row only when that succeeds; with no backend bound, every handle raises :class:`EffectError`.
After the handler returns, the runtime checks the observed row against the declared one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from batpak import AppendReceipt, Coordinate
from batpak.payload import kind_of
from syncbat.effects import EffectBackend
from syncbat.errors import EffectError
from syncbat.operation import OperationDescriptor, OperationEffectRow, append_target

__all__ = (
    "Ctx",
    "EventAppendHandle",
    "EventReadHandle",
    "HostControlHandle",
    "ProjectionReadHandle",
    "ReceiptEmitHandle",
    "ReceiptMetadata",
)

EMIT_RECEIPT_PREFIX = "syncbat.emit_receipt."


@dataclass(slots=True)
class ReceiptMetadata:
    """Opaque receipt drawers filled during one invocation: ``signed`` is promoted to batpak
    receipt extensions by the store sink, ``local`` stays in the envelope body."""

    signed: dict[str, bytes] = field(default_factory=dict)
    local: dict[str, bytes] = field(default_factory=dict)


def _check_entry(key: str, value: bytes) -> None:
    if not isinstance(key, str):
        raise TypeError(f"extension key must be a str, not {type(key).__name__}")
    if not isinstance(value, bytes):
        raise TypeError(f"extension value must be bytes, not {type(value).__name__}")


class Ctx:
    """What a guard and a handler see of one invocation."""

    __slots__ = ("_backend", "_descriptor", "_metadata", "_observed")

    def __init__(self, descriptor: OperationDescriptor, backend: EffectBackend | None) -> None:
        self._descriptor = descriptor
        self._backend = backend
        self._metadata = ReceiptMetadata()
        self._observed = OperationEffectRow()

    @property
    def descriptor(self) -> OperationDescriptor:
        return self._descriptor

    @property
    def metadata(self) -> ReceiptMetadata:
        return self._metadata

    @property
    def observed_effects(self) -> OperationEffectRow:
        """Effects performed so far through this context's handles."""
        return self._observed

    def attach_signed_extension(self, key: str, value: bytes) -> None:
        """Add an entry to the signed drawer (copied into batpak receipt extensions)."""
        _check_entry(key, value)
        self._metadata.signed[key] = value

    def attach_local_extension(self, key: str, value: bytes) -> None:
        """Add an entry to the local drawer (kept in the envelope body only)."""
        _check_entry(key, value)
        self._metadata.local[key] = value

    def event_append_handle(self) -> EventAppendHandle:
        return EventAppendHandle(self)

    def event_read_handle(self) -> EventReadHandle:
        return EventReadHandle(self)

    def projection_read_handle(self) -> ProjectionReadHandle:
        return ProjectionReadHandle(self)

    def receipt_emit_handle(self) -> ReceiptEmitHandle:
        return ReceiptEmitHandle(self)

    def host_control_handle(self) -> HostControlHandle:
        return HostControlHandle(self)

    def _require_backend(self, capability: str) -> EffectBackend:
        if self._backend is None:
            raise EffectError(
                f"no effect backend is bound for this invocation; cannot {capability}"
            )
        return self._backend

    def _record(self, row: OperationEffectRow) -> None:
        self._observed = row


class _Handle:
    __slots__ = ("_ctx",)

    def __init__(self, ctx: Ctx) -> None:
        self._ctx = ctx


class EventAppendHandle(_Handle):
    """Appends events through the backend; records ``evt.%04x`` of each kind."""

    __slots__ = ()

    def append_event(self, kind: int, payload: bytes) -> None:
        ctx = self._ctx
        target = append_target(kind)
        ctx._require_backend("append events").append_event(kind, payload)
        ctx._record(ctx.observed_effects.appends_event(target))

    def append_typed(self, coordinate: Coordinate, value: msgspec.Struct) -> AppendReceipt:
        """Append an ``@event_payload`` Struct at ``coordinate``; records its kind's target."""
        ctx = self._ctx
        target = append_target(kind_of(type(value)))
        receipt = ctx._require_backend("append events").append_typed_event(coordinate, value)
        ctx._record(ctx.observed_effects.appends_event(target))
        return receipt


class EventReadHandle(_Handle):
    """Reads an event category through the backend; records the category."""

    __slots__ = ()

    def read_event(self, event_category: str) -> None:
        ctx = self._ctx
        ctx._require_backend("read events").read_event(event_category)
        ctx._record(ctx.observed_effects.reads_event(event_category))


class ProjectionReadHandle(_Handle):
    """Queries a projection through the backend; records the projection id."""

    __slots__ = ()

    def query_projection(self, projection_id: str) -> None:
        ctx = self._ctx
        ctx._require_backend("query projections").query_projection(projection_id)
        ctx._record(ctx.observed_effects.queries_projection(projection_id))


class ReceiptEmitHandle(_Handle):
    """Emits a receipt through the backend; records the kind and keeps the payload in the
    local drawer as ``syncbat.emit_receipt.{kind}``."""

    __slots__ = ()

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None:
        ctx = self._ctx
        if not isinstance(payload, bytes):
            raise TypeError(f"receipt payload must be bytes, not {type(payload).__name__}")
        ctx._require_backend("emit receipts").emit_receipt(receipt_kind, payload)
        ctx._record(ctx.observed_effects.emits_receipt(receipt_kind))
        ctx.metadata.local[EMIT_RECEIPT_PREFIX + receipt_kind] = payload


class HostControlHandle(_Handle):
    """Uses a host control through the backend; records the control id."""

    __slots__ = ()

    def use_host_control(self, control: str) -> None:
        ctx = self._ctx
        ctx._require_backend("use host controls").use_host_control(control)
        ctx._record(ctx.observed_effects.uses_host_control(control))
