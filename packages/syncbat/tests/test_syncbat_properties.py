"""Hypothesis: encoders round-trip and are deterministic; decoders are total."""

from __future__ import annotations

import contextlib

import msgpack  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from syncbat import (
    EffectClass,
    OperationDescriptor,
    OperationEffectRow,
    OperationName,
    OperationNameError,
    OperationStatusFact,
    OperationStatusLifecycle,
    ReceiptEnvelope,
    RegisterOperationRow,
    WireDecodeError,
)
from syncbat.receipt import COMPLETED, Denied, Failed, ReceiptOutcome

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
token = st.text(ALPHABET, min_size=1, max_size=12)
names = st.lists(token, min_size=1, max_size=4).map(".".join)
hashes = st.none() | st.binary(min_size=32, max_size=32)
drawers = st.dictionaries(st.text(max_size=20), st.binary(max_size=40), max_size=4)
outcomes: st.SearchStrategy[ReceiptOutcome] = st.one_of(
    st.just(COMPLETED),
    st.builds(Failed, st.text(max_size=20), st.text(max_size=40)),
    st.builds(Denied, st.text(max_size=20), st.text(max_size=40)),
)
envelopes = st.builds(
    ReceiptEnvelope,
    descriptor_name=st.text(max_size=30),
    receipt_kind=st.text(max_size=30),
    input_hash=hashes,
    output_hash=hashes,
    outcome=outcomes,
    signed_extensions=drawers,
    local_extensions=drawers,
)


@st.composite
def rows(draw: st.DrawFn) -> OperationEffectRow:
    row = OperationEffectRow()
    for builder in ("reads_event", "appends_event", "queries_projection", "requires_capability"):
        for target in draw(st.lists(names, max_size=3)):
            row = getattr(row, builder)(target)
    return row


@st.composite
def descriptors(draw: st.DrawFn) -> OperationDescriptor:
    row = draw(rows())
    effect = EffectClass.PERSIST if row.appends_events else EffectClass.INSPECT
    return OperationDescriptor(
        draw(names),
        effect,
        draw(names),
        draw(names),
        draw(names),
        title=draw(st.none() | st.text(max_size=30)),
        effect_row=row,
    )


facts = st.builds(
    OperationStatusFact,
    operation=st.text(max_size=30),
    lifecycle=st.sampled_from(list(OperationStatusLifecycle)),
    receipt_kind=st.none() | st.text(max_size=20),
    code=st.none() | st.text(max_size=20),
    message=st.none() | st.text(max_size=20),
    input_hash=hashes,
    output_hash=hashes,
)


@given(envelopes)
def test_envelope_round_trip_and_determinism(envelope: ReceiptEnvelope) -> None:
    data = envelope.encode()
    assert envelope.encode() == data
    assert ReceiptEnvelope.decode(data) == envelope
    # key order in the drawers never changes the bytes
    shuffled = ReceiptEnvelope(
        descriptor_name=envelope.descriptor_name,
        receipt_kind=envelope.receipt_kind,
        input_hash=envelope.input_hash,
        output_hash=envelope.output_hash,
        outcome=envelope.outcome,
        signed_extensions=dict(reversed(envelope.signed_extensions.items())),
        local_extensions=dict(reversed(envelope.local_extensions.items())),
    )
    assert shuffled.encode() == data


@given(envelopes)
def test_envelope_matches_an_independent_encoder(envelope: ReceiptEnvelope) -> None:
    def drawer(d: dict[str, bytes]) -> dict[str, list[int]]:
        return {k: list(d[k]) for k in sorted(d)}

    outcome: object = "Completed"
    if isinstance(envelope.outcome, Failed | Denied):
        name = type(envelope.outcome).__name__
        outcome = {name: {"code": envelope.outcome.code, "message": envelope.outcome.message}}
    expected = msgpack.packb(
        {
            "descriptor_name": envelope.descriptor_name,
            "receipt_kind": envelope.receipt_kind,
            "input_hash": None if envelope.input_hash is None else list(envelope.input_hash),
            "output_hash": None if envelope.output_hash is None else list(envelope.output_hash),
            "outcome": outcome,
            "signed_extensions": drawer(envelope.signed_extensions),
            "local_extensions": drawer(envelope.local_extensions),
        },
        use_bin_type=True,
    )
    assert envelope.encode() == expected


@given(descriptors())
def test_register_row_round_trip(descriptor: OperationDescriptor) -> None:
    descriptor.validate()
    for row in (
        RegisterOperationRow.put(descriptor),
        RegisterOperationRow.update(descriptor),
        RegisterOperationRow.supersede("old.name", descriptor),
        RegisterOperationRow.delete(descriptor.name),
    ):
        data = row.encode()
        assert row.encode() == data
        decoded = RegisterOperationRow.decode(data)
        assert decoded == row
        assert decoded.encode() == data
    assert RegisterOperationRow.put(descriptor).descriptor() == descriptor


@given(facts)
def test_status_fact_round_trip(fact: OperationStatusFact) -> None:
    data = fact.encode()
    assert OperationStatusFact.decode(data) == fact
    value = msgpack.unpackb(data, raw=False)
    assert list(value)[:3] == ["schema_version", "operation", "lifecycle"]
    assert None not in value.values()


DECODERS = (ReceiptEnvelope.decode, RegisterOperationRow.decode, OperationStatusFact.decode)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_decoders_are_total_on_arbitrary_bytes(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(WireDecodeError):
            decode(data)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=6)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(msgpack_values)
def test_decoders_are_total_on_arbitrary_msgpack(value: object) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    for decode in DECODERS:
        with contextlib.suppress(WireDecodeError):
            decode(data)


@given(envelopes, st.data())
def test_mutated_envelopes_decode_or_fail_cleanly(
    envelope: ReceiptEnvelope, data: st.DataObject
) -> None:
    encoded = bytearray(envelope.encode())
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(WireDecodeError):
        ReceiptEnvelope.decode(bytes(encoded))


@given(st.text(max_size=140))
def test_name_grammar_is_total(text: str) -> None:
    try:
        name = OperationName(text)
    except OperationNameError:
        return
    assert 0 < len(name.encode()) <= 128
    assert not name.startswith(".")
    assert not name.endswith(".")
    assert ".." not in name
    assert set(name) <= set(ALPHABET + ".")
