"""netbat: the NETBAT/1 request/response and NETBAT/2 subscription wire protocol over TCP.

Byte-compatible with the Rust reference (batpak's ``netbat`` 0.10.0). One ASCII line per
frame, byte payloads in hex. ``frames`` and ``stream_frames`` encode and decode lines with no
I/O; ``RequestServer`` serves a ``Dispatcher`` and ``SubscriptionServer`` a
``SubscriptionSource`` over anyio TCP (optionally TLS); ``call`` / ``acall`` and
``Subscription`` are the clients.
"""

import contextlib as _contextlib

from netbat.client import Subscription, acall, call
from netbat.dispatch import (
    Dispatcher,
    InlineDispatcher,
    SubscriptionFeed,
    SubscriptionSource,
    dispatch_request,
)
from netbat.errors import (
    CursorTooLarge,
    EmptyStream,
    HandlerFailed,
    InputTooLarge,
    IoError,
    LineTooLong,
    MalformedRequest,
    MalformedResponse,
    MalformedStreamFrame,
    MissingHandler,
    NetbatError,
    OperationNameTooLong,
    OutputTooLarge,
    ReceiptSinkFailed,
    RuntimeFailure,
    StreamMessageTooLarge,
    StreamPayloadTooLarge,
    SubscriptionFault,
    SubscriptionIdTooLong,
    UnknownOperation,
    UnrecognizedError,
    UnsupportedProtocolVersion,
)
from netbat.frames import (
    Request,
    decode_request,
    decode_response,
    encode_error,
    encode_ok,
    encode_request,
    encode_response,
)
from netbat.limits import Limits
from netbat.server import RequestServer, ServerConfig
from netbat.session import Session, SourceEnd, SourceEvent, SourceItem, SourceWatermark
from netbat.stream_frames import (
    StreamFrame,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    SubEvent,
    Subscribe,
    SubWatermark,
    decode_stream_line,
    encode_stream_frame,
)
from netbat.stream_server import SubscriptionServer, SubscriptionServerConfig

__version__ = "0.1.0"

__all__ = (
    "CursorTooLarge",
    "Dispatcher",
    "EmptyStream",
    "HandlerFailed",
    "InlineDispatcher",
    "InputTooLarge",
    "IoError",
    "Limits",
    "LineTooLong",
    "MalformedRequest",
    "MalformedResponse",
    "MalformedStreamFrame",
    "MissingHandler",
    "NetbatError",
    "OperationNameTooLong",
    "OutputTooLarge",
    "ReceiptSinkFailed",
    "Request",
    "RequestServer",
    "RuntimeFailure",
    "ServerConfig",
    "Session",
    "SourceEnd",
    "SourceEvent",
    "SourceItem",
    "SourceWatermark",
    "StreamFrame",
    "StreamMessageTooLarge",
    "StreamPayloadTooLarge",
    "SubAck",
    "SubCancel",
    "SubEnd",
    "SubErr",
    "SubEvent",
    "SubWatermark",
    "Subscribe",
    "Subscription",
    "SubscriptionFault",
    "SubscriptionFeed",
    "SubscriptionIdTooLong",
    "SubscriptionServer",
    "SubscriptionServerConfig",
    "SubscriptionSource",
    "UnknownOperation",
    "UnrecognizedError",
    "UnsupportedProtocolVersion",
    "acall",
    "call",
    "decode_request",
    "decode_response",
    "decode_stream_line",
    "dispatch_request",
    "encode_error",
    "encode_ok",
    "encode_request",
    "encode_response",
    "encode_stream_frame",
)

for _name in __all__:
    with _contextlib.suppress(AttributeError, TypeError):
        globals()[_name].__module__ = "netbat"
