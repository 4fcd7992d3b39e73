"""The netbat error tree: one class per frozen wire code (netbat.md §1.4).

    NetbatError                  base; ``code`` is the wire token, ``str()`` the Display text
    ├── IoError                   io
    ├── EmptyStream               empty_stream (never written on the wire)
    ├── LineTooLong               line_too_long
    ├── MalformedRequest          malformed_request
    ├── UnsupportedProtocolVersion
    ├── OperationNameTooLong, InputTooLarge, OutputTooLarge
    ├── MalformedStreamFrame, SubscriptionIdTooLong, CursorTooLarge,
    │   StreamPayloadTooLarge, StreamMessageTooLarge
    ├── RuntimeFailure            runtime (catch-all of the dispatcher)
    │   ├── UnknownOperation      unknown_operation
    │   ├── MissingHandler        missing_handler
    │   ├── HandlerFailed         handler
    │   └── ReceiptSinkFailed     receipt_sink
    ├── MalformedResponse         client side only: a reply that is not an OK/ERR line
    └── UnrecognizedError         client side only: an ERR code outside the table

``str(error)`` is byte for byte the Rust ``Display`` text that goes (hex-encoded) into an ERR
frame. ``error_from_wire(code, message)`` rebuilds the typed error a client received.

``SubscriptionFault`` is apart from the tree: it is a NETBAT/2 stream code (``cursor_invalid``,
``slow_consumer``, ...) that a subscription source raises and a SUB_ERR frame carries.
"""

from __future__ import annotations

import errno
import ssl
from typing import ClassVar

__all__ = (
    "CursorTooLarge",
    "EmptyStream",
    "HandlerFailed",
    "InputTooLarge",
    "IoError",
    "LineTooLong",
    "MalformedRequest",
    "MalformedResponse",
    "MalformedStreamFrame",
    "MissingHandler",
    "NetbatError",
    "OperationNameTooLong",
    "OutputTooLarge",
    "ReceiptSinkFailed",
    "RuntimeFailure",
    "StreamMessageTooLarge",
    "StreamPayloadTooLarge",
    "SubscriptionFault",
    "SubscriptionIdTooLong",
    "UnknownOperation",
    "UnrecognizedError",
    "UnsupportedProtocolVersion",
    "error_from_wire",
    "io_kind_of",
)


class NetbatError(Exception):
    """Base of every netbat error; ``code`` is the stable wire token."""

    code: ClassVar[str] = "netbat"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NetbatError)
            and type(other) is type(self)
            and other.message == self.message
        )

    def __hash__(self) -> int:
        return hash((type(self), self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class IoError(NetbatError):
    """A read, write or timeout failed; ``kind`` is the Rust ``io::ErrorKind`` Debug name."""

    code = "io"

    def __init__(self, kind: str) -> None:
        super().__init__(f"io error: {kind}")
        self.kind = kind


class EmptyStream(NetbatError):
    """The peer closed before sending a byte; the server closes silently."""

    code = "empty_stream"

    def __init__(self) -> None:
        super().__init__("empty stream")


class _MaxError(NetbatError):
    _template: ClassVar[str]

    def __init__(self, max: int) -> None:
        super().__init__(self._template.format(max=max))
        self.max = max


class LineTooLong(_MaxError):
    """A line exceeded ``max_line_bytes`` (terminator included)."""

    code = "line_too_long"
    _template = "request line exceeded {max} bytes"


class MalformedRequest(NetbatError):
    """A NETBAT/1 request line broke the grammar; ``reason`` names the first failed check."""

    code = "malformed_request"

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed request: {reason}")
        self.reason = reason


class UnsupportedProtocolVersion(NetbatError):
    """The version token is not the one this decoder speaks."""

    code = "unsupported_protocol_version"

    def __init__(self, version: str) -> None:
        super().__init__(f"unsupported protocol version: {version}")
        self.version = version


class OperationNameTooLong(_MaxError):
    """The operation name exceeded ``max_operation_name_bytes``."""

    code = "operation_name_too_long"
    _template = "operation name exceeded {max} bytes"


class InputTooLarge(_MaxError):
    """The decoded input exceeded ``max_input_bytes``."""

    code = "input_too_large"
    _template = "input exceeded {max} bytes"


class OutputTooLarge(_MaxError):
    """The dispatcher's output exceeded ``max_output_bytes`` (raised after it ran)."""

    code = "output_too_large"
    _template = "output exceeded {max} bytes"


class MalformedStreamFrame(NetbatError):
    """A NETBAT/2 line broke the grammar; ``reason`` names the first failed check."""

    code = "malformed_stream_frame"

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed stream frame: {reason}")
        self.reason = reason


class SubscriptionIdTooLong(_MaxError):
    """A subscription id exceeded ``max_subscription_id_bytes``."""

    code = "subscription_id_too_long"
    _template = "subscription id exceeded {max} bytes"


class CursorTooLarge(_MaxError):
    """A cursor decoded to more than ``max_cursor_bytes``."""

    code = "cursor_too_large"
    _template = "cursor exceeded {max} bytes"


class StreamPayloadTooLarge(_MaxError):
    """A SUB_EVENT payload decoded to more than ``max_stream_payload_bytes``."""

    code = "stream_payload_too_large"
    _template = "stream payload exceeded {max} bytes"


class StreamMessageTooLarge(_MaxError):
    """A SUB_ERR message decoded to more than ``max_stream_error_message_bytes``."""

    code = "stream_message_too_large"
    _template = "stream error message exceeded {max} bytes"


class RuntimeFailure(NetbatError):
    """The dispatcher refused the call; ``detail`` follows ``runtime error: ``."""

    code = "runtime"

    def __init__(self, detail: str) -> None:
        super().__init__(f"runtime error: {detail}")
        self.detail = detail

    @classmethod
    def denied(cls, operation: str, denial_code: str, message: str) -> RuntimeFailure:
        """Return the catch-all error of a denied call (a gate said no)."""
        return cls(f"operation `{operation}` denied with {denial_code}: {message}")


class UnknownOperation(RuntimeFailure):
    """No operation of that name is registered."""

    code = "unknown_operation"

    def __init__(self, operation: str) -> None:
        super().__init__(f"unknown operation `{operation}`")
        self.operation = operation


class MissingHandler(RuntimeFailure):
    """The operation is declared but nothing handles it."""

    code = "missing_handler"

    def __init__(self, operation: str) -> None:
        super().__init__(f"operation `{operation}` has no registered handler")
        self.operation = operation


class HandlerFailed(RuntimeFailure):
    """The handler returned an error; ``error_class`` is ``invalid_input`` or ``failed``."""

    code = "handler"

    def __init__(self, operation: str, error_class: str, message: str) -> None:
        super().__init__(
            f"handler for operation `{operation}` failed with {error_class}: {message}"
        )
        self.operation = operation
        self.error_class = error_class
        self.handler_message = message


class ReceiptSinkFailed(RuntimeFailure):
    """The receipt sink failed, optionally after a handler error."""

    code = "receipt_sink"

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        handler_error: tuple[str, str] | None = None,
    ) -> None:
        if handler_error is None:
            detail = f"receipt sink for operation `{operation}` failed: {message}"
        else:
            cls_, hmsg = handler_error
            detail = (
                f"receipt sink for operation `{operation}` failed after handler error "
                f"{cls_}: {hmsg}: {message}"
            )
        super().__init__(detail)
        self.operation = operation


class MalformedResponse(NetbatError):
    """A reply line is neither ``OK <hex>`` nor ``ERR <code> <hex>`` (never on the wire)."""

    code = "malformed_response"

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed response: {reason}")
        self.reason = reason


class UnrecognizedError(NetbatError):
    """An ERR frame carried a code outside the table; ``wire_code`` keeps it."""

    code = "unrecognized"

    def __init__(self, wire_code: str, message: str) -> None:
        super().__init__(message)
        self.wire_code = wire_code


_WIRE_CLASSES: dict[str, type[NetbatError]] = {
    cls.code: cls
    for cls in (
        IoError,
        EmptyStream,
        LineTooLong,
        MalformedRequest,
        UnsupportedProtocolVersion,
        OperationNameTooLong,
        InputTooLarge,
        OutputTooLarge,
        MalformedStreamFrame,
        SubscriptionIdTooLong,
        CursorTooLarge,
        StreamPayloadTooLarge,
        StreamMessageTooLarge,
        UnknownOperation,
        MissingHandler,
        HandlerFailed,
        ReceiptSinkFailed,
        RuntimeFailure,
    )
}

WIRE_CODES: tuple[str, ...] = tuple(_WIRE_CLASSES)
"""The 18 frozen wire codes, in table order."""


def error_from_wire(code: str, message: str) -> NetbatError:
    """Return the typed error for an ERR frame's ``code``, carrying ``message`` verbatim.

    Only the class and ``message`` are rebuilt; the structured fields of the server-side
    instance (``max``, ``reason``, ...) are not parsed back.
    """
    cls = _WIRE_CLASSES.get(code)
    if cls is None:
        return UnrecognizedError(code, message)
    error = cls.__new__(cls)
    NetbatError.__init__(error, message)
    return error


_ERRNO_KINDS: dict[int, str] = {
    errno.EAGAIN: "WouldBlock",
    errno.EPIPE: "BrokenPipe",
    errno.ECONNRESET: "ConnectionReset",
    errno.ECONNABORTED: "ConnectionAborted",
    errno.ECONNREFUSED: "ConnectionRefused",
    errno.ETIMEDOUT: "TimedOut",
    errno.ENOTCONN: "NotConnected",
    errno.EADDRINUSE: "AddrInUse",
    errno.EADDRNOTAVAIL: "AddrNotAvailable",
    errno.EHOSTUNREACH: "HostUnreachable",
    errno.ENETUNREACH: "NetworkUnreachable",
    errno.EINTR: "Interrupted",
    errno.ENOENT: "NotFound",
    errno.EACCES: "PermissionDenied",
    errno.EPERM: "PermissionDenied",
}


def io_kind_of(error: BaseException) -> str:
    """Return the Rust ``io::ErrorKind`` Debug name closest to a Python I/O exception."""
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return io_kind_of(error.exceptions[0])
    if isinstance(error, ssl.SSLError):
        return "InvalidData"  # what rustls surfaces for a failed handshake or record
    if isinstance(error, OSError) and error.errno in _ERRNO_KINDS:
        return _ERRNO_KINDS[error.errno]
    if error.__cause__ is not None and not (isinstance(error, OSError) and error.errno):
        # anyio wraps socket failures (BrokenResourceError from ConnectionResetError).
        return io_kind_of(error.__cause__)
    if isinstance(error, TimeoutError):
        return "TimedOut"
    if isinstance(error, EOFError):
        return "UnexpectedEof"
    return "Other"


class SubscriptionFault(Exception):
    """A NETBAT/2 stream failure with its SUB_ERR ``code`` and UTF-8 ``message``.

    A subscription source raises it from ``open`` (``unknown_subscription``, ``cursor_invalid``,
    ``cursor_mismatch``), from ``poll`` (a runtime failure), or from an ACK cursor check.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def unknown_subscription(cls, subscription_id: str) -> SubscriptionFault:
        """Return the open failure for a subscription id no route serves."""
        return cls("unknown_subscription", subscription_id)

    @classmethod
    def cursor_invalid(cls, reason: str) -> SubscriptionFault:
        """Return the failure for a cursor that does not decode."""
        return cls("cursor_invalid", reason)

    @classmethod
    def cursor_mismatch(cls, reason: str) -> SubscriptionFault:
        """Return the failure for a cursor bound to another route."""
        return cls("cursor_mismatch", reason)
