"""Effect backends the host composes around the caller's backend.

:class:`ValidatingEffectBackend` checks every host-mediated append against its kind's bound
event-payload schema *before* the inner backend runs: an unbound kind or a payload that is not
msgpack fails closed. :class:`HostControlEffectBackend` performs ``Control`` operations' host
controls through a :class:`HostController` and forwards the store axes to an inner backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec

from batpak import AppendReceipt, Coordinate
from batpak.payload import encode_payload, kind_of
from hostbat.errors import HostError
from hostbat.schema import SchemaRegistry, SchemaRole
from syncbat.effects import EffectBackend
from syncbat.errors import EffectError


class ValidatingEffectBackend:
    """Wraps ``inner`` with append-time event-payload schema validation."""

    __slots__ = ("_bindings", "_inner", "_registry")

    def __init__(
        self, inner: EffectBackend, bindings: Mapping[int, str], registry: SchemaRegistry
    ) -> None:
        self._inner = inner
        self._bindings = dict(bindings)
        self._registry = registry

    def _check(self, kind: int, payload: bytes) -> None:
        ref = self._bindings.get(int(kind))
        if ref is None:
            raise EffectError(f"event kind 0x{kind:04x} has no payload schema binding")
        try:
            self._registry.validate(ref, SchemaRole.EVENT_PAYLOAD, payload)
        except HostError as exc:
            raise EffectError(
                f"event kind 0x{kind:04x} payload schema validation failed: {exc}"
            ) from exc

    def append_event(self, kind: int, payload: bytes) -> None:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise EffectError(f"payload must be bytes, not {type(payload).__name__}")
        self._check(kind, bytes(payload))
        self._inner.append_event(kind, payload)

    def append_typed_event(self, coordinate: Coordinate, value: msgspec.Struct) -> AppendReceipt:
        try:
            kind = kind_of(type(value))
            payload = encode_payload(value)
        except Exception as exc:  # an unregistered payload type is an unbound kind
            raise EffectError(f"typed payload has no event kind: {exc}") from exc
        self._check(kind, payload)
        return self._inner.append_typed_event(coordinate, value)

    def read_event(self, event_category: str) -> None:
        self._inner.read_event(event_category)

    def query_projection(self, projection_id: str) -> None:
        self._inner.query_projection(projection_id)

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None:
        self._inner.emit_receipt(receipt_kind, payload)

    def use_host_control(self, control: str) -> None:
        self._inner.use_host_control(control)


class HostController(Protocol):
    """Performs one identified host control; raises to refuse it."""

    def use_host_control(self, control: str) -> None: ...


class HostControlEffectBackend:
    """Routes host controls to a controller and every other axis to ``inner`` (if any)."""

    __slots__ = ("_controller", "_inner")

    def __init__(self, inner: EffectBackend | None, controller: HostController) -> None:
        self._inner = inner
        self._controller = controller

    def _require_inner(self, what: str) -> EffectBackend:
        if self._inner is None:
            raise EffectError(f"{what} needs an effect backend, and none is bound")
        return self._inner

    def append_event(self, kind: int, payload: bytes) -> None:
        self._require_inner("event append").append_event(kind, payload)

    def append_typed_event(self, coordinate: Coordinate, value: msgspec.Struct) -> AppendReceipt:
        return self._require_inner("typed event append").append_typed_event(coordinate, value)

    def read_event(self, event_category: str) -> None:
        self._require_inner("event read").read_event(event_category)

    def query_projection(self, projection_id: str) -> None:
        self._require_inner("projection query").query_projection(projection_id)

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None:
        self._require_inner("receipt emission").emit_receipt(receipt_kind, payload)

    def use_host_control(self, control: str) -> None:
        try:
            self._controller.use_host_control(control)
        except EffectError:
            raise
        except Exception as exc:
            raise EffectError(f"host control {control!r} failed: {exc}") from exc
