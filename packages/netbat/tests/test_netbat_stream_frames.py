"""NETBAT/2 stream framing: the decode order, token grammars and pinned cases."""

import pytest

from netbat import (
    CursorTooLarge,
    Limits,
    LineTooLong,
    MalformedStreamFrame,
    StreamMessageTooLarge,
    StreamPayloadTooLarge,
    SubAck,
    SubCancel,
    SubEnd,
    SubErr,
    Subscribe,
    SubscriptionIdTooLong,
    SubWatermark,
    UnsupportedProtocolVersion,
    decode_stream_line,
    encode_stream_frame,
)

SUB = b"orders.open.v1"


def reason(line: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(MalformedStreamFrame) as error:
        decode_stream_line(line, limits or Limits())
    assert str(error.value) == f"malformed stream frame: {error.value.reason}"
    return error.value.reason


# -- pinned cases -----------------------------------------------------------------------------


def test_unknown_verb() -> None:
    assert reason(b"NETBAT/2 SUB_FUTURE orders.open.v1\n") == "unknown stream verb"


@pytest.mark.parametrize(
    ("line", "version"),
    [
        (b"NETBAT/3 SUBSCRIBE orders.open.v1 - 1\n", "NETBAT/3"),
        (b"NETBAT/1 SUBSCRIBE orders.open.v1 - 1\n", "NETBAT/1"),
        (b"GARBAGE\n", "GARBAGE"),
        (b"\xff\xfe SUBSCRIBE\n", "0xfffe"),
        (b" NETBAT/2 SUBSCRIBE orders.open.v1 - 1\n", ""),
    ],
)
def test_unsupported_version(line: bytes, version: str) -> None:
    with pytest.raises(UnsupportedProtocolVersion) as error:
        decode_stream_line(line)
    assert error.value.version == version


def test_cancel_with_too_many_fields() -> None:
    assert reason(b"NETBAT/2 SUB_CANCEL orders.open.v1 bad reason\n") == "too many fields"


def test_bad_reason_code() -> None:
    assert (
        reason(b"NETBAT/2 SUB_CANCEL orders.open.v1 Bad.Reason\n")
        == "reason code has characters outside [a-z0-9._-]"
    )


def test_subscription_id_without_version_suffix() -> None:
    assert (
        reason(b"NETBAT/2 SUBSCRIBE orders.open - 1\n")
        == "subscription id must contain a .v version suffix"
    )


def test_empty_and_missing_verb() -> None:
    assert reason(b"\n") == "empty line"
    assert reason(b"\r\n") == "empty line"
    assert reason(b"NETBAT/2\n") == "missing stream verb"
    assert reason(b"NETBAT/2 \n") == "unknown stream verb"


def test_crlf_and_bare_cr() -> None:
    expected = Subscribe("orders.open.v1", None, 128)
    assert decode_stream_line(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 128\r\n") == expected
    assert decode_stream_line(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 128\r") == expected


# -- missing fields, in pull order ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"NETBAT/2 SUBSCRIBE", "missing subscription id"),
        (b"NETBAT/2 SUBSCRIBE orders.open.v1", "missing resume cursor"),
        (b"NETBAT/2 SUBSCRIBE orders.open.v1 -", "missing client window"),
        (b"NETBAT/2 SUB_EVENT orders.open.v1", "missing delivery index"),
        (b"NETBAT/2 SUB_EVENT orders.open.v1 1", "missing cursor_before"),
        (b"NETBAT/2 SUB_EVENT orders.open.v1 1 -", "missing cursor_after"),
        (b"NETBAT/2 SUB_EVENT orders.open.v1 1 - -", "missing payload schema ref"),
        (b"NETBAT/2 SUB_EVENT orders.open.v1 1 - - s", "missing payload hex"),
        (b"NETBAT/2 SUB_WATERMARK orders.open.v1 1", "missing cursor_after"),
        (b"NETBAT/2 SUB_ACK orders.open.v1", "missing delivery index"),
        (b"NETBAT/2 SUB_CANCEL orders.open.v1", "missing reason code"),
        (b"NETBAT/2 SUB_ERR orders.open.v1", "missing error code"),
        (b"NETBAT/2 SUB_ERR orders.open.v1 c", "missing last delivered cursor"),
        (b"NETBAT/2 SUB_ERR orders.open.v1 c -", "missing last acked cursor"),
        (b"NETBAT/2 SUB_ERR orders.open.v1 c - -", "missing message hex"),
        (b"NETBAT/2 SUB_END orders.open.v1", "missing cursor_after"),
        (b"NETBAT/2 SUB_END orders.open.v1 -", "missing reason code"),
    ],
)
def test_missing_fields(line: bytes, expected: str) -> None:
    assert reason(line + b"\n") == expected


def test_optional_cursor_is_decoded_while_pulling() -> None:
    # A bad resume cursor fails before the missing window is noticed.
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 0\n") == "hex input has odd length"
    assert reason(b"NETBAT/2 SUBSCRIBE BAD 0\n") == "hex input has odd length"
    # A required cursor is only validated after the integers.
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 0 zz\n") == "delivery index must be nonzero"


def test_too_many_fields_is_checked_last() -> None:
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 0 extra\n") == (
        "client window must be nonzero"
    )
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 1 extra\n") == "too many fields"
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 1 \n") == "too many fields"


# -- integers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "value"), [(b"+1", 1), (b"01", 1), (b"0007", 7)])
def test_rust_integer_forms_accepted(token: bytes, value: int) -> None:
    frame = decode_stream_line(b"NETBAT/2 SUB_ACK orders.open.v1 " + token + b" 0a\n")
    assert isinstance(frame, SubAck)
    assert frame.delivery_index == value


@pytest.mark.parametrize(
    "token",
    [b"1_0", b"-1", b"+", b"++1", b"+-1", b"0x1", b"1.0", b"\xd9\xa1", b"1e3", b"\xef\xbc\x91"],
)
def test_python_only_integer_forms_rejected(token: bytes) -> None:
    got = reason(b"NETBAT/2 SUB_ACK orders.open.v1 " + token + b" 0a\n")
    assert got in {"integer field is not decimal", "token is not utf-8"}


def test_integer_bounds() -> None:
    u64 = str(2**64 - 1).encode()
    frame = decode_stream_line(b"NETBAT/2 SUB_WATERMARK orders.open.v1 " + u64 + b" 0a\n")
    assert isinstance(frame, SubWatermark)
    assert frame.delivery_index == 2**64 - 1
    over = str(2**64).encode()
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 " + over + b" 0a\n") == (
        "integer field is not decimal"
    )
    assert decode_stream_line(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 4294967295\n") == Subscribe(
        "orders.open.v1", None, 2**32 - 1
    )
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 4294967296\n") == (
        "integer field is not decimal"
    )
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 - 0\n") == "client window must be nonzero"
    assert reason(b"NETBAT/2 SUBSCRIBE orders.open.v1 - +0\n") == "client window must be nonzero"


def test_integers_of_thousands_of_digits_are_not_decimal_u64s() -> None:
    # Found by the conformance fuzz target netbat_stream: int() refuses over 4300 digits
    # with a ValueError, which escaped the decoder. Rust parses any number of leading zeros.
    huge = b"7" * 5000
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 " + huge + b" 0a\n") == (
        "integer field is not decimal"
    )
    zeros = b"0" * 5000 + b"7"
    frame = decode_stream_line(b"NETBAT/2 SUB_ACK orders.open.v1 " + zeros + b" 0a\n")
    assert isinstance(frame, SubAck)
    assert frame.delivery_index == 7


def test_whitespace_in_integers_cannot_occur_but_tabs_are_rejected() -> None:
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 1\t 0a\n") == "integer field is not decimal"


# -- subscription ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sub_id", "expected"),
    [
        (b"", "empty subscription id"),
        (b".orders.v1", "subscription id has a leading or trailing '.'"),
        (b"orders.v1.", "subscription id has a leading or trailing '.'"),
        (b"orders..open.v1", "subscription id has a doubled '.'"),
        (b"orders", "subscription id must contain a .v version suffix"),
        (b"Orders.v1", "subscription id must start with [a-z0-9]"),
        (b"_orders.v1", "subscription id must start with [a-z0-9]"),
        (b"orders.Open.v1", "subscription id has characters outside [a-z0-9._-]"),
        (b"orders.v", "subscription id missing version digits after .v"),
        (b"orders.v0", "subscription id version must start with 1-9"),
        (b"orders.vx", "subscription id version must start with 1-9"),
        (b"orders.v1a", "subscription id version must be digits only"),
        (b"\xff.v1", "token is not utf-8"),
    ],
)
def test_subscription_id_grammar(sub_id: bytes, expected: str) -> None:
    assert reason(b"NETBAT/2 SUB_CANCEL " + sub_id + b" r\n") == expected


def test_subscription_id_suffix_is_the_last_dot_v() -> None:
    frame = decode_stream_line(b"NETBAT/2 SUB_CANCEL a.v2.b.v10 r\n")
    assert isinstance(frame, SubCancel)
    assert frame.subscription_id == "a.v2.b.v10"
    assert reason(b"NETBAT/2 SUB_CANCEL a.v2.v r\n") == (
        "subscription id missing version digits after .v"
    )


def test_subscription_id_length_limit_comes_first() -> None:
    long_id = b"a" * 126 + b".v1"
    with pytest.raises(SubscriptionIdTooLong) as error:
        decode_stream_line(b"NETBAT/2 SUB_CANCEL " + long_id + b" r\n")
    assert str(error.value) == "subscription id exceeded 128 bytes"
    with pytest.raises(SubscriptionIdTooLong):
        decode_stream_line(b"NETBAT/2 SUB_CANCEL " + b"A" * 129 + b" r\n")
    ok = b"a" * 125 + b".v1"
    assert isinstance(decode_stream_line(b"NETBAT/2 SUB_CANCEL " + ok + b" r\n"), SubCancel)
    big = Limits(max_subscription_id_bytes=200)
    assert reason(b"NETBAT/2 SUB_CANCEL " + long_id + b" r\n", big) == (
        "subscription id longer than 128 bytes"
    )


# -- reason codes and schema refs --------------------------------------------------------------


def test_reason_code_grammar() -> None:
    assert reason(b"NETBAT/2 SUB_CANCEL orders.open.v1 " + b"a" * 129 + b"\n") == (
        "reason code longer than 128 bytes"
    )
    assert reason(b"NETBAT/2 SUB_END orders.open.v1 - \n") == "empty reason code"
    assert reason(b"NETBAT/2 SUB_ERR orders.open.v1 Bad - - 00\n") == (
        "reason code has characters outside [a-z0-9._-]"
    )


def test_schema_ref_grammar() -> None:
    base = b"NETBAT/2 SUB_EVENT orders.open.v1 1 - - "
    assert reason(base + b" 00\n") == "empty payload schema ref"
    assert reason(base + b"a" * 257 + b" 00\n") == "payload schema ref longer than 256 bytes"
    assert reason(base + b"a\tb 00\n") == "payload schema ref contains whitespace"
    assert reason(base + b"a\xc2\xa0b 00\n") == "payload schema ref contains whitespace"
    assert reason(base + b"a\x1cb 00\n") == "payload schema ref has characters outside [a-z0-9._-]"
    assert reason(base + b"Schema 00\n") == "payload schema ref has characters outside [a-z0-9._-]"
    assert reason(base + b"\xff 00\n") == "token is not utf-8"


# -- hex fields -------------------------------------------------------------------------------


def test_hex_fields() -> None:
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 1 -\n") == "hex input has odd length"
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 1 zz\n") == "input is not hex"
    assert reason(b"NETBAT/2 SUB_ACK orders.open.v1 1 \xff\xff\n") == "input is not hex"
    frame = decode_stream_line(b"NETBAT/2 SUB_ACK orders.open.v1 1 0A\n")
    assert frame == SubAck("orders.open.v1", 1, b"\x0a")
    assert encode_stream_frame(frame).endswith(b" 0a\n")
    empty = decode_stream_line(b"NETBAT/2 SUB_ACK orders.open.v1 1 \n")
    assert empty == SubAck("orders.open.v1", 1, b"")


def test_stream_size_limits() -> None:
    with pytest.raises(CursorTooLarge) as cursor:
        decode_stream_line(b"NETBAT/2 SUB_ACK orders.open.v1 1 " + b"00" * 4097 + b"\n")
    assert str(cursor.value) == "cursor exceeded 4096 bytes"
    with pytest.raises(CursorTooLarge):
        decode_stream_line(b"NETBAT/2 SUBSCRIBE orders.open.v1 " + b"zz" * 4097 + b" 1\n")
    ok = decode_stream_line(b"NETBAT/2 SUB_ACK orders.open.v1 1 " + b"00" * 4096 + b"\n")
    assert isinstance(ok, SubAck)
    with pytest.raises(StreamPayloadTooLarge) as payload:
        decode_stream_line(
            b"NETBAT/2 SUB_EVENT orders.open.v1 1 - - s " + b"00" * 32769 + b"\n",
            Limits(max_line_bytes=1 << 20),
        )
    assert str(payload.value) == "stream payload exceeded 32768 bytes"
    with pytest.raises(StreamMessageTooLarge) as message:
        decode_stream_line(b"NETBAT/2 SUB_ERR orders.open.v1 c - - " + b"00" * 4097 + b"\n")
    assert str(message.value) == "stream error message exceeded 4096 bytes"
    with pytest.raises(LineTooLong):
        decode_stream_line(b"NETBAT/2 SUB_EVENT orders.open.v1 1 - - s " + b"00" * 32769 + b"\n")


def test_sub_err_message_may_be_any_bytes() -> None:
    frame = decode_stream_line(b"NETBAT/2 SUB_ERR orders.open.v1 c 0a - ff\n")
    assert frame == SubErr("orders.open.v1", "c", b"\x0a", None, b"\xff")


def test_sub_end_absent_cursor() -> None:
    frame = SubEnd("orders.open.v1", None, "client_cancelled")
    line = encode_stream_frame(frame)
    assert line == b"NETBAT/2 SUB_END orders.open.v1 - client_cancelled\n"
    assert decode_stream_line(line) == frame
