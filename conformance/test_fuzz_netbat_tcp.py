"""The NETBAT line protocol as a real netbat server speaks it over loopback TCP.

PROVES: INV-NETBAT-LINE-PROTOCOL-STABLE (LF, CRLF, a bare CR and EOF all end a request line;
an over-long line is answered ``line_too_long`` and the connection is closed, while other
errors leave it serving; the server's own refusals carry the frozen codes; every frozen code a
dispatcher raises reaches the client as the same typed error; for fuzzed bytes the server's
one answer is exactly what decoding the first line predicts; a NETBAT/2 subscription answers
the golden SUBSCRIBE with the golden SUB_EVENT and SUB_END bytes, and a first line that is not
SUBSCRIBE gets nothing at all).
CATCHES: a server that resyncs after an over-long line, decodes CRLF as part of the hex, crashes
or hangs on junk, writes an unknown code, or frames subscriptions differently from the goldens.
SEEDED: hypothesis draws the fuzzed request bytes (raw, and token edits of the golden lines).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.from_thread
import pytest
from fuzz.mutate import mutated_line
from fuzz.seeds import netbat_lines
from fuzz.targets import FROZEN_CODES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netbat

HI = b"NETBAT/1 CALL echo 6869"
OK_HI = b"OK 6869\n"
RAISES: dict[str, netbat.NetbatError] = {
    "io": netbat.IoError("TimedOut"),
    "empty_stream": netbat.EmptyStream(),
    "line_too_long": netbat.LineTooLong(7),
    "malformed_request": netbat.MalformedRequest("bad"),
    "unsupported_protocol_version": netbat.UnsupportedProtocolVersion("NETBAT/9"),
    "operation_name_too_long": netbat.OperationNameTooLong(3),
    "input_too_large": netbat.InputTooLarge(3),
    "output_too_large": netbat.OutputTooLarge(3),
    "malformed_stream_frame": netbat.MalformedStreamFrame("bad"),
    "subscription_id_too_long": netbat.SubscriptionIdTooLong(3),
    "cursor_too_large": netbat.CursorTooLarge(3),
    "stream_payload_too_large": netbat.StreamPayloadTooLarge(3),
    "stream_message_too_large": netbat.StreamMessageTooLarge(3),
    "unknown_operation": netbat.UnknownOperation("nope"),
    "missing_handler": netbat.MissingHandler("nope"),
    "handler": netbat.HandlerFailed("nope", "invalid_input", "bad payload"),
    "receipt_sink": netbat.ReceiptSinkFailed("nope", "disk full"),
    "runtime": netbat.RuntimeFailure.denied("nope", "quota", "no"),
}


class Echo:
    """``echo`` answers its input, ``raise.<code>`` raises that code, ``boom`` breaks."""

    def call(self, op: str, input: bytes) -> bytes:
        if op == "echo":
            return input
        if op.startswith("raise."):
            raise RAISES[op.removeprefix("raise.")]
        if op == "boom":
            raise ZeroDivisionError("never sent")
        raise netbat.UnknownOperation(op)


@contextmanager
def serving(server: Any) -> Iterator[int]:
    """Run a netbat server on a loopback port in a background event loop."""
    with anyio.from_thread.start_blocking_portal() as portal:
        future, port = portal.start_task(server.serve, "127.0.0.1", 0)
        try:
            yield port
        finally:
            future.cancel()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    config = netbat.ServerConfig(
        max_requests_per_connection=4,
        read_timeout=0.5,
        write_timeout=5,
        limits=netbat.Limits(max_output_bytes=64),
    )
    with serving(netbat.RequestServer(Echo(), config)) as port:
        yield port


def exchange(port: int, data: bytes, half_close: bool = True) -> bytes:
    """Send ``data`` (then EOF) and return everything the server wrote before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def err(error: netbat.NetbatError) -> bytes:
    return netbat.encode_error(error)


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_every_line_ending_over_tcp(echo_port: int) -> None:
    assert exchange(echo_port, HI + b"\n") == OK_HI
    assert exchange(echo_port, HI + b"\r\n") == OK_HI
    assert exchange(echo_port, HI + b"\r") == OK_HI  # a bare CR, then EOF
    assert exchange(echo_port, HI) == OK_HI  # EOF mid-line: the partial line is the frame
    assert exchange(echo_port, HI + b"\r\n" + HI + b"\n") == OK_HI + OK_HI
    assert exchange(echo_port, b"") == b""  # EOF before any byte: closed silently


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_over_long_line_is_answered_then_the_connection_closes(echo_port: int) -> None:
    too_long = err(netbat.LineTooLong(65536))
    message = b"request line exceeded 65536 bytes".hex().encode()
    assert too_long == b"ERR line_too_long " + message + b"\n"
    assert exchange(echo_port, b"x" * 65537 + b"\n" + HI + b"\n") == too_long
    assert exchange(echo_port, b"x" * 200_000, half_close=False) == too_long
    # Any other error leaves the connection serving its remaining rounds.
    malformed = err(netbat.MalformedRequest("empty line"))
    assert exchange(echo_port, b"\n" + HI + b"\n") == malformed + OK_HI


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"CALL echo 6869\n", netbat.MalformedRequest("missing NETBAT/1 protocol prefix")),
        (b"NETBAT/2 CALL echo 00\n", netbat.UnsupportedProtocolVersion("NETBAT/2")),
        (b"NETBAT/1 POST echo 00\n", netbat.MalformedRequest("unsupported verb")),
        (b"NETBAT/1 CALL echo 00 extra\n", netbat.MalformedRequest("too many fields")),
        (b"NETBAT/1 CALL " + b"a" * 129 + b" 00\n", netbat.OperationNameTooLong(128)),
        (
            b"NETBAT/1 CALL ping..name 00\n",
            netbat.MalformedRequest("operation dot segments must be non-empty"),
        ),
        (b"NETBAT/1 CALL echo nope\n", netbat.MalformedRequest("input is not hex")),
        (b"NETBAT/1 CALL missing 00\n", netbat.UnknownOperation("missing")),
        (
            b"NETBAT/1 CALL boom 00\n",
            netbat.HandlerFailed("boom", "failed", "unexpected ZeroDivisionError"),
        ),
        (b"NETBAT/1 CALL echo " + b"00" * 65 + b"\n", netbat.OutputTooLarge(64)),
        (b"NETBAT/1 CALL echo 00", netbat.IoError("WouldBlock")),  # no EOF: read timeout
    ],
)
def test_server_refusals_carry_frozen_codes(
    echo_port: int, line: bytes, expected: netbat.NetbatError
) -> None:
    answer = exchange(echo_port, line, half_close=line.endswith(b"\n"))
    assert answer == err(expected)
    assert expected.code in FROZEN_CODES
    assert netbat.decode_response(answer) == expected


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_every_frozen_code_reaches_the_client_typed(echo_port: int) -> None:
    assert set(RAISES) == FROZEN_CODES
    for code, error in RAISES.items():
        answer = exchange(echo_port, netbat.encode_request(f"raise.{code}", b""))
        assert answer.split(b" ")[:2] == [b"ERR", code.encode()]
        got = netbat.decode_response(answer)
        assert type(got) is type(error)
        assert str(got) == str(error)
    with pytest.raises(netbat.UnknownOperation, match="unknown operation `missing`"):
        netbat.call("127.0.0.1", echo_port, "missing", b"", timeout=10)


def _predicted(data: bytes) -> bytes:
    first = data[: data.index(b"\n") + 1] if b"\n" in data else data
    if not first:
        return b""
    try:
        request = netbat.decode_request(first)
    except netbat.NetbatError as exc:
        return err(exc)
    try:
        return netbat.encode_ok(
            netbat.dispatch_request(Echo(), request, netbat.Limits(max_output_bytes=64))
        )
    except netbat.NetbatError as exc:
        return err(exc)


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_fuzzed_lines_get_exactly_the_predicted_answer() -> None:
    config = netbat.ServerConfig(read_timeout=2, write_timeout=5)
    seeds = netbat_lines()["request"]
    lines = st.one_of(st.binary(max_size=200), mutated_line(seeds)).map(
        lambda b: b.replace(b"raise.", b"")
    )
    with serving(netbat.RequestServer(Echo(), config)) as port:

        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(lines)
        def run(data: bytes) -> None:
            answer = exchange(port, data)
            assert answer == _predicted(data)
            if answer:
                assert answer.count(b"\n") == 1
                assert answer.split(b" ")[0] in (b"OK", b"ERR")

        run()


# -- NETBAT/2 ---------------------------------------------------------------------------------


class OneEvent:
    """Serves ``orders.open.v1``: one event, then the stream ends (the golden frames' values)."""

    def __init__(self) -> None:
        self.items: list[netbat.SourceItem] = [
            netbat.SourceEvent(None, b"\x0a", "hostbat.event.orders.v1", b"event"),
            netbat.SourceEnd("stream.complete"),
        ]

    def open(self, subscription_id: str, resume: bytes | None, window: int) -> OneEvent:
        if subscription_id != "orders.open.v1":
            raise netbat.SubscriptionFault.unknown_subscription(subscription_id)
        return OneEvent()

    def poll(self, timeout: float) -> netbat.SourceItem | None:
        return self.items.pop(0) if self.items else None

    def check_ack_cursor(self, cursor: bytes) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_subscription_frames_over_tcp_are_the_goldens() -> None:
    golden = {line.split(b" ")[1]: line for line in netbat_lines()["stream"]}
    config = netbat.SubscriptionServerConfig(first_line_timeout=2)
    with serving(netbat.SubscriptionServer(OneEvent(), config)) as port:
        answer = exchange(port, golden[b"SUBSCRIBE"], half_close=False)
        assert answer == golden[b"SUB_EVENT"] + golden[b"SUB_END"]
        for frame in answer.splitlines(keepends=True):
            assert netbat.encode_stream_frame(netbat.decode_stream_line(frame)) == frame
        assert exchange(port, golden[b"SUB_ACK"], half_close=False) == b""  # not SUBSCRIBE
        assert exchange(port, HI + b"\n", half_close=False) == b""
        unknown = exchange(port, b"NETBAT/2 SUBSCRIBE other.v1 - 8\n", half_close=False)
        refusal = netbat.decode_stream_line(unknown)
        assert isinstance(refusal, netbat.SubErr)
        assert (refusal.code, refusal.message) == ("unknown_subscription", b"other.v1")
