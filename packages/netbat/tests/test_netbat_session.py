"""The NETBAT/2 session rules as a pure state machine, without sockets."""

import pytest

from netbat import (
    MalformedStreamFrame,
    Session,
    SourceEnd,
    SourceEvent,
    SourceWatermark,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    SubEvent,
    Subscribe,
    SubscriptionFault,
    SubWatermark,
)
from netbat.session import SessionEnded, open_failure_frame

SUB = "orders.open.v1"


def event(n: int) -> SourceEvent:
    return SourceEvent(bytes([n - 1]), bytes([n]), "hostbat.event.orders.v1", b"e%d" % n)


def ack(index: int, cursor: bytes, sub: str = SUB) -> SubAck:
    return SubAck(sub, index, cursor)


def test_deliveries_share_one_index_sequence() -> None:
    session = Session(SUB, 8)
    first = session.deliver(event(1))
    second = session.deliver(SourceWatermark(b"\x09"))
    third = session.deliver(event(3))
    assert first == SubEvent(SUB, 1, b"\x00", b"\x01", "hostbat.event.orders.v1", b"e1")
    assert second == SubWatermark(SUB, 2, b"\x09")
    assert isinstance(third, SubEvent)
    assert third.delivery_index == 3
    assert session.in_flight == 3


def test_window_is_the_minimum_of_the_bounds() -> None:
    assert Session(SUB, 1000).window == 256
    assert Session(SUB, 10, server_max_window=5).window == 5
    assert Session(SUB, 10, route_cap=3).window == 3
    assert Session(SUB, 2, route_cap=3).window == 2
    with pytest.raises(ValueError, match="at least 1"):
        Session(SUB, 0)


def test_full_window_ends_with_slow_consumer() -> None:
    session = Session(SUB, 2)
    session.deliver(event(1))
    session.deliver(event(2))
    session.control(ack(1, b"\x01"))
    terminal = session.deliver(event(3))
    assert isinstance(terminal, SubEvent)  # one slot freed by the ACK
    terminal = session.deliver(event(4))
    assert terminal == SubErr(SUB, "slow_consumer", b"\x03", b"\x01", b"delivery window full")
    assert session.ended
    with pytest.raises(SessionEnded):
        session.deliver(event(5))


def test_watermark_also_needs_a_window_slot() -> None:
    session = Session(SUB, 1)
    session.deliver(SourceWatermark(b"\x01"))
    terminal = session.deliver(SourceWatermark(b"\x02"))
    assert isinstance(terminal, SubErr)
    assert terminal.code == "slow_consumer"
    assert terminal.last_acked_cursor is None


def test_cumulative_ack_frees_the_window() -> None:
    session = Session(SUB, 3)
    for n in (1, 2, 3):
        session.deliver(event(n))
    assert session.control(ack(3, b"\x03")) is None
    assert session.in_flight == 0
    assert session.last_acked_cursor == b"\x03"
    assert session.control(ack(3, b"\x03")) is None  # re-acking the same index is fine


@pytest.mark.parametrize(
    ("index", "cursor", "code", "message"),
    [
        (3, b"\x03", "malformed_stream_frame", "ack delivery index out of range"),
        (2, b"\x01", "malformed_stream_frame", "ack cursor does not match sent cursor"),
        (1, b"\x01", "cursor_invalid", "ack delivery index regressed"),
    ],
)
def test_ack_rules(index: int, cursor: bytes, code: str, message: str) -> None:
    session = Session(SUB, 8)
    session.deliver(event(1))
    session.deliver(event(2))
    session.control(ack(2, b"\x02"))
    terminal = session.control(ack(index, cursor))
    assert terminal == SubErr(SUB, code, b"\x02", b"\x02", message.encode())
    assert session.ended


def test_ack_before_any_delivery_is_out_of_range() -> None:
    terminal = Session(SUB, 8).control(ack(1, b"\x00"))
    assert terminal == SubErr(
        SUB, "malformed_stream_frame", None, None, b"ack delivery index out of range"
    )


def test_source_cursor_check_runs_after_the_range_check() -> None:
    def check(cursor: bytes) -> None:
        if cursor == b"\xee":
            raise SubscriptionFault.cursor_mismatch("cursor bound to another route")
        if cursor == b"\xdd":
            raise SubscriptionFault.cursor_invalid("cursor magic mismatch")

    session = Session(SUB, 8, check_ack_cursor=check)
    session.deliver(event(1))
    mismatch = session.control(ack(1, b"\xee"))
    assert mismatch == SubErr(
        SUB, "cursor_mismatch", b"\x01", None, b"cursor bound to another route"
    )
    session = Session(SUB, 8, check_ack_cursor=check)
    session.deliver(event(1))
    invalid = session.control(ack(1, b"\xdd"))
    assert isinstance(invalid, SubErr)
    assert invalid.code == "cursor_invalid"
    session = Session(SUB, 8, check_ack_cursor=check)
    out_of_range = session.control(ack(5, b"\xee"))
    assert isinstance(out_of_range, SubErr)
    assert out_of_range.message == b"ack delivery index out of range"


def test_cancel_ends_with_client_cancelled() -> None:
    session = Session(SUB, 8)
    assert session.control(SubCancel(SUB, "client.cancel")) == SubEnd(SUB, None, "client_cancelled")
    session = Session(SUB, 8)
    session.deliver(event(1))
    assert session.control(SubCancel(SUB, "x")) == SubEnd(SUB, b"\x01", "client_cancelled")


@pytest.mark.parametrize(
    "frame",
    [
        Subscribe(SUB, None, 1),
        SubAck("other.v1", 1, b"\x01"),
        SubCancel("other.v1", "x"),
        SubEnd(SUB, None, "x"),
        MalformedStreamFrame("input is not hex"),
    ],
)
def test_anything_else_is_a_malformed_control_frame(
    frame: Subscribe | SubAck | SubCancel | SubEnd | MalformedStreamFrame,
) -> None:
    session = Session(SUB, 8)
    session.deliver(event(1))
    assert session.control(frame) == SubErr(
        SUB, "malformed_stream_frame", b"\x01", None, b"malformed stream control frame"
    )


def test_disconnect_ends_silently() -> None:
    session = Session(SUB, 8)
    session.disconnect()
    assert session.ended
    with pytest.raises(SessionEnded):
        session.control(SubCancel(SUB, "x"))


def test_runtime_failure_codes() -> None:
    session = Session(SUB, 8)
    assert session.runtime_failure("cursor_mismatch") == SubErr(
        SUB, "cursor_mismatch", None, None, b"subscription runtime poll failed"
    )
    assert Session(SUB, 8).runtime_failure("weird").code == "internal_error"


def test_source_end_and_bad_source_tokens() -> None:
    session = Session(SUB, 8)
    session.deliver(event(1))
    assert session.deliver(SourceEnd("stream.complete")) == SubEnd(SUB, b"\x01", "stream.complete")
    bad = Session(SUB, 8).deliver(SourceEvent(None, b"\x01", "Bad Schema", b""))
    assert isinstance(bad, SubErr)
    assert bad.code == "internal_error"


def test_open_failure_frames() -> None:
    unknown = open_failure_frame(SUB, SubscriptionFault.unknown_subscription(SUB))
    assert unknown == SubErr(SUB, "unknown_subscription", None, None, SUB.encode())
    odd = open_failure_frame(SUB, SubscriptionFault("Not A Code", "x"))
    assert odd.code == "cursor_invalid"
