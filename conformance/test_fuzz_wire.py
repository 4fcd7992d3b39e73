"""NETBAT lines and canonical MessagePack from untrusted bytes: total decoders, exact round trips.

PROVES: INV-WIRE-ROUNDTRIP-TOTALITY (``netbat.decode_request``, ``decode_response``,
``decode_stream_line``, ``batpak.canonical.decode`` and its typed ``Coordinate`` decode return a
value or their typed error on any bytes; valid requests, responses, the seven stream frames,
canonical values, u128 ids and idempotency keys round-trip byte for byte; trailing bytes after
a value are rejected, never half-decoded),
INV-NETBAT-LINE-PROTOCOL-STABLE (every decode error is one of the 18 frozen codes and its ERR
frame decodes back to the same error; a line over 65536 bytes is always ``line_too_long``;
CRLF and a bare CR end a line like LF; the golden frames decode and re-encode byte-identically).
CATCHES: a decoder raising ValueError/UnicodeDecodeError/IndexError, a new or renamed wire code,
a lossy encoder (uppercase hex, dropped trailing space, ``+1`` kept), partial decodes.
SEEDED: hypothesis draws raw bytes, token and byte edits of the golden lines
(conformance/vectors/netbat, the op manifest) and byte edits of the canonical goldens.
"""

from __future__ import annotations

import pytest
from fuzz.mutate import mutated, mutated_line
from fuzz.seeds import canonical_bodies, netbat_lines
from fuzz.targets import FROZEN_CODES, TARGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netbat
from batpak import Coordinate, IdempotencyKey, canonical

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
LINE_TARGETS = {
    "netbat_request": "request",
    "netbat_response": "response",
    "netbat_stream": "stream",
}


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
@pytest.mark.parametrize("target", sorted(LINE_TARGETS))
def test_netbat_line_fuzz(target: str) -> None:
    seeds = netbat_lines()[LINE_TARGETS[target]]
    lines = st.one_of(
        st.binary(max_size=300),
        mutated_line(seeds),
        mutated_line(seeds),
        mutated(seeds),
        st.integers(65530, 65540).map(lambda n: seeds[n % len(seeds)][:20].ljust(n, b"0")),
    )

    @FAST
    @given(lines)
    def run(data: bytes) -> None:
        TARGETS[target](data)

    run()


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@pytest.mark.parametrize("target", ["canonical_value", "canonical_coordinate"])
def test_canonical_decode_fuzz(target: str) -> None:
    coordinate = canonical.encode(Coordinate("entity:test", "scope:test"))
    seeds = (*canonical_bodies(), coordinate)

    @FAST
    @given(st.one_of(st.binary(max_size=300), mutated(seeds), mutated(seeds)))
    def run(data: bytes) -> None:
        TARGETS[target](data)

    run()


# -- valid values round-trip ------------------------------------------------------------------

OP_NAMES = st.from_regex(r"\A[A-Za-z0-9_-]{1,40}(\.[A-Za-z0-9_-]{1,20}){0,3}\Z")
SUB_IDS = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,30}(\.[a-z0-9_-]{1,10}){0,2}\.v[1-9][0-9]{0,3}\Z")
CODES = st.from_regex(r"\A[a-z0-9._-]{1,40}\Z")
CURSORS = st.one_of(st.none(), st.binary(max_size=64))
U64 = st.integers(1, 2**64 - 1)
STREAM_FRAMES = st.one_of(
    st.builds(netbat.Subscribe, SUB_IDS, CURSORS, st.integers(1, 2**32 - 1)),
    st.builds(netbat.SubEvent, SUB_IDS, U64, CURSORS, CURSORS, CODES, st.binary(max_size=256)),
    st.builds(netbat.SubWatermark, SUB_IDS, U64, st.binary(max_size=64)),
    st.builds(netbat.SubAck, SUB_IDS, U64, st.binary(max_size=64)),
    st.builds(netbat.SubCancel, SUB_IDS, CODES),
    st.builds(netbat.SubErr, SUB_IDS, CODES, CURSORS, CURSORS, st.binary(max_size=64)),
    st.builds(netbat.SubEnd, SUB_IDS, CURSORS, CODES),
)


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@FAST
@given(OP_NAMES, st.binary(max_size=512), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_valid_requests_round_trip(op: str, data: bytes, ending: bytes) -> None:
    line = netbat.encode_request(op, data)
    assert line == b"NETBAT/1 CALL " + op.encode() + b" " + data.hex().encode() + b"\n"
    assert netbat.decode_request(line[:-1] + ending) == netbat.Request(op, data)
    upper = b"NETBAT/1 CALL " + op.encode() + b" " + data.hex().upper().encode()
    assert netbat.decode_request(upper) == netbat.Request(op, data)
    assert netbat.decode_response(netbat.encode_ok(data)) == data


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@FAST
@given(STREAM_FRAMES)
def test_valid_stream_frames_round_trip(frame: netbat.StreamFrame) -> None:
    line = netbat.encode_stream_frame(frame)
    assert line.endswith(b"\n")
    assert b"\r" not in line
    assert b"\n" not in line[:-1]
    assert netbat.decode_stream_line(line) == frame
    assert netbat.encode_stream_frame(netbat.decode_stream_line(line)) == line


MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@FAST
@given(MSGPACK_VALUES, st.integers(0, 2**128 - 1))
def test_canonical_values_and_ids_round_trip(value: object, u128: int) -> None:
    encoded = canonical.encode(value)
    assert canonical.decode(encoded) == value
    assert canonical.encode(canonical.decode(encoded)) == encoded
    for cut in {0, len(encoded) // 2, len(encoded) - 1}:
        if cut < len(encoded):
            with pytest.raises(canonical.CanonicalDecodeError):
                canonical.decode(encoded[:cut])  # a prefix is never a value: no partial decode
    raw = canonical.u128_to_bytes(u128)
    assert len(raw) == 16
    assert canonical.u128_from_bytes(raw) == u128
    assert canonical.encode(raw) == b"\xc4\x10" + raw
    if u128:
        assert IdempotencyKey(u128) == u128


# -- the frozen line protocol -----------------------------------------------------------------


def _decode_request(line: bytes) -> netbat.Request | netbat.NetbatError:
    try:
        return netbat.decode_request(line)
    except netbat.NetbatError as exc:
        return exc


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_the_eighteen_frozen_codes() -> None:
    classes: list[type[netbat.NetbatError]] = [
        cls
        for name in netbat.__all__
        if isinstance(cls := getattr(netbat, name), type)
        and issubclass(cls, netbat.NetbatError)
        and cls not in (netbat.NetbatError, netbat.MalformedResponse, netbat.UnrecognizedError)
    ]
    assert {cls.code for cls in classes} == FROZEN_CODES
    assert len(FROZEN_CODES) == 18
    for cls in classes:
        line = b"ERR " + cls.code.encode() + b" " + b"some message".hex().encode() + b"\n"
        error = netbat.decode_response(line)
        assert type(error) is cls
        assert str(error) == "some message"
        assert netbat.encode_error(error) == line
    unknown = netbat.decode_response(b"ERR not_a_code 6869\n")
    assert isinstance(unknown, netbat.UnrecognizedError)
    assert unknown.wire_code == "not_a_code"


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_golden_lines_decode_and_reencode_byte_identically() -> None:
    lines = netbat_lines()
    for line in lines["stream"]:
        frame = netbat.decode_stream_line(line)
        assert netbat.encode_stream_frame(frame) == line
        assert (
            line.split(b" ")[1].decode()
            == {
                netbat.Subscribe: "SUBSCRIBE",
                netbat.SubEvent: "SUB_EVENT",
                netbat.SubWatermark: "SUB_WATERMARK",
                netbat.SubAck: "SUB_ACK",
                netbat.SubCancel: "SUB_CANCEL",
                netbat.SubErr: "SUB_ERR",
                netbat.SubEnd: "SUB_END",
            }[type(frame)]
        )
    assert {line.split(b" ")[1] for line in lines["stream"]} == {
        b"SUBSCRIBE",
        b"SUB_EVENT",
        b"SUB_WATERMARK",
        b"SUB_ACK",
        b"SUB_CANCEL",
        b"SUB_ERR",
        b"SUB_END",
    }
    decoded = 0
    for line in lines["request"]:
        result = _decode_request(line)
        if isinstance(result, netbat.NetbatError):
            assert result.code in FROZEN_CODES
            continue
        request = result
        decoded += 1
        assert netbat.encode_request(request.operation, request.input) == line
        for ending in (b"\r\n", b"\r", b""):
            assert netbat.decode_request(line[:-1] + ending) == request
    assert decoded >= 12
    for line in lines["response"]:
        reply = netbat.decode_response(line)
        again = (
            netbat.encode_error(reply)
            if isinstance(reply, netbat.NetbatError)
            else netbat.encode_ok(reply)
        )
        assert again == line


@pytest.mark.invariant("INV-NETBAT-LINE-PROTOCOL-STABLE")
def test_line_limit_counts_the_terminator() -> None:
    prefix = b"NETBAT/1 CALL echo "
    fits = prefix + b"00" * ((65536 - len(prefix) - 1) // 2)
    fits += b"0" * (65535 - len(fits) - 1) + b"\n" if len(fits) < 65535 else b"\n"
    assert len(fits) <= 65536
    assert not isinstance(_decode_request(fits), netbat.LineTooLong)
    over = b"NETBAT/1 CALL echo " + b"0" * (65536 - 19) + b"\n"
    assert len(over) == 65537
    with pytest.raises(netbat.LineTooLong, match="request line exceeded 65536 bytes"):
        netbat.decode_request(over)
    with pytest.raises(netbat.LineTooLong):
        netbat.decode_stream_line(b"NETBAT/2 " + b"x" * 65528)
