"""Hex on the wire: lowercase out, either case in, checks in the reference's order."""

from __future__ import annotations

_HEX_DIGITS = b"0123456789abcdefABCDEF"


class HexOddLength(Exception):
    """The token has an odd number of characters."""


class HexTooLarge(Exception):
    """The token decodes to more than the allowed bytes."""


class HexNotHex(Exception):
    """The token holds a byte outside ``[0-9a-fA-F]``."""


def encode_hex(data: bytes) -> bytes:
    """Return ``data`` as lowercase ASCII hex."""
    return data.hex().encode("ascii")


def decode_hex(token: bytes, max_bytes: int) -> bytes:
    """Decode ``token``: odd length, then size, then characters (netbat.md §1.2 step 11)."""
    if len(token) % 2:
        raise HexOddLength
    if len(token) // 2 > max_bytes:
        raise HexTooLarge
    if token.translate(None, _HEX_DIGITS):  # what is left is not hex (C speed, no set walk)
        raise HexNotHex
    return bytes.fromhex(token.decode("ascii"))
