"""NETBAT/1 request and response lines (netbat.md §1): pure encode and decode, no I/O.

A request is ``NETBAT/1 CALL <op> <hex-input>\\n``; a response is ``OK <hex>\\n`` or
``ERR <code> <hex(message)>\\n``. Compatibility rules:

1. Hex goes out lowercase; decoders accept either case.
2. One 0x20 per separator, LF only; an empty hex field keeps its trailing space.
3. ``decode_request`` runs its checks in the reference's order and the first failure wins;
   the error's Display text is byte-identical to the Rust reference.
4. Line limits count raw bytes including the terminator.
"""

from __future__ import annotations

from dataclasses import dataclass

from netbat._hex import HexNotHex, HexOddLength, HexTooLarge, decode_hex, encode_hex
from netbat.errors import (
    InputTooLarge,
    LineTooLong,
    MalformedRequest,
    MalformedResponse,
    NetbatError,
    OperationNameTooLong,
    UnsupportedProtocolVersion,
    error_from_wire,
)
from netbat.limits import DEFAULT_MAX_OPERATION_NAME_BYTES, Limits

__all__ = (
    "CALL_VERB",
    "LINE_PROTOCOL_VERSION",
    "PROTOCOL_PREFIX",
    "Request",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_ok",
    "encode_request",
    "encode_response",
    "strip_line_ending",
    "validate_operation_name",
)

PROTOCOL_PREFIX = b"NETBAT/"
LINE_PROTOCOL_VERSION = b"NETBAT/1"
CALL_VERB = b"CALL"

_OP_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded NETBAT/1 call: the operation name and its input bytes."""

    operation: str
    input: bytes


def strip_line_ending(line: bytes) -> bytes:
    """Strip one trailing ``\\n``, then one trailing ``\\r`` (so CRLF, LF and bare CR work)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


def encode_request(operation: str, input: bytes) -> bytes:
    """Return the request line for ``operation``; the name is not validated (the decoder is)."""
    return b"NETBAT/1 CALL " + operation.encode("utf-8") + b" " + encode_hex(input) + b"\n"


def validate_operation_name(operation: bytes, limits: Limits = _DEFAULT_LIMITS) -> str:
    """Check an operation name as the decoder does (§1.2 step 10) and return it as text."""
    if len(operation) > limits.max_operation_name_bytes:
        raise OperationNameTooLong(limits.max_operation_name_bytes)
    try:
        text = operation.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("operation has invalid bytes") from None
    if not operation:
        raise MalformedRequest("empty operation")
    if len(operation) > DEFAULT_MAX_OPERATION_NAME_BYTES:
        # Only reachable when the configured bound is above the type-level one.
        raise OperationNameTooLong(DEFAULT_MAX_OPERATION_NAME_BYTES)
    if not _OP_BYTES.issuperset(operation):
        raise MalformedRequest("operation has invalid bytes")
    if operation.startswith(b".") or operation.endswith(b".") or b".." in operation:
        raise MalformedRequest("operation dot segments must be non-empty")
    return text


def decode_request(line: bytes, limits: Limits = _DEFAULT_LIMITS) -> Request:
    """Decode one request line (terminator optional); raise the first failed check's error."""
    if len(line) > limits.max_line_bytes:
        raise LineTooLong(limits.max_line_bytes)
    line = strip_line_ending(line)
    if not line:
        raise MalformedRequest("empty line")
    parts = line.split(b" ")
    first = parts[0]
    if not first.startswith(PROTOCOL_PREFIX):
        raise MalformedRequest("missing NETBAT/1 protocol prefix")
    if first != LINE_PROTOCOL_VERSION:
        raise UnsupportedProtocolVersion(first.decode("utf-8", errors="replace"))
    if len(parts) < 2:
        raise MalformedRequest("missing verb")
    if len(parts) < 3:
        raise MalformedRequest("missing operation")
    if len(parts) < 4:
        raise MalformedRequest("missing input")
    if len(parts) > 4:
        raise MalformedRequest("too many fields")
    _, verb, operation, hex_input = parts
    if verb != CALL_VERB:
        raise MalformedRequest("unsupported verb")
    name = validate_operation_name(operation, limits)
    try:
        data = decode_hex(hex_input, limits.max_input_bytes)
    except HexOddLength:
        raise MalformedRequest("hex input has odd length") from None
    except HexTooLarge:
        raise InputTooLarge(limits.max_input_bytes) from None
    except HexNotHex:
        raise MalformedRequest("input is not hex") from None
    return Request(name, data)


def encode_ok(output: bytes) -> bytes:
    """Return the success line ``OK <hex(output)>\\n``."""
    return b"OK " + encode_hex(output) + b"\n"


def encode_error(error: NetbatError) -> bytes:
    """Return ``ERR <code> <hex(Display text)>\\n`` for ``error``."""
    return (
        b"ERR " + error.code.encode("ascii") + b" " + encode_hex(str(error).encode("utf-8")) + b"\n"
    )


def encode_response(result: bytes | NetbatError) -> bytes:
    """Return the response line for an output (``bytes``) or an error."""
    if isinstance(result, NetbatError):
        return encode_error(result)
    return encode_ok(result)


def _response_hex(token: bytes, what: str) -> bytes:
    try:
        return decode_hex(token, len(token))
    except HexOddLength:
        raise MalformedResponse(f"{what} hex has odd length") from None
    except (HexNotHex, HexTooLarge):
        raise MalformedResponse(f"{what} is not hex") from None


def decode_response(line: bytes) -> bytes | NetbatError:
    """Decode a response line: the output bytes for OK, the typed error for ERR.

    The error is returned, not raised, so callers can tell a remote error from a broken reply
    (``MalformedResponse`` is raised).
    """
    line = strip_line_ending(line)
    if line.startswith(b"OK "):
        return _response_hex(line[3:], "output")
    if line.startswith(b"ERR "):
        code, sep, message_hex = line[4:].partition(b" ")
        if not sep:
            raise MalformedResponse("missing error message")
        if not code or not _OP_BYTES.issuperset(code):
            raise MalformedResponse("error code has invalid bytes")
        try:
            message = _response_hex(message_hex, "error message").decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedResponse("error message is not utf-8") from None
        return error_from_wire(code.decode("ascii"), message)
    raise MalformedResponse("expected OK or ERR")
