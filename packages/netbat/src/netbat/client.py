"""Clients: ``call`` / ``acall`` for NETBAT/1 and ``Subscription`` for NETBAT/2.

``call`` opens one connection per call (the server default is one request per connection),
sends the request line, reads one response line and returns the output bytes or raises the
typed ``NetbatError`` the server answered with. Transport failures raise ``IoError``; a reply
that is not an OK/ERR line raises ``MalformedResponse``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from types import TracebackType

import anyio

from netbat._lines import STREAM_ERRORS, LineReader
from netbat.errors import (
    EmptyStream,
    IoError,
    LineTooLong,
    MalformedStreamFrame,
    NetbatError,
    SubscriptionFault,
    io_kind_of,
)
from netbat.frames import decode_response, encode_request
from netbat.limits import DEFAULT_MAX_OUTPUT_BYTES, Limits
from netbat.stream_frames import (
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

__all__ = ("DEFAULT_MAX_RESPONSE_BYTES", "Subscription", "acall", "call")

# An OK line carries 2 hex chars per output byte; keep headroom for long ERR messages.
DEFAULT_MAX_RESPONSE_BYTES = 2 * DEFAULT_MAX_OUTPUT_BYTES + 4096


class _SocketLines:
    """Blocking line reader over a socket, bounded like the server's."""

    def __init__(self, sock: socket.socket, max_line_bytes: int) -> None:
        self._sock = sock
        self._max = max_line_bytes
        self._buf = bytearray()
        self._eof = False

    def read_line(self) -> bytes:
        while True:
            index = self._buf.find(b"\n")
            if index >= 0:
                line = bytes(self._buf[: index + 1])
                del self._buf[: index + 1]
                if len(line) > self._max:
                    raise LineTooLong(self._max)
                return line
            if len(self._buf) >= self._max:
                raise LineTooLong(self._max)
            if self._eof:
                raise EmptyStream
            try:
                chunk = self._sock.recv(65536)
            except OSError as error:
                raise IoError(io_kind_of(error)) from error
            if not chunk:
                self._eof = True
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                raise EmptyStream
            self._buf += chunk


def _connect(
    host: str,
    port: int,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise IoError(io_kind_of(error)) from error
    if ssl_context is None:
        return sock
    try:
        return ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
    except OSError as error:
        sock.close()
        raise IoError(io_kind_of(error)) from error


def _result(line: bytes) -> bytes:
    result = decode_response(line)
    if isinstance(result, NetbatError):
        raise result
    return result


def call(
    host: str,
    port: int,
    op: str,
    input: bytes,
    *,
    timeout: float | None = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> bytes:
    """Call ``op`` with ``input`` and return its output; raise the server's typed error.

    ``timeout`` bounds the connect and each socket read or write, in seconds.
    """
    with _connect(host, port, timeout, ssl_context, server_hostname) as sock:
        try:
            sock.sendall(encode_request(op, input))
        except OSError as error:
            raise IoError(io_kind_of(error)) from error
        line = _SocketLines(sock, max_response_bytes).read_line()
    return _result(line)


async def acall(
    host: str,
    port: int,
    op: str,
    input: bytes,
    *,
    timeout: float | None = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> bytes:
    """Async ``call`` on anyio; ``timeout`` bounds the whole exchange."""
    try:
        with anyio.fail_after(timeout):
            if ssl_context is None:
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(host, port)
            else:
                stream = await anyio.connect_tcp(
                    host,
                    port,
                    ssl_context=ssl_context,
                    tls_hostname=server_hostname or host,
                    tls_standard_compatible=False,
                )
            async with stream:
                await stream.send(encode_request(op, input))
                line = await LineReader(stream, max_response_bytes).receive_line()
    except TimeoutError:
        raise IoError("TimedOut") from None
    except STREAM_ERRORS as error:
        raise IoError(io_kind_of(error)) from error
    return _result(line)


class Subscription:
    """A blocking NETBAT/2 subscriber: iterate it for SUB_EVENT and SUB_WATERMARK frames.

    Iteration stops on SUB_END (kept in ``end``) or when the server closes; SUB_ERR raises
    ``SubscriptionFault`` (the frame is kept in ``error``). With ``auto_ack`` each delivery
    is acknowledged as it is yielded; otherwise call ``ack``. Use it as a context manager.
    """

    def __init__(
        self,
        host: str,
        port: int,
        subscription_id: str,
        *,
        resume_cursor: bytes | None = None,
        window: int = 256,
        auto_ack: bool = True,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self.auto_ack = auto_ack
        self.limits = limits or Limits()
        self.end: SubEnd | None = None
        self.error: SubErr | None = None
        self._sock = _connect(host, port, connect_timeout, ssl_context, server_hostname)
        self._sock.settimeout(read_timeout)
        self._lines = _SocketLines(self._sock, self.limits.max_line_bytes)
        self._send(Subscribe(subscription_id, resume_cursor, window))

    def _send(self, frame: Subscribe | SubAck | SubCancel) -> None:
        try:
            self._sock.sendall(encode_stream_frame(frame))
        except OSError as error:
            raise IoError(io_kind_of(error)) from error

    def ack(self, frame: SubEvent | SubWatermark) -> None:
        """Acknowledge every delivery up to and including ``frame``."""
        if frame.cursor_after is None:
            raise ValueError("a delivery without cursor_after cannot be acknowledged")
        self._send(SubAck(self.subscription_id, frame.delivery_index, frame.cursor_after))

    def cancel(self, reason_code: str = "client.cancel") -> None:
        """Ask the server to end the stream; it answers SUB_END ``client_cancelled``."""
        self._send(SubCancel(self.subscription_id, reason_code))

    def __iter__(self) -> Iterator[SubEvent | SubWatermark]:
        while True:
            try:
                line = self._lines.read_line()
            except EmptyStream:
                return
            frame = decode_stream_line(line, self.limits)
            if isinstance(frame, SubEvent | SubWatermark):
                if frame.subscription_id != self.subscription_id:
                    raise MalformedStreamFrame("delivery for another subscription")
                if self.auto_ack and frame.cursor_after is not None:
                    self.ack(frame)
                yield frame
            elif isinstance(frame, SubEnd):
                self.end = frame
                return
            elif isinstance(frame, SubErr):
                self.error = frame
                raise SubscriptionFault(frame.code, frame.message.decode("utf-8", "replace"))
            else:
                raise MalformedStreamFrame("unexpected client frame from server")

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
