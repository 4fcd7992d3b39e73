"""Effect backends: what actually performs an operation's effects.

A handler reaches an effect only through a ``Ctx`` handle, and the handle performs it through
the Core's one backend. Only ``append_event`` is required: :class:`FailClosedBackend` gives
the other five methods a "not supported" :class:`EffectError`. :class:`StoreEffectBackend`
appends raw payloads (as msgpack ``bin``) to one batpak coordinate and reads from the store.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from batpak import AppendReceipt, Coordinate, Store, StoreError
from syncbat.errors import EffectError

__all__ = ("EffectBackend", "FailClosedBackend", "StoreEffectBackend")


class EffectBackend(Protocol):
    """The six effects a backend may perform; each raises :class:`EffectError` on refusal."""

    def append_event(self, kind: int, payload: bytes) -> None: ...

    def append_typed_event(
        self, coordinate: Coordinate, value: msgspec.Struct
    ) -> AppendReceipt: ...

    def read_event(self, event_category: str) -> None: ...

    def query_projection(self, projection_id: str) -> None: ...

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None: ...

    def use_host_control(self, control: str) -> None: ...


class FailClosedBackend:
    """Base backend: every effect fails closed until a subclass implements it."""

    def append_event(self, kind: int, payload: bytes) -> None:
        raise EffectError("event appends are not supported by this effect backend")

    def append_typed_event(self, coordinate: Coordinate, value: msgspec.Struct) -> AppendReceipt:
        raise EffectError("typed event appends are not supported by this effect backend")

    def read_event(self, event_category: str) -> None:
        raise EffectError("event reads are not supported by this effect backend")

    def query_projection(self, projection_id: str) -> None:
        raise EffectError("projection queries are not supported by this effect backend")

    def emit_receipt(self, receipt_kind: str, payload: bytes) -> None:
        raise EffectError("receipt emission is not supported by this effect backend")

    def use_host_control(self, control: str) -> None:
        raise EffectError("host controls are not supported by this effect backend")


class StoreEffectBackend(FailClosedBackend):
    """Performs appends and reads against one batpak store coordinate.

    ``append_event`` stores the handler's bytes verbatim as a msgpack ``bin`` payload.
    ``read_event`` reads the coordinate entity's newest event back (a real index + disk read);
    ``query_projection`` queries the coordinate's scope. Emit and host control fail closed:
    the store is neither a receipt sink nor a host.
    """

    def __init__(self, store: Store, coordinate: Coordinate) -> None:
        self.store = store
        self.coordinate = coordinate

    def append_event(self, kind: int, payload: bytes) -> None:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise EffectError(f"payload must be bytes, not {type(payload).__name__}")
        try:
            self.store.append(self.coordinate, kind, bytes(payload))
        except (StoreError, ValueError, TypeError) as exc:
            raise EffectError(str(exc)) from exc

    def append_typed_event(self, coordinate: Coordinate, value: msgspec.Struct) -> AppendReceipt:
        try:
            return self.store.append_typed(coordinate, value)
        except (StoreError, ValueError, TypeError) as exc:
            raise EffectError(str(exc)) from exc

    def read_event(self, event_category: str) -> None:
        # The category is the declared read identity, not a store filter: the mediated read
        # is the coordinate's newest committed event, so corruption surfaces as an error.
        try:
            stream = self.store.by_entity(self.coordinate.entity)
            if stream:
                self.store.read_raw(stream[-1].event_id)
        except StoreError as exc:
            raise EffectError(str(exc)) from exc

    def query_projection(self, projection_id: str) -> None:
        try:
            self.store.by_scope(self.coordinate.scope)
        except StoreError as exc:
            raise EffectError(str(exc)) from exc
