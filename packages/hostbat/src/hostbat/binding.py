"""Event-kind to event-payload schema bindings for host-mediated appends."""

from __future__ import annotations

from dataclasses import dataclass

from hostbat.errors import EventPayloadBindingInvalid


@dataclass(frozen=True, slots=True)
class EventPayloadBinding:
    """Binds one raw u16 event kind to an event-payload schema ref."""

    kind: int
    payload_schema_ref: str

    def __post_init__(self) -> None:
        if isinstance(self.kind, bool) or not isinstance(self.kind, int):
            raise EventPayloadBindingInvalid(0, f"kind {self.kind!r} is not an int")
        if not 0 <= self.kind <= 0xFFFF:
            raise EventPayloadBindingInvalid(self.kind & 0xFFFF, "kind is outside the u16 range")
        if not self.payload_schema_ref:
            raise EventPayloadBindingInvalid(self.kind, "payload schema reference is empty")

    def view(self) -> dict[str, object]:
        return {"kind": int(self.kind), "payload_schema_ref": self.payload_schema_ref}
