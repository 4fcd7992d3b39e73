"""The NETBAT/1 TCP front end of the reference host: netbat's own ``RequestServer``.

One request per connection (netbat's default), refbat's 10 s read and write timeouts, the
dispatcher called in a worker thread. This module adds only what refbat added around
netbat's listener: the loopback-only bind rule and a ready callback. ``respond`` is the pure
line-in / line-out path (decode, dispatch, encode) used by the golden tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import anyio

from netbat import (
    Dispatcher,
    Limits,
    NetbatError,
    RequestServer,
    ServerConfig,
    decode_request,
    dispatch_request,
    encode_error,
    encode_ok,
)

READ_TIMEOUT_S = 10.0
"""refbat's I/O timeout: a peer that sends nothing cannot hold a connection forever."""
WRITE_TIMEOUT_S = 10.0


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
    """The response line for one request line (pure: no I/O), as the server computes it."""
    try:
        request = decode_request(line, limits)
        output = dispatch_request(dispatcher, request, limits)
    except NetbatError as exc:
        return encode_error(exc)
    return encode_ok(output)


def server_config(read_timeout: float | None = READ_TIMEOUT_S) -> ServerConfig:
    """netbat's defaults with refbat's timeouts (``read_timeout`` covers one whole line)."""
    return ServerConfig(read_timeout=read_timeout, write_timeout=WRITE_TIMEOUT_S)


async def serve(
    dispatcher: Dispatcher,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: ServerConfig | None = None,
    on_ready: Callable[[str, int], Awaitable[None] | None] | None = None,
) -> None:
    """Serve until cancelled; ``on_ready(addr, port)`` runs once the listener is bound."""
    server = RequestServer(dispatcher, config or server_config())
    async with anyio.create_task_group() as group:
        bound: int = await group.start(server.serve, host, port)
        if on_ready is not None:
            result = on_ready(host, bound)
            if result is not None:
                await result
