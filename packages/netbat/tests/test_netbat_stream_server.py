"""The NETBAT/2 subscription listener under real loopback TCP, with an in-memory source."""

import queue
import ssl
import threading
import time
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from netbat_loopback import exchange, make_cert, read_all, running

from netbat import (
    SourceEnd,
    SourceEvent,
    SourceItem,
    SourceWatermark,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    SubEvent,
    Subscribe,
    Subscription,
    SubscriptionFault,
    SubscriptionServer,
    SubscriptionServerConfig,
    SubWatermark,
    decode_stream_line,
    encode_stream_frame,
)

SUB = "orders.open.v1"
SCHEMA = "hostbat.event.orders.v1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Feed:
    def __init__(
        self, items: list[SourceItem], fail_after: int | None = None, pace: float = 0.0
    ) -> None:
        self.pace = pace
        self.items: queue.Queue[SourceItem] = queue.Queue()
        for item in items:
            self.items.put(item)
        self.fail_after = fail_after
        self.polled = 0
        self.closed = threading.Event()

    def poll(self, timeout: float) -> SourceItem | None:
        if self.fail_after is not None and self.polled >= self.fail_after:
            raise RuntimeError("store went away")
        if self.pace:
            time.sleep(min(self.pace, timeout))
        try:
            item = self.items.get(timeout=timeout)
        except queue.Empty:
            return None
        self.polled += 1
        return item

    def check_ack_cursor(self, cursor: bytes) -> None:
        if cursor.startswith(b"\xdd"):
            raise SubscriptionFault.cursor_invalid("cursor magic mismatch")

    def close(self) -> None:
        self.closed.set()


class Source:
    def __init__(
        self, items: list[SourceItem], fail_after: int | None = None, pace: float = 0.0
    ) -> None:
        self.items = items
        self.fail_after = fail_after
        self.pace = pace
        self.feeds: list[Feed] = []

    def open(self, subscription_id: str, resume_cursor: bytes | None, client_window: int) -> Feed:
        if subscription_id != SUB:
            raise SubscriptionFault.unknown_subscription(subscription_id)
        if resume_cursor is not None and resume_cursor.startswith(b"\xee"):
            raise SubscriptionFault.cursor_mismatch("cursor bound to another route")
        feed = Feed(self.items, self.fail_after, self.pace)
        self.feeds.append(feed)
        return feed


def events(n: int) -> list[SourceItem]:
    return [SourceEvent(bytes([i]), bytes([i + 1]), SCHEMA, b"event-%d" % i) for i in range(n)]


def line(frame: Subscribe | SubAck | SubCancel) -> bytes:
    return encode_stream_frame(frame)


async def read_frames(stream: anyio.abc.ByteStream, count: int) -> list[bytes]:
    buffered = BufferedByteReceiveStream(stream)
    return [await buffered.receive_until(b"\n", 1 << 17) + b"\n" for _ in range(count)]


@pytest.mark.anyio
async def test_subscribe_receive_ack_cancel_with_the_client() -> None:
    source = Source([*events(3), SourceWatermark(b"\x09")])
    async with running(SubscriptionServer(source)) as port:

        def consume() -> tuple[list[SubEvent | SubWatermark], SubEnd | None]:
            got: list[SubEvent | SubWatermark] = []
            with Subscription("127.0.0.1", port, SUB, window=8, read_timeout=5) as sub:
                for frame in sub:
                    got.append(frame)
                    if len(got) == 4:
                        sub.cancel()
                return got, sub.end

        got, end = await anyio.to_thread.run_sync(consume)
    assert [f.delivery_index for f in got] == [1, 2, 3, 4]
    assert got[0] == SubEvent(SUB, 1, b"\x00", b"\x01", SCHEMA, b"event-0")
    assert got[3] == SubWatermark(SUB, 4, b"\x09")
    assert end == SubEnd(SUB, b"\x09", "client_cancelled")
    assert source.feeds[0].closed.wait(2)


@pytest.mark.anyio
async def test_source_end_finishes_the_iteration() -> None:
    source = Source([*events(2), SourceEnd("stream.complete")])
    async with running(SubscriptionServer(source)) as port:

        def consume() -> tuple[int, SubEnd | None]:
            with Subscription("127.0.0.1", port, SUB, read_timeout=5) as sub:
                return sum(1 for _ in sub), sub.end

        count, end = await anyio.to_thread.run_sync(consume)
    assert count == 2
    assert end == SubEnd(SUB, b"\x02", "stream.complete")


@pytest.mark.anyio
async def test_open_failures_write_one_sub_err() -> None:
    async with running(SubscriptionServer(Source([]))) as port:
        reply = await exchange(port, line(Subscribe("other.v1", None, 4)), half_close=False)
        assert decode_stream_line(reply) == SubErr(
            "other.v1", "unknown_subscription", None, None, b"other.v1"
        )
        reply = await exchange(port, line(Subscribe(SUB, b"\xee", 4)), half_close=False)
        assert decode_stream_line(reply) == SubErr(
            SUB, "cursor_mismatch", None, None, b"cursor bound to another route"
        )

        def fail() -> None:
            with Subscription("127.0.0.1", port, "nope.v1", read_timeout=5) as sub:
                list(sub)

        with pytest.raises(SubscriptionFault) as fault:
            await anyio.to_thread.run_sync(fail)
        assert fault.value.code == "unknown_subscription"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "first",
    [
        b"GARBAGE\n",
        b"NETBAT/1 CALL ping 00\n",
        b"NETBAT/2 SUB_ACK orders.open.v1 1 0a\n",
        b"NETBAT/2 SUBSCRIBE orders.open.v1 - 0\n",
        b"NETBAT/2 SUBSCRIBE " + b"a" * 70000 + b"\n",
        b"",
    ],
)
async def test_a_bad_first_line_gets_nothing(first: bytes) -> None:
    server = SubscriptionServer(Source(events(1)))
    async with running(server) as port:
        assert await exchange(port, first) == b""
    assert not server.source.feeds  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_subscribe_must_arrive_within_250_ms() -> None:
    server = SubscriptionServer(Source(events(1)))
    async with running(server) as port, await anyio.connect_tcp("127.0.0.1", port) as late:
        started = time.monotonic()
        with anyio.fail_after(2):
            assert await read_all(late) == b""
        assert 0.2 < time.monotonic() - started < 1.0


@pytest.mark.anyio
async def test_full_window_ends_with_slow_consumer() -> None:
    async with running(SubscriptionServer(Source(events(5)))) as port:
        reply = await exchange(port, line(Subscribe(SUB, None, 2)), half_close=False)
    frames = [decode_stream_line(raw + b"\n") for raw in reply.splitlines()]
    assert [type(f) for f in frames] == [SubEvent, SubEvent, SubErr]
    assert frames[2] == SubErr(SUB, "slow_consumer", b"\x02", None, b"delivery window full")


@pytest.mark.anyio
async def test_server_window_cap_applies() -> None:
    config = SubscriptionServerConfig(server_max_window=1)
    async with running(SubscriptionServer(Source(events(3)), config)) as port:
        reply = await exchange(port, line(Subscribe(SUB, None, 100)), half_close=False)
    assert reply.count(b"SUB_EVENT") == 1
    assert b"slow_consumer" in reply


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("control", "code", "message"),
    [
        (
            b"NETBAT/2 SUB_ACK orders.open.v1 5 01\n",
            "malformed_stream_frame",
            b"ack delivery index out of range",
        ),
        (
            b"NETBAT/2 SUB_ACK orders.open.v1 1 02\n",
            "malformed_stream_frame",
            b"ack cursor does not match sent cursor",
        ),
        (b"NETBAT/2 SUB_ACK orders.open.v1 1 dd\n", "cursor_invalid", b"cursor magic mismatch"),
        (
            b"NETBAT/2 SUB_ACK other.v1 1 01\n",
            "malformed_stream_frame",
            b"malformed stream control frame",
        ),
        (
            b"NETBAT/2 SUBSCRIBE orders.open.v1 - 1\n",
            "malformed_stream_frame",
            b"malformed stream control frame",
        ),
        (b"hello\n", "malformed_stream_frame", b"malformed stream control frame"),
        (
            b"NETBAT/2 SUB_ACK " + b"x" * 70000 + b"\n",
            "malformed_stream_frame",
            b"malformed stream control frame",
        ),
    ],
)
async def test_bad_control_frames_end_the_session(
    control: bytes, code: str, message: bytes
) -> None:
    async with running(SubscriptionServer(Source(events(1)))) as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(line(Subscribe(SUB, None, 8)))
            buffered = BufferedByteReceiveStream(stream)
            with anyio.fail_after(3):
                first = await buffered.receive_until(b"\n", 1 << 17)
                assert decode_stream_line(first) == SubEvent(
                    SUB, 1, b"\x00", b"\x01", SCHEMA, b"event-0"
                )
                await stream.send(control)
                terminal = await buffered.receive_until(b"\n", 1 << 17)
        assert decode_stream_line(terminal) == SubErr(SUB, code, b"\x01", None, message)


@pytest.mark.anyio
async def test_acks_keep_a_small_window_flowing() -> None:
    # The server never pauses for a full window; a paced source and prompt ACKs keep it open.
    source = Source(events(6), pace=0.04)
    async with running(SubscriptionServer(source)) as port:

        def consume() -> int:
            with Subscription("127.0.0.1", port, SUB, window=1, read_timeout=5) as sub:
                for frame in sub:
                    if frame.delivery_index == 6:
                        sub.cancel()
                return 6 if sub.end is not None else 0

        assert await anyio.to_thread.run_sync(consume) == 6


@pytest.mark.anyio
async def test_poll_failure_ends_with_runtime_error() -> None:
    async with running(SubscriptionServer(Source(events(3), fail_after=1))) as port:
        reply = await exchange(port, line(Subscribe(SUB, None, 8)), half_close=False)
    frames = [decode_stream_line(raw + b"\n") for raw in reply.splitlines()]
    assert frames[-1] == SubErr(
        SUB, "internal_error", b"\x01", None, b"subscription runtime poll failed"
    )


@pytest.mark.anyio
async def test_disconnect_closes_the_feed_and_the_server_survives() -> None:
    source = Source(events(2))
    server = SubscriptionServer(source)
    async with running(server) as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(line(Subscribe(SUB, None, 8)))
            await read_frames(stream, 2)
        assert await anyio.to_thread.run_sync(source.feeds[0].closed.wait, 2.0)
        reply = await exchange(port, line(Subscribe("x.v1", None, 1)), half_close=False)
        assert b"unknown_subscription" in reply
    assert server.stats.worker_panics == 0


@pytest.mark.anyio
async def test_tls_subscription(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    source = Source(events(3), pace=0.02)
    async with running(SubscriptionServer(source, ssl_context=server_ctx)) as port:

        def consume() -> tuple[list[int], SubEnd | None]:
            seen: list[int] = []
            with Subscription(
                "127.0.0.1", port, SUB, window=1, read_timeout=5, ssl_context=client_ctx
            ) as sub:
                for frame in sub:
                    seen.append(frame.delivery_index)
                    if frame.delivery_index == 3:
                        sub.cancel()
                return seen, sub.end

        seen, end = await anyio.to_thread.run_sync(consume)
    assert seen == [1, 2, 3]
    assert end == SubEnd(SUB, b"\x03", "client_cancelled")
