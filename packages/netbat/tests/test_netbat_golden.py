"""Every golden in shared/vectors/netbat decodes to its listed frame and re-encodes exactly."""

import pytest
from netbat_vectors import COMMITTED, SHARED, load, names

from netbat import (
    HandlerFailed,
    InputTooLarge,
    Limits,
    LineTooLong,
    MalformedRequest,
    NetbatError,
    OperationNameTooLong,
    Request,
    StreamFrame,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    SubEvent,
    Subscribe,
    SubWatermark,
    UnsupportedProtocolVersion,
    decode_request,
    decode_response,
    decode_stream_line,
    encode_error,
    encode_ok,
    encode_request,
    encode_stream_frame,
)

STREAM_GOLDENS: dict[str, StreamFrame] = {
    "stream_subscribe_v2": Subscribe("orders.open.v1", None, 128),
    "stream_sub_event_v2": SubEvent(
        "orders.open.v1", 1, None, b"\x0a", "hostbat.event.orders.v1", b"event"
    ),
    "stream_sub_watermark_v2": SubWatermark("orders.open.v1", 1, b"\x0a"),
    "stream_sub_ack_v2": SubAck("orders.open.v1", 1, b"\x0a"),
    "stream_sub_cancel_v2": SubCancel("orders.open.v1", "client.cancel"),
    "stream_sub_err_v2": SubErr("orders.open.v1", "slow_consumer", b"\x0a", None, b"slow"),
    "stream_sub_end_v2": SubEnd("orders.open.v1", b"\x0a", "stream.complete"),
}


def test_all_sixteen_goldens_are_present() -> None:
    assert len(names()) == 16
    assert set(STREAM_GOLDENS) <= set(names())


def test_committed_copy_matches_shared() -> None:
    if not SHARED.is_dir():
        pytest.skip("no shared vector tree beside the checkout")
    for path in sorted(SHARED.glob("*.hex")):
        assert (COMMITTED / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("name", sorted(STREAM_GOLDENS))
def test_stream_golden_round_trips(name: str) -> None:
    frame = load(name)
    assert decode_stream_line(frame) == STREAM_GOLDENS[name]
    assert encode_stream_frame(STREAM_GOLDENS[name]) == frame


def test_request_call_v1() -> None:
    frame = load("request_call_v1")
    assert len(frame) == 24
    assert encode_request("ping", b"hi") == frame
    assert decode_request(frame) == Request("ping", b"hi")
    assert encode_ok(decode_request(frame).input) == load("response_ok_hi")


def test_request_decode_input() -> None:
    frame = load("request_decode_input")
    assert len(frame) == 22
    assert decode_request(frame) == Request("ping", b"\x00")
    assert encode_request("ping", b"\x00") == frame
    with pytest.raises(LineTooLong) as too_long:
        decode_request(frame, Limits(max_line_bytes=4))
    assert encode_error(too_long.value) == (
        b"ERR line_too_long " + b"request line exceeded 4 bytes".hex().encode() + b"\n"
    )
    with pytest.raises(OperationNameTooLong) as name:
        decode_request(frame, Limits(max_operation_name_bytes=3))
    assert str(name.value) == "operation name exceeded 3 bytes"
    err = encode_error(HandlerFailed("ping", "invalid_input", "bad payload"))
    message = bytes.fromhex(err.split(b" ")[2].decode())
    assert err.startswith(b"ERR handler ")
    assert b"invalid_input" in message
    assert b"bad payload" in message


def test_request_input_too_large() -> None:
    frame = load("request_input_too_large")
    with pytest.raises(InputTooLarge) as error:
        decode_request(frame, Limits(max_input_bytes=1))
    assert str(error.value) == "input exceeded 1 bytes"
    assert decode_request(frame) == Request("ping", b"\x00\x01")
    assert encode_request("ping", b"\x00\x01") == frame


@pytest.mark.parametrize(
    ("name", "error", "wire"),
    [
        (
            "request_empty_line",
            MalformedRequest("empty line"),
            b"ERR malformed_request 6d616c666f726d656420726571756573743a20656d707479206c696e65\n",
        ),
        (
            "request_missing_verb",
            MalformedRequest("missing verb"),
            b"ERR malformed_request "
            b"6d616c666f726d656420726571756573743a206d697373696e672076657262\n",
        ),
        (
            "request_unsupported_protocol",
            UnsupportedProtocolVersion("NETBAT/2"),
            b"ERR unsupported_protocol_version 756e737570706f727465642070726f746f636f6c207665"
            b"7273696f6e3a204e45544241542f32\n",
        ),
    ],
)
def test_rejected_request_goldens(name: str, error: NetbatError, wire: bytes) -> None:
    with pytest.raises(type(error)) as raised:
        decode_request(load(name))
    assert raised.value == error
    assert encode_error(raised.value) == wire


@pytest.mark.parametrize(("name", "output"), [("response_ok", b"ok"), ("response_ok_hi", b"hi")])
def test_ok_goldens(name: str, output: bytes) -> None:
    assert encode_ok(output) == load(name)
    assert decode_response(load(name)) == output


def test_err_golden() -> None:
    frame = load("response_err_malformed")
    assert encode_error(MalformedRequest("bad")) == frame
    decoded = decode_response(frame)
    assert isinstance(decoded, MalformedRequest)
    assert str(decoded) == "malformed request: bad"
    assert encode_error(decoded) == frame


def test_subscribe_golden_against_netbat1_and_line_cap() -> None:
    frame = load("stream_subscribe_v2")
    with pytest.raises(UnsupportedProtocolVersion) as version:
        decode_request(frame)
    assert version.value.version == "NETBAT/2"
    with pytest.raises(LineTooLong) as cap:
        decode_stream_line(frame, Limits(max_line_bytes=8))
    assert cap.value.max == 8
