"""The NETBAT/2 subscription listener: drives ``session.Session`` over TCP (netbat.md §2, §5).

Per connection: the first line must be a valid SUBSCRIBE within ``first_line_timeout``
(default 250 ms), else the server writes nothing and closes. A failed open writes one SUB_ERR
and closes. Then two tasks share the connection: a control reader forwards client lines over a
bounded lane, and the delivery loop drains that lane, polls the feed (in a worker thread) and
writes frames until the session's terminal frame, a write failure, or the peer leaving.
"""

from __future__ import annotations

import dataclasses
import ssl
from dataclasses import dataclass

import anyio
from anyio.abc import ByteStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from netbat._lines import LineReader
from netbat._listen import Listener, ListenerStats, send_line
from netbat.dispatch import SubscriptionFeed, SubscriptionSource
from netbat.errors import EmptyStream, IoError, NetbatError, SubscriptionFault
from netbat.limits import DEFAULT_MAX_CONNECTIONS, Limits
from netbat.session import DEFAULT_SERVER_MAX_WINDOW, Session, open_failure_frame
from netbat.stream_frames import (
    StreamFrame,
    SubAck,
    Subscribe,
    decode_stream_line,
    encode_stream_frame,
)

__all__ = ("SubscriptionServer", "SubscriptionServerConfig")

_Control = StreamFrame | NetbatError | None  # None: the peer disconnected


@dataclass(frozen=True, slots=True)
class SubscriptionServerConfig:
    """How a ``SubscriptionServer`` bounds its subscribers.

    ``first_line_timeout`` is the time a client has to send SUBSCRIBE; ``write_timeout``
    bounds each frame write; ``poll_interval`` is the feed poll timeout; ``control_lane`` is
    the number of client frames buffered ahead of the delivery loop. ``max_connections`` and
    ``lifetime_connections`` bound concurrent and total connections as for ``ServerConfig``.
    """

    _: dataclasses.KW_ONLY
    limits: Limits = dataclasses.field(default_factory=Limits)
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    lifetime_connections: int | None = None
    first_line_timeout: float | None = 0.25
    write_timeout: float | None = 5.0
    poll_interval: float = 0.05
    server_max_window: int = DEFAULT_SERVER_MAX_WINDOW
    control_lane: int = 16
    tls_handshake_timeout: float | None = 10.0
    worker_threads: int = 40

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1 (or None)")
        if self.lifetime_connections is not None and self.lifetime_connections < 1:
            raise ValueError("lifetime_connections must be at least 1 (or None)")
        if self.server_max_window < 1 or self.control_lane < 1 or self.worker_threads < 1:
            raise ValueError("server_max_window, control_lane and worker_threads must be >= 1")


class SubscriptionServer(Listener):
    """Serves NETBAT/2 subscriptions from a ``SubscriptionSource`` over TCP (or TLS)."""

    config: SubscriptionServerConfig

    def __init__(
        self,
        source: SubscriptionSource,
        config: SubscriptionServerConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.source = source
        self.config = config or SubscriptionServerConfig()
        self.ssl_context = ssl_context
        self.stats = ListenerStats()
        self._threads = anyio.CapacityLimiter(self.config.worker_threads)

    async def handle_connection(self, stream: ByteStream) -> None:
        """Serve one subscription over an accepted (and, for TLS, handshaken) stream."""
        config = self.config
        reader = LineReader(stream, config.limits.max_line_bytes)
        try:
            with anyio.fail_after(config.first_line_timeout):
                line = await reader.receive_line()
            subscribe = decode_stream_line(line, config.limits)
        except (TimeoutError, NetbatError):
            self.stats.failed += 1
            return
        if not isinstance(subscribe, Subscribe):
            self.stats.failed += 1
            return
        try:
            feed = await anyio.to_thread.run_sync(
                self.source.open,
                subscribe.subscription_id,
                subscribe.resume_cursor,
                subscribe.client_window,
                limiter=self._threads,
            )
        except Exception as error:
            self.stats.failed += 1
            fault = (
                error
                if isinstance(error, SubscriptionFault)
                else SubscriptionFault.cursor_invalid("subscription open failed")
            )
            frame = open_failure_frame(subscribe.subscription_id, fault)
            await send_line(stream, encode_stream_frame(frame), config.write_timeout)
            return
        try:
            self.stats.served += 1
            session = Session(
                subscribe.subscription_id,
                subscribe.client_window,
                server_max_window=config.server_max_window,
                check_ack_cursor=feed.check_ack_cursor,
            )
            lane_in, lane_out = anyio.create_memory_object_stream[_Control](config.control_lane)
            async with lane_out, anyio.create_task_group() as tg:
                tg.start_soon(self._read_control, reader, lane_in)
                try:
                    await self._deliver(stream, session, feed, lane_out)
                except IoError:
                    # The peer stopped reading or went away: end silently, like a disconnect.
                    self.stats.connection_io_failures += 1
                    session.disconnect()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(feed.close, limiter=self._threads)

    async def _read_control(
        self, reader: LineReader, lane: MemoryObjectSendStream[_Control]
    ) -> None:
        async with lane:
            while True:
                try:
                    line = await reader.receive_line()
                except (EmptyStream, IoError):
                    await lane.send(None)
                    return
                except NetbatError as error:
                    await lane.send(error)
                    return
                try:
                    frame: StreamFrame | NetbatError = decode_stream_line(line, self.config.limits)
                except NetbatError as error:
                    frame = error
                await lane.send(frame)
                if not isinstance(frame, SubAck):
                    return  # anything but an ACK ends the session

    async def _deliver(
        self,
        stream: ByteStream,
        session: Session,
        feed: SubscriptionFeed,
        lane: MemoryObjectReceiveStream[_Control],
    ) -> None:
        config = self.config

        async def write(frame: StreamFrame) -> None:
            await send_line(stream, encode_stream_frame(frame), config.write_timeout)

        async def drain_control() -> bool:
            """Apply pending client frames; return False once the session is over."""
            while True:
                try:
                    control = lane.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    return True
                if control is None:
                    session.disconnect()
                    return False
                terminal = session.control(control)
                if terminal is not None:
                    await write(terminal)
                    return False

        while True:
            if not await drain_control():
                return
            try:
                item = await anyio.to_thread.run_sync(
                    feed.poll, config.poll_interval, limiter=self._threads
                )
            except SubscriptionFault as fault:
                await write(session.runtime_failure(fault.code))
                return
            except Exception:
                await write(session.runtime_failure("internal_error"))
                return
            if item is None:
                continue
            if not await drain_control():  # ACKs that arrived during the poll count first
                return
            await write(session.deliver(item))
            if session.ended:
                return
