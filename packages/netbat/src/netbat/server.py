"""The NETBAT/1 request server: one task per connection, a dispatcher called in a thread.

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
import ssl
from dataclasses import dataclass

import anyio
from anyio.abc import ByteStream

from netbat._lines import LineReader
from netbat._listen import Listener, ListenerStats, linger, send_best_effort, send_line
from netbat.dispatch import Dispatcher, dispatch_request
from netbat.errors import EmptyStream, IoError, LineTooLong, NetbatError
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
        self._threads = anyio.CapacityLimiter(self.config.worker_threads)

    async def handle_connection(self, stream: ByteStream) -> None:
        """Serve the request rounds of one accepted (and, for TLS, handshaken) stream."""
        config = self.config
        reader = LineReader(stream, config.limits.max_line_bytes)
        for _ in range(config.max_requests_per_connection):
            try:
                with anyio.fail_after(config.read_timeout):
                    line = await reader.receive_line()
            except EmptyStream:
                return
            except TimeoutError:
                await send_best_effort(
                    stream, encode_error(IoError("WouldBlock")), config.write_timeout
                )
                await linger(stream)
                raise IoError("WouldBlock") from None
            except (LineTooLong, IoError) as error:
                self.stats.failed += 1
                await send_best_effort(stream, encode_error(error), config.write_timeout)
                if isinstance(error, IoError):
                    raise
                await linger(stream)
                return
            response, close = await self._respond(line)
            await send_line(stream, response, config.write_timeout)
            if close:
                await linger(stream)
                return

    async def _respond(self, line: bytes) -> tuple[bytes, bool]:
        limits = self.config.limits
        try:
            request = decode_request(line, limits)
            call = functools.partial(dispatch_request, self.dispatcher, request, limits)
            output = await anyio.to_thread.run_sync(call, limiter=self._threads)
        except NetbatError as error:
            self.stats.failed += 1
            return encode_error(error), isinstance(error, LineTooLong)
        self.stats.served += 1
        return encode_ok(output), False
