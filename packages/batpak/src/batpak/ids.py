"""Event ids: UUIDv7 values held as ints (48-bit Unix ms, version 7, RFC variant, random)."""

from __future__ import annotations

import os

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_RAND_A_MASK = (1 << 12) - 1
_RAND_B_MASK = (1 << 62) - 1


def uuid7(timestamp_us: int) -> int:
    """A UUIDv7 for the given clock reading, as a u128."""
    ms = (timestamp_us // 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    return (
        (ms << 80)
        | _VERSION_7
        | ((rand >> 62) & _RAND_A_MASK) << 64
        | _VARIANT_RFC
        | (rand & _RAND_B_MASK)
    )
