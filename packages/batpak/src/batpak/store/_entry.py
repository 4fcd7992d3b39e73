"""IndexEntry: one committed event's metadata, as the index holds it."""

from __future__ import annotations

import msgspec

from batpak.coordinate import Coordinate


class IndexEntry(msgspec.Struct, frozen=True, gc=False):
    """One committed event's metadata, as the index holds it."""

    event_id: int
    correlation_id: int
    causation_id: int | None
    entity: str
    scope: str
    event_kind: int
    wall_ms: int
    clock: int
    lane: int
    depth: int
    prev_hash: bytes
    event_hash: bytes
    global_sequence: int
    segment_id: int
    offset: int
    length: int
    receipt_extensions: dict[str, bytes] | None = None

    @property
    def coord(self) -> Coordinate:
        return Coordinate(self.entity, self.scope)
