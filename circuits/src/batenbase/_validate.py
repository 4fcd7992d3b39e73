"""Input checks: every bad input becomes a BadRequest or TooLarge, never anything else.

Keys are 1..1024 UTF-8 bytes of printable, non-whitespace characters (no control, format,
surrogate or separator characters). Data is any JSON value up to ``MAX_DATA_BYTES`` encoded.
Event kinds are 1..128 chars of ``[a-z0-9._-]``; details are JSON up to ``MAX_DETAILS_BYTES``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

from batenbase.errors import BadRequest, TooLarge

MAX_KEY_BYTES = 1024
MAX_DATA_BYTES = 1024 * 1024
MAX_DETAILS_BYTES = 64 * 1024
MAX_V = 0xFFFF_FFFF
MAX_SCAN_LIMIT = 1000

_KIND = re.compile(r"[a-z0-9._-]{1,128}")
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_OBSERVER = re.compile(r"[A-Za-z0-9._@:+-]{1,128}")
_DURATION = re.compile(r"([0-9]{1,9})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ENCODER = msgspec.json.Encoder(order="sorted")


RESERVED_KEY_ENDINGS = ("/history", "/proof", "/readers")
"""Keys may contain ``/``; these endings would be read as the per-key sub-routes."""


def key(value: object) -> str:
    if not isinstance(value, str):
        raise BadRequest("key must be a string", code="bad_key")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest("key is not valid UTF-8", code="bad_key") from None
    if not 1 <= size <= MAX_KEY_BYTES:
        raise BadRequest(f"key must be 1..{MAX_KEY_BYTES} bytes", code="bad_key")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise BadRequest("key contains a control or whitespace character", code="bad_key")
    if value.endswith(RESERVED_KEY_ENDINGS):
        raise BadRequest(
            "a key may contain '/' but not end with /history, /proof or /readers",
            code="bad_key",
        )
    return value


def json_bytes(value: Any, limit: int, what: str) -> bytes:
    """Canonical JSON bytes (sorted keys, compact) of ``value``, within ``limit`` bytes."""
    try:
        raw = _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
        raise BadRequest(f"{what} is not JSON: {exc}", code=f"bad_{what}") from None
    if len(raw) > limit:
        raise TooLarge(f"{what} is {len(raw)} bytes; the limit is {limit}")
    return raw


def decode_json(raw: bytes) -> Any:
    return msgspec.json.decode(raw)


def visibility(v: object, h: object) -> tuple[int | None, int | None]:
    if v is not None and (type(v) is not int or not 0 <= v <= MAX_V):
        raise BadRequest(f"v must be an integer in 0..{MAX_V}", code="bad_v")
    if h is not None and (type(h) is not int or h not in (0, 1)):
        raise BadRequest("h must be 0 or 1", code="bad_h")
    return v, h


def kind(value: object) -> str:
    if not isinstance(value, str) or not _KIND.fullmatch(value):
        raise BadRequest("kind must be 1..128 characters of [a-z0-9._-]", code="bad_kind")
    return value


def tenant_name(value: object) -> str:
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise BadRequest("tenant name must match [a-z0-9][a-z0-9_-]{0,62}", code="bad_tenant")
    return value


def observer(value: object) -> str:
    if not isinstance(value, str) or not _OBSERVER.fullmatch(value):
        raise BadRequest("observer must be 1..128 of [A-Za-z0-9._@:+-]", code="bad_observer")
    return value


def scopes(values: object) -> frozenset[int]:
    try:
        items = list(values)  # type: ignore[call-overload]
    except TypeError:
        raise BadRequest("scopes must be a list of integers", code="bad_scopes") from None
    if any(type(s) is not int or not 2 <= s <= MAX_V for s in items):
        raise BadRequest(f"scopes are integers in 2..{MAX_V}", code="bad_scopes")
    return frozenset(items)


def limit(value: object, top: int) -> int:
    if type(value) is not int or not 1 <= value <= top:
        raise BadRequest(f"limit must be an integer in 1..{top}", code="bad_limit")
    return value


def int_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isdecimal() or len(value) > 20:
        raise BadRequest("cursor is not valid", code="bad_cursor")
    return int(value)


def since(value: str | float | None, now: float) -> float | None:
    """``15m``/``24h``/``7d`` (before now) or Unix seconds; None means no lower bound."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return unix_time(value, "since")
    if not isinstance(value, str):
        raise BadRequest("since must be a string", code="bad_since")
    match = _DURATION.fullmatch(value)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    return unix_time(value, "since")


def unix_time(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be a duration or Unix time", code=f"bad_{what}")
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"{what} must be a duration or Unix time", code=f"bad_{what}") from None
    if not 0 <= result < 1e11:
        raise BadRequest(f"{what} is out of range", code=f"bad_{what}")
    return result


def now_seconds() -> float:
    return time.time()
