"""NETBAT/2 subscription stream lines (netbat.md §2): pure encode and decode, no I/O.

One LF-terminated line per frame, ``NETBAT/2 <VERB> <fields...>``. Compatibility rules:

1. Integers are plain decimal out; in, they parse as Rust ``u64``/``u32`` do (an optional
   ``+``, ASCII digits, leading zeros allowed; no ``_``, whitespace or ``-``).
2. Bytes are lowercase hex out, either case in; an absent optional cursor is ``-``.
3. Decode pulls the raw tokens in field order (optional cursors are hex-decoded as they are
   pulled), then validates in field order, and checks "too many fields" last.
4. Any version token other than ``NETBAT/2`` is ``unsupported_protocol_version``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from netbat._hex import HexNotHex, HexOddLength, HexTooLarge, decode_hex, encode_hex
from netbat.errors import (
    CursorTooLarge,
    LineTooLong,
    MalformedStreamFrame,
    NetbatError,
    StreamMessageTooLarge,
    StreamPayloadTooLarge,
    SubscriptionIdTooLong,
    UnsupportedProtocolVersion,
)
from netbat.frames import strip_line_ending
from netbat.limits import DEFAULT_MAX_SUBSCRIPTION_ID_BYTES, Limits

__all__ = (
    "STREAM_PROTOCOL_VERSION",
    "StreamFrame",
    "SubAck",
    "SubCancel",
    "SubEnd",
    "SubErr",
    "SubEvent",
    "SubWatermark",
    "Subscribe",
    "decode_stream_line",
    "encode_stream_frame",
    "validate_payload_schema_ref",
    "validate_reason_code",
    "validate_subscription_id",
)

STREAM_PROTOCOL_VERSION = b"NETBAT/2"

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
_MAX_REASON_CODE_BYTES = 128
_MAX_PAYLOAD_SCHEMA_REF_BYTES = 256
_DEFAULT_LIMITS = Limits()

_LOWER_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_DIGITS = frozenset("0123456789")
# Rust char::is_whitespace (the Unicode White_Space property).
_RUST_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """C→S, first line: open or resume ``subscription_id`` with a receive window."""

    subscription_id: str
    resume_cursor: bytes | None
    client_window: int


@dataclass(frozen=True, slots=True)
class SubEvent:
    """S→C: one delivered event with its cursors and payload."""

    subscription_id: str
    delivery_index: int
    cursor_before: bytes | None
    cursor_after: bytes | None
    payload_schema_ref: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SubWatermark:
    """S→C: a frontier watermark, sharing the delivery-index sequence with events."""

    subscription_id: str
    delivery_index: int
    cursor_after: bytes


@dataclass(frozen=True, slots=True)
class SubAck:
    """C→S: cumulative acknowledgement up to ``delivery_index``."""

    subscription_id: str
    delivery_index: int
    cursor_after: bytes


@dataclass(frozen=True, slots=True)
class SubCancel:
    """C→S: cancel the subscription."""

    subscription_id: str
    reason_code: str


@dataclass(frozen=True, slots=True)
class SubErr:
    """S→C, terminal: the stream failed with ``code``; ``message`` is UTF-8 bytes."""

    subscription_id: str
    code: str
    last_delivered_cursor: bytes | None
    last_acked_cursor: bytes | None
    message: bytes


@dataclass(frozen=True, slots=True)
class SubEnd:
    """S→C, terminal: the stream ended with ``reason_code``."""

    subscription_id: str
    cursor_after: bytes | None
    reason_code: str


StreamFrame = Subscribe | SubEvent | SubWatermark | SubAck | SubCancel | SubErr | SubEnd


# -- token grammars ---------------------------------------------------------------------------


def validate_subscription_id(sub_id: str) -> None:
    """Check ``^[a-z0-9][a-z0-9._-]*\\.v[1-9][0-9]*$`` with the dot rules; raise on failure."""
    reason = _subscription_id_problem(sub_id)
    if reason is not None:
        raise MalformedStreamFrame(reason)


def _subscription_id_problem(sub_id: str) -> str | None:
    if not sub_id:
        return "empty subscription id"
    if len(sub_id.encode("utf-8")) > DEFAULT_MAX_SUBSCRIPTION_ID_BYTES:
        return "subscription id longer than 128 bytes"
    if sub_id.startswith(".") or sub_id.endswith("."):
        return "subscription id has a leading or trailing '.'"
    if ".." in sub_id:
        return "subscription id has a doubled '.'"
    dot_v = sub_id.rfind(".v")
    if dot_v < 0:
        return "subscription id must contain a .v version suffix"
    name, version = sub_id[:dot_v], sub_id[dot_v + 2 :]
    if not name:
        return "subscription id name prefix is empty"
    if name[0] not in _LOWER_ALNUM:
        return "subscription id must start with [a-z0-9]"
    if not _LOWER_TOKEN.issuperset(name):
        return "subscription id has characters outside [a-z0-9._-]"
    if not version:
        return "subscription id missing version digits after .v"
    if version[0] not in _DIGITS or version[0] == "0":
        return "subscription id version must start with 1-9"
    if not _DIGITS.issuperset(version):
        return "subscription id version must be digits only"
    return None


def validate_reason_code(code: str) -> None:
    """Check a reason/error code: 1..=128 bytes of ``[a-z0-9._-]``; raise on failure."""
    if not code:
        raise MalformedStreamFrame("empty reason code")
    if len(code.encode("utf-8")) > _MAX_REASON_CODE_BYTES:
        raise MalformedStreamFrame("reason code longer than 128 bytes")
    if not _LOWER_TOKEN.issuperset(code):
        raise MalformedStreamFrame("reason code has characters outside [a-z0-9._-]")


def validate_payload_schema_ref(ref: str) -> None:
    """Check a payload schema ref: 1..=256 bytes of ``[a-z0-9._-]``; raise on failure."""
    if not ref:
        raise MalformedStreamFrame("empty payload schema ref")
    if len(ref.encode("utf-8")) > _MAX_PAYLOAD_SCHEMA_REF_BYTES:
        raise MalformedStreamFrame("payload schema ref longer than 256 bytes")
    if not _RUST_WHITESPACE.isdisjoint(ref):
        raise MalformedStreamFrame("payload schema ref contains whitespace")
    if not _LOWER_TOKEN.issuperset(ref):
        raise MalformedStreamFrame("payload schema ref has characters outside [a-z0-9._-]")


# -- token parsers ----------------------------------------------------------------------------


def _utf8(token: bytes) -> str:
    try:
        return token.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedStreamFrame("token is not utf-8") from None


def _rust_uint(token: bytes, maximum: int) -> int:
    text = _utf8(token)
    digits = text[1:] if text.startswith("+") else text
    if not digits or not _DIGITS.issuperset(digits):
        raise MalformedStreamFrame("integer field is not decimal")
    significant = digits.lstrip("0") or "0"
    if len(significant) > 20:  # above u64, and int() refuses over 4300 digits
        raise MalformedStreamFrame("integer field is not decimal")
    value = int(significant)
    if value > maximum:
        raise MalformedStreamFrame("integer field is not decimal")
    return value


def _subscription_id(token: bytes, limits: Limits) -> str:
    sub_id = _utf8(token)
    if len(token) > limits.max_subscription_id_bytes:
        raise SubscriptionIdTooLong(limits.max_subscription_id_bytes)
    validate_subscription_id(sub_id)
    return sub_id


def _delivery_index(token: bytes) -> int:
    value = _rust_uint(token, U64_MAX)
    if value == 0:
        raise MalformedStreamFrame("delivery index must be nonzero")
    return value


def _client_window(token: bytes) -> int:
    value = _rust_uint(token, U32_MAX)
    if value == 0:
        raise MalformedStreamFrame("client window must be nonzero")
    return value


def _reason_code(token: bytes) -> str:
    code = _utf8(token)
    validate_reason_code(code)
    return code


def _schema_ref(token: bytes) -> str:
    ref = _utf8(token)
    validate_payload_schema_ref(ref)
    return ref


def _stream_hex(token: bytes, max_bytes: int, too_large: Callable[[int], NetbatError]) -> bytes:
    try:
        return decode_hex(token, max_bytes)
    except HexOddLength:
        raise MalformedStreamFrame("hex input has odd length") from None
    except HexTooLarge:
        raise too_large(max_bytes) from None
    except HexNotHex:
        raise MalformedStreamFrame("input is not hex") from None


def _cursor(token: bytes, limits: Limits) -> bytes:
    return _stream_hex(token, limits.max_cursor_bytes, CursorTooLarge)


def _maybe_cursor(token: bytes, limits: Limits) -> bytes | None:
    return None if token == b"-" else _cursor(token, limits)


class _Tokens:
    def __init__(self, parts: list[bytes]) -> None:
        self._it: Iterator[bytes] = iter(parts)

    def next(self, missing: str) -> bytes:
        token = next(self._it, None)
        if token is None:
            raise MalformedStreamFrame(missing)
        return token

    def maybe_cursor(self, missing: str, limits: Limits) -> bytes | None:
        return _maybe_cursor(self.next(missing), limits)

    def leftover(self) -> bool:
        return next(self._it, None) is not None


# -- per-verb decoders ------------------------------------------------------------------------


def _subscribe(t: _Tokens, limits: Limits) -> Subscribe:
    sub_id = t.next("missing subscription id")
    resume = t.maybe_cursor("missing resume cursor", limits)
    window = t.next("missing client window")
    return Subscribe(_subscription_id(sub_id, limits), resume, _client_window(window))


def _sub_event(t: _Tokens, limits: Limits) -> SubEvent:
    sub_id = t.next("missing subscription id")
    index = t.next("missing delivery index")
    before = t.maybe_cursor("missing cursor_before", limits)
    after = t.maybe_cursor("missing cursor_after", limits)
    schema = t.next("missing payload schema ref")
    payload = t.next("missing payload hex")
    return SubEvent(
        _subscription_id(sub_id, limits),
        _delivery_index(index),
        before,
        after,
        _schema_ref(schema),
        _stream_hex(payload, limits.max_stream_payload_bytes, StreamPayloadTooLarge),
    )


def _sub_watermark(t: _Tokens, limits: Limits) -> SubWatermark:
    sub_id = t.next("missing subscription id")
    index = t.next("missing delivery index")
    after = t.next("missing cursor_after")
    return SubWatermark(
        _subscription_id(sub_id, limits), _delivery_index(index), _cursor(after, limits)
    )


def _sub_ack(t: _Tokens, limits: Limits) -> SubAck:
    sub_id = t.next("missing subscription id")
    index = t.next("missing delivery index")
    after = t.next("missing cursor_after")
    return SubAck(_subscription_id(sub_id, limits), _delivery_index(index), _cursor(after, limits))


def _sub_cancel(t: _Tokens, limits: Limits) -> SubCancel:
    sub_id = t.next("missing subscription id")
    reason = t.next("missing reason code")
    return SubCancel(_subscription_id(sub_id, limits), _reason_code(reason))


def _sub_err(t: _Tokens, limits: Limits) -> SubErr:
    sub_id = t.next("missing subscription id")
    code = t.next("missing error code")
    delivered = t.maybe_cursor("missing last delivered cursor", limits)
    acked = t.maybe_cursor("missing last acked cursor", limits)
    message = t.next("missing message hex")
    return SubErr(
        _subscription_id(sub_id, limits),
        _reason_code(code),
        delivered,
        acked,
        _stream_hex(message, limits.max_stream_error_message_bytes, StreamMessageTooLarge),
    )


def _sub_end(t: _Tokens, limits: Limits) -> SubEnd:
    sub_id = t.next("missing subscription id")
    after = t.maybe_cursor("missing cursor_after", limits)
    reason = t.next("missing reason code")
    return SubEnd(_subscription_id(sub_id, limits), after, _reason_code(reason))


_DECODERS: dict[bytes, Callable[[_Tokens, Limits], StreamFrame]] = {
    b"SUBSCRIBE": _subscribe,
    b"SUB_EVENT": _sub_event,
    b"SUB_WATERMARK": _sub_watermark,
    b"SUB_ACK": _sub_ack,
    b"SUB_CANCEL": _sub_cancel,
    b"SUB_ERR": _sub_err,
    b"SUB_END": _sub_end,
}


def decode_stream_line(line: bytes, limits: Limits = _DEFAULT_LIMITS) -> StreamFrame:
    """Decode one NETBAT/2 line (terminator optional); raise the first failed check's error."""
    if len(line) > limits.max_line_bytes:
        raise LineTooLong(limits.max_line_bytes)
    line = strip_line_ending(line)
    if not line:
        raise MalformedStreamFrame("empty line")
    parts = line.split(b" ")
    version = parts[0]
    if version != STREAM_PROTOCOL_VERSION:
        try:
            shown = version.decode("utf-8")
        except UnicodeDecodeError:
            shown = "0x" + version.hex()
        raise UnsupportedProtocolVersion(shown)
    if len(parts) < 2:
        raise MalformedStreamFrame("missing stream verb")
    decoder = _DECODERS.get(parts[1])
    if decoder is None:
        raise MalformedStreamFrame("unknown stream verb")
    tokens = _Tokens(parts[2:])
    frame = decoder(tokens, limits)
    if tokens.leftover():
        raise MalformedStreamFrame("too many fields")
    return frame


# -- encoder ----------------------------------------------------------------------------------


def _opt(cursor: bytes | None) -> bytes:
    return b"-" if cursor is None else encode_hex(cursor)


def _fields(frame: StreamFrame) -> tuple[bytes, list[bytes]]:
    if isinstance(frame, Subscribe):
        return b"SUBSCRIBE", [
            frame.subscription_id.encode(),
            _opt(frame.resume_cursor),
            str(frame.client_window).encode(),
        ]
    if isinstance(frame, SubEvent):
        return b"SUB_EVENT", [
            frame.subscription_id.encode(),
            str(frame.delivery_index).encode(),
            _opt(frame.cursor_before),
            _opt(frame.cursor_after),
            frame.payload_schema_ref.encode(),
            encode_hex(frame.payload),
        ]
    if isinstance(frame, SubWatermark):
        return b"SUB_WATERMARK", [
            frame.subscription_id.encode(),
            str(frame.delivery_index).encode(),
            encode_hex(frame.cursor_after),
        ]
    if isinstance(frame, SubAck):
        return b"SUB_ACK", [
            frame.subscription_id.encode(),
            str(frame.delivery_index).encode(),
            encode_hex(frame.cursor_after),
        ]
    if isinstance(frame, SubCancel):
        return b"SUB_CANCEL", [frame.subscription_id.encode(), frame.reason_code.encode()]
    if isinstance(frame, SubErr):
        return b"SUB_ERR", [
            frame.subscription_id.encode(),
            frame.code.encode(),
            _opt(frame.last_delivered_cursor),
            _opt(frame.last_acked_cursor),
            encode_hex(frame.message),
        ]
    return b"SUB_END", [
        frame.subscription_id.encode(),
        _opt(frame.cursor_after),
        frame.reason_code.encode(),
    ]


def encode_stream_frame(frame: StreamFrame) -> bytes:
    """Return the LF-terminated line for ``frame`` (fields are written as given)."""
    verb, fields = _fields(frame)
    return b" ".join([STREAM_PROTOCOL_VERSION, verb, *fields]) + b"\n"
