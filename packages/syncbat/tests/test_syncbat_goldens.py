"""The two syncbat goldens reproduce byte for byte from values built by hand."""

import msgpack  # type: ignore[import-untyped]
from syncbat_support import load_vector

from syncbat import (
    COMPLETED,
    EffectClass,
    OperationDescriptor,
    OperationEffectRow,
    ReceiptEnvelope,
    RegisterOperationRow,
)


def reserve_descriptor() -> OperationDescriptor:
    return OperationDescriptor(
        "inventory.reserve",
        EffectClass.PERSIST,
        "schema.inventory.reserve.input.v1",
        "schema.inventory.reserve.output.v1",
        "receipt.inventory.reserve.v1",
        title="Reserve Inventory",
        effect_row=OperationEffectRow().appends_event("event.inventory.reserve.v1"),
    )


def completed_envelope() -> ReceiptEnvelope:
    return ReceiptEnvelope(
        descriptor_name="inventory.reserve",
        receipt_kind="receipt.inventory.reserve.v1",
        input_hash=b"\x11" * 32,
        output_hash=b"\x22" * 32,
        outcome=COMPLETED,
        # inserted out of order: the encoder sorts, as a BTreeMap does
        signed_extensions={"syncbat.signed.beta": b"signed-b", "syncbat.signed.alpha": b"signed-a"},
        local_extensions={"local.beta": b"local-b", "local.alpha": b"local-a"},
    )


def test_receipt_envelope_completed_golden() -> None:
    golden = load_vector("syncbat/receipt_envelope_completed.hex")
    assert len(golden) == 323
    assert completed_envelope().encode() == golden


def test_receipt_envelope_golden_decodes_to_the_hand_built_value() -> None:
    golden = load_vector("syncbat/receipt_envelope_completed.hex")
    assert ReceiptEnvelope.decode(golden) == completed_envelope()


def test_register_operation_row_put_golden() -> None:
    golden = load_vector("syncbat/register_operation_row_put.hex")
    assert len(golden) == 329
    descriptor = reserve_descriptor()
    descriptor.validate()
    assert RegisterOperationRow.put(descriptor).encode() == golden


def test_register_row_golden_decodes_back_to_the_descriptor() -> None:
    golden = load_vector("syncbat/register_operation_row_put.hex")
    row = RegisterOperationRow.decode(golden)
    assert row == RegisterOperationRow.put(reserve_descriptor())
    assert row.descriptor() == reserve_descriptor()


def test_goldens_use_int_arrays_not_bin() -> None:
    # An independent decoder sees lists of ints where serde wrote Vec<u8> / [u8; 32].
    value = msgpack.unpackb(load_vector("syncbat/receipt_envelope_completed.hex"), raw=False)
    assert value["input_hash"] == [0x11] * 32
    assert value["signed_extensions"]["syncbat.signed.alpha"] == list(b"signed-a")
    assert list(value) == [
        "descriptor_name",
        "receipt_kind",
        "input_hash",
        "output_hash",
        "outcome",
        "signed_extensions",
        "local_extensions",
    ]


def test_register_row_field_order_and_omissions() -> None:
    value = msgpack.unpackb(load_vector("syncbat/register_operation_row_put.hex"), raw=False)
    assert list(value) == [
        "schema_version",
        "action",
        "name",
        "title",
        "effect",
        "input_schema_ref",
        "output_schema_ref",
        "receipt_kind",
        "effect_row",
    ]
    assert value["effect_row"] == {
        "appends_events": ["event.inventory.reserve.v1"],
        "requires_capabilities": ["event.append"],
    }


def test_nil_title_is_kept_and_empty_row_is_omitted() -> None:
    descriptor = (
        reserve_descriptor()
        .with_title(None)
        .with_effect_row(OperationEffectRow().reads_event("evt.c001"))
    )
    descriptor = OperationDescriptor(
        descriptor.name,
        EffectClass.INSPECT,
        descriptor.input_schema_ref,
        descriptor.output_schema_ref,
        descriptor.receipt_kind,
    )
    value = msgpack.unpackb(RegisterOperationRow.put(descriptor).encode(), raw=False)
    assert value["title"] is None
    assert "effect_row" not in value
    assert "supersedes" not in value
