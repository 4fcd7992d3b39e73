"""NETBAT/1 request/response framing: the decode order, pinned cases and the error table."""

import pytest

from netbat import (
    CursorTooLarge,
    EmptyStream,
    HandlerFailed,
    InputTooLarge,
    IoError,
    Limits,
    LineTooLong,
    MalformedRequest,
    MalformedResponse,
    MalformedStreamFrame,
    MissingHandler,
    NetbatError,
    OperationNameTooLong,
    OutputTooLarge,
    ReceiptSinkFailed,
    Request,
    RuntimeFailure,
    StreamMessageTooLarge,
    StreamPayloadTooLarge,
    SubscriptionIdTooLong,
    UnknownOperation,
    UnrecognizedError,
    UnsupportedProtocolVersion,
    decode_request,
    decode_response,
    encode_error,
    encode_request,
    encode_response,
)
from netbat.errors import WIRE_CODES, error_from_wire


def reason(line: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(MalformedRequest) as error:
        decode_request(line, limits or Limits())
    return error.value.reason


# -- pinned cases (netbat.md §3) --------------------------------------------------------------


def test_crlf_and_bare_cr_decode() -> None:
    assert decode_request(b"NETBAT/1 CALL ping 6f6b\r\n") == Request("ping", b"ok")
    assert decode_request(b"NETBAT/1 CALL ping 6f6b\r") == Request("ping", b"ok")
    assert decode_request(b"NETBAT/1 CALL ping 6f6b") == Request("ping", b"ok")


def test_only_one_cr_is_stripped() -> None:
    assert reason(b"NETBAT/1 CALL ping 6f6b\r\r\n") == "hex input has odd length"
    assert reason(b"NETBAT/1 CALL ping 6f6b\r\n\n") == "input is not hex"


def test_legacy_call_frame_is_rejected() -> None:
    assert reason(b"CALL ping 68656c6c6f\n") == "missing NETBAT/1 protocol prefix"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"NETBAT/1 POST ping 00\n", "unsupported verb"),
        (b"NETBAT/1 CALL ping\tname 00\n", "operation has invalid bytes"),
        (b"NETBAT/1 CALL \xff 00\n", "operation has invalid bytes"),
        (b"NETBAT/1 CALL ping..name 00\n", "operation dot segments must be non-empty"),
        (b"NETBAT/1 CALL .ping 00\n", "operation dot segments must be non-empty"),
        (b"NETBAT/1 CALL ping. 00\n", "operation dot segments must be non-empty"),
        (b"NETBAT/1 CALL . 00\n", "operation dot segments must be non-empty"),
        (b"NETBAT/1 CALL .a\tb 00\n", "operation has invalid bytes"),
        (b"NETBAT/1 CALL ping nope\n", "input is not hex"),
        (b"NETBAT/1 CALL ping 00 extra\n", "too many fields"),
        (b"NETBAT/1 CALL ping 00 \n", "too many fields"),
        (b"NETBAT/1 POST ping 00 extra\n", "too many fields"),
        (b"NETBAT/1 CALL  00\n", "empty operation"),
        (b"NETBAT/1 CALL ping 0\n", "hex input has odd length"),
        (b"NETBAT/1 CALL ping zz\n", "input is not hex"),
        (b"NETBAT/1 CALL ping\n", "missing input"),
        (b"NETBAT/1 CALL\n", "missing operation"),
        (b"NETBAT/1 \n", "missing operation"),
        (b"NETBAT/1\n", "missing verb"),
        (b"\n", "empty line"),
        (b"\r\n", "empty line"),
        (b"", "empty line"),
        (b" NETBAT/1 CALL ping 00\n", "missing NETBAT/1 protocol prefix"),
        (b"netbat/1 CALL ping 00\n", "missing NETBAT/1 protocol prefix"),
        (b"NETBAT/1  CALL ping 00\n", "too many fields"),
        (b"NETBAT/1 call ping 00\n", "unsupported verb"),
    ],
)
def test_malformed_reasons(line: bytes, expected: str) -> None:
    assert reason(line) == expected


def test_tab_is_part_of_the_version_token() -> None:
    with pytest.raises(UnsupportedProtocolVersion) as error:
        decode_request(b"NETBAT/1\tCALL ping 00 x\n")
    assert error.value.version == "NETBAT/1\tCALL"


@pytest.mark.parametrize(
    ("line", "version"),
    [
        (b"NETBAT/2 CALL ping 00\n", "NETBAT/2"),
        (b"NETBAT/10 CALL ping 00\n", "NETBAT/10"),
        (b"NETBAT/\n", "NETBAT/"),
        (b"NETBAT/\xff\n", "NETBAT/\ufffd"),
    ],
)
def test_unsupported_versions(line: bytes, version: str) -> None:
    with pytest.raises(UnsupportedProtocolVersion) as error:
        decode_request(line)
    assert error.value.version == version
    assert str(error.value) == f"unsupported protocol version: {version}"


def test_hex_case_rules() -> None:
    assert decode_request(b"NETBAT/1 CALL ping 6F6b\n").input == b"ok"
    assert encode_request("ping", b"\xab\xcd") == b"NETBAT/1 CALL ping abcd\n"
    assert encode_response(b"\xab") == b"OK ab\n"


def test_empty_input_keeps_trailing_space() -> None:
    assert encode_request("ping", b"") == b"NETBAT/1 CALL ping \n"
    assert decode_request(b"NETBAT/1 CALL ping \n") == Request("ping", b"")
    assert encode_response(b"") == b"OK \n"
    assert decode_response(b"OK \n") == b""


def test_encoder_does_not_validate_op() -> None:
    assert encode_request("bad op", b"") == b"NETBAT/1 CALL bad op \n"


# -- limits -----------------------------------------------------------------------------------


def test_line_limit_counts_the_terminator() -> None:
    op = b"a" * 100
    line = b"NETBAT/1 CALL " + op + b" \n"
    assert decode_request(line, Limits(max_line_bytes=len(line))).operation == op.decode()
    with pytest.raises(LineTooLong) as error:
        decode_request(line, Limits(max_line_bytes=len(line) - 1))
    assert str(error.value) == f"request line exceeded {len(line) - 1} bytes"


def test_default_line_limit_is_64_kib() -> None:
    body = b"NETBAT/1 CALL ping "
    hex_len = 65536 - len(body) - 1
    hex_len -= hex_len % 2
    line = body + b"00" * (hex_len // 2) + b"\n"
    assert len(line) == 65536
    # input_too_large cannot fire over the wire with default limits: the line cap comes first.
    assert len(decode_request(line).input) == hex_len // 2 < 32768
    too_long = body + b"00" * 32768 + b"\n"
    with pytest.raises(LineTooLong) as error:
        decode_request(too_long)
    assert error.value.max == 65536


def test_input_limit_beats_hex_validation_after_odd_length() -> None:
    limits = Limits(max_input_bytes=1)
    with pytest.raises(InputTooLarge):
        decode_request(b"NETBAT/1 CALL ping zzzz\n", limits)
    assert reason(b"NETBAT/1 CALL ping zzz\n", limits) == "hex input has odd length"
    assert decode_request(b"NETBAT/1 CALL ping ff\n", limits).input == b"\xff"


def test_32_kib_input_is_accepted_with_a_larger_line() -> None:
    line = encode_request("ping", b"\x01" * 32768)
    limits = Limits(max_line_bytes=len(line))
    assert len(decode_request(line, limits).input) == 32768
    with pytest.raises(InputTooLarge) as error:
        decode_request(encode_request("ping", b"\x01" * 32769), Limits(max_line_bytes=70000))
    assert str(error.value) == "input exceeded 32768 bytes"


def test_operation_name_limits() -> None:
    name = "a" * 128
    assert decode_request(encode_request(name, b"")).operation == name
    with pytest.raises(OperationNameTooLong) as error:
        decode_request(encode_request("a" * 129, b""))
    assert str(error.value) == "operation name exceeded 128 bytes"
    # The length check runs before the grammar check.
    with pytest.raises(OperationNameTooLong):
        decode_request(b"NETBAT/1 CALL " + b"\xff" * 129 + b" \n")
    # A configured bound above the grammar's 128 still reports 128.
    with pytest.raises(OperationNameTooLong) as above:
        decode_request(encode_request("a" * 129, b""), Limits(max_operation_name_bytes=200))
    assert above.value.max == 128


# -- error table ------------------------------------------------------------------------------

TABLE: list[tuple[NetbatError, str, str]] = [
    (IoError("WouldBlock"), "io", "io error: WouldBlock"),
    (EmptyStream(), "empty_stream", "empty stream"),
    (LineTooLong(65536), "line_too_long", "request line exceeded 65536 bytes"),
    (MalformedRequest("bad"), "malformed_request", "malformed request: bad"),
    (
        UnsupportedProtocolVersion("NETBAT/9"),
        "unsupported_protocol_version",
        "unsupported protocol version: NETBAT/9",
    ),
    (OperationNameTooLong(128), "operation_name_too_long", "operation name exceeded 128 bytes"),
    (InputTooLarge(32768), "input_too_large", "input exceeded 32768 bytes"),
    (OutputTooLarge(32768), "output_too_large", "output exceeded 32768 bytes"),
    (MalformedStreamFrame("x"), "malformed_stream_frame", "malformed stream frame: x"),
    (SubscriptionIdTooLong(128), "subscription_id_too_long", "subscription id exceeded 128 bytes"),
    (CursorTooLarge(4096), "cursor_too_large", "cursor exceeded 4096 bytes"),
    (
        StreamPayloadTooLarge(32768),
        "stream_payload_too_large",
        "stream payload exceeded 32768 bytes",
    ),
    (
        StreamMessageTooLarge(4096),
        "stream_message_too_large",
        "stream error message exceeded 4096 bytes",
    ),
    (
        UnknownOperation("missing"),
        "unknown_operation",
        "runtime error: unknown operation `missing`",
    ),
    (
        MissingHandler("ping"),
        "missing_handler",
        "runtime error: operation `ping` has no registered handler",
    ),
    (
        HandlerFailed("ping", "failed", "boom"),
        "handler",
        "runtime error: handler for operation `ping` failed with failed: boom",
    ),
    (
        ReceiptSinkFailed("ping", "disk full"),
        "receipt_sink",
        "runtime error: receipt sink for operation `ping` failed: disk full",
    ),
    (
        RuntimeFailure.denied("ping", "quota", "over"),
        "runtime",
        "runtime error: operation `ping` denied with quota: over",
    ),
]


def test_table_has_the_eighteen_frozen_codes() -> None:
    assert len(WIRE_CODES) == 18
    assert [code for _, code, _ in TABLE] == list(WIRE_CODES)


@pytest.mark.parametrize(("error", "code", "message"), TABLE)
def test_error_code_and_display(error: NetbatError, code: str, message: str) -> None:
    assert type(error).code == code
    assert str(error) == message
    frame = encode_error(error)
    assert frame == b"ERR " + code.encode() + b" " + message.encode().hex().encode() + b"\n"
    back = decode_response(frame)
    assert type(back) is type(error)
    assert back == error
    assert encode_error(back) == frame


def test_unknown_operation_pinned_frame() -> None:
    assert encode_error(UnknownOperation("missing")) == (
        b"ERR unknown_operation "
        + b"runtime error: unknown operation `missing`".hex().encode()
        + b"\n"
    )


def test_receipt_sink_after_handler_error() -> None:
    error = ReceiptSinkFailed("ping", "io", handler_error=("invalid_input", "bad"))
    assert str(error) == (
        "runtime error: receipt sink for operation `ping` failed after handler error "
        "invalid_input: bad: io"
    )


def test_unrecognized_wire_code() -> None:
    error = error_from_wire("future_code", "something")
    assert isinstance(error, UnrecognizedError)
    assert error.wire_code == "future_code"


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\n",
        b"OK",
        b"OK 0\n",
        b"OK zz\n",
        b"ERR x\n",
        b"ERR  00\n",
        b"ERR x 0\n",
        b"ERR x ff\n",
        b"HELLO\n",
        b"ok 00\n",
    ],
)
def test_malformed_responses(line: bytes) -> None:
    with pytest.raises(MalformedResponse):
        decode_response(line)


def test_response_decoder_accepts_uppercase_and_crlf() -> None:
    assert decode_response(b"OK 6F6B\r\n") == b"ok"
