"""netbat's request boundary over real TCP: it frames calls and nothing a handler or a peer does
escapes its connection.

The servers are netbat's own ``RequestServer`` on loopback ports, driven by blocking clients
(``netbat.call`` and raw sockets) from threads.

PROVES: INV-NETBAT-BOUNDARY-THIN (a handler that raises, divides by zero, raises SystemExit
or returns a non-bytes value is answered ``ERR handler`` with the exception type but not its
text, concurrently with good calls, and the server keeps serving; a client that stalls
mid-line and a handler that sleeps do not delay other clients; with ``max_connections=2`` a
third client waits until a permit frees and no more than two connections are ever served at
once; with a lifetime limit the listener accepts exactly that many connections and stops).
CATCHES: a handler exception that kills the listener or leaks its message, one slow peer or
slow handler serializing everyone, a permit pool that over-admits or never releases, a
lifetime limit that is not enforced.
SEEDED: deterministic; timing bounds are generous for a loaded 2-core machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from netbat_served import Raw, serving

import netbat
from netbat import HandlerFailed, RequestServer, ServerConfig, encode_request


class Ops:
    """A dispatcher with well-behaved and misbehaving operations."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def call(self, op: str, input: bytes) -> bytes:
        if op == "echo":
            return input
        if op == "boom":
            raise RuntimeError("secret internal detail")
        if op == "zero":
            return bytes(1 // len(b""))
        if op == "exit":
            raise SystemExit(3)  # a handler bug, not a request to stop the server
        if op == "notbytes":
            return 5  # type: ignore[return-value]
        if op == "sleep":
            self.release.wait(timeout=10)
            return b"slept"
        raise netbat.UnknownOperation(op)


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def call(port: int, op: str, data: bytes) -> bytes:
    return netbat.call("127.0.0.1", port, op, data, timeout=10)


@pytest.mark.invariant("INV-NETBAT-BOUNDARY-THIN")
def test_handler_exceptions_are_contained() -> None:
    server = RequestServer(Ops(), ServerConfig(read_timeout=10, write_timeout=10))
    with serving(server) as (port, _):

        def one(i: int) -> tuple[str, str]:
            op = ("echo", "boom", "zero", "notbytes", "exit")[i % 5]
            try:
                return op, call(port, op, f"#{i}".encode()).decode()
            except HandlerFailed as exc:
                return op, str(exc)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(40)))
        for i, (op, reply) in enumerate(results):
            if op == "echo":
                assert reply == f"#{i}"
            else:
                assert reply.startswith(f"runtime error: handler for operation `{op}` failed"), (
                    reply
                )
                assert "secret" not in reply
        assert {r for op, r in results if op == "boom"} == {
            "runtime error: handler for operation `boom` failed with failed: unexpected "
            "RuntimeError"
        }
        assert call(port, "echo", b"still here") == b"still here"
        with pytest.raises(netbat.UnknownOperation):
            call(port, "nope", b"")
        assert server.stats.worker_panics == 0
        assert server.stats.served >= 9


@pytest.mark.invariant("INV-NETBAT-BOUNDARY-THIN")
def test_a_slow_client_or_handler_does_not_block_a_fast_one() -> None:
    ops = Ops()
    server = RequestServer(ops, ServerConfig(read_timeout=20, write_timeout=10))
    with serving(server) as (port, _), ThreadPoolExecutor(2) as pool:
        stalled = Raw(port)
        stalled.send(encode_request("echo", b"half")[:-3])  # mid-line, then silence
        sleeper = pool.submit(call, port, "sleep", b"")
        wait_until(lambda: server.stats.active_connections == 2)  # both slow ones are in
        started = time.monotonic()
        for i in range(20):
            assert call(port, "echo", bytes([i])) == bytes([i])
        fast = time.monotonic() - started
        assert not sleeper.done()  # the slow handler is still running
        assert fast < 5.0, fast
        stalled.send(encode_request("echo", b"half")[-3:])
        assert stalled.read_all() == b"OK " + b"half".hex().encode() + b"\n"
        stalled.close()
        ops.release.set()
        assert sleeper.result(timeout=10) == b"slept"


@pytest.mark.invariant("INV-NETBAT-BOUNDARY-THIN")
def test_the_concurrent_connection_limit_holds() -> None:
    server = RequestServer(Ops(), ServerConfig(max_connections=2, write_timeout=10))
    with serving(server) as (port, _), ThreadPoolExecutor(1) as pool:
        idle = [Raw(port), Raw(port)]  # both permits held by silent peers
        wait_until(lambda: server.stats.active_connections == 2)
        waiting = pool.submit(call, port, "echo", b"third")
        time.sleep(0.5)
        assert not waiting.done()  # connected to the backlog, not served
        assert server.stats.active_connections == 2
        idle[0].close()  # EOF before any byte: a silent close frees one permit
        assert waiting.result(timeout=10) == b"third"
        idle[1].close()
        for i in range(5):
            assert call(port, "echo", bytes([i])) == bytes([i])
        assert server.stats.peak_connections == 2


@pytest.mark.invariant("INV-NETBAT-BOUNDARY-THIN")
def test_the_lifetime_connection_limit_holds() -> None:
    ops = Ops()
    server = RequestServer(ops, ServerConfig(lifetime_connections=3, write_timeout=10))
    with serving(server) as (port, finished), ThreadPoolExecutor(1) as pool:
        assert call(port, "echo", b"1") == b"1"
        slow = pool.submit(call, port, "sleep", b"")  # the last connection is still running
        assert call(port, "echo", b"2") == b"2"
        wait_until(lambda: server.stats.accepted_connections == 3)
        with pytest.raises(netbat.IoError):  # the budget is spent: nobody listens any more
            call(port, "echo", b"4")
        assert not finished.done()  # serve waits for the connection still in flight
        ops.release.set()
        assert slow.result(timeout=10) == b"slept"
        finished.result(timeout=10)  # then returns on its own
    assert server.stats.accepted_connections == 3
    assert server.stats.served == 3
