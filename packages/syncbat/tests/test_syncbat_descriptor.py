"""Descriptor validation: name, refs, targets, then the class/row rule; row builders."""

import pytest
from syncbat_support import descriptor

from syncbat import (
    Ctx,
    DescriptorValidationError,
    EffectClass,
    OperationDescriptor,
    OperationEffectRow,
    append_target,
    operation,
)

EMPTY = OperationEffectRow()
READ = EMPTY.reads_event("evt.c001")
APPEND = EMPTY.appends_event("evt.c001")
EMIT_OWN = EMPTY.emits_receipt("receipt.inventory.reserve.v1")
EMIT_OTHER = EMPTY.emits_receipt("receipt.other.v1")
CONTROL = EMPTY.uses_host_control("host.restart")
QUERY = EMPTY.queries_projection("stock")
CAP = EMPTY.requires_capability("billing.charge")

OK = [
    (EffectClass.INSPECT, EMPTY),
    (EffectClass.INSPECT, READ),
    (EffectClass.INSPECT, QUERY.requires_capability("x.y")),
    (EffectClass.COMPUTE, EMPTY),
    (EffectClass.PERSIST, APPEND),
    (EffectClass.PERSIST, APPEND.reads_event("evt.c002")),
    (EffectClass.EMIT, EMIT_OWN),
    (EffectClass.EMIT, EMIT_OWN.reads_event("a")),
    (EffectClass.CONTROL, CONTROL),
    (EffectClass.CONTROL, CONTROL.appends_event("evt.c001").emits_receipt("r")),
]


@pytest.mark.parametrize(("effect", "row"), OK)
def test_class_rules_accept(effect: EffectClass, row: OperationEffectRow) -> None:
    descriptor("inventory.reserve", effect, row).validate()


BAD = [
    (EffectClass.INSPECT, APPEND, "inspect operations cannot declare append"),
    (EffectClass.INSPECT, EMIT_OWN, "inspect operations cannot declare append"),
    (EffectClass.INSPECT, CONTROL, "inspect operations cannot declare append"),
    (EffectClass.COMPUTE, READ, "compute operations cannot declare runtime effects"),
    (EffectClass.COMPUTE, CAP, "compute operations cannot declare runtime effects"),
    (EffectClass.PERSIST, EMPTY, "persist operations must declare event appends"),
    (EffectClass.PERSIST, READ, "persist operations must declare event appends"),
    (EffectClass.PERSIST, APPEND.emits_receipt("r"), "persist operations cannot declare"),
    (EffectClass.PERSIST, APPEND.uses_host_control("h"), "persist operations cannot declare"),
    (EffectClass.EMIT, EMPTY, "emit operations must declare their receipt kind"),
    (EffectClass.EMIT, EMIT_OTHER, "emit operations must declare their receipt kind"),
    (EffectClass.EMIT, EMIT_OWN.appends_event("e"), "emit operations cannot declare"),
    (EffectClass.EMIT, EMIT_OWN.uses_host_control("h"), "emit operations cannot declare"),
    (EffectClass.CONTROL, EMPTY, "control operations must declare host control use"),
    (EffectClass.CONTROL, APPEND, "control operations must declare host control use"),
]


@pytest.mark.parametrize(("effect", "row", "message"), BAD)
def test_class_rules_reject(effect: EffectClass, row: OperationEffectRow, message: str) -> None:
    with pytest.raises(DescriptorValidationError) as info:
        descriptor("inventory.reserve", effect, row).validate()
    assert info.value.field == "effect_row"
    assert info.value.value == effect.value
    assert info.value.message.startswith(message)


def test_name_is_checked_first() -> None:
    bad = OperationDescriptor("bad..name", EffectClass.PERSIST, "", "", "")
    with pytest.raises(DescriptorValidationError) as info:
        bad.validate()
    assert info.value == DescriptorValidationError(
        "name", "bad..name", "dot-separated tokens must be non-empty"
    )


@pytest.mark.parametrize("field", ["input_schema_ref", "output_schema_ref", "receipt_kind"])
def test_refs_in_order_and_reported_with_the_operation_name(field: str) -> None:
    fields = {
        "input_schema_ref": "in.v1",
        "output_schema_ref": "out.v1",
        "receipt_kind": "receipt.v1",
    }
    fields[field] = "bad ref"
    bad = OperationDescriptor(
        "op",
        EffectClass.PERSIST,  # the row is also bad: refs are checked first
        fields["input_schema_ref"],
        fields["output_schema_ref"],
        fields["receipt_kind"],
    )
    with pytest.raises(DescriptorValidationError) as info:
        bad.validate()
    assert (info.value.field, info.value.value) == (field, "op:bad ref")


def test_row_targets_checked_before_class_rule() -> None:
    row = EMPTY.reads_event("bad target")
    with pytest.raises(DescriptorValidationError) as info:
        descriptor("op", EffectClass.COMPUTE, row).validate()
    assert (info.value.field, info.value.value) == ("reads_events", "bad target")


def test_title_is_not_validated() -> None:
    descriptor().with_title("Anything at all: ü!").validate()


def test_builders_return_sorted_deduplicated_copies_with_ambient_tokens() -> None:
    row = EMPTY.appends_event("b").appends_event("a").appends_event("b")
    assert EMPTY.is_empty()
    assert row.appends_events == ("a", "b")
    assert row.requires_capabilities == ("event.append",)
    full = (
        row.reads_event("r")
        .queries_projection("p")
        .emits_receipt("k")
        .uses_host_control("h")
        .requires_capability("z.custom")
        .requires_capability("a.custom")
    )
    assert full.requires_capabilities == (
        "a.custom",
        "event.append",
        "event.read",
        "host.control",
        "projection.query",
        "receipt.emit",
        "z.custom",
    )


def test_append_target_format() -> None:
    assert append_target(0xC5B7) == "evt.c5b7"
    assert append_target(0x0001) == "evt.0001"
    with pytest.raises(ValueError, match="u16"):
        append_target(0x10000)


def test_descriptors_are_frozen_values() -> None:
    a = descriptor()
    assert a == descriptor()
    assert hash(a) == hash(descriptor())
    assert a.with_title("T") != a
    assert a.with_title("T").title == "T"
    assert a.title is None


def test_operation_decorator_builds_a_validated_item() -> None:
    @operation(
        "stock.count",
        "inspect",
        input_schema_ref="stock.count.request",
        output_schema_ref="stock.count.ack",
        receipt_kind="receipt.stock.count.v1",
        title="Count stock",
        reads_events=["evt.f101"],
        requires_capabilities=["stock.read"],
    )
    def count(input: bytes, ctx: Ctx) -> bytes:
        return input

    assert count.descriptor.effect is EffectClass.INSPECT
    assert count.descriptor.title == "Count stock"
    assert count.descriptor.effect_row.reads_events == ("evt.f101",)
    assert count.descriptor.effect_row.requires_capabilities == ("event.read", "stock.read")


def test_operation_decorator_rejects_invalid_descriptors() -> None:
    with pytest.raises(DescriptorValidationError):
        operation(
            "stock.write",
            EffectClass.PERSIST,
            input_schema_ref="a",
            output_schema_ref="b",
            receipt_kind="c",
        )
