"""Hypothesis: decoders are total on arbitrary bytes and valid frames round-trip."""

import contextlib
import functools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from netbat import (
    Limits,
    NetbatError,
    Request,
    StreamFrame,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    SubEvent,
    Subscribe,
    SubWatermark,
    decode_request,
    decode_response,
    decode_stream_line,
    encode_error,
    encode_ok,
    encode_request,
    encode_stream_frame,
)
from netbat.errors import WIRE_CODES, error_from_wire

SMALL = Limits(max_line_bytes=512, max_input_bytes=64, max_operation_name_bytes=16)

wire_ish = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"NETBAT/1",
                b"NETBAT/2",
                b"CALL",
                b"SUBSCRIBE",
                b"SUB_EVENT",
                b"SUB_ACK",
                b"SUB_WATERMARK",
                b"SUB_CANCEL",
                b"SUB_ERR",
                b"SUB_END",
                b"ping",
                b"orders.open.v1",
                b"-",
                b"0a",
                b"00",
                b"1",
                b"+1",
                b"0",
                b"zz",
                b"",
                b"\xff",
                b"\r",
                b"OK",
                b"ERR",
                b"a.v1",
                b"Bad",
                b"x" * 200,
            ]
        ),
        max_size=9,
    ).map(b" ".join),
)


@settings(max_examples=400)
@given(wire_ish, st.sampled_from([b"", b"\n", b"\r\n", b"\r"]))
def test_decoders_are_total(line: bytes, end: bytes) -> None:
    decoders: list[Callable[[bytes], object]] = [
        decode_request,
        functools.partial(decode_request, limits=SMALL),
        decode_stream_line,
        functools.partial(decode_stream_line, limits=SMALL),
        decode_response,
    ]
    for decode in decoders:
        with contextlib.suppress(NetbatError):
            decode(line + end)


op_names = st.from_regex(r"\A[A-Za-z0-9_-]([A-Za-z0-9_-]|\.(?=[A-Za-z0-9_-])){0,100}\Z")


@given(op_names, st.binary(max_size=200))
def test_request_round_trip(op: str, data: bytes) -> None:
    line = encode_request(op, data)
    assert decode_request(line) == Request(op, data)
    assert encode_request(*_parts(decode_request(line))) == line


def _parts(request: Request) -> tuple[str, bytes]:
    return request.operation, request.input


@given(st.binary(max_size=200))
def test_ok_round_trip(data: bytes) -> None:
    assert decode_response(encode_ok(data)) == data


@given(st.sampled_from(WIRE_CODES), st.text(max_size=80))
def test_err_round_trip(code: str, message: str) -> None:
    frame = encode_error(error_from_wire(code, message))
    back = decode_response(frame)
    assert isinstance(back, NetbatError)
    assert back.code == code
    assert str(back) == message
    assert encode_error(back) == frame


sub_ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,10}(\.[a-z0-9_-]{1,5}){0,3}\.v[1-9][0-9]{0,3}\Z")
codes = st.from_regex(r"\A[a-z0-9._-]{1,40}\Z")
cursors = st.binary(max_size=64)
maybe = st.none() | cursors
indexes = st.integers(1, 2**64 - 1)

frames: st.SearchStrategy[StreamFrame] = st.one_of(
    st.builds(Subscribe, sub_ids, maybe, st.integers(1, 2**32 - 1)),
    st.builds(SubEvent, sub_ids, indexes, maybe, maybe, codes, st.binary(max_size=200)),
    st.builds(SubWatermark, sub_ids, indexes, cursors),
    st.builds(SubAck, sub_ids, indexes, cursors),
    st.builds(SubCancel, sub_ids, codes),
    st.builds(SubErr, sub_ids, codes, maybe, maybe, st.binary(max_size=100)),
    st.builds(SubEnd, sub_ids, maybe, codes),
)


@settings(max_examples=300)
@given(frames)
def test_stream_round_trip(frame: StreamFrame) -> None:
    line = encode_stream_frame(frame)
    assert decode_stream_line(line) == frame
    assert encode_stream_frame(decode_stream_line(line)) == line
    assert line.count(b"\n") == 1


@given(frames, st.integers(0, 200))
def test_any_truncation_is_total(frame: StreamFrame, cut: int) -> None:
    line = encode_stream_frame(frame)
    with contextlib.suppress(NetbatError):
        decode_stream_line(line[:cut])
