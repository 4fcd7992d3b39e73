"""The request round's fast paths: inline ops on the event loop, the worker pool, and the one
cancel scope per round whose deadline follows the phase (read, dispatch, write)."""

import socket
import threading
import time

import anyio
import pytest
from netbat_loopback import exchange, read_all, running

from netbat import (
    HandlerFailed,
    IoError,
    Limits,
    RequestServer,
    ServerConfig,
    acall,
    encode_error,
    encode_request,
)
from netbat._workers import WorkerPool


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Threads:
    """An ``InlineDispatcher``: ``fast`` runs inline, ``slow`` sleeps in a worker thread;
    each call records the thread it ran on."""

    def __init__(self) -> None:
        self.ran_on: dict[str, int] = {}

    def inline(self, op: str) -> bool:
        return op == "fast"

    def call(self, op: str, input: bytes) -> bytes:
        self.ran_on[op] = threading.get_ident()
        if op == "slow":
            time.sleep(float(input.decode()))
        if op == "big":
            return b"x" * int(input.decode())
        if op == "fast" and input == b"boom":
            raise ZeroDivisionError("inline failure")
        return input


@pytest.mark.anyio
async def test_inline_ops_run_on_the_event_loop_and_the_rest_in_threads() -> None:
    dispatcher = Threads()
    async with running(RequestServer(dispatcher)) as port:
        assert await acall("127.0.0.1", port, "fast", b"a") == b"a"
        assert await acall("127.0.0.1", port, "slow", b"0") == b"0"
    loop_thread = threading.get_ident()
    assert dispatcher.ran_on["fast"] == loop_thread
    assert dispatcher.ran_on["slow"] != loop_thread


@pytest.mark.anyio
async def test_an_inline_failure_is_contained_like_a_threaded_one() -> None:
    async with running(RequestServer(Threads())) as port:
        reply = await exchange(port, encode_request("fast", b"boom"))
        expected = HandlerFailed("fast", "failed", "unexpected ZeroDivisionError")
        assert reply == encode_error(expected)
        assert await acall("127.0.0.1", port, "fast", b"still serving") == b"still serving"


@pytest.mark.anyio
async def test_the_read_deadline_does_not_bound_the_dispatcher() -> None:
    server = RequestServer(Threads(), ServerConfig(read_timeout=0.2, write_timeout=0.2))
    async with running(server) as port:
        with anyio.fail_after(5):
            assert await acall("127.0.0.1", port, "slow", b"0.6") == b"0.6"


@pytest.mark.anyio
async def test_the_read_deadline_still_fires_after_a_served_round() -> None:
    config = ServerConfig(read_timeout=0.3, max_requests_per_connection=2)
    async with running(RequestServer(Threads(), config)) as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(encode_request("fast", b"one"))
            started = time.monotonic()
            with anyio.fail_after(3):
                everything = await read_all(stream)  # the second round's line never comes
        assert everything.endswith(encode_error(IoError("WouldBlock")))
        assert everything.startswith(b"OK ")
        assert 0.25 < time.monotonic() - started < 2.0


@pytest.mark.anyio
async def test_a_peer_that_never_reads_is_cut_off_by_the_write_deadline() -> None:
    big = 8 << 20  # far beyond the socket buffers, so the write must wait for the peer
    limits = Limits(max_output_bytes=big, max_line_bytes=4 * big)
    server = RequestServer(Threads(), ServerConfig(limits=limits, write_timeout=0.3))
    async with running(server) as port:
        with socket.create_connection(("127.0.0.1", port)) as peer:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            peer.sendall(encode_request("big", str(big).encode()))
            with anyio.fail_after(5):
                while server.stats.connection_io_failures == 0:
                    await anyio.sleep(0.05)
        assert server.stats.served == 1  # the dispatcher ran; its answer could not be sent


@pytest.mark.anyio
async def test_the_worker_pool_bounds_threads_and_reports_failures() -> None:
    pool = WorkerPool(2)
    running_now = 0
    peak = 0
    lock = threading.Lock()

    def work() -> int:
        nonlocal running_now, peak
        with lock:
            running_now += 1
            peak = max(peak, running_now)
        time.sleep(0.05)
        with lock:
            running_now -= 1
        return threading.get_ident()

    results: list[int] = []

    async def one() -> None:
        results.append(await pool.run(work))

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    assert len(results) == 6
    assert peak == 2
    assert threading.get_ident() not in results

    def fail() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        await pool.run(fail)


@pytest.mark.anyio
async def test_a_cancelled_caller_still_waits_for_its_call() -> None:
    pool = WorkerPool(1)
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.3)
        finished.set()

    with anyio.move_on_after(0.05):
        await pool.run(slow)
    assert finished.is_set()  # the call in flight was waited for, as anyio.to_thread does


async def _quick_beside_a_blocked_call() -> float:
    """Seconds a quick call took, submitted in the same loop turn as a blocking one, to a
    pool with one idle worker."""
    pool = WorkerPool(4)
    assert await pool.run(lambda: 0) == 0  # one worker, now idle
    gate = threading.Event()
    took: list[float] = []

    async def quick() -> None:
        started = time.monotonic()
        assert await pool.run(lambda: 7) == 7
        took.append(time.monotonic() - started)
        gate.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.run, lambda: gate.wait(3))  # bounded: a failure, not a hang
        tg.start_soon(quick)
    return took[0]


@pytest.mark.anyio
async def test_a_call_never_waits_behind_a_blocked_call_while_a_thread_is_free() -> None:
    """The lifetime-limit conformance test once hung: with one idle worker, two calls
    submitted back to back were both left to it, and the second waited behind the first."""
    for _ in range(20):
        assert await _quick_beside_a_blocked_call() < 2
