"""The NETBAT/1 request server: one task per connection, a dispatcher called in a thread
(or, for the ops an ``InlineDispatcher`` names, on the event loop).

Per connection (netbat.md §5): up to ``max_requests_per_connection`` rounds of read one line,
decode, dispatch, write one response line; then close. EOF before any byte closes silently;
EOF mid-line counts the partial line as a frame. A read timeout writes
``ERR io "io error: WouldBlock"`` and closes; ``LineTooLong`` writes its ERR and closes (the
rest of the line cannot be resynchronised); every other error writes its ERR and the
connection serves its remaining rounds. A dispatcher exception is contained (``dispatch.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import ByteStream

from netbat._lines import STREAM_ERRORS, LineReader
from netbat._listen import Listener, ListenerStats, linger, send_best_effort
from netbat._workers import WorkerPool
from netbat.dispatch import Dispatcher, dispatch_request
from netbat.errors import EmptyStream, IoError, LineTooLong, NetbatError, io_kind_of
from netbat.frames import decode_request, encode_error, encode_ok
from netbat.limits import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUESTS_PER_CONNECTION, Limits

__all__ = ("RequestServer", "ServerConfig")

DEFAULT_WORKER_THREADS = 40
DEFAULT_TLS_HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a ``RequestServer`` bounds its clients.

    ``max_connections`` caps concurrent connections (None: unlimited); ``lifetime_connections``
    caps the total, after which ``serve`` stops accepting and returns once those connections
    are served (None: no cap); ``read_timeout`` bounds
    the wait for one whole request line and ``write_timeout`` one response write, in seconds
    (None: wait forever, the reference default; set both when facing untrusted peers);
    ``worker_threads`` bounds concurrent dispatcher calls.
    """

    _: dataclasses.KW_ONLY
    limits: Limits = dataclasses.field(default_factory=Limits)
    max_requests_per_connection: int = DEFAULT_MAX_REQUESTS_PER_CONNECTION
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    lifetime_connections: int | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None
    tls_handshake_timeout: float | None = DEFAULT_TLS_HANDSHAKE_TIMEOUT
    worker_threads: int = DEFAULT_WORKER_THREADS

    def __post_init__(self) -> None:
        if self.max_requests_per_connection < 1:
            raise ValueError("max_requests_per_connection must be at least 1")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1 (or None)")
        if self.lifetime_connections is not None and self.lifetime_connections < 1:
            raise ValueError("lifetime_connections must be at least 1 (or None)")
        if self.worker_threads < 1:
            raise ValueError("worker_threads must be at least 1")


class RequestServer(Listener):
    """Serves NETBAT/1 calls to a ``Dispatcher`` over TCP (TLS when given a context)."""

    config: ServerConfig

    def __init__(
        self,
        dispatcher: Dispatcher,
        config: ServerConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.config = config or ServerConfig()
        self.ssl_context = ssl_context
        self.stats = ListenerStats()
        self._workers = WorkerPool(self.config.worker_threads)
        inline = getattr(dispatcher, "inline", None)
        self._inline: Callable[[str], bool] | None = inline if callable(inline) else None

    async def handle_connection(self, stream: ByteStream) -> None:
        """Serve the request rounds of one accepted (and, for TLS, handshaken) stream."""
        reader = LineReader(stream, self.config.limits.max_line_bytes)
        for _ in range(self.config.max_requests_per_connection):
            if not await self._round(stream, reader):
                return

    async def _round(self, stream: ByteStream, reader: LineReader) -> bool:
        """Read one line, answer it; return whether the connection serves another round.

        One cancel scope bounds the whole round, its deadline following the phase: the read
        timeout while the line arrives, none while the dispatcher runs, the write timeout
        while the answer goes out (one scope instead of one per I/O call: entering a scope
        costs about as much as a small op).
        """
        config = self.config
        read_timeout, write_timeout = config.read_timeout, config.write_timeout
        writing = False
        close = False
        failure: LineTooLong | IoError | None = None
        with anyio.CancelScope(deadline=_deadline(read_timeout)) as scope:
            try:
                line = await reader.receive_line()
            except EmptyStream:
                return False
            except (LineTooLong, IoError) as error:
                failure = error
            else:
                if not scope.cancel_called:  # else the line came as the read deadline passed
                    response, close = await self._respond(line, scope)
                    writing = True
                    scope.deadline = _deadline(write_timeout)
                    try:
                        await stream.send(response)
                    except STREAM_ERRORS as error:
                        raise IoError(io_kind_of(error)) from error
        if failure is not None:
            self.stats.failed += 1
            await send_best_effort(stream, encode_error(failure), write_timeout)
            if isinstance(failure, IoError):
                raise failure
            await linger(stream)
            return False
        if scope.cancel_called and not writing:  # the read deadline passed
            await send_best_effort(stream, encode_error(IoError("WouldBlock")), write_timeout)
            await linger(stream)
            raise IoError("WouldBlock")
        if scope.cancelled_caught:  # the write deadline passed
            raise IoError("TimedOut")
        if close:
            await linger(stream)
            return False
        return True

    async def _respond(self, line: bytes, scope: anyio.CancelScope) -> tuple[bytes, bool]:
        """The response line, and whether to close after it; ``scope`` is the round's, whose
        read deadline is lifted while a worker thread runs the dispatcher."""
        limits = self.config.limits
        try:
            request = decode_request(line, limits)
            if self._inline is not None and self._inline(request.operation):
                output = dispatch_request(self.dispatcher, request, limits)
            else:
                scope.deadline = math.inf
                call = functools.partial(dispatch_request, self.dispatcher, request, limits)
                output = await self._workers.run(call)
        except NetbatError as error:
            self.stats.failed += 1
            return encode_error(error), isinstance(error, LineTooLong)
        self.stats.served += 1
        return encode_ok(output), False


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else anyio.current_time() + timeout
