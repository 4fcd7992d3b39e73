"""BatchAppendItem: one item of an atomic ``append_batch``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from batpak import canonical
from batpak.coordinate import Coordinate
from batpak.errors import InvalidPayload
from batpak.options import DEFAULT_OPTIONS, AppendOptions
from batpak.payload import kind_of


@dataclass(frozen=True, slots=True)
class PriorItem:
    """Causation by an earlier item of the same batch, by its position in the batch."""

    index: int


@dataclass(frozen=True, slots=True)
class BatchAppendItem:
    """A coordinate, kind and encoded payload, with options and an optional causation.

    Build one with ``BatchAppendItem.new`` (a value encoded canonically), ``.typed`` (an
    ``@event_payload`` Struct) or ``.from_msgpack_bytes`` (bytes stored verbatim). ``causation``
    is an event id, a ``PriorItem``, or None.
    """

    coord: Coordinate
    kind: int
    payload: bytes
    options: AppendOptions = DEFAULT_OPTIONS
    causation: int | PriorItem | None = None

    @classmethod
    def new(
        cls,
        coord: Coordinate,
        kind: int,
        value: Any,
        options: AppendOptions = DEFAULT_OPTIONS,
        causation: int | PriorItem | None = None,
    ) -> BatchAppendItem:
        try:
            data = canonical.encode(value)
        except (TypeError, ValueError) as exc:
            raise InvalidPayload(f"payload cannot be encoded: {exc}") from exc
        return cls(coord, int(kind), data, options, causation)

    @classmethod
    def typed(
        cls,
        coord: Coordinate,
        value: msgspec.Struct,
        options: AppendOptions = DEFAULT_OPTIONS,
        causation: int | PriorItem | None = None,
    ) -> BatchAppendItem:
        return cls(coord, kind_of(type(value)), canonical.encode(value), options, causation)

    @classmethod
    def from_msgpack_bytes(
        cls,
        coord: Coordinate,
        kind: int,
        data: bytes,
        options: AppendOptions = DEFAULT_OPTIONS,
        causation: int | PriorItem | None = None,
    ) -> BatchAppendItem:
        try:
            msgspec.msgpack.decode(data)
        except msgspec.DecodeError as exc:
            raise InvalidPayload(f"payload is not one MessagePack value: {exc}") from exc
        return cls(coord, int(kind), bytes(data), options, causation)
