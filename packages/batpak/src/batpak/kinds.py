"""EventKind: a u16 holding a 4-bit category and a 12-bit type id (format.md §3)."""

from __future__ import annotations

from batpak.errors import InvalidKind

SYSTEM_CATEGORY = 0x0
EFFECT_CATEGORY = 0xD
_RESERVED_CATEGORIES = (SYSTEM_CATEGORY, EFFECT_CATEGORY)


class EventKind(int):
    """An event kind: ``(category << 12) | type_id``, encoded on the wire as a bare uint."""

    __slots__ = ()

    def __new__(cls, raw: int) -> EventKind:
        if not 0 <= raw <= 0xFFFF:
            raise InvalidKind(f"event kind {raw} is outside the u16 range")
        return super().__new__(cls, raw)

    @classmethod
    def custom(cls, category: int, type_id: int) -> EventKind:
        """A user kind; refuses the reserved system (0x0) and effect (0xD) categories."""
        if not 0 <= category <= 0xF:
            raise InvalidKind(f"category {category} is outside 0..15")
        if category in _RESERVED_CATEGORIES:
            raise InvalidKind(f"category 0x{category:X} is reserved")
        if not 0 <= type_id < 0x1000:
            raise InvalidKind(f"type_id {type_id} is outside 0..0xFFF")
        return cls((category << 12) | type_id)

    @property
    def category(self) -> int:
        return int(self) >> 12

    @property
    def type_id(self) -> int:
        return int(self) & 0x0FFF

    @property
    def is_reserved(self) -> bool:
        return self.category in _RESERVED_CATEGORIES

    def __repr__(self) -> str:
        return f"EventKind(0x{int(self):04X})"


def is_reserved(raw: int) -> bool:
    """True for kinds in the system or effect category, which only the store writes."""
    return raw >> 12 in _RESERVED_CATEGORIES


DATA = EventKind(0x1000)
SYSTEM_INIT = EventKind(0x0001)
SYSTEM_SHUTDOWN = EventKind(0x0002)
SYSTEM_HEARTBEAT = EventKind(0x0003)
SYSTEM_CONFIG_CHANGE = EventKind(0x0004)
SYSTEM_CHECKPOINT = EventKind(0x0005)
SYSTEM_BATCH_BEGIN = EventKind(0x0006)
SYSTEM_BATCH_COMMIT = EventKind(0x0007)
SYSTEM_OPEN_COMPLETED = EventKind(0x0008)
SYSTEM_CLOSE_COMPLETED = EventKind(0x0009)
SYSTEM_DENIAL = EventKind(0x000F)
TOMBSTONE = EventKind(0x0FFE)
EFFECT_ERROR = EventKind(0xD001)
EFFECT_RETRY = EventKind(0xD002)
EFFECT_ACK = EventKind(0xD004)
EFFECT_BACKPRESSURE = EventKind(0xD005)
EFFECT_CANCEL = EventKind(0xD006)
EFFECT_CONFLICT = EventKind(0xD007)
HEARTBEAT_REQUEST = EventKind(0xFA01)
HEARTBEAT_ACK = EventKind(0xFA02)
UNINIT = EventKind(0)
