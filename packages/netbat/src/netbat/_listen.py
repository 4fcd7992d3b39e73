"""What the request and subscription listeners share: accept loop, permits, TLS, sending."""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
from anyio.abc import ByteStream, SocketStream, TaskStatus
from anyio.streams.tls import TLSStream

from netbat._lines import STREAM_ERRORS
from netbat.errors import IoError, io_kind_of

_HANDSHAKE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *STREAM_ERRORS)


@dataclass(slots=True)
class ListenerStats:
    """Counters of one listener, updated live (read them from the event loop's thread)."""

    accepted_connections: int = 0
    active_connections: int = 0
    peak_connections: int = 0
    served: int = 0
    failed: int = 0
    connection_io_failures: int = 0
    tls_handshake_failures: int = 0
    worker_panics: int = 0

    def snapshot(self) -> ListenerStats:
        """Return a copy of the counters."""
        return dataclasses.replace(self)


async def send_line(stream: ByteStream, data: bytes, timeout: float | None) -> None:
    """Write one frame within ``timeout``; raise ``IoError`` when the peer cannot take it."""
    try:
        with anyio.fail_after(timeout):
            await stream.send(data)
    except TimeoutError:
        raise IoError("TimedOut") from None
    except STREAM_ERRORS as error:
        raise IoError(io_kind_of(error)) from error


async def send_best_effort(stream: ByteStream, data: bytes, timeout: float | None) -> None:
    """Write one frame, ignoring a peer that already left."""
    with contextlib.suppress(IoError):
        await send_line(stream, data, 1.0 if timeout is None else timeout)


async def linger(stream: ByteStream, *, seconds: float = 0.25, max_bytes: int = 1 << 20) -> None:
    """Discard what the peer is still sending, briefly, so closing does not reset the socket.

    Closing with unread input makes the kernel send RST, which can destroy the ERR frame we
    just wrote before the peer reads it.
    """
    drained = 0
    with contextlib.suppress(NotImplementedError, *STREAM_ERRORS):
        await stream.send_eof()  # our last frame is followed by FIN, not lost to a reset
    with anyio.move_on_after(seconds):
        while drained < max_bytes:
            try:
                drained += len(await stream.receive())
            except STREAM_ERRORS:
                return


async def serve_tcp(
    host: str,
    port: int,
    handler: Callable[[ByteStream], Awaitable[None]],
    *,
    stats: ListenerStats,
    max_connections: int | None,
    ssl_context: ssl.SSLContext | None,
    handshake_timeout: float | None,
    task_status: TaskStatus[int],
    lifetime_connections: int | None = None,
) -> None:
    """Accept connections until cancelled; each runs ``handler`` in its own task.

    A permit is taken before each accept, so at most ``max_connections`` handlers run and
    further clients wait in the kernel backlog. Handler failures are contained and counted.
    With ``lifetime_connections`` the listener stops accepting after that many connections
    and returns once they are served (the reference's ``ConnectionLimit::Lifetime``).
    """
    permits = anyio.Semaphore(max_connections) if max_connections is not None else None
    budget = _Budget(lifetime_connections) if lifetime_connections is not None else None
    multi = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with multi, anyio.create_task_group() as tg:
        bound = multi.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as accepting:
            for listener in multi.listeners:
                accepting.start_soon(
                    _accept_loop,
                    listener,
                    tg,
                    permits,
                    handler,
                    stats,
                    ssl_context,
                    handshake_timeout,
                    budget,
                    accepting.cancel_scope,
                )
            task_status.started(bound)
        await multi.aclose()  # a spent lifetime budget: refuse new peers, finish the accepted


@dataclass(slots=True)
class _Budget:
    left: int


async def _accept_loop(
    listener: anyio.abc.Listener[SocketStream],
    tg: anyio.abc.TaskGroup,
    permits: anyio.Semaphore | None,
    handler: Callable[[ByteStream], Awaitable[None]],
    stats: ListenerStats,
    ssl_context: ssl.SSLContext | None,
    handshake_timeout: float | None,
    budget: _Budget | None,
    accepting: anyio.CancelScope,
) -> None:
    assert isinstance(listener, anyio.abc.SocketListener)
    while True:
        if permits is not None:
            try:  # a free permit needs no checkpoint: accept() below is one
                permits.acquire_nowait()
            except anyio.WouldBlock:
                await permits.acquire()
        try:
            stream = await listener.accept()
        except STREAM_ERRORS:
            if permits is not None:
                permits.release()
            await anyio.sleep(0.01)
            continue
        stats.accepted_connections += 1
        if budget is not None:
            budget.left -= 1
            if budget.left <= 0:
                accepting.cancel()  # every accept loop stops; accepted connections finish
            if budget.left < 0:  # a second listener raced past the budget
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
                if permits is not None:
                    permits.release()
                return
        tg.start_soon(_connection, stream, permits, handler, stats, ssl_context, handshake_timeout)


async def _connection(
    raw: SocketStream,
    permits: anyio.Semaphore | None,
    handler: Callable[[ByteStream], Awaitable[None]],
    stats: ListenerStats,
    ssl_context: ssl.SSLContext | None,
    handshake_timeout: float | None,
) -> None:
    stats.active_connections += 1
    stats.peak_connections = max(stats.peak_connections, stats.active_connections)
    stream: ByteStream = raw
    try:
        if ssl_context is not None:
            try:
                with anyio.fail_after(handshake_timeout):
                    stream = await TLSStream.wrap(
                        raw, server_side=True, ssl_context=ssl_context, standard_compatible=False
                    )
            except _HANDSHAKE_ERRORS:
                stats.tls_handshake_failures += 1
                return
        try:
            await handler(stream)
        except IoError:
            stats.connection_io_failures += 1
        except Exception:  # contained per connection, like the reference's catch_unwind
            stats.worker_panics += 1
    finally:
        stats.active_connections -= 1
        try:
            if stream is raw:
                # A plain socket is closed before aclose's one checkpoint, so even a cancelled
                # task closes it: no shielded, bounded scope needed (TLS has a goodbye to send).
                await raw.aclose()
            else:
                with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
                    await stream.aclose()
        finally:
            if permits is not None:
                permits.release()


class _ListenerConfig(Protocol):
    @property
    def max_connections(self) -> int | None: ...

    @property
    def tls_handshake_timeout(self) -> float | None: ...

    @property
    def lifetime_connections(self) -> int | None: ...


class Listener:
    """What the request and subscription servers share: listening over TCP or TLS with a
    connection limit and stats. Subclasses serve each accepted stream."""

    config: _ListenerConfig
    ssl_context: ssl.SSLContext | None
    stats: ListenerStats

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled (or until a lifetime limit is spent and its
        connections are served); ``task_status.started`` gets the bound port."""
        await serve_tcp(
            host,
            port,
            self.handle_connection,
            stats=self.stats,
            max_connections=self.config.max_connections,
            ssl_context=self.ssl_context,
            handshake_timeout=self.config.tls_handshake_timeout,
            task_status=task_status,
            lifetime_connections=self.config.lifetime_connections,
        )

    async def handle_connection(self, stream: ByteStream) -> None:
        raise NotImplementedError
