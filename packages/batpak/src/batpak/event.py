"""The event as readers see it: header, payload bytes, hash-chain link and coordinate."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from batpak.coordinate import Coordinate
from batpak.payload import decode_payload

T = TypeVar("T")

FLAG_REQUIRES_ACK = 0x01
FLAG_TRANSACTIONAL = 0x02
FLAG_REPLAY = 0x08
ZERO_HASH = bytes(32)


class DagPosition(msgspec.Struct, frozen=True, gc=False):
    """Where an event sits in its (entity, lane) chain: wall clock, depth, lane, sequence."""

    wall_ms: int
    counter: int
    depth: int
    lane: int
    sequence: int


class EventHeader(msgspec.Struct, frozen=True, gc=False):
    """The ten header fields of format.md §4; ids are ints (u128)."""

    event_id: int
    correlation_id: int
    causation_id: int | None
    timestamp_us: int
    position: DagPosition
    payload_size: int
    event_kind: int
    flags: int
    content_hash: bytes
    payload_version: int


class HashChain(msgspec.Struct, frozen=True, gc=False):
    """The link to the previous event on the same (entity, lane), and this event's hash."""

    prev_hash: bytes
    event_hash: bytes


class Event(msgspec.Struct, frozen=True):
    """A header plus the exact stored payload bytes (canonical MessagePack)."""

    header: EventHeader
    payload: bytes
    hash_chain: HashChain | None


class StoredEvent(msgspec.Struct, frozen=True):
    """A committed event with its coordinate, commit position and receipt extensions."""

    coordinate: Coordinate
    event: Event
    global_sequence: int
    extensions: dict[str, bytes]

    def decode(self, cls: type[T]) -> T:
        """Decode the payload as ``cls``, running upcasters; raises ``TypedDecodeError``."""
        header = self.event.header
        return decode_payload(cls, header.event_kind, header.payload_version, self.event.payload)

    def value(self) -> Any:
        """The payload decoded into plain Python values (dicts, lists, str, int, bytes)."""
        return msgspec.msgpack.decode(self.event.payload)
