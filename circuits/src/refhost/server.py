"""The NETBAT/1 TCP front end of the reference host (netbat.md §1, §5), on anyio.

One request per connection (netbat's default): read one LF-terminated line of at most
``max_line_bytes``, decode it with ``netbat.frames``, dispatch in a worker thread, write one
response line, close. netbat has no anyio server yet, so this module is the stand-in; it uses
netbat's frame codec, limits and error types.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from netbat.errors import IoError, LineTooLong, NetbatError, OutputTooLarge
from netbat.frames import decode_request, encode_error, encode_ok
from netbat.limits import Limits
from refhost.dispatch import Dispatcher

READ_TIMEOUT_S = 10.0
"""refbat's I/O timeout: a peer that sends nothing cannot hold a worker forever."""


class NonLoopbackRefused(Exception):
    """Raised when asked to bind a non-loopback address without ``allow_remote``."""


def check_bind_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback bind address unless ``allow_remote`` is set."""
    if allow_remote:
        return
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NonLoopbackRefused(
            f"refhost refuses to bind non-loopback address {host}; pass --allow-remote "
            "(reference host only, not for production exposure)"
        )


def respond(dispatcher: Dispatcher, line: bytes, limits: Limits) -> bytes:
    """The response line for one request line (pure: no I/O)."""
    try:
        request = decode_request(line, limits)
        output = dispatcher.invoke(request.operation, request.input)
        if len(output) > limits.max_output_bytes:
            raise OutputTooLarge(limits.max_output_bytes)
    except NetbatError as exc:
        return encode_error(exc)
    return encode_ok(output)


async def _read_line(stream: anyio.abc.ByteStream, max_line: int) -> bytes | None:
    """One line with its LF (or the partial line at EOF); None on EOF before any byte."""
    buffered = BufferedByteReceiveStream(stream)
    try:
        return await buffered.receive_until(b"\n", max_line) + b"\n"
    except anyio.DelimiterNotFound:
        raise LineTooLong(max_line) from None
    except anyio.IncompleteRead:
        rest = bytes(buffered.buffer)
        return rest or None


async def handle_connection(
    stream: anyio.abc.SocketStream, dispatcher: Dispatcher, limits: Limits
) -> None:
    async with stream:
        try:
            with anyio.fail_after(READ_TIMEOUT_S):
                line = await _read_line(stream, limits.max_line_bytes)
        except TimeoutError:
            response = encode_error(IoError("TimedOut"))
        except LineTooLong as exc:
            response = encode_error(exc)
        else:
            if line is None:
                return
            response = await anyio.to_thread.run_sync(respond, dispatcher, line, limits)
        try:
            await stream.send(response)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return


async def serve(
    dispatcher: Dispatcher,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits | None = None,
    on_ready: Callable[[str, int], Awaitable[None] | None] | None = None,
) -> None:
    """Serve until cancelled; ``on_ready(addr, port)`` runs once the listener is bound."""
    active = limits or Limits()
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        sockname = listener.extra(anyio.abc.SocketAttribute.local_address)
        addr, bound_port = str(sockname[0]), int(sockname[1])
        if on_ready is not None:
            result = on_ready(addr, bound_port)
            if result is not None:
                await result

        async def handler(stream: anyio.abc.SocketStream) -> None:
            await handle_connection(stream, dispatcher, active)

        await listener.serve(handler)
