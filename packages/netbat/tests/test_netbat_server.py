"""The NETBAT/1 server under real loopback TCP: limits, storms, slow peers, containment."""

import random
import ssl
import threading
import time
from pathlib import Path

import anyio
import pytest
from netbat_loopback import exchange, make_cert, read_all, running

from netbat import (
    EmptyStream,
    HandlerFailed,
    IoError,
    Limits,
    LineTooLong,
    MalformedRequest,
    NetbatError,
    OutputTooLarge,
    RequestServer,
    ServerConfig,
    UnknownOperation,
    acall,
    call,
    encode_error,
    encode_ok,
    encode_request,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Echo:
    """A dispatcher: ``ping`` echoes, ``boom`` raises, ``bad`` is invalid input."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def call(self, op: str, input: bytes) -> bytes:
        with self.lock:
            self.calls += 1
        if op == "ping":
            return input
        if op == "boom":
            raise ZeroDivisionError("secret detail")
        if op == "bad":
            raise HandlerFailed(op, "invalid_input", "bad payload")
        if op == "big":
            return b"x" * 40000
        if op == "sleep":
            time.sleep(float(input.decode()))
            return b"slept"
        raise UnknownOperation(op)


def err(error: NetbatError) -> bytes:
    return encode_error(error)


# -- one call per connection ------------------------------------------------------------------


@pytest.mark.anyio
async def test_sync_and_async_clients() -> None:
    async with running(RequestServer(Echo())) as port:
        assert await anyio.to_thread.run_sync(lambda: call("127.0.0.1", port, "ping", b"hi")) == (
            b"hi"
        )
        assert await acall("127.0.0.1", port, "ping", b"") == b""
        with pytest.raises(UnknownOperation) as unknown:
            await acall("127.0.0.1", port, "missing", b"")
        assert str(unknown.value) == "runtime error: unknown operation `missing`"
        with pytest.raises(HandlerFailed) as bad:
            await anyio.to_thread.run_sync(lambda: call("127.0.0.1", port, "bad", b""))
        assert "invalid_input" in str(bad.value)
        assert "bad payload" in str(bad.value)


@pytest.mark.anyio
async def test_default_serves_one_request_per_connection() -> None:
    async with running(RequestServer(Echo())) as port:
        two = encode_request("ping", b"a") + encode_request("ping", b"b")
        assert await exchange(port, two) == encode_ok(b"a")


@pytest.mark.anyio
async def test_configured_rounds_and_errors_keep_the_connection() -> None:
    server = RequestServer(Echo(), ServerConfig(max_requests_per_connection=3))
    async with running(server) as port:
        lines = encode_request("ping", b"a") + b"garbage\n" + encode_request("ping", b"c")
        assert await exchange(port, lines + encode_request("ping", b"d")) == (
            encode_ok(b"a")
            + err(MalformedRequest("missing NETBAT/1 protocol prefix"))
            + encode_ok(b"c")
        )


@pytest.mark.anyio
async def test_eof_rules() -> None:
    server = RequestServer(Echo(), ServerConfig(max_requests_per_connection=2))
    async with running(server) as port:
        assert await exchange(port, b"") == b""  # EOF before any byte: silent close
        # EOF mid-line: the partial line is a frame.
        assert await exchange(port, b"NETBAT/1 CALL ping 6869") == encode_ok(b"hi")
        assert await exchange(port, b"NETBAT/1 CALL ping 6869\r") == encode_ok(b"hi")
        assert await exchange(port, b"NETBAT/1 CA") == err(MalformedRequest("missing operation"))
    assert server.stats.worker_panics == 0


@pytest.mark.anyio
async def test_handler_exception_is_contained() -> None:
    echo = Echo()
    async with running(RequestServer(echo)) as port:
        reply = await exchange(port, encode_request("boom", b""))
        expected = HandlerFailed("boom", "failed", "unexpected ZeroDivisionError")
        assert reply == err(expected)
        assert b"secret" not in bytes.fromhex(reply.split()[2].decode())
        assert await acall("127.0.0.1", port, "ping", b"ok") == b"ok"


class Exits:
    def call(self, op: str, input: bytes) -> bytes:
        if op == "exit":
            raise SystemExit(3)
        if op == "interrupt":
            raise KeyboardInterrupt
        return input


@pytest.mark.anyio
async def test_a_handler_raising_system_exit_does_not_stop_the_server() -> None:
    async with running(RequestServer(Exits())) as port:
        for op, name in (("exit", "SystemExit"), ("interrupt", "KeyboardInterrupt")):
            reply = await exchange(port, encode_request(op, b""))
            assert reply == err(HandlerFailed(op, "failed", f"unexpected {name}"))
            assert await acall("127.0.0.1", port, "ping", b"ok") == b"ok"


@pytest.mark.anyio
async def test_output_limit_applies_after_the_handler_ran() -> None:
    echo = Echo()
    async with running(RequestServer(echo)) as port:
        assert await exchange(port, encode_request("big", b"")) == err(OutputTooLarge(32768))
    assert echo.calls == 1


@pytest.mark.anyio
async def test_line_too_long_answers_then_closes() -> None:
    server = RequestServer(Echo(), ServerConfig(max_requests_per_connection=5))
    async with running(server) as port:
        huge = b"NETBAT/1 CALL ping " + b"00" * 40000 + b"\n" + encode_request("ping", b"x")
        assert await exchange(port, huge) == err(LineTooLong(65536))
        # Exactly 64 KiB including the LF is fine; one more byte is not.
        body = b"NETBAT/1 CALL ping "
        hex_input = b"ab" * ((65536 - len(body) - 1) // 2)
        fits = body + hex_input + b"\n"
        assert len(fits) == 65536
        assert await exchange(port, fits) == encode_ok(bytes.fromhex(hex_input.decode()))
        over = body + b"a" * (65536 - len(body) - 1) + b"0\n"
        assert await exchange(port, over) == err(LineTooLong(65536))
        # No LF at all, still streaming: stop at the cap.
        assert await exchange(port, b"N" * 200000, half_close=False) == err(LineTooLong(65536))


@pytest.mark.anyio
async def test_small_configured_line_limit() -> None:
    server = RequestServer(Echo(), ServerConfig(limits=Limits(max_line_bytes=4)))
    async with running(server) as port:
        assert await exchange(port, b"NETBAT/1 CALL ping 00\n") == err(LineTooLong(4))
        assert await exchange(port, b"abc\n") == err(
            MalformedRequest("missing NETBAT/1 protocol prefix")
        )


# -- slow peers, timeouts, limits -------------------------------------------------------------


@pytest.mark.anyio
async def test_silent_client_gets_io_wouldblock_and_does_not_block_others() -> None:
    server = RequestServer(Echo(), ServerConfig(read_timeout=0.5, write_timeout=1.0))
    async with running(server) as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as silent:
            started = time.monotonic()
            assert await acall("127.0.0.1", port, "ping", b"fast") == b"fast"
            assert time.monotonic() - started < 0.4
            with anyio.fail_after(3):
                assert await read_all(silent) == err(IoError("WouldBlock"))
        assert str(IoError("WouldBlock")) == "io error: WouldBlock"


@pytest.mark.anyio
async def test_trickling_client_is_cut_off_by_the_line_deadline() -> None:
    server = RequestServer(Echo(), ServerConfig(read_timeout=0.5))
    async with running(server) as port, await anyio.connect_tcp("127.0.0.1", port) as slow:

        async def trickle() -> None:
            for byte in b"NETBAT/1 CALL ping 00":
                try:
                    await slow.send(bytes([byte]))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    return
                await anyio.sleep(0.1)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(trickle)
            with anyio.fail_after(3):
                reply = await read_all(slow)
            tg.cancel_scope.cancel()
        # The deadline covers the whole line: bytes arriving every 0.1 s do not extend it.
        assert reply == err(IoError("WouldBlock"))
        assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_slow_handler_does_not_block_a_fast_call() -> None:
    async with running(RequestServer(Echo())) as port, anyio.create_task_group() as tg:
        slow_reply: list[bytes] = []

        async def slow() -> None:
            slow_reply.append(await acall("127.0.0.1", port, "sleep", b"0.6"))

        tg.start_soon(slow)
        await anyio.sleep(0.1)
        started = time.monotonic()
        assert await acall("127.0.0.1", port, "ping", b"quick") == b"quick"
        assert time.monotonic() - started < 0.4
    assert slow_reply == [b"slept"]


@pytest.mark.anyio
async def test_connection_limit_holds() -> None:
    server = RequestServer(Echo(), ServerConfig(max_connections=2))
    async with running(server) as port:
        first = await anyio.connect_tcp("127.0.0.1", port)
        second = await anyio.connect_tcp("127.0.0.1", port)
        await anyio.sleep(0.1)
        async with await anyio.connect_tcp("127.0.0.1", port) as third:
            await third.send(encode_request("ping", b"3"))
            with anyio.move_on_after(0.3) as waited:
                await third.receive()
            assert waited.cancelled_caught  # no permit, no answer
            await first.aclose()
            with anyio.fail_after(2):
                assert await third.receive() == encode_ok(b"3")
        await second.aclose()
    assert server.stats.peak_connections == 2


@pytest.mark.anyio
async def test_lifetime_limit_stops_accepting_and_serve_returns() -> None:
    server = RequestServer(Echo(), ServerConfig(lifetime_connections=2))
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            port = await tg.start(server.serve, "127.0.0.1", 0)
            for i in range(2):
                reply = await exchange(port, encode_request("ping", bytes([i])))
                assert reply == encode_ok(bytes([i]))
            # serve returned by itself: the task group exits with nothing to cancel
    assert server.stats.accepted_connections == 2
    with pytest.raises(OSError, match=r"(?i)connect"):  # the listener is closed
        await anyio.connect_tcp("127.0.0.1", port)
    with pytest.raises(ValueError, match="lifetime_connections"):
        ServerConfig(lifetime_connections=0)


@pytest.mark.anyio
async def test_storm_of_hostile_and_honest_connections() -> None:
    server = RequestServer(
        Echo(), ServerConfig(read_timeout=1.0, write_timeout=1.0, max_connections=64)
    )
    cases: list[tuple[bytes, bytes, bool]] = [
        (encode_request("ping", b"ok"), encode_ok(b"ok"), True),
        (b"\n", err(MalformedRequest("empty line")), True),
        (
            b"CALL ping 68656c6c6f\n",
            err(MalformedRequest("missing NETBAT/1 protocol prefix")),
            True,
        ),
        (b"NETBAT/1 POST ping 00\n", err(MalformedRequest("unsupported verb")), True),
        (b"NETBAT/1 CALL ping nope\n", err(MalformedRequest("input is not hex")), True),
        (b"NETBAT/1 CALL \xff 00\n", err(MalformedRequest("operation has invalid bytes")), True),
        (
            encode_request("boom", b""),
            err(HandlerFailed("boom", "failed", "unexpected ZeroDivisionError")),
            True,
        ),
        (encode_request("nope", b""), err(UnknownOperation("nope")), True),
        (b"NETBAT/1 CALL ping " + b"ab" * 40000 + b"\n", err(LineTooLong(65536)), True),
        (b"", b"", True),
        (b"\x00\xff" * 50, err(MalformedRequest("missing NETBAT/1 protocol prefix")), True),
        (b"NETBAT/1 CALL ping 00", err(IoError("WouldBlock")), False),
    ]
    rng = random.Random(1234)
    picks = [rng.choice(cases) for _ in range(300)]
    failures: list[str] = []
    async with running(server) as port:
        async with anyio.create_task_group() as tg:
            for data, expected, half_close in picks:

                async def one(
                    data: bytes = data, expected: bytes = expected, half_close: bool = half_close
                ) -> None:
                    got = await exchange(port, data, half_close=half_close, timeout=10)
                    if got != expected:
                        failures.append(f"{data[:40]!r}: {got[:80]!r} != {expected[:80]!r}")

                tg.start_soon(one)
        assert await acall("127.0.0.1", port, "ping", b"alive") == b"alive"
    assert failures == []
    assert server.stats.worker_panics == 0
    assert server.stats.peak_connections <= 64


@pytest.mark.anyio
async def test_client_errors() -> None:
    async with running(RequestServer(Echo())) as port:
        pass
    with pytest.raises(IoError) as refused:
        await acall("127.0.0.1", port, "ping", b"")
    assert refused.value.kind == "ConnectionRefused"
    with pytest.raises(IoError):
        await anyio.to_thread.run_sync(lambda: call("127.0.0.1", port, "ping", b""))


@pytest.mark.anyio
async def test_client_sees_empty_stream_when_the_server_says_nothing() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, silent)
        with pytest.raises(EmptyStream):
            await acall("127.0.0.1", port, "ping", b"")
        with pytest.raises(EmptyStream):
            await anyio.to_thread.run_sync(lambda: call("127.0.0.1", port, "ping", b""))
        tg.cancel_scope.cancel()


# -- TLS --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tls_round_trip_and_plaintext_peer_is_dropped(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    server = RequestServer(Echo(), ServerConfig(tls_handshake_timeout=1.0), ssl_context=server_ctx)
    async with running(server) as port:
        assert await acall("127.0.0.1", port, "ping", b"tls", ssl_context=client_ctx) == b"tls"
        got = await anyio.to_thread.run_sync(
            lambda: call("127.0.0.1", port, "ping", b"sync", ssl_context=client_ctx)
        )
        assert got == b"sync"
        with pytest.raises(UnknownOperation):
            await acall("127.0.0.1", port, "nope", b"", ssl_context=client_ctx)
        assert await exchange(port, encode_request("ping", b"plain")) == b""
        assert await acall("127.0.0.1", port, "ping", b"again", ssl_context=client_ctx) == (
            b"again"
        )
    assert server.stats.tls_handshake_failures == 1


@pytest.mark.anyio
async def test_cancelling_the_server_closes_open_connections() -> None:
    server = RequestServer(Echo())
    with anyio.fail_after(3):
        async with anyio.create_task_group() as tg:
            port = await tg.start(server.serve, "127.0.0.1", 0)
            idle = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(5)]
            await anyio.sleep(0.1)
            assert server.stats.active_connections == 5
            tg.cancel_scope.cancel()
        for stream in idle:
            assert await read_all(stream) == b""
            await stream.aclose()
    assert server.stats.active_connections == 0
    with pytest.raises(IoError):
        await acall("127.0.0.1", port, "ping", b"")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_requests_per_connection"):
        ServerConfig(max_requests_per_connection=0)
    with pytest.raises(ValueError, match="max_connections"):
        ServerConfig(max_connections=0)
    with pytest.raises(ValueError, match="max_line_bytes"):
        Limits(max_line_bytes=-1)
    assert Limits().with_(max_input_bytes=1).max_input_bytes == 1
